"""Audience views: the state cut into what the coordinator, one member, or the vendor may see.

SPEC section 1 is the rule. The vendor never sees members' identities, weights, positions or
rationales, nor the live demand: only published versions (support shares only when the policy
discloses them), its own responses, clarifications and the agreement. A member sees its own
positions, the joint demand and aggregate figures; other members' positions only when the policy
makes positions transparent, and even then not their rationales. Whoever is not a party sees
nothing (the edges answer 404).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from schemas.common import number_to_json
from schemas.documents import (
    SUPPORT_FIGURES,
    VENDOR_WITHHELD,
    CheckTally,
    CheckView,
    ClarificationView,
    CommitmentsDocument,
    CommitmentView,
    DemandVersion,
    JointDemand,
    MemberSatisfaction,
    MemberView,
    NegotiationSummary,
    Offer,
    Party,
    PlanView,
    PositionView,
    RegressionView,
    SharedState,
    StateItem,
    VerdictView,
)
from schemas.events import Event
from schemas.negotiation import Policy, Target
from streams.core.aggregation import share
from streams.core.chain import sealed
from streams.core.offers import meets_published_target, status_of
from streams.core.state import VENDOR_VISIBLE, Check, Commitment, NegotiationState


@dataclass(frozen=True)
class Audience:
    """Who is looking: a role in this negotiation and the organisation."""

    role: Literal["coordinator", "member", "vendor"]
    organisation_id: str


def audience(state: NegotiationState, organisation_id: str) -> Audience | None:
    """The organisation's audience in this negotiation, or None when it is not a party."""
    role = state.role_of(organisation_id)
    return None if role is None else Audience(role, organisation_id)  # type: ignore[arg-type]


def sequence_for(state: NegotiationState, viewer: Audience) -> int:
    """The viewer's count of the negotiation's events: the internal sequence, or for the vendor
    its own gapless counter over the events it may see (SPEC section 1)."""
    return state.vendor_sequence if viewer.role == "vendor" else state.sequence


def live_demand(state: NegotiationState) -> JointDemand:
    """SPEC 4: the joint demand, "computed for every item from the current positions" (never the vendor's)."""
    return JointDemand(
        negotiation_id=state.negotiation_id,
        sequence=state.sequence,
        items=tuple(state.aggregates[key].demand_item(state.total_weight, state.policy) for key in state.items),
    )


def included_must_items(state: NegotiationState) -> list[str]:
    return [
        key
        for key, aggregate in state.aggregates.items()
        if aggregate.priority == "must" and aggregate.included(state.total_weight, state.policy)
    ]


def ready_to_endorse(state: NegotiationState) -> bool:
    """SPEC 5: "`ready_to_endorse` when every included must item is settled" (and a version is published)."""
    return bool(state.versions) and all(state.settled(key) for key in included_must_items(state))


def cohesion(state: NegotiationState) -> float:
    """SPEC 5: "`cohesion` = Σw(satisfied members) / W: the share of the coalition that the offer serves"."""
    return float(share(state.satisfied_weight, state.total_weight))


def member_satisfaction(state: NegotiationState, member_id: str) -> MemberSatisfaction:
    member = state.members[member_id]
    must_items = state.must_count[member_id]
    open_items = state.unsatisfied[member_id]
    return MemberSatisfaction(
        organisation_id=member_id,
        name=member.name,
        weight=member.weight,
        satisfied=not open_items,
        must_items=must_items,
        satisfied_must_items=must_items - len(open_items),
        unsatisfied_items=tuple(sorted(open_items, key=state.item_rank.__getitem__)),
    )


