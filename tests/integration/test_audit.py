"""``koopkracht audit verify`` on the real broker and a real database (SPEC 7.1): it passes on the
log the worker wrote, and names the event when one byte of it is flipped — in a copy of the events
topic, and separately in the read model's event log."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text

from infra.kafka.topics import ensure_topics
from schemas.topics import COMMAND_RESULTS, COMMANDS, EVENTS
from services.audit import audit
from services.readmodel.projector import Projector
from services.readmodel.store import create_db_engine, table_counts, upgrade
from streams.app import NegotiationWorker, WorkerConfig
from tests.integration.harness import ROOT, ResultCollector, produce_commands, read_topic, script, wait_until

pytestmark = pytest.mark.slow


def verify(
    prefix: str, bootstrap: str, database: str, data_dir: Path, *options: str
) -> subprocess.CompletedProcess[str]:
    """``koopkracht audit verify`` as an operator runs it."""
    env = {
        **os.environ,
        "KOOPKRACHT_KAFKA_BOOTSTRAP": bootstrap,
        "KOOPKRACHT_TOPIC_PREFIX": prefix,
        "KOOPKRACHT_DATABASE_URL": database,
        "KOOPKRACHT_DATA_DIR": str(data_dir),
        "COLUMNS": "400",  # one finding per line
    }
    return subprocess.run(
        [sys.executable, "-m", "services", "audit", "verify", *options],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def flip_one_byte(value: bytes, after: bytes) -> bytes:
    """``value`` with one bit of the byte after the first ``after`` flipped (inside a string)."""
    position = value.index(after) + len(after)
    tampered = bytearray(value)
    tampered[position] ^= 0x01
    return bytes(tampered)


async def copy_topic(bootstrap: str, records: list[Any], topic: str, tamper: dict[tuple[int, int], bytes]) -> None:
    """The records into ``topic``, each in its partition, with the values in ``tamper`` instead."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        pending = [
            await producer.send(
                topic,
                key=r.key,
                value=tamper.get((r.partition, r.offset), r.value),
                headers=list(r.headers),
                partition=r.partition,
            )
            for r in records
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def test_the_audit_passes_on_the_log_and_names_a_flipped_byte_on_the_topic_and_in_the_read_model(
    kafka_bootstrap: str, topic_prefix: str, database: str, tmp_path: Path
) -> None:
    # Given a worker that decided the commands of a few negotiations (every document published)
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=6, commands=300, seed=17)
    config = WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, state_interval_ms=0)
    async with ResultCollector(kafka_bootstrap, COMMAND_RESULTS.name(topic_prefix)) as results:
        await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)
        worker = NegotiationWorker(config)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        try:
            await wait_until(lambda: task.done() or len(results) >= len(expected.commands), 180, "every result")
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    # And the read model projected from the events topic
    records = await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix))
    upgrade(database)
    engine = create_db_engine(database)
    projector = Projector(engine, kafka_bootstrap, topic_prefix)
    stopping = asyncio.Event()
    projecting = asyncio.create_task(projector.run(stopping))
    try:
        await wait_until(lambda: table_counts(engine)["events"] == len(records), 120, "the read model")
    finally:
        stopping.set()
        await asyncio.wait_for(projecting, 30)

    # When the log is audited
    honest = verify(topic_prefix, kafka_bootstrap, database, tmp_path)
    # Then it is intact: every chain from sequence 1, the state topic and the read model agree
    assert honest.returncode == 0, honest.stdout + honest.stderr
    assert f"the log is intact: {len(records)} events, {len(expected.states)} negotiations" in honest.stdout
    report = await audit(kafka_bootstrap, topic_prefix, engine)
    assert report.ok and set(report.negotiations) == set(expected.states)
    for n in report.negotiations.values():
        assert (n.chain_from, n.state_topic, n.read_model) == (1, "ok", "ok"), n
        assert n.head_hash is not None and n.events == len(expected.events[n.negotiation_id])

    # Given a copy of the events topic with one byte of one event flipped (its fifth event's actor)
    victim = next(r for r in records if b'"sequence":5,' in r.value)
    nid = victim.key.decode()
    tampered_prefix = f"{topic_prefix}-tampered"
    await ensure_topics(kafka_bootstrap, tampered_prefix)
    flipped = flip_one_byte(victim.value, b'"actor_id":"')
    tamper = {(victim.partition, victim.offset): flipped}
    await copy_topic(kafka_bootstrap, records, EVENTS.name(tampered_prefix), tamper)
    # When the copy is audited
    found = verify(tampered_prefix, kafka_bootstrap, database, tmp_path, "--no-read-model")
    # Then the audit fails and names that event: its negotiation, sequence and place in the topic
    assert found.returncode == 1, found.stdout + found.stderr
    location = f"{EVENTS.name(tampered_prefix)}[{victim.partition}]@{victim.offset}"
    assert f"events topic: negotiation {nid} event 5 at {location}: its content hashes to" in found.stdout
    assert "1 finding(s)" in found.stdout
    # And every other negotiation's chain is still ok
    copy = await audit(kafka_bootstrap, tampered_prefix, None)
    assert [(f.negotiation_id, f.sequence) for f in copy.findings] == [(nid, 5)]
    assert all(n.chain_ok for key, n in copy.negotiations.items() if key != nid)

    # Given, separately, one byte of one event flipped in the read model's event log
    with engine.begin() as connection:
        stored = connection.execute(
            text("SELECT data FROM events WHERE negotiation_id = :n AND sequence = 7"), {"n": nid}
        ).scalar_one()
        changed = flip_one_byte(stored.encode(), b'"command_id":"').decode()
        connection.execute(
            text("UPDATE events SET data = :d WHERE negotiation_id = :n AND sequence = 7"), {"d": changed, "n": nid}
        )
    # When the (honest) topic and the read model are audited
    found = verify(topic_prefix, kafka_bootstrap, database, tmp_path)
    # Then the audit fails and names that row of the read model
    assert found.returncode == 1, found.stdout + found.stderr
    assert (
        f"read model: negotiation {nid} event 7 at events table, row ({nid}, 7): "
        "differs from the events topic: its content hashes to"
    ) in found.stdout
    assert "1 finding(s)" in found.stdout
    # And only for that negotiation, whose chain on the topic is intact
    again = await audit(kafka_bootstrap, topic_prefix, engine, nid)
    assert [(f.source, f.sequence) for f in again.findings] == [("read model", 7)]
    assert again.negotiations[nid].chain_ok
