"""Purging what is past its retention: expired dashboard sessions, old webhook deliveries with
their attempts, and old idempotency records.

- **Dashboard sessions** once they expired (an expired session signs nobody in any more).
- **Deliveries** (and their attempts) ``delivery_retention_s`` after they were delivered; the
  pending deliveries of a subscription that has been disabled (given up) for that long.
- **Idempotency records** ``idempotency_retention_s`` after the request was sent (a record's
  ``created_at``; a retry that sends a command again restarts it). Within that window a retry
  gets the stored answer; after it the key is forgotten. A retry after that sends the same
  command id again (it is derived from the key), which the worker recognises if it accepted it:
  nothing is applied twice, ever.

Each kind is deleted in batches of at most ``batch`` rows, one short transaction per batch, so a
huge backlog never holds a lock for long. Each delete repeats its condition, so it is correct when
several purgers run at once, or a row changed (a session renewed, a record taken over, a
subscription enabled) between choosing a batch and deleting it: deleting is idempotent, and a
row no longer past retention stays. Every webhook dispatcher runs :class:`Purger` (several
purgers at once are correct, as above); ``koopkracht purge`` runs it once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import Engine, delete, tuple_
from sqlmodel import Session, col, select

from services.readmodel.tables import DashboardSession, Delivery, DeliveryAttempt, IdempotencyRecord, Subscription

log = structlog.get_logger("koopkracht.retention")

BATCH = 500


@dataclass(frozen=True)
class Retention:
    delivery_s: float = 30 * 86_400.0
    idempotency_s: float = 86_400.0
    batch: int = BATCH


@dataclass
class Purged:
    """How many rows of each kind one purge deleted."""

    sessions: int = 0
    deliveries: int = 0
    attempts: int = 0
    idempotency_records: int = 0
    batches: int = field(default=0, compare=False)

    @property
    def total(self) -> int:
        return self.sessions + self.deliveries + self.attempts + self.idempotency_records


def purge(engine: Engine, retention: Retention, now: datetime | None = None) -> Purged:
    """Delete everything past retention at ``now``, batch by batch (see the module)."""
    now = now or datetime.now(UTC)
    purged = Purged()
    deliveries_before = now - timedelta(seconds=retention.delivery_s)
    records_before = now - timedelta(seconds=retention.idempotency_s)
    batches: list[Callable[[], int]] = [
        partial(_sessions, engine, now, retention.batch, purged),
        partial(_deliveries, engine, _delivered(deliveries_before), retention.batch, purged),
        partial(_deliveries, engine, _given_up(deliveries_before), retention.batch, purged),
        partial(_idempotency_records, engine, records_before, retention.batch, purged),
    ]
    for batch in batches:
        # Until a batch deletes nothing: then nothing past retention is left (or another purger,
        # running at the same time, holds the last rows and goes on).
        while batch():
            purged.batches += 1
    return purged


# Each batch is one statement that chooses at most ``limit`` rows past retention and deletes them
# (SQLite: a write from its first statement, so concurrent purges wait for each other instead of
# failing on a stale read). On PostgreSQL the choice skips rows another purge has locked, so
# purges running at once never wait on each other or deadlock.


def _sessions(engine: Engine, now: datetime, limit: int, purged: Purged) -> int:
    expired = col(DashboardSession.expires_at) < now
    chosen = select(DashboardSession.token_hash).where(expired).limit(limit).with_for_update(skip_locked=True)
    with Session(engine) as session, session.begin():
        deleted = session.execute(delete(DashboardSession).where(col(DashboardSession.token_hash).in_(chosen), expired))
    count: int = deleted.rowcount  # type: ignore[attr-defined]
    purged.sessions += count
    return count


def _delivered(before: datetime) -> Any:
    return (col(Delivery.status) == "delivered") & (col(Delivery.delivered_at) < before)


def _given_up(before: datetime) -> Any:
    """Pending deliveries of a subscription the dispatcher gave up on (disabled) before ``before``."""
    disabled = select(Subscription.id).where(
        col(Subscription.status) == "disabled", col(Subscription.disabled_at) < before
    )
    return (col(Delivery.status) == "pending") & col(Delivery.subscription_id).in_(disabled)


def _deliveries(engine: Engine, past: Any, limit: int, purged: Purged) -> int:
    chosen = select(Delivery.id).where(past).order_by(col(Delivery.id)).limit(limit).with_for_update(skip_locked=True)
    with Session(engine) as session, session.begin():
        ids = session.execute(delete(Delivery).where(col(Delivery.id).in_(chosen), past).returning(col(Delivery.id)))
        gone = [row[0] for row in ids]
        if gone:  # and the delivery log of exactly those
            attempts = session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(gone)))
            purged.attempts += attempts.rowcount  # type: ignore[attr-defined]
    purged.deliveries += len(gone)
    return len(gone)


def _idempotency_records(engine: Engine, before: datetime, limit: int, purged: Purged) -> int:
    # created_at moves on when a retry sends the command again (Hub._take_over): that record stays.
    old = col(IdempotencyRecord.created_at) < before
    key = tuple_(col(IdempotencyRecord.organisation_id), col(IdempotencyRecord.key))
    chosen = (
        select(IdempotencyRecord.organisation_id, IdempotencyRecord.key)
        .where(old)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with Session(engine) as session, session.begin():
        deleted = session.execute(delete(IdempotencyRecord).where(key.in_(chosen), old))
    count: int = deleted.rowcount  # type: ignore[attr-defined]
    purged.idempotency_records += count
    return count


class Purger:
    """Runs :func:`purge` every ``interval_s`` (the first time at once) until stopped, and logs
    what each run removed. A failed run (the database away) is logged and tried at the next turn."""

    def __init__(self, engine: Engine, retention: Retention, interval_s: float) -> None:
        self.engine = engine
        self.retention = retention
        self.interval_s = interval_s
        self.runs = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                purged = await asyncio.to_thread(purge, self.engine, self.retention)
            except Exception as exc:
                log.warning("purge failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
            else:
                self.runs += 1
                (log.info if purged.total else log.debug)(
                    "purged",
                    sessions=purged.sessions,
                    deliveries=purged.deliveries,
                    delivery_attempts=purged.attempts,
                    idempotency_records=purged.idempotency_records,
                    batches=purged.batches,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)