def shared_state(state: NegotiationState, viewer: Audience | None = None) -> SharedState:
    """The shared state. ``viewer`` None gives the full document (as the coordinator sees it).

    The vendor's is made of published facts only (SPEC section 1): each item's ``settled`` is
    judged against the published target its offer answered, its ``sequence`` is its own counter,
    and nothing computed from the live positions is in it."""
    targets = state.version_targets[-1] if state.version_targets else {}
    offers = state.offers
    role = "coordinator" if viewer is None else viewer.role
    vendor = role == "vendor"
    items = tuple(
        StateItem(
            key=key,
            target=targets.get(key),
            offer=offers[key].offer if key in offers else None,
            status=status_of(offers.get(key)),
            settled=meets_published_target(offers.get(key), item.kind) if vendor else state.settled(key),
        )
        for key, item in state.items.items()
    )
    document: dict[str, Any] = {
        "negotiation_id": state.negotiation_id,
        "phase": state.phase,
        "sequence": state.vendor_sequence if vendor else state.sequence,
        "demand_version": state.latest_version.version if state.latest_version else None,
        "round": state.round,
        "items": items,
    }
    if role == "coordinator":
        document["ready_to_endorse"] = ready_to_endorse(state)
        document["cohesion"] = cohesion(state)
        document["satisfaction"] = tuple(member_satisfaction(state, m) for m in state.members)
    elif role == "member":
        assert viewer is not None
        document["ready_to_endorse"] = ready_to_endorse(state)
        document["cohesion"] = cohesion(state)
        document["satisfaction"] = (member_satisfaction(state, viewer.organisation_id),)
    if state.commitments:
        document["commitments"] = commitment_views(state, viewer or Audience("coordinator", state.coordinator_id))
    if role != "vendor":
        # Not the vendor's: two successive heads around an event it sees without its support
        # figures would let it try the few candidates for them (see SUPPORT_FIGURES).
        document["head_hash"] = state.head_hash
    return SharedState(**document)


# -- after the agreement (SPEC section 9) ----------------------------------------------------------


def _check_view(state: NegotiationState, member_id: str, check: Check) -> CheckView:
    member = state.members[member_id]
    return CheckView(
        organisation_id=member_id,
        name=member.name,
        weight=member.weight,
        verdict=check.verdict,
        comment=check.comment,
        checked_at=check.at,
    )


def check_tally(state: NegotiationState, commitment: Commitment) -> CheckTally:
    """SPEC 9: the members' checks of the current delivery, weighted by the coalition's weight."""
    met = sum(state.members[m].weight for m, c in commitment.checks.items() if c.verdict == "met")
    not_met = sum(state.members[m].weight for m, c in commitment.checks.items() if c.verdict == "not_met")
    return CheckTally(
        delivery=commitment.deliveries,
        met_share=float(share(met, state.total_weight)),
        not_met_share=float(share(not_met, state.total_weight)),
        checked_share=float(share(met + not_met, state.total_weight)),
        checks=tuple(
            _check_view(state, member_id, commitment.checks[member_id])
            for member_id in state.members
            if member_id in commitment.checks
        ),
    )


def commitment_view(state: NegotiationState, commitment: Commitment, viewer: Audience) -> CommitmentView:
    """The commitment as the viewer may see it: the members' checks and regression reports are the
    coordinator's (every one) and each member's (its own); the vendor sees neither."""
    item = state.items[commitment.key]
    verdict = commitment.verdict
    document: dict[str, Any] = {
        "key": commitment.key,
        "title": item.title,
        "unit": item.unit,
        "target": commitment.target,
        "offer": commitment.offer,
        "status": commitment.status,
        "due": commitment.due,
        "note": commitment.note,
        "deliveries": commitment.deliveries,
        "evidence": commitment.evidence,
        "delivered_at": commitment.delivered_at,
        "verdict": None if verdict is None else VerdictView(**_verdict_fields(verdict)),
        "met_at": commitment.met_at,
        "overdue_since": commitment.overdue_since,
    }
    if viewer.role != "vendor":
        own = viewer.role == "member"
        document["regressions_reported"] = len(commitment.regressions)
        document["regressions"] = tuple(
            RegressionView(
                organisation_id=r.member_id,
                name=state.members[r.member_id].name,
                comment=r.comment,
                reported_at=r.at,
            )
            for r in commitment.regressions
            if not own or r.member_id == viewer.organisation_id
        )
    if viewer.role == "coordinator":
        document["tally"] = check_tally(state, commitment)
    elif viewer.role == "member":
        mine = commitment.checks.get(viewer.organisation_id)
        document["your_check"] = None if mine is None else _check_view(state, viewer.organisation_id, mine)
    return CommitmentView(**document)


def _verdict_fields(verdict: Check) -> dict[str, Any]:
    return {"verdict": verdict.verdict, "comment": verdict.comment, "given_at": verdict.at}


def commitment_views(state: NegotiationState, viewer: Audience) -> tuple[CommitmentView, ...]:
    return tuple(commitment_view(state, c, viewer) for c in state.commitments.values())


