"""Properties of the pure core, checked with hypothesis over random coalitions and positions."""

from __future__ import annotations

import copy
import json
import pickle
import uuid
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from schemas.documents import DemandItem, MemberSatisfaction, SharedState, StateItem
from schemas.negotiation import (
    PRIORITY_RANK,
    ItemResponse,
    Policy,
    Position,
    RequirementItem,
)
from streams.codec import encode_state
from streams.core.decider import EVENT_NAMESPACE, Rejection, event_id
from streams.core.offers import satisfies, status_of
from streams.core.state import NegotiationState, replay
from streams.core.views import (
    Audience,
    StateDocumentCache,
    cohesion,
    commitment_views,
    event_view,
    live_demand,
    ready_to_endorse,
    shared_state,
)
from tests.unit.builders import Negotiation, accept, item

OPTIONS = ("NL", "EU", "EEA", "US")
ITEMS = (
    item("audit-rights"),
    item("retention-days", "at_most"),
    item("uptime", "at_least"),
    item("data-location", "one_of", OPTIONS),
)
KIND = {i.key: i.kind for i in ITEMS}

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

priorities = st.sampled_from(["must", "should", "could"])
values = st.integers(0, 40).map(lambda n: Fraction(n, 4))  # quarter steps: exact decimals
# one or two options per position, so that conflicts (and ties among them) are common
accepted_sets = st.lists(st.sampled_from(OPTIONS), min_size=1, max_size=2, unique=True).map(tuple)
shares = st.integers(1, 20).map(lambda k: Fraction(k, 20))
weight_lists = st.lists(st.integers(1, 4), min_size=1, max_size=6)  # small weights: ties happen


def position_on(key: str) -> st.SearchStrategy[Position]:
    kind = KIND[key]
    if kind == "boolean":
        return st.builds(Position, priority=priorities)
    if kind == "one_of":
        return st.builds(Position, priority=priorities, accepted=accepted_sets)
    return st.builds(Position, priority=priorities, value=values)


@st.composite
def coalitions(draw: st.DrawFn) -> tuple[list[int], list[tuple[str, str, Position]]]:
    """Weights of members m1…mn, and at most one position per (member, item)."""
    weights = draw(weight_lists)
    stated = []
    for index in range(len(weights)):
        for key in KIND:
            if draw(st.booleans()):
                stated.append((f"m{index + 1}", key, draw(position_on(key))))
    return weights, stated


def build(weights: list[int], stated: list[tuple[str, str, Position]], policy: Policy | None = None) -> Negotiation:
    n = Negotiation(*ITEMS, policy=policy)
    for index, weight in enumerate(weights):
        n.invite(f"m{index + 1}", weight)
    for member, key, position in stated:
        n.position(member, key, position.priority, position.value, position.accepted)
    return n


# -- the joint demand straight from SPEC section 4, with fractions ---------------------------------


def naive_line(
    requirement: RequirementItem, stated: dict[str, Position], weights: dict[str, int], policy: Policy
) -> DemandItem:
    total = sum(weights.values())

    def share(weight: int) -> Fraction:
        return Fraction(weight, total) if total else Fraction(0)

    def weight_of(members: dict[str, Position]) -> int:
        return sum(weights[m] for m in members)

    musts = {m: p for m, p in stated.items() if p.priority == "must"}
    support_share, must_share = share(weight_of(stated)), share(weight_of(musts))
    included = bool(stated) and (must_share > 0 or support_share >= policy.inclusion_share)
    priority = max((p.priority for p in stated.values()), key=PRIORITY_RANK.__getitem__, default=None)
    score = share(sum(weights[m] * PRIORITY_RANK[p.priority] for m, p in stated.items())) / 3  # Σ w·rank / (3·W)
    target: Any = None
    conflict = False
    if stated:
        considered = {m: p for m, p in stated.items() if p.priority in ("must", "should")} or stated
        needed = policy.coverage * weight_of(considered)
        stated_values = [p.value for p in considered.values()]
        if requirement.kind == "boolean":
            target = True
        elif requirement.kind == "at_most":
            target = max(
                t for t in stated_values if sum(weights[m] for m, p in considered.items() if p.value >= t) >= needed
            )
        elif requirement.kind == "at_least":
            target = min(
                t for t in stated_values if sum(weights[m] for m, p in considered.items() if p.value <= t) >= needed
            )
        else:
            considered = musts or stated
            common = set(requirement.options or ())
            for p in considered.values():
                common &= set(p.accepted or ())
            if common:
                target = tuple(sorted(common))
            else:
                conflict = True
                accepting = {
                    o: sum(weights[m] for m, p in considered.items() if o in (p.accepted or ()))
                    for o in requirement.options or ()
                }
                best = max(accepting.values())
                target = tuple(sorted(o for o, w in accepting.items() if w == best))
    return DemandItem(
        key=requirement.key,
        kind=requirement.kind,
        included=included,
        priority=priority,
        priority_score=float(score),
        support_share=float(support_share),
        must_share=float(must_share),
        target=target,
        conflict=conflict,
    )


