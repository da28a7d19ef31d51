"""Notices: what an event means for one party, in words it can act on.

A webhook delivery or a live-stream message carries the raw event (cut for the party) and these
notices: for a member, "the vendor countered retention-days with 30; your limit is 14: not met"
and "4 of your 5 must items are now satisfied"; for the coordinator, cohesion moving. The figures
before the event are taken with :func:`figures_before` (``evolve`` changes the state in place),
then :func:`notices` compares them with the state after it.

A notice tells a party only what its view of the event already allows it to see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

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

Param = str | int | float | bool | None
"""A notice's parameter: a JSON scalar (a number is a string, as ``schemas.common.number_to_json`` writes it)."""


def N_(text: str) -> str:
    """Marks an English text for the dashboard's catalogues (``make messages``); translated where shown."""
    return text


@dataclass(frozen=True)
class Phrase:
    """Words with ``{placeholders}``, each filled by a parameter or by another phrase."""

    template: str
    params: Mapping[str, Param | Phrase | tuple[Phrase, ...]] = field(default_factory=dict)

    def render(self, translate: Callable[[str], str] = lambda text: text) -> str:
        """The phrase in words: ``translate`` (gettext) turns each template into the reader's
        language before it is filled; a tuple of phrases is joined with commas."""
        filled: dict[str, Any] = {}
        for name, value in self.params.items():
            if isinstance(value, Phrase):
                filled[name] = value.render(translate)
            elif isinstance(value, tuple):
                filled[name] = ", ".join(part.render(translate) for part in value)
            else:
                filled[name] = value
        words = translate(self.template)
        # A phrase without parameters is a word (a unit, a priority): text, perhaps a party's own
        # (an inline item's unit may hold braces), never a template to fill
        return words.format(**filled) if self.params else words


@dataclass(frozen=True)
class Notice:
    """What an event means for one party: a stable ``code`` and its ``params`` (for programs, in
    webhooks and on the live stream), and the words for people (:func:`phrase`): ``text`` in
    English, translated on the board."""

    code: str
    params: Mapping[str, Param] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return phrase(self.code, self.params).render()


def _say(code: str, **params: Param) -> Notice:
    return Notice(code, params)


_VERDICT_COUNTS = {
    "accept": N_("{n} accepted"),
    "counter": N_("{n} countered"),
    "reject": N_("{n} rejected"),
}


def _amount(p: Mapping[str, Param]) -> Param | Phrase:
    """A number with the item's unit ("30 days"), the unit translated where shown."""
    if not p.get("unit"):
        return p["value"]
    return Phrase(N_("{value} {unit}"), {"value": p["value"], "unit": Phrase(str(p["unit"]))})


def _offer_phrase(p: Mapping[str, Param]) -> Phrase:
    item = p["item"]
    if p["offer"] == "reject":
        return Phrase(N_("The vendor rejected {item}"), {"item": item})
    if p["offer"] == "counter":
        what = p["option"] if p.get("option") is not None else _amount(p)
        return Phrase(N_("The vendor countered {item} with {what}"), {"item": item, "what": what})
    if p.get("value") is not None:
        return Phrase(N_("The vendor accepted {item} at {value}"), {"item": item, "value": _amount(p)})
    if p.get("option") is not None:
        return Phrase(N_("The vendor accepted {item} ({options})"), {"item": item, "options": p["option"]})
    return Phrase(N_("The vendor accepted {item}"), {"item": item})


def _limit_phrase(p: Mapping[str, Param]) -> Phrase:
    kind = p["kind"]
    if kind == "at_most":
        return Phrase(N_("your limit is {limit}"), {"limit": p["limit"]})
    if kind == "at_least":
        return Phrase(N_("your minimum is {limit}"), {"limit": p["limit"]})
    if kind == "one_of":
        return Phrase(N_("you accept {limit}"), {"limit": p["limit"]})
    return Phrase(N_("you need this guarantee"))


