"""What the routes work with: the read model, the command client, and the command path.

``Hub.execute`` is the one way a route sends a command. It honours ``Idempotency-Key`` (a retry
gets the first answer, decided or refused, and adds no event), maps the worker's refusal to a
problem, and returns only once the read model holds the command's events — so every read after a
2xx, by any party and through any API process, reflects it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import structlog
from anyio import to_thread
from fastapi import Request, Response
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from schemas.commands import Command
from schemas.events import Event
from schemas.results import CommandRejected
from services.api.metrics import Metrics
from services.api.problems import PROBLEM_JSON, Problem, problem_body
from services.api.security import Caller
from services.readmodel.store import StateCache, load_events, projected_sequence
from services.readmodel.tables import IdempotencyRecord
from services.settings import Settings
from streams.client import CommandClient, CommandTimeout
from streams.core.state import NegotiationState
from streams.core.views import Audience, audience

log = structlog.get_logger("koopkracht.api")

IDEMPOTENCY_NAMESPACE = uuid.UUID("2d6b8a3e-51c4-5f0e-8a7d-9e3c1b4f6a20")
RETRY_AFTER_S = "2"

T = TypeVar("T")
Render = Callable[[Sequence[Event], NegotiationState], BaseModel | None]


def command_id_for(organisation_id: str, idempotency_key: str | None) -> str:
    """A retry with the same key is the same command: its id is derived from the key."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{organisation_id}\n{idempotency_key}"))


def negotiation_id_for(command_id: str) -> str:
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"negotiation\n{command_id}"))


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    client: CommandClient
    metrics: Metrics
    states: StateCache = field(init=False)
    readiness: Callable[[], Any] | None = None

    def __post_init__(self) -> None:
        self.states = StateCache(self.engine)

    # -- reads -----------------------------------------------------------------------------
    def read(self, caller: Caller, negotiation_id: str, view: Callable[[NegotiationState, Audience], T]) -> T:
        """``view`` of the negotiation for the caller; 404 when the caller is not a party."""
        if caller.role == "admin":
            raise Problem(403, "the admin manages organisations and takes no part in negotiations")
        with self.states.use(negotiation_id) as state:
            viewer = audience(state, caller.organisation_id) if state is not None else None
            if state is None or viewer is None:
                raise Problem(404, f"there is no negotiation {negotiation_id}", title="Not found")
            return view(state, viewer)

    # -- commands --------------------------------------------------------------------------
    async def execute(
        self,
        request: Request,
        caller: Caller,
        idempotency_key: str | None,
        build: Callable[[str], Command],
        render: Render,
        status: int,
    ) -> Response:
        if caller.role == "admin":
            raise Problem(403, "the admin manages organisations and takes no part in negotiations")
        fingerprint = hashlib.sha256(
            f"{request.method} {request.url.path}\n".encode() + await request.body()
        ).hexdigest()
        if idempotency_key is not None:
            stored = await to_thread.run_sync(self._stored_answer, caller.organisation_id, idempotency_key)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    raise Problem(
                        422,
                        "this Idempotency-Key was used for a different request; use a new key",
                        title="Idempotency-Key reused",
                        field="Idempotency-Key",
                    )
                return _replay(stored)
        command = build(command_id_for(caller.organisation_id, idempotency_key))
        answer_status, body = await self._decide(command, render, status)
        if idempotency_key is not None and answer_status < 500:
            record = IdempotencyRecord(
                organisation_id=caller.organisation_id,
                key=idempotency_key,
                fingerprint=fingerprint,
                status=answer_status,
                body=body,
                created_at=datetime.now(UTC),
            )
            first = await to_thread.run_sync(self._remember, record)
            if first is not record:
                return _replay(first)  # a concurrent retry answered first: one answer for both
        return _response(answer_status, body)

    async def _decide(self, command: Command, render: Render, status: int) -> tuple[int, str]:
        log_ = log.bind(command_id=command.command_id, negotiation_id=command.negotiation_id, command=command.type)
        started = time.perf_counter()
        timeout = self.settings.command_timeout_s
        try:
            result = await self.client.send(command, timeout=timeout)
        except CommandTimeout:
            self.metrics.commands.labels(command.type, "timeout").inc()
            log_.warning("command timed out")
            raise _unavailable(
                f"the command was not decided within {timeout:g} s. It stays queued and may still take effect: "
                "retry with the same Idempotency-Key to learn its outcome without repeating it"
            ) from None
        except Exception as exc:  # the broker is unreachable: nothing was sent for sure
            log_.error("command not sent", error=type(exc).__name__)
            raise _unavailable("the hub cannot reach its message broker; try again shortly") from None
        if isinstance(result, CommandRejected):
            self.metrics.commands.labels(command.type, f"rejected_{result.status}").inc()
            self.metrics.command_seconds.labels(command.type).observe(time.perf_counter() - started)
            log_.info("command refused", status=result.status, reason=result.detail)
            problem = Problem(result.status, result.detail, title=result.title, field=result.field)
            return result.status, json.dumps(problem_body(problem))
        remaining = max(0.5, timeout - (time.perf_counter() - started))
        if not await self._wait_projected(command.negotiation_id, result.last_sequence, remaining):
            self.metrics.commands.labels(command.type, "unprojected").inc()
            raise _unavailable(
                "the command took effect, but the read model has not caught up yet; retry with the same "
                "Idempotency-Key to get its answer"
            )
        document = await to_thread.run_sync(
            self._render, command.negotiation_id, result.first_sequence, result.last_sequence, render
        )
        self.metrics.commands.labels(command.type, "accepted").inc()
        self.metrics.command_seconds.labels(command.type).observe(time.perf_counter() - started)
        log_.info("command accepted", first_sequence=result.first_sequence, last_sequence=result.last_sequence)
        return (204, "") if document is None else (status, document.model_dump_json())

    async def _wait_projected(self, negotiation_id: str, sequence: int, timeout: float) -> bool:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        pause = 0.005
        while True:
            if await to_thread.run_sync(self._projected, negotiation_id) >= sequence:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _projected(self, negotiation_id: str) -> int:
        with Session(self.engine) as session:
            return projected_sequence(session, negotiation_id)

    def _render(self, negotiation_id: str, first: int, last: int, render: Render) -> BaseModel | None:
        with Session(self.engine) as session:
            events = load_events(session, negotiation_id, after=first - 1, until=last)
        with self.states.use(negotiation_id) as state:
            assert state is not None
            return render(events, state)

    def _stored_answer(self, organisation_id: str, key: str) -> IdempotencyRecord | None:
        with Session(self.engine) as session:
            return session.get(IdempotencyRecord, (organisation_id, key))

    def _remember(self, record: IdempotencyRecord) -> IdempotencyRecord:
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                session.add(record)
                session.commit()
                return record
            except IntegrityError:
                session.rollback()
        stored = self._stored_answer(record.organisation_id, record.key)
        assert stored is not None
        return stored


def _unavailable(detail: str) -> Problem:
    return Problem(503, detail, headers={"Retry-After": RETRY_AFTER_S})


def _response(status: int, body: str, headers: dict[str, str] | None = None) -> Response:
    if status >= 400:
        return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def _replay(record: IdempotencyRecord) -> Response:
    return _response(record.status, record.body, {"Idempotent-Replayed": "true"})
