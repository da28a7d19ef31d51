"""Access to the read model: the engine, the event log, and negotiation states rebuilt from it.

The API and the projector share this module. A negotiation's state is rebuilt by the pure core
(``streams.core.state.evolve``) from the ``events`` table, and kept in a small cache that only
ever moves forward: a read fetches the events after the cached sequence, so it costs one indexed
query when nothing changed.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, text
from sqlalchemy import select as sa_select
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, col

from schemas.events import EVENT_ADAPTER, Event
from services.readmodel import tables
from services.readmodel.tables import EventRow
from streams.core.state import NegotiationState, SequenceGap, evolve

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "infra" / "migrations"


class SchemaOutOfDate(RuntimeError):
    """The database's schema is not the one this code needs."""


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``. SQLite gets WAL and a busy timeout, so the projector and the API
    can write (each their own tables) while others read."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # As many pooled connections as the API has worker threads (anyio's 40): opening one per
        # request beyond the pool cost more than the query under load.
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=40, max_overflow=10
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection: Any, _record: Any) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["target_metadata"] = SQLModel.metadata
    return config


def upgrade(url: str) -> None:
    """Bring the database to the newest schema (``alembic upgrade head``)."""
    from alembic import command

    create_db_engine(url).dispose()  # creates the SQLite folder
    command.upgrade(alembic_config(url), "head")


def schema_revisions(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the code's head revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(str(engine.url))).get_current_head()
    assert head is not None
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    return current, head


def require_current_schema(engine: Engine) -> None:
    current, head = schema_revisions(engine)
    if current != head:
        raise SchemaOutOfDate(
            f"the database is at schema revision {current or 'none'}, this version needs {head}: "
            "run `koopkracht db upgrade`"
        )


EVENTS_CHANNEL = "koopkracht_events"
"""The PostgreSQL notification channel on which the projector announces, in the transaction that
writes them, each negotiation it moved on: ``<negotiation id>:<sequence>``. The API processes
listen on it (``services.application.watch``)."""


def notify_projected(session: Session, sequences: dict[str, int]) -> None:
    """Announce on ``EVENTS_CHANNEL`` the sequence each negotiation was projected to; PostgreSQL
    sends it when (and if) the transaction commits. Nothing on SQLite, whose readers poll."""
    if not sequences or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"),
        {"channel": EVENTS_CHANNEL, "payloads": [f"{nid}:{sequence}" for nid, sequence in sequences.items()]},
    )


def load_events(session: Session, negotiation_id: str, after: int = 0, until: int | None = None) -> list[Event]:
    # Only the JSON column: loading ORM rows cost more than decoding the events.
    query = sa_select(col(EventRow.data)).where(
        col(EventRow.negotiation_id) == negotiation_id, col(EventRow.sequence) > after
    )
    if until is not None:
        query = query.where(col(EventRow.sequence) <= until)
    rows = session.connection().execute(query.order_by(col(EventRow.sequence))).scalars().all()
    return [EVENT_ADAPTER.validate_json(data) for data in rows]


def load_vendor_events(session: Session, negotiation_id: str, after: int, until: int) -> list[tuple[int, Event]]:
    """The events the vendor may see numbered ``after`` + 1 … ``until`` in its own counter, with their numbers."""
    query = (
        sa_select(col(EventRow.vendor_sequence), col(EventRow.data))
        .where(
            col(EventRow.negotiation_id) == negotiation_id,
            col(EventRow.vendor_sequence) > after,
            col(EventRow.vendor_sequence) <= until,
        )
        .order_by(col(EventRow.vendor_sequence))
    )
    rows = session.connection().execute(query).all()
    return [(number, EVENT_ADAPTER.validate_json(data)) for number, data in rows if number is not None]


def catch_up(session: Session, negotiation_id: str, state: NegotiationState | None) -> NegotiationState | None:
    """The state moved forward to the newest projected event (or rebuilt, when None)."""
    after = state.sequence if state is not None else 0
    for event_ in load_events(session, negotiation_id, after):
        state = evolve(state, event_)
    return state


