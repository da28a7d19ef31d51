"""Commands: requests that the negotiation's single writer accepts or rejects.

Every command names the negotiation it is for (the key of the commands topic), carries a
command id chosen by the sender (retries reuse it, so a command takes effect once) and the
acting organisation, authenticated by the edge that accepted the request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.negotiation import (
    CheckVerdict,
    Decision,
    ItemResponse,
    PersonRole,
    PlannedCommitment,
    Policy,
    Position,
    RequirementItem,
    Role,
)

Remark = Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]
"""A text that must say something (not only spaces): evidence, a reason for a rejected plan, a
regression."""


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
    salt: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    """128 random bits chosen per command by the door that sent it, recorded in its events (SPEC
    7.1): an event a reader may not see still links the chain through its hash, and the salt makes
    that hash useless for confirming a guess of the event (who checked, endorsed or stated what),
    even when its command id comes from a guessable Idempotency-Key. None for the hub's own ticks."""


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_holds_nul(v) for v in value)
    return False


class CommandBase(Frozen):
    command_id: Identifier
    negotiation_id: Identifier
    actor: Actor

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        # PostgreSQL keeps no NUL in a text: a command carrying one would enter the log and then
        # stop the read model on the way in. Refused here, at every door; events stay as written.
        if _holds_nul(data):
            raise ValueError("a text may not hold the NUL character (U+0000)")
        return data


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


# -- after the agreement (SPEC section 9) -------------------------------------------------------


class PlanCommitments(CommandBase):
    """The vendor's action plan: a due date (in the future) for commitments not yet met."""

    type: Literal["PlanCommitments"] = "PlanCommitments"
    items: tuple[PlannedCommitment, ...] = Field(min_length=1, max_length=500)


class AcceptPlan(CommandBase):
    type: Literal["AcceptPlan"] = "AcceptPlan"


class RejectPlan(CommandBase):
    type: Literal["RejectPlan"] = "RejectPlan"
    comment: Remark


class DeliverCommitment(CommandBase):
    type: Literal["DeliverCommitment"] = "DeliverCommitment"
    item_key: Slug
    evidence: Remark


class CheckCommitment(CommandBase):
    """A member's check of a delivery in its own environment."""

    type: Literal["CheckCommitment"] = "CheckCommitment"
    item_key: Slug
    verdict: CheckVerdict
    comment: LongText | None = None


class GiveVerdict(CommandBase):
    """The coordinator's verdict on a delivery, on the coalition's behalf."""

    type: Literal["GiveVerdict"] = "GiveVerdict"
    item_key: Slug
    verdict: CheckVerdict
    comment: LongText | None = None


class ReportRegression(CommandBase):
    """A member reports that a met commitment no longer holds."""

    type: Literal["ReportRegression"] = "ReportRegression"
    item_key: Slug
    comment: Remark


class Reopen(CommandBase):
    """The coordinator reopens the negotiation on chosen commitments."""

    type: Literal["Reopen"] = "Reopen"
    items: tuple[Slug, ...] = Field(min_length=1, max_length=500)
    reason: LongText | None = None


class Tick(CommandBase):
    """Time, as a command: the hub's scheduler tells a negotiation in implementation what time it
    is, and the decider marks overdue what passed its due date by then. ``now`` is the only clock
    the rule reads, so a replay decides the same."""

    type: Literal["Tick"] = "Tick"
    now: AwareDatetime


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
    | Abandon
    | PlanCommitments
    | AcceptPlan
    | RejectPlan
    | DeliverCommitment
    | CheckCommitment
    | GiveVerdict
    | ReportRegression
    | Reopen
    | Tick,
    Field(discriminator="type"),
]
