"""The webhook dispatcher against a real database and a real HTTP receiver: order, retries, giving up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from sqlmodel import Session, select
from standardwebhooks import Webhook

from services.readmodel.store import create_db_engine, upgrade
from services.readmodel.tables import Delivery, DeliveryAttempt, Subscription
from services.subscriptions.destinations import DestinationPolicy
from services.subscriptions.webhooks import Dispatcher, DispatchPolicy
from tests.e2e.receiver import Receiver
from tests.integration.harness import wait_until

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def queue(engine: object, receiver: Receiver, count: int) -> None:
    now = datetime.now(UTC)
    with Session(engine) as session:  # type: ignore[arg-type]
        session.add(Subscription(id="sub_1", organisation_id="org_1", url=receiver.url, secret=SECRET, created_at=now))
        for sequence in range(1, count + 1):
            session.add(
                Delivery(
                    subscription_id="sub_1",
                    negotiation_id="n-1",
                    sequence=sequence,
                    event_type="PositionStated",
                    message_id=f"msg_{sequence}",
                    payload=json.dumps({"sequence": sequence}),
                    next_attempt_at=now,
                    created_at=now,
                )
            )
        session.commit()


def subscription(engine: object) -> Subscription:
    with Session(engine) as session:  # type: ignore[arg-type]
        found = session.get(Subscription, "sub_1")
        assert found is not None
        return found


async def test_a_subscription_failing_too_long_is_disabled_and_resumes_in_order_when_enabled(database: str) -> None:
    upgrade(database)
    engine = create_db_engine(database)
    receiver = Receiver()  # not started: every attempt meets a refused connection
    queue(engine, receiver, 5)
    loopback = DestinationPolicy.from_settings("127.0.0.1", allow_http=True)  # the receiver's, as an operator allows
    dispatcher = Dispatcher(
        engine, DispatchPolicy(retry_max_s=0.2, give_up_after_s=1.0, poll_s=0.02, destinations=loopback)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        # When the receiver stays down longer than the give-up time
        await wait_until(lambda: subscription(engine).status == "disabled", 30, "the subscription to be disabled")
        disabled = subscription(engine)
        assert disabled.disabled_reason is not None
        assert "ConnectError" in disabled.disabled_reason
        with Session(engine) as session:
            attempts = session.exec(select(DeliveryAttempt)).all()
            # Then only the oldest delivery was tried (order), several times, each attempt logged
            assert {a.delivery_id for a in attempts} == {1}
            assert len(attempts) >= 3
        # When the receiver is back and the owner enables the subscription again
        receiver.start()
        with Session(engine) as session:
            row = session.get(Subscription, "sub_1")
            assert row is not None
            row.status, row.failing_since, row.disabled_reason = "active", None, None
            session.add(row)
            session.commit()
        # Then all five arrive, in order, signed
        await wait_until(lambda: len(receiver.received) >= 5, 30, "five deliveries")
        assert [m["sequence"] for m in receiver.messages()] == [1, 2, 3, 4, 5]
        for headers, body in receiver.received:
            Webhook(SECRET).verify(body, headers)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        receiver.stop()
