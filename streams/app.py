"""The negotiation worker: the single writer of each negotiation.

Commands are keyed by negotiation id, so one partition of the commands topic — and so one worker
of the consumer group — owns each negotiation. Per batch of commands (order within a partition
kept), the worker decodes each command and calls the pure ``decide`` and ``evolve``. It writes the
events (as CloudEvents); once Kafka has them, the command results and the shared-state documents
of the negotiations touched; once Kafka has those, it commits the offsets. Deciding the next batch
overlaps with waiting for those acknowledgements. A negotiation's state document is published at
most once per ``state_interval_ms`` (the newest one follows within that time), so a rush of
commands costs the state topic a bounded number of documents.

The state is a table of negotiations per partition, kept in memory, whose changelog is the events
topic itself: when a worker is assigned a partition it replays that partition of the events topic
through ``evolve``. Nothing is written twice (no snapshots next to the events), and the table can
never disagree with the log it was rebuilt from.

Effectively once: the table holds only the events of commands before the committed offset; the
later ones (the *tail*) are kept aside. Each command delivered again after a crash is decided again
against exactly the state it first met, and its logged events are applied instead of written
again (see ``NegotiationTable``). A write that fails stops the worker before the offsets are
committed, so it restarts from the log.
Not handled: a worker that is paused past its session and then resumes writing (a zombie); Kafka
transactions would fence it, at the cost of latency per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from schemas.events import Event
from schemas.results import CommandRejected, CommandResult
from schemas.topics import COMMAND_RESULTS, COMMANDS, DEAD_LETTERS, EVENTS, STATE
from streams.codec import (
    DecodeError,
    dead_letter,
    decode_command,
    decode_event_value,
    encode_event,
    encode_result,
    encode_state,
)
from streams.core.decider import Context, Rejection, decide
from streams.core.state import NegotiationState, evolve

log = structlog.get_logger("koopkracht.worker")

STATE_DRAW_LIMIT = 1000
"""State documents drawn at most between two batches (when not drawing all of them)."""

COMMAND_OFFSET_HEADER = "koopkracht-command-offset"
"""Kafka header on each event: the offset of the command that caused it, in its partition."""


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    topic_prefix: str = "koopkracht"
    group_id: str | None = None
    max_batch: int = 500
    linger_ms: int = 2
    state_interval_ms: int = 1000
    """A negotiation's state document is published at most this often (0: after every batch that
    changed it); the newest one always follows within about this long. Every change is in the
    events topic as it happens."""
    session_timeout_ms: int = 10_000
    """A dead worker's negotiations move to a live one after about this long."""
    recovery_timeout_s: float = 600.0
    """Rebuilding a partition's table from the events topic fails after this long."""
    sigkill_after_commands: int | None = None
    """Fault injection for tests: SIGKILL this process in the middle of the batch that reaches
    this many commands — after its events are written, before its results and offsets."""

    @property
    def group(self) -> str:
        return self.group_id or f"{self.topic_prefix}-worker"


class RecoveryError(RuntimeError):
    """A partition's table could not be rebuilt from the events topic."""


@dataclass
class Outbox:
    """What one batch writes, in the order it is written."""

    events: list[tuple[bytes, bytes, list[tuple[str, bytes]], int]] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)
    """The negotiations the batch changed, with their partitions (their documents are drawn when due)."""
    results: list[tuple[bytes, bytes, int]] = field(default_factory=list)
    dead_letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)


