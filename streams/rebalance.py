"""Rebalance under the batch lock: the pattern the worker and the projector share.

Both consume in batches and both must not lose a partition halfway through one. So each holds
one lock per batch, and gives partitions up under that same lock: a revocation waits until the
batch in progress is written and committed, and a batch fetched before a revocation keeps only
the records of partitions still assigned (the others belong to their new owner now).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

Records = TypeVar("Records")


class BatchLock(ConsumerRebalanceListener):  # type: ignore[misc]
    """The lock a consumer's batches run under, and the rebalance listener that respects it.

    ``revoked`` runs under the lock (after the batch in progress); ``assigned`` runs as is (a
    listener must return quickly: aiokafka sends no heartbeats while it runs).
    """

    def __init__(
        self,
        revoked: Callable[[set[TopicPartition]], Awaitable[None]],
        assigned: Callable[[list[TopicPartition]], Awaitable[None]] | None = None,
    ) -> None:
        self.lock = asyncio.Lock()
        self._revoked = revoked
        self._assigned = assigned

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:
            await self._revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        if self._assigned is not None:
            await self._assigned(list(assigned))

    async def __aenter__(self) -> BatchLock:
        await self.lock.acquire()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.lock.release()


def still_assigned(consumer: AIOKafkaConsumer, batch: dict[TopicPartition, Records]) -> dict[TopicPartition, Records]:
    """The part of a fetched batch whose partitions this consumer still owns (call under the lock)."""
    assignment = consumer.assignment()
    return {tp: records for tp, records in batch.items() if tp in assignment}
