"""Shared building blocks of the contracts: exact numbers, shares, identifiers, the frozen base.

Numbers are exact. A number arrives as JSON and is read through its decimal text (``0.1`` is
exactly one tenth), held as a :class:`fractions.Fraction`, and written back as a JSON number with
the same text. A *share* is a number in (0, 1]; besides decimal numbers it may be written as a
fraction string such as ``"2/3"``, which is also how a share that has no finite decimal form is
written back.

A number is checked *before* it becomes a ``Fraction``: ``Fraction(Decimal("1e999999999"))``
builds a billion-digit integer, so the exponent and the digits are looked at first, where they
cost nothing (:func:`exact_number`). Besides the magnitude bound of 10^15, a number has at most
17 significant digits and no digit finer than 10^-324: exactly what a JSON number read as an IEEE
double can carry (the shortest decimal form of any double fits), so no number that was ever
written to the log is refused when it is read again, while a number that would cost real time,
or that only a decimal parser could carry and the wire would round, is refused with the reason.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

MAX_MAGNITUDE = Fraction(10**15)
MAX_SIGNIFICANT_DIGITS = 17
"""The most significant digits a number may have: the shortest decimal form of an IEEE double."""
MIN_EXPONENT = -324
"""The finest digit a number may have (10^-324): the finest a double's shortest form has."""
MAX_NUMBER_TEXT = 400
"""The longest typed number (characters) that is parsed at all: a number within the bounds above
is at most 343 characters long even when written out without an exponent."""
_MAX_ADJUSTED = 15  # the exponent of the leading digit of a number of at most 10^15
_FRACTION_TEXT = re.compile(r"^\s*\d+\s*/\s*\d+\s*$")
_MAGNITUDE = "must be at most 10^15 in magnitude"
_FLOATS: dict[float, Fraction] = {}
"""The fractions of the floats read lately: a negotiation's values repeat (every replay reads each
again), and reading one through its decimal text costs microseconds; a fraction is immutable."""
_FLOATS_KEPT = 4096


class Frozen(BaseModel):
    """Base of every contract: immutable, and unknown fields are an error rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def _from_decimal(value: Decimal) -> Fraction:
    """A decimal as an exact fraction, once its exponent and digits are known to be in bounds.

    Every check before ``Fraction(...)`` costs at most one pass over the digits as written; the
    conversion itself then handles at most 17 digits and a power of ten of at most 10^340."""
    if not value.is_finite():
        raise ValueError("must be a finite number")
    if value.is_zero():
        return Fraction(0)
    if value.adjusted() > _MAX_ADJUSTED:  # the leading digit's exponent: 1e999999999 stops here
        raise ValueError(_MAGNITUDE)
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    significant = len(digits)
    while digits[significant - 1] == 0:  # trailing zeros carry no precision (1.500 is 1.5)
        significant -= 1
    exponent += len(digits) - significant
    if exponent < MIN_EXPONENT:
        raise ValueError(f"must have no digit finer than 10^{MIN_EXPONENT}")
    if significant > MAX_SIGNIFICANT_DIGITS:
        raise ValueError(f"must have at most {MAX_SIGNIFICANT_DIGITS} significant digits")
    result = Fraction(value)
    if abs(result) > MAX_MAGNITUDE:  # a leading digit at 10^15: only 10^15 itself is in range
        raise ValueError(_MAGNITUDE)
    return result


def exact_number(value: Any) -> Fraction:
    """Read a number exactly, within the bounds of the module's docstring; refuse anything else.

    The one reading of numbers: JSON numbers (int, or float read through its shortest decimal
    text), decimals (from a form or a lossless JSON parser) and fractions; ``ValueError`` says
    what is wrong."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
        raise ValueError("must be a number")
    if isinstance(value, int):
        if abs(value) > MAX_MAGNITUDE:  # comparing ints costs nothing, whatever their size
            raise ValueError(_MAGNITUDE)
        return Fraction(value)
    if isinstance(value, float):
        exact = type(value) is float  # (a subclass may write itself otherwise: read it each time)
        known = _FLOATS.get(value) if exact else None
        if known is not None:
            return known
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        result = _from_decimal(Decimal(repr(value)))
        if exact:
            if len(_FLOATS) >= _FLOATS_KEPT:
                _FLOATS.clear()
            _FLOATS[value] = result
        return result
    if isinstance(value, Decimal):
        return _from_decimal(value)
    if abs(value) > MAX_MAGNITUDE:  # a Fraction: built by code, not read from outside
        raise ValueError(_MAGNITUDE)
    return value


def number_from_text(text: str) -> Fraction:
    """A number typed as text (a decimal comma too), checked as :func:`exact_number` checks."""
    text = text.strip().replace(",", ".")
    if len(text) > MAX_NUMBER_TEXT:
        raise ValueError(f"must be a number of at most {MAX_NUMBER_TEXT} characters")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None
    return _from_decimal(number)


def _finite_decimal(value: Fraction) -> bool:
    d = value.denominator
    for p in (2, 5):
        while d % p == 0:
            d //= p
    return d == 1


def number_to_json(value: Fraction) -> int | float | str:
    """An exact number as JSON: an integer, a decimal, or (no finite decimal form) ``"p/q"``."""
    if value.denominator == 1:
        return value.numerator
    if _finite_decimal(value):
        return float(value)
    return f"{value.numerator}/{value.denominator}"


def _share(value: Any) -> Fraction:
    if isinstance(value, str):
        if not _FRACTION_TEXT.match(value):
            raise ValueError("must be a number or a fraction such as '2/3'")
        numerator, denominator = (int(part) for part in value.split("/"))
        if denominator == 0:
            raise ValueError("must not divide by zero")
        result = Fraction(numerator, denominator)
    else:
        result = exact_number(value)
    if not 0 < result <= 1:
        raise ValueError("must be greater than 0 and at most 1")
    return result


ExactNumber = Annotated[
    Fraction,
    BeforeValidator(exact_number),
    PlainSerializer(number_to_json, when_used="json"),
    WithJsonSchema({"type": "number"}),
]
"""A finite number, exact, at most 10^15 in magnitude, of at most 17 significant digits, none finer
than 10^-324 (see the module's docstring)."""

Share = Annotated[
    Fraction,
    BeforeValidator(_share),
    PlainSerializer(number_to_json, when_used="json"),
    WithJsonSchema(
        {
            "oneOf": [
                {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                {"type": "string", "pattern": r"^\s*\d+\s*/\s*\d+\s*$"},
            ]
        }
    ),
]
"""A share in (0, 1]: a number, or a fraction string such as "2/3"."""

Slug = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", min_length=1, max_length=64)]
"""A lower-case key such as ``retention-days``."""

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""An opaque identifier of an organisation, a negotiation, a command or an event."""

ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=4000)]

Weight = Annotated[int, Field(strict=True, ge=1, le=10**9)]
"""A member's weight: a positive integer, for example its number of users."""