def naive_demand(stated: dict[str, dict[str, Position]], weights: dict[str, int], policy: Policy) -> list[DemandItem]:
    return [
        naive_line(
            requirement, {m: ps[requirement.key] for m, ps in stated.items() if requirement.key in ps}, weights, policy
        )
        for requirement in ITEMS
    ]


operations = st.one_of(
    st.tuples(st.just("state"), st.integers(0, 5), st.sampled_from(list(KIND))).flatmap(
        lambda t: st.tuples(st.just(t[0]), st.just(t[1]), st.just(t[2]), position_on(t[2]))
    ),
    st.tuples(st.just("withdraw"), st.integers(0, 5), st.sampled_from(list(KIND))),
    st.tuples(st.just("policy"), shares, shares),
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coalition=coalitions(),
    policy=st.builds(Policy, coverage=shares, inclusion_share=shares),
    script=st.lists(operations, max_size=30),
)
def test_the_incremental_demand_equals_a_naive_recomputation_from_the_spec(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], policy: Policy, script: list[tuple[Any, ...]]
) -> None:
    # Given a coalition with random weights, policy and positions
    weights, stated = coalition
    n = build(weights, stated, policy)
    members = {f"m{i + 1}": w for i, w in enumerate(weights)}
    model: dict[str, dict[str, Position]] = {m: {} for m in members}
    for member, key, position in stated:
        model[member][key] = position
    assert list(live_demand(n.s).items) == naive_demand(model, members, policy)
    # When positions are stated, replaced and withdrawn and the policy changes
    for operation in script:
        if operation[0] == "state":
            member = f"m{operation[1] % len(members) + 1}"
            n.position(member, operation[2], operation[3].priority, operation[3].value, operation[3].accepted)
            model[member][operation[2]] = operation[3]
        elif operation[0] == "withdraw":
            member = f"m{operation[1] % len(members) + 1}"
            if operation[2] not in model[member]:
                continue
            n.withdraw(member, operation[2])
            del model[member][operation[2]]
        else:
            policy = Policy(coverage=operation[1], inclusion_share=operation[2])
            n.policy(coverage=operation[1], inclusion_share=operation[2])
        # Then after every step the demand is the one the spec's text gives
        assert list(live_demand(n.s).items) == naive_demand(model, members, policy)
    assert list(live_demand(n.s).items) == naive_demand(model, members, policy)


@FAST
@given(weights=st.lists(st.integers(1, 3), min_size=2, max_size=6), data=st.data())
def test_a_crowded_one_of_item_equals_the_naive_recomputation(weights: list[int], data: st.DataObject) -> None:
    # Given every member states a position on the one_of item (conflicts and ties are frequent)
    stated = [(f"m{i + 1}", "data-location", data.draw(position_on("data-location"))) for i in range(len(weights))]
    n = build(weights, stated)
    members = {f"m{i + 1}": w for i, w in enumerate(weights)}
    model = {member: {key: position} for member, key, position in stated}
    # Then its line is the one the spec's text gives
    assert n.demand("data-location") == naive_demand(model, members, Policy())[3]


