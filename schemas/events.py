"""Events: immutable facts about a negotiation, numbered 1, 2, 3 … without gaps.

Schemas evolve by addition only; a changed meaning gets a new event type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from schemas.commands import ActingPerson
from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.documents import PublishedItem
from schemas.negotiation import (
    CheckVerdict,
    Decision,
    ItemResponse,
    PlannedCommitment,
    Policy,
    Position,
    RequirementItem,
)

ChainHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 in lower-case hex."""


class EventBase(Frozen):
    event_id: Identifier
    negotiation_id: Identifier
    sequence: int = Field(ge=1)
    occurred_at: datetime
    actor_id: Identifier
    """The acting organisation."""
    command_id: Identifier
    """The command that caused this event."""
    acting_person: ActingPerson | None = Field(default=None, exclude_if=lambda person: person is None)
    """Who inside the acting organisation sent the command (None, and absent from the JSON, for an
    integration key and for events written before people existed). Only the acting organisation
    sees it; everybody else sees its digest (``streams.core.chain.sealed``)."""
    salt: str | None = Field(default=None, exclude_if=lambda salt: salt is None)
    """The command's salt (``Actor.salt``): covered by ``hash``, so that the hash of an event a
    reader may not see cannot confirm a guess of it. Absent from the JSON when None (the hub's
    ticks, and events written before it existed), so their hashes are as they were."""
    previous_hash: ChainHash | None = None
    """The ``hash`` of the negotiation's previous event; 64 zeros for the first (SPEC 7.1).
    None only on events written before the log was hashed."""
    hash: ChainHash | None = None
    """SHA-256 of this event's canonical JSON without ``hash`` (``streams.core.chain``)."""


class NegotiationOpened(EventBase):
    type: Literal["NegotiationOpened"] = "NegotiationOpened"
    title: ShortText
    coordinator_name: ShortText
    vendor_id: Identifier
    vendor_name: ShortText
    items: tuple[RequirementItem, ...]
    policy: Policy


class MemberInvited(EventBase):
    type: Literal["MemberInvited"] = "MemberInvited"
    organisation_id: Identifier
    name: ShortText
    weight: Weight


class PolicyChanged(EventBase):
    type: Literal["PolicyChanged"] = "PolicyChanged"
    policy: Policy


class PositionStated(EventBase):
    """The acting member stated (or replaced) its position on an item."""

    type: Literal["PositionStated"] = "PositionStated"
    item_key: Slug
    position: Position


class PositionWithdrawn(EventBase):
    type: Literal["PositionWithdrawn"] = "PositionWithdrawn"
    item_key: Slug


class DemandPublished(EventBase):
    type: Literal["DemandPublished"] = "DemandPublished"
    version: int = Field(ge=1)
    version_hash: str
    """The demand version's hash (SPEC 5), over its terms; ``hash`` is the event's own (SPEC 7.1)."""
    items: tuple[PublishedItem, ...]

    @model_validator(mode="before")
    @classmethod
    def _version_hash_of_old_events(cls, data: Any) -> Any:
        # Written before the log was hashed, the event carried the version's hash as ``hash``
        # (and no ``previous_hash``): read it as the version hash it is.
        if isinstance(data, dict) and "previous_hash" not in data and "version_hash" not in data and "hash" in data:
            data = {**data, "version_hash": data["hash"]}
            del data["hash"]
        return data


class VendorResponded(EventBase):
    type: Literal["VendorResponded"] = "VendorResponded"
    demand_version: int
    round: int
    items: tuple[ItemResponse, ...]


class ClarificationRequested(EventBase):
    type: Literal["ClarificationRequested"] = "ClarificationRequested"
    clarification_id: int
    item_key: Slug
    question: str


class ClarificationAnswered(EventBase):
    type: Literal["ClarificationAnswered"] = "ClarificationAnswered"
    clarification_id: int
    answer: str


class AgreementProposed(EventBase):
    type: Literal["AgreementProposed"] = "AgreementProposed"
    demand_version: int
    round: int


class EndorsementGiven(EventBase):
    """The acting member accepted or rejected the proposed agreement."""

    type: Literal["EndorsementGiven"] = "EndorsementGiven"
    decision: Decision
    comment: LongText | None = None


class AgreementReached(EventBase):
    type: Literal["AgreementReached"] = "AgreementReached"
    accepting_share: float
    rejecting_share: float


