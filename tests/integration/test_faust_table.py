"""faust-streaming runs against the real broker, and a changelog-backed table survives a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


def make_counter_app(app_id: str, bootstrap: str, datadir: Path) -> tuple[faust.App, faust.TopicT, faust.Table]:
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        datadir=str(datadir),  # not the working folder
        store="memory://",  # the table's durability is its changelog topic, which is what we test
        topic_partitions=2,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    words = app.topic(f"{app_id}-words", key_type=str, value_type=str, partitions=2)
    counts = app.Table("counts", default=int, partitions=2)

    @app.agent(words)
    async def count(stream):  # type: ignore[no-untyped-def]
        async for word in stream:
            counts[word] += 1

    return app, words, counts


async def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_faust_table_is_rebuilt_from_its_changelog_after_a_restart(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    app_id = f"{topic_prefix}-counter"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(f"{app_id}-words", num_partitions=2, replication_factor=1)])
    await admin.close()

    # Given a faust worker that counted 50 words into a changelog-backed table
    app, words, counts = make_counter_app(app_id, kafka_bootstrap, tmp_path)
    await app.start()
    try:
        for i in range(50):
            await words.send(key=f"w{i % 5}", value=f"w{i % 5}")
        await wait_for(lambda: sum(counts.values()) == 50)
    finally:
        await app.stop()

    # When a new worker with the same id starts (its in-memory store empty) and counts 50 more
    app2, words2, counts2 = make_counter_app(app_id, kafka_bootstrap, tmp_path)
    await app2.start()
    try:
        await wait_for(lambda: sum(counts2.values()) == 50)  # recovered from the changelog
        for i in range(50):
            await words2.send(key=f"w{i % 5}", value=f"w{i % 5}")
        await wait_for(lambda: sum(counts2.values()) == 100)
        final = dict(counts2.items())
    finally:
        await app2.stop()

    # Then the table holds both runs' counts: nothing was lost or counted twice
    assert final == {f"w{i}": 20 for i in range(5)}
