"""One trace from the HTTP request through the command, the worker's decision and the projection,
on the real broker and database; the API, the worker and the projector in this process, each with a
tracer of its own, all exporting to one in-memory exporter (as an OTLP collector would receive them)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from infra.kafka.topics import ensure_topics
from schemas.topics import COMMANDS, EVENTS
from services.api.app import create_app
from services.readmodel.projector import Projector
from services.readmodel.store import create_db_engine, upgrade
from services.settings import Settings
from streams.app import NegotiationWorker, WorkerConfig
from streams.tracing import Tracing
from tests.integration.harness import read_topic, wait_until


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``parent`` is the span's parent (the parent may be remote: from another process)."""
    return span.parent is not None and (span.parent.trace_id, span.parent.span_id) == (
        parent.context.trace_id,
        parent.context.span_id,
    )


def service(span: ReadableSpan) -> str:
    return str(span.resource.attributes["service.name"])


async def test_one_trace_spans_the_api_the_worker_and_the_projector(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, log_lines: io.StringIO
) -> None:
    # Given the API, the worker and the projector, each tracing to one exporter
    exporter = InMemorySpanExporter()

    def tracing_of(name: str) -> Tracing:
        provider = TracerProvider(resource=Resource.create({"service.name": f"koopkracht-{name}"}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return Tracing(provider.get_tracer("koopkracht"))

    await ensure_topics(kafka_bootstrap, topic_prefix)
    url = f"sqlite:///{tmp_path / 'readmodel.db'}"
    upgrade(url)
    engine = create_db_engine(url)
    admin_token = f"admin-{uuid.uuid4().hex}"
    settings = Settings(
        data_dir=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_prefix,
        database_url=url,
        admin_token=admin_token,
    )
    worker = NegotiationWorker(
        WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix), tracing=tracing_of("worker")
    )
    projector = Projector(engine, kafka_bootstrap, topic_prefix, tracing=tracing_of("projector"))
    app = create_app(settings, engine, tracing=tracing_of("api"))
    stop = asyncio.Event()
    running = [asyncio.create_task(worker.run(stop)), asyncio.create_task(projector.run(stop))]
    try:
        await wait_until(lambda: worker.ready.is_set() and projector.ready.is_set(), 90, "the worker and projector")
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=30) as http,
        ):

            async def organisation(name: str, role: str) -> dict[str, Any]:
                made = await http.post(
                    "/v1/organisations",
                    json={"name": name, "role": role, "owner": {"name": f"Owner of {name}"}},
                    headers={"Authorization": f"Bearer {admin_token}"},
                )
                assert made.status_code == 201, made.text
                return dict(made.json())

            coordinator, vendor = await organisation("Coop", "coordinator"), await organisation("Vendor", "vendor")

            # When the coordinator opens a negotiation (the API answers once the read model holds it)
            opened = await http.post(
                "/v1/negotiations",
                json={"title": "Traced", "vendor_id": vendor["id"], "items": [{"key": "no-ai-training"}]},
                headers={"Authorization": f"Bearer {coordinator['api_key']}"},
            )
            assert opened.status_code == 201, opened.text
            nid = opened.json()["id"]

        def finished(kind: SpanKind, name: str) -> list[ReadableSpan]:
            return [s for s in exporter.get_finished_spans() if s.kind == kind and s.name == name]

        commands, events = COMMANDS.name(topic_prefix), EVENTS.name(topic_prefix)
        # The projector's span ends with its transaction, which the API's answer may overtake.
        await wait_until(lambda: finished(SpanKind.CONSUMER, f"process {events}"), 30, "the projector's span")
    finally:
        stop.set()
        await asyncio.gather(*running)

    # Then one trace goes from the request to the projection, each span the child of the one before
    (request,) = finished(SpanKind.SERVER, "POST /v1/negotiations")
    (sent,) = [s for s in finished(SpanKind.PRODUCER, f"send {commands}") if child_of(s, request)]
    (decided,) = [s for s in finished(SpanKind.CONSUMER, f"process {commands}") if child_of(s, sent)]
    (projected,) = [s for s in finished(SpanKind.CONSUMER, f"process {events}") if child_of(s, decided)]
    assert [service(s) for s in (request, sent, decided, projected)] == [
        "koopkracht-api",
        "koopkracht-api",
        "koopkracht-worker",
        "koopkracht-projector",
    ]
    assert len({s.context.trace_id for s in (request, sent, decided, projected)}) == 1
    assert request.attributes is not None and request.attributes["http.route"] == "/v1/negotiations"
    assert request.attributes["http.response.status_code"] == 201
    assert sent.attributes is not None and decided.attributes is not None and projected.attributes is not None
    command_id = sent.attributes["messaging.message.id"]
    assert decided.attributes["koopkracht.command_id"] == command_id
    assert decided.attributes["koopkracht.negotiation_id"] == nid
    assert projected.attributes["koopkracht.negotiation_id"] == nid

    # And the negotiation's events carry the decision's context as the CloudEvents tracing extension
    records = [r for r in await read_topic(kafka_bootstrap, events) if r.key == nid.encode()]
    assert records
    decision = [f"{decided.context.trace_id:032x}".encode(), f"{decided.context.span_id:016x}".encode()]
    carried = [dict(record.headers)["ce_traceparent"].split(b"-") for record in records]
    assert [fields[1:3] for fields in carried] == [decision] * len(records)

    # And every log line of the events' projection names the negotiation and the command
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    projected_lines = [line for line in lines if line["event"] == "event projected"]
    assert [line["sequence"] for line in projected_lines] == list(range(1, len(records) + 1))
    assert {(line["negotiation_id"], line["command_id"]) for line in projected_lines} == {(nid, command_id)}
