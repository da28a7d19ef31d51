"""Prometheus metrics of the API and of the service processes, each in a registry of its own (one
per object, so tests stay apart).

The API serves its own at ``/metrics`` on its port, for the metrics token; the projector, the
webhook dispatcher and the scheduler serve theirs on their metrics ports
(``services.observability``), the worker its ``streams.metrics.WorkerMetrics``.
``docs/deployment.md`` ("Metrics and health") names every metric.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.metrics import BATCH_BUCKETS


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "koopkracht_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "koopkracht_http_request_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["method", "route"],
            registry=self.registry,
        )
        self.commands = Counter(
            "koopkracht_commands",
            "Commands sent to the negotiation worker, by type and outcome.",
            ["command", "outcome"],
            registry=self.registry,
        )
        self.command_seconds = Histogram(
            "koopkracht_command_seconds",
            "From sending a command to its answer being readable, by command type.",
            ["command"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )


@dataclass
class ProjectorMetrics:
    """The read-model projector's."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.events = Counter(
            "koopkracht_projector_events",
            "Events projected into the read model (not counting those delivered again and skipped).",
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "koopkracht_projector_batch_seconds",
            "Time to project one batch (decode, write the rows and queue the webhook deliveries in one transaction).",
            registry=self.registry,
            buckets=BATCH_BUCKETS,
        )

    def projected(self, events: int, seconds: float) -> None:
        self.events.inc(events)
        self.batch_seconds.observe(seconds)


WEBHOOK_OUTCOMES = ("delivered", "rejected", "timeout", "refused", "error")
"""An attempt's outcome: a 2xx answer (``delivered``), another status (``rejected``), no complete
answer in time (``timeout``), a destination the policy refuses (``refused``), or no answer at all
(``error``: the connection failed)."""


@dataclass
class DispatcherMetrics:
    """The webhook dispatcher's."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        attempts = Counter(
            "koopkracht_webhook_attempts",
            "Webhook delivery attempts, by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.attempts = {outcome: attempts.labels(outcome) for outcome in WEBHOOK_OUTCOMES}
        self.attempt_seconds = Histogram(
            "koopkracht_webhook_attempt_seconds",
            "Time of one delivery attempt, from connecting to the receiver's status line.",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.delivery_seconds = Histogram(
            "koopkracht_webhook_delivery_seconds",
            "From queueing a delivery (with its event's projection) to the receiver's 2xx, retries included.",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
        )
        self.pending = Gauge(
            "koopkracht_webhook_pending_deliveries",
            "Deliveries waiting to be delivered, of subscriptions that are active.",
            registry=self.registry,
        )
        self.oldest_pending_seconds = Gauge(
            "koopkracht_webhook_oldest_pending_seconds",
            "Age of the oldest delivery waiting, of a subscription that is active (0: none waits).",
            registry=self.registry,
        )


SCHEDULER_OUTCOMES = ("accepted", "duplicate", "refused", "unanswered")


@dataclass
class SchedulerMetrics:
    """The scheduler's."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        ticks = Counter(
            "koopkracht_scheduler_ticks",
            "Ticks sent, by answer: accepted (commitments became overdue), duplicate (sent before), refused, "
            "unanswered (no answer in time; the next round sends it again).",
            ["outcome"],
            registry=self.registry,
        )
        self.ticks = {outcome: ticks.labels(outcome) for outcome in SCHEDULER_OUTCOMES}
        self.overdue = Counter(
            "koopkracht_scheduler_overdue_commitments",
            "Commitments that ticks made overdue.",
            registry=self.registry,
        )
        self.round_seconds = Histogram(
            "koopkracht_scheduler_round_seconds",
            "Time of one round (the read model's query, the ticks and their answers).",
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.last_round = Gauge(
            "koopkracht_scheduler_last_round_timestamp_seconds",
            "When the last round ended (Unix time).",
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request under its route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.request_seconds.labels(method, route).observe(time.perf_counter() - started)
