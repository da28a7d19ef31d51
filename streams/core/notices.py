"""Notices: what an event means for one party, in words it can act on.

A webhook delivery or a live-stream message carries the raw event (cut for the party) and these
notices: for a member, "the vendor countered retention-days with 30; your limit is 14: not met"
and "4 of your 5 must items are now satisfied"; for the coordinator, cohesion moving. The figures
before the event are taken with :func:`figures_before` (``evolve`` changes the state in place),
then :func:`notices` compares them with the state after it.

A notice tells a party only what its view of the event already allows it to see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from schemas.common import number_to_json
from schemas.events import (
    AgreementFulfilled,
    AgreementProposed,
    AgreementReached,
    AgreementRejected,
    ClarificationAnswered,
    ClarificationRequested,
    CommitmentChecked,
    CommitmentDelivered,
    CommitmentOverdue,
    CommitmentsPlanned,
    CommitmentVerdictGiven,
    DemandPublished,
    EndorsementGiven,
    Event,
    MemberInvited,
    NegotiationAbandoned,
    NegotiationOpened,
    NegotiationReopened,
    PlanAccepted,
    PlanRejected,
    PolicyChanged,
    PositionStated,
    PositionWithdrawn,
    RegressionReported,
    VendorResponded,
)
from schemas.negotiation import Position
from streams.core.offers import satisfies
from streams.core.state import NegotiationState
from streams.core.views import Audience, check_tally, cohesion


@dataclass(frozen=True)
class Notice:
    code: str
    text: str


@dataclass(frozen=True)
class Figures:
    """What a party's notices compare against: cohesion, and each member's satisfied must items."""

    cohesion: float
    must_items: dict[str, tuple[int, int]]
    """member id -> (satisfied must items, must items)."""


def must_figures(state: NegotiationState, member_id: str) -> tuple[int, int]:
    stated = state.positions.get(member_id)
    if not stated:
        return 0, 0
    musts = sum(1 for position in stated.values() if position.priority == "must")
    return musts - len(state.unsatisfied.get(member_id, ())), musts


def figures_before(state: NegotiationState | None, member_ids: Iterable[str]) -> Figures:
    """The figures to keep before applying an event, for these members' notices."""
    if state is None:
        return Figures(0.0, {})
    return Figures(cohesion(state) if state.total_weight else 0.0, {m: must_figures(state, m) for m in member_ids})


def _number(value: Fraction | None) -> str:
    return "?" if value is None else str(number_to_json(value))


def _percent(share: float) -> str:
    return f"{share:.0%}"


def _limit(kind: str, position: Position) -> str:
    if kind == "at_most":
        return f"your limit is {_number(position.value)}"
    if kind == "at_least":
        return f"your minimum is {_number(position.value)}"
    if kind == "one_of":
        return f"you accept {', '.join(position.accepted or ())}"
    return "you need this guarantee"


def _offer_words(state: NegotiationState, key: str) -> str:
    current = state.offers[key]
    offer, unit = current.offer, state.items[key].unit
    suffix = f" {unit}" if unit else ""
    if offer.verdict == "reject":
        return f"the vendor rejected {key}"
    if offer.verdict == "counter":
        what = offer.option if offer.option is not None else f"{_number(offer.value)}{suffix}"
        return f"the vendor countered {key} with {what}"
    target = current.answered_target
    if isinstance(target, bool):
        return f"the vendor accepted {key}"
    if isinstance(target, tuple):
        return f"the vendor accepted {key} ({', '.join(target)})"
    return f"the vendor accepted {key} at {_number(target)}{suffix}"


def _cohesion_moved(before: Figures, state: NegotiationState) -> list[Notice]:
    now = cohesion(state) if state.total_weight else 0.0
    if round(now, 4) == round(before.cohesion, 4):
        return []
    return [Notice("cohesion_changed", f"Cohesion moved from {_percent(before.cohesion)} to {_percent(now)}.")]


def _musts_moved(before: Figures, state: NegotiationState, member_id: str, always: bool = False) -> list[Notice]:
    was = before.must_items.get(member_id, (0, 0))
    now = must_figures(state, member_id)
    if now[1] == 0 or state.round == 0 or (now == was and not always):
        return []  # before the vendor's first answer the count says nothing
    return [Notice("must_items_satisfied", f"{now[0]} of your {now[1]} must items are now satisfied.")]


