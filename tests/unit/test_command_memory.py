"""The worker remembers accepted command ids for a bounded time (``COMMAND_ID_MEMORY``), so the
memory its deduplication takes stays flat however many commands a negotiation has decided."""

from __future__ import annotations

import pickle
import tracemalloc
from datetime import timedelta

import pytest

from schemas.commands import StatePosition
from schemas.negotiation import Position
from streams.core import state as state_module
from streams.core.state import COMMAND_ID_FLOOR, COMMAND_ID_MEMORY, replay
from tests.unit.builders import NOW, Negotiation, item


def busy(hours: int) -> Negotiation:
    """A negotiation whose member restates its position every hour, for ``hours`` hours."""
    n = Negotiation(item("retention-days", "at_most"))
    n.invite("m1")
    for hour in range(hours):
        n.at(NOW + timedelta(hours=hour)).position("m1", "retention-days", "must", value=hour % 90 + 1)
    return n


def dedup_bytes(n: Negotiation) -> int:
    return len(pickle.dumps((n.s.commands, n.s.command_times)))


def test_the_command_ids_remembered_stay_bounded_as_commands_grow() -> None:
    # Given negotiations that decided two, four and eight weeks of hourly commands
    week = 7 * 24
    sizes = {weeks: busy(weeks * week) for weeks in (2, 4, 8)}
    # Then each remembers about one week of command ids, not all of them
    for n in sizes.values():
        assert week <= len(n.s.commands) <= week + 1
        assert sum(len(ids) for _, ids in n.s.command_times) == len(n.s.commands)
    # And the memory they take does not grow with the number of commands decided
    assert dedup_bytes(sizes[8]) <= dedup_bytes(sizes[2]) * 1.05


def growth(weeks: int) -> int:
    """Bytes a negotiation one week into hourly commands keeps after ``weeks`` more weeks of them."""
    n = busy(7 * 24)
    tracemalloc.start()
    try:
        for hour in range(7 * 24, (1 + weeks) * 7 * 24):
            n.at(NOW + timedelta(hours=hour)).position("m1", "retention-days", "must", value=hour % 90 + 1)
            n.events.clear()  # (the builder's own list of events is no part of the state)
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return kept


def test_the_memory_of_a_growing_history_is_flat(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a negotiation one week into hourly commands, When it decides four more weeks of them
    flat = growth(4)
    # Then it keeps less than half of what remembering every command id would keep
    monkeypatch.setattr(state_module, "COMMAND_ID_MEMORY", timedelta(days=3650))
    remembering_all = growth(4)
    assert flat < remembering_all / 2, (flat, remembering_all)


def test_a_command_sent_again_within_the_memory_is_a_duplicate_and_after_it_a_new_command() -> None:
    # Given a position stated once
    n = Negotiation(item("retention-days", "at_most"))
    n.invite("m1")
    first = n.command(StatePosition, "m1", item_key="retention-days", position=Position(priority="must", value=30))
    decided = n.run(first)
    assert len(decided.events) == 1
    # When the same command comes again a day later, Then it is answered as the first, and adds nothing
    again = n.at(NOW + timedelta(days=1)).run(first)
    assert again.events == ()
    assert again.result.duplicate
    assert (again.result.first_sequence, again.result.last_sequence) == (decided.result.first_sequence,) * 2
    # When other commands went on past the memory (more than the floor of them), and it comes once more
    later = n.at(NOW + COMMAND_ID_MEMORY + timedelta(hours=1))
    for index in range(COMMAND_ID_FLOOR):
        later.position("m1", "retention-days", "should", value=40 + index)
    late = n.run(first)
    # Then it is decided as a new command (its id is forgotten)
    assert len(late.events) == 1
    assert not late.result.duplicate


def test_a_replay_forgets_exactly_what_the_worker_forgot() -> None:
    # Given five weeks of hourly commands
    n = busy(5 * 7 * 24)
    # When the events are replayed from the start (recovery without snapshots)
    rebuilt = replay(n.events)
    # Then the rebuilt state remembers the same command ids, in the same order
    assert rebuilt is not None
    assert rebuilt.commands == n.s.commands
    assert list(rebuilt.command_times) == list(n.s.command_times)
    assert rebuilt.facts() == n.s.facts()


def test_a_clock_stepped_far_ahead_forgets_no_recent_command() -> None:
    # Given a negotiation with some history, and a command just decided
    n = busy(24)
    recent = n.command(StatePosition, "m1", item_key="retention-days", position=Position(priority="must", value=31))
    assert len(n.run(recent).events) == 1
    # When the worker's clock steps a month ahead and another command is decided
    jumped = n.at(NOW + timedelta(days=30))
    jumped.position("m1", "retention-days", "must", value=32)
    # Then the command sent seconds ago, sent again, is still a duplicate (the last ids are kept)
    again = n.run(recent)
    assert again.events == () and again.result.duplicate
    assert len(n.s.commands) >= min(COMMAND_ID_FLOOR, 26)
