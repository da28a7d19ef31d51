"""The local Kafka is real: records go through it with aiokafka, the client every service uses."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def test_records_produced_with_aiokafka_are_consumed_in_order(kafka_bootstrap: str, topic_prefix: str) -> None:
    # Given a topic with three partitions
    topic = f"{topic_prefix}.roundtrip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    await admin.close()

    # When 300 records are produced under 10 keys with acks=all
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for i in range(300):
            await producer.send(topic, key=f"k{i % 10}".encode(), value=str(i).encode())
        await producer.flush()
    finally:
        await producer.stop()

    # Then a consumer reads all 300 back, and each key's records keep their order
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen: dict[str, list[int]] = {}
    try:
        async with asyncio.timeout(30):
            while sum(map(len, seen.values())) < 300:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        assert record.key is not None
                        assert record.value is not None
                        seen.setdefault(record.key.decode(), []).append(int(record.value))
    finally:
        await consumer.stop()
    assert sorted(seen) == [f"k{i}" for i in range(10)]
    for key, values in seen.items():
        assert values == sorted(values), key
        assert len(values) == 30