class NegotiationTable:
    """The negotiations of one partition, rebuilt from that partition of the events topic.

    Events of commands at or past the partition's committed offset form the *tail*: those
    commands are delivered again after a restart and decided again, in order, against a state
    that holds exactly the commands before them; where a command's events are already in the log,
    the logged events are applied instead of writing new ones.
    """

    def __init__(self, replay_from: int = 0) -> None:
        self.states: dict[str, NegotiationState] = {}
        self.events_applied = 0
        self.replay_from = replay_from
        self.tail: dict[tuple[str, str], list[Event]] = {}

    def state(self, negotiation_id: str) -> NegotiationState | None:
        return self.states.get(negotiation_id)

    def apply(self, event: Event) -> NegotiationState:
        state = evolve(self.states.get(event.negotiation_id), event)
        self.states[event.negotiation_id] = state
        self.events_applied += 1
        return state

    def recover(self, value: bytes, headers: Iterable[tuple[str, bytes]]) -> None:
        event = decode_event_value(value)
        command_offset = next((int(raw) for name, raw in headers if name == COMMAND_OFFSET_HEADER), -1)
        if command_offset >= self.replay_from:
            self.tail.setdefault((event.negotiation_id, event.command_id), []).append(event)
        else:
            self.apply(event)


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
) -> None:
    """Decide one command message and put what it causes into the outbox."""

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
        return
    negotiation_id = command.negotiation_id
    if key != negotiation_id.encode():
        reject_message(
            "the message key must be the command's negotiation id (it decides the partition and so the single writer)",
            "WrongKey",
        )
        return
    state = table.state(negotiation_id)
    result: CommandResult
    try:
        decision = decide(state, command, Context(now=now))
    except Rejection as rejection:
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
        result = CommandRejected(
            command_id=command.command_id,
            negotiation_id=negotiation_id,
            status=500,
            title="Internal error",
            detail="the worker could not decide this command; it has been kept for analysis",
        )
    else:
        logged = table.tail.pop((negotiation_id, command.command_id), [])
        decided = [(e.event_id, e.sequence) for e in decision.events]
        if [(e.event_id, e.sequence) for e in logged] != decided[: len(logged)]:
            raise RuntimeError(f"the log disagrees with the decision of command {command.command_id}")
        # Decided before a restart: its logged events are applied, not written again. If a crash
        # cut its writes short, the rest of its events are written now.
        for event in [*logged, *decision.events[len(logged) :]]:
            table.apply(event)
        for event in decision.events[len(logged) :]:
            message = encode_event(event)
            headers = [*message.headers.items(), (COMMAND_OFFSET_HEADER, str(offset).encode())]
            outbox.events.append((message.key, message.value, headers, partition))  # type: ignore[arg-type]
        if decision.events:
            outbox.changed[negotiation_id] = partition
        result = decision.result.model_copy(update={"duplicate": True}) if logged else decision.result
    outbox.results.append((negotiation_id.encode(), encode_result(result), partition))


