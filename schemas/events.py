"""Events: immutable facts about a negotiation, numbered 1, 2, 3 … without gaps.

Schemas evolve by addition only; a changed meaning gets a new event type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.documents import PublishedItem
from schemas.negotiation import Decision, ItemResponse, Policy, Position, RequirementItem


class EventBase(Frozen):
    event_id: Identifier
    negotiation_id: Identifier
    sequence: int = Field(ge=1)
    occurred_at: datetime
    actor_id: Identifier
    """The acting organisation."""
    command_id: Identifier
    """The command that caused this event."""


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
    hash: str
    items: tuple[PublishedItem, ...]


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
    | NegotiationAbandoned,
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
    )
)
