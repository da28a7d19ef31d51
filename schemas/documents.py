"""Documents that parties read: the live joint demand, published demand versions, the shared state.

Shares and scores are reported as floats (they are computed exactly); targets and offered values
are exact numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from schemas.common import ExactNumber, Frozen, Identifier, LongText, ShortText, Slug
from schemas.negotiation import Category, Kind, Phase, Policy, Priority, RequirementItem, Verdict

TargetValue = bool | ExactNumber | tuple[str, ...]


class DemandItem(Frozen):
    """One item of the joint demand, as computed from the current positions (SPEC section 4)."""

    key: Slug
    kind: Kind
    included: bool
    priority: Priority | None
    priority_score: float
    support_share: float
    must_share: float
    target: TargetValue | None
    conflict: bool


class JointDemand(Frozen):
    """The live joint demand: coordinator and members only, never the vendor."""

    negotiation_id: Identifier
    sequence: int
    items: tuple[DemandItem, ...]


class PublishedItem(Frozen):
    """An included item frozen into a demand version: its definition and its demand figures."""

    key: Slug
    title: ShortText
    kind: Kind
    category: Category
    unit: ShortText | None = None
    options: tuple[str, ...] | None = None
    priority: Priority
    priority_score: float | None
    """Absent (null) for the vendor unless the policy discloses support."""
    support_share: float | None
    must_share: float | None
    target: TargetValue
    conflict: bool | None
    """Absent (null) for the vendor: whether members' accepted options disagree is theirs."""


SUPPORT_FIGURES = frozenset({"priority_score", "support_share", "must_share"})
"""The figures of a published item that the vendor sees only when the policy discloses support
(SPEC section 1), and that the version hash leaves out: from a hash over them the vendor could
recover them (they are fractions of the total weight: few candidates). The priority score is one
of them because with only must supporters it equals the support share."""

VENDOR_WITHHELD = frozenset({"conflict"})
"""What the vendor never sees of a published item, whatever the policy (SPEC section 1); the
version hash leaves it out too, or the vendor could recover it from the hash (two candidates)."""


class DemandVersion(Frozen):
    """A published, frozen copy of the included items, with the SHA-256 of its canonical JSON."""

    negotiation_id: Identifier
    version: int
    hash: str
    published_at: datetime
    items: tuple[PublishedItem, ...]
    head_hash: str | None = None
    """The head of the negotiation's hash chain at the publication: the ``hash`` of the
    DemandPublished event itself (SPEC 7.1). Absent for the vendor, and for versions published
    before the log was hashed."""


class Offer(Frozen):
    """The vendor's current verdict on an item: its latest answer to it."""

    verdict: Verdict
    value: ExactNumber | None = None
    option: str | None = None
    comment: LongText | None = None
    round: int
    demand_version: int


class StateItem(Frozen):
    key: Slug
    target: TargetValue | None
    offer: Offer | None
    status: Literal["pending", "accepted", "countered", "rejected"]
    settled: bool


class MemberSatisfaction(Frozen):
    organisation_id: Identifier
    name: ShortText
    weight: int
    satisfied: bool
    must_items: int
    satisfied_must_items: int
    unsatisfied_items: tuple[str, ...]


class SharedState(Frozen):
    """The shared negotiation state, as one party may see it (SPEC sections 5 and 8).

    ``cohesion``, ``satisfaction`` and ``ready_to_endorse`` are absent for the vendor, whose
    ``sequence`` is its own counter and whose items' ``settled`` is judged against the published
    target its offer answered (SPEC section 1); a member's ``satisfaction`` holds only itself.
    """

    negotiation_id: Identifier
    phase: Phase
    sequence: int
    demand_version: int | None
    round: int
    items: tuple[StateItem, ...]
    ready_to_endorse: bool | None = None
    """Absent for the vendor, with ``cohesion`` and ``satisfaction``: they come from the live positions."""
    cohesion: float | None = None
    satisfaction: tuple[MemberSatisfaction, ...] | None = None
    head_hash: str | None = None
    """The ``hash`` of the event at ``sequence``: the head of the negotiation's hash chain (SPEC
    7.1). Absent for the vendor, and before the first hashed event."""


class Party(Frozen):
    organisation_id: Identifier
    name: ShortText


class MemberView(Party):
    weight: int


class ClarificationView(Frozen):
    clarification_id: int
    item_key: Slug
    question: str
    answer: str | None
    asked_at: datetime
    answered_at: datetime | None


class NegotiationSummary(Frozen):
    """What a party sees of a negotiation at a glance; ``members`` and ``policy`` not for the vendor."""

    id: Identifier
    title: ShortText
    phase: Phase
    sequence: int
    opened_at: datetime
    updated_at: datetime | None
    coordinator: Party
    vendor: Party
    items: tuple[RequirementItem, ...]
    demand_version: int | None
    round: int
    clarifications: tuple[ClarificationView, ...]
    members: tuple[MemberView, ...] | None = None
    policy: Policy | None = None
    your_role: Literal["coordinator", "member", "vendor"]


class PositionView(Frozen):
    """A member's position as the caller may see it: ``rationale`` only to its author and the coordinator."""

    member_id: Identifier
    member_name: ShortText
    item_key: Slug
    priority: Priority
    value: ExactNumber | None = None
    accepted: tuple[str, ...] | None = None
    rationale: str | None = None
