"""The webhook dispatcher: delivers queued deliveries, signed, in order per subscription.

The projector queues one delivery per subscription and event, in the transaction that writes the
event, so nothing accepted is missed and nothing is queued twice. The dispatcher keeps all its
state in the database (``deliveries``, ``delivery_attempts``), so a restart loses nothing.

- **Order**: only the oldest pending delivery of a subscription is ever attempted; the next one
  waits until it is delivered.
- **Signatures**: Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``)
  with the subscription's secret; the id is the same on every attempt.
- **Retries**: after a failure (no 2xx, an error, or no complete answer within the timeout, a
  total deadline) the delivery is tried
  again after 1 s, 2 s, 4 s … up to ``webhook_retry_max_s`` between attempts.
- **Destinations**: public addresses over https only, unless the operator allows more
  (``services.subscriptions.destinations``); the connection goes to the address that was checked.
  A refused destination is a failed attempt, ``destination refused: …``, and nothing is contacted.
- **Giving up**: when a subscription has failed without a single success for longer than
  ``webhook_give_up_after_s``, it is disabled, with the reason; its owner sees that on the
  subscription and in its delivery log, and can enable it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpcore
import httpx
import structlog
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from services.metrics import DispatcherMetrics
from services.readmodel.tables import Delivery, DeliveryAttempt, Heartbeat, Subscription, utc
from services.subscriptions.destinations import (
    DestinationPolicy,
    DestinationRefused,
    PinnedBackend,
    PinnedTransport,
    Resolver,
    resolve_system,
)

log = structlog.get_logger("koopkracht.webhooks")

HEARTBEAT_S = 2.0
USER_AGENT = "Koopkracht-Webhooks/1"


@dataclass(frozen=True)
class DispatchPolicy:
    retry_max_s: float = 600.0
    give_up_after_s: float = 86_400.0
    timeout_s: float = 10.0
    poll_s: float = 0.02
    idle_poll_s: float = 0.25
    """Polling slows from ``poll_s`` towards this while nothing is due (an idle hub then costs
    little CPU), and returns to ``poll_s`` as soon as a delivery was due."""
    concurrency: int = 32
    destinations: DestinationPolicy = field(default_factory=DestinationPolicy)
    """Where deliveries may go: public addresses over https, unless the operator allows more."""


def backoff(attempts: int, retry_max_s: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures: 1, 2, 4 … capped, ±10 %."""
    delay: float = min(retry_max_s, 2.0 ** min(attempts - 1, 30))
    return delay * random.uniform(0.9, 1.1)


def signed_headers(subscription: Subscription, delivery: Delivery, at: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(subscription.secret).sign(delivery.message_id, at, delivery.payload),
    }


def webhook_client(
    policy: DispatchPolicy,
    resolve: Resolver = resolve_system,
    verify: typing.Any = True,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """The dispatcher's HTTP client: no redirects, no proxies or credentials from the environment,
    and connections only to checked addresses (``PinnedBackend``). ``resolve``, ``verify`` and
    ``inner`` (the backend that opens the checked connections) are for tests."""
    transport = PinnedTransport(PinnedBackend(policy.destinations, resolve, inner), verify=verify)
    return httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(policy.timeout_s), follow_redirects=False, trust_env=False
    )