@FAST
@given(coalition=coalitions(), data=st.data(), policy=st.builds(Policy, coverage=shares))
def test_the_demand_does_not_depend_on_the_order_of_positions(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], data: st.DataObject, policy: Policy
) -> None:
    weights, stated = coalition
    shuffled = data.draw(st.permutations(stated))
    assert live_demand(build(weights, stated, policy).s) == live_demand(build(weights, shuffled, policy).s)


@FAST
@given(coalition=coalitions())
def test_at_full_coverage_the_target_meets_every_considered_position(
    coalition: tuple[list[int], list[tuple[str, str, Position]]],
) -> None:
    weights, stated = coalition
    n = build(weights, stated)
    for key, kind in KIND.items():
        on_item = [p for _, k, p in stated if k == key]
        line = n.demand(key)
        if not on_item:
            assert line.target is None
            continue
        if kind == "one_of":
            considered = [p for p in on_item if p.priority == "must"] or on_item
        else:
            considered = [p for p in on_item if p.priority != "could"] or on_item
        for position in considered:
            if kind == "boolean":
                assert line.target is True
            elif kind == "at_most":
                assert line.target <= position.value  # type: ignore[operator]
            elif kind == "at_least":
                assert line.target >= position.value  # type: ignore[operator]
            elif not line.conflict:
                assert set(line.target) <= set(position.accepted or ())  # type: ignore[arg-type]


@FAST
@given(coalition=coalitions(), low=shares, high=shares)
def test_the_target_moves_monotonically_with_coverage(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], low: Fraction, high: Fraction
) -> None:
    low, high = min(low, high), max(low, high)
    weights, stated = coalition
    n = build(weights, stated, Policy(coverage=low))
    lax = {key: n.demand(key).target for key in ("retention-days", "uptime")}
    n.policy(coverage=high)
    strict = {key: n.demand(key).target for key in ("retention-days", "uptime")}
    # a higher coverage never makes the limit laxer
    if lax["retention-days"] is not None:
        assert strict["retention-days"] <= lax["retention-days"]  # type: ignore[operator]
    if lax["uptime"] is not None:
        assert strict["uptime"] >= lax["uptime"]  # type: ignore[operator]


@FAST
@given(coalition=coalitions())
def test_a_vendor_accepting_everything_at_full_coverage_serves_the_whole_coalition(
    coalition: tuple[list[int], list[tuple[str, str, Position]]],
) -> None:
    # Given positions, published at coverage 1, without a one_of conflict
    weights, stated = coalition
    n = build(weights, stated)
    assume(any(line.included for line in live_demand(n.s).items))
    n.publish()
    version = n.s.latest_version
    assert version is not None
    assume(not any(line.conflict for line in version.items))
    # every must item is in the version
    assert {k for _, k, p in stated if p.priority == "must"} <= {line.key for line in version.items}
    # When the vendor accepts every item
    n.respond(*(accept(line.key) for line in version.items))
    # Then everyone is satisfied and the agreement is ready to endorse
    assert cohesion(n.s) == 1.0
    assert ready_to_endorse(n.s) is True


verdicts = st.sampled_from(["accept", "reject", "counter"])
lifecycle = st.one_of(
    st.tuples(st.just("publish")),
    st.tuples(
        st.just("respond"), st.lists(st.tuples(verdicts, values, st.sampled_from(OPTIONS)), min_size=4, max_size=4)
    ),
    st.tuples(st.just("propose")),
    st.tuples(st.just("endorse"), st.integers(0, 5), st.sampled_from(["accept", "reject"])),
)
steps = st.one_of(operations, lifecycle, lifecycle, lifecycle)


