"""Traces across the hub: a command's way from its sender through the worker's decision to the
projection, and the trace context in Kafka headers.

The context is W3C Trace Context (``traceparent``, ``tracestate``):

- a **command** carries it in the Kafka headers ``traceparent`` and ``tracestate``, as
  OpenTelemetry's Kafka instrumentations write them (a command is no CloudEvent);
- an **event**, a CloudEvent in Kafka binary mode, carries the context in which the worker decided
  it as the CloudEvents *distributed tracing* extension: its attributes ``traceparent`` and
  ``tracestate`` are, in binary mode, the headers ``ce_traceparent`` and ``ce_tracestate`` (so
  any CloudEvents SDK reads them as the event's extension attributes).

The spans: the sender's ``send <commands topic>`` (kind producer), the worker's
``process <commands topic>`` for deciding one command (kind consumer, child of the command's
context), and the projector's ``process <events topic>`` (kind consumer, child of the decision;
one per decision whose events a batch projects, open while the batch's transaction runs).

Off unless the services layer hands in a tracer (``services.tracing``): ``Tracing.off()`` starts
no span, writes no header and reads none, and costs a test of one attribute per call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter, Setter
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = ["COMMAND_PREFIX", "EVENT_PREFIX", "Headers", "Tracing", "annotate"]

Headers = Sequence[tuple[str, bytes]]
COMMAND_PREFIX = ""
"""A command's trace headers: ``traceparent``, ``tracestate``."""
EVENT_PREFIX = "ce_"
"""An event's: the CloudEvents extension attributes in binary mode, ``ce_traceparent``, ``ce_tracestate``."""

_PROPAGATOR = TraceContextTextMapPropagator()
_NOTHING: contextlib.nullcontext[None] = contextlib.nullcontext()


class _HeaderGetter(Getter[Headers]):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        name = self.prefix + key
        found = [value.decode("latin-1") for header, value in carrier or () if header == name and value]
        return found or None

    def keys(self, carrier: Headers) -> list[str]:
        return [header.removeprefix(self.prefix) for header, _ in carrier or ()]


class _HeaderSetter(Setter[list[tuple[str, bytes]]]):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def set(self, carrier: list[tuple[str, bytes]], key: str, value: str) -> None:
        carrier.append((self.prefix + key, value.encode("latin-1")))


_GETTERS = {prefix: _HeaderGetter(prefix) for prefix in (COMMAND_PREFIX, EVENT_PREFIX)}
_SETTERS = {prefix: _HeaderSetter(prefix) for prefix in (COMMAND_PREFIX, EVENT_PREFIX)}
KAFKA = {"messaging.system": "kafka"}


def annotate(**attributes: str | int) -> None:
    """Add attributes to the span in progress (nothing when there is none, or it is not sampled)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)


class Tracing:
    """Spans of the command path, and the trace context in and out of Kafka headers.

    ``tracer`` None: tracing is off, and every method does nothing."""

    def __init__(self, tracer: Tracer | None = None) -> None:
        self.tracer = tracer

    @classmethod
    def off(cls) -> Tracing:
        return cls(None)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    @staticmethod
    def parent(headers: Headers | None, prefix: str = COMMAND_PREFIX) -> Context:
        """The context that ``headers`` carry (an empty one when they carry none)."""
        return _PROPAGATOR.extract(headers or (), getter=_GETTERS[prefix])

    def headers(self, prefix: str = COMMAND_PREFIX) -> list[tuple[str, bytes]]:
        """The span in progress as trace headers (none when tracing is off or no span is)."""
        carrier: list[tuple[str, bytes]] = []
        if self.tracer is not None:
            _PROPAGATOR.inject(carrier, setter=_SETTERS[prefix])
        return carrier

    def span(
        self,
        name: str,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Mapping[str, Any] | None = None,
        parent: Headers | None = None,
        parent_prefix: str = COMMAND_PREFIX,
    ) -> contextlib.AbstractContextManager[Any]:
        """A span in progress for the ``with`` block; its parent is the context ``parent`` carries
        when given (a consumed message's headers), else the span in progress."""
        if self.tracer is None:
            return _NOTHING
        context = self.parent(parent, parent_prefix) if parent is not None else None
        return self.tracer.start_as_current_span(name, context=context, kind=kind, attributes=attributes)

    def sending(self, topic: str, attributes: Mapping[str, Any]) -> contextlib.AbstractContextManager[Any]:
        """The producer span of sending a message to ``topic``; ``headers()`` inside it carry it."""
        return self.span(
            f"send {topic}",
            SpanKind.PRODUCER,
            {**KAFKA, "messaging.operation.type": "send", "messaging.destination.name": topic, **attributes},
        )

    def processing(
        self, topic: str, partition: int, offset: int, headers: Headers | None
    ) -> contextlib.AbstractContextManager[Any]:
        """The consumer span of processing one message, child of the context its headers carry."""
        if self.tracer is None:
            return _NOTHING
        return self.span(
            f"process {topic}",
            SpanKind.CONSUMER,
            {
                **KAFKA,
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.destination.partition.id": str(partition),
                "messaging.kafka.offset": offset,
            },
            parent=headers,
        )

    @contextlib.contextmanager
    def processing_batch(self, topic: str, messages: Iterable[Headers], prefix: str = EVENT_PREFIX) -> Iterator[int]:
        """While the ``with`` block processes a batch: one consumer span per context among the
        messages' headers (a decision whose events the batch holds), each child of that context.
        Yields how many spans are open."""
        if self.tracer is None:
            yield 0
            return
        parents: dict[tuple[bytes, ...], tuple[Headers, int]] = {}
        for headers in messages:
            key = tuple(v for k, v in headers or () if k in (prefix + "traceparent", prefix + "tracestate"))
            if key:
                carrier, count = parents.get(key, (headers, 0))
                parents[key] = (carrier, count + 1)
        spans = []
        for carrier, count in parents.values():
            subject = next((v.decode(errors="replace") for k, v in carrier if k == "ce_subject"), None)
            attributes: dict[str, Any] = {
                **KAFKA,
                "messaging.operation.type": "process",
                "messaging.destination.name": topic,
                "messaging.batch.message_count": count,
            }
            if subject is not None:
                attributes["koopkracht.negotiation_id"] = subject
            parent = self.parent(carrier, prefix)
            span = self.tracer.start_span(f"process {topic}", parent, SpanKind.CONSUMER, attributes)
            spans.append(span)
        try:
            yield len(spans)
        except BaseException as exc:
            for span in spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}"))
            raise
        finally:
            for span in spans:
                span.end()
