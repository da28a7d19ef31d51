"""Fixtures shared by every test level.

Integration tests need a real Kafka. By default one single-node cluster is started for the whole
session from the pinned jars, on free loopback ports, in a temporary folder; set
``KOOPKRACHT_TEST_BOOTSTRAP`` to use a running cluster instead.

Tests of the read model run on SQLite and on PostgreSQL. PostgreSQL comes from
``KOOPKRACHT_TEST_POSTGRES_URL``, a role that may create databases (each test database is new);
without it the PostgreSQL runs are skipped, unless ``KOOPKRACHT_REQUIRE_POSTGRES=1`` (set by CI)
makes that an error.
"""

from __future__ import annotations

import io
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from infra.kafka import ClusterSpec, KafkaCluster

# The processes tests start (workers, stacks, fault suites, several at once) serve no metrics port
# unless a test gives them one: each would take its default (9101 …) and the second would fail.
os.environ.setdefault("KOOPKRACHT_METRICS_PORT", "0")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_base_port(span: int) -> int:
    """A port p such that p … p+span-1 are all free on loopback."""
    rng = random.Random()
    # Below the kernel's ephemeral range: a port chosen there could be taken, before the server
    # binds it, as the local port of any outgoing connection (Kafka clients, HTTP, PostgreSQL).
    low = _ephemeral_low()
    for _ in range(200):
        base = rng.randrange(low - 12000, low - span, 2)
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


POSTGRES_ENV = "KOOPKRACHT_TEST_POSTGRES_URL"


def postgres_database() -> tuple[str, str]:
    """A fresh database on the test PostgreSQL: (its URL, its name)."""
    import psycopg

    admin_url = os.environ.get(POSTGRES_ENV)
    if not admin_url:
        if os.environ.get("KOOPKRACHT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{POSTGRES_ENV} is not set, and this run requires PostgreSQL")
        pytest.skip(f"PostgreSQL runs need {POSTGRES_ENV} (see README, 'Tests')")
    name = f"kk_{uuid.uuid4().hex[:12]}"
    url = make_url(admin_url)
    with psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False), autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    return url.set(database=name).render_as_string(hide_password=False), name


def drop_postgres_database(name: str, timeout: float = 60.0) -> None:
    """Drop a test's database, ending its connections.

    WITH (FORCE) may end only backends of roles the test role may signal: an autovacuum worker busy
    in the database (it runs as no role) refuses it unless the role is a member of
    pg_signal_backend (`.ci/run` grants that). Without it, wait for the worker to finish.
    """
    import psycopg

    url = make_url(os.environ[POSTGRES_ENV]).set(drivername="postgresql")
    deadline = time.monotonic() + timeout
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as c:
        while True:
            try:
                c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except psycopg.errors.InsufficientPrivilege:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)  # polling for the autovacuum worker to leave; not a readiness stand-in


def database_url(kind: str, data_dir: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{data_dir / 'readmodel.db'}", None
    return postgres_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database: its SQLAlchemy URL."""
    url, pg_name = database_url(request.param, tmp_path)
    try:
        yield url
    finally:
        if pg_name is not None:
            drop_postgres_database(pg_name)


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The processes' log lines as they write them (JSON, debug and up), into a buffer; the logging
    set-up is restored after."""
    import structlog

    from services.logging import configure_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    try:
        yield out
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
