"""The vendor's view on the running stack: its own gapless numbering everywhere, no member's time,
and past events shown under the current policy (SPEC section 1)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.receiver import Receiver
from tests.e2e.test_live import first_half, ok, open_negotiation, parties, read_stream, second_half

MEMBER_CONDUCT = {"MemberInvited", "PolicyChanged", "PositionStated", "PositionWithdrawn", "EndorsementGiven"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


def instant(text: str) -> str:
    """A time as the documents write it, cut to what identifies it: hh:mm:ss.ffffff."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).strftime("%H:%M:%S.%f")


def times_in(document: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(document, dict):
        for value in document.values():
            found |= times_in(value)
    elif isinstance(document, list):
        for value in document:
            found |= times_in(value)
    elif isinstance(document, str) and len(document) >= 19 and document[4] == "-" and document[10] == "T":
        try:
            found.add(instant(document))
        except ValueError:
            pass
    return found


def test_the_vendor_numbers_what_it_sees_from_1_without_gaps_and_sees_no_member_time(
    stack: RunningStack, receiver: Receiver
) -> None:
    # Given a whole negotiation, the vendor's receiver subscribed from the start
    made = parties(stack)
    subscribed = ok(made["vendor"][1].post("/v1/subscriptions", json={"url": receiver.url}), 201)
    p = open_negotiation(stack, made)
    first_half(p)
    second_half(p)
    n = f"/v1/negotiations/{p.nid}"
    # When the vendor reads its feed, stream, deliveries, delivery log, state, summary and listing
    feed = p.feed("vendor")
    count = len(feed)
    stream = read_stream(p["vendor"], f"{n}/stream", until=count)
    deliveries = receiver.wait_for(count, timeout=30)
    log = ok(p["vendor"].get(f"/v1/subscriptions/{subscribed['id']}/deliveries", params={"limit": 500}), 200)
    state = ok(p["vendor"].get(f"{n}/state"), 200)
    summary = ok(p["vendor"].get(n), 200)
    (listed,) = [x for x in ok(p["vendor"].get("/v1/negotiations"), 200) if x["id"] == p.nid]
    # Then each numbers exactly the entries the vendor may see, 1..n, with no gap
    expected = list(range(1, count + 1))
    assert [e["sequence"] for e in feed] == expected
    assert [m["id"] for m in stream] == expected
    assert [m["data"]["sequence"] for m in stream] == expected
    assert [m["sequence"] for m in deliveries] == expected
    assert sorted(d["sequence"] for d in log) == expected
    # (and the delivery log shows no hub-wide row number, whose gaps would count others' deliveries;
    # it pages by what the vendor sees of its own deliveries)
    assert all("id" not in d for d in log)
    paged: list[dict[str, Any]] = []
    page_ = p["vendor"].get(f"/v1/subscriptions/{subscribed['id']}/deliveries", params={"limit": 3})
    while True:
        paged += ok(page_, 200)
        if "next" not in page_.links:
            break
        page_ = p["vendor"].get(page_.links["next"]["url"])
    assert [d["message_id"] for d in paged] == [d["message_id"] for d in log]
    assert state["sequence"] == summary["sequence"] == listed["sequence"] == count
    # while the coordinator's count of the same negotiation is larger: the members acted too
    internal = ok(p["coordinator"].get(n), 200)["sequence"]
    assert internal > count
    # And the feed resumes in the vendor's own numbering
    later = ok(p["vendor"].get(f"{n}/events", params={"after": count - 2}), 200)
    assert [e["sequence"] for e in later["events"]] == [count - 1, count]
    # And no time of a member's action is anywhere in what the vendor reads, and its updated_at
    # is the time of the last event it may see
    everything = ok(p["coordinator"].get(f"{n}/events", params={"limit": 1000}), 200)["events"]
    seen_by_vendor = {instant(e["occurred_at"]) for e in everything if e["type"] not in MEMBER_CONDUCT}
    member_times = {instant(e["occurred_at"]) for e in everything if e["type"] in MEMBER_CONDUCT} - seen_by_vendor
    assert len(member_times) >= 5
    documents = [feed, stream, deliveries, log, state, summary, listed]
    assert times_in(documents) & member_times == set()
    assert instant(summary["updated_at"]) == instant(listed["updated_at"]) == instant(feed[-1]["occurred_at"])
    text = json.dumps(documents)
    assert f'"sequence": {internal}' not in text and f'"sequence":{internal}' not in text
    # And the vendor's board numbers its timeline the same way
    vendor_key = p["vendor"].headers["authorization"].removeprefix("Bearer ")
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as browser_like:
        assert browser_like.post("/signin", data={"api_key": stack.person_token(vendor_key)}).status_code == 303
        page = browser_like.get(f"/dashboard/n/{p.nid}/board").text
    assert f'data-sequence="{count}"' in page
    numbers = [int(k) for k in re.findall(r'<li data-type="[A-Za-z]+" data-sequence="(\d+)"', page)]
    assert numbers and max(numbers) == count and internal not in numbers


def test_a_revoked_transparency_hides_the_past_in_the_feed_the_stream_and_webhooks(
    stack: RunningStack, receiver: Receiver
) -> None:
    # Given transparent positions, member A states a must of 7 days, and transparency is turned off
    made = parties(stack)
    p = open_negotiation(stack, made)
    n = f"/v1/negotiations/{p.nid}"
    ok(p["coordinator"].put(f"{n}/policy", json={"transparent_positions": True}), 200)
    ok(p["a"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "must", "value": 7}), 200)
    ok(p["coordinator"].put(f"{n}/policy", json={"transparent_positions": False}), 200)
    # When member C is invited afterwards and subscribes, and A states a new value
    c_id, c = stack.organisation("Member C", "member")
    c_client = stack.client(c)
    ok(p["coordinator"].post(f"{n}/members", json={"organisation_id": c_id}), 201)
    ok(c_client.post("/v1/subscriptions", json={"url": receiver.url, "negotiation_id": p.nid}), 201)
    ok(p["a"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "must", "value": 6}), 200)
    ok(c_client.put(f"{n}/positions/no-ai-training", json={"priority": "must"}), 200)  # C's own: it sees it
    end = ok(p["coordinator"].get(n), 200)["sequence"]
    # Then C's feed, its stream from the start, and its webhooks show none of A's positions: the
    # only position event C meets is its own
    feed = ok(c_client.get(f"{n}/events", params={"limit": 1000}), 200)["events"]
    stream = read_stream(c_client, f"{n}/stream?after=0", until=end)
    deliveries = receiver.wait_for(1, timeout=30)
    conduct = {"PositionStated", "PositionWithdrawn"}
    assert [e["data"]["item_key"] for e in feed if e["type"] in conduct] == ["no-ai-training"]
    assert [m["data"]["data"]["item_key"] for m in stream if m["event"] in conduct] == ["no-ai-training"]
    assert [d["data"]["item_key"] for d in deliveries if d["type"] in conduct] == ["no-ai-training"]
    for seen in (feed, stream, deliveries):
        assert '"value": 7' not in json.dumps(seen) and '"value": 6' not in json.dumps(seen)
    # And so does member B's stream from the start, though it was open to B while transparency was on
    last_for_b = ok(p["b"].get(f"{n}/events", params={"limit": 1000}), 200)["events"][-1]["sequence"]
    stream_b = read_stream(p["b"], f"{n}/stream?after=0", until=last_for_b)
    assert [m for m in stream_b if m["event"] in conduct] == []


