"""Prometheus metrics of the stream processes: the worker's, and the consumer lag that the worker
and the projector both report.

Each process keeps them in a registry of its own (one per object, so tests stay apart); the
services layer serves it on the process's metrics port (``services.observability``), and
``docs/deployment.md`` names every metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RECOVERY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

OUTCOMES = ("accepted", "rejected", "failed", "unreadable", "wrong_key")
"""How the worker ends a command: its events written (``accepted``), refused by the core
(``rejected``), refused because deciding it failed (``failed``: a defect, kept as a dead letter),
or not a command of this negotiation at all (``unreadable``, ``wrong_key``: dead letters only)."""
DEAD_LETTERED = {"failed", "unreadable", "wrong_key"}


@dataclass
class ConsumerLag:
    """``koopkracht_consumer_lag``: per assigned partition, how far the group's consumer is behind
    the partition's end (the last stable offset, which a ``read_committed`` consumer can reach)."""

    registry: CollectorRegistry
    group: str

    def __post_init__(self) -> None:
        self.lag = Gauge(
            "koopkracht_consumer_lag",
            "Records of the partition not yet processed by this process: its end (last stable offset) "
            "minus the consumer's position.",
            ["group", "topic", "partition"],
            registry=self.registry,
        )
        self._reported: set[TopicPartition] = set()

    async def sample(self, consumer: Any) -> None:
        """Set the lag of each partition assigned to ``consumer`` (an ``AIOKafkaConsumer``), from
        what its last fetches learnt (no request to the brokers); forget partitions it gave up."""
        assigned = set(consumer.assignment())
        for tp in self._reported - assigned:
            self.lag.remove(self.group, tp.topic, str(tp.partition))
        self._reported &= assigned
        for tp in assigned:
            end = consumer.last_stable_offset(tp)
            if end is None or end < 0:
                end = consumer.highwater(tp)
            if end is None:
                continue  # nothing fetched from it yet
            position = await consumer.position(tp)
            self.lag.labels(self.group, tp.topic, str(tp.partition)).set(max(0, end - position))
            self._reported.add(tp)


@dataclass
class WorkerMetrics:
    """The negotiation worker's metrics (see ``docs/deployment.md``, "Metrics and health")."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        commands = Counter(
            "koopkracht_worker_commands",
            "Commands decided, by outcome (a command decided again after a restart counts again).",
            ["outcome"],
            registry=self.registry,
        )
        self.commands = {outcome: commands.labels(outcome) for outcome in OUTCOMES}
        dead_letters = Counter(
            "koopkracht_worker_dead_letters",
            "Messages of the commands topic put on the dead-letters topic, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.dead_letters = {reason: dead_letters.labels(reason) for reason in sorted(DEAD_LETTERED)}
        self.batch_seconds = Histogram(
            "koopkracht_worker_batch_seconds",
            "From taking a batch of commands to its transactions having committed (events, results, offsets).",
            registry=self.registry,
            buckets=BATCH_BUCKETS,
        )
        self.batch_commands = Histogram(
            "koopkracht_worker_batch_commands",
            "Commands per batch.",
            registry=self.registry,
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
        )
        self.recovery_seconds = Histogram(
            "koopkracht_worker_recovery_seconds",
            "Time to rebuild one partition's table (snapshots and events) when the worker is handed it.",
            registry=self.registry,
            buckets=RECOVERY_BUCKETS,
        )
        self.recovered_events = Counter(
            "koopkracht_worker_recovery_events",
            "Events read to rebuild tables.",
            registry=self.registry,
        )
        self.partitions = Gauge(
            "koopkracht_worker_partitions",
            "Partitions of the commands topic this worker owns, by state (recovering: its table is being rebuilt).",
            ["state"],
            registry=self.registry,
        )

    def decided(self, outcome: str) -> None:
        self.commands[outcome].inc()
        if outcome in DEAD_LETTERED:
            self.dead_letters[outcome].inc()
