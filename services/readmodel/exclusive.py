"""Running alone: the lock that lets one process of a kind work while a second one waits.

The projector must be the read model's only writer, and on SQLite only one webhook dispatcher may
run. A second process of the kind is harmless: it waits, says so in its log (and who holds the
lock), and takes over within seconds once the first is gone.

- **PostgreSQL**: an advisory lock (``pg_try_advisory_lock``) on a session of its own, held for the
  process's life. When the process dies, its session ends and the lock with it: the waiting one
  takes it at its next try (every ``retry_s``). The session is asked every ``check_s`` whether it
  still holds the lock; when it does not answer, the work stops (it may not go on writing next to
  a successor) and the process waits again.
- **SQLite** (one machine): a lease row in ``leases``, taken and renewed by one conditional
  ``UPDATE`` (or an ``INSERT`` of the first row), valid for ``ttl_s`` and renewed every ``check_s``.
  A process killed without releasing it is followed once the lease runs out; a process that stops
  cleanly releases it at once.

``run_alone(lock, stop, work)`` runs ``work(halt)`` while the lock is held: ``halt`` is set when
``stop`` is, or when the lock is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog
from sqlalchemy import Connection, Engine, or_, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col

from services.readmodel.tables import Lease

log = structlog.get_logger("koopkracht.exclusive")

LOCK_NAMESPACE = 0x4B4B  # "KK": the first key of Koopkracht's advisory locks; the second names the lock


def holder_name() -> str:
    """This process, as other processes and operators read it: host, pid and a random suffix."""
    return f"{socket.gethostname()[:60]}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


class ExclusiveLock(Protocol):
    name: str
    holder: str
    held: bool
    """True while ``run_alone`` runs the work under it (False while it waits): for readiness and metrics."""

    def try_acquire(self) -> tuple[bool, str | None]:
        """(held now, who holds it when not we, if known)."""

    def still_held(self) -> bool:
        """Whether this process still holds the lock (and renews it where it must)."""

    def release(self) -> None: ...


class LeaseLock:
    """A lease row in ``leases`` (any database; used on SQLite)."""

    def __init__(self, engine: Engine, name: str, holder: str | None = None, ttl_s: float = 10.0) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or holder_name()
        self.ttl_s = ttl_s
        self._renewed = 0.0
        self.held = False

    def try_acquire(self) -> tuple[bool, str | None]:
        asked = time.monotonic()
        now = datetime.now(UTC)
        until = now + timedelta(seconds=self.ttl_s)
        with Session(self.engine) as session, session.begin():
            # One statement takes or renews it: ours, or run out. SQLite and PostgreSQL both make
            # one conditional UPDATE atomic, so two processes never both succeed.
            taken = session.execute(
                update(Lease)
                .where(
                    col(Lease.name) == self.name,
                    or_(col(Lease.holder) == self.holder, col(Lease.expires_at) < now),
                )
                .values(holder=self.holder, expires_at=until)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                self._renewed = asked
                return True, None
            insert = sqlite_insert if self.engine.dialect.name == "sqlite" else postgresql_insert
            first = session.execute(
                insert(Lease)
                .values(name=self.name, holder=self.holder, expires_at=until)
                .on_conflict_do_nothing(index_elements=["name"])
            )
            if first.rowcount == 1:  # type: ignore[attr-defined]
                self._renewed = asked
                return True, None
            held = session.get(Lease, self.name)
            return False, held.holder if held is not None else None

    def still_held(self) -> bool:
        try:
            held, _ = self.try_acquire()
        except Exception:  # busy, for a moment: still ours while half the lease remains
            return time.monotonic() < self._renewed + self.ttl_s / 2
        return held

    def release(self) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(Lease, self.name)
            if row is not None and row.holder == self.holder:
                session.delete(row)


class AdvisoryLock:
    """A PostgreSQL advisory lock held by a session of its own for as long as the process runs."""

    def __init__(self, engine: Engine, name: str, holder: str | None = None) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or holder_name()
        self.key = zlib.crc32(f"koopkracht.{name}".encode()) & 0x7FFFFFFF
        self.held = False
        self._session: Connection | None = None

    def _connection(self) -> Connection:
        if self._session is None:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            # Operators (and the waiting process) see who holds the lock in pg_stat_activity.
            connection.execute(text("SELECT set_config('application_name', :name, false)"), {"name": self.holder})
            self._session = connection
        return self._session

    def _drop(self) -> None:
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.invalidate()  # closed for real, not returned to the pool: the lock goes with it
            with contextlib.suppress(Exception):
                self._session.close()
            self._session = None

    def try_acquire(self) -> tuple[bool, str | None]:
        try:
            connection = self._connection()
            held = connection.execute(
                text("SELECT pg_try_advisory_lock(:namespace, :key)"), {"namespace": LOCK_NAMESPACE, "key": self.key}
            ).scalar_one()
            if held:
                return True, None
            holder = connection.execute(
                text(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.classid = :namespace AND l.objid = :key "
                    "AND l.objsubid = 2 AND l.granted"
                ),
                {"namespace": LOCK_NAMESPACE, "key": self.key},
            ).scalar()
            return False, holder
        except Exception:
            self._drop()
            raise

    def still_held(self) -> bool:
        if self._session is None:
            return False
        try:
            return bool(
                self._session.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
                        "AND classid = :namespace AND objid = :key AND objsubid = 2 AND granted)"
                    ),
                    {"namespace": LOCK_NAMESPACE, "key": self.key},
                ).scalar_one()
            )
        except Exception:
            self._drop()
            return False

    def release(self) -> None:
        self._drop()


def exclusive_lock(engine: Engine, name: str, holder: str | None = None, ttl_s: float = 10.0) -> ExclusiveLock:
    """The lock ``name`` for this database: an advisory lock on PostgreSQL, else a lease row."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, name, holder)
    return LeaseLock(engine, name, holder, ttl_s)


