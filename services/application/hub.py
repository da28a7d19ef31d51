"""The command path and the reads under the application service: the read model, the command
client, the idempotency records.

``Hub.execute`` is the one way a command is sent, whichever door it came through. It answers the
worker's refusal as a refusal document, and returns only once the read model holds the command's
events — so every read after a 2xx, by any party and through any API process, reflects it.

``Idempotency-Key``: a record is written *before* the command is sent (the key, a fingerprint of
the request, the command id derived from the key). A retry with another request is refused; a
retry of an answered command gets the stored answer; a retry of a command that reached the broker
is never sent again: its outcome comes from this process if it is still waiting for it, else from
the read model (accepted: its events carry its id; refused: the projector keeps refusals). Only a
command that the producer refused before sending it (no connection) is sent again, by one retry
at a time; a broker that did not confirm in time counts as having it. So a retry returns the first
answer, accepted or refused, and adds no event. One window stays: a request that vanished while
sending (its process died before the broker confirmed) is sent again after twice the command
timeout, because whether the broker has it cannot be told; the worker remembers only accepted
command ids, so if that first copy was refused and the state has changed, the second is decided
anew.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from anyio import to_thread
from pydantic import BaseModel
from sqlalchemy import Engine, and_, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from structlog.contextvars import bound_contextvars

from schemas.commands import Command
from schemas.results import CommandAccepted, CommandRejected, CommandResult
from services.application.actions import Action, Answer, Once, Render
from services.application.errors import Refusal, not_found, refusal_document, refused
from services.application.security import Caller, as_party
from services.application.throttle import Throttle
from services.application.watch import ProjectionWatch
from services.metrics import Metrics
from services.readmodel.store import StateCache, load_events
from services.readmodel.tables import CommandRefusal, EventRow, IdempotencyRecord
from services.settings import Settings
from streams.client import CommandClient, CommandTimeout
from streams.core.decider import Rejection
from streams.core.state import NegotiationState
from streams.core.views import Audience, audience

log = structlog.get_logger("koopkracht.api")

IDEMPOTENCY_NAMESPACE = uuid.UUID("2d6b8a3e-51c4-5f0e-8a7d-9e3c1b4f6a20")
RETRY_AFTER_S = "2"

T = TypeVar("T")


def command_id_for(organisation_id: str, idempotency_key: str | None) -> str:
    """A retry with the same key is the same command: its id is derived from the key."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"{organisation_id}\n{idempotency_key}"))


def idempotency_scope(caller: Caller, idempotency_key: str) -> str:
    """The key an ``Idempotency-Key`` is kept under: the integration key's as sent, a person's under
    the person's id (hashed, to fit the column), so that another person of the organisation who
    sends the same key neither gets this person's answer (a contributor replaying an approver's
    request would read a success that was not its own) nor spoils this person's retry."""
    if caller.person is None:
        return idempotency_key
    return f"{caller.person.id}:{hashlib.sha256(idempotency_key.encode()).hexdigest()}"


def negotiation_id_for(command_id: str) -> str:
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, f"negotiation\n{command_id}"))