def phrase(code: str, p: Mapping[str, Param]) -> Phrase:
    """The words of a notice of ``code`` with ``params`` (English templates, marked for translation)."""
    if code == "negotiation_opened":
        if p.get("coordinator") is not None:
            return Phrase(N_('{coordinator} opened "{title}" with you.'), p)
        return Phrase(N_('"{title}" is open with {count} items.'), p)
    if code == "invited":
        return Phrase(N_('You were invited to "{title}" with weight {weight}.'), p)
    if code == "member_joined":
        return Phrase(N_("{name} joined the coalition with weight {weight}."), p)
    if code == "policy_changed":
        return Phrase(N_("The coordinator changed the policy."), p)
    if code == "position_recorded":
        if p.get("withdrawn"):
            return Phrase(N_("Your position on {item} is withdrawn."), p)
        return Phrase(N_("Your position on {item} is recorded."), p)
    if code == "position_changed":
        if p.get("withdrawn"):
            return Phrase(N_("{name} withdrew {item}."), p)
        return Phrase(N_("{name} stated a {priority} position on {item}."), {**p, "priority": _word(p["priority"])})
    if code == "demand_published":
        return Phrase(N_("Demand version {version} is published with {count} items."), p)
    if code == "round_recorded":
        return Phrase(N_("Your round {round} is recorded ({count} items)."), p)
    if code == "vendor_responded":
        counts = tuple(Phrase(_VERDICT_COUNTS[v], {"n": p[v]}) for v in _VERDICT_COUNTS if p.get(v))
        return Phrase(N_("Round {round}: the vendor answered {count} items ({verdicts})."), {**p, "verdicts": counts})
    if code == "offer_for_you":
        met = Phrase(N_("met") if p["met"] else N_("not met"))
        return Phrase(
            N_("{offer}; {limit}: {met}."), {"offer": _offer_phrase(p), "limit": _limit_phrase(p), "met": met}
        )
    if code == "must_items_satisfied":
        return Phrase(N_("{satisfied} of your {musts} must items are now satisfied."), p)
    if code == "cohesion_changed":
        return Phrase(N_("Cohesion moved from {before} to {now}."), p)
    if code == "clarification_requested":
        if p.get("question") is not None:
            return Phrase(N_('The vendor asks about {item}: "{question}"'), p)
        return Phrase(N_("The vendor asked a question about {item}."), p)
    if code == "clarification_recorded":
        return Phrase(N_("Your question on {item} is recorded."), p)
    if code == "clarification_answered":
        if p.get("yours"):
            return Phrase(N_("Your question on {item} is answered."), p)
        return Phrase(N_("The vendor's question on {item} is answered."), p)
    if code == "endorse_now":
        return Phrase(N_("An agreement on round {round} is proposed: accept or reject it."), p)
    if code == "endorsing":
        if p.get("vendor"):
            return Phrase(N_("The coalition is endorsing your offers of round {round}."), p)
        return Phrase(N_("Endorsement of round {round} has started."), p)
    if code == "endorsement_recorded":
        if p["decision"] == "accept":
            return Phrase(N_("Your accept is recorded."), p)
        return Phrase(N_("Your reject is recorded."), p)
    if code == "endorsement_given":
        if p["decision"] == "accept":
            return Phrase(N_("{name} accepted the proposed agreement."), p)
        return Phrase(N_("{name} rejected the proposed agreement."), p)
    if code == "agreed":
        return Phrase(N_("Agreement reached."), p)
    if code == "agreement_rejected":
        return Phrase(N_("The proposed agreement was rejected; the negotiation goes on."), p)
    if code == "abandoned":
        if p.get("reason"):
            return Phrase(N_("The negotiation was abandoned: {reason}"), p)
        return Phrase(N_("The negotiation was abandoned."), p)
    return _phrase_after_agreement(code, p)


def _word(value: Param) -> Phrase:
    """A word of the core's vocabulary (a priority, a verdict) as a phrase of its own, translated too."""
    return Phrase(str(value).replace("_", " "))


