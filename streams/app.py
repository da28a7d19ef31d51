"""The negotiation worker: the single writer of each negotiation.

Commands are keyed by negotiation id, so one partition of the commands topic — and so one worker
of the consumer group — owns each negotiation. Per batch of commands (order within a partition
kept), the worker decodes each command and calls the pure ``decide`` and ``evolve``
(``streams.table.process_command``). Per partition, it then writes in **one Kafka transaction**
the events (as CloudEvents), the command results, the state documents that are due, any
snapshots, and the commands offset the batch reached. Deciding the next batch overlaps with the
previous batch's transactions.

Each partition has its own transactional producer, whose transactional id names the group and
the partition. A worker that is handed a partition first starts that producer, which fences
every earlier producer with the same id: a worker paused past its session (a zombie) can write
nothing more, and what it had begun is aborted. Readers of the topics it writes read committed
records only.

The state is a table of negotiations per partition, kept in memory (``streams.table``). When a
worker is handed a partition, it rebuilds the table from that partition's snapshots and the events
after their checkpoint, and it reads at least as far as the offset recorded with the last
committed batch (the offset commit's metadata) and the end offset the partition's leader reports,
retrying through leader elections and unavailable brokers; a recovery that cannot get there fails
the worker, it never decides on a half-read log. ``docs/streams.md`` says why this cannot be
fooled.

Effectively once: the table holds only the events of commands before the committed offset; events
of later commands (the *tail*, possible when an offset commit is read before it settles) are kept
aside. Each command delivered again is decided again against exactly the state it first met, and
its logged events are applied instead of written again. A write that fails stops the worker
before its transaction commits, so it restarts from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import InvalidProducerEpoch, ProducerFenced
from aiokafka.structs import OffsetAndMetadata

from schemas.topics import COMMAND_RESULTS, COMMANDS, DEAD_LETTERS, EVENTS, SNAPSHOT_MAX_BYTES, SNAPSHOTS, STATE
from streams.codec import DecodeError, encode_state
from streams.connection import KafkaConnection
from streams.core.decider import Limits
from streams.core.state import SequenceGap
from streams.core.views import StateDocumentCache
from streams.metrics import WorkerMetrics
from streams.rebalance import BatchLock, still_assigned
from streams.snapshots import CHECKPOINT_KEY, Checkpoint, snapshot_is_current
from streams.table import COMMAND_OFFSET_HEADER, NegotiationTable, Outbox, process_command
from streams.throttle import StateThrottle
from streams.tracing import EVENT_PREFIX, Tracing

__all__ = [
    "COMMAND_OFFSET_HEADER",
    "MissingTopics",
    "NegotiationTable",
    "NegotiationWorker",
    "Outbox",
    "RecoveryError",
    "WorkerConfig",
    "process_command",
]

log = structlog.get_logger("koopkracht.worker")

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: KafkaConnection | str
    """How to reach the brokers (a ``host:port[,…]`` string: a plaintext cluster)."""
    topic_prefix: str = "koopkracht"
    group_id: str | None = None
    max_batch: int = 2000
    linger_ms: int = 2
    producer_batch_bytes: int = 512 * 1024
    """The largest record batch the transactional producers build per partition (aiokafka's
    ``max_batch_size``; its default of 16 KiB holds about twenty events). Each record batch of a
    partition is a produce request of its own, so during a rush a transaction of 2,000 commands
    took about a hundred requests, one after another, with 16 KiB; with 512 KiB it takes a few.
    Within the topics' ``max.message.bytes`` (1 MiB, the broker's default)."""
    state_interval_ms: int = 1000
    """A negotiation's state document is published at most this often (0: after every batch that
    changed it); the newest one always follows within about this long. Every change is in the
    events topic as it happens."""
    session_timeout_ms: int = 10_000
    """A dead worker's negotiations move to a live one after about this long."""
    recovery_timeout_s: float = 300.0
    """A partition that cannot be recovered in this long (brokers down, a log shorter than its
    committed offsets say) stops the worker with an error, rather than deciding on less."""
    snapshot_lag_events: int = 10_000
    """A negotiation is snapshotted once its first change not in a snapshot is this many events
    behind the partition's end (so recovery replays about this many events at most) …"""
    snapshot_lag_s: float = 60.0
    """… or this old."""
    snapshot_budget_ms: float = 20.0
    """Snapshots taken per batch and partition stop after about this much encoding for every 500
    commands the batch holds for the partition (and this much for fewer): the time given to
    snapshots keeps pace with the commands decided, whatever the size of the batches."""
    transaction_timeout_ms: int = 60_000
    limits: Limits = field(default_factory=Limits)
    """How large one negotiation may grow (the core refuses what goes beyond)."""
    sigkill_after_commands: int | None = None
    """Fault injection for tests: SIGKILL this process in the middle of the batch that reaches
    this many commands — after its events are written, before its transaction commits."""
    sigstop_after_commands: int | None = None
    """Fault injection for tests: SIGSTOP this process, once, at the same point (a zombie to be)."""

    @property
    def group(self) -> str:
        return self.group_id or f"{self.topic_prefix}-worker"

    @property
    def kafka(self) -> KafkaConnection:
        return KafkaConnection.of(self.bootstrap)