class NegotiationWorker:
    """Consumes commands as a member of the worker group; see the module docstring."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.commands_topic = COMMANDS.name(config.topic_prefix)
        self.events_topic = EVENTS.name(config.topic_prefix)
        self.state_topic = STATE.name(config.topic_prefix)
        self.results_topic = COMMAND_RESULTS.name(config.topic_prefix)
        self.dead_letters_topic = DEAD_LETTERS.name(config.topic_prefix)
        self.tables: dict[int, NegotiationTable] = {}
        self.ready = asyncio.Event()
        self.processed = 0
        self.last_recovery_s = 0.0
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # Held while a batch is processed, and by the rebalance callbacks: a partition is handed
        # over only between batches, after the last one's offsets are committed.
        self._lock = asyncio.Lock()
        self._to_recover: set[TopicPartition] = set()
        self._completing: asyncio.Task[None] | None = None
        """The newest batch still being written and committed (it waits for the one before)."""
        self._failure: Exception | None = None
        """A write that failed in a rebalance callback; the main loop raises it."""
        self._state_drawn_at: dict[str, float] = {}
        self._state_changed: dict[str, int] = {}
        """Negotiations (and their partitions) changed since their state document was last drawn."""

    # -- recovery --------------------------------------------------------------------------
    async def recover(self, replay_from: dict[int, int]) -> None:
        """Rebuild the tables of these partitions from the events topic.

        ``replay_from`` maps each partition to the first commands-topic offset that will be
        delivered (again): the committed offset, or the log's start.
        """
        wanted = [p for p in replay_from if p not in self.tables]
        if not wanted:
            return
        started = time.perf_counter()
        reader = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=32 * 1024 * 1024,
        )
        await reader.start()
        try:
            tps = [TopicPartition(self.events_topic, p) for p in wanted]
            reader.assign(tps)
            await reader.seek_to_beginning(*tps)
            ends = await reader.end_offsets(tps)
            tables = {p: NegotiationTable(replay_from[p]) for p in wanted}
            deadline = time.monotonic() + self.config.recovery_timeout_s
            remaining = set(tps)
            while remaining:
                for tp in list(remaining):
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
                if not remaining:
                    break
                if time.monotonic() > deadline:
                    raise RecoveryError(
                        f"could not read the events of partitions {sorted(tp.partition for tp in remaining)} "
                        f"within {self.config.recovery_timeout_s:.0f} s"
                    )
                batch = await reader.getmany(*remaining, timeout_ms=500, max_records=20_000)
                for tp, records in batch.items():
                    table = tables[tp.partition]
                    for record in records:
                        if record.offset < ends[tp] and record.value is not None:
                            table.recover(record.value, record.headers)
            self.tables.update(tables)
            # Documents held back by the interval die with a worker: publish each negotiation's
            # state as the log has it (later commands of the tail publish theirs when decided).
            # Negotiations with commands to decide again are drawn when those are decided: a document
            # drawn before would go back behind one the dead worker may have published.
            for partition, table in tables.items():
                replayed = {negotiation_id for negotiation_id, _ in table.tail}
                self._state_changed.update(dict.fromkeys(table.states.keys() - replayed, partition))
        finally:
            await reader.stop()
        self.last_recovery_s = time.perf_counter() - started
        log.info(
            "tables recovered",
            partitions=wanted,
            events=sum(self.tables[p].events_applied for p in wanted),
            to_replay=sum(len(self.tables[p].tail) for p in wanted),
            negotiations=sum(len(self.tables[p].states) for p in wanted),
            seconds=round(self.last_recovery_s, 3),
        )

    async def _replay_from(self, assigned: Iterable[TopicPartition]) -> dict[int, int]:
        assert self._consumer is not None
        tps = list(assigned)
        starts = await self._consumer.beginning_offsets(tps)
        positions = {}
        for tp in tps:
            committed = await self._consumer.committed(tp)
            positions[tp.partition] = max(committed or 0, starts[tp])
        return positions

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Process commands until ``stop`` is set; an exception means: restart from the log."""
        stop = stop or asyncio.Event()
        worker = self

        class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                async with worker._lock:  # the batches in progress finish and commit first
                    try:
                        if await worker._settle():
                            await worker._flush_states(everything=True)  # before another worker owns them
                    except Exception as exc:  # aiokafka only logs what a callback raises: stop the loop
                        worker._failure = exc
                    finally:
                        for tp in revoked:
                            worker.tables.pop(tp.partition, None)
                log.info("partitions revoked", partitions=sorted(tp.partition for tp in revoked))

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                # Rebuilding tables can take long; aiokafka sends no heartbeats while this callback
                # runs. So only pause the new partitions here; the main loop rebuilds and resumes them.
                log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))
                fresh = [tp for tp in assigned if tp.partition not in worker.tables]
                if fresh:
                    assert worker._consumer is not None
                    worker._consumer.pause(*fresh)
                    worker._to_recover.update(fresh)

        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.config.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=self.config.linger_ms,
            max_request_size=4 * 1024 * 1024,
            client_id=self.config.group,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self.config.bootstrap,
            group_id=self.config.group,
            client_id=self.config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=1000,
            max_poll_records=self.config.max_batch,
        )
        try:
            await self._producer.start()
            await self._consumer.start()
            self._consumer.subscribe([self.commands_topic], listener=Rebalance())
            while not stop.is_set():
                if self._failure is not None:
                    raise self._failure
                if self._to_recover:
                    await self._recover_assigned()
                timeout = 0 if self._completing is not None and not self._completing.done() else 100
                batch = await self._consumer.getmany(timeout_ms=timeout, max_records=self.config.max_batch)
                async with self._lock:
                    if not batch:
                        await self.drain()  # nothing new: finish the last batch (raises if a write failed)
                        await self._flush_states()
                        continue
                    # Records of partitions revoked since the fetch belong to their new owner now.
                    assignment = self._consumer.assignment()
                    batch = {tp: records for tp, records in batch.items() if tp in assignment}
                    if batch:
                        await self.process_batch(batch)
            async with self._lock:
                await self.drain()
                await self._flush_states(everything=True)
        finally:
            completing = self._completing
            if completing is not None and not completing.done():
                completing.cancel()
            if completing is not None:
                await asyncio.wait([completing])
                if not completing.cancelled() and completing.exception() is not None:
                    log.error("a batch's writes failed", error=repr(completing.exception()))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._consumer.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._producer.stop()

    async def _recover_assigned(self) -> None:
        assert self._consumer is not None
        async with self._lock:
            assignment = self._consumer.assignment()
            tps = [tp for tp in self._to_recover if tp in assignment]
            self._to_recover.clear()
            if tps:
                await self.recover(await self._replay_from(tps))
                self._consumer.resume(*tps)
        self.ready.set()

    async def process_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Decide a batch and send its events; its states, results and offsets follow in the background.

        Deciding the next batch overlaps with waiting for this one's acknowledgements. At most
        two batches are in flight, and they complete in order: a batch's states and results
        only once its events are acknowledged, its offsets only once all its writes are, and
        never before the batch before it. A failed write fails the worker; the batches it had
        not committed are decided again after the restart (see ``NegotiationTable``).
        """
        assert self._producer is not None
        outbox = Outbox()
        now = datetime.now(UTC)
        for tp, records in batch.items():
            table = self.tables.get(tp.partition)
            if table is None:  # a partition is paused until its table is rebuilt
                raise RecoveryError(f"records of partition {tp.partition} arrived before its table was rebuilt")
            for record in records:
                process_command(
                    outbox,
                    table,
                    topic=tp.topic,
                    partition=tp.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    now=now,
                    consumer=self.config.group,
                )
        self._state_changed.update(outbox.changed)
        # Drawn now, from states that hold nothing newer than this batch: the next batch changes
        # them while this one is being written.
        states = self._draw_states()
        send = self._producer.send
        events = [
            await send(self.events_topic, key=key, value=value, headers=headers, partition=partition)
            for key, value, headers, partition in outbox.events
        ]
        size = sum(len(records) for records in batch.values())
        if self.config.sigkill_after_commands is not None:
            await self._maybe_crash(events, size)
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        previous = self._completing
        self._completing = asyncio.create_task(self._complete(previous, events, states, outbox, offsets, size))
        if previous is not None:
            await asyncio.shield(previous)  # back-pressure: at most this batch and the one before

    async def _complete(
        self,
        previous: asyncio.Task[None] | None,
        events: list[Any],
        states: list[tuple[bytes, bytes, int]],
        outbox: Outbox,
        offsets: dict[TopicPartition, int],
        size: int,
    ) -> None:
        assert self._producer is not None
        assert self._consumer is not None
        if previous is not None:
            await previous
        send = self._producer.send
        # Events first: a result or a state document must never announce what the log lacks.
        await asyncio.gather(*events)
        pending = [await send(self.state_topic, key=key, value=value, partition=p) for key, value, p in states]
        pending += [
            await send(self.results_topic, key=key, value=value, partition=partition)
            for key, value, partition in outbox.results
        ]
        pending += [await send(self.dead_letters_topic, key=key, value=value) for key, value in outbox.dead_letters]
        await asyncio.gather(*pending)  # raises if any write failed: then nothing is committed
        await self._consumer.commit(offsets)
        self.processed += size

    def _draw_states(self, everything: bool = False) -> list[tuple[bytes, bytes, int]]:
        """The state documents of changed negotiations whose interval is over (or of all of them)."""
        if not self._state_changed:
            return []
        now = time.monotonic()
        interval = self.config.state_interval_ms / 1000
        if len(self._state_drawn_at) > 4 * STATE_DRAW_LIMIT:  # forget what is past its interval anyway
            self._state_drawn_at = {k: t for k, t in self._state_drawn_at.items() if now - t < interval}
        drawn: list[tuple[bytes, bytes, int]] = []
        for negotiation_id, partition in list(self._state_changed.items()):
            if len(drawn) >= STATE_DRAW_LIMIT and not everything:
                break  # after a recovery: the rest follow with the next batches, the loop stays responsive
            if everything or now - self._state_drawn_at.get(negotiation_id, -interval) >= interval:
                del self._state_changed[negotiation_id]
                table = self.tables.get(partition)
                state = table.state(negotiation_id) if table is not None else None
                if state is not None:  # None: its partition was handed over meanwhile
                    self._state_drawn_at[negotiation_id] = now
                    drawn.append((negotiation_id.encode(), encode_state(state), partition))
        return drawn

    async def _flush_states(self, everything: bool = False) -> None:
        """Between batches (none in flight): write the state documents that are due."""
        assert self._producer is not None
        send = self._producer.send
        documents = self._draw_states(everything)
        await asyncio.gather(*[await send(self.state_topic, key=k, value=v, partition=p) for k, v, p in documents])

    async def _settle(self) -> bool:
        """Wait until the batches in flight are done; whether they all succeeded (a failure is
        raised by the main loop)."""
        completing = self._completing
        if completing is None:
            return True
        await asyncio.wait([completing])
        return not completing.cancelled() and completing.exception() is None

    async def drain(self) -> None:
        """Wait until every batch decided so far is written and committed (raises if one failed)."""
        completing = self._completing
        if completing is not None:
            await completing  # a failed batch stays in _completing: the rebalance callback sees it
            if self._completing is completing:
                self._completing = None

    async def _maybe_crash(self, pending: list[Any], batch_size: int) -> None:
        assert self.config.sigkill_after_commands is not None
        if self.processed + batch_size >= self.config.sigkill_after_commands:
            # Let the events reach the broker first, so the restart meets a log that is ahead
            # of the committed offsets, with no results written for this batch.
            await asyncio.gather(*pending)
            log.warning("fault injection: SIGKILL in the middle of a batch", processed=self.processed)
            os.kill(os.getpid(), signal.SIGKILL)
