"""Waiting for the read model: one poller per API process wakes whoever waits on a negotiation.

The projector is another process, so the API learns of new events from the database. Instead of
every waiting request polling on its own, one task reads the projected sequence of all watched
negotiations in one query, every ``interval`` seconds while anybody waits, and wakes the waiters
whose sequence has been reached. Commands wait here for read-your-writes, live streams for the
next event. Before waking them it brings the API's cached state of a negotiation that moved on up
to date, so the events are read once, not once per waiting request.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import structlog
from anyio import to_thread
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from services.readmodel.store import StateCache
from services.readmodel.tables import NegotiationRow

log = structlog.get_logger("koopkracht.api")


class ProjectionWatch:
    def __init__(self, engine: Engine, interval: float = 0.01) -> None:
        self.engine = engine
        self.states = StateCache(engine)
        """The API's cached states: one that moved on is brought up to date here, once, before its
        waiters wake, so their answers need no reading of the log of their own."""
        self.interval = interval
        self._waiters: dict[str, list[tuple[int, asyncio.Future[int]]]] = defaultdict(list)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="projection-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reached(self, negotiation_id: str, sequence: int, timeout: float) -> int | None:  # noqa: ASYNC109
        """Wait until the read model holds ``sequence`` of the negotiation; its sequence, or None on timeout."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        entry = (sequence, future)
        self._waiters[negotiation_id].append(entry)
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
            try:
                sequences = await to_thread.run_sync(self._sequences, list(self._waiters))
            except Exception as exc:  # the database is away: waiters time out, we try again
                log.warning("projection watch cannot read the database", error=type(exc).__name__)
                sequences = {}
            for negotiation_id, waiting in list(self._waiters.items()):
                reached = sequences.get(negotiation_id, 0)
                for wanted, future in waiting:
                    if reached >= wanted and not future.done():
                        future.set_result(reached)
            await asyncio.sleep(self.interval)
