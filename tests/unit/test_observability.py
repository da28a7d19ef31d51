"""What a process tells its operator, without a broker: the log context of a command's handling,
the trace context from a command's message to its events and their projection, and the endpoint
that answers /metrics, /healthz and /readyz."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, Counter

from schemas.commands import InviteMember, StatePosition
from services.observability import Endpoint, Health
from services.settings import Settings
from services.stack import services
from streams.codec import encode_command
from streams.metrics import WorkerMetrics
from streams.table import NegotiationTable, Outbox, process_command
from streams.tracing import EVENT_PREFIX, Tracing
from tests.unit.builders import COORDINATOR, Negotiation, item

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def table_of(n: Negotiation) -> NegotiationTable:
    table = NegotiationTable()
    for event in n.events:
        table.apply(event)
    return table


def decide(table: NegotiationTable, command: Any, offset: int, key: bytes | None = None, **options: Any) -> Outbox:
    outbox = Outbox()
    key = command.negotiation_id.encode() if key is None else key
    process_command(
        outbox,
        table,
        topic="t.commands",
        partition=3,
        offset=offset,
        key=key,
        value=encode_command(command),
        now=NOW,
        consumer="test",
        **options,
    )
    return outbox


def test_a_log_line_of_a_commands_handling_carries_its_ids_and_none_after(log_lines: io.StringIO) -> None:
    # Given a negotiation, and a command sent under another negotiation's key (dead-lettered, with a
    # warning whose call names only the message's place, not the command)
    n = Negotiation(item("no-ads")).invite("uni")
    command = n.command(StatePosition, "uni", item_key="no-ads", position={"priority": "must"})
    table = table_of(n)

    # When the worker handles it, and logs something afterwards
    decide(table, command, offset=41, key=b"another-negotiation")
    structlog.get_logger("koopkracht.worker").info("between batches")

    # Then the line of its handling names the command, its negotiation and where it was read
    handling, after = lines(log_lines)
    assert handling["event"] == "command dead-lettered"
    assert handling["command_id"] == command.command_id
    assert handling["negotiation_id"] == n.negotiation_id
    assert (handling["topic"], handling["partition"], handling["offset"]) == ("t.commands", 3, 41)
    # And the next line, outside its handling, names none of it
    assert after["event"] == "between batches"
    assert not {"command_id", "negotiation_id", "offset"} & after.keys()


def test_a_log_line_inside_a_span_names_the_trace(log_lines: io.StringIO) -> None:
    # Given tracing on
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = Tracing(provider.get_tracer("test"))
    n = Negotiation(item("no-ads")).invite("uni")
    command = n.command(StatePosition, "uni", item_key="no-ads", position={"priority": "must"})

    # When a command's handling logs inside the worker's span
    with tracing.processing("t.commands", 3, 41, []):
        decide(table_of(n), command, offset=41, key=b"another-negotiation")

    # Then its line leads to that span
    (span,) = exporter.get_finished_spans()
    (line,) = lines(log_lines)
    assert line["trace_id"] == format(span.context.trace_id, "032x")
    assert line["span_id"] == format(span.context.span_id, "016x")


def test_the_trace_context_goes_from_the_command_to_its_events_and_their_projection() -> None:
    # Given three processes' tracers, one exporter
    exporter = InMemorySpanExporter()

    def tracing_of(service: str) -> Tracing:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        return Tracing(provider.get_tracer(service))

    api, worker, projector = tracing_of("api"), tracing_of("worker"), tracing_of("projector")
    n = Negotiation(item("no-ads"))
    command = n.command(InviteMember, COORDINATOR, organisation_id="uni", name="Uni", weight=1)

    # When the API sends a command, the worker decides it, and the projector projects its events
    with api.sending("t.commands", {"messaging.message.id": command.command_id}):
        command_headers = api.headers()
    with worker.processing("t.commands", 0, 7, command_headers):
        outbox = decide(table_of(n), command, offset=7, trace=worker.headers(EVENT_PREFIX))
    event_headers = [headers for _, _, headers in outbox.events]
    with projector.processing_batch("t.events", event_headers) as opened:
        pass

    # Then the command carried `traceparent`, its events the CloudEvents extension `ce_traceparent`
    assert [name for name, _ in command_headers] == ["traceparent"]
    assert event_headers and all(dict(headers).get("ce_traceparent") for headers in event_headers)
    # And the three spans form one trace: send -> decide (child) -> project (child, one per decision)
    assert opened == 1
    spans = {span.resource.attributes["service.name"]: span for span in exporter.get_finished_spans()}
    sent, decided, projected = spans["api"], spans["worker"], spans["projector"]
    assert (sent.kind, decided.kind, projected.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.CONSUMER)
    assert sent.context.trace_id == decided.context.trace_id == projected.context.trace_id
    assert decided.parent is not None and decided.parent.span_id == sent.context.span_id
    assert projected.parent is not None and projected.parent.span_id == decided.context.span_id
    assert decided.attributes["koopkracht.command_id"] == command.command_id
    assert projected.attributes["messaging.batch.message_count"] == len(event_headers)


def test_with_tracing_off_nothing_is_written_or_read() -> None:
    # Given tracing off (the default)
    tracing = Tracing.off()
    n = Negotiation(item("no-ads"))
    command = n.command(InviteMember, COORDINATOR, organisation_id="uni", name="Uni", weight=1)

    # When a command is sent and decided
    with tracing.sending("t.commands", {}):
        headers = tracing.headers()
    with tracing.processing("t.commands", 0, 1, [("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]):
        outbox = decide(table_of(n), command, offset=1, trace=tracing.headers(EVENT_PREFIX))

    # Then no trace header is written, and the events carry just what they carried before
    assert headers == []
    ((_, _, event_headers),) = outbox.events
    assert not [name for name, _ in event_headers if "trace" in name]


def test_the_worker_counts_each_commands_outcome() -> None:
    # Given a negotiation and the worker's metrics
    metrics = WorkerMetrics()
    n = Negotiation(item("no-ads")).invite("uni")
    table = table_of(n)
    accepted = n.command(StatePosition, "uni", item_key="no-ads", position={"priority": "must"})
    refused = n.command(StatePosition, "stranger", item_key="no-ads", position={"priority": "must"})

    def outcome(key: bytes, value: bytes, offset: int) -> str:
        found = process_command(
            Outbox(), table, topic="t", partition=0, offset=offset, key=key, value=value, now=NOW, consumer="c"
        )
        metrics.decided(found)
        return found

    # When one command is accepted, one refused, one sent under another key, one unreadable
    outcomes = [
        outcome(b"neg-1", encode_command(accepted), 1),
        outcome(b"neg-1", encode_command(refused), 2),
        outcome(b"elsewhere", encode_command(accepted), 3),
        outcome(b"neg-1", b"{", 4),
    ]

    # Then each is counted under its outcome, and each dead letter under its reason
    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    assert outcomes == ["accepted", "rejected", "wrong_key", "unreadable"]
    for each in outcomes:
        assert value("koopkracht_worker_commands_total", outcome=each) == 1
    assert value("koopkracht_worker_commands_total", outcome="failed") == 0
    assert value("koopkracht_worker_dead_letters_total", reason="wrong_key") == 1
    assert value("koopkracht_worker_dead_letters_total", reason="unreadable") == 1
    assert value("koopkracht_worker_dead_letters_total", reason="failed") == 0


def answer(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_endpoint_answers_health_readiness_and_metrics() -> None:
    # Given a process's endpoint on a free port, with a counter in its registry
    registry = CollectorRegistry()
    Counter("koopkracht_things", "Things.", registry=registry).inc(3)
    health = Health(stale_after_s=30)
    endpoint = Endpoint(registry, health)
    port = endpoint.start("127.0.0.1", 0)
    base = f"http://127.0.0.1:{port}"
    try:
        # Then, starting: alive, not ready; metrics served; anything else is 404
        assert answer(base + "/healthz")[0] == 200
        assert answer(base + "/readyz") == (503, "not ok: starting\n")
        status, text = answer(base + "/metrics")
        assert status == 200 and "koopkracht_things_total 3.0" in text
        assert answer(base + "/")[0] == 404

        # When the process's probe finds it doing its work
        health.ready, health.detail = True, "deciding the commands of 2 partition(s)"
        assert answer(base + "/readyz") == (200, "ok: deciding the commands of 2 partition(s)\n")

        # When its event loop has not turned for longer than allowed
        health.beat_at -= 60
        # Then it is neither alive nor ready
        assert answer(base + "/healthz")[0] == 503
        assert answer(base + "/readyz")[0] == 503
    finally:
        endpoint.stop()


@pytest.mark.parametrize(
    ("setting", "ports"),
    [
        (None, {"worker": "9101", "projector": "9102", "webhooks": "9103", "scheduler": "9104"}),
        (0, {"worker": "0", "projector": "0", "webhooks": "0", "scheduler": "0"}),
        (9200, {"worker": "9200", "projector": "9201", "webhooks": "9202", "scheduler": "9203"}),
    ],
)
def test_each_process_of_the_stack_gets_a_metrics_port_of_its_own(setting: int | None, ports: dict[str, str]) -> None:
    # Given the stack's settings; when it lists its processes
    children = {child.name: child for child in services(Settings(metrics_port=setting))}
    # Then each non-API process has its own port (or none), the API none (it serves its own)
    assert {name: child.env.get("KOOPKRACHT_METRICS_PORT") for name, child in children.items()} == {
        **ports,
        "api": None,
    }
