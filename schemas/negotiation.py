"""The nouns of a negotiation: requirement items, positions, policy, vendor answers.

These are the values that commands and events carry. They check their own shape; whether a
position fits its item (a number for ``at_most``, known options for ``one_of``) is checked by the
decider, which knows the negotiation's items.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, model_validator

from schemas.common import ExactNumber, Frozen, LongText, Share, ShortText, Slug

Kind = Literal["boolean", "at_most", "at_least", "one_of"]
Category = Literal["privacy", "security", "legal", "exit", "price", "open-source", "sustainability", "accessibility"]
Priority = Literal["must", "should", "could"]
Verdict = Literal["accept", "reject", "counter"]
Phase = Literal["collecting", "negotiating", "endorsing", "agreed", "implementing", "fulfilled", "abandoned"]
CheckVerdict = Literal["met", "not_met"]
"""A member's check of a delivered commitment, and the coordinator's verdict on it (SPEC section 9)."""
CommitmentStatus = Literal["open", "delivered", "met", "overdue"]
"""Where a commitment stands (SPEC section 9): ``open`` (also after a ``not_met`` verdict, for a
new delivery), ``delivered`` (awaiting the verdict), ``met``, ``overdue`` (its due date passed
while it was neither delivered nor met)."""
Decision = Literal["accept", "reject"]
Role = Literal["admin", "coordinator", "member", "vendor"]
PersonRole = Literal["owner", "approver", "contributor"]
"""A person's role inside an organisation (SPEC section 10): an owner manages the organisation's
people and integration keys and acts for it, an approver acts for it, a contributor drafts and
comments only."""

PRIORITY_RANK: dict[str, int] = {"must": 3, "should": 2, "could": 1}

OptionText = str


class RequirementItem(Frozen):
    """One requirement the coalition may put to the vendor."""

    key: Slug
    title: ShortText
    kind: Kind
    category: Category
    unit: ShortText | None = None
    options: tuple[ShortText, ...] | None = Field(default=None, max_length=50)
    description: LongText = ""
    source: LongText | None = None

    @model_validator(mode="after")
    def _options_fit_kind(self) -> RequirementItem:
        if self.kind == "one_of":
            if not self.options or len(self.options) < 2:
                raise ValueError("options: a one_of item needs at least two options")
            if len(set(self.options)) != len(self.options):
                raise ValueError("options: each option may appear only once")
        elif self.options is not None:
            raise ValueError(f"options: only one_of items have options, not {self.kind} items")
        return self


class Position(Frozen):
    """What one member needs on one item."""

    priority: Priority
    value: ExactNumber | None = None
    accepted: tuple[ShortText, ...] | None = Field(default=None, max_length=50)
    rationale: LongText | None = None

    @model_validator(mode="after")
    def _accepted_not_empty(self) -> Position:
        if self.accepted is not None:
            if not self.accepted:
                raise ValueError("accepted: must name at least one option")
            if len(set(self.accepted)) != len(self.accepted):
                raise ValueError("accepted: each option may appear only once")
        return self


DEFAULT_INCLUSION_SHARE = Fraction(1, 2)
DEFAULT_COVERAGE = Fraction(1)
DEFAULT_ENDORSEMENT_SHARE = Fraction(2, 3)


class Policy(Frozen):
    """How the coalition turns positions into a joint demand and decides on an agreement."""

    inclusion_share: Share = DEFAULT_INCLUSION_SHARE
    coverage: Share = DEFAULT_COVERAGE
    endorsement_share: Share = DEFAULT_ENDORSEMENT_SHARE
    transparent_positions: bool = False
    disclose_support_to_vendor: bool = False


class ItemResponse(Frozen):
    """The vendor's verdict on one item of a published demand version."""

    key: Slug
    verdict: Verdict
    value: ExactNumber | None = None
    option: ShortText | None = None
    comment: LongText | None = None

    @model_validator(mode="after")
    def _counter_has_terms(self) -> ItemResponse:
        if self.verdict != "counter" and (self.value is not None or self.option is not None):
            raise ValueError(f"value/option: only a counter carries terms, not {self.verdict!r}")
        if self.verdict == "counter" and self.value is not None and self.option is not None:
            raise ValueError("a counter carries a value or an option, not both")
        return self


Target = bool | Fraction | tuple[str, ...]
"""An item's joint target (SPEC section 4): ``True`` (boolean), a number (at_most, at_least) or
the sorted options (one_of). The one definition; documents read and write it as ``TargetValue``."""


_DUE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?$")


def _due_text(value: Any) -> Any:
    """A due date is text: ``2027-03-31`` (the end of that day in UTC) or a date-time with its time
    zone (``2027-03-31T17:00:00+02:00``). Numbers (read as Unix times), week dates and the compact
    forms are refused, so that no date is read otherwise than the sender meant."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DUE_TEXT.match(value):
        raise ValueError("a due date is a date (2027-03-31) or a date-time with its time zone (2027-03-31T17:00Z)")
    if len(value) == 10:
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is no date of the calendar") from None
        return datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
    return value


def _in_utc(moment: datetime) -> datetime:
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("the due date is outside the calendar once in UTC") from None


Due = Annotated[AwareDatetime, BeforeValidator(_due_text), AfterValidator(_in_utc)]
"""When a commitment is due: a date-time with its time zone, or a date (the end of that day, UTC);
held in UTC, so every party reads the same text."""


class PlannedCommitment(Frozen):
    """One line of the vendor's action plan (SPEC section 9): a commitment and its due date."""

    key: Slug
    due: Due
    note: LongText | None = None