class Dispatcher:
    def __init__(
        self, engine: Engine, policy: DispatchPolicy | None = None, metrics: DispatcherMetrics | None = None
    ) -> None:
        self.engine = engine
        self.policy = policy or DispatchPolicy()
        self.metrics = metrics or DispatcherMetrics()
        self.delivered = 0
        self.ready = asyncio.Event()

    # -- the database ------------------------------------------------------------------------
    def due(self, busy: set[str], limit: int) -> list[tuple[Delivery, Subscription]]:
        """The head (oldest pending delivery) of each active subscription, where it is due."""
        now = datetime.now(UTC)
        with Session(self.engine, expire_on_commit=False) as session:
            heads = (
                select(func.min(Delivery.id))
                .where(Delivery.status == "pending")
                .group_by(col(Delivery.subscription_id))
                .scalar_subquery()
            )
            rows = session.exec(
                select(Delivery, Subscription)
                .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
                .where(
                    Subscription.status == "active",
                    col(Delivery.id).in_(heads),
                    col(Delivery.next_attempt_at) <= now,
                )
                .order_by(col(Delivery.id))
                .limit(limit + len(busy))
            ).all()
        return [(d, s) for d, s in rows if s.id not in busy][:limit]

    def head(self, subscription_id: str) -> tuple[Delivery, Subscription] | None:
        """The subscription's oldest pending delivery, when it is due and the subscription active."""
        now = datetime.now(UTC)
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.exec(
                select(Delivery, Subscription)
                .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
                .where(Delivery.subscription_id == subscription_id, Delivery.status == "pending")
                .order_by(col(Delivery.id))
                .limit(1)
            ).first()
        if row is None:
            return None
        delivery, subscription = row
        if subscription.status != "active" or utc(delivery.next_attempt_at) > now:  # type: ignore[operator]
            return None
        return delivery, subscription

    def record(
        self, delivery_id: int, at: datetime, status_code: int | None, error: str | None, duration_ms: float
    ) -> None:
        delivered = error is None
        with Session(self.engine) as session, session.begin():
            delivery = session.get(Delivery, delivery_id)
            if delivery is None or delivery.status != "pending":
                return  # deleted with its subscription meanwhile
            subscription = session.get(Subscription, delivery.subscription_id)
            session.add(
                DeliveryAttempt(
                    delivery_id=delivery_id,
                    subscription_id=delivery.subscription_id,
                    attempted_at=at,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            delivery.attempts += 1
            delivery.last_status = status_code
            delivery.last_error = error
            if delivered:
                delivery.status = "delivered"
                delivery.delivered_at = at
                if subscription is not None:
                    subscription.failing_since = None
                return
            delivery.next_attempt_at = at + timedelta(seconds=backoff(delivery.attempts, self.policy.retry_max_s))
            if subscription is None:
                return
            failing_since = utc(subscription.failing_since)
            if failing_since is None:
                subscription.failing_since = at
            elif (at - failing_since).total_seconds() >= self.policy.give_up_after_s:
                subscription.status = "disabled"
                subscription.disabled_at = at
                subscription.disabled_reason = (
                    f"no delivery succeeded since {failing_since.isoformat(timespec='seconds')}; "
                    f"the last attempt failed with: {error}"
                )
                log.warning(
                    "webhook subscription disabled",
                    subscription_id=subscription.id,
                    organisation=subscription.organisation_id,
                    host=urlsplit(subscription.url).hostname,
                    failing_since=failing_since.isoformat(),
                )

    def beat(self) -> None:
        with Session(self.engine) as session, session.begin():
            session.merge(Heartbeat(service="webhooks", beat_at=datetime.now(UTC)))

    # -- delivering --------------------------------------------------------------------------
    async def drain(self, http: httpx.AsyncClient, delivery: Delivery, subscription: Subscription) -> None:
        """Deliver this head and the subscription's next ones, one after the other, while they succeed."""
        while await self.deliver(http, delivery, subscription):
            following = await asyncio.to_thread(self.head, subscription.id)
            if following is None:
                return
            delivery, subscription = following

    async def deliver(self, http: httpx.AsyncClient, delivery: Delivery, subscription: Subscription) -> bool:
        at = datetime.now(UTC)
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        outcome = "delivered"
        try:
            self.policy.destinations.check_scheme(subscription.url)
            # A total deadline: a receiver that drips its answer must not hold a slot for ever.
            # Only the status counts; the body is not read.
            async with (
                asyncio.timeout(self.policy.timeout_s),
                http.stream(
                    "POST",
                    subscription.url,
                    content=delivery.payload,
                    headers=signed_headers(subscription, delivery, at),
                ) as response,
            ):
                status_code = response.status_code
            if not 200 <= status_code < 300:
                error, outcome = f"HTTP {status_code}", "rejected"
        except TimeoutError:
            error, outcome = f"no answer within {self.policy.timeout_s:g} s", "timeout"
        except DestinationRefused as exc:  # raised before any connection is opened
            error, outcome = f"destination refused: {exc.logged}", "refused"
        except Exception as exc:  # whatever the URL or the receiver does, it is this delivery's failure
            error = f"{type(exc).__name__}: {str(exc)[:300]}" if str(exc) else type(exc).__name__
            outcome = "error"
        duration_ms = (time.perf_counter() - started) * 1000
        self.metrics.attempts[outcome].inc()
        self.metrics.attempt_seconds.observe(duration_ms / 1000)
        assert delivery.id is not None
        await asyncio.to_thread(self.record, delivery.id, at, status_code, error, duration_ms)
        if error is None:
            self.delivered += 1
            queued = utc(delivery.created_at)
            if queued is not None:
                self.metrics.delivery_seconds.observe(max(0.0, (datetime.now(UTC) - queued).total_seconds()))
        log.debug(
            "webhook attempt",
            subscription_id=subscription.id,
            negotiation_id=delivery.negotiation_id,
            sequence=delivery.sequence,
            status_code=status_code,
            error=error,
        )
        return error is None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        in_flight: dict[str, asyncio.Task[None]] = {}
        last_beat = 0.0
        pause = self.policy.poll_s
        async with webhook_client(self.policy) as http:
            try:
                while not stop.is_set():
                    if time.monotonic() - last_beat > HEARTBEAT_S:
                        with contextlib.suppress(Exception):  # no beat: /readyz says so
                            await asyncio.to_thread(self.beat)
                        last_beat = time.monotonic()
                        if not self.ready.is_set():
                            self.ready.set()
                            log.info("webhooks.ready")
                    for subscription_id in [s for s, task in in_flight.items() if task.done()]:
                        failed = in_flight.pop(subscription_id).exception()
                        if failed is not None:  # the database, most likely: the delivery stays pending
                            log.error(
                                "webhook delivery interrupted",
                                subscription_id=subscription_id,
                                error=f"{type(failed).__name__}: {str(failed)[:300]}",
                            )
                    room = self.policy.concurrency - len(in_flight)
                    try:
                        due = await asyncio.to_thread(self.due, set(in_flight), room) if room > 0 else []
                    except Exception as exc:  # the database is away: try again after a pause
                        log.warning("webhook queue unreadable", error=type(exc).__name__)
                        due = []
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), 1.0)
                    for delivery, subscription in due:
                        in_flight[subscription.id] = asyncio.create_task(self.drain(http, delivery, subscription))
                    busy = due or in_flight
                    pause = self.policy.poll_s if busy else min(self.policy.idle_poll_s, pause * 1.5)
                    if not due:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(stop.wait(), pause)
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)