class RecoveryError(RuntimeError):
    """A partition's table could not be rebuilt from the log."""


class MissingTopics(RecoveryError):
    """The worker's topics are not all there (``koopkracht topics ensure`` creates them)."""


class RecoveryStalled(RuntimeError):
    """A read made no progress for a while (it is tried again until the recovery's deadline)."""


STALL_S = 30.0


SNAPSHOT_BUDGET_COMMANDS = 500
"""``snapshot_budget_ms`` is given per this many commands of a batch's partition."""

GC_THRESHOLDS = (20_000, 20, 50)
"""The collector's thresholds in the worker (Python's: 700, 10, 10). A worker holds millions of
long-lived objects (its tables) and makes thousands of short-lived ones per batch; with the
defaults a collection runs every 700 allocations and every hundredth walks the whole heap."""


def _settle() -> None:
    """After a recovery: what the tables hold now is long-lived; it is moved out of the collector's
    sight (``gc.freeze``), so that later collections do not walk it again and again. A frozen
    object is still freed when its last reference goes (the states hold no reference cycles). No
    collection first: a full one over a large table would lengthen the recovery."""
    gc.freeze()


def _events_end(metadata: str | None) -> int:
    """The events offset recorded with a committed batch (0 when none, or written by older code)."""
    if not metadata:
        return 0
    try:
        value = orjson.loads(metadata).get("events_end", 0)
    except (orjson.JSONDecodeError, AttributeError):
        return 0
    return value if isinstance(value, int) and value >= 0 else 0


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


async def _all(futures: list[Any]) -> list[Any]:
    """Wait for every send; raise the first failure (having retrieved them all, so that a fenced
    transaction's hundreds of failed sends do not each log "exception was never retrieved")."""
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