def commitments(state: NegotiationState, viewer: Audience) -> CommitmentsDocument:
    """SPEC 9: the agreement's commitments, the plan awaiting a decision and what was reopened."""
    plan = state.plan
    return CommitmentsDocument(
        negotiation_id=state.negotiation_id,
        phase=state.phase,
        plan=None if plan is None else PlanView(plan=plan.number, proposed_at=plan.at, items=plan.items),
        plan_rejection=state.plan_rejection,
        reopened=state.reopened,
        commitments=commitment_views(state, viewer),
    )


def _json_target(target: Target | None) -> Any:
    if isinstance(target, Fraction):
        return number_to_json(target)
    return list(target) if isinstance(target, tuple) else target


def _json_offer(offer: Offer) -> dict[str, Any]:
    return {
        "verdict": offer.verdict,
        "value": None if offer.value is None else number_to_json(offer.value),
        "option": offer.option,
        "comment": offer.comment,
        "round": offer.round,
        "demand_version": offer.demand_version,
    }


def _item_row(state: NegotiationState, key: str) -> dict[str, Any]:
    targets = state.version_targets[-1] if state.version_targets else {}
    current = state.offers.get(key)
    return {
        "key": key,
        "target": _json_target(targets.get(key)),
        "offer": None if current is None else _json_offer(current.offer),
        "status": status_of(current),
        "settled": state.settled(key),
    }


def _member_row(state: NegotiationState, member_id: str) -> dict[str, Any]:
    member, open_items, musts = state.members[member_id], state.unsatisfied[member_id], state.must_count[member_id]
    return {
        "organisation_id": member_id,
        "name": member.name,
        "weight": member.weight,
        "satisfied": not open_items,
        "must_items": musts,
        "satisfied_must_items": musts - len(open_items),
        "unsatisfied_items": sorted(open_items, key=state.item_rank.__getitem__),
    }


@dataclass(slots=True)
class DocumentRows:
    """One negotiation's state document rows as last drawn, and where its state stood then."""

    sequence: int
    position: int
    """The state's ``touches.end`` when drawn: the touches after it are the rows to draw again."""
    items: dict[str, dict[str, Any]]
    members: dict[str, dict[str, Any]]


class StateDocumentCache:
    """The rows of the shared state documents as last drawn, per negotiation; the caller owns it.

    Drawing a negotiation's document again builds only the rows that events touched since the
    last drawing (the state's :class:`~streams.core.state.Touches` say which), so its cost does not
    grow with the number of members and items. The state is only read. A row is replaced, never
    changed, so a document drawn before stays as it was.
    """

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[str, DocumentRows] = {}

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, negotiation_id: object) -> bool:
        return negotiation_id in self._rows

    def forget(self, negotiation_ids: Iterable[str]) -> None:
        """Drop the rows of these negotiations (their state went elsewhere)."""
        for negotiation_id in negotiation_ids:
            self._rows.pop(negotiation_id, None)

    def draw(self, state: NegotiationState) -> dict[str, Any]:
        """The full shared state (as ``shared_state(state)``) as JSON-ready data."""
        rows = self._rows.get(state.negotiation_id)
        touched = None
        if rows is not None and rows.sequence <= state.sequence:
            touched = state.touches.since(rows.position)
        if rows is None or touched is None:
            # Never drawn, or the touches since are no longer kept: every row.
            rows = DocumentRows(
                sequence=state.sequence,
                position=state.touches.end,
                items={key: _item_row(state, key) for key in state.items},
                members={member_id: _member_row(state, member_id) for member_id in state.members},
            )
            self._rows[state.negotiation_id] = rows
        else:
            item_keys: set[str] = set()
            member_ids: set[str] = set()
            every_item = False
            for member, key in touched:
                if member:
                    assert key is not None
                    member_ids.add(key)
                elif key is None:
                    every_item = True
                else:
                    item_keys.add(key)
            for key in state.items if every_item else item_keys:
                rows.items[key] = _item_row(state, key)
            for member_id in member_ids:
                rows.members[member_id] = _member_row(state, member_id)
            rows.sequence, rows.position = state.sequence, state.touches.end
        item_rows, member_rows = rows.items, rows.members
        document = {
            "negotiation_id": state.negotiation_id,
            "phase": state.phase,
            "sequence": state.sequence,
            "demand_version": state.versions[-1].version if state.versions else None,
            "round": state.round,
            "items": [item_rows[key] for key in state.items],
            "ready_to_endorse": ready_to_endorse(state),
            "cohesion": cohesion(state),
            "satisfaction": [member_rows[member_id] for member_id in state.members],
            "head_hash": state.head_hash,
        }
        if state.commitments:  # after the agreement: few events, so drawn whole
            coordinator = Audience("coordinator", state.coordinator_id)
            document["commitments"] = [view.model_dump(mode="json") for view in commitment_views(state, coordinator)]
        return document