def answer(line_key: str, verdict: str, value: Fraction, option: str) -> ItemResponse:
    kind = KIND[line_key]
    if verdict != "counter":
        return ItemResponse(key=line_key, verdict=verdict)  # type: ignore[arg-type]
    if kind == "boolean":
        return accept(line_key)
    if kind == "one_of":
        return ItemResponse(key=line_key, verdict="counter", option=option)
    return ItemResponse(key=line_key, verdict="counter", value=value)


def take(n: Negotiation, weights: list[int], step: tuple[Any, ...]) -> None:
    """One step of a random script; a refused command simply changes nothing."""
    member = f"m{step[1] % len(weights) + 1}" if step[0] in ("state", "withdraw", "endorse") else ""
    try:
        if step[0] == "state":
            n.position(member, step[2], step[3].priority, step[3].value, step[3].accepted)
        elif step[0] == "withdraw":
            n.withdraw(member, step[2])
        elif step[0] == "policy":
            n.policy(coverage=step[1], inclusion_share=step[2])
        elif step[0] == "publish":
            n.publish()
        elif step[0] == "respond":
            if n.s.latest_version is None:
                return
            lines = n.s.latest_version.items
            n.respond(*(answer(line.key, *choice) for line, choice in zip(lines, step[1], strict=False)))
        elif step[0] == "propose":
            n.propose()
        else:
            n.endorse(member, step[2])
    except Rejection:
        pass


@FAST
@given(coalition=coalitions(), script=st.lists(steps, min_size=4, max_size=25), finish=st.booleans())
def test_replaying_the_events_from_scratch_gives_the_same_state(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], script: list[tuple[Any, ...]], finish: bool
) -> None:
    # Given any negotiation driven by a random script (refused commands simply change nothing),
    # half of them pushed on to the end: publish, the vendor accepts all, everyone endorses
    weights, stated = coalition
    n = build(weights, stated)
    if finish:
        script = [
            *script,
            ("publish",),
            ("respond", [("accept", Fraction(0), "NL")] * 4),
            ("propose",),
            *(("endorse", index, "accept") for index in range(len(weights))),
        ]
    documents = StateDocumentCache()
    for step in script:
        take(n, weights, step)
        # the state topic's document, whose rows are drawn again only where events changed them
        topic_document = orjson.loads(encode_state(n.s, documents))
        assert topic_document == json.loads(reference_shared_state(n.s, None).model_dump_json())
    event(f"phase {n.s.phase}, round {min(n.s.round, 2)}")
    # When the events are replayed from nothing
    again = replay(n.events)
    assert again is not None
    # Then the facts and every document are the same
    assert again.facts() == n.s.facts()
    assert live_demand(again) == live_demand(n.s)
    assert shared_state(again) == shared_state(n.s)
    assert again.satisfied_weight == n.s.satisfied_weight
    # And the shared state, assembled from the indexes, is byte for byte the
    # validated document computed from the facts, for every viewer
    # And the vendor's counter numbers exactly the events it may see, without gaps
    vendor_view = Audience("vendor", n.s.vendor_id)
    assert n.s.vendor_sequence == sum(1 for e in n.events if event_view(n.s, e, vendor_view) is not None)
    viewers = [None, Audience("vendor", "vendor"), *(Audience("member", m) for m in n.s.members)]
    for viewer in viewers:
        fast = shared_state(n.s, viewer).model_dump_json()
        assert fast == reference_shared_state(n.s, viewer).model_dump_json()
        assert SharedState.model_validate_json(fast).model_dump_json() == fast
    # And the state topic's document, built as plain data, is that same document, fresh or not
    for state, cache in ((n.s, documents), (again, None), (again, StateDocumentCache())):
        assert SharedState.model_validate_json(encode_state(state, cache)) == shared_state(n.s)


