"""The topic registry: every Kafka topic of Koopkracht, declared once.

Each topic has one key, one value type, a partition count, a cleanup policy, a retention and a
single writer. Nobody writes a topic name as a literal elsewhere: code asks this registry, with
the deployment's prefix (``KOOPKRACHT_TOPIC_PREFIX``, default ``koopkracht``).

Partitions: commands, events, state, command results and snapshots are all keyed by negotiation id and have
the same count, so one negotiation's commands, events and state live on partitions of the same
number and one worker owns all of them. Eight partitions let up to eight workers share the load
while keeping a small cluster's overhead low; the count can grow, never shrink, and growing it
moves negotiations between partitions, so choose it before going live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NEGOTIATION_PARTITIONS = 8

FOREVER = -1
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
SNAPSHOT_MAX_BYTES = 16 * 1024 * 1024
"""The largest snapshot record (a compressed negotiation state); larger ones are not written."""


@dataclass(frozen=True)
class Topic:
    suffix: str
    key: str
    value: str
    partitions: int
    cleanup_policy: Literal["delete", "compact"]
    retention_ms: int
    writer: str
    description: str
    max_message_bytes: int | None = None

    def name(self, prefix: str) -> str:
        return f"{prefix}.{self.suffix}"

    def configs(self) -> dict[str, str]:
        configs = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if self.cleanup_policy == "compact":
            # Readers of the latest state should not see long runs of superseded documents.
            configs["min.cleanable.dirty.ratio"] = "0.1"
            configs["segment.ms"] = str(HOUR_MS)
        if self.max_message_bytes is not None:
            configs["max.message.bytes"] = str(self.max_message_bytes)
        return configs


COMMANDS = Topic(
    suffix="commands",
    key="negotiation id",
    value="schemas.commands.Command (JSON)",
    partitions=NEGOTIATION_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=7 * DAY_MS,
    writer="api, scheduler",
    description="Requests to the negotiation's single writer (the scheduler's are ticks).",
)
EVENTS = Topic(
    suffix="events",
    key="negotiation id",
    value="schemas.events.Event as a binary-mode CloudEvent (JSON data, ce_* headers)",
    partitions=NEGOTIATION_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=FOREVER,
    writer="worker",
    description="Every fact of every negotiation, kept forever: the source of truth.",
)
STATE = Topic(
    suffix="state",
    key="negotiation id",
    value="schemas.documents.SharedState, full (coordinator) view (JSON)",
    partitions=NEGOTIATION_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=FOREVER,
    writer="worker",
    description="The latest shared negotiation state per negotiation.",
)
COMMAND_RESULTS = Topic(
    suffix="command-results",
    key="negotiation id",
    value="schemas.results.CommandResult (JSON), correlated by command id",
    partitions=NEGOTIATION_PARTITIONS,
    cleanup_policy="delete",
    retention_ms=1 * DAY_MS,
    writer="worker",
    description="The worker's answer to each command, for request/reply.",
)
SNAPSHOTS = Topic(
    suffix="snapshots",
    key="negotiation id (and one checkpoint key per partition)",
    value="a negotiation's state as of a committed batch, or the partition's checkpoint",
    partitions=NEGOTIATION_PARTITIONS,
    cleanup_policy="compact",
    retention_ms=FOREVER,
    writer="worker",
    description="The worker's table, so that a partition recovers from a snapshot and the events after it.",
    max_message_bytes=SNAPSHOT_MAX_BYTES,
)
DEAD_LETTERS = Topic(
    suffix="dead-letters",
    key="original key",
    value="schemas.deadletters.DeadLetter (JSON): the original bytes, coordinates and reason",
    partitions=1,
    cleanup_policy="delete",
    retention_ms=30 * DAY_MS,
    writer="worker",
    description="Messages the worker could not decode or process, kept for inspection.",
)

ALL_TOPICS: tuple[Topic, ...] = (COMMANDS, EVENTS, STATE, COMMAND_RESULTS, SNAPSHOTS, DEAD_LETTERS)
