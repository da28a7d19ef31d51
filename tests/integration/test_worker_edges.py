"""Bad messages go to the dead-letter topic, and the state topic is readable by any Kafka client."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator

import pytest

from infra.kafka import ensure_jars
from infra.kafka.topics import ensure_topics
from schemas.commands import Actor, InviteMember, OpenNegotiation
from schemas.deadletters import DeadLetter
from schemas.negotiation import RequirementItem
from schemas.results import CommandAccepted, CommandRejected
from schemas.topics import DEAD_LETTERS, STATE
from streams.app import NegotiationWorker, WorkerConfig
from streams.client import CommandClient
from tests.integration.harness import read_topic, wait_until

COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")
ITEMS = (RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),)


@pytest.fixture
async def worker(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[NegotiationWorker]:
    await ensure_topics(kafka_bootstrap, topic_prefix)
    running = NegotiationWorker(WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix))
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.wait_for(running.ready.wait(), 60)
    yield running
    stop.set()
    await asyncio.wait_for(task, 30)


def open_command(nid: str, command_id: str = "open-1") -> OpenNegotiation:
    return OpenNegotiation(
        command_id=command_id,
        negotiation_id=nid,
        actor=COORDINATOR,
        title="Office suite",
        vendor_id="vendor",
        vendor_name="Vendor",
        items=ITEMS,
    )


async def test_garbage_goes_to_the_dead_letter_topic_and_the_next_command_is_processed(
    worker: NegotiationWorker, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with CommandClient(kafka_bootstrap, topic_prefix) as client:
        # Given garbage, an unknown command type and a command under the wrong key on the commands topic
        garbage = await client.send_raw(b"n-1", b"\x00\xff not json")
        unknown = await client.send_raw(b"n-1", json.dumps({"type": "Bribe", "amount": 10}).encode())
        misplaced = await client.send_raw(b"n-2", open_command("n-1", "open-0").model_dump_json().encode())
        # When a valid command follows
        result = await client.send(open_command("n-1"), timeout=30)

    # Then the valid command is processed
    assert isinstance(result, CommandAccepted)
    assert result.first_sequence == 1
    # And each bad message is in the dead-letter topic with its coordinates and the reason
    topic = DEAD_LETTERS.name(topic_prefix)
    await wait_until(lambda: _count(kafka_bootstrap, topic, 3), 30, "three dead letters")
    letters = [DeadLetter.model_validate_json(r.value) for r in await read_topic(kafka_bootstrap, topic)]
    by_offset = {(letter.partition, letter.offset): letter for letter in letters}
    assert set(by_offset) == {(m.partition, m.offset) for m in (garbage, unknown, misplaced)}
    assert base64.b64decode(by_offset[(garbage.partition, garbage.offset)].value_base64 or "") == b"\x00\xff not json"
    assert "not a valid command" in by_offset[(garbage.partition, garbage.offset)].reason
    assert "type" in by_offset[(unknown.partition, unknown.offset)].reason
    assert "key" in by_offset[(misplaced.partition, misplaced.offset)].reason
    assert {letter.topic for letter in letters} == {f"{topic_prefix}.commands"}


async def _count(bootstrap: str, topic: str, n: int) -> bool:
    return len(await read_topic(bootstrap, topic)) >= n


async def test_a_refused_command_is_answered_with_the_reason_and_changes_nothing(
    worker: NegotiationWorker, kafka_bootstrap: str, topic_prefix: str
) -> None:
    async with CommandClient(kafka_bootstrap, topic_prefix) as client:
        await client.send(open_command("n-9"), timeout=30)
        vendor = Actor(organisation_id="vendor", role="vendor", name="Vendor")  # a party, but not the coordinator
        refused = await client.send(
            InviteMember(command_id="invite-1", negotiation_id="n-9", actor=vendor, organisation_id="x", name="X"),
            timeout=30,
        )
        again = await client.send(open_command("n-9"), timeout=30)
    assert isinstance(refused, CommandRejected)
    assert refused.status == 403
    assert "coordinator" in refused.detail
    assert isinstance(again, CommandAccepted)
    assert again.duplicate
    assert worker.tables[_partition_of(worker, "n-9")].state("n-9").sequence == 1  # type: ignore[union-attr]


def _partition_of(worker: NegotiationWorker, nid: str) -> int:
    return next(p for p, table in worker.tables.items() if table.state(nid) is not None)


async def test_the_state_topic_is_readable_with_kafkas_own_console_consumer(
    worker: NegotiationWorker, kafka_bootstrap: str, topic_prefix: str
) -> None:
    # Given a negotiation with a member
    async with CommandClient(kafka_bootstrap, topic_prefix) as client:
        await client.send(open_command("n-7"), timeout=30)
        await client.send(
            InviteMember(
                command_id="invite-7",
                negotiation_id="n-7",
                actor=COORDINATOR,
                organisation_id="uni",
                name="University",
                weight=3,
            ),
            timeout=30,
        )
    # When Apache Kafka's console consumer (from the pinned jars, not our code) reads the state topic
    libs = ensure_jars()
    done = await asyncio.to_thread(
        subprocess.run,
        [
            "java",
            "-cp",
            f"{libs}/*",
            "org.apache.kafka.tools.consumer.ConsoleConsumer",
            "--bootstrap-server",
            kafka_bootstrap,
            "--topic",
            STATE.name(topic_prefix),
            "--from-beginning",
            "--max-messages",
            "2",
            "--timeout-ms",
            "30000",
            "--property",
            "print.key=true",
            "--property",
            "key.separator=|",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # Then each line is the negotiation id and a JSON state document
    lines = [line for line in done.stdout.splitlines() if "|" in line]
    documents = [json.loads(line.split("|", 1)[1]) for line in lines]
    assert [d["sequence"] for d in documents] == [1, 2]
    assert {line.split("|", 1)[0] for line in lines} == {"n-7"}
    assert documents[-1]["phase"] == "collecting"
    assert documents[-1]["satisfaction"][0]["name"] == "University"
    assert documents[-1]["cohesion"] == 1.0
