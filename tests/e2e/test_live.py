"""Parties learn what changed without polling: signed webhooks and the live stream (SSE)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import RunningStack, values_of
from tests.e2e.receiver import Receiver

ITEMS = [{"key": "no-ai-training"}, {"key": "data-location"}, {"key": "diagnostic-data-retention"}]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@dataclass
class Parties:
    nid: str
    ids: dict[str, str]
    clients: dict[str, httpx.Client]

    def __getitem__(self, name: str) -> httpx.Client:
        return self.clients[name]

    def feed(self, name: str) -> list[dict[str, Any]]:
        body = self.clients[name].get(f"/v1/negotiations/{self.nid}/events", params={"limit": 1000}).json()
        assert body["more"] is False
        return list(body["events"])


def parties(stack: RunningStack) -> dict[str, tuple[str, httpx.Client]]:
    made = {}
    for name, role in (("coordinator", "coordinator"), ("vendor", "vendor"), ("a", "member"), ("b", "member")):
        organisation_id, key = stack.organisation(f"{name.title()} {uuid.uuid4().hex[:6]}", role)
        made[name] = (organisation_id, stack.client(key))
    return made


def open_negotiation(stack: RunningStack, made: dict[str, tuple[str, httpx.Client]]) -> Parties:
    ids = {name: organisation_id for name, (organisation_id, _) in made.items()}
    clients = {name: client for name, (_, client) in made.items()}
    body = {"title": "Live negotiation", "vendor_id": ids["vendor"], "items": ITEMS}
    nid = clients["coordinator"].post("/v1/negotiations", json=body).json()["id"]
    for member, weight in (("a", 5), ("b", 3)):
        invited = clients["coordinator"].post(
            f"/v1/negotiations/{nid}/members", json={"organisation_id": ids[member], "weight": weight}
        )
        assert invited.status_code == 201
    return Parties(nid, ids, clients)


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def first_half(p: Parties) -> None:
    n = f"/v1/negotiations/{p.nid}"
    ok(p["a"].put(f"{n}/positions/no-ai-training", json={"priority": "must", "rationale": "secret-a"}), 200)
    ok(p["a"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "must", "value": 14}), 200)
    ok(p["b"].put(f"{n}/positions/data-location", json={"priority": "must", "accepted": ["NL", "EU"]}), 200)
    ok(p["b"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "should", "value": 30}), 200)
    ok(p["coordinator"].post(f"{n}/demand/publish"), 201)


def second_half(p: Parties) -> None:
    n = f"/v1/negotiations/{p.nid}"
    answer = {"demand_version": 1, "items": [
        {"key": "no-ai-training", "verdict": "accept"},
        {"key": "diagnostic-data-retention", "verdict": "counter", "value": 30},
        {"key": "data-location", "verdict": "counter", "option": "EU"},
    ]}  # fmt: skip
    ok(p["vendor"].post(f"{n}/responses", json=answer), 201)
    asked = ok(p["vendor"].post(f"{n}/clarifications", json={"item_key": "data-location", "question": "EEA?"}), 201)
    ok(p["coordinator"].post(f"{n}/clarifications/{asked['clarification_id']}/answer", json={"answer": "No."}), 200)
    ok(p["b"].put(f"{n}/positions/diagnostic-data-retention", json={"priority": "should", "value": 20}), 200)
    ok(p["coordinator"].post(f"{n}/demand/publish"), 201)
    final = {"demand_version": 2, "items": [{"key": "diagnostic-data-retention", "verdict": "counter", "value": 14}]}
    ok(p["vendor"].post(f"{n}/responses", json=final), 201)
    ok(p["coordinator"].post(f"{n}/agreement/propose"), 200)
    ok(p["a"].post(f"{n}/agreement/endorsements", json={"decision": "accept"}), 201)
    ok(p["b"].post(f"{n}/agreement/endorsements", json={"decision": "accept", "comment": "fine by us"}), 201)


def read_stream(
    client: httpx.Client, path: str, until: int, last_event_id: int | None = None, take: int | None = None
) -> list[dict[str, Any]]:
    """SSE messages until one with id >= ``until`` (or ``take`` of them), then disconnect."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    messages: list[dict[str, Any]] = []
    with client.stream("GET", path, headers=headers, timeout=httpx.Timeout(30)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
                continue
            if "data" in fields:
                messages.append({"id": int(fields["id"]), "event": fields["event"], "data": json.loads(fields["data"])})
            fields = {}
            if messages and (messages[-1]["id"] >= until or (take is not None and len(messages) >= take)):
                break
    return messages


def test_a_webhook_receiver_down_for_30_s_gets_every_delivery_in_order_and_signed(
    stack: RunningStack, receiver: Receiver
) -> None:
    # Given member A subscribes its receiver to every negotiation it is party to
    made = parties(stack)
    subscribed = ok(made["a"][1].post("/v1/subscriptions", json={"url": receiver.url}), 201)
    assert subscribed["secret"].startswith("whsec_")
    p = open_negotiation(stack, made)
    first_half(p)
    # When the receiver goes down for 30 s while the negotiation goes on
    receiver.stop()
    went_down = time.monotonic()
    second_half(p)
    time.sleep(max(0.0, 30 - (time.monotonic() - went_down)))  # the outage itself, not a wait for readiness
    receiver.start()
    # Then every event A may see from its invitation on arrives, once, in order, signed
    expected = [e["sequence"] for e in p.feed("a")]
    expected = expected[expected.index(next(e["sequence"] for e in p.feed("a") if e["type"] == "MemberInvited")) :]
    messages = receiver.wait_for(len(expected), timeout=60)
    assert [m["sequence"] for m in messages] == expected
    webhook = Webhook(subscribed["secret"])
    for headers, body in receiver.received:
        assert webhook.verify(body, headers)["sequence"] > 0  # raises when the signature is wrong
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == len(expected)
    # And the owner's delivery log shows the failed attempts of the outage
    log = ok(made["a"][1].get(f"/v1/subscriptions/{subscribed['id']}/deliveries", params={"limit": 500}), 200)
    assert {d["status"] for d in log} == {"delivered"}
    assert any(attempt["error"] for d in log for attempt in d["log"])
    # And A's messages tell it what the vendor's answers mean for it
    told = [n["text"] for m in messages if m["type"] == "VendorResponded" for n in m["notices"]]
    assert "The vendor countered diagnostic-data-retention with 30 days; your limit is 14: not met." in told
    assert told[-1] == "2 of your 2 must items are now satisfied."


def test_a_stream_resumed_with_last_event_id_loses_nothing_and_repeats_nothing(stack: RunningStack) -> None:
    p = open_negotiation(stack, parties(stack))
    first_half(p)
    path = f"/v1/negotiations/{p.nid}/stream"
    # Given member A reads its stream and disconnects after three messages
    before_break = read_stream(p["a"], path, until=10**9, take=3)
    # When the negotiation goes on while A is away, and A reconnects with Last-Event-ID
    second_half(p)
    visible = [e["sequence"] for e in p.feed("a")]
    after_break = read_stream(p["a"], path, until=visible[-1], last_event_id=before_break[-1]["id"])
    # Then A has exactly what an unbroken stream gives: every event it may see, once, in order
    unbroken = read_stream(p["a"], path, until=visible[-1])
    assert before_break + after_break == unbroken
    assert [m["id"] for m in unbroken] == visible


def test_the_stream_sends_heartbeats_while_nothing_happens(stack: RunningStack) -> None:
    p = open_negotiation(stack, parties(stack))
    started = time.monotonic()
    with p["a"].stream("GET", f"/v1/negotiations/{p.nid}/stream", params={"after": 10**6}, timeout=30) as response:
        assert response.status_code == 200
        comment = next(line for line in response.iter_lines() if line.startswith(":"))
    assert comment.startswith(":")
    assert time.monotonic() - started < 20


def test_the_vendor_never_receives_a_position_a_member_id_or_a_weight(stack: RunningStack, receiver: Receiver) -> None:
    # Given the vendor subscribes a webhook, and the negotiation runs to agreement
    made = parties(stack)
    ok(made["vendor"][1].post("/v1/subscriptions", json={"url": receiver.url}), 201)
    p = open_negotiation(stack, made)
    first_half(p)
    second_half(p)
    # When the vendor reads its feed and its stream, and its receiver gets its deliveries
    feed = p.feed("vendor")
    stream = read_stream(p["vendor"], f"/v1/negotiations/{p.nid}/stream", until=feed[-1]["sequence"])
    deliveries = receiver.wait_for(len(feed), timeout=30)
    # Then it saw the negotiation's course, and nothing about the members
    assert [m["sequence"] for m in deliveries] == [e["sequence"] for e in feed] == [m["id"] for m in stream]
    assert feed[-1]["type"] == "AgreementReached"
    text = json.dumps([feed, stream, deliveries])
    for member in ("a", "b"):
        assert p.ids[member] not in text
    hidden = ("PositionStated", "PositionWithdrawn", "MemberInvited", "EndorsementGiven", "weight", "rationale")
    for forbidden in (*hidden, "secret-a", "fine by us"):
        assert forbidden not in text, forbidden
    for figure in ("support_share", "must_share", "priority_score", "accepting_share"):
        assert set(values_of([feed, stream, deliveries], figure)) <= {None}, figure


def test_the_documented_state_consumer_follows_the_state_topic(stack: RunningStack) -> None:
    import subprocess
    import sys
    from pathlib import Path

    p = open_negotiation(stack, parties(stack))
    first_half(p)
    second_half(p)
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "state_consumer.py"
    assert stack.settings.kafka_bootstrap is not None
    done = subprocess.run(
        [sys.executable, str(example), "--bootstrap", stack.settings.kafka_bootstrap,
         "--prefix", stack.settings.topic_prefix, "--idle", "3"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    ours = [line for line in done.stdout.splitlines() if line.startswith(p.nid)]
    assert ours, done.stdout + done.stderr
    assert "phase=agreed" in ours[-1]
    assert "ready_to_endorse=True" in ours[-1]