def _phrase_after_agreement(code: str, p: Mapping[str, Param]) -> Phrase:
    if code == "plan_recorded":
        return Phrase(N_("Your plan {plan} is recorded ({count} commitments)."), p)
    if code == "plan_proposed":
        if p.get("first") is not None:
            return Phrase(
                N_("The vendor proposed plan {plan} for {count} commitments, first due {first}: decide on it."), p
            )
        return Phrase(N_("The vendor proposed an action plan for {count} commitments."), p)
    if code == "plan_accepted":
        if p.get("yours"):
            return Phrase(N_("Your plan {plan} is accepted: implementation has started."), p)
        return Phrase(N_("The vendor's plan {plan} is accepted: implementation has started."), p)
    if code == "plan_rejected":
        if p.get("comment") is not None:
            return Phrase(N_('Your plan {plan} was rejected: "{comment}". Plan again.'), p)
        return Phrase(N_("The vendor's plan {plan} was rejected."), p)
    if code == "delivery_recorded":
        return Phrase(N_("Your delivery of {item} is recorded."), p)
    if code == "delivered":
        if p.get("decide"):
            return Phrase(N_("The vendor delivered {item}: weigh the checks and give a verdict."), p)
        return Phrase(N_("The vendor delivered {item}: check it in your own environment."), p)
    if code == "check_recorded":
        return Phrase(N_("Your check of {item} is recorded: {verdict}."), {**p, "verdict": _word(p["verdict"])})
    if code == "checked":
        words = {**p, "verdict": _word(p["verdict"])}
        if p.get("met_share") is not None:
            return Phrase(N_("{name} checked {item}: {verdict} ({met_share} met, {not_met_share} not met)."), words)
        return Phrase(N_("{name} checked {item}: {verdict}."), words)
    if code == "commitment_met":
        return Phrase(N_("{item} is met."), p)
    if code == "commitment_not_met":
        return Phrase(N_("{item} is not met: a new delivery is needed."), p)
    if code == "commitment_overdue":
        return Phrase(N_("{item} is overdue: it was due {due}."), p)
    if code == "regression_recorded":
        return Phrase(N_("Your report that {item} no longer holds is recorded."), p)
    if code == "regression_reported":
        if p.get("name") is not None:
            return Phrase(N_('{name} reports that {item} no longer holds: "{comment}"'), p)
        return Phrase(N_("A member reports that {item} no longer holds."), p)
    if code == "reopened":
        return Phrase(N_("The negotiation is reopened on {items}."), p)
    if code == "fulfilled":
        return Phrase(N_("All {count} commitments are met: the agreement is fulfilled."), p)
    raise ValueError(f"no words for the notice {code!r}")


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


def _limit(kind: str, position: Position) -> dict[str, Param]:
    if kind in ("at_most", "at_least"):
        return {"kind": kind, "limit": _number(position.value)}
    if kind == "one_of":
        return {"kind": kind, "limit": ", ".join(position.accepted or ())}
    return {"kind": kind}


def _offer(state: NegotiationState, key: str) -> dict[str, Param]:
    """The vendor's current offer on the item, as a notice's parameters."""
    current = state.offers[key]
    offer, unit = current.offer, state.items[key].unit
    said: dict[str, Param] = {"item": key, "offer": offer.verdict, "unit": unit}
    if offer.verdict == "counter":
        said |= {"option": offer.option} if offer.option is not None else {"value": _number(offer.value)}
    elif offer.verdict == "accept":
        target = current.answered_target
        if isinstance(target, tuple):
            said["option"] = ", ".join(target)
        elif not isinstance(target, bool):
            said["value"] = _number(target)
    return said


def _cohesion_moved(before: Figures, state: NegotiationState) -> list[Notice]:
    now = cohesion(state) if state.total_weight else 0.0
    if round(now, 4) == round(before.cohesion, 4):
        return []
    return [_say("cohesion_changed", before=_percent(before.cohesion), now=_percent(now))]


def _musts_moved(before: Figures, state: NegotiationState, member_id: str, always: bool = False) -> list[Notice]:
    was = before.must_items.get(member_id, (0, 0))
    now = must_figures(state, member_id)
    if now[1] == 0 or state.round == 0 or (now == was and not always):
        return []  # before the vendor's first answer the count says nothing
    return [_say("must_items_satisfied", satisfied=now[0], musts=now[1])]


