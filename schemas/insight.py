"""The coordinator's insight: a what-if on the joint demand, and suggestions that raise cohesion.

A what-if is a read with hypothetical changes (a policy, items dropped or added, members'
concessions); nothing it carries is ever an event. Its request is bounded (``MAX_CONCESSIONS``,
``MAX_ITEM_CHANGES``) so that no request can keep the hub busy. The documents name members only
for the coordinator; anybody else gets counts and weight shares (SPEC section 1).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import ExactNumber, Frozen, Identifier, Share, ShortText, Slug
from schemas.documents import DemandItem, TargetValue
from schemas.negotiation import Position, Priority

MAX_CONCESSIONS = 50
"""The most concessions one what-if may try (each costs O(log k) on its item, and its member's
satisfaction is judged again)."""
MAX_ITEM_CHANGES = 500
"""The most items one what-if may drop or add (a negotiation has at most 500 items)."""


class Concession(Frozen):
    """A member's hypothetical change of position: a new position on the item, or (``position``
    null) its position withdrawn. ``member_id`` may be left out by a member: its own."""

    member_id: Identifier | None = None
    item_key: Slug
    position: Position | None = None


class WhatIfRequest(Frozen):
    """``POST …/what-if``: what would the joint demand, cohesion and the members' standing be if …

    Left out, the policy's numbers are today's; ``drop`` leaves included items out of the demand,
    ``add`` includes items the policy would leave out."""

    inclusion_share: Share | None = None
    coverage: Share | None = None
    drop: tuple[Slug, ...] = Field(default=(), max_length=MAX_ITEM_CHANGES)
    add: tuple[Slug, ...] = Field(default=(), max_length=MAX_ITEM_CHANGES)
    concessions: tuple[Concession, ...] = Field(default=(), max_length=MAX_CONCESSIONS)


class TriedPolicy(Frozen):
    """The policy numbers the what-if used (exact, as the policy reads them)."""

    inclusion_share: Share
    coverage: Share


class DemandChange(Frozen):
    """How one item of the would-be demand differs from today's live demand."""

    key: Slug
    change: Literal["enters", "leaves", "retargeted"]
    target_before: TargetValue | None
    target_after: TargetValue | None


class MemberRef(Frozen):
    organisation_id: Identifier
    name: ShortText
    weight: int


class MemberShift(Frozen):
    """A group of members: how many, their share of the coalition's weight, and (coordinator only)
    who they are, in the order they were invited."""

    members: int
    weight_share: float
    names: tuple[MemberRef, ...] | None = None


class WhatIf(Frozen):
    """The answer to a what-if: the would-be demand and its difference from today's, cohesion
    against the vendor's current offers, and whom the would-be demand serves."""

    negotiation_id: Identifier
    sequence: int
    policy: TriedPolicy
    demand: tuple[DemandItem, ...]
    changes: tuple[DemandChange, ...]
    cohesion_today: float
    cohesion: float
    """SPEC 5 over the positions after the concessions, against the vendor's current offers."""
    served_share_today: float
    served_share: float
    """The weight share of members whose every must position the would-be demand, accepted by the
    vendor in full, would satisfy: a must on an item left out leaves its member behind."""
    became_satisfied: MemberShift
    became_unsatisfied: MemberShift
    now_served: MemberShift
    left_behind: MemberShift
    """Served by today's demand, not by the would-be one."""
    not_served: MemberShift
    """Every member the would-be demand leaves behind."""


ConcessionKind = Literal["widen", "relax", "lower"]
"""``widen``: accept one more option (one_of); ``relax``: take the vendor's current offer as the
value or options; ``lower``: make the must a should."""


class SuggestedConcession(Frozen):
    member_id: Identifier
    member_name: ShortText
    item_key: Slug
    kind: ConcessionKind
    priority_before: Priority
    position: Position
    """The position the member would state (its rationale left out)."""


class ConflictSuggestion(Frozen):
    """For a one_of item in conflict: the option fewest considered members would have to accept."""

    item_key: Slug
    option: ShortText
    members: int
    weight_share: float
    concessions: tuple[SuggestedConcession, ...]
    """Empty when more members than ``Suggestions.limits.conflict_members`` would have to concede."""
    target_after: TargetValue
    cohesion_before: float
    cohesion_after: float | None
    text: str


class CohesionSuggestion(Frozen):
    """A member whose few unmet must items keep it unsatisfied, and the concessions that satisfy it."""

    member_id: Identifier
    member_name: ShortText
    weight_share: float
    concessions: tuple[SuggestedConcession, ...]
    cohesion_before: float
    cohesion_after: float
    text: str


class VendorSuggestion(Frozen):
    """The single vendor concession on an item that raises cohesion the most."""

    item_key: Slug
    verdict: Literal["accept", "counter"]
    value: ExactNumber | None = None
    option: ShortText | None = None
    members_gained: int
    members_lost: int
    cohesion_before: float
    cohesion_after: float
    text: str


class SuggestionLimits(Frozen):
    conflict_members: int
    concessions_per_member: int
    coalition_suggestions: int


class Suggestions(Frozen):
    """``GET …/suggestions`` (coordinator): deterministic, each with the cohesion it promises."""

    negotiation_id: Identifier
    sequence: int
    cohesion: float
    conflicts: tuple[ConflictSuggestion, ...]
    coalition: tuple[CohesionSuggestion, ...]
    vendor: tuple[VendorSuggestion, ...]
    limits: SuggestionLimits
