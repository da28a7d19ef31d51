"""Bytes on the wire: commands, events as binary-mode CloudEvents, state documents, results.

Events travel as CloudEvents (https://cloudevents.io) in Kafka binary content mode: the
attributes in ``ce_*`` headers (``ce_id`` is the event id, ``ce_type`` the event type,
``ce_source`` the negotiation's path, ``ce_subject`` the negotiation id, ``ce_time`` when it
happened, ``ce_sequence`` its number), and the event as JSON in the value, so any Kafka client of
any member organisation can read them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from cloudevents.core.bindings.kafka import KafkaMessage
from pydantic import TypeAdapter, ValidationError

from schemas.commands import Command
from schemas.deadletters import DeadLetter
from schemas.events import EVENT_ADAPTER, EVENT_TYPES, Event
from schemas.results import CommandResult
from streams.core.chain import install_sorted_writer
from streams.core.state import NegotiationState
from streams.core.views import StateDocumentCache, shared_state_data
from streams.decoders import COMMANDS

EVENT_DECODER: Callable[[bytes], Event] = EVENT_ADAPTER.validate_json
"""How an event's JSON is read: pydantic's own validation. The compiled decoder of
``streams.decoders`` (``EVENTS``), equal to it, measured slower for events (building the models
in Python costs more than pydantic's Rust does; ``make bench-core``), so it reads commands only,
where pydantic runs a Python validator over the whole command."""

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
RESULT_ADAPTER: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)
EVENT_TYPE_PREFIX = "nl.koopkracht."
DEAD_LETTER_VALUE_LIMIT = 64 * 1024
_CE_TYPES: dict[str, bytes] = {name: (EVENT_TYPE_PREFIX + name).encode() for name in EVENT_TYPES}
"""Each event type's ``ce_type`` header, as bytes."""

Headers = Sequence[tuple[str, bytes]]


def _sorted_json(value: dict[str, Any]) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


install_sorted_writer(_sorted_json)  # the hash chain's canonical JSON, written by orjson where it is provably equal


class DecodeError(ValueError):
    """Bytes that are not a valid message of the topic; the message says what is wrong."""


def _invalid(what: str, exc: ValidationError) -> DecodeError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    return DecodeError(f"not a valid {what}: {where}: {first['msg']}")


def encode_command(command: Command) -> bytes:
    return command.model_dump_json().encode()


def decode_command(value: bytes | None) -> Command:
    if value is None:
        raise DecodeError("empty message (no value)")
    try:
        return COMMANDS(value)  # compiled; refused exactly as COMMAND_ADAPTER refuses (streams.decoders)
    except ValidationError as exc:
        raise _invalid("command", exc) from exc


_last_time: tuple[datetime | None, str] = (None, "")


def _ce_time(moment: datetime) -> str:
    """The ``ce_time`` of a moment (``Z`` for UTC); the last one is remembered, as every event
    of a batch is decided at the same time."""
    global _last_time
    known, text = _last_time
    if known is not moment:
        text = moment.isoformat()
        if text.endswith("+00:00"):
            text = text[:-6] + "Z"
        _last_time = (moment, text)
    return text


def encode_event(event: Event) -> KafkaMessage:
    """The event as a binary-mode CloudEvent: headers, key (the negotiation id) and JSON value.

    The headers are written here directly, as the CloudEvents SDK's Kafka binding writes them (a
    unit test holds the two equal): building the SDK's event object first cost ~45 µs an event,
    a tenth of the worker's time per command.
    """
    occurred_at = _ce_time(event.occurred_at)
    negotiation_id = event.negotiation_id
    headers = {
        "ce_specversion": b"1.0",
        "ce_id": event.event_id.encode(),
        "ce_source": f"/negotiations/{negotiation_id}".encode(),
        "ce_type": _CE_TYPES[event.type],
        "content-type": b"application/json",
        "ce_subject": negotiation_id.encode(),
        "ce_time": occurred_at.encode(),
        "ce_sequence": str(event.sequence).encode(),
    }
    return KafkaMessage(headers=headers, key=negotiation_id.encode(), value=event.model_dump_json().encode())


def decode_event_value(value: bytes) -> Event:
    """The event from a CloudEvent's data (the value alone carries the whole event)."""
    try:
        return EVENT_DECODER(value)
    except ValidationError as exc:
        raise _invalid("event", exc) from exc


def decode_event(headers: Headers | Mapping[str, bytes], value: bytes) -> Event:
    """Decode a binary-mode CloudEvent and check that its headers agree with its data.

    The required CloudEvents attributes are checked here, as the SDK's ``from_binary`` checks
    them (a unit test decodes the SDK's messages), at a sixth of its cost per event.
    """
    kind = type(headers)  # (a list of pairs, as a consumer gives them: no ABC check for the common case)
    if kind is list or kind is tuple or not (kind is dict or isinstance(headers, Mapping)):
        attributes: Mapping[str, bytes] = dict(headers)
    else:
        attributes = headers  # type: ignore[assignment]
    if attributes.get("ce_specversion") != b"1.0":
        raise DecodeError("not a CloudEvent 1.0 in binary mode (header ce_specversion)")
    for required in ("ce_id", "ce_source", "ce_type"):
        if not attributes.get(required):
            raise DecodeError(f"a CloudEvent needs the header {required}")
    event = decode_event_value(value)
    if attributes["ce_id"] != event.event_id.encode() or attributes["ce_type"] != _CE_TYPES[event.type]:
        raise DecodeError("CloudEvent headers do not match the event in the value")
    return event


def encode_state(state: NegotiationState, cache: StateDocumentCache | None = None) -> bytes:
    """The negotiation's full shared state, as the state topic carries it; drawn through the
    caller's ``cache`` (only the rows events touched since are built again), or whole without."""
    return orjson.dumps(shared_state_data(state, cache))


def encode_result(result: CommandResult) -> bytes:
    return result.model_dump_json().encode()


def decode_result(value: bytes) -> CommandResult:
    return RESULT_ADAPTER.validate_json(value)


def dead_letter(
    *,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
    consumer: str,
) -> bytes:
    def text(raw: bytes | None) -> str | None:
        if raw is None:
            return None
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return base64.b64encode(raw).decode()

    kept = value
    if value is not None and len(value) > DEAD_LETTER_VALUE_LIMIT:
        # A dead letter must fit in a message itself, or it would block the topic it came from.
        digest = hashlib.sha256(value).hexdigest()
        reason = f"{reason} (value of {len(value)} bytes, sha256 {digest}; the first {DEAD_LETTER_VALUE_LIMIT} kept)"
        kept = value[:DEAD_LETTER_VALUE_LIMIT]
    return (
        DeadLetter(
            topic=topic,
            partition=partition,
            offset=offset,
            key=text(key),
            value_base64=None if kept is None else base64.b64encode(kept).decode(),
            reason=reason,
            error=error,
            at=datetime.now(UTC),
            consumer=consumer,
        )
        .model_dump_json()
        .encode()
    )
