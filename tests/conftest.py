"""Fixtures shared by every test level.

Integration tests need a real Kafka. By default one single-node cluster is started for the whole
session from the pinned jars, on free loopback ports, in a temporary folder; set
``KOOPKRACHT_TEST_BOOTSTRAP`` to use a running cluster instead.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.kafka import ClusterSpec, KafkaCluster


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(span: int) -> int:
    """A port p such that p … p+span-1 are all free on loopback."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(30000, 60000, 2)
        if all(_free(base + i) for i in range(span)):
            return base
    raise RuntimeError("no free port range on loopback")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("KOOPKRACHT_TEST_BOOTSTRAP")
    if existing:
        yield existing
        return
    data_dir: Path = tmp_path_factory.mktemp("kafka")
    cluster = KafkaCluster(data_dir, ClusterSpec(nodes=1, base_port=free_base_port(2)))
    cluster.start()
    try:
        yield cluster.bootstrap
    finally:
        cluster.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A fresh topic prefix per test, so tests never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}"
