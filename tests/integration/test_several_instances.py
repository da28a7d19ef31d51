"""Several instances of a process on one database: dispatchers claim what they send, a second
projector waits for the first, and API processes hear of new events by LISTEN/NOTIFY on PostgreSQL.

Real databases (SQLite and PostgreSQL), a real broker and a real HTTP receiver; each process is
an object of its own here, as it would be a process of its own in a deployment.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from infra.kafka.topics import ensure_topics
from schemas.topics import EVENTS
from services.application.watch import LISTENER_NAME, ProjectionWatch
from services.readmodel.projector import Projection, Projector
from services.readmodel.store import create_db_engine, table_counts, upgrade
from services.readmodel.tables import Delivery, DeliveryAttempt, Subscription
from services.subscriptions.destinations import DestinationPolicy
from services.subscriptions.webhooks import Dispatcher, DispatchPolicy
from tests.conftest import drop_postgres_database, postgres_database
from tests.e2e.receiver import Receiver
from tests.integration.harness import script, wait_until
from tests.integration.test_read_model import produce_events
from tests.unit.builders import Negotiation, item

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOOPBACK = DestinationPolicy.from_settings("127.0.0.1", allow_http=True)  # the receiver's, as an operator allows


def queue(engine: Engine, receiver: Receiver, subscriptions: int, each: int, first: int = 1) -> None:
    """``each`` deliveries (sequences ``first`` …) for each of ``subscriptions`` subscriptions."""
    now = datetime.now(UTC)
    with Session(engine) as session:
        for s in range(subscriptions):
            if session.get(Subscription, f"sub_{s}") is None:
                session.add(
                    Subscription(
                        id=f"sub_{s}", organisation_id=f"org_{s}", url=receiver.url, secret=SECRET, created_at=now
                    )
                )
            for sequence in range(first, first + each):
                session.add(
                    Delivery(
                        subscription_id=f"sub_{s}",
                        negotiation_id="n-1",
                        sequence=sequence,
                        event_type="PositionStated",
                        message_id=f"msg_{s}_{sequence}",
                        payload=json.dumps({"subscription": f"sub_{s}", "sequence": sequence}),
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
        session.commit()


def arrivals(receiver: Receiver) -> tuple[Counter[str], dict[str, list[int]]]:
    """How often each message id arrived, and each subscription's sequences in arrival order."""
    ids: Counter[str] = Counter()
    order: dict[str, list[int]] = defaultdict(list)
    for headers, body in list(receiver.received):
        ids[headers["webhook-id"]] += 1
        message = json.loads(body)
        order[message["subscription"]].append(message["sequence"])
    return ids, order


def attempts_per_delivery(engine: Engine) -> Counter[int]:
    with Session(engine) as session:
        return Counter(a.delivery_id for a in session.exec(select(DeliveryAttempt)).all())


async def test_two_dispatchers_send_every_delivery_once_and_in_order(database: str) -> None:
    # Given 12 subscriptions with 25 deliveries each, and a receiver that answers 2xx
    upgrade(database)
    engine = create_db_engine(database)
    receiver = Receiver().start()
    queue(engine, receiver, subscriptions=12, each=25)
    total = 12 * 25
    policy = DispatchPolicy(retry_max_s=0.5, poll_s=0.01, concurrency=4, destinations=LOOPBACK)
    first, second = Dispatcher(engine, policy, name="dispatcher-1"), Dispatcher(engine, policy, name="dispatcher-2")
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    with structlog.testing.capture_logs() as logs:
        # When two dispatchers run on the database at once
        running = [asyncio.create_task(first.run(stop_first)), asyncio.create_task(second.run(stop_second))]
        try:
            await wait_until(lambda: len(receiver.received) >= total, 60, lambda: f"{total} deliveries")
            # Then every delivery arrived exactly once (by its webhook-id), each tried once, and each
            # subscription's in the order they were queued
            ids, order = arrivals(receiver)
            assert len(ids) == total and set(ids.values()) == {1}, ids.most_common(3)
            assert all(sequences == list(range(1, 26)) for sequences in order.values()), order
            assert set(attempts_per_delivery(engine).values()) == {1}
            if engine.dialect.name == "postgresql":
                # And on PostgreSQL both dispatched, side by side
                assert first.ready.is_set() and second.ready.is_set()
                return
            # And on SQLite one dispatched while the other waited, and said why
            waiting = [line for line in logs if line["event"] == "waiting for the lock"]
            assert len(waiting) == 1 and waiting[0]["lock"] == "webhooks", waiting
            assert "one webhook dispatcher" in waiting[0]["why"]
            holder, waiter = (first, second) if first.ready.is_set() else (second, first)
            assert not waiter.ready.is_set() and waiter.delivered == 0 and holder.delivered == total

            # When the one that dispatched stops, and more deliveries are queued
            (stop_first if holder is first else stop_second).set()
            await asyncio.wait_for(running[0 if holder is first else 1], 30)
            queue(engine, receiver, subscriptions=12, each=5, first=26)
            # Then the other takes over and sends them, once each and in order
            await wait_until(lambda: len(receiver.received) >= total + 60, 60, "the other dispatcher to take over")
            ids, order = arrivals(receiver)
            assert set(ids.values()) == {1}
            assert all(sequences == list(range(1, 31)) for sequences in order.values()), order
            assert waiter.delivered == 60
        finally:
            stop_first.set()
            stop_second.set()
            await asyncio.wait_for(asyncio.gather(*running), 30)
            receiver.stop()


