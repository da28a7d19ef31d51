"""The running stack for end-to-end tests: worker, projector, webhooks, scheduler and API as child processes.

The stack is what ``koopkracht up`` runs (``services.stack.Stack``), against the session's Kafka,
with a topic prefix and a database of its own. Every test here runs once on SQLite and once on
PostgreSQL (see ``tests/conftest.py`` for where PostgreSQL comes from).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.settings import Settings
from services.stack import Stack
from tests.conftest import database_url, drop_postgres_database, free_base_port


@dataclass
class RunningStack:
    stack: Stack
    settings: Settings
    base_url: str
    admin_token: str
    database: str
    clients: list[httpx.Client] = field(default_factory=list)
    owner_tokens: dict[str, str] = field(default_factory=dict)
    """An organisation's integration key → the personal token of its first owner."""

    @property
    def metrics_token(self) -> str:
        assert self.settings.metrics_token is not None
        return self.settings.metrics_token.get_secret_value()

    def client(self, key: str | None = None, **headers: str) -> httpx.Client:
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        client = httpx.Client(base_url=self.base_url, headers={**auth, **headers}, timeout=30)
        self.clients.append(client)
        return client

    def organisation(self, name: str, role: str, owner: str | None = None) -> tuple[str, str]:
        """A new organisation with a first owner: (its id, its integration key). The owner's
        personal token is ``person_token(key)``."""
        body = {"name": name, "role": role, "owner": {"name": owner or f"Owner of {name}"}}
        response = self.client(self.admin_token).post("/v1/organisations", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        self.owner_tokens[created["api_key"]] = created["owner"]["personal_token"]
        return created["id"], created["api_key"]

    def person_token(self, key: str) -> str:
        """The personal token of the first owner of the organisation whose integration key is ``key``:
        how a test signs in to the dashboard, which takes no integration key."""
        return self.owner_tokens[key]

    def person(self, key: str, name: str, role: str, email: str | None = None) -> tuple[str, str]:
        """A person invited into the organisation of integration key ``key`` by its first owner:
        (their id, their personal token)."""
        body = {"name": name, "role": role, **({"email": email} if email else {})}
        response = self.client(self.person_token(key)).post("/v1/organisations/me/people", json=body)
        assert response.status_code == 201, response.text
        created = response.json()
        return created["id"], created["personal_token"]

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for child in ("worker", "projector", "webhooks", "scheduler", "api"):
            path = self.stack.logs / f"{child}.log"
            if path.exists():
                out.append(f"--- {child}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


@contextlib.contextmanager
def running_stack(kafka_bootstrap: str, tmp: Path, database: str, **overrides: Any) -> Iterator[RunningStack]:
    """The stack (as ``koopkracht up`` runs it) on a database of its own, stopped and dropped after."""
    url, pg_name = database_url(database, tmp)
    port = free_base_port(1)
    settings = Settings(
        data_dir=tmp,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"e2e{uuid.uuid4().hex[:8]}",
        database_url=url,
        admin_token=f"admin-{uuid.uuid4().hex}",
        api_port=port,
        log_format="json",
        # The tests' webhook receivers listen on loopback over http: allowed here, as an operator
        # would allow an internal receiver (tests/security/ passes overrides without them).
        # Every test of a session calls from 127.0.0.1, many with a wrong key on purpose, and the
        # benchmarks load one key far past a party's default: the rate limits have tests of their own
        # (tests/security/test_rate_limits.py), which pass small limits here.
        **{
            "webhook_retry_max_s": 2.0,
            # The scheduler ticks often, so that a commitment due in seconds is found overdue soon.
            "tick_interval_s": 0.5,
            "sse_heartbeat_s": 5.0,
            "webhook_allow": "127.0.0.1",
            "webhook_allow_http": True,
            "metrics_token": f"metrics-{uuid.uuid4().hex}",
            "rate_limit_per_key": "1000000/minute",
            "rate_limit_failed_auth": "1000000/minute",
            **overrides,
        },
    )
    stack = Stack(settings)
    running = RunningStack(
        stack, settings, f"http://127.0.0.1:{port}", settings.admin_token.get_secret_value(), database
    )  # type: ignore[union-attr]
    try:
        stack.start(timeout=90)
        yield running
    finally:
        for client in running.clients:
            client.close()
        stack.stop()
        if pg_name is not None:
            drop_postgres_database(pg_name)


def values_of(body: Any, field: str) -> list[Any]:
    """Every value of ``field`` anywhere in a JSON document."""
    if isinstance(body, dict):
        return ([body[field]] if field in body else []) + [
            v for value in body.values() for v in values_of(value, field)
        ]
    if isinstance(body, list):
        return [v for value in body for v in values_of(value, field)]
    return []


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def stack(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp(f"stack-{request.param}"), request.param) as running:
        yield running
