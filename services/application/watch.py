"""Waiting for the read model: one task per API process wakes whoever waits on a negotiation.

The projector is another process, so the API learns of new events from the database. Instead of
every waiting request polling on its own, one task reads the projected sequence of the watched
negotiations in one query and wakes the waiters whose sequence has been reached. Commands wait
here for read-your-writes, live streams for the next event. Before waking them it brings the API's
cached state of a negotiation that moved on up to date, so the events are read once, not once per
waiting request.

When it reads:

- **PostgreSQL**: the projector announces, in the transaction that writes them, each negotiation
  it moved on (``NOTIFY koopkracht_events, '<negotiation id>:<sequence>'``,
  ``services.readmodel.store.notify_projected``). One connection per API process listens; the
  task reads a negotiation when a notification names it, and a negotiation somebody starts waiting
  on at once (what was announced before is in the database by then). A slow safety read of every
  watched negotiation (``safety_interval``, 1 s) means a lost notification delays, never stalls.
  When the listening connection drops, the task polls as on SQLite until it listens again.
- **SQLite** (or while not listening): every ``interval`` (10 ms) while anybody waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict

import structlog
from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.readmodel.store import EVENTS_CHANNEL, StateCache
from services.readmodel.tables import NegotiationRow

log = structlog.get_logger("koopkracht.api")

LISTENER_NAME = "koopkracht-api-listen"
"""The listening connection's ``application_name``, as operators see it in ``pg_stat_activity``."""
KEEPALIVE_S = 5.0
"""The listening connection is asked this often whether it still answers."""


class ProjectionWatch:
    def __init__(
        self,
        engine: Engine,
        interval: float = 0.01,
        safety_interval: float = 1.0,
        listen: bool | None = None,
        relisten_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.states = StateCache(engine)
        """The API's cached states: one that moved on is brought up to date here, once, before its
        waiters wake, so their answers need no reading of the log of their own."""
        self.interval = interval
        self.safety_interval = safety_interval
        self.listens = engine.dialect.name == "postgresql" if listen is None else listen
        """Whether to listen for the projector's notifications (PostgreSQL)."""
        self.relisten_s = relisten_s
        self.listening = False
        """True while the listening connection is up; the task polls while it is not."""
        self.reads = 0
        """How many times it has read the database."""
        self._waiters: dict[str, list[tuple[int, asyncio.Future[int]]]] = defaultdict(list)
        self._due: set[str] = set()
        """Negotiations to read at the next round: new waiters', and notified ones."""
        self._read_all_at = 0.0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._run(), name="projection-watch"))
        if self.listens:
            self._tasks.append(asyncio.create_task(self._listen(), name="projection-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def reached(self, negotiation_id: str, sequence: int, timeout: float) -> int | None:  # noqa: ASYNC109
        """Wait until the read model holds ``sequence`` of the negotiation; its sequence, or None on timeout."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (sequence, future)
        self._waiters[negotiation_id].append(entry)
        self._due.add(negotiation_id)
        self._wake.set()
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(negotiation_id)
            if waiting is not None and entry in waiting:
                waiting.remove(entry)
                if not waiting:
                    del self._waiters[negotiation_id]

    def notified(self, payload: str) -> None:
        """A notification of the projector: ``<negotiation id>:<sequence>``."""
        negotiation_id, _, sequence = payload.rpartition(":")
        waiting = self._waiters.get(negotiation_id)
        if not waiting or not sequence.isdigit():
            return
        if any(int(sequence) >= wanted for wanted, _ in waiting):
            self._due.add(negotiation_id)
            self._wake.set()

    def _sequences(self, negotiation_ids: list[str]) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(NegotiationRow.id, NegotiationRow.sequence).where(col(NegotiationRow.id).in_(negotiation_ids))
            ).all()
        sequences = dict(rows)
        for negotiation_id, sequence in sequences.items():
            cached = self.states.cached_sequence(negotiation_id)
            if cached is None or cached >= sequence:
                continue
            try:  # only a shortcut for the waiters: they read for themselves when it fails
                self.states.refresh(negotiation_id)
            except Exception as exc:
                log.warning("projection watch could not refresh a negotiation", negotiation_id=negotiation_id,
                            error=f"{type(exc).__name__}: {str(exc)[:200]}")  # fmt: skip
        return sequences

    async def _run(self) -> None:
        while True:
            if not self._waiters:
                self._wake.clear()
                await self._wake.wait()
            self._wake.clear()
            now = time.monotonic()
            if not self.listening or now - self._read_all_at >= self.safety_interval:
                reading = list(self._waiters)
                self._read_all_at = now
            else:
                reading = [negotiation_id for negotiation_id in self._due if negotiation_id in self._waiters]
            self._due.clear()
            if reading:
                try:
                    sequences = await to_thread.run_sync(self._sequences, reading)
                    self.reads += 1
                except Exception as exc:  # the database is away: waiters time out, we try again
                    log.warning("projection watch cannot read the database", error=type(exc).__name__)
                    sequences = {}
                for negotiation_id in reading:
                    reached = sequences.get(negotiation_id, 0)
                    for wanted, future in self._waiters.get(negotiation_id, ()):
                        if reached >= wanted and not future.done():
                            future.set_result(reached)
            if self.listening:
                # Until a notification, a new waiter, or the next safety read.
                pause = max(0.0, self._read_all_at + self.safety_interval - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), pause)
            else:
                await asyncio.sleep(self.interval)

    async def _listen(self) -> None:
        """Hold the listening connection; when it drops, the watch polls until it is back."""
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    url, autocommit=True, connect_timeout=5, application_name=LISTENER_NAME
                ) as connection:
                    await connection.execute(f"LISTEN {EVENTS_CHANNEL}")
                    self.listening = True
                    # Whatever was announced before LISTEN is in the database: read every watched one now.
                    self._read_all_at = 0.0
                    self._wake.set()
                    log.info("projection watch listens for new events", channel=EVENTS_CHANNEL)
                    while True:
                        async for notification in connection.notifies(timeout=KEEPALIVE_S):
                            self.notified(notification.payload)
                        await connection.execute("SELECT 1")  # the connection still answers
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "projection watch is not listening; it polls until it listens again",
                    error=f"{type(exc).__name__}: {str(exc)[:200]}",
                )
            finally:
                self.listening = False
            await asyncio.sleep(self.relisten_s)
