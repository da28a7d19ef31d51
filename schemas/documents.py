"""Documents that parties read: the live joint demand, published demand versions, the shared state.

Shares and scores are reported as floats (they are computed exactly); targets and offered values
are exact numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from schemas.common import ExactNumber, Frozen, Identifier, LongText, ShortText, Slug
from schemas.negotiation import (
    Category,
    CheckVerdict,
    CommitmentStatus,
    Kind,
    Phase,
    PlannedCommitment,
    Policy,
    Priority,
    RequirementItem,
    Verdict,
)

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


class CheckView(Frozen):
    """A member's check of a delivery (SPEC 9): the coordinator sees every member's, a member its own."""

    organisation_id: Identifier
    name: ShortText
    weight: int
    verdict: CheckVerdict
    comment: LongText | None = None
    checked_at: datetime


class CheckTally(Frozen):
    """The members' checks of the current delivery, weighted (the coordinator's only): the shares
    are of the coalition's whole weight, so ``checked_share`` says how much of it has checked."""

    delivery: int
    met_share: float
    not_met_share: float
    checked_share: float
    checks: tuple[CheckView, ...]


class VerdictView(Frozen):
    verdict: CheckVerdict
    comment: LongText | None = None
    given_at: datetime


class RegressionView(Frozen):
    """A member's report that a met commitment no longer holds: the coordinator sees every one,
    a member its own."""

    organisation_id: Identifier
    name: ShortText
    comment: str
    reported_at: datetime


class CommitmentView(Frozen):
    """One commitment of the agreement and how it stands, as one party may see it (SPEC 9).

    The vendor sees its terms, due date, deliveries and the coordinator's verdicts; not the
    members' checks nor their regression reports (``tally``, ``your_check``, ``regressions`` and
    ``regressions_reported`` are absent for it)."""

    key: Slug
    title: ShortText
    unit: ShortText | None = None
    target: TargetValue
    offer: Offer
    status: CommitmentStatus
    due: datetime | None
    note: LongText | None = None
    deliveries: int
    evidence: str | None = None
    delivered_at: datetime | None = None
    verdict: VerdictView | None = None
    """The coordinator's latest verdict; ``not_met`` on an open commitment: a new delivery is awaited."""
    met_at: datetime | None = None
    overdue_since: datetime | None = None
    regressions_reported: int | None = None
    regressions: tuple[RegressionView, ...] | None = None
    tally: CheckTally | None = None
    your_check: CheckView | None = None


class PlanView(Frozen):
    """The vendor's action plan awaiting the coordinator's decision."""

    plan: int
    proposed_at: datetime
    items: tuple[PlannedCommitment, ...]


class CommitmentsDocument(Frozen):
    """``GET …/commitments``: the agreement's commitments, the plan awaiting a decision, and
    what is being negotiated again."""

    negotiation_id: Identifier
    phase: Phase
    plan: PlanView | None = None
    plan_rejection: str | None = None
    """The coordinator's comment on the last plan it rejected (until the next plan)."""
    reopened: tuple[str, ...] = ()
    commitments: tuple[CommitmentView, ...]


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
    commitments: tuple[CommitmentView, ...] | None = Field(default=None, exclude_if=lambda c: c is None)
    """After the agreement (SPEC 9): its commitments as the party may see them; left out before."""


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


# -- the explanation of the joint demand (SPEC section 4.1) ----------------------------------------

Considered = Literal["must_and_should", "must", "all"]


class ExactShare(Frozen):
    """An exact figure twice: as the fraction it is (``"5/12"``) and as a float."""

    fraction: str = Field(pattern=r"^-?\d+/\d+$")
    value: float


class InclusionTest(Frozen):
    """``included`` = ``must_share > 0`` or ``support_share >= inclusion_share``, with its figures."""

    total_weight: int
    """W: the weight of all members of the negotiation."""
    supporter_weight: int
    must_weight: int
    support_share: ExactShare
    must_share: ExactShare
    inclusion_share: ExactShare
    included: bool
    because: Literal["must", "support"] | None
    """Why it is included: a must position (``must_share > 0``) or enough support; null when it is not."""


class PriorityCount(Frozen):
    priority: Priority
    positions: int
    weight: int


class PriorityExplanation(Frozen):
    """How the priority arose: the positions and their weight per priority, and the score."""

    priority: Priority | None
    counts: tuple[PriorityCount, ...]
    priority_score: ExactShare
    """Σ w·rank / (3·W), rank must=3, should=2, could=1."""


class ConsideredPosition(Frozen):
    """A position the target is computed over. Who holds it only for the coordinator, for the
    member itself, or when positions are transparent; never its rationale."""

    member_id: Identifier | None = None
    member_name: ShortText | None = None
    priority: Priority
    weight: int
    value: ExactNumber | None = None
    accepted: tuple[str, ...] | None = None


class CurvePoint(Frozen):
    """One distinct stated value of an at_most / at_least item and the considered weight behind it."""

    value: ExactNumber
    weight: int
    """The considered weight stated at exactly this value."""
    cumulative: int
    """at_most: Σw(considered with value >= this value); at_least: Σw(considered with value <= it)."""
    reaches: bool
    """Whether ``cumulative`` reaches q·C."""


class OptionTally(Frozen):
    """one_of: how many considered positions accept the option, and their weight."""

    option: str
    positions: int
    weight: int


class TargetDerivation(Frozen):
    """How the target follows from the considered positions (SPEC section 4)."""

    considered: Considered
    positions: tuple[ConsideredPosition, ...]
    considered_weight: int
    """C: the weight sum of the considered positions."""
    coverage: ExactShare | None = None
    """q (at_most, at_least)."""
    threshold: ExactShare | None = None
    """q·C (at_most, at_least)."""
    curve: tuple[CurvePoint, ...] | None = None
    """at_most / at_least: every distinct considered value, ascending, with its cumulative weight."""
    intersection: tuple[str, ...] | None = None
    """one_of: the options every considered position accepts (empty: a conflict)."""
    tally: tuple[OptionTally, ...] | None = None
    """one_of: per option (in the item's order) the considered positions accepting it."""


class ItemExplanation(Frozen):
    """Why one item of the joint demand is what it is; ``included``, ``priority``, ``target`` and
    ``conflict`` are the demand's own."""

    key: Slug
    kind: Kind
    included: bool
    inclusion: InclusionTest
    priority: PriorityExplanation
    target: TargetValue | None
    conflict: bool
    derivation: TargetDerivation | None
    """Null for an item without supporters: it has no target."""


class DemandExplanation(Frozen):
    """The live joint demand explained (SPEC section 4.1): coordinator and members only."""

    negotiation_id: Identifier
    sequence: int
    items: tuple[ItemExplanation, ...]
