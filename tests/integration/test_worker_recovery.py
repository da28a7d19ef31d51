"""A partition's recovery on the real broker: from snapshots and the events after their checkpoint,
and never finishing short of what the last committed batch recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from infra.kafka.topics import ensure_topics
from schemas.topics import COMMAND_RESULTS, COMMANDS, EVENTS, NEGOTIATION_PARTITIONS, STATE
from streams.app import NegotiationWorker, RecoveryError, WorkerConfig
from streams.connection import KafkaConnection
from streams.core.state import replay
from streams.core.views import shared_state
from tests.integration.harness import (
    ResultCollector,
    expected_states,
    latest_states,
    produce_commands,
    read_topic,
    script,
    timeless,
    wait_until,
)
from tests.integration.test_worker_crash import events_by_negotiation

pytestmark = pytest.mark.slow


async def run_until(worker: NegotiationWorker, condition: object, what: str) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        await wait_until(lambda: task.done() or condition(), 180, what)  # type: ignore[operator]
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_a_worker_resumes_from_snapshots_and_decides_as_if_it_had_replayed_everything(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=40, commands=3_000, seed=21)
    half = len(expected.commands) // 2
    config = WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, snapshot_lag_events=50, max_batch=20)
    async with ResultCollector(kafka_bootstrap, COMMAND_RESULTS.name(topic_prefix)) as results:
        # Given a worker that decided the first half of the commands, snapshotting as it went
        await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands[:half])
        first = NegotiationWorker(config)
        await run_until(first, lambda: len(results) >= half, "the first half's results")
        snapshots = await read_topic(kafka_bootstrap, f"{topic_prefix}.snapshots")
        assert snapshots, "the worker should have written snapshots"

        # When a new worker takes over and the second half arrives
        await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands[half:])
        second = NegotiationWorker(config)
        await run_until(second, lambda: len(results) >= len(expected.commands), "every result")

    # Then it recovered from the snapshots, reading only the events after the checkpoints
    events = events_by_negotiation(await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix)))
    written = sum(len(es) for es in events.values())
    figures = second.recoveries[-NEGOTIATION_PARTITIONS:]
    assert {f["partition"] for f in figures} == set(range(NEGOTIATION_PARTITIONS))
    assert sum(f["snapshots"] for f in figures) > 0
    assert sum(f["events_read"] for f in figures) < written / 2, figures
    # And every command got the answer the pure core gives it, once
    for command in expected.commands:
        assert results.results[command.command_id] == [expected.results[command.command_id]], command
    # And the log and the state topic are exactly what one worker without a restart writes
    for negotiation_id, want in expected.events.items():
        assert [e.sequence for e in events[negotiation_id]] == [e.sequence for e in want], negotiation_id
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    assert states == {nid: shared_state(replay(es)) for nid, es in events.items()}  # type: ignore[arg-type]
    assert timeless(states) == timeless(expected_states(expected))


async def test_recovery_does_not_finish_short_of_the_events_the_last_commit_recorded(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    # Given a partition whose events a worker wrote and committed
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=8, commands=200, seed=22)
    await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)
    config = WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, recovery_timeout_s=4)
    async with ResultCollector(kafka_bootstrap, COMMAND_RESULTS.name(topic_prefix)) as results:
        await run_until(NegotiationWorker(config), lambda: len(results) >= len(expected.commands), "every result")
    events_tp = TopicPartition(EVENTS.name(topic_prefix), 0)
    commands_tp = TopicPartition(COMMANDS.name(topic_prefix), 0)
    reader = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed")
    await reader.start()
    try:
        end = (await reader.end_offsets([events_tp]))[events_tp]
        assert end > 0
        # And a committed offset that says its batch reached further than the log the brokers now
        # report (what a stale end offset, or a leader that lost records, looks like)
        group = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=config.group, enable_auto_commit=False)
        await group.start()
        try:
            group.assign([commands_tp])
            committed = await group.committed(commands_tp)
            assert committed is not None
            await group.commit(
                {commands_tp: OffsetAndMetadata(committed, orjson.dumps({"events_end": end + 5}).decode())}
            )
        finally:
            await group.stop()
    finally:
        await reader.stop()

    # When a worker recovers the partition, Then it does not decide on what it could read: it fails, naming it
    cold = NegotiationWorker(config)
    with pytest.raises(RecoveryError, match="partition 0: could not read the partition's log"):
        await cold.recover([0])
    assert 0 not in cold.tables


async def test_a_transaction_larger_than_a_record_batch_writes_every_record_and_records_where_its_events_end(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    # Given a worker whose record batches hold about three events, so that each transaction's
    # events, results and snapshots span many batches (the worker's default holds a thousand),
    # and whose transactions are small enough that snapshots fall due between them
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=24, commands=1_500, seed=23)
    config = WorkerConfig(
        bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        producer_batch_bytes=2048,
        max_batch=50,
        snapshot_lag_events=40,
        state_interval_ms=0,
    )
    async with ResultCollector(kafka_bootstrap, COMMAND_RESULTS.name(topic_prefix)) as results:
        await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)
        first = NegotiationWorker(config)
        # When it decides every command
        await run_until(first, lambda: len(results) >= len(expected.commands), "every result")
        assert first.processed == len(expected.commands)

    # Then every command got its answer once, and the log is exactly the pure core's
    for command in expected.commands:
        assert results.results[command.command_id] == [expected.results[command.command_id]], command
    records = await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix))
    events = events_by_negotiation(records)
    for negotiation_id, want in expected.events.items():
        assert [e.event_id for e in events[negotiation_id]] == [e.event_id for e in want], negotiation_id
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    assert timeless(states) == timeless(expected_states(expected))
    # And each partition's committed offset records the end of its events: one past its last event
    last_event: dict[int, int] = {}
    for record in records:
        last_event[record.partition] = max(last_event.get(record.partition, -1), record.offset)
    admin = KafkaConnection.of(kafka_bootstrap).admin()
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(config.group)
    finally:
        await admin.close()
    recorded = {
        tp.partition: orjson.loads(offset.metadata)["events_end"]
        for tp, offset in committed.items()
        if tp.topic == COMMANDS.name(topic_prefix) and offset.offset >= 0
    }
    assert recorded == {partition: offset + 1 for partition, offset in last_event.items()}
    # And a new worker recovers from those snapshots and the checkpoints written with them, to
    # exactly the states the pure core gives
    second = NegotiationWorker(config)
    recovered: dict[str, Any] = {}

    def tables_rebuilt() -> bool:
        if len(second.recoveries) < NEGOTIATION_PARTITIONS or set(second.tables) != set(range(NEGOTIATION_PARTITIONS)):
            return False
        for table in second.tables.values():
            for negotiation_id in table.negotiation_ids():
                recovered[negotiation_id] = shared_state(table.state(negotiation_id))  # type: ignore[arg-type]
        return True

    await run_until(second, tables_rebuilt, "the second worker's recovery")
    figures = second.recoveries[-NEGOTIATION_PARTITIONS:]
    assert sum(f["snapshots"] for f in figures) > 0
    assert sum(f["events_read"] for f in figures) < len(records), figures
    assert timeless(recovered) == timeless(expected_states(expected))
