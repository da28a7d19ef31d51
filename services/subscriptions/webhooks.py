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
- **Several dispatchers** (PostgreSQL): a dispatcher claims the deliveries it sends, in one short
  transaction (``SELECT … FOR UPDATE SKIP LOCKED``, then ``claimed_by`` and ``claimed_until``
  set), so no other dispatcher sends them; the claim outlives the transaction and ends when the
  attempt is recorded. A dispatcher that dies while sending lets its deliveries go when their
  claims run out (``claim_s``: the timeout plus 30 s); one that stops cleanly releases them at
  once. Since only a subscription's oldest pending delivery is ever claimed, its order holds
  whichever dispatcher sends what.
- **SQLite** allows one dispatcher: it holds the ``webhooks`` lease
  (``services.readmodel.exclusive``); a second one waits, says so in its log, and takes over when
  the first is gone.
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
from sqlalchemy import Engine, func, or_, update
from sqlmodel import Session, col, select
from standardwebhooks import Webhook

from services.metrics import DispatcherMetrics
from services.readmodel.exclusive import ExclusiveLock, LeaseLock, holder_name, run_alone
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
    claim_s: float | None = None
    """How long a claimed delivery stays with the dispatcher that claimed it (None: the timeout plus
    30 s, longer than any attempt takes)."""

    @property
    def claim_for(self) -> timedelta:
        return timedelta(seconds=self.claim_s if self.claim_s is not None else self.timeout_s + 30.0)


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


ONE_DISPATCHER_ON_SQLITE = "on SQLite one webhook dispatcher runs at a time; this one takes over when it is gone"


class Dispatcher:
    def __init__(
        self,
        engine: Engine,
        policy: DispatchPolicy | None = None,
        name: str | None = None,
        lock: ExclusiveLock | None = None,
        metrics: DispatcherMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.policy = policy or DispatchPolicy()
        self.metrics = metrics or DispatcherMetrics()
        self.name = name or holder_name()
        """Whose claims are whose: this dispatcher's name in ``deliveries.claimed_by``."""
        sqlite = engine.dialect.name == "sqlite"
        self.lock = lock or (LeaseLock(engine, "webhooks", self.name) if sqlite else None)
        """SQLite's one-dispatcher lease; None where several may run (PostgreSQL)."""
        self.delivered = 0
        self.ready = asyncio.Event()

    # -- the database ------------------------------------------------------------------------
    def claim(
        self, busy: set[str], limit: int, subscription_id: str | None = None
    ) -> list[tuple[Delivery, Subscription]]:
        """Claim the head (oldest pending delivery) of each active subscription, where it is due and
        nobody else claimed it; of ``subscription_id`` only, when given. Skips ``busy`` subscriptions."""
        now = datetime.now(UTC)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            heads = select(func.min(Delivery.id)).where(Delivery.status == "pending")
            if subscription_id is not None:
                heads = heads.where(Delivery.subscription_id == subscription_id)
            due = (
                select(Delivery, Subscription)
                .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
                .where(
                    Subscription.status == "active",
                    col(Delivery.id).in_(heads.group_by(col(Delivery.subscription_id)).scalar_subquery()),
                    col(Delivery.next_attempt_at) <= now,
                    or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now),
                )
                .order_by(col(Delivery.id))
                .limit(limit)
                # PostgreSQL: rows another dispatcher is claiming right now are skipped, not waited
                # for. SQLite ignores it (one dispatcher; the UPDATE below is conditional anyway).
                .with_for_update(of=Delivery, skip_locked=True)
            )
            if busy:
                due = due.where(col(Delivery.subscription_id).not_in(busy))
            rows = {delivery.id: (delivery, subscription) for delivery, subscription in session.exec(due).all()}
            if not rows:
                return []
            until = now + self.policy.claim_for
            claimed = session.execute(
                update(Delivery)
                .where(
                    col(Delivery.id).in_(list(rows)),
                    col(Delivery.status) == "pending",
                    or_(col(Delivery.claimed_until).is_(None), col(Delivery.claimed_until) < now),
                )
                .values(claimed_by=self.name, claimed_until=until)
                .returning(col(Delivery.id))
                .execution_options(synchronize_session=False)
            ).scalars()
            return [rows[delivery_id] for delivery_id in sorted(claimed)]

    def head(self, subscription_id: str) -> tuple[Delivery, Subscription] | None:
        """The subscription's oldest pending delivery, claimed, when it is due, the subscription
        active and nobody else has claimed it."""
        claimed = self.claim(set(), 1, subscription_id)
        return claimed[0] if claimed else None

    def release(self) -> int:
        """Let go of every delivery this dispatcher claimed and did not send (when it stops)."""
        with Session(self.engine) as session, session.begin():
            released = session.execute(
                update(Delivery)
                .where(col(Delivery.claimed_by) == self.name, col(Delivery.status) == "pending")
                .values(claimed_by=None, claimed_until=None)
                .execution_options(synchronize_session=False)
            )
            return int(released.rowcount)  # type: ignore[attr-defined]

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
            if delivery.claimed_by == self.name:  # not if it ran out and another took it meanwhile
                delivery.claimed_by = delivery.claimed_until = None
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
        """Dispatch until ``stop``; on SQLite only while this dispatcher holds the lease."""
        stop = stop or asyncio.Event()
        if self.lock is None:
            await self.dispatch(stop)
        else:
            await run_alone(self.lock, stop, self.dispatch, ONE_DISPATCHER_ON_SQLITE)

    async def dispatch(self, stop: asyncio.Event) -> None:
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
                        due = await asyncio.to_thread(self.claim, set(in_flight), room) if room > 0 else []
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
                self.ready.clear()
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)
                with contextlib.suppress(Exception):  # else they go when their claims run out
                    released = await asyncio.to_thread(self.release)
                    if released:
                        log.info("webhook deliveries released", dispatcher=self.name, deliveries=released)
