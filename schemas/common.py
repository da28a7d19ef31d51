"""Shared building blocks of the contracts: exact numbers, shares, identifiers, the frozen base.

Numbers are exact. A number arrives as JSON and is read through its decimal text (``0.1`` is
exactly one tenth), held as a :class:`fractions.Fraction`, and written back as a JSON number with
the same text. A *share* is a number in (0, 1]; besides decimal numbers it may be written as a
fraction string such as ``"2/3"``, which is also how a share that has no finite decimal form is
written back.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

MAX_MAGNITUDE = Fraction(10**15)
_FRACTION_TEXT = re.compile(r"^\s*\d+\s*/\s*\d+\s*$")


class Frozen(BaseModel):
    """Base of every contract: immutable, and unknown fields are an error rather than ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


def fraction_from_number(value: Any) -> Fraction:
    """Read a JSON number exactly, through its shortest decimal text."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | Fraction):
        raise ValueError("must be a number")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        result = Fraction(repr(value))
    else:
        result = Fraction(value)
    if abs(result) > MAX_MAGNITUDE:
        raise ValueError("must be at most 10^15 in magnitude")
    return result


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
        result = fraction_from_number(value)
    if not 0 < result <= 1:
        raise ValueError("must be greater than 0 and at most 1")
    return result


ExactNumber = Annotated[
    Fraction,
    BeforeValidator(fraction_from_number),
    PlainSerializer(number_to_json, when_used="json"),
    WithJsonSchema({"type": "number"}),
]
"""A finite number, exact, at most 10^15 in magnitude."""

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
