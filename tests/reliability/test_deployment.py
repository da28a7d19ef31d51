"""Several instances of every process, as a deployment beyond one machine runs them.

PostgreSQL, three brokers, two workers, two API processes (each on its own port), two webhook
dispatchers, one projector writing and a second one waiting. A negotiation is driven to agreement
and on to fulfilment (SPEC section 9) through both APIs in turn; after every command the other API
is read, and must already show the command's events (read your writes across processes). Three
parties' webhooks must each arrive exactly once, none missing, in order. Midway, the projector
that writes is SIGKILLed: the waiting one takes over, and the commands after it still answer; how
long the takeover took is printed.

Runs with ``KOOPKRACHT_RUN_FAULTS=1`` (``make deployment-test``, or ``make faults``) and needs
``KOOPKRACHT_TEST_POSTGRES_URL``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from services.readmodel.store import create_db_engine
from services.readmodel.tables import Delivery, DeliveryAttempt
from tests.conftest import drop_postgres_database, postgres_database
from tests.e2e.receiver import Receiver
from tests.reliability.harness import Hub, HubSettings, LogLine, Service, wait_for
from tests.reliability.load import request_until_answered

pytestmark = [pytest.mark.slow, pytest.mark.faults, pytest.mark.timeout(900)]

ITEMS = [
    {"key": "no-ai-training", "title": "No training of AI on our data", "kind": "boolean", "category": "privacy"},
    {"key": "retention-days", "title": "Retention of diagnostic data", "kind": "at_most", "category": "privacy",
     "unit": "days"},
    {"key": "data-location", "title": "Where data is stored", "kind": "one_of", "category": "privacy",
     "options": ["NL", "EU", "EEA", "US"]},
]  # fmt: skip


@dataclass
class Step:
    """One command, the API that took it, and what reading through the other API showed."""

    what: str
    door: int
    status: int
    retries: int
    seconds: float


@dataclass
class TwoDoors:
    """Every party's clients on both API processes. Each command goes through the next API in turn;
    right after its 2xx, the coordinator's feed is read through the other API and must hold exactly
    the events the command caused."""

    urls: list[str]
    keys: dict[str, str]
    negotiation_id: str = ""
    seen: int = 0
    steps: list[Step] = field(default_factory=list)
    clients: dict[str, list[httpx.Client]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clients = {
            party: [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) for url in
                    self.urls]
            for party, key in self.keys.items()
        }  # fmt: skip

    def close(self) -> None:
        for clients in self.clients.values():
            for client in clients:
                client.close()

    def url(self, path: str) -> str:
        return f"/v1/negotiations/{self.negotiation_id}{path}"

    def command(self, party: str, method: str, path: str, body: Any, status: int, caused: list[str]) -> Any:
        door = len(self.steps) % 2
        retries: list[str] = []
        started = time.monotonic()
        response = request_until_answered(
            self.clients[party][door],
            method,
            path,
            json=body,
            idempotency_key=str(uuid.uuid4()),
            give_up_at=lambda: started + 120,
            on_retry=retries.append,
        )
        seconds = time.monotonic() - started
        what = f"{party} {method} {path}"
        assert response is not None, f"{what}: no answer within 120 s ({retries})"
        assert response.status_code == status, f"{what} through API {door + 1}: {response.text}"
        answer = response.json() if response.content else None
        if not self.negotiation_id:
            self.negotiation_id = answer["id"]
        # Then, through the other API at once: the command's events, and nothing else
        other = self.clients["coordinator"][1 - door]
        feed = other.get(self.url("/events"), params={"after": self.seen, "limit": 100})
        assert feed.status_code == 200, f"after {what}: API {2 - door} answered {feed.text}"
        events = feed.json()["events"]
        assert [e["type"] for e in events] == caused, (
            f"after {what} through API {door + 1}, API {2 - door} shows {[e['type'] for e in events]}"
        )
        self.seen = events[-1]["sequence"]
        self.steps.append(Step(what, door, response.status_code, len(retries), seconds))
        return answer

    def post(self, party: str, path: str, body: Any, status: int, *caused: str) -> Any:
        return self.command(party, "POST", self.url(path), body, status, list(caused))

    def put(self, party: str, path: str, body: Any, *caused: str) -> Any:
        return self.command(party, "PUT", self.url(path), body, 200, list(caused))

    def feed(self, party: str) -> list[dict[str, Any]]:
        body = self.clients[party][0].get(self.url("/events"), params={"limit": 500}).json()
        assert body["more"] is False
        return list(body["events"])


@pytest.fixture
def postgresql() -> Iterator[str]:
    url, name = postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture
def receivers() -> Iterator[dict[str, Receiver]]:
    running = {party: Receiver().start() for party in ("coordinator", "vendor", "a")}
    try:
        yield running
    finally:
        for receiver in running.values():
            receiver.stop()


def organisations(hub: Hub) -> tuple[dict[str, str], dict[str, str]]:
    """The coordinator, the vendor and members a, b and c: (their ids, their API keys)."""
    ids, keys = {}, {}
    with httpx.Client(base_url=hub.base_url, headers={"Authorization": f"Bearer {hub.admin_token}"}) as admin:
        for party, role in (("coordinator", "coordinator"), ("vendor", "vendor"), ("a", "member"), ("b", "member"),
                            ("c", "member")):  # fmt: skip
            created = admin.post("/v1/organisations", json={"name": f"Deployment {party}", "role": role})
            assert created.status_code == 201, created.text
            ids[party], keys[party] = created.json()["id"], created.json()["api_key"]
    return ids, keys


def at(line: LogLine) -> float:
    """A log line's time, as seconds since the epoch."""
    return datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00")).timestamp()


