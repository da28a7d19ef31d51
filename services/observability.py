"""What each process tells its operator: metrics, health and traces.

Every process but the API serves ``/metrics`` (Prometheus text), ``/healthz`` and ``/readyz`` on
a port of its own (``KOOPKRACHT_METRICS_PORT``; when unset the worker takes 9101, the projector
9102, the webhook dispatcher 9103, the scheduler 9104; 0: none), bound to
``KOOPKRACHT_METRICS_HOST`` (127.0.0.1). The API keeps its three on its own port
(``services.api.app``).

- ``/healthz``: 200 while the process's event loop turns (a monitor task in it beats every second;
  503 once the beat is older than ``LIVENESS_STALE_S``). A process whose main loop ends exits.
- ``/readyz``: 200 while the process does its work, as its probe finds every second: the worker
  is in its group and has rebuilt the tables of its partitions; the projector has its partitions
  and reaches the database; the dispatcher and the scheduler reach the database.

A thread serves them, so a scrape never waits for the loop; it reads only what the loop's monitor
last wrote. They need no token, unlike the API's ``/metrics``: the port is not the API's (no
ingress routes it), it listens on loopback unless the operator says otherwise, and what it counts
names no organisation, negotiation or command type (docs/deployment.md says why, and what each
metric means).

Tracing (OpenTelemetry) is off unless ``KOOPKRACHT_OTEL_ENABLED``; then spans go by OTLP over
HTTP to where the standard ``OTEL_EXPORTER_OTLP_*`` variables say (``tracer_provider``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.readmodel.store import ping
from services.readmodel.tables import Delivery, Subscription, utc
from services.settings import DEFAULT_METRICS_PORTS, Settings
from streams.metrics import ConsumerLag
from streams.tracing import Tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from services.readmodel.projector import Projector
    from services.scheduler import Scheduler
    from services.subscriptions.webhooks import Dispatcher
    from streams.app import NegotiationWorker

log = structlog.get_logger("koopkracht.observability")

LIVENESS_STALE_S = 30.0
"""``/healthz`` fails once the event loop has not turned for this long."""
MONITOR_S = 1.0
"""The monitor samples the process this often."""
DATABASE_CHECK_S = 5.0
"""A probe asks the database at most this often."""

Probe = Callable[[], Awaitable[tuple[bool, str]]]


class Health:
    """What ``/healthz`` and ``/readyz`` answer: written by the process's monitor, read by the endpoint's thread."""

    def __init__(self, stale_after_s: float = LIVENESS_STALE_S) -> None:
        self.stale_after_s = stale_after_s
        self.beat_at = time.monotonic()
        self.ready = False
        self.detail = "starting"

    def beat(self) -> None:
        self.beat_at = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self.beat_at
        if age > self.stale_after_s:
            return False, f"the event loop has not turned for {age:.0f} s"
        return True, "ok"

    def readiness(self) -> tuple[bool, str]:
        alive, why = self.alive()
        if not alive:
            return False, why
        return self.ready, self.detail


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a probe every few seconds is no news


class Endpoint:
    """``/metrics``, ``/healthz`` and ``/readyz`` of one process, served by a thread of its own."""

    def __init__(self, registry: CollectorRegistry, health: Health) -> None:
        self.health = health
        self.metrics = make_wsgi_app(registry)
        self._server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self.metrics(environ, start_response)  # type: ignore[no-any-return]
        if path in ("/healthz", "/readyz"):
            ok, detail = self.health.alive() if path == "/healthz" else self.health.readiness()
            status = "200 OK" if ok else "503 Service Unavailable"
            body = f"{'ok' if ok else 'not ok'}: {detail}\n".encode()
            start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Cache-Control", "no-store")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: /metrics, /healthz and /readyz are here\n"]

    def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free one); returns the port. Raises OSError when it cannot."""
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]

        class Server(ThreadingWSGIServer):
            address_family = family

        self._server = make_server(host, port, self, server_class=Server, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-endpoint", daemon=True)
        self._thread.start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def tracer_provider(process: str) -> TracerProvider:
    """Spans of ``process`` exported by OTLP over HTTP, in batches, where the standard
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) says, with its ``…_HEADERS``,
    ``…_CERTIFICATE`` and ``…_TIMEOUT``; sampled as ``OTEL_TRACES_SAMPLER`` says (by default: every
    trace its parent sampled, and every new one); ``OTEL_RESOURCE_ATTRIBUTES`` adds to the resource."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"koopkracht-{process}", "service.namespace": "koopkracht"})
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


def tracing_from(settings: Settings, process: str) -> tuple[Tracing, Callable[[], None]]:
    """The process's tracing, and what flushes and stops it at the end (nothing when it is off)."""
    if not settings.otel_enabled:
        return Tracing.off(), lambda: None
    provider = tracer_provider(process)
    log.info("tracing on", service=f"koopkracht-{process}")
    return Tracing(provider.get_tracer("koopkracht")), provider.shutdown


@dataclass
class Observed:
    """One process's registry, health and tracing, and its endpoint while it runs."""

    process: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    health: Health = field(default_factory=Health)
    tracing: Tracing = field(default_factory=Tracing.off)
    endpoint: Endpoint | None = None
    port: int | None = None
    """Where the endpoint listens (None: it does not)."""
    close_tracing: Callable[[], None] = lambda: None

    async def run(self, main: Awaitable[None], probe: Probe) -> None:
        """Run ``main`` with the monitor beside it (every ``MONITOR_S``: a beat, then ``probe``,
        whose answer ``/readyz`` gives); then stop the endpoint and flush the spans."""
        monitor = asyncio.create_task(self._monitor(probe), name=f"{self.process}-monitor")
        try:
            await main
        finally:
            monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await monitor
            self.close()

    async def _monitor(self, probe: Probe) -> None:
        while True:
            self.health.beat()
            try:
                self.health.ready, self.health.detail = await probe()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a probe must not stop the process: it says so instead
                self.health.ready, self.health.detail = False, f"probe failed: {type(exc).__name__}: {exc}"
            await asyncio.sleep(MONITOR_S)

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
            self.endpoint = None
        self.close_tracing()


class EndpointError(RuntimeError):
    """The metrics endpoint cannot listen where the settings say."""


def observe(process: str, settings: Settings) -> Observed:
    """``process``'s registry (with the standard process and Python collectors), tracing as the
    settings say, and its endpoint listening on its metrics port (unless that is 0)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    tracing, close_tracing = tracing_from(settings, process)
    observed = Observed(process, registry=registry, tracing=tracing, close_tracing=close_tracing)
    port = settings.metrics_port if settings.metrics_port is not None else DEFAULT_METRICS_PORTS[process]
    if port:
        endpoint = Endpoint(registry, observed.health)
        try:
            observed.port = endpoint.start(settings.metrics_host, port)
        except OSError as exc:
            close_tracing()
            raise EndpointError(
                f"cannot serve metrics on {settings.metrics_host}:{port} ({exc.strerror or exc}): set "
                "KOOPKRACHT_METRICS_PORT to a free port, or to 0 for none"
            ) from None
        observed.endpoint = endpoint
        log.info("metrics endpoint", process=process, host=settings.metrics_host, port=observed.port)
    return observed


# -- each process's probe ------------------------------------------------------------------------


class DatabaseCheck:
    """Whether the database answers, asked at most every ``DATABASE_CHECK_S`` (in a thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.checked_at = -DATABASE_CHECK_S
        self.answer = (False, "database not asked yet")

    async def __call__(self) -> tuple[bool, str]:
        if time.monotonic() - self.checked_at >= DATABASE_CHECK_S:
            self.checked_at = time.monotonic()
            try:
                await asyncio.wait_for(asyncio.to_thread(ping, self.engine), 3)
                self.answer = (True, "database ok")
            except Exception as exc:
                self.answer = (False, f"database unreachable ({type(exc).__name__})")
        return self.answer


def worker_probe(worker: NegotiationWorker, registry: CollectorRegistry) -> Probe:
    """Ready once the worker is in its group and has rebuilt the table of every partition it owns."""
    lag = ConsumerLag(registry, worker.config.group)
    partitions = worker.metrics.partitions

    async def probe() -> tuple[bool, str]:
        deciding, recovering = worker.partitions()
        partitions.labels("deciding").set(len(deciding))
        partitions.labels("recovering").set(len(recovering))
        if worker.consumer is not None:
            await lag.sample(worker.consumer)
        if not worker.joined:
            return False, "joining the consumer group"
        if recovering:
            return False, f"rebuilding the tables of partition(s) {sorted(recovering)}"
        return True, f"deciding the commands of {len(deciding)} partition(s)"

    return probe


def projector_probe(projector: Projector, registry: CollectorRegistry, engine: Engine) -> Probe:
    """Ready once the projector has its partitions and the database answers."""
    lag = ConsumerLag(registry, projector.group)
    database = DatabaseCheck(engine)

    async def probe() -> tuple[bool, str]:
        consumer = projector.consumer
        if consumer is not None:
            await lag.sample(consumer)
        reached, said = await database()
        if consumer is None or not consumer.assignment():
            return False, "waiting for its partitions; " + said
        return reached, f"projecting {len(consumer.assignment())} partition(s); {said}"

    return probe


def pending_deliveries(engine: Engine) -> tuple[int, float]:
    """How many deliveries of active subscriptions wait, and the age in seconds of the oldest (0: none)."""
    with Session(engine) as session:
        count, oldest = session.exec(
            select(func.count(col(Delivery.id)), func.min(Delivery.created_at))
            .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
            .where(Delivery.status == "pending", Subscription.status == "active")
        ).one()
    since = utc(oldest)
    return int(count), (datetime.now(UTC) - since).total_seconds() if since is not None else 0.0


def dispatcher_probe(dispatcher: Dispatcher, engine: Engine) -> Probe:
    """Ready while the database answers; counts the deliveries waiting (every ``DATABASE_CHECK_S``)."""
    checked_at = -DATABASE_CHECK_S
    answer = (False, "starting")
    metrics = dispatcher.metrics

    async def probe() -> tuple[bool, str]:
        nonlocal checked_at, answer
        if time.monotonic() - checked_at >= DATABASE_CHECK_S:
            checked_at = time.monotonic()
            try:
                pending, oldest = await asyncio.wait_for(asyncio.to_thread(pending_deliveries, engine), 3)
            except Exception as exc:
                answer = (False, f"database unreachable ({type(exc).__name__})")
            else:
                metrics.pending.set(pending)
                metrics.oldest_pending_seconds.set(oldest)
                answer = (True, f"database ok; {pending} deliveries waiting")
        if not dispatcher.ready.is_set():
            return False, "starting"
        return answer

    return probe


def scheduler_probe(scheduler: Scheduler, engine: Engine) -> Probe:
    """Ready once the scheduler runs (its command client started) and while the database answers."""
    database = DatabaseCheck(engine)

    async def probe() -> tuple[bool, str]:
        reached, said = await database()
        if not scheduler.ready.is_set():
            return False, "starting"
        return reached, said

    return probe


# -- the API's requests as spans -------------------------------------------------------------------

UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})
_PROPAGATOR = TraceContextTextMapPropagator()


class TracingMiddleware:
    """A server span for every HTTP request but the probes and scrapes, named by its route
    template (``POST /v1/negotiations/{negotiation_id}/positions``, never the raw path), child of
    the caller's ``traceparent`` when it sends one. Does nothing when tracing is off."""

    def __init__(self, app: ASGIApp, tracing: Tracing) -> None:
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracer = self.tracing.tracer
        if tracer is None or scope["type"] != "http" or scope["path"] in UNTRACED:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        method = scope["method"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracer.start_as_current_span(
            method,
            context=_PROPAGATOR.extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": scope["path"]},
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route is not None:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
