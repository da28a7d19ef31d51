"""The worker's table of one partition, and the per-command step that decides into an outbox.

No broker here: ``process_command`` is the worker's whole logic for one command message (decode,
decide against the table, apply, put the writes into the outbox), tested without Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from schemas.commands import Command
from schemas.events import Event
from schemas.results import CommandRejected, CommandResult
from schemas.topics import SNAPSHOT_MAX_BYTES
from streams.codec import DecodeError, dead_letter, decode_command, decode_event_value, encode_event, encode_result
from streams.core.chain import chained
from streams.core.decider import Context, Limits, Rejection, decide
from streams.core.state import NegotiationState, evolve
from streams.logcontext import HANDLING
from streams.snapshots import decode_snapshot, encode_snapshot
from streams.tracing import Headers, annotate

log = structlog.get_logger("koopkracht.worker")

COMMAND_OFFSET_HEADER = "koopkracht-command-offset"
"""Kafka header on each event: the offset of the command that caused it, in its partition."""


@dataclass
class Outbox:
    """What one batch writes to one partition (and to the dead letters), in one transaction."""

    events: list[tuple[bytes, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    """The negotiations the batch changed (their documents are drawn when due)."""
    results: list[tuple[bytes, bytes]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)
    states: list[tuple[bytes, bytes]] = field(default_factory=list)
    snapshots: list[tuple[bytes, bytes]] = field(default_factory=list)
    checkpoint_before: int | None = None
    """With snapshots: the first events offset that some negotiation's snapshot lacks, as far as
    known when the batch was decided (the checkpoint is the smaller of this and the batch's end)."""
    commands_next: int | None = None
    """The commands offset to commit with the batch (None: a transaction of documents only)."""


class NegotiationTable:
    """The negotiations of one partition, rebuilt from its snapshots and events.

    Events of commands at or past the partition's committed offset form the *tail*: those
    commands are delivered again after a restart and decided again, in order, against a state
    that holds exactly the commands before them; where a command's events are already in the log,
    the logged events are applied instead of writing new ones.

    Snapshots read at recovery stay as bytes until their negotiation is needed. The table tracks
    which negotiations changed since their last snapshot (``dirty``), with a lower bound of the
    events offset of the first change each snapshot lacks.
    """

    def __init__(self, replay_from: int = 0) -> None:
        self.states: dict[str, NegotiationState] = {}
        self.frozen: dict[str, bytes] = {}
        """Snapshots not yet decoded, by negotiation id."""
        self.events_applied = 0
        self.replay_from = replay_from
        self.tail: dict[tuple[str, str], list[tuple[int, Event]]] = {}
        """Logged events of commands that come again, with their events offsets, by (negotiation, command)."""
        self.oversized: dict[str, float] = {}
        """Negotiations whose snapshot was too large for a record, and when that was found."""
        self.dirty: dict[str, tuple[int, float]] = {}
        """Negotiations changed since their last snapshot: (a lower bound of the events offset of
        the first change the snapshot lacks, when it was first changed). Oldest first."""
        self.events_end = 0
        """The events offset after the last event known to be in the log (acknowledged or read)."""
        self.commands_next = replay_from
        """The commands offset after the last command decided (where the next one comes from)."""

    def state(self, negotiation_id: str) -> NegotiationState | None:
        state = self.states.get(negotiation_id)
        if state is None and negotiation_id in self.frozen:
            state = decode_snapshot(self.frozen.pop(negotiation_id))
            self.states[negotiation_id] = state
        return state

    def __len__(self) -> int:
        return len(self.states) + len(self.frozen)

    def negotiation_ids(self) -> set[str]:
        return self.states.keys() | self.frozen.keys()

    def apply(self, event: Event, offset: int | None = None) -> NegotiationState:
        """Apply an event; ``offset``: where the log holds it already (a tail event), if it does."""
        state = evolve(self.state(event.negotiation_id), event)
        self.states[event.negotiation_id] = state
        self.events_applied += 1
        self._mark_dirty(event.negotiation_id, self.events_end if offset is None else offset)
        return state

    def _mark_dirty(self, negotiation_id: str, first_offset: int) -> None:
        marked = self.dirty.get(negotiation_id)
        if marked is None:
            self.dirty[negotiation_id] = (first_offset, time.monotonic())
        elif first_offset < marked[0]:
            self.dirty[negotiation_id] = (first_offset, marked[1])

    def recover(self, value: bytes, headers: Iterable[tuple[str, bytes]], offset: int | None = None) -> None:
        """Apply one event read from the log at recovery (or keep it aside, if its command comes again)."""
        event = decode_event_value(value)
        if offset is not None:
            # Before the event itself, so that the dirty mark's offset is at or below this event's.
            self.events_end = max(self.events_end, offset)
        command_offset = next((int(raw) for name, raw in headers if name == COMMAND_OFFSET_HEADER), -1)
        if command_offset >= self.replay_from:
            # In the log, and in no snapshot until its command is decided again: until then the
            # negotiation is not snapshotted and the checkpoint does not pass this event.
            self.tail.setdefault((event.negotiation_id, event.command_id), []).append((self.events_end, event))
        else:
            self.apply(event)
        if offset is not None:
            self.events_end = max(self.events_end, offset + 1)

    def take_snapshots(self, *, lag_events: int, lag_s: float, budget_s: float) -> list[tuple[bytes, bytes]]:
        """Snapshot negotiations whose first unsnapshotted change is ``lag_events`` behind the
        log's end or ``lag_s`` old, oldest first, for at most about ``budget_s`` of encoding.

        Returns (key, value) records for the snapshots topic; the negotiations become clean."""
        started = time.monotonic()
        taken: list[tuple[bytes, bytes]] = []
        waiting = {negotiation_id for negotiation_id, _ in self.tail}
        for negotiation_id, (first_offset, since) in list(self.dirty.items()):
            if self.events_end - first_offset < lag_events and started - since < lag_s:
                continue
            if negotiation_id in waiting:
                continue  # its tail events are in the log, and would be in no snapshot
            if started - self.oversized.get(negotiation_id, -lag_s) < lag_s:
                continue
            state = self.state(negotiation_id)
            assert state is not None
            value = encode_snapshot(state)
            if len(value) > SNAPSHOT_MAX_BYTES - 1024:
                # Too large for one record: it stays dirty (the checkpoint waits for it, and
                # recovery replays its events), and is tried again after a while.
                log.warning("snapshot too large", negotiation_id=negotiation_id, size=len(value))
                self.oversized[negotiation_id] = started
            else:
                self.oversized.pop(negotiation_id, None)
                del self.dirty[negotiation_id]
                taken.append((negotiation_id.encode(), value))
            if time.monotonic() - started >= budget_s:
                break
        return taken

    def checkpoint_bound(self) -> int | None:
        """The first events offset that some negotiation's latest snapshot lacks (None: none does)."""
        bounds = [first_offset for first_offset, _ in self.dirty.values()]
        bounds += [offset for events in self.tail.values() for offset, _ in events[:1]]
        return min(bounds) if bounds else None


def process_command(
    outbox: Outbox,
    table: NegotiationTable,
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now: datetime,
    consumer: str,
    limits: Limits = Limits(),
    trace: Headers = (),
) -> str:
    """Decide one command message and put what it causes into the outbox; returns the outcome
    (``streams.metrics.OUTCOMES``). ``trace``: headers that every event it writes carries (the
    decision's trace context; none when tracing is off).

    Every log line of its handling carries the message's topic, partition and offset, and, once
    the command is read, its ``command_id`` and ``negotiation_id`` (one context variable, set for
    the decision: ``streams.logcontext``)."""

    def reject_message(reason: str, error: str) -> None:
        outbox.dead_letters.append(
            (
                key,
                dead_letter(
                    topic=topic,
                    partition=partition,
                    offset=offset,
                    key=key,
                    value=value,
                    reason=reason,
                    error=error,
                    consumer=consumer,
                ),
            )
        )
        log.warning("command dead-lettered", topic=topic, partition=partition, offset=offset, reason=reason)

    try:
        command = decode_command(value)
    except DecodeError as exc:
        reject_message(str(exc), "DecodeError")
        return "unreadable"
    except Exception as exc:  # a defect in reading: the message must not stop the partition
        log.exception("decode failed", topic=topic, partition=partition, offset=offset)
        reject_message(f"the worker failed to read this command: {exc}", type(exc).__name__)
        return "unreadable"
    negotiation_id = command.negotiation_id
    bound = HANDLING.set(
        {
            "command_id": command.command_id,
            "negotiation_id": negotiation_id,
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }
    )
    try:
        if trace:
            annotate(**{"koopkracht.command_id": command.command_id, "koopkracht.negotiation_id": negotiation_id})
        if key != negotiation_id.encode():
            reject_message(
                "the message key must be the command's negotiation id (it decides the partition and so the single "
                "writer)",
                "WrongKey",
            )
            return "wrong_key"
        return _decide(outbox, table, command, offset, now, limits, trace, reject_message)
    finally:
        HANDLING.reset(bound)


def _decide(
    outbox: Outbox,
    table: NegotiationTable,
    command: Command,
    offset: int,
    now: datetime,
    limits: Limits,
    trace: Headers,
    reject_message: Callable[[str, str], None],
) -> str:
    negotiation_id = command.negotiation_id
    outcome = "accepted"
    state = table.state(negotiation_id)
    result: CommandResult
    try:
        decision = decide(state, command, Context(now=now, limits=limits))
    except Rejection as rejection:
        outcome = "rejected"
        result = CommandRejected(
            command_id=command.command_id,
            negotiation_id=negotiation_id,
            status=rejection.status,
            title=rejection.title,
            detail=rejection.detail,
            field=rejection.field,
        )
    except Exception as exc:  # a defect in decide: refuse the command, keep it for analysis, go on
        log.exception("decide failed", negotiation_id=negotiation_id, command_id=command.command_id)
        reject_message(f"the worker failed on this command: {exc}", type(exc).__name__)
        outcome = "failed"
        result = CommandRejected(
            command_id=command.command_id,
            negotiation_id=negotiation_id,
            status=500,
            title="Internal error",
            detail="the worker could not decide this command; it has been kept for analysis",
        )
    else:
        logged_at = table.tail.pop((negotiation_id, command.command_id), [])
        logged = [event for _, event in logged_at]
        decided = [(e.event_id, e.sequence) for e in decision.events]
        if [(e.event_id, e.sequence) for e in logged] != decided[: len(logged)]:
            raise RuntimeError(f"the log disagrees with the decision of command {command.command_id}")
        # Decided before a restart: its logged events are applied, not written again (and are
        # marked at their offsets, which no snapshot holds). If a crash cut its writes short, the
        # rest of its events are written now.
        for at, event in logged_at:  # (not ``offset``: the events' headers below name the command's)
            table.apply(event, at)
        rest = list(decision.events[len(logged) :])
        if logged and rest:
            # Decided again at another time than the logged part: the rest links onto the log.
            rest = chained(rest, table.states[negotiation_id].head_hash)
        for event in rest:
            table.apply(event)
        for event in rest:
            message = encode_event(event)
            headers = [*message.headers.items(), (COMMAND_OFFSET_HEADER, str(offset).encode()), *trace]
            outbox.events.append((message.key, message.value, headers))  # type: ignore[arg-type]
        if decision.events:
            outbox.changed.add(negotiation_id)
        result = decision.result.model_copy(update={"duplicate": True}) if logged else decision.result
    outbox.results.append((negotiation_id.encode(), encode_result(result)))
    return outcome