async def test_a_dispatcher_that_dies_while_sending_lets_its_claim_go_when_it_runs_out(database: str) -> None:
    # Given one delivery, claimed by a dispatcher that then died (its claim runs for 2 s)
    upgrade(database)
    engine = create_db_engine(database)
    receiver = Receiver().start()
    queue(engine, receiver, subscriptions=1, each=1)
    policy = DispatchPolicy(poll_s=0.01, idle_poll_s=0.05, claim_s=2.0, destinations=LOOPBACK)
    dead = Dispatcher(engine, policy, name="dispatcher-dead")
    assert [d.message_id for d, _ in dead.claim(set(), 10)] == ["msg_0_1"]
    # When another dispatcher runs
    other = Dispatcher(engine, policy, name="dispatcher-other")
    assert other.claim(set(), 10) == []  # Then it does not send what the dead one claimed, at first
    stop = asyncio.Event()
    task = asyncio.create_task(other.run(stop))
    try:
        # And sends it once the claim has run out
        await wait_until(lambda: len(receiver.received) == 1, 30, "the delivery after the claim ran out")

        def recorded() -> Delivery | None:  # the attempt is recorded just after the receiver answered
            with Session(engine) as session:
                delivery = session.exec(select(Delivery)).one()
            return delivery if delivery.status != "pending" else None

        await wait_until(recorded, 30, "the delivery recorded")
        delivery = recorded()
        assert delivery is not None
        assert (delivery.status, delivery.claimed_by, delivery.claimed_until) == ("delivered", None, None)
        assert len(receiver.received) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        receiver.stop()


