"""The scheduler: time, as a command (SPEC section 9).

A commitment neither delivered nor met by its due date becomes ``overdue``. The pure core reads no
clock, so that a replay of the log decides exactly as the first run did: time enters it only as a
``Tick {now}`` command, decided and logged like any other. This process sends those ticks.

Every ``KOOPKRACHT_TICK_INTERVAL_S`` (60 s) it asks the read model, in one query, which
negotiations have an ``open`` commitment whose due date is before now; for each it rebuilds the
state from the event log (``StateCache``) and asks the pure core which commitments a tick at
``now`` would find overdue (``overdue_commitments``); where there are some it sends ``Tick(now)``
as the hub (role ``admin``, no person) and waits for the worker's answer. The decider then emits
one ``CommitmentOverdue`` per commitment, and the projector marks their rows ``overdue``, so the
next round's query no longer names them.

The command id is a UUID v5 of the negotiation and ``now``, and ``run`` rounds ``now`` down to a
multiple of the interval: a retry, the same round after a restart, or a second scheduler sends
the very same command, which the worker answers as a duplicate and which adds nothing. Running
two schedulers is therefore harmless (a tick sent at another ``now`` finds nothing left overdue
and is refused with 409).

The clock is injected (``clock``), and ``tick_once(now)`` runs one round at a given time, so tests
move time by passing it, never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from schemas.commands import Actor, Tick
from schemas.results import CommandAccepted, CommandResult
from services.metrics import SchedulerMetrics
from services.observability import Observed, scheduler_probe
from services.readmodel.store import StateCache
from services.readmodel.tables import CommitmentRow, Heartbeat, NegotiationRow
from services.settings import Settings
from streams.client import CommandClient
from streams.connection import KafkaConnection
from streams.core.decider import AFTER_AGREEMENT, overdue_commitments

log = structlog.get_logger("koopkracht.scheduler")

SCHEDULER = Actor(organisation_id="hub", role="admin", name="Koopkracht scheduler")
"""Who sends ticks: the hub itself, no organisation's person."""
TICK_NAMESPACE = uuid.UUID("7af4ac05-2077-4906-b7b5-663e0aa7c20c")
"""Namespace of the ticks' deterministic (UUID v5) command ids."""
HEARTBEAT = "scheduler"
"""The scheduler's row in ``heartbeats``: written at every round."""
CONCURRENCY = 16
"""Negotiations ticked at once in one round."""

Clock = Callable[[], datetime]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def tick_command_id(negotiation_id: str, now: datetime) -> str:
    """The id of the tick for ``negotiation_id`` at ``now``: the same for every sender at that time."""
    return str(uuid.uuid5(TICK_NAMESPACE, f"{negotiation_id}/{now.astimezone(UTC).isoformat()}"))


def aligned(moment: datetime, interval_s: float) -> datetime:
    """``moment`` rounded down to a multiple of ``interval_s`` since the epoch, in UTC: two
    schedulers with the same interval tick at the same ``now`` within one interval."""
    micros = (moment - EPOCH) // timedelta(microseconds=1)  # whole numbers: no float rounding
    step = max(1, round(interval_s * 1_000_000))
    return EPOCH + timedelta(microseconds=micros - micros % step)


def due_negotiations(engine: Engine, now: datetime) -> list[str]:
    """The negotiations that have an ``open`` commitment due before ``now``, by the read model.

    An abandoned negotiation (abandoned while reopened) is left out: its commitments stand where
    they were, and a tick would be refused every round."""
    query = (
        select(CommitmentRow.negotiation_id)
        .distinct()
        .join(NegotiationRow, col(NegotiationRow.id) == col(CommitmentRow.negotiation_id))
        .where(
            col(CommitmentRow.status) == "open",
            col(CommitmentRow.due) < now.astimezone(UTC),  # stored in UTC (SQLite keeps no zone)
            col(NegotiationRow.phase).in_(AFTER_AGREEMENT),
        )
        .order_by(col(CommitmentRow.negotiation_id))
    )
    with Session(engine) as session:
        return list(session.exec(query).all())


@dataclass(frozen=True)
class TickSummary:
    """What one round did."""

    now: datetime
    candidates: int = 0
    """Negotiations the read model named (an open commitment due before ``now``)."""
    sent: int = 0
    """Ticks sent: to the candidates where the pure core found something overdue."""
    accepted: int = 0
    """Ticks that made commitments overdue."""
    overdue: int = 0
    """Commitments they made overdue."""
    duplicates: int = 0
    """Ticks decided before (a retry, a second scheduler): nothing new."""
    refused: int = 0
    unanswered: int = 0
    """Ticks without an answer in time (the broker or the worker away): the next round tries again."""


@dataclass
class _Tally:
    sent: int = 0
    accepted: int = 0
    overdue: int = 0
    duplicates: int = 0
    refused: int = 0
    unanswered: int = 0


