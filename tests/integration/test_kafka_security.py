"""A Kafka with TLS and SASL: the hub's clients connect with its settings, the broker refuses others.

The launcher starts a one-node cluster of its own with a SASL_SSL listener (PLAIN and SCRAM users,
a certificate from a CA made here). The hub's producer, consumer and admin client, built by the
one connection factory from the ``KOOPKRACHT_KAFKA_*`` settings, round-trip a message;
``koopkracht topics ensure`` creates the topics; the worker decides a command sent by the command
client. A client without credentials, with a wrong password, or that does not trust the CA is
refused.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError
from pydantic import SecretStr

from infra.kafka import ClusterSpec, KafkaCluster
from infra.kafka.launcher import SaslSslListener
from infra.kafka.topics import ensure_topics
from schemas.commands import Actor, OpenNegotiation
from schemas.events import NegotiationOpened
from schemas.negotiation import RequirementItem
from schemas.results import CommandAccepted
from schemas.topics import ALL_TOPICS, EVENTS
from services.settings import Settings, load_settings
from streams.app import NegotiationWorker, WorkerConfig
from streams.client import CommandClient
from streams.codec import decode_event
from streams.connection import KafkaConnection
from tests.certificates import Authority
from tests.conftest import free_base_port
from tests.integration.harness import ROOT, read_topic, wait_until

pytestmark = pytest.mark.slow

USER = "koopkracht-worker"
PASSWORD = f"pw-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class SecuredKafka:
    cluster: KafkaCluster
    bootstrap: str
    """The SASL_SSL listener."""
    ca_file: Path
    other_ca_file: Path
    """A CA that did not sign the broker's certificate."""

    def environment(self, mechanism: str = "SCRAM-SHA-512", password: str = PASSWORD) -> dict[str, str]:
        """What an operator sets for a hub process."""
        return {
            "KOOPKRACHT_KAFKA_BOOTSTRAP": self.bootstrap,
            "KOOPKRACHT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KOOPKRACHT_KAFKA_SASL_MECHANISM": mechanism,
            "KOOPKRACHT_KAFKA_SASL_USERNAME": USER,
            "KOOPKRACHT_KAFKA_SASL_PASSWORD": password,
            "KOOPKRACHT_KAFKA_CA_FILE": str(self.ca_file),
        }

    def broker_log(self) -> str:
        path = self.cluster.node_dir(0) / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredKafka]:
    folder = tmp_path_factory.mktemp("secured-kafka")
    authority = Authority.create(folder / "tls")
    server = authority.issue("kafka", "127.0.0.1", "localhost")
    stranger = Authority.create(folder / "other-tls", "Someone else's CA")
    base = free_base_port(3)  # plaintext (the nodes' own), controller, SASL_SSL
    listener = SaslSslListener(
        base_port=base + 2, certificate_chain=server.chain, private_key=server.key, users=((USER, PASSWORD),)
    )
    cluster = KafkaCluster(folder, ClusterSpec(nodes=1, base_port=base, secure=listener))
    cluster.start()
    try:
        yield SecuredKafka(cluster, cluster.spec.secure_bootstrap, authority.ca_file, stranger.ca_file)
    finally:
        cluster.stop()


