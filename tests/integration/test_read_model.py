"""The read model: its migration, and the projector from the real events topic into a real database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel, select

from infra.kafka.topics import ensure_topics
from schemas.common import number_to_json
from schemas.events import Event
from schemas.topics import EVENTS
from services.readmodel.projector import Projector
from services.readmodel.store import create_db_engine, require_current_schema, table_counts, upgrade
from services.readmodel.tables import (
    ClarificationRow,
    DemandVersionRow,
    EndorsementRow,
    MemberRow,
    NegotiationRow,
    PositionRow,
    ResponseRow,
)
from streams.codec import encode_event
from tests.integration.harness import script, wait_until


def test_the_migration_builds_exactly_the_tables_the_code_declares(database: str) -> None:
    # Given an empty database, when it is migrated to the newest revision
    upgrade(database)
    engine = create_db_engine(database)
    # Then the schema is current and nothing differs from the SQLModel tables, types included
    require_current_schema(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []
    # And migrating again changes nothing
    upgrade(database)


async def produce_events(bootstrap: str, topic: str, events: Iterable[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        pending = []
        for event in events:
            message = encode_event(event)
            pending.append(
                await producer.send(topic, key=message.key, value=message.value, headers=list(message.headers.items()))
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def test_the_projector_writes_each_event_once_and_its_tables_match_the_pure_state(
    kafka_bootstrap: str, topic_prefix: str, database: str
) -> None:
    # Given 40 negotiations' events on the events topic, the first 200 of them written twice
    expected = script(negotiations=40, commands=1500, seed=5)
    every_event = [event for events in expected.events.values() for event in events]
    await ensure_topics(kafka_bootstrap, topic_prefix)
    topic = EVENTS.name(topic_prefix)
    await produce_events(kafka_bootstrap, topic, every_event)
    await produce_events(kafka_bootstrap, topic, every_event[:200])
    upgrade(database)
    engine = create_db_engine(database)

    async def project(group: str) -> Projector:
        projector = Projector(engine, kafka_bootstrap, topic_prefix, group_id=group)
        stop = asyncio.Event()
        task = asyncio.create_task(projector.run(stop))
        try:
            await wait_until(
                lambda: table_counts(engine)["events"] == len(every_event),
                120,
                lambda: f"the projector to write {len(every_event)} events ({table_counts(engine)['events']} so far)",
            )
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        return projector

    # When the projector consumes the topic
    first = await project("projector-a")
    counts = table_counts(engine)

    # Then every event is in the log once, and each negotiation's row is at its last sequence
    assert first.projected == len(every_event)
    with Session(engine) as session:
        rows = {row.id: row for row in session.exec(select(NegotiationRow)).all()}
        assert {nid: (row.phase, row.sequence, row.round) for nid, row in rows.items()} == {
            nid: (state.phase, state.sequence, state.round) for nid, state in expected.states.items()
        }
        # And the tables hold what the pure core's state holds
        members = {(r.negotiation_id, r.organisation_id, r.weight) for r in session.exec(select(MemberRow)).all()}
        assert members == {
            (nid, m.organisation_id, m.weight) for nid, s in expected.states.items() for m in s.members.values()
        }
        positions = {
            (r.negotiation_id, r.organisation_id, r.item_key, r.priority, r.value, tuple(r.accepted or ()))
            for r in session.exec(select(PositionRow)).all()
        }
        assert positions == {
            (
                nid,
                member_id,
                key,
                p.priority,
                None if p.value is None else json.dumps(number_to_json(p.value)),
                tuple(p.accepted or ()),
            )
            for nid, s in expected.states.items()
            for member_id, stated in s.positions.items()
            for key, p in stated.items()
        }
        versions = {(r.negotiation_id, r.version, r.hash) for r in session.exec(select(DemandVersionRow)).all()}
        assert versions == {(nid, v.version, v.hash) for nid, s in expected.states.items() for v in s.versions}
        rounds = {(r.negotiation_id, r.round) for r in session.exec(select(ResponseRow)).all()}
        assert rounds == {(nid, n) for nid, s in expected.states.items() for n in range(1, s.round + 1)}
        answered = {(r.negotiation_id, r.clarification_id, r.answer) for r in session.exec(select(ClarificationRow))}
        assert answered == {
            (nid, c.clarification_id, c.answer) for nid, s in expected.states.items() for c in s.clarifications.values()
        }
        endorsements = session.exec(select(EndorsementRow)).all()
        assert len(endorsements) == sum(
            1 for events in expected.events.values() for e in events if e.type == "EndorsementGiven"
        )

    # When a second projector (a new group) reads the whole topic again
    second = await project("projector-b")
    # Then it finds nothing new, and no table changed
    assert second.projected == 0
    assert table_counts(engine) == counts


def test_the_state_cache_rebuilds_states_from_the_event_log_and_keeps_no_lock_behind(database: str) -> None:
    import gc
    from concurrent.futures import ThreadPoolExecutor

    from services.readmodel.projector import Projection
    from services.readmodel.store import StateCache

    # Given a projected event log of several negotiations
    expected = script(negotiations=5, commands=300, seed=11)
    upgrade(database)
    engine = create_db_engine(database)
    Projection(engine).apply([event for events in expected.events.values() for event in events])
    cache = StateCache(engine, capacity=2)

    def facts(nid: str) -> object:
        with cache.use(nid) as state:
            assert state is not None
            return state.facts()

    # When many threads read the negotiations at once (more than the cache holds)
    with ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(facts, [nid for nid in expected.states for _ in range(6)]))
    # Then each reads exactly the state the pure core computed, and no lock outlives its use
    assert seen == [expected.states[nid].facts() for nid in expected.states for _ in range(6)]
    gc.collect()
    assert len(cache._locks) == 0
    with cache.use("no-such-negotiation") as missing:
        assert missing is None


def test_one_batch_that_states_withdraws_and_states_again_leaves_the_last_write(database: str) -> None:
    # Given a negotiation whose events arrive in one batch: uni states, withdraws and states again;
    # hbo states and withdraws
    from services.readmodel.projector import Projection
    from tests.unit.builders import Negotiation, item

    n = Negotiation(item("no-ads"), item("retention-days", "at_most"))
    n.invite("uni", weight=3).invite("hbo", weight=1)
    n.position("uni", "retention-days", value=30).withdraw("uni", "retention-days")
    n.position("uni", "retention-days", value=14).position("hbo", "no-ads").withdraw("hbo", "no-ads")
    upgrade(database)
    engine = create_db_engine(database)

    # When the projection writes the batch
    Projection(engine).apply(list(n.events))

    # Then only uni's last position is stored, and the negotiation row has the last sequence
    with Session(engine) as session:
        rows = session.exec(select(PositionRow)).all()
        assert [(r.organisation_id, r.item_key, r.value) for r in rows] == [("uni", "retention-days", "14")]
        negotiation = session.get(NegotiationRow, n.negotiation_id)
        assert negotiation is not None
        assert negotiation.sequence == n.s.sequence


def test_a_key_is_read_once_and_then_checked_without_the_database(database: str) -> None:
    # Given an organisation with an API key in the database
    from datetime import UTC, datetime

    import pytest

    from services.application.errors import Refusal
    from services.application.security import authenticate, authenticate_known, new_key
    from services.readmodel.tables import Organisation

    upgrade(database)
    engine = create_db_engine(database)
    key = new_key()
    with Session(engine) as session:
        session.add(Organisation(id=f"org_{key.key_id}", name="Uni", role="member", key_id=key.key_id,
                                 key_hash=key.hash, created_at=datetime.now(UTC)))  # fmt: skip
        session.commit()
    wrong = f"kk_{key.key_id}_not-the-secret"

    # Then the event-loop check does not decide a key it has not read yet
    assert authenticate_known(engine, None, key.api_key) is None
    # When the key is checked against the database once
    assert authenticate(engine, None, key.api_key).organisation_id == f"org_{key.key_id}"
    # Then it is known without the database, and a wrong secret for its id still is not
    known = authenticate_known(engine, None, key.api_key)
    assert known is not None and known.role == "member"
    assert authenticate_known(engine, None, wrong) is None
    with pytest.raises(Refusal):
        authenticate(engine, None, wrong)