class Scheduler:
    """Sends ``Tick`` commands through ``client`` (started by the caller) to the negotiations whose
    commitments passed their due dates, as the read model on ``engine`` tells."""

    def __init__(
        self,
        engine: Engine,
        client: CommandClient,
        *,
        interval_s: float = 60.0,
        timeout_s: float = 10.0,
        clock: Clock = utc_now,
        states: StateCache | None = None,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        self.engine = engine
        self.client = client
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.clock = clock
        self.states = states or StateCache(engine)
        self.metrics = metrics or SchedulerMetrics()
        self.ready = asyncio.Event()

    async def tick_once(self, now: datetime) -> TickSummary:
        """One round at ``now``: tick every negotiation with something overdue then; wait for the answers."""
        started = time.perf_counter()
        candidates = await asyncio.to_thread(due_negotiations, self.engine, now)
        tally = _Tally()
        room = asyncio.Semaphore(CONCURRENCY)

        async def one(negotiation_id: str) -> None:
            async with room:
                await self._tick(negotiation_id, now, tally)

        await asyncio.gather(*(one(nid) for nid in candidates))
        metrics = self.metrics
        for outcome, count in (
            ("accepted", tally.accepted),
            ("duplicate", tally.duplicates),
            ("refused", tally.refused),
            ("unanswered", tally.unanswered),
        ):
            metrics.ticks[outcome].inc(count)
        metrics.overdue.inc(tally.overdue)
        metrics.round_seconds.observe(time.perf_counter() - started)
        metrics.last_round.set(time.time())
        return TickSummary(now=now, candidates=len(candidates), **vars(tally))

    async def _tick(self, negotiation_id: str, now: datetime, tally: _Tally) -> None:
        overdue = await asyncio.to_thread(self._overdue, negotiation_id, now)
        if not overdue:
            return  # the read model's row is behind its event log, or the negotiation moved on
        command = Tick(
            command_id=tick_command_id(negotiation_id, now), negotiation_id=negotiation_id, actor=SCHEDULER, now=now
        )
        bound = log.bind(negotiation_id=negotiation_id, command_id=command.command_id)
        tally.sent += 1
        try:
            result: CommandResult = await self.client.send(command, timeout=self.timeout_s)
        except Exception as exc:  # a timeout, or the broker away: the next round sends it again
            tally.unanswered += 1
            bound.warning("tick unanswered", now=now.isoformat(), error=f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        if isinstance(result, CommandAccepted):
            if result.duplicate:
                tally.duplicates += 1
                bound.info("tick accepted before", now=now.isoformat(), duplicate=True)
                return
            made = result.last_sequence - result.first_sequence + 1
            tally.accepted += 1
            tally.overdue += made
            bound.info("tick accepted", now=now.isoformat(), overdue=made, items=overdue)
            return
        tally.refused += 1
        bound.warning("tick refused", now=now.isoformat(), status=result.status, detail=result.detail)

    def _overdue(self, negotiation_id: str, now: datetime) -> list[str]:
        """The keys of the commitments the pure core finds overdue at ``now``."""
        with self.states.use(negotiation_id) as state:
            if state is None:
                return []
            return [commitment.key for commitment in overdue_commitments(state, now)]

    def beat(self) -> None:
        with Session(self.engine) as session, session.begin():
            session.merge(Heartbeat(service=HEARTBEAT, beat_at=datetime.now(UTC)))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """A round every ``interval_s`` at the clock's time (rounded down to the interval), until
        ``stop`` is set; a round in progress then ends where it is (a tick sent again is the same
        command)."""
        stop = stop or asyncio.Event()
        log.info("scheduler.ready", interval_s=self.interval_s)
        self.ready.set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                now = aligned(self.clock(), self.interval_s)
                round_ = asyncio.create_task(self.tick_once(now))
                await asyncio.wait({round_, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not round_.done():
                    round_.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await round_
                    break
                failed = round_.exception()
                if failed is not None:  # the database is away, most likely: the next round tries again
                    log.warning("tick round failed", now=now.isoformat(), error=f"{type(failed).__name__}: {failed}")
                elif round_.result().candidates:
                    log.info("tick round", **_fields(round_.result()))
                with contextlib.suppress(Exception):  # no beat: the heartbeat goes stale, which says so
                    await asyncio.to_thread(self.beat)
                await asyncio.wait({stopping}, timeout=self.interval_s)
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping
        log.info("scheduler.stopped")


def _fields(summary: TickSummary) -> dict[str, object]:
    fields = dict(vars(summary))
    fields["now"] = summary.now.isoformat()
    return fields


async def serve(
    engine: Engine,
    bootstrap: KafkaConnection | str,
    settings: Settings,
    stop: asyncio.Event,
    observed: Observed | None = None,
) -> None:
    """``koopkracht scheduler``: the scheduler with its own command client, until ``stop``;
    ``observed``: its metrics, health and tracing (``services.observability``)."""
    observed = observed or Observed("scheduler")
    client_id = "koopkracht-scheduler"
    async with CommandClient(bootstrap, settings.topic_prefix, client_id=client_id, tracing=observed.tracing) as client:
        scheduler = Scheduler(
            engine,
            client,
            interval_s=settings.tick_interval_s,
            timeout_s=settings.command_timeout_s,
            metrics=SchedulerMetrics(observed.registry),
        )
        await observed.run(scheduler.run(stop), scheduler_probe(scheduler, engine))
