"""Properties of the commitments after the agreement (SPEC section 9), checked with hypothesis
over random coalitions and random scripts of plans, deliveries, checks, verdicts, ticks,
regressions and reopenings."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import orjson
from hypothesis import event, given
from hypothesis import strategies as st

from schemas.commands import Tick
from schemas.negotiation import Position
from streams.codec import encode_state
from streams.core.decider import Rejection, overdue_commitments
from streams.core.notices import figures_before, notices
from streams.core.state import NegotiationState, evolve, replay
from streams.core.views import (
    Audience,
    StateDocumentCache,
    check_tally,
    commitments,
    event_view,
    shared_state,
    summary,
)
from tests.unit.builders import HUB, NOW, Negotiation, accept, item
from tests.unit.test_properties import FAST, ITEMS, OPTIONS, answer, reference_shared_state, values, verdicts

KEYS = [i.key for i in ITEMS]
MINUTE = timedelta(minutes=1)


def agreed(weights: list[int], responses: list[tuple[str, Fraction, str]]) -> Negotiation:
    """Members m1…mn of these weights, each with a must position on every item; the vendor answers
    the items as drawn (the first always accepted, so there is a commitment) and all endorse."""
    n = Negotiation(*ITEMS)
    for index, weight in enumerate(weights):
        n.invite(f"m{index + 1}", weight)
    for member in n.s.members:
        n.position(member, "audit-rights").position(member, "retention-days", value=Fraction(30))
        n.position(member, "uptime", value=Fraction(99)).position(member, "data-location", accepted=OPTIONS[:2])
    n.publish()
    n.respond(accept(KEYS[0]), *(answer(key, *choice) for key, choice in zip(KEYS[1:], responses, strict=False)))
    n.propose()
    for member in list(n.s.members):
        if n.s.phase == "endorsing":
            n.endorse(member, "accept")
    assert n.s.phase == "agreed"
    return n


coalition_weights = st.lists(st.integers(1, 3), min_size=1, max_size=4)
vendor_answers = st.lists(st.tuples(verdicts, values, st.sampled_from(OPTIONS)), min_size=3, max_size=3)
keys = st.integers(0, 4)
"""A commitment by its place, or past the last one any item (a rejected one is no commitment)."""
members = st.integers(0, 3)
check_verdicts = st.sampled_from(["met", "not_met"])
step = st.one_of(
    st.tuples(st.just("plan"), st.lists(st.integers(1, 40), min_size=4, max_size=4)),
    st.tuples(st.just("accept")),
    st.tuples(st.just("reject")),
    st.tuples(st.just("deliver"), keys),
    st.tuples(st.just("deliver"), keys),
    st.tuples(st.just("check"), members, keys, check_verdicts),
    st.tuples(st.just("check"), members, keys, check_verdicts),
    st.tuples(st.just("verdict"), keys, check_verdicts),
    st.tuples(st.just("verdict"), keys, check_verdicts),
    st.tuples(st.just("advance"), st.integers(0, 40 * 24 * 60)),
    # the hub's clock moves on by minutes, or by a month, past the plans' usual due dates
    st.tuples(st.just("tick"), st.sampled_from([0, 1, 60, 24 * 60, 31 * 24 * 60, 41 * 24 * 60])),
    st.tuples(st.just("regress"), members, keys),
    st.tuples(st.just("reopen"), st.lists(st.sampled_from(KEYS), min_size=1, max_size=2, unique=True)),
    st.tuples(st.just("renegotiate"), vendor_answers),
)


def take(n: Negotiation, step: tuple[Any, ...]) -> None:
    """One step of a random script; a refused command simply changes nothing."""
    member_ids = list(n.s.members)
    member = member_ids[step[1] % len(member_ids)] if step[0] in ("check", "regress") else ""

    def key(index: int) -> str:
        promised = list(n.s.commitments)
        return promised[index] if index < len(promised) else KEYS[index % len(KEYS)]

    try:
        if step[0] == "plan":
            # every commitment not yet dated (the plan needs those) and, now and then, some that are
            undated = [k for k, c in n.s.commitments.items() if c.status in ("open", "overdue")]
            if undated:
                n.plan({key: days for key, days in zip(undated, step[1], strict=False)})
        elif step[0] == "accept":
            n.accept_plan()
        elif step[0] == "reject":
            n.reject_plan("Sooner, please")
        elif step[0] == "deliver":
            n.deliver(key(step[1]))
        elif step[0] == "check":
            n.check(member, key(step[2]), step[3])
        elif step[0] == "verdict":
            n.verdict(key(step[1]), step[2])
        elif step[0] == "advance":
            n.at(n.context.now + step[1] * MINUTE)
        elif step[0] == "tick":  # the hub's clock moved on
            n.at(n.context.now + step[1] * MINUTE).tick(n.context.now + step[1] * MINUTE)
        elif step[0] == "regress":
            n.regress(member, key(step[2]))
        elif step[0] == "reopen":
            n.reopen(*step[1])
        else:  # the reopened items published, answered as drawn, proposed and endorsed by all
            n.publish()
            latest = n.s.latest_version
            assert latest is not None
            lines = [line.key for line in latest.items]
            n.respond(*(answer(key, *choice) for key, choice in zip(lines, step[1], strict=False)))
            n.propose()
            for member_id in member_ids:
                n.endorse(member_id, "accept")
    except Rejection:
        pass


def viewers(state: NegotiationState) -> list[Audience]:
    return [
        Audience("coordinator", state.coordinator_id),
        Audience("vendor", state.vendor_id),
        *(Audience("member", m) for m in state.members),
    ]


@FAST
@given(
    weights=coalition_weights,
    responses=vendor_answers,
    start=st.sampled_from(["agreed", "implementing", "delivered", "fulfilled"]),
    script=st.lists(step, min_size=5, max_size=40),
)
def test_replaying_a_lifecycles_events_gives_the_same_state_and_the_same_views(
    weights: list[int], responses: list[tuple[str, Fraction, str]], start: str, script: list[tuple[Any, ...]]
) -> None:
    # Given any agreement (its plan accepted, everything delivered or even met, or not), carried
    # out by a random script (refused commands simply change nothing)
    n = agreed(weights, responses)
    agreed_at = n.s.sequence
    if start != "agreed":
        n.plan({key: 1 + place for place, key in enumerate(n.s.commitments)}).accept_plan()  # due in days
    for key in list(n.s.commitments) if start in ("delivered", "fulfilled") else ():
        n.deliver(key)
        if start == "fulfilled":
            n.verdict(key)
    documents = StateDocumentCache()
    for action in script:
        take(n, action)
        # the state topic's document, drawn through the cache, is the validated one from the facts
        topic_document = orjson.loads(encode_state(n.s, documents))
        assert topic_document == json.loads(reference_shared_state(n.s, None).model_dump_json())
    event(f"phase {n.s.phase}")
    for status in {c.status for c in n.s.commitments.values()}:
        event(f"a commitment {status}")
    for kind in {e.type for e in n.events[agreed_at:]}:
        event(kind)
    # When the events are replayed from nothing
    again: NegotiationState | None = None
    for replayed in n.events:
        figures = figures_before(again, list(again.members) if again else [])
        again = evolve(again, replayed)
        if replayed.sequence <= agreed_at:
            continue
        # (nobody is told of an event after the agreement that it may not see)
        for viewer in viewers(again):
            if event_view(again, replayed, viewer) is None:
                assert notices(figures, again, replayed, viewer) == (), (replayed.type, viewer)
    assert again is not None
    # Then the facts are the same
    assert again.facts() == n.s.facts()
    assert replay(n.events).facts() == n.s.facts()  # type: ignore[union-attr]
    # And so is every party's view: the shared state, the commitments, the summary, each event
    for viewer in viewers(n.s):
        assert shared_state(again, viewer) == shared_state(n.s, viewer)
        assert commitments(again, viewer) == commitments(n.s, viewer)
        assert summary(again, viewer) == summary(n.s, viewer)
        assert [event_view(again, e, viewer) for e in n.events] == [event_view(n.s, e, viewer) for e in n.events]
    # And the vendor's counter numbers exactly the events it sees, without gaps
    vendor = Audience("vendor", n.s.vendor_id)
    assert n.s.vendor_sequence == sum(1 for e in n.events if event_view(n.s, e, vendor) is not None)


def delivered_to(weights: list[int]) -> Negotiation:
    """One commitment (no-ads), planned, accepted and delivered, in a coalition of these weights."""
    n = Negotiation(item("no-ads"))
    for index, weight in enumerate(weights):
        n.invite(f"m{index + 1}", weight)
    n.position("m1", "no-ads").publish().respond(accept("no-ads")).propose()
    for member in list(n.s.members):
        if n.s.phase == "endorsing":
            n.endorse(member, "accept")
    return n.plan().accept_plan().deliver("no-ads")


@FAST
@given(
    weights=st.lists(st.integers(1, 5), min_size=1, max_size=6),
    data=st.data(),
)
def test_the_order_in_which_members_checks_arrive_does_not_change_the_tally(
    weights: list[int], data: st.DataObject
) -> None:
    # Given each member's final check of a delivery (or none), after checks it replaced
    member_ids = [f"m{index + 1}" for index in range(len(weights))]
    final = data.draw(st.dictionaries(st.sampled_from(member_ids), check_verdicts))
    earlier = data.draw(st.lists(st.tuples(st.sampled_from(member_ids), check_verdicts), max_size=4))
    replaced = [(m, v) for m, v in earlier if m in final]  # a check replaced by the member's final one
    in_order = [*replaced, *final.items()]
    shuffled_earlier = data.draw(st.permutations(replaced))
    shuffled_final = data.draw(st.permutations(list(final.items())))
    # When they arrive in one order, and in another (each member's final check still its last)
    one, other = delivered_to(weights), delivered_to(weights)
    for n, arrivals in ((one, in_order), (other, [*shuffled_earlier, *shuffled_final])):
        for member, verdict in arrivals:
            n.check(member, "no-ads", verdict)
    # Then the coordinator's tally is the same
    tally = check_tally(one.s, one.s.commitments["no-ads"])
    assert tally == check_tally(other.s, other.s.commitments["no-ads"])
    # And it is the final checks' weights over the coalition's weight
    total = sum(weights)
    weight = dict(zip(member_ids, weights, strict=True))
    met = sum(weight[m] for m, v in final.items() if v == "met")
    not_met = sum(weight[m] for m, v in final.items() if v == "not_met")
    assert (tally.met_share, tally.not_met_share, tally.checked_share) == (
        float(Fraction(met, total)),
        float(Fraction(not_met, total)),
        float(Fraction(met + not_met, total)),
    )
    assert [(c.organisation_id, c.verdict) for c in tally.checks] == [(m, final[m]) for m in member_ids if m in final]


@FAST
@given(
    cycles=st.lists(
        st.tuples(
            st.integers(1, 2),  # versions published before the proposal
            st.integers(1, 3),  # vendor rounds
            st.booleans(),  # the plan accepted before the reopening
            st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True),  # reopened
        ),
        min_size=1,
        max_size=3,
    )
)
def test_a_reopened_negotiations_versions_and_rounds_continue_without_gaps(
    cycles: list[tuple[int, int, bool, list[str]]],
) -> None:
    # Given an agreement on every item, reopened on chosen commitments and agreed again, several times
    n = Negotiation(*ITEMS).invite("m1", 2).invite("m2", 1)
    for key, position in (("audit-rights", Position(priority="must")),
                          ("retention-days", Position(priority="must", value=Fraction(30))),
                          ("uptime", Position(priority="should", value=Fraction(99))),
                          ("data-location", Position(priority="must", accepted=OPTIONS[:2]))):  # fmt: skip
        n.position("m1", key, position.priority, position.value, position.accepted)
    reopened: list[tuple[str, ...]] = [tuple(KEYS)]
    for publishes, rounds, planned, chosen in [(1, 1, False, KEYS), *cycles]:
        if n.s.phase != "collecting":
            if planned:
                n.plan().accept_plan()
            n.reopen(*chosen)
            reopened.append(tuple(key for key in KEYS if key in chosen))
        for _ in range(publishes):
            n.publish()
        latest = n.s.latest_version
        assert latest is not None
        for _ in range(rounds):
            n.respond(*(accept(line.key) for line in latest.items))
        n.propose().endorse("m1", "accept")
        assert n.s.phase == "agreed"
        assert set(n.s.commitments) == set(KEYS)
    # Then the versions are numbered 1, 2, 3 … and the vendor's rounds too, across every reopening
    published = [e for e in n.events if e.type == "DemandPublished"]
    responded = [e for e in n.events if e.type == "VendorResponded"]
    assert [e.version for e in published] == list(range(1, len(published) + 1))  # type: ignore[union-attr]
    assert [e.round for e in responded] == list(range(1, len(responded) + 1))  # type: ignore[union-attr]
    assert len(published) == sum(p for p, *_ in cycles) + 1
    assert len(responded) == sum(r for _, r, *_ in cycles) + 1
    # And each version published after a reopening holds exactly the reopened items
    cycle_of_version = []
    for cycle, (publishes, *_) in enumerate([(1,), *cycles]):
        cycle_of_version += [cycle] * publishes
    for version, cycle in zip(n.s.versions, cycle_of_version, strict=True):
        assert tuple(line.key for line in version.items) == reopened[cycle]


@FAST
@given(
    dues=st.lists(st.integers(1, 30 * 24 * 60), min_size=4, max_size=4),
    fates=st.lists(st.sampled_from(["open", "delivered", "met", "not_met"]), min_size=4, max_size=4),
    plan_accepted=st.integers(0, 3).map(bool),
    data=st.data(),
)
def test_a_tick_marks_exactly_the_planned_open_commitments_whose_due_date_passed(
    dues: list[int], fates: list[str], plan_accepted: bool, data: st.DataObject
) -> None:
    # Given four commitments, planned due at whole minutes (and the plan accepted or not)
    n = Negotiation(*(item(f"c{index}") for index in range(4))).invite("m1")
    for key in n.s.items:
        n.position("m1", key)
    n.publish().respond(*(accept(key) for key in n.s.items)).propose().endorse("m1", "accept")
    n.plan(**{key: NOW + minutes * MINUTE for key, minutes in zip(n.s.items, dues, strict=True)})
    if plan_accepted:
        n.accept_plan()
        # each left open, delivered, met, or found not met (open again)
        for key, fate in zip(n.s.items, fates, strict=True):
            if fate != "open":
                n.deliver(key)
            if fate in ("met", "not_met"):
                n.verdict(key, fate)
    # When the hub ticks at any minute t (often one around a due date: before, on, or after it)
    near_a_due = st.tuples(st.sampled_from(dues), st.integers(-1, 1)).map(sum)
    at = data.draw(st.one_of(near_a_due, st.integers(0, 35 * 24 * 60)), label="minutes after now")
    t: datetime = NOW + at * MINUTE
    expected = [key for key, c in n.s.commitments.items() if c.status == "open" and c.due is not None and c.due < t]
    assert [c.key for c in overdue_commitments(n.s, t)] == expected
    event(f"{len(expected)} overdue")
    n.at(max(t, n.context.now))  # the worker's clock reads the tick's time
    tick = n.command(Tick, HUB, now=t)
    if not expected:
        # Then with nothing overdue the tick is refused, changing nothing
        assert n.refuse(tick).status == 409
        return
    n.run(tick)
    # Then exactly those are overdue, found at t
    overdue = {key: c.overdue_since for key, c in n.s.commitments.items() if c.status == "overdue"}
    assert overdue == dict.fromkeys(expected, t)
    # And a second tick at the same t finds nothing new
    assert n.refuse(n.command(Tick, HUB, now=t)).status == 409
