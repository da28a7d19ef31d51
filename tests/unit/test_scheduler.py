"""The scheduler's pure parts: which ticks it sends, with which ids, and the core's answer to a
tick sent twice (time as a command, SPEC section 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.commands import AcceptPlan, PlanCommitments, Tick
from schemas.negotiation import PlannedCommitment
from services.scheduler import SCHEDULER, aligned, tick_command_id
from streams.core.decider import decide, overdue_commitments
from tests.unit.builders import COORDINATOR, NOW, VENDOR, Negotiation, accept, item

DUE = NOW + timedelta(days=7)


def implementing() -> Negotiation:
    n = Negotiation(item("no-ads"))
    n.invite("m1").position("m1", "no-ads").publish().respond(accept("no-ads")).propose().endorse("m1", "accept")
    n.run(n.command(PlanCommitments, VENDOR, items=(PlannedCommitment(key="no-ads", due=DUE),)))
    n.run(n.command(AcceptPlan, COORDINATOR))
    assert n.s.phase == "implementing"
    return n


def tick(n: Negotiation, now: datetime) -> Tick:
    return Tick(command_id=tick_command_id(n.negotiation_id, now), negotiation_id=n.negotiation_id, actor=SCHEDULER,
                now=now)  # fmt: skip


def test_a_tick_id_names_the_negotiation_and_the_instant_whatever_the_zone() -> None:
    # Given one instant written in two zones
    at = datetime(2027, 3, 31, 22, 0, tzinfo=UTC)
    same = at.astimezone(timezone(timedelta(hours=2)))
    # Then both senders send the same command id for the same negotiation, and another for another
    assert tick_command_id("neg-1", at) == tick_command_id("neg-1", same)
    assert tick_command_id("neg-1", at) != tick_command_id("neg-2", at)
    assert tick_command_id("neg-1", at) != tick_command_id("neg-1", at + timedelta(seconds=1))


@given(
    moment=st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
    interval=st.sampled_from([0.5, 1.0, 15.0, 60.0, 3600.0]),
)
def test_two_schedulers_within_one_interval_tick_at_the_same_now(moment: datetime, interval: float) -> None:
    # When two schedulers read their clocks within one interval
    now = aligned(moment, interval)
    # Then they tick at the same time, no later than either clock, less than an interval before it
    assert now <= moment < now + timedelta(seconds=interval)
    assert aligned(now + timedelta(seconds=interval * 0.999), interval) == now
    assert now.tzinfo is UTC


def test_a_tick_sent_twice_is_answered_as_a_duplicate_and_adds_nothing() -> None:
    # Given a negotiation implementing a plan, and the scheduler's tick after the due date
    n = implementing()
    late = DUE + timedelta(minutes=1)
    n.at(late)
    first = n.run(tick(n, late))
    assert [e.type for e in first.events] == ["CommitmentOverdue"]
    assert n.s.commitments["no-ads"].status == "overdue"
    # When the same tick comes again (a retry, or a second scheduler), although the hub is no party
    again = decide(n.s, tick(n, late), n.context)
    # Then it is the first decision again: no event, the same sequences
    assert again.events == ()
    assert again.result.duplicate
    assert (again.result.first_sequence, again.result.last_sequence) == (first.events[0].sequence,) * 2


def test_the_core_finds_nothing_overdue_until_the_due_date_has_passed() -> None:
    # Given a negotiation implementing a plan
    n = implementing()
    # Then at and before the due date nothing is overdue, and just after it the commitment is
    assert overdue_commitments(n.s, DUE) == []
    assert [c.key for c in overdue_commitments(n.s, DUE + timedelta(seconds=1))] == ["no-ads"]
    # And a tick before the due date is refused (409), changing nothing
    refusal = n.at(DUE).refuse(tick(n, DUE - timedelta(minutes=1)))
    assert refusal.status == 409
