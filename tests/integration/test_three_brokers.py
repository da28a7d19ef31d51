"""A three-broker cluster keeps every acknowledged record when one broker crashes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.kafka import ClusterSpec, KafkaCluster
from tests.conftest import free_base_port

pytestmark = pytest.mark.slow


@pytest.fixture
def three_brokers(tmp_path: Path):  # type: ignore[no-untyped-def]
    cluster = KafkaCluster(tmp_path, ClusterSpec(nodes=3, base_port=free_base_port(6)))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def _leaders(bootstrap: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
        return {p["partition"]: p["leader"] for p in description["partitions"]}
    finally:
        await admin.close()


async def test_every_acknowledged_record_survives_a_sigkilled_broker(three_brokers: KafkaCluster) -> None:
    bootstrap = three_brokers.bootstrap
    # Given a topic replicated three times, with at least two in-sync replicas required
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics(
        [NewTopic("ledger", num_partitions=3, replication_factor=3, topic_configs={"min.insync.replicas": "2"})]
    )
    await admin.close()

    # And 3,000 records acknowledged by the cluster with acks=all
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    acknowledged: set[int] = set()
    try:
        futures = [await producer.send("ledger", key=str(i % 30).encode(), value=str(i).encode()) for i in range(3000)]
        for i, future in enumerate(futures):
            await future
            acknowledged.add(i)
    finally:
        await producer.stop()
    assert len(acknowledged) == 3000

    # When the broker that leads partition 0 is killed with SIGKILL
    leader = (await _leaders(bootstrap, "ledger"))[0]
    three_brokers.kill_node(leader - 1)
    assert not three_brokers.status()[leader - 1].alive

    # Then a consumer (bootstrapping from the survivors) still reads every acknowledged record
    survivors = ",".join(f"127.0.0.1:{n.broker_port}" for n in three_brokers.status() if n.alive)
    consumer = AIOKafkaConsumer("ledger", bootstrap_servers=survivors, auto_offset_reset="earliest")
    await consumer.start()
    read: set[int] = set()
    try:
        async with asyncio.timeout(60):
            while not acknowledged <= read:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    read.update(int(r.value) for r in records if r.value is not None)
    finally:
        await consumer.stop()
    assert read == acknowledged
    # And partition 0 has a new leader among the survivors
    new_leader = (await _leaders(survivors, "ledger"))[0]
    assert new_leader != leader