def shared_state_data(state: NegotiationState, cache: StateDocumentCache | None = None) -> dict[str, Any]:
    """The full shared state (as ``shared_state(state)``) as JSON-ready data, for the state topic.

    The worker draws it for every negotiation a batch touched, through its ``cache``, which
    builds again only the rows that events touched since the last drawing; without a cache every
    row is built. Either way the state is only read. The property tests check the document against
    the validated one after every step of random negotiations.
    """
    return (StateDocumentCache() if cache is None else cache).draw(state)


def version_view(state: NegotiationState, version: DemandVersion, viewer: Audience) -> DemandVersion:
    """A published version; the vendor sees support shares only if the policy discloses them,
    never the conflict flags, and no head hash (the vendor sees no hash of the chain, see ``shared_state``)."""
    if viewer.role != "vendor":
        return version
    hidden = _vendor_hidden(state.policy)
    return version.model_copy(
        update={"items": tuple(item.model_copy(update=hidden) for item in version.items), "head_hash": None}
    )


def _vendor_hidden(policy: Policy) -> dict[str, Any]:
    """The published item's fields the vendor sees as null: it sees the priority (must/should/
    could), not the figures behind it (unless disclosed), and not whether members disagree."""
    withheld = VENDOR_WITHHELD if policy.disclose_support_to_vendor else SUPPORT_FIGURES | VENDOR_WITHHELD
    return dict.fromkeys(withheld)


def summary(state: NegotiationState, viewer: Audience) -> NegotiationSummary:
    document: dict[str, Any] = {
        "id": state.negotiation_id,
        "title": state.title,
        "phase": state.phase,
        "sequence": sequence_for(state, viewer),
        "opened_at": state.opened_at,
        # the vendor learns no time of member activity
        "updated_at": state.vendor_updated_at if viewer.role == "vendor" else state.updated_at,
        "coordinator": Party(organisation_id=state.coordinator_id, name=state.coordinator_name),
        "vendor": Party(organisation_id=state.vendor_id, name=state.vendor_name),
        "items": tuple(state.items.values()),
        "demand_version": state.latest_version.version if state.latest_version else None,
        "round": state.round,
        "clarifications": tuple(
            ClarificationView(
                clarification_id=c.clarification_id,
                item_key=c.item_key,
                question=c.question,
                answer=c.answer,
                asked_at=c.asked_at,
                answered_at=c.answered_at,
            )
            for c in state.clarifications.values()
        ),
        "your_role": viewer.role,
    }
    if viewer.role != "vendor":
        document["members"] = tuple(
            MemberView(organisation_id=m.organisation_id, name=m.name, weight=m.weight) for m in state.members.values()
        )
        document["policy"] = state.policy
    return NegotiationSummary(**document)


def sees_positions_of(state: NegotiationState, viewer: Audience, member_id: str) -> bool:
    if viewer.role == "coordinator":
        return True
    if viewer.role == "member":
        return member_id == viewer.organisation_id or state.policy.transparent_positions
    return False


def positions(state: NegotiationState, viewer: Audience) -> list[PositionView]:
    """Positions the viewer may see: all (coordinator), its own, or all when transparent (member)."""
    result = []
    for member_id, stated in state.positions.items():
        if not sees_positions_of(state, viewer, member_id):
            continue
        own_or_coordinator = viewer.role == "coordinator" or member_id == viewer.organisation_id
        for key in state.items:
            position = stated.get(key)
            if position is None:
                continue
            result.append(
                PositionView(
                    member_id=member_id,
                    member_name=state.members[member_id].name,
                    item_key=key,
                    priority=position.priority,
                    value=position.value,
                    accepted=position.accepted,
                    rationale=position.rationale if own_or_coordinator else None,
                )
            )
    return result


