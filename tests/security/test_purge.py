"""Purging: what is past retention goes, the rest stays, on SQLite and PostgreSQL; purges running
at once are still right; on the running stack the webhook dispatcher purges by itself, logs it,
and a retry whose idempotency record was purged is not applied twice."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from services.readmodel.retention import Purged, Retention, purge
from services.readmodel.store import create_db_engine, upgrade
from services.readmodel.tables import DashboardSession, Delivery, DeliveryAttempt, IdempotencyRecord, Subscription
from tests.e2e.conftest import RunningStack, running_stack
from tests.reliability.harness import wait_for

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RETENTION = Retention(delivery_s=30 * 86_400, idempotency_s=86_400, batch=2)  # small batches: several per kind


@pytest.fixture
def engine(database: str) -> Iterator[Engine]:
    upgrade(database)
    engine = create_db_engine(database)
    yield engine
    engine.dispose()


def session_row(name: str, expires_at: datetime) -> DashboardSession:
    return DashboardSession(
        token_hash=name,
        organisation_id="org",
        person_id="person",
        csrf_token="x",
        created_at=expires_at - DAY,
        expires_at=expires_at,
    )


def subscription(name: str, disabled_at: datetime | None = None) -> Subscription:
    return Subscription(
        id=name,
        organisation_id="org",
        url="http://127.0.0.1:9/hook",
        secret="whsec_x",
        status="disabled" if disabled_at else "active",
        disabled_at=disabled_at,
        created_at=NOW - 60 * DAY,
    )


def delivery(subscription_id: str, sequence: int, delivered_at: datetime | None, created_at: datetime) -> Delivery:
    return Delivery(
        subscription_id=subscription_id,
        negotiation_id="n1",
        sequence=sequence,
        event_type="PositionStated",
        message_id=f"msg_{subscription_id}_{sequence}",
        payload="{}",
        status="delivered" if delivered_at else "pending",
        attempts=1,
        next_attempt_at=created_at,
        created_at=created_at,
        delivered_at=delivered_at,
    )


def record(key: str, created_at: datetime, state: str = "answered") -> IdempotencyRecord:
    return IdempotencyRecord(
        organisation_id="org",
        key=key,
        fingerprint="f" * 64,
        command_id=str(uuid.uuid4()),
        negotiation_id="n1",
        state=state,
        status=200 if state == "answered" else None,
        body="{}" if state == "answered" else None,
        created_at=created_at,
    )


def seed(engine: Engine) -> None:
    """Rows on both sides of every retention line, at ``NOW``."""
    rows: list[object] = [
        session_row("expired-a", NOW - timedelta(seconds=1)),
        session_row("expired-b", NOW - 10 * DAY),
        session_row("expired-c", NOW - DAY),
        session_row("live", NOW + timedelta(seconds=1)),
        subscription("active"),
        subscription("gave-up-long-ago", disabled_at=NOW - 31 * DAY),
        subscription("gave-up-lately", disabled_at=NOW - DAY),
        # old enough to go (delivered more than 30 days ago), 3 rows: two batches
        *(delivery("active", s, NOW - 31 * DAY - s * timedelta(hours=1), NOW - 40 * DAY) for s in (1, 2, 3)),
        delivery("active", 4, NOW - 29 * DAY, NOW - 40 * DAY),  # delivered lately: stays
        delivery("active", 5, None, NOW - 40 * DAY),  # pending on an active subscription: stays, however old
        delivery("gave-up-long-ago", 1, NOW - 35 * DAY, NOW - 50 * DAY),  # delivered long ago: goes
        delivery("gave-up-long-ago", 2, None, NOW - 32 * DAY),  # pending, given up on long ago: goes
        delivery("gave-up-long-ago", 3, None, NOW - 31 * DAY),  # likewise
        delivery("gave-up-lately", 1, None, NOW - 40 * DAY),  # pending, given up on lately: stays
        *(record(f"old-{i}", NOW - DAY - timedelta(seconds=1 + i)) for i in range(3)),
        record("old-unanswered", NOW - 2 * DAY, state="sent"),
        record("young", NOW - DAY + timedelta(seconds=1)),
        record("taken-over", NOW - timedelta(minutes=1), state="sending"),
    ]
    with Session(engine) as session:
        for row in rows:
            session.add(row)
        session.commit()
        for row in session.exec(select(Delivery)).all():
            for attempt in range(2):
                session.add(
                    DeliveryAttempt(
                        delivery_id=row.id,
                        subscription_id=row.subscription_id,
                        attempted_at=row.created_at + timedelta(minutes=attempt),
                        status_code=500,
                        duration_ms=1.0,
                    )
                )
        session.commit()


def remaining(engine: Engine) -> dict[str, object]:
    with Session(engine) as session:
        deliveries = session.exec(select(Delivery)).all()
        return {
            "sessions": sorted(s.token_hash for s in session.exec(select(DashboardSession)).all()),
            "deliveries": sorted((d.subscription_id, d.sequence) for d in deliveries),
            "attempts of": sorted(
                {(a.subscription_id, a.delivery_id) for a in session.exec(select(DeliveryAttempt)).all()}
            ),
            "delivery ids": sorted((d.subscription_id, d.id) for d in deliveries),
            "records": sorted(r.key for r in session.exec(select(IdempotencyRecord)).all()),
        }


KEPT = {
    "sessions": ["live"],
    "deliveries": [("active", 4), ("active", 5), ("gave-up-lately", 1)],
    "records": ["taken-over", "young"],
}


def test_a_purge_removes_exactly_what_is_past_retention(engine: Engine) -> None:
    # Given sessions, deliveries with attempts and idempotency records on both sides of each line
    seed(engine)

    # When the purge runs, in batches of two
    purged = purge(engine, RETENTION, now=NOW)

    # Then exactly what is past retention went, and it says how much
    left = remaining(engine)
    assert {kind: left[kind] for kind in KEPT} == KEPT
    assert left["attempts of"] == left["delivery ids"]  # every kept delivery keeps its attempts, no orphan stays
    assert purged == Purged(sessions=3, deliveries=6, attempts=12, idempotency_records=4)
    assert purged.batches > 4  # a kind with more rows than a batch took several

    # And a second purge finds nothing more
    assert purge(engine, RETENTION, now=NOW).total == 0
    assert remaining(engine) == left


def test_an_idempotency_record_stays_for_the_whole_promised_window(engine: Engine) -> None:
    # Given a record written at NOW
    with Session(engine) as session:
        session.add(record("k", NOW))
        session.commit()
    # When purges run up to the end of the window, it stays; just after it, it goes
    for moment in (NOW, NOW + timedelta(hours=23, minutes=59, seconds=59), NOW + DAY):
        assert purge(engine, RETENTION, now=moment).idempotency_records == 0, moment
        assert remaining(engine)["records"] == ["k"]
    assert purge(engine, RETENTION, now=NOW + DAY + timedelta(seconds=1)).idempotency_records == 1


def test_purges_running_at_once_remove_each_row_once_and_keep_the_rest(engine: Engine) -> None:
    # Given the same rows, many of each kind
    seed(engine)
    with Session(engine) as session:
        for i in range(40):
            session.add(record(f"many-{i}", NOW - 3 * DAY))
            session.add(session_row(f"many-{i}", NOW - 2 * DAY))
        session.commit()
    results: list[Purged] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(purge(engine, RETENTION, now=NOW))
        except BaseException as exc:
            errors.append(exc)

    # When three purges run at the same time (as three API processes could)
    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    # Then none failed, together they removed each row once, and what is not past retention stays
    assert errors == []
    assert sum(r.sessions for r in results) == 3 + 40
    assert sum(r.idempotency_records for r in results) == 4 + 40
    assert sum(r.deliveries for r in results) == 6
    assert sum(r.attempts for r in results) == 12
    left = remaining(engine)
    assert {kind: left[kind] for kind in KEPT} == KEPT


# -- the scheduled purge on the running stack ----------------------------------------------------


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("purge"), "sqlite", purge_interval_s=0.5) as running:
        yield running


def test_the_dispatcher_purges_by_itself_and_a_purged_key_is_not_applied_twice(stack: RunningStack) -> None:
    # Given a negotiation whose demand the coordinator published with an Idempotency-Key
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, _ = stack.organisation("Vendor", "vendor")
    member_id, member_key = stack.organisation("Member", "member")
    coordinator = stack.client(coordinator_key)
    body = {"title": "Purge", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
    nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    member = stack.client(member_key)
    stated = member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"})
    assert stated.status_code == 200
    publish = f"/v1/negotiations/{nid}/demand/publish"
    first = coordinator.post(publish, headers={"Idempotency-Key": "publish-1"})
    assert first.status_code == 201, first.text
    # And a keyed request made just now, whose answer must still be replayed
    young = member.put(
        f"/v1/negotiations/{nid}/positions/no-ai-training",
        json={"priority": "should"},
        headers={"Idempotency-Key": "young-1"},
    )
    assert young.status_code == 200
    events_before = coordinator.get(f"/v1/negotiations/{nid}/events", params={"limit": 1000}).json()["events"]

    # And, in the stack's database: the publication's record made two days old, a signed-in
    # session expired, another alive, a delivery delivered long ago and a recent one
    engine = create_db_engine(stack.settings.sqlalchemy_url)
    now = datetime.now(UTC)
    with Session(engine) as session:
        session.execute(
            update(IdempotencyRecord).where(IdempotencyRecord.key == "publish-1").values(created_at=now - 2 * DAY)  # type: ignore[arg-type]
        )
        session.add(session_row("expired", now - timedelta(minutes=1)))
        session.add(session_row("alive", now + timedelta(hours=1)))
        session.add(subscription("sub"))
        session.add(delivery("sub", 1, now - 31 * DAY, now - 32 * DAY))
        session.add(delivery("sub", 2, now - DAY, now - 2 * DAY))
        session.commit()

    # When the dispatcher's purge comes round (every 0.5 s here)
    def purged() -> bool:
        left = remaining(engine)
        return "expired" not in left["sessions"] and ("sub", 1) not in left["deliveries"]  # type: ignore[operator]

    wait_for(purged, timeout=30, what="the scheduled purge")
    wait_for(lambda: "publish-1" not in remaining(engine)["records"], timeout=30, what="the old record's purge")  # type: ignore[operator]

    # Then what is past retention went and the rest stayed
    left = remaining(engine)
    assert "alive" in left["sessions"]  # type: ignore[operator]
    assert ("sub", 2) in left["deliveries"]  # type: ignore[operator]
    assert "young-1" in left["records"]  # type: ignore[operator]
    engine.dispose()
    # And the dispatcher's log says how many rows it removed
    logged = [json.loads(line) for line in (stack.stack.logs / "webhooks.log").read_text().splitlines() if "{" in line]
    counts = [line for line in logged if line.get("event") == "purged"]
    assert any(line["sessions"] >= 1 and line["deliveries"] >= 1 for line in counts), counts
    assert any(line["idempotency_records"] >= 1 for line in counts), counts

    # When the coordinator retries the publication with the purged key
    again = coordinator.post(publish, headers={"Idempotency-Key": "publish-1"})
    # Then it is not published again: the worker knows the command (its id comes from the key)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == first.json()["version"] == 1
    assert coordinator.get(f"/v1/negotiations/{nid}").json()["demand_version"] == 1
    events_after = coordinator.get(f"/v1/negotiations/{nid}/events", params={"limit": 1000}).json()["events"]
    assert events_after == events_before
    # And a retry within the window still gets the first answer, replayed
    replayed = member.put(
        f"/v1/negotiations/{nid}/positions/no-ai-training",
        json={"priority": "should"},
        headers={"Idempotency-Key": "young-1"},
    )
    assert replayed.headers.get("idempotent-replayed") == "true"
    assert replayed.json() == young.json()