class _Lock:
    __slots__ = ("__weakref__", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()


RECENT_EVENTS = 256
T = TypeVar("T")


class StateCache:
    """Negotiation states rebuilt from the event log, newest ``capacity`` kept in memory.

    ``use`` holds the negotiation's lock while the caller reads the state, because ``evolve``
    changes a state in place. A lock lives as long as somebody holds or waits for it (weakly
    referenced), so two threads never hold different locks for one negotiation, and asking for
    many negotiations leaves no locks behind.
    """

    def __init__(self, engine: Engine, capacity: int = 256) -> None:
        self.engine = engine
        self.capacity = capacity
        self._states: OrderedDict[str, NegotiationState] = OrderedDict()
        self._recent: dict[str, deque[Event]] = {}
        """The newest events applied to each cached state: a command's answer is drawn from them."""
        self._locks: weakref.WeakValueDictionary[str, _Lock] = weakref.WeakValueDictionary()
        self._guard = threading.Lock()

    def _lock(self, negotiation_id: str) -> _Lock:
        with self._guard:
            lock = self._locks.get(negotiation_id)
            if lock is None:
                lock = self._locks[negotiation_id] = _Lock()
            return lock

    def cached_sequence(self, negotiation_id: str) -> int | None:
        """The sequence of the cached state, or None when the negotiation is not cached."""
        with self._guard:
            cached = self._states.get(negotiation_id)
        return cached.sequence if cached is not None else None

    def refresh(self, negotiation_id: str) -> None:
        """Bring the cached state up to the event log now (the projection watch does this once for
        every request waiting on the negotiation); skipped while somebody holds the negotiation."""
        if self._lock(negotiation_id).lock.locked():
            return
        with self.use(negotiation_id):
            pass

    @contextmanager
    def use(self, negotiation_id: str, at_least: int | None = None) -> Iterator[NegotiationState | None]:
        """The negotiation's state, up to date with the event log, or at least at sequence
        ``at_least`` when it is given (then the log is not read if the cache already is)."""
        held = self._lock(negotiation_id)  # while anybody holds it, every caller gets this one
        # Read the new events before taking the lock: a hot negotiation's readers then queue only
        # for applying them (microseconds), not for the database.
        with self._guard:
            cached = self._states.get(negotiation_id)
        if cached is not None and at_least is not None and cached.sequence >= at_least:
            fresh: list[Event] = []
        else:
            fresh = self._events_after(negotiation_id, cached.sequence if cached is not None else 0)
        with held.lock:
            state = self._states.get(negotiation_id)
            try:
                for event in fresh:
                    before = state.sequence if state is not None else 0
                    state = evolve(state, event)  # events another reader applied meanwhile are skipped
                    if state.sequence > before:
                        self._recent.setdefault(negotiation_id, deque(maxlen=RECENT_EVENTS)).append(event)
            except SequenceGap:
                self._recent.pop(negotiation_id, None)
                # Evicted meanwhile, or the log was rebuilt underneath us: start again from the log.
                state = self._catch_up(negotiation_id, None)
            if state is None and cached is not None:
                self._recent.pop(negotiation_id, None)
                state = self._catch_up(negotiation_id, None)  # evicted meanwhile, with nothing new
            if state is not None:
                with self._guard:
                    self._states[negotiation_id] = state
                    self._states.move_to_end(negotiation_id)
                    while len(self._states) > self.capacity:
                        evicted, _ = self._states.popitem(last=False)
                        self._recent.pop(evicted, None)
            yield state

    def recent_events(self, negotiation_id: str, first: int, last: int) -> list[Event] | None:
        """Events ``first``…``last`` if they are among the newest applied (call inside ``use``)."""
        recent = self._recent.get(negotiation_id)
        if not recent or recent[0].sequence > first or recent[-1].sequence < last:
            return None
        events = [event for event in recent if first <= event.sequence <= last]
        return events if len(events) == last - first + 1 else None

    def peek(
        self, negotiation_id: str, first: int, last: int, read: Callable[[NegotiationState, list[Event]], T]
    ) -> tuple[bool, T | None]:
        """``read(state, events first…last)`` without waiting and without the database, when the
        cached state has reached ``last``, the events are among the newest and nobody holds the
        negotiation's lock: (True, its answer). Otherwise (False, None), and the caller takes the
        slow path (``use`` in a thread). For answering on the event loop itself."""
        held = self._lock(negotiation_id)
        if not held.lock.acquire(blocking=False):
            return False, None
        try:
            with self._guard:
                state = self._states.get(negotiation_id)
            if state is None or state.sequence < last:
                return False, None
            events = self.recent_events(negotiation_id, first, last) if first <= last else []
            if events is None:
                return False, None
            return True, read(state, events)
        finally:
            held.lock.release()

    def _events_after(self, negotiation_id: str, sequence: int) -> list[Event]:
        with Session(self.engine) as session:
            return load_events(session, negotiation_id, after=sequence)

    def _catch_up(self, negotiation_id: str, state: NegotiationState | None) -> NegotiationState | None:
        with Session(self.engine) as session:
            return catch_up(session, negotiation_id, state)


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per read-model table (for diagnostics and tests)."""
    with engine.connect() as connection:
        return {
            name: int(connection.execute(sa_select(func.count()).select_from(table)).scalar_one())
            for name, table in SQLModel.metadata.tables.items()
        }


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


__all__ = ["StateCache", "tables", "upgrade"]