@dataclass
class Hub:
    settings: Settings
    engine: Engine
    client: CommandClient
    metrics: Metrics
    watch: ProjectionWatch
    throttle: Throttle
    readiness: Callable[..., Any] | None = None
    _background: set[asyncio.Future[Any]] = field(default_factory=set)
    """Small follow-ups that outlive a request (marking a key ``unsent``), kept until done."""

    @property
    def states(self) -> StateCache:
        """The negotiations' states, kept by the watch that brings them up to date for its waiters."""
        return self.watch.states

    # -- reads -----------------------------------------------------------------------------
    def read(self, caller: Caller, negotiation_id: str, view: Callable[[NegotiationState, Audience], T]) -> T:
        """``view`` of the negotiation for the caller; 404 when the caller is not a party. A read the
        core refuses raises its rejection, as a refusal."""
        as_party(caller)
        with self.states.use(negotiation_id) as state:
            viewer = audience(state, caller.organisation_id) if state is not None else None
            if state is None or viewer is None:
                raise not_found(f"there is no negotiation {negotiation_id}")
            try:
                return view(state, viewer)
            except Rejection as rejection:
                raise refused(rejection) from None

    # -- commands --------------------------------------------------------------------------
    async def execute(self, caller: Caller, action: Action, once: Once | None, instance: str) -> Answer:
        """Send the command that ``action`` builds and answer with its outcome (see the module).

        ``instance`` names the request in a refusal's document (the API's path)."""
        as_party(caller)
        job = _Job(
            render=action.render,
            status=action.status,
            path=instance,
            keyed=once is not None,
            timeout=self.settings.command_timeout_s,
        )
        if once is None:
            command = action.build(str(uuid.uuid4()))
            with bound_contextvars(command_id=command.command_id, negotiation_id=command.negotiation_id):
                return Answer(*await self._send(command, job))
        key = idempotency_scope(caller, once.key)
        command = action.build(command_id_for(caller.organisation_id, key))
        with bound_contextvars(command_id=command.command_id, negotiation_id=command.negotiation_id):
            return await self._execute_once(command, once, key, caller, job)

    async def _execute_once(self, command: Command, once: Once, key: str, caller: Caller, job: _Job) -> Answer:
        """``execute`` of a command sent with an ``Idempotency-Key``: claim the key, send it once."""
        claim = IdempotencyRecord(
            organisation_id=caller.organisation_id,
            key=key,
            fingerprint=once.fingerprint,
            command_id=command.command_id,
            negotiation_id=command.negotiation_id,
            state="sending",
            created_at=datetime.now(UTC),
        )
        record, mine = await to_thread.run_sync(self._claim, claim)
        if record.fingerprint != once.fingerprint:
            raise Refusal(
                422,
                "this Idempotency-Key was used for a different request; use a new key",
                title="Idempotency-Key reused",
                field="Idempotency-Key",
            )
        if record.state == "answered":
            return _replay(record)
        if mine or (
            await to_thread.run_sync(self._decided, command) is None
            and await to_thread.run_sync(self._take_over, record, self.settings.command_timeout_s)
        ):
            answer = await self._send(command, job, record)
        else:
            # Sent before (or being sent right now): never send it again, learn what became of it.
            answer = await self._outcome(command, job)
        if answer[0] >= 500:
            return Answer(*answer)
        first = await to_thread.run_sync(self._remember, record, answer)
        return Answer(*answer) if first is None else _replay(first)

    async def _send(self, command: Command, job: _Job, record: IdempotencyRecord | None = None) -> tuple[int, str]:
        log_ = log.bind(command_id=command.command_id, negotiation_id=command.negotiation_id, command=command.type)
        timeout = self.settings.command_timeout_s
        try:
            future = await self.client.submit(command, timeout)
        except CommandTimeout as exc:
            # The broker may have taken it after all: not sent again while that may be so; retries ask
            # for its outcome. Should the producer give it up later, it is not on the topic: a retry
            # may then send it again (under the same command id, which the worker deduplicates).
            if record is not None:
                await to_thread.run_sync(self._set_state, record, "sent")
                if exc.delivery is not None:
                    self._unsent_if_given_up(exc.delivery, record, log_)
            log_.error("command not acknowledged in time")
            raise _unavailable(
                "the hub's message broker did not confirm the command in time; " + _retry_advice(job)
            ) from None
        except Exception as exc:  # refused before sending (no connection, no metadata): not on the topic
            if record is not None:
                await to_thread.run_sync(self._set_state, record, "unsent")
            log_.error("command not sent", error=type(exc).__name__)
            raise _unavailable("the hub cannot reach its message broker; try again shortly") from None
        if record is not None:
            await to_thread.run_sync(self._set_state, record, "sent")
        try:
            result = await asyncio.wait_for(asyncio.shield(future), max(0.001, job.deadline - time.monotonic()))
        except TimeoutError:
            self.metrics.commands.labels(command.type, "timeout").inc()
            log_.warning("command not decided in time")
            raise _unavailable(
                f"the command was not decided within {timeout:g} s. It stays queued and may still take effect: "
                + _retry_advice(job)
            ) from None
        return await self._answer(command, result, job)

    def _unsent_if_given_up(self, delivery: asyncio.Future[Any], record: IdempotencyRecord, log_: Any) -> None:
        """When the producer gives up a command it had queued, mark its key ``unsent``."""

        def settled(done: asyncio.Future[Any]) -> None:
            if done.cancelled() or done.exception() is None:
                return  # delivered after all: a retry learns the outcome from the read model
            log_.warning(
                "command given up by the producer: a retry sends it again", error=type(done.exception()).__name__
            )
            task = asyncio.ensure_future(to_thread.run_sync(self._set_state_if, record, "sent", "unsent"))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

        delivery.add_done_callback(settled)

    async def _outcome(self, command: Command, job: _Job) -> tuple[int, str]:
        """The answer of a command sent before: from this process, or from the read model."""
        in_flight = self.client.pending(command.command_id)
        if in_flight is not None:
            with contextlib.suppress(TimeoutError):
                remaining = max(0.001, job.deadline - time.monotonic())
                return await self._answer(command, await asyncio.wait_for(asyncio.shield(in_flight), remaining), job)
        pause = 0.01
        while time.monotonic() < job.deadline:
            result = await to_thread.run_sync(self._decided, command)
            if result is not None:
                return await self._answer(command, result, job)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.2)
        raise _unavailable("the command is still being decided; " + _retry_advice(job))

    def _decided(self, command: Command) -> CommandResult | None:
        """What the worker decided, as far as the read model knows: accepted (its events are
        projected), refused (the projector keeps refusals), or not yet known (None)."""
        with Session(self.engine) as session:
            first, last = session.exec(
                select(func.min(EventRow.sequence), func.max(EventRow.sequence)).where(
                    EventRow.negotiation_id == command.negotiation_id, EventRow.command_id == command.command_id
                )
            ).one()
            if first is not None:
                return CommandAccepted(
                    command_id=command.command_id,
                    negotiation_id=command.negotiation_id,
                    first_sequence=first,
                    last_sequence=last,
                    duplicate=True,
                )
            refusal = session.get(CommandRefusal, command.command_id)
            if refusal is None or refusal.negotiation_id != command.negotiation_id:
                return None
            return CommandRejected(
                command_id=refusal.command_id,
                negotiation_id=refusal.negotiation_id,
                status=refusal.status,
                title=refusal.title,
                detail=refusal.detail,
                field=refusal.field,
            )

    async def _answer(self, command: Command, result: CommandResult, job: _Job) -> tuple[int, str]:
        log_ = log.bind(command_id=command.command_id, negotiation_id=command.negotiation_id, command=command.type)
        elapsed = time.monotonic() - job.started
        if isinstance(result, CommandRejected):
            self.metrics.commands.labels(command.type, f"rejected_{result.status}").inc()
            self.metrics.command_seconds.labels(command.type).observe(elapsed)
            log_.info("command refused", status=result.status, reason=result.detail)
            problem = Refusal(result.status, result.detail, title=result.title, field=result.field)
            return result.status, json.dumps(refusal_document(problem, job.path))
        try:
            remaining = max(0.5, job.deadline - time.monotonic())
            if await self.watch.reached(command.negotiation_id, result.last_sequence, remaining) is None:
                self.metrics.commands.labels(command.type, "unprojected").inc()
                raise _unavailable(
                    "the command took effect, but the read model has not caught up yet; " + _retry_advice(job)
                )
            # Usually the watch has just brought the cached state up to date: answer right here.
            done, document = self.states.peek(
                command.negotiation_id,
                result.first_sequence,
                result.last_sequence,
                lambda state, events: job.render(events, state),
            )
            if not done:
                document = await to_thread.run_sync(
                    self._render, command.negotiation_id, result.first_sequence, result.last_sequence, job.render
                )
        except Refusal:
            raise
        except Exception as exc:  # the database is away: the command took effect all the same
            log_.error("answer not readable", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            raise _unavailable(
                "the command took effect, but its answer cannot be read yet; " + _retry_advice(job)
            ) from exc
        self.metrics.commands.labels(command.type, "accepted").inc()
        self.metrics.command_seconds.labels(command.type).observe(time.monotonic() - job.started)
        log_.info("command accepted", first_sequence=result.first_sequence, last_sequence=result.last_sequence)
        return (204, "") if document is None else (job.status, document.model_dump_json())

    def _render(self, negotiation_id: str, first: int, last: int, render: Render) -> BaseModel | None:
        with self.states.use(negotiation_id, at_least=last) as state:
            assert state is not None
            events = self.states.recent_events(negotiation_id, first, last)
            if events is None:  # not among the newest any more: read them
                with Session(self.engine) as session:
                    events = load_events(session, negotiation_id, after=first - 1, until=last)
            return render(events, state)

    # -- the idempotency records -------------------------------------------------------------
    def _claim(self, claim: IdempotencyRecord) -> tuple[IdempotencyRecord, bool]:
        """The key's record: ``claim`` itself if it is new (True), else the one stored (False)."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                session.add(claim)
                session.commit()
                return claim, True
            except IntegrityError:
                session.rollback()
            stored = session.get(IdempotencyRecord, (claim.organisation_id, claim.key))
            assert stored is not None
            return stored, False

    def _take_over(self, record: IdempotencyRecord, timeout: float) -> bool:
        """Send again only what never reached the broker, or what a vanished request was sending."""
        stale = datetime.now(UTC) - timedelta(seconds=2 * timeout)
        with Session(self.engine) as session, session.begin():
            taken = session.execute(
                update(IdempotencyRecord)
                .where(
                    col(IdempotencyRecord.organisation_id) == record.organisation_id,
                    col(IdempotencyRecord.key) == record.key,
                    or_(
                        col(IdempotencyRecord.state) == "unsent",
                        and_(col(IdempotencyRecord.state) == "sending", col(IdempotencyRecord.created_at) < stale),
                    ),
                )
                .values(state="sending", created_at=datetime.now(UTC))  # one taker; the clock starts again
            )
            return bool(taken.rowcount)  # type: ignore[attr-defined]

    def _set_state_if(self, record: IdempotencyRecord, was: str, state: str) -> None:
        """``state`` for the key, only if it is still ``was`` (no retry took it over meanwhile)."""
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(_unanswered(record).where(col(IdempotencyRecord.state) == was).values(state=state))
        except Exception as exc:  # a retry then waits for the outcome, as before
            log.warning("idempotency record not updated", error=type(exc).__name__)

    def _set_state(self, record: IdempotencyRecord, state: str) -> None:
        try:
            with Session(self.engine) as session, session.begin():
                session.execute(_unanswered(record).values(state=state))
        except Exception as exc:  # the answer path still works from the read model
            log.warning("idempotency record not updated", error=type(exc).__name__)

    def _remember(self, record: IdempotencyRecord, answer: tuple[int, str]) -> IdempotencyRecord | None:
        """Keep the first answer; returns the stored one when another request answered first."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                session.execute(_unanswered(record).values(state="answered", status=answer[0], body=answer[1]))
                stored = session.get(IdempotencyRecord, (record.organisation_id, record.key))
        except Exception as exc:  # the answer is right; a retry finds it again in the read model
            log.warning("idempotency answer not stored", error=type(exc).__name__)
            return None
        if stored is None or (stored.status, stored.body) == answer:
            return None
        return stored


def _unanswered(record: IdempotencyRecord) -> Any:
    """An update of the record, as long as no answer is stored in it (the first answer stays)."""
    return update(IdempotencyRecord).where(
        col(IdempotencyRecord.organisation_id) == record.organisation_id,
        col(IdempotencyRecord.key) == record.key,
        col(IdempotencyRecord.state) != "answered",
    )


@dataclass
class _Job:
    """One request's command: how to answer it, and until when."""

    render: Render
    status: int
    path: str
    keyed: bool
    started: float = field(default_factory=time.monotonic)
    deadline: float = 0.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        self.deadline = self.started + self.timeout


def _retry_advice(job: _Job) -> str:
    if job.keyed:
        return "retry with the same Idempotency-Key to learn its outcome without repeating it"
    return "read the negotiation before you retry: without an Idempotency-Key a retry is a new command"


def _unavailable(detail: str) -> Refusal:
    return Refusal(503, detail, headers={"Retry-After": RETRY_AFTER_S})


def _replay(record: IdempotencyRecord) -> Answer:
    assert record.status is not None
    return Answer(record.status, record.body or "", replayed=True)
