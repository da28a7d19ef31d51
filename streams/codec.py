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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import TypeAdapter, ValidationError

from schemas.commands import Command
from schemas.deadletters import DeadLetter
from schemas.documents import SharedState
from schemas.events import EVENT_ADAPTER, Event
from schemas.results import CommandResult

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
RESULT_ADAPTER: TypeAdapter[CommandResult] = TypeAdapter(CommandResult)
EVENT_TYPE_PREFIX = "nl.koopkracht."
_JSON = JSONFormat()
DEAD_LETTER_VALUE_LIMIT = 64 * 1024

Headers = Sequence[tuple[str, bytes]]


class DecodeError(ValueError):
    """Bytes that are not a valid message of the topic; the message says what is wrong."""


def encode_command(command: Command) -> bytes:
    return command.model_dump_json().encode()


def decode_command(value: bytes | None) -> Command:
    if value is None:
        raise DecodeError("empty message (no value)")
    try:
        return COMMAND_ADAPTER.validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise DecodeError(f"not a valid command: {where}: {first['msg']}") from exc


def encode_event(event: Event) -> KafkaMessage:
    """The event as a binary-mode CloudEvent: headers, key (the negotiation id) and JSON value."""
    cloud_event = CloudEvent(
        attributes={
            "id": event.event_id,
            "type": EVENT_TYPE_PREFIX + event.type,
            "source": f"/negotiations/{event.negotiation_id}",
            "subject": event.negotiation_id,
            "time": event.occurred_at,
            "datacontenttype": "application/json",
            "sequence": str(event.sequence),
        },
        data=event.model_dump_json().encode(),
    )
    return to_binary(cloud_event, _JSON, key_mapper=lambda _: event.negotiation_id.encode())


def decode_event_value(value: bytes) -> Event:
    """The event from a CloudEvent's data (the value alone carries the whole event)."""
    return EVENT_ADAPTER.validate_json(value)


def decode_event(headers: Headers | Mapping[str, bytes], value: bytes) -> Event:
    """Decode a binary-mode CloudEvent and check that its headers agree with its data."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    message = KafkaMessage(headers=dict(pairs), key=None, value=value)
    cloud_event = from_binary(message, _JSON)
    event = decode_event_value(value)
    if cloud_event.get_id() != event.event_id or cloud_event.get_type() != EVENT_TYPE_PREFIX + event.type:
        raise DecodeError("CloudEvent headers do not match the event in the value")
    return event


def encode_state(state: SharedState) -> bytes:
    return state.model_dump_json().encode()


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