def settings_of(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_the_hubs_clients_round_trip_a_message_over_sasl_ssl(
    secured: SecuredKafka, monkeypatch: pytest.MonkeyPatch, mechanism: str
) -> None:
    # Given the settings of a hub process for the secured cluster
    kafka = settings_of(secured.environment(mechanism), monkeypatch).kafka_connection()
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    # When its admin client creates a topic, its producer writes to it and its consumer reads it
    admin = kafka.admin()
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert topic in await admin.list_topics()
    finally:
        await admin.close()
    producer = kafka.producer(acks="all", enable_idempotence=True)
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, key=b"n-1", value=b"over TLS, signed in with " + mechanism.encode())
    finally:
        await producer.stop()
    consumer = kafka.consumer(enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        async with asyncio.timeout(30):
            records = []
            while not records:
                records = (await consumer.getmany(partition, timeout_ms=500)).get(partition, [])
    finally:
        await consumer.stop()
    # Then the message comes back as it was sent
    assert [(r.key, r.value) for r in records] == [(b"n-1", b"over TLS, signed in with " + mechanism.encode())]


def test_topics_ensure_creates_the_topics_on_the_secured_cluster(secured: SecuredKafka, tmp_path: Path) -> None:
    # Given an operator's environment for the secured cluster
    prefix = f"t{uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        **secured.environment(),
        "KOOPKRACHT_TOPIC_PREFIX": prefix,
        "KOOPKRACHT_DATA_DIR": str(tmp_path),
        "COLUMNS": "400",
    }
    # When they run `koopkracht topics ensure`, twice
    runs = [
        subprocess.run(
            [sys.executable, "-m", "services", "topics", "ensure"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        for _ in range(2)
    ]
    # Then the first creates every topic of the registry and the second finds them as declared
    first, second = runs
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    for topic in ALL_TOPICS:
        assert any(topic.name(prefix) in line and "created" in line for line in first.stdout.splitlines())
        assert any(topic.name(prefix) in line and "ok" in line for line in second.stdout.splitlines())
    # And the password shows nowhere
    assert PASSWORD not in first.stdout + first.stderr + second.stdout + second.stderr


async def test_a_command_goes_through_the_worker_over_sasl_ssl(
    secured: SecuredKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the worker running against the secured cluster, as `koopkracht worker` builds it
    kafka = settings_of(secured.environment(), monkeypatch).kafka_connection()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    await ensure_topics(kafka, prefix)
    worker = NegotiationWorker(WorkerConfig(bootstrap=kafka, topic_prefix=prefix, state_interval_ms=0))
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        # When the command client (as the API's) sends a command
        coordinator = Actor(organisation_id="coop", role="coordinator", name="Coop")
        command = OpenNegotiation(
            command_id="open-1",
            negotiation_id="n-secured",
            actor=coordinator,
            title="Office suite",
            vendor_id="vendor",
            vendor_name="Vendor",
            items=(RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),),
        )
        async with CommandClient(kafka, prefix) as client:
            result = await client.send(command, timeout=60)
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
    # Then the worker accepts it, and its event is in the events topic
    assert isinstance(result, CommandAccepted)
    assert result.first_sequence == 1
    events = [decode_event(r.headers, r.value) for r in await read_topic(kafka, EVENTS.name(prefix))]
    assert [(type(e), e.negotiation_id, e.command_id) for e in events] == [(NegotiationOpened, "n-secured", "open-1")]


async def refused(connection: KafkaConnection) -> None:
    """Start an admin client with ``connection``, which must fail."""
    admin = connection.admin(request_timeout_ms=5000)
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await admin.start()
    finally:
        await admin.close()


async def test_a_client_without_credentials_is_refused(secured: SecuredKafka) -> None:
    # Given a client that trusts the broker's CA but does not sign in (TLS, no SASL)
    anonymous = KafkaConnection(secured.bootstrap, "SSL", ca_file=secured.ca_file)
    # When it connects, then the broker closes the connection
    await refused(anonymous)
    # And says that it wanted a SASL handshake first
    await wait_until(
        lambda: "Unexpected Kafka request of type METADATA during SASL handshake" in secured.broker_log(),
        30,
        "the broker's refusal of a client that did not sign in",
    )
    # And a client that speaks plaintext to the listener is refused too
    await refused(KafkaConnection(secured.bootstrap))


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
async def test_a_client_with_a_wrong_password_is_refused(
    secured: SecuredKafka, mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the hub's user with a wrong password
    wrong = KafkaConnection(
        secured.bootstrap, "SASL_SSL", mechanism, USER, SecretStr("not-the-password"), secured.ca_file
    )
    # When it connects, then it is refused because its credentials are wrong
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await refused(wrong)
    assert "SaslAuthenticationFailed" in caplog.text
    assert "Authentication failed" in caplog.text
    # And a user the broker does not know is refused as well
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await refused(
            KafkaConnection(secured.bootstrap, "SASL_SSL", mechanism, "mallory", SecretStr(PASSWORD), secured.ca_file)
        )
    assert "SaslAuthenticationFailed" in caplog.text


async def test_a_client_that_does_not_trust_the_brokers_ca_does_not_connect(
    secured: SecuredKafka, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the right credentials, but another CA's certificate as the trusted one
    misled = KafkaConnection(
        secured.bootstrap, "SASL_SSL", "SCRAM-SHA-512", USER, SecretStr(PASSWORD), secured.other_ca_file
    )
    # When it connects, then it refuses the broker's certificate (and so sends no password)
    with caplog.at_level(logging.ERROR, logger="aiokafka"):
        await refused(misled)
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text