def test_webhooks_still_queued_when_transparency_is_revoked_are_cut_again(stack: RunningStack) -> None:
    # Given member B's receiver is down, and B subscribed to the negotiation
    made = parties(stack)
    p = open_negotiation(stack, made)
    n = f"/v1/negotiations/{p.nid}"
    receiver = Receiver()  # not started: every delivery to it fails and stays queued
    ok(p["b"].post("/v1/subscriptions", json={"url": receiver.url, "negotiation_id": p.nid}), 201)
    # When positions are made transparent, A states a must of 7 days (queued for B), and the
    # coordinator revokes the transparency before B's receiver is back
    ok(p["coordinator"].put(f"{n}/policy", json={"transparent_positions": True}), 200)
    ok(p["a"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "must", "value": 7}), 200)
    ok(p["coordinator"].put(f"{n}/policy", json={"transparent_positions": False}), 200)
    receiver.start()
    try:
        # Then B's receiver gets the two policy changes, in order, and never A's position, which
        # the current policy no longer shows B
        received = receiver.wait_for(2, timeout=60)
        assert [m["type"] for m in received] == ["PolicyChanged", "PolicyChanged"]
        log = ok(p["b"].get(f"/v1/subscriptions/{ok(p['b'].get('/v1/subscriptions'), 200)[0]['id']}/deliveries"), 200)
        assert sorted(d["event_type"] for d in log) == ["PolicyChanged", "PolicyChanged"]
    finally:
        receiver.stop()
