"""The wire format of events: binary-mode CloudEvents, written without the SDK on the hot path.

The CloudEvents SDK is the oracle: what ``encode_event`` writes is what the SDK's Kafka binding
writes, and what the SDK writes ``decode_event`` reads.
"""

from __future__ import annotations

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary, to_binary
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent

from schemas.events import Event
from streams.codec import EVENT_TYPE_PREFIX, DecodeError, decode_event, encode_event
from tests.unit.builders import Negotiation, accept, item


def history() -> list[Event]:
    n = Negotiation(item("no-ads"), item("retention-days", "at_most"))
    n.invite("uni", weight=3).invite("hbo", weight=1)
    n.position("uni", "no-ads").position("hbo", "retention-days", value=14).publish()
    n.respond(accept("no-ads"), accept("retention-days")).propose()
    return list(n.events)


def by_the_sdk(event: Event) -> KafkaMessage:
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
    return to_binary(cloud_event, JSONFormat(), key_mapper=lambda _: event.negotiation_id.encode())


def test_events_are_written_as_the_cloudevents_sdk_writes_them() -> None:
    events = history()
    assert {e.type for e in events} >= {"NegotiationOpened", "PositionStated", "DemandPublished", "VendorResponded"}
    for event in events:
        ours, theirs = encode_event(event), by_the_sdk(event)
        assert ours.headers == theirs.headers
        assert (ours.key, ours.value) == (theirs.key, theirs.value)
        # and the SDK reads ours back as the same CloudEvent
        parsed = from_binary(KafkaMessage(headers=ours.headers, key=None, value=ours.value), JSONFormat())
        assert parsed.get_id() == event.event_id
        assert parsed.get_type() == EVENT_TYPE_PREFIX + event.type
        assert decode_event(list(theirs.headers.items()), theirs.value) == event


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ce_specversion": None}, "ce_specversion"),
        ({"ce_specversion": b"0.3"}, "ce_specversion"),
        ({"ce_source": None}, "ce_source"),
        ({"ce_id": b"another-id"}, "do not match"),
        ({"ce_type": b"nl.koopkracht.PositionWithdrawn"}, "do not match"),
    ],
)
def test_a_message_whose_cloudevent_headers_are_wrong_is_refused(change: dict[str, bytes | None], message: str) -> None:
    event = history()[-1]
    headers = dict(encode_event(event).headers)
    for name, value in change.items():
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    with pytest.raises(DecodeError, match=message):
        decode_event(headers, encode_event(event).value)


def test_a_value_that_is_not_an_event_is_refused_with_where() -> None:
    event = history()[-1]
    with pytest.raises(DecodeError, match="not a valid event"):
        decode_event(encode_event(event).headers, b'{"type": "PositionStated"}')
