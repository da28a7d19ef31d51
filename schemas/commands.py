"""Commands: requests that the negotiation's single writer accepts or rejects.

Every command names the negotiation it is for (the key of the commands topic), carries a
command id chosen by the sender (retries reuse it, so a command takes effect once) and the
acting organisation, authenticated by the edge that accepted the request.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.negotiation import Decision, ItemResponse, PersonRole, Policy, Position, RequirementItem, Role


class ActingPerson(Frozen):
    """The person inside the acting organisation who sent a command (SPEC section 10).

    ``salt`` is 128 random bits chosen per command: the hash chain covers the person only as
    ``chain.person_digest`` of these four fields, which is all that anybody outside the
    organisation sees, so that nobody outside can confirm a guess of who acted.
    """

    id: Identifier
    name: ShortText
    role: PersonRole
    salt: str = Field(pattern=r"^[0-9a-f]{32}$")


class Actor(Frozen):
    """The organisation on whose behalf a command is sent, and the person who sent it (None for
    the organisation's integration key)."""

    organisation_id: Identifier
    role: Role
    name: ShortText
    person: ActingPerson | None = None


class CommandBase(Frozen):
    command_id: Identifier
    negotiation_id: Identifier
    actor: Actor


class OpenNegotiation(CommandBase):
    type: Literal["OpenNegotiation"] = "OpenNegotiation"
    title: ShortText
    vendor_id: Identifier
    vendor_name: ShortText
    items: tuple[RequirementItem, ...] = Field(min_length=1, max_length=500)
    policy: Policy = Policy()


class InviteMember(CommandBase):
    type: Literal["InviteMember"] = "InviteMember"
    organisation_id: Identifier
    name: ShortText
    weight: Weight = 1


class ChangePolicy(CommandBase):
    type: Literal["ChangePolicy"] = "ChangePolicy"
    policy: Policy


class StatePosition(CommandBase):
    type: Literal["StatePosition"] = "StatePosition"
    item_key: Slug
    position: Position


class WithdrawPosition(CommandBase):
    type: Literal["WithdrawPosition"] = "WithdrawPosition"
    item_key: Slug


class PublishDemand(CommandBase):
    type: Literal["PublishDemand"] = "PublishDemand"


class RespondToDemand(CommandBase):
    type: Literal["RespondToDemand"] = "RespondToDemand"
    demand_version: int = Field(strict=True, ge=1)
    items: tuple[ItemResponse, ...] = Field(min_length=1, max_length=500)


class RequestClarification(CommandBase):
    type: Literal["RequestClarification"] = "RequestClarification"
    item_key: Slug
    question: Annotated[str, Field(min_length=1, max_length=4000)]


class AnswerClarification(CommandBase):
    type: Literal["AnswerClarification"] = "AnswerClarification"
    clarification_id: int = Field(strict=True, ge=1)
    answer: Annotated[str, Field(min_length=1, max_length=4000)]


class ProposeAgreement(CommandBase):
    type: Literal["ProposeAgreement"] = "ProposeAgreement"


class Endorse(CommandBase):
    type: Literal["Endorse"] = "Endorse"
    decision: Decision
    comment: LongText | None = None


class Abandon(CommandBase):
    type: Literal["Abandon"] = "Abandon"
    reason: LongText | None = None


Command = Annotated[
    OpenNegotiation
    | InviteMember
    | ChangePolicy
    | StatePosition
    | WithdrawPosition
    | PublishDemand
    | RespondToDemand
    | RequestClarification
    | AnswerClarification
    | ProposeAgreement
    | Endorse
    | Abandon,
    Field(discriminator="type"),
]
