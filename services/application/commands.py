"""The commands a party may send, each as an :class:`Action`: how to build it, and the answer
document it renders from the events it caused. Both doors build their commands here.

Whether the party may send it is not decided here but by the pure core's decider.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from schemas import commands as cmd
from schemas import events as ev
from schemas.documents import ClarificationView, CommitmentsDocument, MemberView, NegotiationSummary, PositionView
from schemas.negotiation import (
    CheckVerdict,
    Decision,
    ItemResponse,
    PlannedCommitment,
    Policy,
    Position,
    RequirementItem,
)
from services.application.actions import Action
from services.application.documents import Abandonment, AgreementProposal, EndorsementResult, VendorResponse
from services.application.hub import negotiation_id_for
from services.application.security import Caller
from services.readmodel.tables import Organisation
from streams.core import views
from streams.core.state import NegotiationState, replay
from streams.core.views import Audience


def open_negotiation(
    caller: Caller,
    title: str,
    vendor: Organisation,
    items: tuple[RequirementItem, ...],
    policy: Policy | None,
) -> Action:
    def build(command_id: str) -> cmd.OpenNegotiation:
        return cmd.OpenNegotiation(
            command_id=command_id,
            negotiation_id=negotiation_id_for(command_id),
            actor=caller.actor(),
            title=title,
            vendor_id=vendor.id,
            vendor_name=vendor.name,
            items=items,
            policy=policy or Policy(),
        )

    def render(events: Sequence[ev.Event], state: NegotiationState) -> NegotiationSummary:
        opened = replay(events[:1])
        assert opened is not None
        return views.summary(opened, Audience("coordinator", caller.organisation_id))

    return Action(build, render, 201)


def invite_member(caller: Caller, negotiation_id: str, member: Organisation, weight: int) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> MemberView:
        event = _only(events, ev.MemberInvited)
        return MemberView(organisation_id=event.organisation_id, name=event.name, weight=event.weight)

    return Action(
        lambda cid: cmd.InviteMember(
            **_envelope(cid, caller, negotiation_id),
            organisation_id=member.id,
            name=member.name,
            weight=weight,
        ),
        render,
        201,
    )


def change_policy(caller: Caller, negotiation_id: str, policy: Policy) -> Action:
    return Action(
        lambda cid: cmd.ChangePolicy(**_envelope(cid, caller, negotiation_id), policy=policy),
        lambda events, state: _only(events, ev.PolicyChanged).policy,
    )


def publish_demand(caller: Caller, negotiation_id: str) -> Action:
    return Action(
        lambda cid: cmd.PublishDemand(**_envelope(cid, caller, negotiation_id)),
        lambda events, state: state.versions[_only(events, ev.DemandPublished).version - 1],
        201,
    )


def answer_clarification(caller: Caller, negotiation_id: str, clarification_id: int, answer: str) -> Action:
    return Action(
        lambda cid: cmd.AnswerClarification(
            **_envelope(cid, caller, negotiation_id),
            clarification_id=clarification_id,
            answer=answer,
        ),
        lambda events, state: _clarification(state, _only(events, ev.ClarificationAnswered).clarification_id),
    )


def propose_agreement(caller: Caller, negotiation_id: str) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> AgreementProposal:
        event = _only(events, ev.AgreementProposed)
        return AgreementProposal(
            negotiation_id=event.negotiation_id,
            phase="endorsing",
            demand_version=event.demand_version,
            round=event.round,
            proposed_at=event.occurred_at,
        )

    return Action(lambda cid: cmd.ProposeAgreement(**_envelope(cid, caller, negotiation_id)), render)


def abandon(caller: Caller, negotiation_id: str, reason: str | None) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> Abandonment:
        event = _only(events, ev.NegotiationAbandoned)
        return Abandonment(
            negotiation_id=event.negotiation_id, phase="abandoned", reason=event.reason, abandoned_at=event.occurred_at
        )

    return Action(
        lambda cid: cmd.Abandon(**_envelope(cid, caller, negotiation_id), reason=reason),
        render,
    )


def state_position(caller: Caller, negotiation_id: str, item_key: str, position: Position) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> PositionView:
        event = _only(events, ev.PositionStated)
        return PositionView(
            member_id=event.actor_id,
            member_name=state.members[event.actor_id].name,
            item_key=event.item_key,
            priority=event.position.priority,
            value=event.position.value,
            accepted=event.position.accepted,
            rationale=event.position.rationale,
        )

    return Action(
        lambda cid: cmd.StatePosition(**_envelope(cid, caller, negotiation_id), item_key=item_key, position=position),
        render,
    )


def withdraw_position(caller: Caller, negotiation_id: str, item_key: str) -> Action:
    return Action(
        lambda cid: cmd.WithdrawPosition(**_envelope(cid, caller, negotiation_id), item_key=item_key),
        lambda events, state: None,
        204,
    )


def endorse(caller: Caller, negotiation_id: str, decision: Decision, comment: str | None) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> EndorsementResult:
        event = _only(events, ev.EndorsementGiven)
        kinds = {type(e) for e in events}
        outcome = "agreed" if ev.AgreementReached in kinds else "rejected" if ev.AgreementRejected in kinds else None
        return EndorsementResult(
            negotiation_id=event.negotiation_id,
            decision=event.decision,
            comment=event.comment,
            given_at=event.occurred_at,
            outcome=outcome,
        )

    return Action(
        lambda cid: cmd.Endorse(**_envelope(cid, caller, negotiation_id), decision=decision, comment=comment),
        render,
        201,
    )


def respond(caller: Caller, negotiation_id: str, demand_version: int, items: Sequence[ItemResponse]) -> Action:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> VendorResponse:
        event = _only(events, ev.VendorResponded)
        return VendorResponse(
            negotiation_id=event.negotiation_id,
            round=event.round,
            demand_version=event.demand_version,
            responded_at=event.occurred_at,
            items=event.items,
        )

    return Action(
        lambda cid: cmd.RespondToDemand(
            **_envelope(cid, caller, negotiation_id),
            demand_version=demand_version,
            items=tuple(items),
        ),
        render,
        201,
    )


def request_clarification(caller: Caller, negotiation_id: str, item_key: str, question: str) -> Action:
    return Action(
        lambda cid: cmd.RequestClarification(
            **_envelope(cid, caller, negotiation_id), item_key=item_key, question=question
        ),
        lambda events, state: _clarification(state, _only(events, ev.ClarificationRequested).clarification_id, False),
        201,
    )


# -- after the agreement (SPEC section 9) --------------------------------------------------------
# Each answers with the commitments as the caller sees them once the command took effect.


def _commitments_for(caller: Caller) -> Callable[[Sequence[ev.Event], NegotiationState], CommitmentsDocument]:
    def render(events: Sequence[ev.Event], state: NegotiationState) -> CommitmentsDocument:
        return views.commitments(state, Audience(caller.role, caller.organisation_id))  # type: ignore[arg-type]

    return render


def plan_commitments(caller: Caller, negotiation_id: str, items: Sequence[PlannedCommitment]) -> Action:
    return Action(
        lambda cid: cmd.PlanCommitments(**_envelope(cid, caller, negotiation_id), items=tuple(items)),
        _commitments_for(caller),
        201,
    )


def accept_plan(caller: Caller, negotiation_id: str) -> Action:
    return Action(lambda cid: cmd.AcceptPlan(**_envelope(cid, caller, negotiation_id)), _commitments_for(caller))


def reject_plan(caller: Caller, negotiation_id: str, comment: str) -> Action:
    return Action(
        lambda cid: cmd.RejectPlan(**_envelope(cid, caller, negotiation_id), comment=comment), _commitments_for(caller)
    )


def deliver(caller: Caller, negotiation_id: str, item_key: str, evidence: str) -> Action:
    return Action(
        lambda cid: cmd.DeliverCommitment(
            **_envelope(cid, caller, negotiation_id), item_key=item_key, evidence=evidence
        ),
        _commitments_for(caller),
        201,
    )


def check(caller: Caller, negotiation_id: str, item_key: str, verdict: CheckVerdict, comment: str | None) -> Action:
    return Action(
        lambda cid: cmd.CheckCommitment(
            **_envelope(cid, caller, negotiation_id), item_key=item_key, verdict=verdict, comment=comment
        ),
        _commitments_for(caller),
        201,
    )


def give_verdict(
    caller: Caller, negotiation_id: str, item_key: str, verdict: CheckVerdict, comment: str | None
) -> Action:
    return Action(
        lambda cid: cmd.GiveVerdict(
            **_envelope(cid, caller, negotiation_id), item_key=item_key, verdict=verdict, comment=comment
        ),
        _commitments_for(caller),
    )


def report_regression(caller: Caller, negotiation_id: str, item_key: str, comment: str) -> Action:
    return Action(
        lambda cid: cmd.ReportRegression(**_envelope(cid, caller, negotiation_id), item_key=item_key, comment=comment),
        _commitments_for(caller),
        201,
    )


def reopen(caller: Caller, negotiation_id: str, items: Sequence[str], reason: str | None) -> Action:
    return Action(
        lambda cid: cmd.Reopen(**_envelope(cid, caller, negotiation_id), items=tuple(items), reason=reason),
        _commitments_for(caller),
    )


def _clarification(state: NegotiationState, clarification_id: int, answered: bool = True) -> ClarificationView:
    """The clarification; not ``answered``: as it was asked (an answer may have followed since)."""
    c = state.clarifications[clarification_id]
    return ClarificationView(
        clarification_id=c.clarification_id,
        item_key=c.item_key,
        question=c.question,
        answer=c.answer if answered else None,
        asked_at=c.asked_at,
        answered_at=c.answered_at if answered else None,
    )


def _envelope(command_id: str, caller: Caller, negotiation_id: str) -> dict[str, Any]:
    """What every command carries: its id, its negotiation, and on whose behalf it is sent."""
    return {"command_id": command_id, "negotiation_id": negotiation_id, "actor": caller.actor()}


def _only(events: Sequence[ev.Event], event_type: type[Any]) -> Any:
    for event in events:
        if isinstance(event, event_type):
            return event
    raise LookupError(f"the command caused no {event_type.__name__}")