class AgreementRejected(EventBase):
    type: Literal["AgreementRejected"] = "AgreementRejected"
    accepting_share: float
    rejecting_share: float


class NegotiationAbandoned(EventBase):
    type: Literal["NegotiationAbandoned"] = "NegotiationAbandoned"
    reason: LongText | None = None


# -- after the agreement (SPEC section 9) -------------------------------------------------------


class CommitmentsPlanned(EventBase):
    """The vendor proposed an action plan (the ``plan``-th of the negotiation); it replaces a plan
    not yet decided on."""

    type: Literal["CommitmentsPlanned"] = "CommitmentsPlanned"
    plan: int = Field(ge=1)
    items: tuple[PlannedCommitment, ...]


class PlanAccepted(EventBase):
    """The coordinator accepted the plan: its due dates hold, the phase is ``implementing``."""

    type: Literal["PlanAccepted"] = "PlanAccepted"
    plan: int


class PlanRejected(EventBase):
    type: Literal["PlanRejected"] = "PlanRejected"
    plan: int
    comment: str


class CommitmentDelivered(EventBase):
    """The vendor reports a commitment done (its ``delivery``-th delivery), with evidence."""

    type: Literal["CommitmentDelivered"] = "CommitmentDelivered"
    item_key: Slug
    delivery: int = Field(ge=1)
    evidence: str


class CommitmentChecked(EventBase):
    """The acting member checked a delivery in its own environment (replacing its earlier check
    of the same delivery). Seen by the coordinator and that member only."""

    type: Literal["CommitmentChecked"] = "CommitmentChecked"
    item_key: Slug
    delivery: int
    verdict: CheckVerdict
    comment: LongText | None = None


class CommitmentVerdictGiven(EventBase):
    """The coordinator's verdict on a delivery: ``met``, or ``not_met`` (open for a new delivery)."""

    type: Literal["CommitmentVerdictGiven"] = "CommitmentVerdictGiven"
    item_key: Slug
    delivery: int
    verdict: CheckVerdict
    comment: LongText | None = None


class CommitmentOverdue(EventBase):
    """A commitment neither delivered nor met by its due date, found by a tick at ``checked_at``."""

    type: Literal["CommitmentOverdue"] = "CommitmentOverdue"
    item_key: Slug
    due: datetime
    checked_at: datetime


class RegressionReported(EventBase):
    """The acting member reports that a met commitment no longer holds."""

    type: Literal["RegressionReported"] = "RegressionReported"
    item_key: Slug
    comment: str


class NegotiationReopened(EventBase):
    """The coordinator reopened the negotiation on these commitments: the phase is
    ``negotiating`` again, and the next demand version holds only these items."""

    type: Literal["NegotiationReopened"] = "NegotiationReopened"
    items: tuple[Slug, ...]
    reason: LongText | None = None


class AgreementFulfilled(EventBase):
    """Every commitment is met: the phase is ``fulfilled``."""

    type: Literal["AgreementFulfilled"] = "AgreementFulfilled"
    commitments: int


Event = Annotated[
    NegotiationOpened
    | MemberInvited
    | PolicyChanged
    | PositionStated
    | PositionWithdrawn
    | DemandPublished
    | VendorResponded
    | ClarificationRequested
    | ClarificationAnswered
    | AgreementProposed
    | EndorsementGiven
    | AgreementReached
    | AgreementRejected
    | NegotiationAbandoned
    | CommitmentsPlanned
    | PlanAccepted
    | PlanRejected
    | CommitmentDelivered
    | CommitmentChecked
    | CommitmentVerdictGiven
    | CommitmentOverdue
    | RegressionReported
    | NegotiationReopened
    | AgreementFulfilled,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
EVENT_TYPES: tuple[str, ...] = tuple(
    cls.model_fields["type"].default
    for cls in (
        NegotiationOpened,
        MemberInvited,
        PolicyChanged,
        PositionStated,
        PositionWithdrawn,
        DemandPublished,
        VendorResponded,
        ClarificationRequested,
        ClarificationAnswered,
        AgreementProposed,
        EndorsementGiven,
        AgreementReached,
        AgreementRejected,
        NegotiationAbandoned,
        CommitmentsPlanned,
        PlanAccepted,
        PlanRejected,
        CommitmentDelivered,
        CommitmentChecked,
        CommitmentVerdictGiven,
        CommitmentOverdue,
        RegressionReported,
        NegotiationReopened,
        AgreementFulfilled,
    )
)
