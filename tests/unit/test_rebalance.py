"""The batch lock shared by the worker and the projector: revocations wait for the batch in progress."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import TopicPartition

from streams.rebalance import BatchLock, still_assigned

A = TopicPartition("commands", 0)
B = TopicPartition("commands", 1)


async def test_a_revocation_waits_for_the_batch_in_progress() -> None:
    order: list[str] = []

    async def revoked(partitions: set[TopicPartition]) -> None:
        order.append(f"revoked {sorted(tp.partition for tp in partitions)}")

    lock = BatchLock(revoked)
    batch_started = asyncio.Event()
    finish_batch = asyncio.Event()

    async def batch() -> None:
        async with lock:
            batch_started.set()
            await finish_batch.wait()
            order.append("batch committed")

    running = asyncio.create_task(batch())
    await batch_started.wait()
    revocation = asyncio.create_task(lock.on_partitions_revoked([A, B]))
    await asyncio.sleep(0)  # let the revocation reach the lock
    assert order == []  # it waits
    finish_batch.set()
    await asyncio.wait_for(asyncio.gather(running, revocation), timeout=5)
    assert order == ["batch committed", "revoked [0, 1]"]


async def test_assignment_is_passed_on_without_the_lock() -> None:
    seen: list[list[TopicPartition]] = []

    async def assigned(partitions: list[TopicPartition]) -> None:
        seen.append(partitions)

    async def revoked(partitions: set[TopicPartition]) -> None:
        raise AssertionError("not revoked")

    lock = BatchLock(revoked, assigned)
    async with lock:  # a batch in progress does not delay an assignment (the listener must be quick)
        await asyncio.wait_for(lock.on_partitions_assigned([A]), timeout=5)
    assert seen == [[A]]


def test_records_of_partitions_revoked_since_the_fetch_are_dropped() -> None:
    class Consumer:
        def assignment(self) -> set[TopicPartition]:
            return {A}

    batch: dict[TopicPartition, list[Any]] = {A: [1, 2], B: [3]}
    assert still_assigned(Consumer(), batch) == {A: [1, 2]}  # type: ignore[arg-type]