def projector_roles(hub: Hub) -> tuple[Service, Service]:
    """(the projector that holds the lock, the one that waits for it), once each has said so."""

    def said(service: Service, event: str) -> bool:
        return bool(service.find(event, 0, lambda line: line.get("lock") == "projector"))

    def roles() -> tuple[Service, Service] | None:
        first, second = hub.services["projector"], hub.services["projector-2"]
        if said(first, "lock held") and said(second, "waiting for the lock"):
            return first, second
        if said(second, "lock held") and said(first, "waiting for the lock"):
            return second, first
        return None

    found: tuple[Service, Service] = wait_for(
        roles, 90, lambda: "one projector to hold the lock, the other to wait\n" + hub.tails()
    )
    return found


def test_every_process_twice_reads_its_writes_and_delivers_each_webhook_once(
    tmp_path: Path, postgresql: str, receivers: dict[str, Receiver]
) -> None:
    # Given the deployment: PostgreSQL, 3 brokers, 2 workers, 2 APIs, 2 dispatchers, 2 projectors
    settings = HubSettings(
        workers=2,
        apis=2,
        dispatchers=2,
        projectors=2,
        database_url=postgresql,
        extra_env={
            # The receivers listen on loopback over http: allowed, as an operator allows an internal receiver.
            "KOOPKRACHT_WEBHOOK_ALLOW": "127.0.0.1",
            "KOOPKRACHT_WEBHOOK_ALLOW_HTTP": "true",
            "KOOPKRACHT_WEBHOOK_RETRY_MAX_S": "2",
        },
    )
    started = time.monotonic()
    with Hub(tmp_path / "hub", settings=settings) as hub:
        print(f"\nthe deployment was ready after {time.monotonic() - started:.0f} s: APIs at {', '.join(hub.api_urls)}")
        active, waiting = projector_roles(hub)
        # Then one projector writes and the other waits, outside the consumer group
        assert not waiting.find("partitions assigned")
        # And both dispatchers run side by side (PostgreSQL: no lock between them)
        for dispatcher in ("webhooks", "webhooks-2"):
            hub.services[dispatcher].wait_log("webhooks.ready", 0, 60)

        ids, keys = organisations(hub)
        doors = TwoDoors(hub.api_urls, keys)
        try:
            # And the coordinator, the vendor and member a subscribe to webhooks, each through another API
            for i, (party, receiver) in enumerate(receivers.items()):
                made = doors.clients[party][i % 2].post("/v1/subscriptions", json={"url": receiver.url})
                assert made.status_code == 201, made.text

            # When a negotiation is driven to agreement through both APIs in turn
            opened = {"title": "Deployment test", "vendor_id": ids["vendor"], "items": ITEMS}
            doors.command("coordinator", "POST", "/v1/negotiations", opened, 201, ["NegotiationOpened"])
            for member, weight in (("a", 5), ("b", 3), ("c", 2)):
                body = {"organisation_id": ids[member], "weight": weight}
                doors.post("coordinator", "/members", body, 201, "MemberInvited")
            for member in ("a", "b"):
                doors.put(member, "/positions/no-ai-training", {"priority": "must"}, "PositionStated")
                doors.put(member, "/positions/retention-days", {"priority": "must", "value": 30}, "PositionStated")
                position = {"priority": "should", "accepted": ["NL", "EU"]}
                doors.put(member, "/positions/data-location", position, "PositionStated")
            doors.post("coordinator", "/demand/publish", None, 201, "DemandPublished")
            answers = [
                {"key": "no-ai-training", "verdict": "accept"},
                {"key": "retention-days", "verdict": "counter", "value": 30},
                {"key": "data-location", "verdict": "reject"},
            ]
            doors.post("vendor", "/responses", {"demand_version": 1, "items": answers}, 201, "VendorResponded")
            doors.post("coordinator", "/agreement/propose", None, 200, "AgreementProposed")
            doors.post("a", "/agreement/endorsements", {"decision": "accept"}, 201, "EndorsementGiven")
            endorsed = doors.post(
                "b", "/agreement/endorsements", {"decision": "accept"}, 201, "EndorsementGiven", "AgreementReached"
            )
            assert endorsed["outcome"] == "agreed"
            before_kill = len(doors.steps)

            # When the projector that writes is SIGKILLed, and the vendor plans its commitments at once
            mark = waiting.mark()
            killed_at = time.time()
            hub.kill(active.name)
            dates = {"no-ai-training": "2099-01-31", "retention-days": "2099-12-31"}
            plan = {"items": [{"key": key, "due": due} for key, due in dates.items()]}
            doors.post("vendor", "/commitments/plan", plan, 201, "CommitmentsPlanned")
            answered_at = time.time()
            # Then the waiting projector took the lock, joined the group and projected: the command answered
            took_lock = waiting.wait_log("lock held", mark, 60, lambda line: line.get("lock") == "projector")
            took_over = waiting.wait_log("projector.ready", mark, 60)
            takeover = {
                "lock": at(took_lock) - killed_at,
                "partitions": at(took_over) - killed_at,
                "first answer": answered_at - killed_at,
            }
            # And the killed one, started again, waits in its turn
            restarted = hub.restart(active.name)
            active.wait_log("waiting for the lock", restarted, 60, lambda line: line.get("lock") == "projector")

            # When the commitments are delivered and found met, through both APIs in turn
            doors.post("coordinator", "/commitments/plan/accept", None, 200, "PlanAccepted")
            evidence = {"evidence": "https://vendor.example/ai-off"}
            doors.post("vendor", "/commitments/no-ai-training/delivered", evidence, 201, "CommitmentDelivered")
            doors.post("a", "/commitments/no-ai-training/checks", {"verdict": "met"}, 201, "CommitmentChecked")
            doors.post("coordinator", "/commitments/no-ai-training/verdict", {"verdict": "met"}, 200,
                       "CommitmentVerdictGiven")  # fmt: skip
            evidence = {"evidence": "Retention set to 30 days"}
            doors.post("vendor", "/commitments/retention-days/delivered", evidence, 201, "CommitmentDelivered")
            fulfilled = doors.post("coordinator", "/commitments/retention-days/verdict", {"verdict": "met"}, 200,
                                   "CommitmentVerdictGiven", "AgreementFulfilled")  # fmt: skip
            assert fulfilled["phase"] == "fulfilled"

            # Then every party's webhooks arrived, each exactly once, none missing, in order: the
            # coordinator every event, the vendor its own (its own numbering), member a every event
            # it may see from its invitation on
            invited = next(e["sequence"] for e in doors.feed("coordinator") if e["type"] == "MemberInvited")
            expected = {
                "coordinator": doors.feed("coordinator"),
                "vendor": doors.feed("vendor"),
                "a": [e for e in doors.feed("a") if e["sequence"] >= invited],
            }
            for party, receiver in receivers.items():
                receiver.wait_for(len(expected[party]), 60)
            engine = create_db_engine(postgresql)
            with Session(engine) as session:
                deliveries = session.exec(select(Delivery)).all()
                attempts = Counter(a.delivery_id for a in session.exec(select(DeliveryAttempt)).all())
            engine.dispose()
            assert {d.status for d in deliveries} == {"delivered"}
            assert set(attempts.values()) == {1}, "a delivery was sent more than once"
            for party, receiver in receivers.items():
                ids_seen = Counter(headers["webhook-id"] for headers, _ in receiver.received)
                assert set(ids_seen.values()) == {1}, f"{party} received a message twice: {ids_seen.most_common(2)}"
                got = [(m["sequence"], m["type"]) for m in receiver.messages()]
                assert got == [(e["sequence"], e["type"]) for e in expected[party]], party
        finally:
            doors.close()

        report(doors, before_kill, takeover, receivers, hub)


def report(
    doors: TwoDoors, before_kill: int, takeover: dict[str, float], receivers: dict[str, Receiver], hub: Hub
) -> None:
    per_door = Counter(step.door for step in doors.steps)
    print(
        f"{len(doors.steps)} commands: {per_door[0]} through API 1, {per_door[1]} through API 2; after each, "
        "the other API showed exactly its events"
    )
    print(
        f"retries: {sum(s.retries for s in doors.steps[:before_kill])} before the kill, "
        f"{sum(s.retries for s in doors.steps[before_kill:])} after; slowest command "
        f"{max(s.seconds for s in doors.steps[:before_kill]):.2f} s before the kill"
    )
    print(
        "projector takeover after SIGKILL: "
        + ", ".join(f"{what} after {seconds:.1f} s" for what, seconds in takeover.items())
    )
    print("webhooks: " + ", ".join(f"{party} {len(r.received)} once each, in order" for party, r in receivers.items()))
    print(json.dumps({"takeover_s": {k: round(v, 2) for k, v in takeover.items()}, "commands": len(doors.steps)}))
    if any(exit_.service for exit_ in hub.exits):
        print("processes that exited on their own: " + ", ".join(f"{e.service} ({e.code})" for e in hub.exits))