_MEMBER_CONDUCT = {"PositionStated", "PositionWithdrawn", "EndorsementGiven"}
_MEMBERS_OWN = {"CommitmentChecked", "RegressionReported"}
"""After the agreement, what a member reports for itself, whatever the transparency (SPEC 9)."""


_ENVELOPE = {"event_id", "negotiation_id", "sequence", "occurred_at", "type", "previous_hash", "hash"}


def chain_hashes(
    state: NegotiationState, event: Event, viewer: Audience, data: dict[str, Any]
) -> tuple[str | None, str | None]:
    """(previous_hash, hash) of an event whose ``data`` (``event_view``) the viewer sees, as far as
    it may see them (SPEC 7.1): the coordinator always; the vendor never (it sees a subset of the
    events, some without their support figures); a member when it sees the event's data whole.
    A hash over data with a field left out would let the reader try the few candidates for it
    (who among the members endorsed, with a command id from a guessable idempotency key). The hash
    of an event the reader does not see at all still shows as the next one's ``previous_hash``: the
    command's ``salt`` in it (``Actor.salt``) makes that hash useless for confirming a guess."""
    if viewer.role == "vendor":
        return None, None
    if viewer.role == "member" and sealed(data) != sealed(
        event_view(state, event, Audience("coordinator", state.coordinator_id)) or {}
    ):
        return None, None
    return event.previous_hash, event.hash


def event_view(
    state: NegotiationState, event: Event, viewer: Audience, policy: Policy | None = None
) -> dict[str, Any] | None:
    """The event's data as the viewer may see it, or None when the viewer may not see it at all.

    The returned data is the event's JSON without the envelope (id, sequence, time) and without
    its chain hashes, which the change feed carries beside it (``chain_hashes``). ``policy`` is
    the policy to cut with, the state's by default: a stream replaying the past passes the
    current one, since past events are shown as the viewer may see them under the current
    policy (SPEC section 1).
    """
    return _event_view(state, event, viewer, policy or state.policy)


def _event_view(state: NegotiationState, event: Event, viewer: Audience, policy: Policy) -> dict[str, Any] | None:
    data = event.model_dump(mode="json", exclude=_ENVELOPE)
    if event.actor_id != viewer.organisation_id and "acting_person" in data:
        # Which person acted is the acting organisation's own business (SPEC section 10): others
        # see only the salted digest the hash chain covers; the vendor, which gets no hashes, not even that.
        data = sealed(data)
        if viewer.role == "vendor":
            data.pop("acting_person")
    if viewer.role == "coordinator":
        return data
    if event.type in _MEMBERS_OWN and event.actor_id != viewer.organisation_id:
        # SPEC 9: a member's check and comment are the coordinator's and that member's; of another
        # member's regression report a member learns only which commitment it is about.
        if event.type == "CommitmentChecked" or viewer.role == "vendor":
            return None
        return {"item_key": data["item_key"]}
    if (
        event.actor_id in state.members
        and event.actor_id != viewer.organisation_id
        and (viewer.role == "vendor" or not policy.transparent_positions)
    ):
        # Who acted is itself confidential: an AgreementReached caused by a member's endorsement
        # must not tell the vendor (or, without transparency, other members) who tipped it.
        data.pop("actor_id", None)
        data.pop("command_id", None)
        data.pop("acting_person", None)
        data.pop("salt", None)  # with the cut fields, the salt would help confirm a guess of them
    if viewer.role == "vendor":
        if event.type not in VENDOR_VISIBLE:
            return None
        data.pop("salt", None)  # the vendor gets no hashes, and some of its events are cut
        if event.type == "NegotiationOpened":
            data.pop("policy", None)
        elif event.type == "DemandPublished":
            hidden = _vendor_hidden(policy)
            for item in data["items"]:
                item.update(hidden)
        elif event.type in ("AgreementReached", "AgreementRejected"):
            data.pop("accepting_share", None)
            data.pop("rejecting_share", None)
        return data
    # member
    if event.type in _MEMBER_CONDUCT and event.actor_id != viewer.organisation_id:
        if not policy.transparent_positions:
            return None
        if "position" in data:
            data["position"].pop("rationale", None)
        data.pop("comment", None)
        data.pop("salt", None)
    return data