def notices(before: Figures, state: NegotiationState, event: Event, viewer: Audience) -> tuple[Notice, ...]:
    """What ``event`` (already applied to ``state``) means for ``viewer``."""
    role, me = viewer.role, viewer.organisation_id
    said: list[Notice] = []
    if isinstance(event, NegotiationOpened):
        if role == "vendor":
            said.append(_say("negotiation_opened", coordinator=event.coordinator_name, title=event.title))
        else:
            said.append(_say("negotiation_opened", title=event.title, count=len(event.items)))
    elif isinstance(event, MemberInvited):
        if event.organisation_id == me:
            said.append(_say("invited", title=state.title, weight=event.weight))
        elif role in ("coordinator", "member"):
            said.append(_say("member_joined", name=event.name, weight=event.weight))
    elif isinstance(event, PolicyChanged):
        if role in ("coordinator", "member"):
            said.append(_say("policy_changed"))
    elif isinstance(event, PositionStated | PositionWithdrawn):
        withdrawn = isinstance(event, PositionWithdrawn)
        if event.actor_id == me:
            said.append(_say("position_recorded", item=event.item_key, withdrawn=withdrawn))
        elif role == "coordinator":
            name = state.members[event.actor_id].name
            priority = event.position.priority if isinstance(event, PositionStated) else None
            said.append(
                _say("position_changed", name=name, item=event.item_key, priority=priority, withdrawn=withdrawn)
            )
    elif isinstance(event, DemandPublished):
        said.append(_say("demand_published", version=event.version, count=len(event.items)))
    elif isinstance(event, VendorResponded):
        verdicts = [response.verdict for response in event.items]
        if role == "vendor":
            said.append(_say("round_recorded", round=event.round, count=len(verdicts)))
        elif role == "coordinator":
            counts: dict[str, Param] = {v: verdicts.count(v) for v in ("accept", "counter", "reject")}
            said.append(Notice("vendor_responded", {"round": event.round, "count": len(verdicts), **counts}))
        else:
            stated = state.positions.get(me, {})
            for response in event.items:
                position = stated.get(response.key)
                if position is None:
                    continue
                kind = state.items[response.key].kind
                met = satisfies(state.offers[response.key], kind, position)
                said.append(
                    Notice("offer_for_you", {**_offer(state, response.key), **_limit(kind, position), "met": met})
                )
            said += _musts_moved(before, state, me, always=bool(said))
    elif isinstance(event, ClarificationRequested):
        if role == "coordinator":
            said.append(_say("clarification_requested", item=event.item_key, question=event.question))
        elif role == "vendor":
            said.append(_say("clarification_recorded", item=event.item_key))
        else:
            said.append(_say("clarification_requested", item=event.item_key))
    elif isinstance(event, ClarificationAnswered):
        key = state.clarifications[event.clarification_id].item_key
        said.append(_say("clarification_answered", item=key, yours=role == "vendor"))
    elif isinstance(event, AgreementProposed):
        if role == "member":
            said.append(_say("endorse_now", round=event.round))
        else:
            said.append(_say("endorsing", round=event.round, vendor=role == "vendor"))
    elif isinstance(event, EndorsementGiven):
        if event.actor_id == me:
            said.append(_say("endorsement_recorded", decision=event.decision))
        elif role == "coordinator":
            name = state.members[event.actor_id].name
            said.append(_say("endorsement_given", name=name, decision=event.decision))
    elif isinstance(event, AgreementReached):
        said.append(_say("agreed"))
    elif isinstance(event, AgreementRejected):
        said.append(_say("agreement_rejected"))
    elif isinstance(event, NegotiationAbandoned):
        said.append(_say("abandoned", reason=event.reason))
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
        if role == "vendor":
            return [_say("plan_recorded", plan=event.plan, count=count)]
        if role == "coordinator":
            first = _day(min(line.due for line in event.items))
            return [_say("plan_proposed", plan=event.plan, count=count, first=first)]
        return [_say("plan_proposed", count=count)]
    if isinstance(event, PlanAccepted):
        return [_say("plan_accepted", plan=event.plan, yours=role == "vendor")]
    if isinstance(event, PlanRejected):
        if role == "vendor":
            return [_say("plan_rejected", plan=event.plan, comment=event.comment)]
        return [_say("plan_rejected", plan=event.plan)]
    if isinstance(event, CommitmentDelivered):
        if role == "vendor":
            return [_say("delivery_recorded", item=event.item_key)]
        return [_say("delivered", item=event.item_key, decide=role == "coordinator")]
    if isinstance(event, CommitmentChecked):
        if event.actor_id == me:
            return [_say("check_recorded", item=event.item_key, verdict=event.verdict)]
        if role == "coordinator":
            name = state.members[event.actor_id].name
            commitment = state.commitments.get(event.item_key)
            tally = check_tally(state, commitment) if commitment is not None else None
            shares: dict[str, Param] = (
                {}
                if tally is None
                else {"met_share": _percent(tally.met_share), "not_met_share": _percent(tally.not_met_share)}
            )
            return [Notice("checked", {"name": name, "item": event.item_key, "verdict": event.verdict, **shares})]
        return []
    if isinstance(event, CommitmentVerdictGiven):
        if event.verdict == "met":
            return [_say("commitment_met", item=event.item_key)]
        return [_say("commitment_not_met", item=event.item_key)]
    if isinstance(event, CommitmentOverdue):
        return [_say("commitment_overdue", item=event.item_key, due=_day(event.due))]
    if isinstance(event, RegressionReported):
        if event.actor_id == me:
            return [_say("regression_recorded", item=event.item_key)]
        if role == "coordinator":
            name = state.members[event.actor_id].name
            return [_say("regression_reported", item=event.item_key, name=name, comment=event.comment)]
        if role == "member":
            return [_say("regression_reported", item=event.item_key)]
        return []
    if isinstance(event, NegotiationReopened):
        return [_say("reopened", items=", ".join(event.items))]
    if isinstance(event, AgreementFulfilled):
        return [_say("fulfilled", count=event.commitments)]
    return []