async def group_members(bootstrap: str, group: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
        return sum(len(g["members"]) for response in described for g in response.to_object()["groups"])
    finally:
        await admin.close()


async def test_a_second_projector_waits_outside_the_group_and_takes_over_when_the_first_stops(
    kafka_bootstrap: str, topic_prefix: str, database: str
) -> None:
    # Given the events of 12 negotiations on the events topic, in three parts
    expected = script(negotiations=12, commands=300, seed=11)
    every_event = [event for events in expected.events.values() for event in events]
    third = len(every_event) // 3
    by_part = [every_event[:third], every_event[third : 2 * third], every_event[2 * third :]]
    await ensure_topics(kafka_bootstrap, topic_prefix)
    topic = EVENTS.name(topic_prefix)
    upgrade(database)
    engine = create_db_engine(database)
    group = f"{topic_prefix}-projector"
    first = Projector(engine, kafka_bootstrap, topic_prefix)
    second = Projector(engine, kafka_bootstrap, topic_prefix)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    running: list[asyncio.Task[None]] = []

    def projected() -> int:
        return table_counts(engine)["events"]

    with structlog.testing.capture_logs() as logs:
        try:
            # When one projector runs, and a second one starts next to it
            running.append(asyncio.create_task(first.run(stop_first)))
            await asyncio.wait_for(first.ready.wait(), 60)
            running.append(asyncio.create_task(second.run(stop_second)))
            await produce_events(kafka_bootstrap, topic, by_part[0])
            await wait_until(lambda: projected() == len(by_part[0]), 60, "the first part projected")
            # (a projector counts a batch once its transaction is committed and the call returned)
            await wait_until(lambda: first.projected == len(by_part[0]), 30, "the first projector to count it")
            # Then the first projects, the second waits and says why, outside the consumer group
            waiting = [line for line in logs if line["event"] == "waiting for the lock"]
            assert [line["lock"] for line in waiting] == ["projector"], waiting
            assert "one projector writes the read model" in waiting[0]["why"]
            assert first.projected == len(by_part[0]) and second.projected == 0
            assert await group_members(kafka_bootstrap, group) == 1
            assert not second.ready.is_set()
            assert first.lock.held and not second.lock.held

            # When the first stops
            stop_first.set()
            await asyncio.wait_for(running[0], 30)
            await produce_events(kafka_bootstrap, topic, by_part[1] + by_part[2])
            # Then the second takes over and projects the rest, each event once
            await wait_until(lambda: projected() == len(every_event), 90, lambda: f"all projected ({projected()})")
            await wait_until(
                lambda: first.projected + second.projected == len(every_event), 30, "the second projector to count it"
            )
            assert second.ready.is_set() and second.lock.held
            assert first.projected + second.projected == len(every_event)
            assert any(line["event"] == "lock held" and line["holder"] == second.lock.holder for line in logs)
        finally:
            stop_first.set()
            stop_second.set()
            await asyncio.wait_for(asyncio.gather(*running), 30)


def negotiation_events(count: int) -> tuple[str, list[Any]]:
    negotiation = Negotiation(item("no-ai-training")).invite("m1")
    while negotiation.s.sequence < count:
        negotiation.position("m1", "no-ai-training", priority="must" if negotiation.s.sequence % 2 else "should")
    return negotiation.negotiation_id, list(negotiation.events)


async def wait_registered(watch: ProjectionWatch, negotiation_id: str, sequence: int) -> asyncio.Task[int | None]:
    """A waiter for ``sequence``, once the watch has read the negotiation for it (and found it short)."""
    reads = watch.reads
    waiting = asyncio.create_task(watch.reached(negotiation_id, sequence, timeout=30))
    await wait_until(lambda: watch.reads > reads, 30, "the watch to read the new waiter's negotiation")
    assert not waiting.done()
    return waiting


@pytest.fixture
def postgresql() -> Iterator[str]:
    """A new PostgreSQL database (LISTEN/NOTIFY is PostgreSQL's)."""
    url, name = postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


async def test_the_api_hears_of_new_events_by_notification_and_polls_while_it_cannot(postgresql: str) -> None:
    # Given a negotiation's first events in the read model
    upgrade(postgresql)
    engine = create_db_engine(postgresql)
    nid, events = negotiation_events(9)
    projection = Projection(engine)
    projection.apply(events[:3])
    # And an API process's watch that would poll only every hour, and read everything once an hour,
    # so that only a notification can wake a waiter soon
    watch = ProjectionWatch(engine, interval=3600, safety_interval=3600, relisten_s=0.2)
    watch.start()
    try:
        await wait_until(lambda: watch.listening, 30, "the watch to listen")
        # When a command waits for sequence 5 (the watch reads it once: 3), and the projector then
        # writes events 4 and 5
        waiting = await wait_registered(watch, nid, 5)
        await asyncio.to_thread(projection.apply, events[3:5])
        # Then the waiter wakes with the read model at 5: the projector's notification woke it
        assert await waiting == 5

        # When the listening connection is cut, and the watch polls every 10 ms meanwhile
        watch.interval = 0.01
        watch.relisten_s = 3600
        with engine.connect() as connection:
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": LISTENER_NAME},
            ).all()
        assert cut == [(True,)]
        await wait_until(lambda: not watch.listening, 30, "the watch to notice it is not listening")
        waiting = asyncio.create_task(watch.reached(nid, 7, timeout=30))
        await asyncio.to_thread(projection.apply, events[5:7])
        # Then a waiter still wakes, by polling
        assert await waiting == 7
    finally:
        await watch.stop()

    # When a watch's listening connection comes back after a cut
    watch = ProjectionWatch(engine, interval=3600, safety_interval=3600, relisten_s=0.2)
    watch.start()
    try:
        await wait_until(lambda: watch.listening, 30, "the watch to listen")
        with engine.connect() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": LISTENER_NAME},
            )
        await wait_until(lambda: not watch.listening, 30, "the watch to notice the cut")
        await wait_until(lambda: watch.listening, 30, "the watch to listen again")
        waiting = await wait_registered(watch, nid, 9)
        await asyncio.to_thread(projection.apply, events[7:9])
        # Then it is woken by notifications again
        assert await waiting == 9
    finally:
        await watch.stop()