@FAST
@given(coalition=coalitions(), script=st.lists(steps, min_size=4, max_size=25))
def test_drawing_the_state_document_changes_nothing(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], script: list[tuple[Any, ...]]
) -> None:
    # Given any negotiation driven by a random script, its document drawn through a cache after every step
    weights, stated = coalition
    n = build(weights, stated)
    documents = StateDocumentCache()
    for step in script:
        take(n, weights, step)
        facts = copy.deepcopy(n.s.facts())
        before = pickle.dumps(n.s)
        # When the document is drawn twice through the cache, and once whole
        first, second, whole = encode_state(n.s, documents), encode_state(n.s, documents), encode_state(n.s)
        # Then each drawing gives the same bytes
        assert first == second == whole
        # And the state is as it was: its facts, and every index beside them
        assert n.s.facts() == facts
        assert pickle.dumps(n.s) == before


def reference_shared_state(state: NegotiationState, viewer: Audience | None) -> SharedState:
    """The shared state from the facts (positions, offers), every part validated: the oracle."""

    def satisfaction(member_id: str) -> MemberSatisfaction:
        stated = state.positions[member_id]
        musts = [k for k, p in stated.items() if p.priority == "must"]
        unmet = [k for k in state.items if k in musts and not satisfies(state.offers.get(k), KIND[k], stated[k])]
        member = state.members[member_id]
        return MemberSatisfaction(
            organisation_id=member_id,
            name=member.name,
            weight=member.weight,
            satisfied=not unmet,
            must_items=len(musts),
            satisfied_must_items=len(musts) - len(unmet),
            unsatisfied_items=tuple(unmet),
        )

    def meets_published(k: str) -> bool:
        """The vendor's settled: its offer against the target of the version it answered, only."""
        current = state.offers.get(k)
        if current is None or current.offer.verdict == "reject":
            return False
        if current.offer.verdict == "accept":
            return True
        target, offer = current.answered_target, current.offer
        if KIND[k] == "at_most":
            return offer.value is not None and isinstance(target, Fraction) and offer.value <= target
        if KIND[k] == "at_least":
            return offer.value is not None and isinstance(target, Fraction) and offer.value >= target
        return isinstance(target, tuple) and offer.option in target

    vendor = viewer is not None and viewer.role == "vendor"
    targets = state.version_targets[-1] if state.version_targets else {}
    items = tuple(
        StateItem(
            key=k,
            target=targets.get(k),
            offer=state.offers[k].offer if k in state.offers else None,
            status=status_of(state.offers.get(k)),
            settled=meets_published(k) if vendor else state.settled(k),
        )
        for k in state.items
    )
    document: dict[str, Any] = {
        "negotiation_id": state.negotiation_id, "phase": state.phase,
        "sequence": state.vendor_sequence if vendor else state.sequence,
        "demand_version": state.latest_version.version if state.latest_version else None,
        "round": state.round, "items": items,
    }  # fmt: skip
    if not vendor:
        document["ready_to_endorse"] = ready_to_endorse(state)
    weight = sum(m.weight for m in state.members.values())
    satisfied = sum(m.weight for m in state.members.values() if satisfaction(m.organisation_id).satisfied)
    if viewer is None:
        document["satisfaction"] = tuple(satisfaction(m) for m in state.members)
    elif viewer.role == "member":
        document["satisfaction"] = (satisfaction(viewer.organisation_id),)
    if viewer is None or viewer.role == "member":
        document["cohesion"] = float(Fraction(satisfied, weight)) if weight else 0.0
        document["head_hash"] = state.head_hash  # a fact, as the sequence: its chain has its own tests
    if state.commitments:  # after the agreement; the commitments' views have tests of their own
        document["commitments"] = commitment_views(state, viewer or Audience("coordinator", state.coordinator_id))
    return SharedState(**document)


@settings(max_examples=300, deadline=None)
@given(
    negotiation_id=st.text(min_size=1, max_size=64),
    command_id=st.text(min_size=1, max_size=64),
    index=st.integers(0, 10),
)
def test_event_ids_are_the_uuid5_of_negotiation_command_and_index(
    negotiation_id: str, command_id: str, index: int
) -> None:
    # Recovery compares the ids of logged events with those decided again: they must not change
    expected = str(uuid.uuid5(EVENT_NAMESPACE, f"{negotiation_id}/{command_id}/{index}"))
    assert event_id(negotiation_id, command_id, index) == expected