async def run_alone(
    lock: ExclusiveLock,
    stop: asyncio.Event,
    work: Callable[[asyncio.Event], Awaitable[None]],
    why: str,
    retry_s: float = 1.0,
    check_s: float = 2.0,
) -> None:
    """Run ``work(halt)`` while this process holds ``lock``, until ``stop``; wait while another
    process holds it, and again after losing it. ``why`` tells the log why the process waits."""
    try:
        while not stop.is_set():
            if not await _acquire(lock, stop, why, retry_s):
                return
            lock.held = True
            halt = asyncio.Event()
            forwarding = asyncio.create_task(_forward(stop, halt))
            keeping = asyncio.create_task(_keep(lock, halt, check_s), name=f"{lock.name}-lock")
            try:
                await work(halt)
            finally:
                halt.set()
                forwarding.cancel()
                held = await keeping  # it ends at once now that ``halt`` is set
                lock.held = False
            if not held and not stop.is_set():
                log.warning(
                    "lock lost: the work stops and waits for the lock again", lock=lock.name, holder=lock.holder
                )
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(lock.release)


async def _forward(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()


async def _acquire(lock: ExclusiveLock, stop: asyncio.Event, why: str, retry_s: float) -> bool:
    said: tuple[str | None] | None = None
    while not stop.is_set():
        try:
            held, holder = await asyncio.to_thread(lock.try_acquire)
        except Exception as exc:  # the database is away: try again
            held, holder = False, None
            log.warning("lock unreadable", lock=lock.name, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        if held:
            log.info("lock held", lock=lock.name, holder=lock.holder)
            return True
        if said != (holder,):
            log.info("waiting for the lock", lock=lock.name, holder=holder, why=why)
            said = (holder,)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), retry_s)
    return False


async def _keep(lock: ExclusiveLock, halt: asyncio.Event, check_s: float) -> bool:
    """Check (and renew) the lock every ``check_s`` until ``halt``; True if it was held throughout.
    On losing it, set ``halt`` (the work stops) and return False."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(halt.wait(), check_s)
        if halt.is_set():
            return True
        try:
            held = await asyncio.to_thread(lock.still_held)
        except Exception:
            held = False
        if not held:
            halt.set()
            return False
