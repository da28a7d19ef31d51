"""``create_app(settings)``: the FastAPI application, wired to Kafka and the read model.

Bodies over 64 KiB are refused with 413 before anything parses them; every error is problem+json;
every answer carries the security headers of ``services.api.headers``; ``/healthz`` says the
process is alive, ``/readyz`` that Kafka, the database, the negotiation workers, the projector and
the webhook dispatcher all answer (and, under ``koopkracht up``, how often its supervisor
restarted each process), ``/metrics`` is for Prometheus, with the metrics token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from anyio import to_thread
from fastapi import Depends, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.bodies import Readiness, SupervisedProcess
from services.api.headers import SecurityHeaders
from services.api.problems import EXCEPTION_HANDLERS, PROBLEM_JSON, ProblemDetail, problems
from services.api.routes import ROUTERS
from services.api.subscriptions import subscriptions
from services.application.errors import Refusal, refusal_document
from services.application.hub import Hub
from services.application.security import check_metrics_token
from services.application.service import Application
from services.application.throttle import Throttle, address_of
from services.application.watch import ProjectionWatch
from services.dashboard.oidc import sso
from services.dashboard.people import people_pages
from services.dashboard.routes import HERE as DASHBOARD
from services.dashboard.routes import dashboard
from services.metrics import Metrics, MetricsMiddleware
from services.observability import TracingMiddleware, tracing_from
from services.readmodel.store import create_db_engine, ping
from services.readmodel.tables import Heartbeat, utc
from services.scheduler import HEARTBEAT as SCHEDULER_HEARTBEAT
from services.settings import Settings
from services.subscriptions.webhooks import HEARTBEAT_S
from services.supervisor import STATUS_FILE, read_status
from streams.client import CommandClient
from streams.tracing import Tracing

log = structlog.get_logger("koopkracht.api")

MAX_BODY_BYTES = 64 * 1024
metrics_bearer = HTTPBearer(auto_error=False, scheme_name="MetricsToken", description="The metrics token.")


class BodyLimit:
    """413 for a body over the limit: by its Content-Length at once, else while it streams in."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            problem = Refusal(413, f"the body is larger than {self.limit} bytes", title="Content Too Large")
            body = json.dumps(refusal_document(problem, scope["path"])).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 413,
                    "headers": [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise StarletteHTTPException(413, f"the body is larger than {self.limit} bytes")
            return message

        await self.app(scope, limited, send)


async def readiness(hub: Hub, admin: AIOKafkaAdminClient, own: bool = False) -> Readiness:
    """The hub's readiness as this API sees it; ``own``: only what this process needs to serve
    (Kafka and the database), for an orchestrator that routes requests to it."""
    checks: dict[str, str] = {}
    ready = True
    try:
        cluster = await asyncio.wait_for(admin.describe_cluster(), 3)
        checks["kafka"] = f"ok: {len(cluster['brokers'])} broker(s)"
    except Exception as exc:
        checks["kafka"] = f"unreachable ({type(exc).__name__})"
        ready = False
    try:
        await asyncio.wait_for(to_thread.run_sync(ping, hub.engine), 3)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable ({type(exc).__name__})"
        ready = False
    if own:
        return Readiness(status="ready" if ready else "not ready", checks=checks, processes=None)
    prefix = hub.settings.topic_prefix
    for name, group in (("worker", f"{prefix}-worker"), ("projector", f"{prefix}-projector")):
        try:
            members = await asyncio.wait_for(_group_members(admin, group), 3)
        except Exception as exc:
            checks[name] = f"unknown ({type(exc).__name__})"
            ready = False
            continue
        checks[name] = f"ok: {members} running" if members else "not running"
        ready = ready and members > 0
    # The dispatcher and the scheduler beat in ``heartbeats``: each is running when its last beat is
    # younger than three of its rounds.
    for name, service, every in (
        ("webhooks", "webhooks", HEARTBEAT_S),
        ("scheduler", SCHEDULER_HEARTBEAT, hub.settings.tick_interval_s),
    ):
        try:
            age = await asyncio.wait_for(to_thread.run_sync(heartbeat_age, hub.engine, service), 3)
            alive = age is not None and age < 3 * every
            checks[name] = f"ok: seen {age:.1f} s ago" if alive and age is not None else "not running"
            ready = ready and alive
        except Exception as exc:
            checks[name] = f"unknown ({type(exc).__name__})"
            ready = False
    processes: dict[str, SupervisedProcess] | None = None
    try:
        status = await asyncio.wait_for(to_thread.run_sync(read_status, hub.settings.data_dir / STATUS_FILE), 3)
        # None: no supervisor runs this API (``koopkracht api`` alone, or its supervisor is gone)
        processes = supervised_processes(status) if status is not None else None
    except Exception as exc:
        checks["processes"] = f"unknown ({type(exc).__name__})"
        ready = False
    else:
        if processes is not None:
            down = [f"{name} {process.state}" for name, process in processes.items() if process.state != "running"]
            restarts = sum(process.restarts for process in processes.values())
            checks["processes"] = (
                "not running: " + ", ".join(down) if down else f"ok: {len(processes)} running, {restarts} restart(s)"
            )
            ready = ready and not down
    return Readiness(status="ready" if ready else "not ready", checks=checks, processes=processes)


def supervised_processes(status: dict[str, Any]) -> dict[str, SupervisedProcess]:
    """The supervisor's view of each process, without what ``/readyz`` does not show (pids, log paths)."""
    fields = SupervisedProcess.model_fields
    return {
        name: SupervisedProcess.model_validate({key: value for key, value in process.items() if key in fields})
        for name, process in status["processes"].items()
    }


def heartbeat_age(engine: Engine, service: str) -> float | None:
    with Session(engine) as session:
        beat = session.get(Heartbeat, service)
    if beat is None:
        return None
    at = utc(beat.beat_at)
    assert at is not None
    return (datetime.now(UTC) - at).total_seconds()


async def _group_members(admin: AIOKafkaAdminClient, group: str) -> int:
    responses = await admin.describe_consumer_groups([group])
    members = 0
    for response in responses:
        for described in response.to_object()["groups"]:
            if described["state"] == "Stable":
                members += len(described["members"])
    return members


def create_app(settings: Settings, engine: Engine | None = None, tracing: Tracing | None = None) -> FastAPI:
    """The API for ``settings``. Kafka clients start with the app and stop with it.

    ``tracing``: a span for each request and for sending its command (``services.observability``);
    from the settings when not given (off unless ``KOOPKRACHT_OTEL_ENABLED``)."""
    engine = engine or create_db_engine(settings.sqlalchemy_url)
    close_tracing: Callable[[], None] = lambda: None  # noqa: E731 - the caller's tracing is the caller's to close
    if tracing is None:
        tracing, close_tracing = tracing_from(settings, "api")
    metrics = Metrics()
    throttle = Throttle(settings)
    if settings.kafka_bootstrap is None:
        raise ValueError("the API needs KOOPKRACHT_KAFKA_BOOTSTRAP (the stack sets it)")
    kafka = settings.kafka_connection()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = CommandClient(kafka, settings.topic_prefix, tracing=tracing)
        admin = kafka.admin(client_id="koopkracht-api-admin")
        await client.start()
        try:
            await admin.start()
            watch = ProjectionWatch(engine)
            watch.start()
            hub = Hub(settings=settings, engine=engine, client=client, metrics=metrics, watch=watch, throttle=throttle)
            hub.readiness = lambda own=False: readiness(hub, admin, own)
            app.state.hub = hub
            app.state.application = Application(hub)
            log.info("api.ready", host=settings.api_host, port=settings.api_port)
            yield
        finally:
            if getattr(app.state, "hub", None) is not None:
                await app.state.hub.watch.stop()
            with contextlib.suppress(Exception):
                await admin.close()
            await client.stop()
            close_tracing()

    app = FastAPI(
        title="Koopkracht",
        version="1",
        summary="Many organisations negotiate with one vendor as a single buyer.",
        description=(
            "Members state their requirements, the hub aggregates them into one joint demand, the vendor answers "
            "item by item in rounds, and every party reads one shared negotiation state. Authenticate with "
            "`Authorization: Bearer <api key>`. Errors are RFC 9457 problem details."
        ),
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(subscriptions)
    app.include_router(dashboard)
    app.include_router(sso)
    app.include_router(people_pages)
    app.mount("/static", StaticFiles(directory=str(DASHBOARD / "static")), name="static")
    app.add_middleware(BodyLimit)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TracingMiddleware, tracing=tracing)
    # Outside Starlette's own error middleware too, so that an unexpected 500 has the headers as well.
    build_stack = app.build_middleware_stack
    app.build_middleware_stack = lambda: SecurityHeaders(build_stack(), https=settings.public_https)  # type: ignore[method-assign]

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], response_model=Readiness, responses={503: {"model": Readiness}})
    async def readyz(response: Response, own: bool = False) -> Readiness:
        """Ready when Kafka, the database, the negotiation workers, the projector, the webhook dispatcher
        and the scheduler answer, and (under ``koopkracht up``) no process is down waiting to be
        restarted. ``processes`` says how often each was restarted. With ``?own=true``: only what this
        API process needs to serve requests (Kafka and the database), as a load balancer or
        Kubernetes' readiness probe should ask, so that one stopped worker or scheduler does not take
        every API process out of service.
        """
        result: Readiness = await app.state.hub.readiness(own)
        if result.status != "ready":
            response.status_code = 503
        return result

    @app.get("/metrics", tags=["operations"], response_class=Response, responses=problems(401))
    async def prometheus(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(metrics_bearer)]
    ) -> Response:
        """Prometheus metrics in the text exposition format, for the bearer of the metrics token
        (`KOOPKRACHT_METRICS_TOKEN`): they count commands by type, which tells how a negotiation goes."""
        token = credentials.credentials if credentials is not None else None
        with throttle.guard(address_of(request.client), token is not None):
            check_metrics_token(settings.metrics_token, token)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["ProblemDetail"] = (
                ProblemDetail.model_json_schema()
            )
            for path in schema["paths"].values():
                for operation in path.values():
                    # FastAPI documents its own 422 as application/json; ours is problem+json. A body
                    # that is not JSON at all is 400; one too large is 413.
                    operation["responses"].update(problems(400, 413) if "requestBody" in operation else {})
                    if "401" in operation["responses"]:  # a credential's request may be over a rate limit
                        operation["responses"].update(problems(429))
                    if "422" in operation["responses"]:
                        operation["responses"]["422"] = problems(422)["422"]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
