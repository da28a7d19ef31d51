"""Snapshots and the checkpoint, without a broker: a table rebuilt from the latest snapshots and
the events from the checkpoint on equals the table that wrote them, wherever the snapshots fell."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.codec import encode_command
from streams.snapshots import CHECKPOINT_KEY, Checkpoint, decode_snapshot, encode_snapshot, snapshot_is_current
from streams.table import NegotiationTable, Outbox, process_command
from streams.throttle import StateThrottle
from tests.integration.harness import script

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def write_log(seed: int, batch: int, lag_events: int) -> tuple[NegotiationTable, list[tuple[int, bytes, list]], dict]:  # type: ignore[type-arg]
    """Run a script through a table as the worker does, batch by batch, with an event log whose
    offsets the test hands out. Returns the table, the log, and the snapshots topic as compaction
    leaves it (the latest value per key)."""
    expected = script(negotiations=6, commands=300, seed=seed)
    table = NegotiationTable()
    log: list[tuple[int, bytes, list]] = []  # type: ignore[type-arg]
    snapshots: dict[bytes, bytes] = {}
    commands = expected.commands
    for start in range(0, len(commands), batch):
        outbox = Outbox(commands_next=start + batch)
        for offset, command in enumerate(commands[start : start + batch], start=start):
            process_command(
                outbox,
                table,
                topic="t",
                partition=0,
                offset=offset,
                key=command.negotiation_id.encode(),
                value=encode_command(command),
                now=NOW,
                consumer="test",
            )
        taken = table.take_snapshots(lag_events=lag_events, lag_s=3600, budget_s=3600)
        bound = table.checkpoint_bound() if taken else None
        # The transaction: events get their offsets, then snapshots and the checkpoint.
        for _, value, headers in outbox.events:
            log.append((len(log), value, headers))
        table.events_end = len(log)
        if taken:
            snapshots.update(taken)
            end = table.events_end if bound is None else min(bound, table.events_end)
            snapshots[CHECKPOINT_KEY] = Checkpoint(events_from=end, commands_next=start + batch).encode()
    return table, log, snapshots


def rebuild(log: list[tuple[int, bytes, list]], snapshots: dict[bytes, bytes]) -> NegotiationTable:  # type: ignore[type-arg]
    checkpoint = Checkpoint.decode(snapshots.get(CHECKPOINT_KEY))
    table = NegotiationTable(replay_from=1 << 62)
    events_from = 0
    if checkpoint is not None:
        events_from = checkpoint.events_from
        table.frozen = {k.decode(): v for k, v in snapshots.items() if k != CHECKPOINT_KEY}
    for offset, value, headers in log[events_from:]:
        table.recover(value, headers, offset)
    return table


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), batch=st.integers(1, 40), lag_events=st.integers(0, 200))
def test_snapshots_and_the_events_after_the_checkpoint_rebuild_the_same_table(
    seed: int, batch: int, lag_events: int
) -> None:
    # Given a table that took snapshots now and then while it decided batches
    table, log, snapshots = write_log(seed, batch, lag_events)
    # When a new table is rebuilt from the latest snapshots and the log from the checkpoint on
    rebuilt = rebuild(log, snapshots)
    # Then it holds every negotiation with exactly the same facts
    assert rebuilt.negotiation_ids() == table.negotiation_ids()
    for negotiation_id in table.negotiation_ids():
        assert rebuilt.state(negotiation_id).facts() == table.state(negotiation_id).facts()  # type: ignore[union-attr]


def test_a_checkpoint_replays_only_the_recent_events() -> None:
    # Given a long log whose negotiations were all snapshotted 50 events behind its end
    _table, log, snapshots = write_log(seed=3, batch=10, lag_events=50)
    checkpoint = Checkpoint.decode(snapshots[CHECKPOINT_KEY])
    assert checkpoint is not None
    # Then recovery reads only the last stretch of the log, and leaves untouched snapshots undecoded
    assert len(log) - checkpoint.events_from < 50 + 60, (len(log), checkpoint)
    rebuilt = rebuild(log, snapshots)
    assert rebuilt.events_applied < len(log) / 2
    assert rebuilt.frozen or rebuilt.events_applied > 0


def test_a_snapshot_from_other_code_is_not_read() -> None:
    table, _, _snapshots = write_log(seed=5, batch=20, lag_events=0)
    negotiation_id = next(iter(table.negotiation_ids()))
    value = encode_snapshot(table.state(negotiation_id))  # type: ignore[arg-type]
    assert decode_snapshot(value).facts() == table.state(negotiation_id).facts()  # type: ignore[union-attr]
    # A different fingerprint (other code made it) or other bytes: ignored, and so is its checkpoint
    forged = value[:4] + bytes(16) + value[20:]
    assert not snapshot_is_current(forged)
    with pytest.raises(ValueError):
        decode_snapshot(forged)
    assert Checkpoint.decode(b'{"events_from": 3, "commands_next": 4, "code": "00"}') is None
    assert Checkpoint.decode(b"not json") is None


def test_a_tail_event_holds_the_checkpoint_back() -> None:
    # Given a log whose last command is past the committed offset (its events form the tail)
    _table, log, _ = write_log(seed=8, batch=25, lag_events=10_000)
    last_command_offset = max(int(dict(headers)["koopkracht-command-offset"]) for _, _, headers in log)
    rebuilt = NegotiationTable(replay_from=last_command_offset)
    for offset, value, headers in log:
        rebuilt.recover(value, headers, offset)
    assert rebuilt.tail
    # Then no checkpoint after recovery may pass the tail's events: they are in no snapshot
    first_tail_offset = min(
        offset for offset, _, headers in log if int(dict(headers)["koopkracht-command-offset"]) >= last_command_offset
    )
    bound = rebuilt.checkpoint_bound()
    assert bound is not None and bound <= first_tail_offset


def test_the_throttle_publishes_a_negotiation_at_most_once_per_interval() -> None:
    clock = [100.0]
    throttle = StateThrottle(1.0, clock=lambda: clock[0])
    # Given a first change after a quiet interval: published at once
    throttle.changed(["a"], 0)
    assert throttle.due() == [("a", 0)]
    # When it changes again within the interval: held back
    throttle.changed(["a", "b"], 0)
    assert throttle.due() == [("b", 0)]
    clock[0] += 0.5
    assert throttle.due() == []
    # Then published once the interval has passed
    clock[0] += 0.5
    assert throttle.due() == [("a", 0)]
    # And everything pending goes out when asked (a partition handed over), per partition
    throttle.changed(["c"], 1)
    throttle.changed(["a"], 0)
    assert throttle.due(everything=True, partitions={1}) == [("c", 1)]
    throttle.forget([0])
    assert throttle.due(everything=True) == []


def test_the_throttle_hands_out_a_bounded_number_of_documents_per_call() -> None:
    throttle = StateThrottle(0.0, clock=lambda: 0.0, limit=3)
    throttle.changed([str(i) for i in range(10)], 2)
    assert len(throttle.due()) == 3
    assert len(throttle.due(everything=True)) == 7


def test_a_negotiation_waiting_for_its_tail_is_not_snapshotted_past_it() -> None:
    # Given a table recovered with a tail: the last command's events are logged, its offset not committed
    _table, log, _ = write_log(seed=8, batch=25, lag_events=10_000)
    expected = script(negotiations=6, commands=300, seed=8)
    last = len(expected.commands) - 1
    command = expected.commands[last]
    table = NegotiationTable(replay_from=last)
    for offset, value, headers in log:
        table.recover(value, headers, offset)
    assert table.tail
    first_tail_offset = min(offset for events in table.tail.values() for offset, _ in events)
    # When the worker snapshots everything it may, before the command comes again
    snapshots = dict(table.take_snapshots(lag_events=0, lag_s=0, budget_s=3600))
    bound = table.checkpoint_bound()
    # Then the negotiation that waits for its command is not snapshotted, and the checkpoint stays before its events
    assert command.negotiation_id.encode() not in snapshots
    assert bound is not None and bound <= first_tail_offset
    # And once the command is decided again (from the log: nothing written), a snapshot may hold it
    outbox = Outbox(commands_next=last + 1)
    process_command(outbox, table, topic="t", partition=0, offset=last, key=command.negotiation_id.encode(),
                    value=encode_command(command), now=NOW, consumer="test")  # fmt: skip
    assert outbox.events == [] and not table.tail
    assert table.checkpoint_bound() is not None and table.checkpoint_bound() <= first_tail_offset  # type: ignore[operator]
    snapshots.update(table.take_snapshots(lag_events=0, lag_s=0, budget_s=3600))
    snapshots[CHECKPOINT_KEY] = Checkpoint(events_from=len(log), commands_next=last + 1).encode()
    # And a table rebuilt from those snapshots holds the command's events exactly once
    rebuilt = rebuild(log, snapshots)
    assert rebuilt.state(command.negotiation_id).facts() == table.state(command.negotiation_id).facts()  # type: ignore[union-attr]