def notices(before: Figures, state: NegotiationState, event: Event, viewer: Audience) -> tuple[Notice, ...]:
    """What ``event`` (already applied to ``state``) means for ``viewer``."""
    role, me = viewer.role, viewer.organisation_id
    said: list[Notice] = []
    if isinstance(event, NegotiationOpened):
        if role == "vendor":
            said.append(Notice("negotiation_opened", f'{event.coordinator_name} opened "{event.title}" with you.'))
        else:
            said.append(Notice("negotiation_opened", f'"{event.title}" is open with {len(event.items)} items.'))
    elif isinstance(event, MemberInvited):
        if event.organisation_id == me:
            said.append(Notice("invited", f'You were invited to "{state.title}" with weight {event.weight}.'))
        elif role in ("coordinator", "member"):
            said.append(Notice("member_joined", f"{event.name} joined the coalition with weight {event.weight}."))
    elif isinstance(event, PolicyChanged):
        if role in ("coordinator", "member"):
            said.append(Notice("policy_changed", "The coordinator changed the policy."))
    elif isinstance(event, PositionStated | PositionWithdrawn):
        if event.actor_id == me:
            verb = "is recorded" if isinstance(event, PositionStated) else "is withdrawn"
            said.append(Notice("position_recorded", f"Your position on {event.item_key} {verb}."))
        elif role == "coordinator":
            name = state.members[event.actor_id].name
            what = (
                f"stated a {event.position.priority} position on" if isinstance(event, PositionStated) else "withdrew"
            )
            said.append(Notice("position_changed", f"{name} {what} {event.item_key}."))
    elif isinstance(event, DemandPublished):
        said.append(
            Notice("demand_published", f"Demand version {event.version} is published with {len(event.items)} items.")
        )
    elif isinstance(event, VendorResponded):
        verdicts = [response.verdict for response in event.items]
        if role == "vendor":
            said.append(Notice("round_recorded", f"Your round {event.round} is recorded ({len(verdicts)} items)."))
        elif role == "coordinator":
            counts = ", ".join(f"{verdicts.count(v)} {v}ed" for v in ("accept", "counter", "reject") if v in verdicts)
            said.append(
                Notice(
                    "vendor_responded", f"Round {event.round}: the vendor answered {len(verdicts)} items ({counts})."
                )
            )
        else:
            stated = state.positions.get(me, {})
            for response in event.items:
                position = stated.get(response.key)
                if position is None:
                    continue
                kind = state.items[response.key].kind
                met = satisfies(state.offers[response.key], kind, position)
                verdict = "met" if met else "not met"
                words = _offer_words(state, response.key)
                said.append(
                    Notice("offer_for_you", f"{words[0].upper()}{words[1:]}; {_limit(kind, position)}: {verdict}.")
                )
            said += _musts_moved(before, state, me, always=bool(said))
    elif isinstance(event, ClarificationRequested):
        if role == "coordinator":
            said.append(
                Notice("clarification_requested", f'The vendor asks about {event.item_key}: "{event.question}"')
            )
        elif role == "vendor":
            said.append(Notice("clarification_recorded", f"Your question on {event.item_key} is recorded."))
        else:
            said.append(Notice("clarification_requested", f"The vendor asked a question about {event.item_key}."))
    elif isinstance(event, ClarificationAnswered):
        key = state.clarifications[event.clarification_id].item_key
        whose = "Your question" if role == "vendor" else "The vendor's question"
        said.append(Notice("clarification_answered", f"{whose} on {key} is answered."))
    elif isinstance(event, AgreementProposed):
        if role == "member":
            said.append(Notice("endorse_now", f"An agreement on round {event.round} is proposed: accept or reject it."))
        elif role == "vendor":
            said.append(Notice("endorsing", f"The coalition is endorsing your offers of round {event.round}."))
        else:
            said.append(Notice("endorsing", f"Endorsement of round {event.round} has started."))
    elif isinstance(event, EndorsementGiven):
        if event.actor_id == me:
            said.append(Notice("endorsement_recorded", f"Your {event.decision} is recorded."))
        elif role == "coordinator":
            name = state.members[event.actor_id].name
            said.append(Notice("endorsement_given", f"{name} {event.decision}ed the proposed agreement."))
    elif isinstance(event, AgreementReached):
        said.append(Notice("agreed", "Agreement reached."))
    elif isinstance(event, AgreementRejected):
        said.append(Notice("agreement_rejected", "The proposed agreement was rejected; the negotiation goes on."))
    elif isinstance(event, NegotiationAbandoned):
        reason = f": {event.reason}" if event.reason else "."
        said.append(Notice("abandoned", f"The negotiation was abandoned{reason}"))
    else:
        said += _after_agreement(state, event, viewer)
    if role == "coordinator":
        said += _cohesion_moved(before, state)
    elif role == "member" and not isinstance(event, VendorResponded):
        said += _musts_moved(before, state, me)
    return tuple(said)


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _after_agreement(state: NegotiationState, event: Event, viewer: Audience) -> list[Notice]:
    """SPEC 9: members and the coordinator are told of plans, deliveries, verdicts, overdue items
    and regressions; the vendor of plan decisions, verdicts and overdue items (and its own acts)."""
    role, me = viewer.role, viewer.organisation_id
    if isinstance(event, CommitmentsPlanned):
        count = len(event.items)
        first = _day(min(line.due for line in event.items))
        if role == "vendor":
            return [Notice("plan_recorded", f"Your plan {event.plan} is recorded ({count} commitments).")]
        if role == "coordinator":
            text = f"The vendor proposed plan {event.plan} for {count} commitments, first due {first}: decide on it."
            return [Notice("plan_proposed", text)]
        return [Notice("plan_proposed", f"The vendor proposed an action plan for {count} commitments.")]
    if isinstance(event, PlanAccepted):
        whose = "Your plan" if role == "vendor" else "The vendor's plan"
        return [Notice("plan_accepted", f"{whose} {event.plan} is accepted: implementation has started.")]
    if isinstance(event, PlanRejected):
        if role == "vendor":
            return [Notice("plan_rejected", f'Your plan {event.plan} was rejected: "{event.comment}". Plan again.')]
        return [Notice("plan_rejected", f"The vendor's plan {event.plan} was rejected.")]
    if isinstance(event, CommitmentDelivered):
        if role == "vendor":
            return [Notice("delivery_recorded", f"Your delivery of {event.item_key} is recorded.")]
        if role == "coordinator":
            return [Notice("delivered", f"The vendor delivered {event.item_key}: weigh the checks and give a verdict.")]
        return [Notice("delivered", f"The vendor delivered {event.item_key}: check it in your own environment.")]
    if isinstance(event, CommitmentChecked):
        verdict = event.verdict.replace("_", " ")
        if event.actor_id == me:
            return [Notice("check_recorded", f"Your check of {event.item_key} is recorded: {verdict}.")]
        if role == "coordinator":
            name = state.members[event.actor_id].name
            commitment = state.commitments.get(event.item_key)
            tally = check_tally(state, commitment) if commitment is not None else None
            figures = (
                "" if tally is None else f" ({_percent(tally.met_share)} met, {_percent(tally.not_met_share)} not met)"
            )
            return [Notice("checked", f"{name} checked {event.item_key}: {verdict}{figures}.")]
        return []
    if isinstance(event, CommitmentVerdictGiven):
        if event.verdict == "met":
            return [Notice("commitment_met", f"{event.item_key} is met.")]
        return [Notice("commitment_not_met", f"{event.item_key} is not met: a new delivery is needed.")]
    if isinstance(event, CommitmentOverdue):
        return [Notice("commitment_overdue", f"{event.item_key} is overdue: it was due {_day(event.due)}.")]
    if isinstance(event, RegressionReported):
        if event.actor_id == me:
            return [Notice("regression_recorded", f"Your report that {event.item_key} no longer holds is recorded.")]
        if role == "coordinator":
            name = state.members[event.actor_id].name
            return [
                Notice(
                    "regression_reported", f'{name} reports that {event.item_key} no longer holds: "{event.comment}"'
                )
            ]
        if role == "member":
            return [Notice("regression_reported", f"A member reports that {event.item_key} no longer holds.")]
        return []
    if isinstance(event, NegotiationReopened):
        return [Notice("reopened", f"The negotiation is reopened on {', '.join(event.items)}.")]
    if isinstance(event, AgreementFulfilled):
        return [Notice("fulfilled", f"All {event.commitments} commitments are met: the agreement is fulfilled.")]
    return []