class NegotiationWorker:
    """Consumes commands as a member of the worker group; see the module docstring."""

    def __init__(
        self, config: WorkerConfig, metrics: WorkerMetrics | None = None, tracing: Tracing | None = None
    ) -> None:
        self.config = config
        self.metrics = metrics or WorkerMetrics()
        self.tracing = tracing or Tracing.off()
        """Each command's decision is a span, child of the context its message carries; its events
        carry the decision's context on (``streams.tracing``)."""
        self.joined = False
        """Handed its share of the partitions (maybe none) at least once: a member of its group."""
        prefix = config.topic_prefix
        self.commands_topic = COMMANDS.name(prefix)
        self.events_topic = EVENTS.name(prefix)
        self.state_topic = STATE.name(prefix)
        self.results_topic = COMMAND_RESULTS.name(prefix)
        self.snapshots_topic = SNAPSHOTS.name(prefix)
        self.dead_letters_topic = DEAD_LETTERS.name(prefix)
        self.tables: dict[int, NegotiationTable] = {}
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.ready = asyncio.Event()
        self.processed = 0
        self.last_recovery_s = 0.0
        self.recoveries: list[dict[str, Any]] = []
        """What each recovery read, for operators and tests (the newest last)."""
        self.throttle = StateThrottle(config.state_interval_ms / 1000)
        self.documents = StateDocumentCache()
        """The state documents' rows as last drawn, so that drawing one again builds only what changed."""
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        # Held while a batch is processed, and by the rebalance callbacks: a partition is handed
        # over only between batches, after the last one's transaction has committed.
        # Batches run under this lock, and partitions are given up under it (streams.rebalance).
        self._lock = BatchLock(revoked=self._on_revoked, assigned=self._on_assigned)
        self._to_recover: set[TopicPartition] = set()
        self._completing: asyncio.Task[None] | None = None
        """The newest batch still being written and committed (it waits for the one before)."""
        self._failure: Exception | None = None
        """A write that failed in a rebalance callback; the main loop raises it."""
        self._stopped_once = False

    @property
    def consumer(self) -> AIOKafkaConsumer | None:
        """The group's consumer while ``run`` runs (its lag is reported from it)."""
        return self._consumer

    def partitions(self) -> tuple[set[int], set[int]]:
        """The partitions this worker owns: those whose table is rebuilt (it decides their
        commands), and those whose table is being rebuilt."""
        owned = {tp.partition for tp in self._consumer.assignment()} if self._consumer is not None else set()
        return owned & self.tables.keys(), owned - self.tables.keys()

    def transactional_id(self, partition: int) -> str:
        """The same for every worker of the group: starting it fences the partition's previous writer."""
        return f"{self.config.group}.{partition}"

    # -- recovery --------------------------------------------------------------------------
    async def _retry(
        self, step: Callable[[], Awaitable[T]], what: str, partition: int | None, attempt_s: float | None = 30.0
    ) -> T:
        """Run ``step`` until it succeeds. Each attempt may take ``attempt_s`` (None: as long as it
        makes progress; a read that stalls raises by itself). After ``recovery_timeout_s`` without
        success, or at once on a log that cannot be replayed, fail loudly with the error."""
        deadline = time.monotonic() + self.config.recovery_timeout_s
        where = "the worker" if partition is None else f"partition {partition}"
        attempt = 0
        while True:
            attempt += 1
            try:
                if attempt_s is None:
                    return await step()
                return await asyncio.wait_for(step(), timeout=attempt_s)
            except (RecoveryError, asyncio.CancelledError):
                raise
            except (SequenceGap, DecodeError) as exc:  # reading again would read the same
                raise RecoveryError(f"{where}: could not {what}: {exc}") from exc
            except Exception as exc:
                if time.monotonic() >= deadline:
                    raise RecoveryError(
                        f"{where}: could not {what} within {self.config.recovery_timeout_s:.0f} s "
                        f"({attempt} attempts; last error: {exc!r})"
                    ) from exc
                log.warning("recovery retrying", partition=partition, step=what, attempt=attempt, error=repr(exc))
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))

    async def _fence(self, partition: int) -> AIOKafkaProducer:
        """Start the partition's transactional producer: any earlier one with its id is fenced and
        its open transaction aborted before this returns."""
        producer = self.config.kafka.producer(
            transactional_id=self.transactional_id(partition),
            transaction_timeout_ms=self.config.transaction_timeout_ms,
            linger_ms=self.config.linger_ms,
            max_batch_size=self.config.producer_batch_bytes,
            max_request_size=SNAPSHOT_MAX_BYTES + 1024 * 1024,
            client_id=f"{self.config.group}.{partition}",
        )
        try:
            await producer.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        return producer

    async def _committed(self, partition: int) -> tuple[int, int]:
        """The partition's committed commands offset (-1: none) and the events offset its batch reached."""
        assert self._admin is not None
        tp = TopicPartition(self.commands_topic, partition)
        offsets = await self._admin.list_consumer_group_offsets(self.config.group, partitions=[tp])
        committed = offsets.get(tp)
        if committed is None:
            # An answer for the partition asked about always names it (-1: nothing committed);
            # aiokafka drops a group-level error (a coordinator loading or moving) and answers {}.
            raise RuntimeError(f"the group coordinator gave no offset for {tp.topic}:{tp.partition}")
        return committed.offset, _events_end(committed.metadata)

    async def _read(
        self,
        reader: AIOKafkaConsumer,
        tp: TopicPartition,
        start: int | None,
        floor: int,
        handle: Callable[[Any], None],
    ) -> tuple[int, int]:
        """Read committed records of ``tp`` from ``start`` (None: the beginning) to at least ``floor``
        and the end offset its leader reports now. Returns (records read, offset reached)."""
        reader.assign([tp])
        if start is None:
            await reader.seek_to_beginning(tp)
        else:
            reader.seek(tp, start)
        first = await reader.position(tp)
        if start is not None and first != start:
            raise RecoveryError(f"{tp.topic}:{tp.partition}: asked to read from {start}, positioned at {first}")
        end = (await reader.end_offsets([tp]))[tp]
        target = max(floor, end)
        count = 0
        progress_at, last = time.monotonic(), first
        while (position := await reader.position(tp)) < target:
            if position > last:
                progress_at, last = time.monotonic(), position
            elif time.monotonic() - progress_at > STALL_S:  # retried from the start by the caller
                raise RecoveryStalled(
                    f"{tp.topic}:{tp.partition}: no progress for {STALL_S:.0f} s at offset {position} of {target}"
                )
            batch = await reader.getmany(tp, timeout_ms=500, max_records=50_000)
            for record in batch.get(tp, []):
                handle(record)
                count += 1
        return count, position

    async def _recover_partition(self, reader: AIOKafkaConsumer, partition: int) -> int:
        """Rebuild one partition's table; returns the commands offset to resume from."""
        started = time.perf_counter()
        if partition not in self.producers:
            self.producers[partition] = await self._retry(
                lambda: self._fence(partition), "fence the partition's earlier writer", partition
            )
        committed, events_floor = await self._retry(
            lambda: self._committed(partition), "read the committed offset", partition
        )
        commands_tp = TopicPartition(self.commands_topic, partition)

        async def rebuild() -> tuple[NegotiationTable, int, dict[str, Any]]:
            snapshots: dict[str, bytes] = {}
            checkpoint_value: list[bytes | None] = [None]

            def keep(record: Any) -> None:
                if record.key == CHECKPOINT_KEY:
                    checkpoint_value[0] = record.value
                elif record.key is not None:
                    snapshots[record.key.decode()] = record.value

            snapshot_records, _ = await self._read(
                reader, TopicPartition(self.snapshots_topic, partition), None, 0, keep
            )
            checkpoint = Checkpoint.decode(checkpoint_value[0])
            log_start = (await reader.beginning_offsets([commands_tp]))[commands_tp]
            replay_from = max(committed, log_start, checkpoint.commands_next if checkpoint else 0)
            table = NegotiationTable(replay_from)
            events_from = 0
            if checkpoint is not None:
                events_from = checkpoint.events_from
                table.frozen = {k: v for k, v in snapshots.items() if snapshot_is_current(v)}
                table.events_end = events_from
            events_read, reached = await self._read(
                reader,
                TopicPartition(self.events_topic, partition),
                events_from,
                max(events_floor, events_from),
                lambda record: table.recover(record.value, record.headers, record.offset),
            )
            table.events_end = max(table.events_end, reached)
            figures = {
                "partition": partition,
                "snapshot_records": snapshot_records,
                "snapshots": len(table.frozen) + len(table.states) if checkpoint else 0,
                "checkpoint": events_from if checkpoint else None,
                "events_read": events_read,
                "events_reached": reached,
                "events_floor": events_floor,
                "committed": committed,
                "replay_from": replay_from,
            }
            return table, replay_from, figures

        table, replay_from, figures = await self._retry(rebuild, "read the partition's log", partition, None)
        self.tables[partition] = table
        # Documents held back by the interval die with a worker: publish those of negotiations the
        # events after the checkpoint changed (a snapshot is taken with its document). Those with
        # commands to decide again are drawn when those are decided: a document drawn before could
        # go back behind one the dead worker published.
        replayed = {negotiation_id for negotiation_id, _ in table.tail}
        self.throttle.changed(table.dirty.keys() - replayed, partition)
        figures.update(
            negotiations=len(table),
            to_replay=len(table.tail),
            seconds=round(time.perf_counter() - started, 3),
        )
        self.recoveries = [*self.recoveries[-99:], figures]
        self.metrics.recovery_seconds.observe(figures["seconds"])
        self.metrics.recovered_events.inc(figures["events_read"])
        log.info("partition recovered", **figures)
        return replay_from

    async def _recover_with_reader(self, partition: int) -> int:
        reader = self.config.kafka.consumer(
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="none",
            # A fetch that holds only a transaction's commit marker returns no records: do not
            # let the broker wait for more before answering it.
            fetch_max_wait_ms=10,
            max_partition_fetch_bytes=SNAPSHOT_MAX_BYTES + 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        try:
            await self._retry(reader.start, "connect a reader", partition)
            return await self._recover_partition(reader, partition)
        finally:
            with contextlib.suppress(Exception):
                await reader.stop()

    async def recover(self, partitions: list[int]) -> dict[int, int]:
        """Rebuild the tables of these partitions; returns each one's commands offset to resume from."""
        wanted = [p for p in partitions if p not in self.tables]
        resume: dict[int, int] = {}
        if not wanted:
            return resume
        started = time.perf_counter()
        own_admin = self._admin is None  # recovering outside ``run`` (a benchmark, a test)
        admin = self._admin or self.config.kafka.admin(client_id=self.config.group)
        self._admin = admin
        try:
            if own_admin:
                await self._retry(admin.start, "connect an admin client", wanted[0])
            # Partitions recover side by side (their round trips overlap); the first that fails
            # cancels the others.
            try:
                async with asyncio.TaskGroup() as group:
                    tasks = {p: group.create_task(self._recover_with_reader(p)) for p in wanted}
            except BaseExceptionGroup as failed:
                raise failed.exceptions[0] from None
            resume = {p: task.result() for p, task in tasks.items()}
        finally:
            if own_admin:
                with contextlib.suppress(Exception):
                    await admin.close()
                self._admin = None
        self.last_recovery_s = time.perf_counter() - started
        _settle()
        log.info(
            "tables recovered",
            partitions=wanted,
            events=sum(self.tables[p].events_applied for p in wanted),
            to_replay=sum(len(self.tables[p].tail) for p in wanted),
            negotiations=sum(len(self.tables[p]) for p in wanted),
            seconds=round(self.last_recovery_s, 3),
        )
        return resume

    # -- the loop --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Process commands until ``stop`` is set; an exception means: restart from the log."""
        stop = stop or asyncio.Event()
        gc.set_threshold(*GC_THRESHOLDS)
        self._admin = self.config.kafka.admin(client_id=self.config.group)
        self._consumer = self.config.kafka.consumer(
            group_id=self.config.group,
            client_id=self.config.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=1000,
            # The loop does not poll while it rebuilds partitions: after a change to the core, a
            # partition replays its whole log once (heartbeats go on meanwhile).
            max_poll_interval_ms=1_800_000,
            max_poll_records=self.config.max_batch,
        )
        try:
            # Started while a broker is down (a restart during an outage): retried, not a crash.
            await self._retry(self._admin.start, "connect an admin client", None)
            await self._retry(self._require_topics, "list the topics", None)
            await self._retry(self._consumer.start, "join the group", None)
            self._consumer.subscribe([self.commands_topic], listener=self._lock)
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
                    batch = still_assigned(self._consumer, batch)
                    if batch:
                        await self.process_batch(batch)
            async with self._lock:
                await self.drain()
                await self._flush_states(everything=True)
        except (ProducerFenced, InvalidProducerEpoch):
            log.error("fenced: another worker took over this worker's partitions while it was paused; it wrote "
                      "nothing more and stops, to join again as a new member")  # fmt: skip
            raise
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
            await self._release(set(self.producers))
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._admin.close()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Partitions move to another worker (under the batch lock: the batches in progress have committed)."""
        partitions = {tp.partition for tp in revoked}
        try:
            if await self._settle():
                await self._flush_states(everything=True, partitions=partitions)  # before another worker owns them
        except Exception as exc:  # aiokafka only logs what a callback raises: stop the loop
            self._failure = exc
        finally:
            await self._release(partitions)
        log.info("partitions revoked", partitions=sorted(partitions))

    async def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        # Rebuilding tables can take long; aiokafka sends no heartbeats while this callback runs.
        # So only pause the new partitions here; the main loop rebuilds and resumes them.
        log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))
        self.joined = True
        fresh = [tp for tp in assigned if tp.partition not in self.tables]
        if fresh:
            assert self._consumer is not None
            self._consumer.pause(*fresh)
            self._to_recover.update(fresh)

    async def _require_topics(self) -> None:
        assert self._admin is not None
        present = set(await self._admin.list_topics())
        topics = [self.commands_topic, self.events_topic, self.state_topic, self.results_topic]
        missing = [t for t in [*topics, self.snapshots_topic, self.dead_letters_topic] if t not in present]
        if missing:
            raise MissingTopics(f"the topics {', '.join(missing)} do not exist: run `koopkracht topics ensure`")

    async def _release(self, partitions: set[int]) -> None:
        """Give up partitions: their tables (and their drawn document rows), pending documents and producers."""
        self.throttle.forget(partitions)
        for partition in partitions:
            table = self.tables.pop(partition, None)
            if table is not None:
                self.documents.forget(table.negotiation_ids())
            producer = self.producers.pop(partition, None)
            if producer is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await producer.stop()

    async def _recover_assigned(self) -> None:
        assert self._consumer is not None
        async with self._lock:
            assignment = self._consumer.assignment()
            tps = [tp for tp in self._to_recover if tp in assignment]
            self._to_recover.clear()
            if tps:
                resume = await self.recover([tp.partition for tp in tps])
                for tp in tps:
                    if tp.partition in resume:
                        # Exactly where the table expects the commands to continue.
                        self._consumer.seek(tp, resume[tp.partition])
                self._consumer.resume(*tps)
        self.ready.set()

    async def process_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """Decide a batch; its transactions (one per partition) follow in the background.

        Deciding the next batch overlaps with the previous batch's transactions. At most two
        batches are in flight, and they commit in order. A failed transaction fails the worker;
        what it had not committed is decided again after the restart.
        """
        started = time.perf_counter()
        outboxes: dict[int, Outbox] = {}
        now = datetime.now(UTC)
        config = self.config
        tracing, decided = self.tracing, self.metrics.decided
        for tp, records in batch.items():
            table = self.tables.get(tp.partition)
            if table is None:  # a partition is paused until its table is rebuilt
                raise RecoveryError(f"records of partition {tp.partition} arrived before its table was rebuilt")
            outbox = outboxes[tp.partition] = Outbox(commands_next=records[-1].offset + 1)
            table.commands_next = records[-1].offset + 1
            for record in records:
                with tracing.processing(tp.topic, tp.partition, record.offset, record.headers):
                    outcome = process_command(
                        outbox,
                        table,
                        topic=tp.topic,
                        partition=tp.partition,
                        offset=record.offset,
                        key=record.key,
                        value=record.value,
                        now=now,
                        consumer=config.group,
                        limits=config.limits,
                        trace=tracing.headers(EVENT_PREFIX),
                    )
                decided(outcome)
            self.throttle.changed(outbox.changed, tp.partition)
            # Taken now, from a state that holds nothing newer than this batch: the next batch
            # changes it while this one is being written.
            outbox.snapshots = table.take_snapshots(
                lag_events=config.snapshot_lag_events,
                lag_s=config.snapshot_lag_s,
                budget_s=config.snapshot_budget_ms / 1000 * max(1.0, len(records) / SNAPSHOT_BUDGET_COMMANDS),
            )
            if outbox.snapshots:
                outbox.checkpoint_before = table.checkpoint_bound()
                for key, _ in outbox.snapshots:  # a snapshot carries its document along
                    if self.throttle.take(key.decode()):
                        state = table.state(key.decode())
                        assert state is not None
                        outbox.states.append((key, encode_state(state, self.documents)))
        for negotiation_id, partition in self.throttle.due():
            document = self._document(negotiation_id, partition)
            if document is not None:
                outboxes.setdefault(partition, Outbox()).states.append(document)
        size = sum(len(records) for records in batch.values())
        previous = self._completing
        self._completing = asyncio.create_task(self._complete(previous, outboxes, size, started))
        if previous is not None:
            await asyncio.shield(previous)  # back-pressure: at most this batch and the one before

    def _document(self, negotiation_id: str, partition: int) -> tuple[bytes, bytes] | None:
        table = self.tables.get(partition)
        state = table.state(negotiation_id) if table is not None else None
        if state is None:  # its partition was handed over meanwhile
            return None
        return negotiation_id.encode(), encode_state(state, self.documents)

    async def _complete(
        self, previous: asyncio.Task[None] | None, outboxes: dict[int, Outbox], size: int, started: float
    ) -> None:
        if previous is not None:
            await previous
        await _all([self._transaction(p, outbox, size) for p, outbox in outboxes.items()])
        self.processed += size
        self.metrics.batch_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_commands.observe(size)

    async def _transaction(self, partition: int, outbox: Outbox, size: int) -> None:
        """Write one partition's share of a batch, and its offset, atomically."""
        producer = self.producers[partition]
        table = self.tables[partition]
        sent: list[asyncio.Future[Any]] = []

        async def send(topic: str, key: bytes | None, value: bytes, **options: Any) -> asyncio.Future[Any]:
            future: asyncio.Future[Any] = await producer.send(topic, key=key, value=value, **options)
            sent.append(future)
            return future

        async def batched(topic: str, records: Iterable[tuple[Any, ...]]) -> list[tuple[asyncio.Future[Any], int]]:
            """Send records (key, value[, headers]) to the partition as whole record batches (each
            future: the batch's first offset) and their sizes. A batch built here costs about a
            third of the CPU per record that ``send`` does (no future, no lookup per record), and
            goes out complete, without waiting ``linger_ms`` for more."""
            batches: list[tuple[asyncio.Future[Any], int]] = []
            batch = producer.create_batch()
            for key, value, *headers in records:
                header = headers[0] if headers else []
                if batch.append(key=key, value=value, timestamp=None, headers=header) is None:  # full
                    batches.append((await producer.send_batch(batch, topic, partition=partition), batch.record_count()))
                    sent.append(batches[-1][0])
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None, headers=header)  # (a first record always fits)
            if batch.record_count():
                batch.close()  # complete: sent at once, not after the producer's linger
                batches.append((await producer.send_batch(batch, topic, partition=partition), batch.record_count()))
                sent.append(batches[-1][0])
            return batches

        try:
            await producer.begin_transaction()
            events = await batched(self.events_topic, outbox.events)
            if events:
                await _all([future for future, _ in events])
                last, count = events[-1]
                table.events_end = max(table.events_end, last.result().offset + count)
                if size and (self.config.sigkill_after_commands or self.config.sigstop_after_commands):
                    self._maybe_fault(size)  # a fault point: events in the log, in a transaction still open
            end = table.events_end
            pending = [future for future, _ in await batched(self.state_topic, outbox.states)]
            pending += [future for future, _ in await batched(self.results_topic, outbox.results)]
            pending += [await send(self.dead_letters_topic, k, v) for k, v in outbox.dead_letters]
            if outbox.snapshots:
                bound = end if outbox.checkpoint_before is None else min(outbox.checkpoint_before, end)
                commands_next = table.commands_next if outbox.commands_next is None else outbox.commands_next
                checkpoint = Checkpoint(events_from=bound, commands_next=commands_next)
                records = [*outbox.snapshots, (CHECKPOINT_KEY, checkpoint.encode())]  # the checkpoint last
                pending += [future for future, _ in await batched(self.snapshots_topic, records)]
            await _all(pending)
            if outbox.commands_next is not None:
                offsets = {
                    TopicPartition(self.commands_topic, partition): OffsetAndMetadata(
                        outbox.commands_next, orjson.dumps({"events_end": end}).decode()
                    )
                }
                await producer.send_offsets_to_transaction(offsets, self.config.group)
            await producer.commit_transaction()
        except BaseException:
            # A fenced or failed transaction fails each of its sends: retrieve them all, so that
            # they do not each log "exception was never retrieved"; the first failure is raised.
            for future in sent:
                future.add_done_callback(_retrieve)
            # Abort what can be aborted, so that readers are not held at the last stable offset
            # until the transaction times out (a fenced producer cannot: its successor did it).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(producer.abort_transaction(), 5)
            raise

    async def snapshot_partition(self, partition: int) -> dict[str, Any]:
        """Snapshot every negotiation of a partition changed since its last snapshot, now, in one
        transaction with a checkpoint at the partition's end (between batches: hold the lock)."""
        await self.drain()  # the checkpoint's commands offset must be a committed one
        table = self.tables[partition]
        started = time.perf_counter()
        outbox = Outbox(snapshots=table.take_snapshots(lag_events=0, lag_s=0.0, budget_s=float("inf")))
        outbox.checkpoint_before = table.checkpoint_bound()  # a snapshot too large stays open
        encoded = time.perf_counter() - started
        if outbox.snapshots:
            await self._transaction(partition, outbox, 0)
        return {
            "snapshots": len(outbox.snapshots),
            "bytes": sum(len(value) for _, value in outbox.snapshots),
            "encode_s": encoded,
            "seconds": time.perf_counter() - started,
        }

    async def _flush_states(self, everything: bool = False, partitions: set[int] | None = None) -> None:
        """Between batches (none in flight): write the state documents that are due."""
        outboxes: dict[int, Outbox] = {}
        for negotiation_id, partition in self.throttle.due(everything, partitions):
            document = self._document(negotiation_id, partition)
            if document is not None:
                outboxes.setdefault(partition, Outbox()).states.append(document)
        await _all([self._transaction(p, outbox, 0) for p, outbox in outboxes.items()])

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

    def _maybe_fault(self, batch_size: int) -> None:
        reached = self.processed + batch_size
        kill, stop = self.config.sigkill_after_commands, self.config.sigstop_after_commands
        if kill is not None and reached >= kill:
            # The events reached the broker, inside a transaction that never commits: the restart
            # must meet neither them nor any result of this batch.
            log.warning("fault injection: SIGKILL in the middle of a batch", processed=self.processed)
            os.kill(os.getpid(), signal.SIGKILL)
        if stop is not None and reached >= stop and not self._stopped_once:
            # Paused with a transaction open; when continued, it tries to finish it.
            self._stopped_once = True
            log.warning("fault injection: SIGSTOP in the middle of a batch", processed=self.processed)
            os.kill(os.getpid(), signal.SIGSTOP)
            log.warning("fault injection: continued after SIGSTOP; finishing the batch's transaction")
