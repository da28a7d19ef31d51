"""The command client when the broker is gone: what a timeout tells the API about where a command is.

A command the producer never queued is not on the topic (``CommandNotQueued``: the API marks its
Idempotency-Key ``unsent``, so a retry sends it again); a command it queued but the broker did not
confirm may still arrive (``CommandTimeout`` with its ``delivery``: retries wait for its outcome,
and should the producer ever give it up, the key becomes ``unsent`` too).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from infra.kafka import ensure_jars
from infra.kafka.launcher import ClusterSpec, KafkaCluster
from infra.kafka.topics import ensure_topics
from schemas.commands import Actor, OpenNegotiation
from schemas.negotiation import RequirementItem
from streams.client import CommandClient, CommandNotQueued, CommandTimeout
from tests.conftest import free_base_port

COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")
ITEMS = (RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),)


def open_command(command_id: str) -> OpenNegotiation:
    return OpenNegotiation(
        command_id=command_id,
        negotiation_id="n-1",
        actor=COORDINATOR,
        title="Office suite",
        vendor_id="vendor",
        vendor_name="Vendor",
        items=ITEMS,
    )


async def test_a_timeout_says_whether_the_command_was_queued(tmp_path: Path) -> None:
    # Given a broker of its own with the hub's topics, and a client
    ensure_jars()
    cluster = KafkaCluster(tmp_path / "kafka", ClusterSpec(nodes=1, base_port=free_base_port(2)))
    await asyncio.to_thread(cluster.start)
    try:
        await ensure_topics(cluster.bootstrap, "cc")
        client = CommandClient(cluster.bootstrap, "cc")
        await client.start()
        try:
            # And a first command the broker confirmed (the producer knows where the topic lives)
            await client.submit(open_command("open-0"), timeout=30.0)
            # When the broker dies and another command is submitted with a 1 s timeout
            cluster.kill_node(0)
            with pytest.raises(CommandTimeout) as raised:
                await client.submit(open_command("open-1"), timeout=1.0)
            # Then it is reported queued, with its delivery still open: it may yet arrive
            delivery = raised.value.delivery
            assert delivery is not None and not delivery.done()
            # And when the broker is back, the producer delivers it (the API's retries then find it)
            await asyncio.to_thread(cluster.start)
            done, _ = await asyncio.wait({delivery}, timeout=60)
            assert done, "the queued command was delivered within a minute of the broker's return"
            assert delivery.exception() is None

            # When a command is sent to a topic the producer cannot find
            commands_topic, client.commands_topic = client.commands_topic, "cc.nowhere"
            with pytest.raises(CommandNotQueued):
                await client.submit(open_command("open-nowhere"), timeout=1.0)
            # Then it is reported never queued: it is not on any topic, and may be sent again at once
            client.commands_topic = commands_topic
        finally:
            await client.stop()
    finally:
        cluster.stop()
