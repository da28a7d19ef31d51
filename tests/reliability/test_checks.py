"""The fault suite's checks find what they look for (no broker: milliseconds).

A check that cannot fail is a defect; these feed each one the fault it exists to catch.
"""

from __future__ import annotations

from schemas.events import Event
from tests.reliability.checks import (
    Check,
    EventLog,
    check_acknowledged_in_log,
    check_applied_once,
    check_events_topic,
    check_refusals,
    expected_positions,
    figures,
)
from tests.reliability.load import Attempt, Write
from tests.unit.builders import Negotiation, item

RETENTION = "diagnostic-data-retention"


def negotiation_with_writes(*values: int) -> Negotiation:
    negotiation = Negotiation(item(RETENTION, "at_most")).invite("m0")
    for value in values:
        negotiation.position("m0", RETENTION, value=value)
    return negotiation


def log_of(events: list[Event]) -> EventLog:
    return EventLog([(0, offset, event) for offset, event in enumerate(events)])


def write(value: int, status: int | None = 200, started: float = 0.0, finished: float | None = 1.0) -> Write:
    return Write(
        member=0,
        member_id="m0",
        negotiation_id="neg-1",
        item_key=RETENTION,
        value=value,
        idempotency_key=f"k{value}",
        started=started,
        finished=finished,
        status=status,
    )


def failed(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.ok]


def test_a_clean_log_passes_every_topic_check() -> None:
    # Given a negotiation's events, each once
    events = negotiation_with_writes(7, 14).events
    # When the topic checks read them, Then none fails
    assert failed(check_events_topic(log_of(events), "events topic")) == []


def test_a_zombies_second_write_of_a_sequence_is_found() -> None:
    # Given a log in which a zombie wrote its own event at a sequence its successor had written
    ours = negotiation_with_writes(7, 14).events
    zombie = negotiation_with_writes(7, 99).events[-1]
    assert zombie.sequence == ours[-1].sequence and zombie != ours[-1]
    # When the topic checks read it
    checks = check_events_topic(log_of([*ours, zombie]), "events topic")
    # Then the (negotiation, sequence) written twice is reported, with where it is (event ids are
    # drawn from the negotiation and the sequence, so the id is there twice too)
    assert failed(checks) == [
        "no event id twice in the events topic",
        "no (negotiation, sequence) twice in the events topic",
    ]
    assert f"#{zombie.sequence}" in checks[1].detail


def test_an_event_written_twice_and_a_gap_are_found() -> None:
    # Given a log with one event twice and one missing
    events = negotiation_with_writes(7, 14, 21).events
    broken = [*events[:-2], events[-1], events[-1]]
    # When the topic checks read it, Then all three checks fail
    assert failed(check_events_topic(log_of(broken), "events topic")) == [
        "no event id twice in the events topic",
        "no (negotiation, sequence) twice in the events topic",
        "sequences 1..n gapless per negotiation in the events topic",
    ]


def test_a_command_applied_twice_and_an_acknowledged_write_missing_are_found() -> None:
    # Given the log of writes 7 and 14, where 14 was applied twice (as two commands would)
    twice = negotiation_with_writes(7, 14, 14).events
    # When the writes 7, 14 and 21 were all acknowledged
    writes = [write(7), write(14), write(21)]
    # Then 14 is applied twice and 21 is lost
    assert not check_applied_once(writes, log_of(twice)).ok
    missing = check_acknowledged_in_log(writes, log_of(twice))
    assert not missing.ok and missing.count == 1


def test_a_valid_write_answered_404_counts_as_refused() -> None:
    refusals = check_refusals([write(7), write(14, status=404), write(21, status=409)])
    assert not refusals.ok and refusals.count == 2 and "404" in refusals.detail


def test_the_last_acknowledged_write_is_expected_unless_a_later_one_was_never_answered() -> None:
    key = ("neg-1", "m0", RETENTION)
    # Given acknowledged writes 1 and 2, then 3 refused: the position must be 2
    assert expected_positions([write(1), write(2), write(3, status=404)]) == {key: {2}}
    # Given acknowledged 1, then 2 never answered: 1 or 2
    assert expected_positions([write(1), write(2, status=None, finished=None)]) == {key: {1, 2}}
    # Given only an unanswered write: it or nothing
    assert expected_positions([write(5, status=None, finished=None)]) == {key: {5, None}}


def test_the_figures_count_the_writes_a_fault_caught_in_flight() -> None:
    # Given a write in flight when the fault came at t=10, retried twice and acknowledged at t=18,
    # and one started and acknowledged before the fault
    caught = write(2, started=9.5, finished=18.0)
    caught.retries = [Attempt(12.0, "503"), Attempt(15.0, "ConnectError")]
    writes = [write(1, started=1.0, finished=2.0), caught]
    # When the figures of the window 10..16 are drawn
    f = figures(writes, ["neg-1"], injected=10.0, window_end=16.0, ready=16.0)
    # Then the caught write is in them, with its latency and retries, and the hub was silent 8 s
    assert (f.writes, f.acknowledged, f.p50_ms, f.retries) == (1, 1, 8500.0, 2)
    assert f.retry_outcomes == {"503": 1, "ConnectError": 1}
    assert (f.first_ack_after_fault_s, f.longest_silence_s, f.first_ack_after_ready_s) == (8.0, 8.0, 2.0)
    # And no write started after the fault was acknowledged: the negotiation did not heal
    assert f.healed_after_fault_s is None
    assert f.baseline_p50_ms == 1000.0
