"""After the agreement (SPEC section 9), through HTTP only, with figures worked out by hand.

Given three members with weights 5 (A), 3 (B) and 2 (C), so W = 10, and three items that the
vendor answers: no-ai-training accepted, retention-days countered with 30 days, data-location
rejected. A and B accept the agreement: 8/10 >= 2/3, agreed. The commitments are the items the
vendor accepted or countered: no-ai-training (target true) and retention-days (target 30, offer
30); data-location promised nothing.

The checks of the delivery of no-ai-training: A met (5), B not met (3), C none, so the tally is
met 5/10 = 0.5, not met 3/10 = 0.3, checked 8/10 = 0.8; when B checks again, met, it is 0.8 /
0 / 0.8 (one check per member per delivery, replaceable).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator, FormatChecker

from tests.e2e.conftest import RunningStack
from tests.e2e.receiver import Receiver

ITEMS = [
    {"key": "no-ai-training", "title": "No training of AI on our data", "kind": "boolean", "category": "privacy"},
    {"key": "retention-days", "title": "Retention of diagnostic data", "kind": "at_most", "category": "privacy",
     "unit": "days"},
    {"key": "data-location", "title": "Where data is stored", "kind": "one_of", "category": "privacy",
     "options": ["NL", "EU", "EEA", "US"]},
]  # fmt: skip
OCDS_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "ocds" / "release-schema.json").read_text())


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail


def by_key(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["key"]: c for c in document["commitments"]}


def feed_types(client: httpx.Client, nid: str) -> list[str]:
    return [entry["type"] for entry in ok(client.get(f"/v1/negotiations/{nid}/events?limit=500"), 200)["events"]]


class Coalition:
    """The organisations of the module docstring, and a negotiation agreed between them."""

    def __init__(self, stack: RunningStack, title: str) -> None:
        _, coordinator_key = stack.organisation(f"{title} coop", "coordinator")
        self.vendor_id, vendor_key = stack.organisation(f"{title} vendor", "vendor")
        self.ids: dict[str, str] = {}
        keys = {}
        for name in ("A", "B", "C"):
            self.ids[name], keys[name] = stack.organisation(f"{title} member {name}", "member")
        self.coordinator, self.vendor = stack.client(coordinator_key), stack.client(vendor_key)
        self.a, self.b, self.c = (stack.client(keys[name]) for name in ("A", "B", "C"))
        opened = self.coordinator.post(
            "/v1/negotiations", json={"title": title, "vendor_id": self.vendor_id, "items": ITEMS}
        )
        self.nid = ok(opened, 201)["id"]
        for name, weight in (("A", 5), ("B", 3), ("C", 2)):
            self.post(self.coordinator, "/members", {"organisation_id": self.ids[name], "weight": weight}, 201)
        for member in (self.a, self.b):
            self.put(member, "/positions/no-ai-training", {"priority": "must"})
            self.put(member, "/positions/retention-days", {"priority": "must", "value": 30})
            self.put(member, "/positions/data-location", {"priority": "should", "accepted": ["NL", "EU"]})
        self.post(self.coordinator, "/demand/publish", None, 201)
        answers = [
            {"key": "no-ai-training", "verdict": "accept"},
            {"key": "retention-days", "verdict": "counter", "value": 30},
            {"key": "data-location", "verdict": "reject"},
        ]
        self.post(self.vendor, "/responses", {"demand_version": 1, "items": answers}, 201)
        self.post(self.coordinator, "/agreement/propose", None, 200)
        self.post(self.a, "/agreement/endorsements", {"decision": "accept"}, 201)
        endorsed = self.post(self.b, "/agreement/endorsements", {"decision": "accept"}, 201)
        assert endorsed["outcome"] == "agreed"

    def url(self, path: str) -> str:
        return f"/v1/negotiations/{self.nid}{path}"

    def post(self, client: httpx.Client, path: str, body: Any, status: int) -> Any:
        return ok(client.post(self.url(path), json=body), status)

    def put(self, client: httpx.Client, path: str, body: Any) -> Any:
        return ok(client.put(self.url(path), json=body), 200)

    def get(self, client: httpx.Client, path: str) -> Any:
        return ok(client.get(self.url(path)), 200)

    def phase(self) -> str:
        return str(self.get(self.coordinator, "")["phase"])


def test_from_the_agreement_to_fulfilled(stack: RunningStack) -> None:
    # Given an agreement (see the module docstring)
    c = Coalition(stack, "Commitments to fulfilled")

    # Then the items the vendor accepted or countered are its commitments, open and not yet planned
    agreed = c.get(c.coordinator, "/commitments")
    assert agreed["phase"] == "agreed"
    assert [(k["key"], k["status"], k["due"]) for k in agreed["commitments"]] == [
        ("no-ai-training", "open", None),
        ("retention-days", "open", None),
    ]
    assert by_key(agreed)["retention-days"]["target"] == 30
    assert by_key(agreed)["retention-days"]["offer"]["value"] == 30

    # When the vendor plans too little, or for the past, it is told what to mend, and nothing changes
    before = c.get(c.coordinator, "")["sequence"]
    partial = {"items": [{"key": "no-ai-training", "due": "2099-01-31"}]}
    refused(c.vendor.post(c.url("/commitments/plan"), json=partial), 422, "missing: retention-days")
    past = {"items": [{"key": "no-ai-training", "due": "2020-01-31"}, {"key": "retention-days", "due": "2099-03-31"}]}
    refused(c.vendor.post(c.url("/commitments/plan"), json=past), 422, "no-ai-training", "future")
    unknown = {"items": [{"key": "data-location", "due": "2099-01-31"}]}
    refused(c.vendor.post(c.url("/commitments/plan"), json=unknown), 422, "not a commitment")
    refused(c.coordinator.post(c.url("/commitments/plan/accept")), 409, "no plan")
    refused(c.a.post(c.url("/commitments/plan"), json=partial), 403)
    assert c.get(c.coordinator, "")["sequence"] == before

    # When it plans both, the coordinator asks for another, and accepts the second
    first = {"items": [{"key": "no-ai-training", "due": "2099-06-30"}, {"key": "retention-days", "due": "2099-12-31"}]}
    planned = c.post(c.vendor, "/commitments/plan", first, 201)
    assert planned["plan"]["plan"] == 1
    rejected = c.post(c.coordinator, "/commitments/plan/reject", {"comment": "AI training must stop sooner"}, 200)
    assert rejected["plan"] is None
    assert c.get(c.vendor, "/commitments")["plan_rejection"] == "AI training must stop sooner"
    second = {
        "items": [
            {"key": "no-ai-training", "due": "2099-01-31", "note": "Switch in the tenant settings"},
            {"key": "retention-days", "due": "2099-12-31T12:00:00+01:00"},
        ]
    }
    c.post(c.vendor, "/commitments/plan", second, 201)
    accepted = c.post(c.coordinator, "/commitments/plan/accept", None, 200)

    # Then the due dates hold (a plain date is the end of that day, UTC) and implementation starts
    assert accepted["phase"] == "implementing" == c.phase()
    dues = {k: v["due"] for k, v in by_key(accepted).items()}
    assert dues == {"no-ai-training": "2099-01-31T23:59:59Z", "retention-days": "2099-12-31T11:00:00Z"}
    assert by_key(accepted)["no-ai-training"]["note"] == "Switch in the tenant settings"

    # When the vendor delivers no-ai-training and the members check it in their own environments
    c.post(c.vendor, "/commitments/no-ai-training/delivered", {"evidence": "https://vendor.example/ai-off"}, 201)
    refused(c.vendor.post(c.url("/commitments/no-ai-training/delivered"), json={"evidence": "again"}), 409)
    refused(c.a.post(c.url("/commitments/retention-days/checks"), json={"verdict": "met"}), 409, "open")
    c.post(c.a, "/commitments/no-ai-training/checks", {"verdict": "met", "comment": "Off in our tenant"}, 201)
    c.post(c.b, "/commitments/no-ai-training/checks", {"verdict": "not_met", "comment": "Still on for us"}, 201)

    # Then the coordinator sees the weighted tally: met 5/10, not met 3/10, checked 8/10
    tally = by_key(c.get(c.coordinator, "/commitments"))["no-ai-training"]["tally"]
    assert (tally["met_share"], tally["not_met_share"], tally["checked_share"]) == (0.5, 0.3, 0.8)
    assert [(k["name"], k["verdict"]) for k in tally["checks"]] == [
        ("Commitments to fulfilled member A", "met"),
        ("Commitments to fulfilled member B", "not_met"),
    ]
    # and each member its own check only, the vendor none and no tally
    for member, verdict in ((c.a, "met"), (c.b, "not_met")):
        mine = by_key(c.get(member, "/commitments"))["no-ai-training"]
        assert mine["your_check"]["verdict"] == verdict
        assert mine["tally"] is None
    assert by_key(c.get(c.c, "/commitments"))["no-ai-training"]["your_check"] is None
    seen_by_vendor = by_key(c.get(c.vendor, "/commitments"))["no-ai-training"]
    assert (seen_by_vendor["tally"], seen_by_vendor["your_check"], seen_by_vendor["regressions"]) == (None, None, None)
    assert seen_by_vendor["evidence"] == "https://vendor.example/ai-off"
    assert "Still on for us" not in json.dumps(c.get(c.vendor, "/events"))
    assert "Still on for us" not in json.dumps(c.get(c.a, "/events"))

    # When B checks again (its check of this delivery is replaced)
    c.post(c.b, "/commitments/no-ai-training/checks", {"verdict": "met"}, 201)
    tally = by_key(c.get(c.coordinator, "/commitments"))["no-ai-training"]["tally"]
    assert (tally["met_share"], tally["not_met_share"], tally["checked_share"]) == (0.8, 0.0, 0.8)

    # When the coordinator finds it met, and retention-days is delivered and found met too
    met = c.post(c.coordinator, "/commitments/no-ai-training/verdict", {"verdict": "met"}, 200)
    assert by_key(met)["no-ai-training"]["status"] == "met"
    assert met["phase"] == "implementing"
    c.post(c.vendor, "/commitments/retention-days/delivered", {"evidence": "Retention set to 30 days"}, 201)
    fulfilled = c.post(c.coordinator, "/commitments/retention-days/verdict", {"verdict": "met"}, 200)

    # Then every commitment is met and the agreement is fulfilled, for every party at once
    assert fulfilled["phase"] == "fulfilled"
    for party in (c.coordinator, c.a, c.vendor):
        assert c.get(party, "/state")["phase"] == "fulfilled"
        assert [k["status"] for k in c.get(party, "/commitments")["commitments"]] == ["met", "met"]

    # And each party's feed holds what it may see: the vendor no checks, a member only its own
    vendor_feed, a_feed, coordinator_feed = (feed_types(p, c.nid) for p in (c.vendor, c.a, c.coordinator))
    assert coordinator_feed.count("CommitmentChecked") == 3
    assert a_feed.count("CommitmentChecked") == 1
    assert "CommitmentChecked" not in vendor_feed
    assert vendor_feed[-9:] == [
        "CommitmentsPlanned",
        "PlanRejected",
        "CommitmentsPlanned",
        "PlanAccepted",
        "CommitmentDelivered",
        "CommitmentVerdictGiven",
        "CommitmentDelivered",
        "CommitmentVerdictGiven",
        "AgreementFulfilled",
    ]

    # And the OCDS release carries a milestone per commitment, met, and stays valid
    release = c.get(c.a, "/export/ocds")
    assert list(Draft4Validator(OCDS_SCHEMA, format_checker=FormatChecker()).iter_errors(release)) == []
    milestones = release["contracts"][0]["implementation"]["milestones"]
    assert [(m["title"], m["status"], m["dueDate"][:10]) for m in milestones] == [
        ("No training of AI on our data", "met", "2099-01-31"),
        ("Retention of diagnostic data", "met", "2099-12-31"),
    ]
    assert all(m["dateMet"] for m in milestones)
    assert "implementation" in release["tag"]


def wait_until(read: Callable[[], Any], done: Callable[[Any], bool], timeout: float, what: str) -> Any:
    """Read until ``done`` holds of what was read (the scheduler and webhooks run on their own)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what} within {timeout} s; last read: {value}"
        time.sleep(0.1)


def test_overdue_regression_and_reopening(stack: RunningStack) -> None:
    # Given an agreement (see the module docstring), and the vendor and member A receiving webhooks
    c = Coalition(stack, "Commitments reopened")
    to_vendor, to_a = Receiver().start(), Receiver().start()
    try:
        for client, receiver in ((c.vendor, to_vendor), (c.a, to_a)):
            subscribed = client.post("/v1/subscriptions", json={"url": receiver.url, "negotiation_id": c.nid})
            ok(subscribed, 201)
        run_to_reopening(c, to_vendor, to_a)
    finally:
        to_vendor.stop()
        to_a.stop()


def run_to_reopening(c: Coalition, to_vendor: Receiver, to_a: Receiver) -> None:
    # When the vendor plans retention-days for a few seconds from now, and the plan is accepted
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    plan = {"items": [{"key": "no-ai-training", "due": "2099-01-31"}, {"key": "retention-days", "due": soon}]}
    c.post(c.vendor, "/commitments/plan", plan, 201)
    c.post(c.coordinator, "/commitments/plan/accept", None, 200)
    # and no-ai-training is delivered, checked by A and C, and found met: met 7/10, checked 7/10
    c.post(c.vendor, "/commitments/no-ai-training/delivered", {"evidence": "Tenant switch"}, 201)
    c.post(c.a, "/commitments/no-ai-training/checks", {"verdict": "met"}, 201)
    c.post(c.c, "/commitments/no-ai-training/checks", {"verdict": "met"}, 201)
    tally = by_key(c.get(c.coordinator, "/commitments"))["no-ai-training"]["tally"]
    assert (tally["met_share"], tally["not_met_share"], tally["checked_share"]) == (0.7, 0.0, 0.7)
    c.post(c.coordinator, "/commitments/no-ai-training/verdict", {"verdict": "met"}, 200)

    # Then once its date has passed, the hub's scheduler finds retention-days overdue, for every party
    overdue = wait_until(
        lambda: by_key(c.get(c.vendor, "/commitments"))["retention-days"],
        lambda commitment: commitment["status"] == "overdue",
        30,
        "retention-days overdue",
    )
    assert overdue["overdue_since"] > overdue["due"]
    assert by_key(c.get(c.a, "/commitments"))["retention-days"]["status"] == "overdue"
    release = c.get(c.coordinator, "/export/ocds")
    assert list(Draft4Validator(OCDS_SCHEMA, format_checker=FormatChecker()).iter_errors(release)) == []
    statuses = [m["status"] for m in release["contracts"][0]["implementation"]["milestones"]]
    assert statuses == ["met", "notMet"]

    # When it is delivered late and found not met, it is open again, and overdue again at the next tick
    c.post(c.vendor, "/commitments/retention-days/delivered", {"evidence": "Set to 45 days"}, 201)
    c.post(c.b, "/commitments/retention-days/checks", {"verdict": "not_met", "comment": "45 is not 30"}, 201)
    found = c.post(c.coordinator, "/commitments/retention-days/verdict", {"verdict": "not_met"}, 200)
    assert by_key(found)["retention-days"]["status"] in ("open", "overdue")
    wait_until(
        lambda: by_key(c.get(c.coordinator, "/commitments"))["retention-days"]["status"],
        lambda status: status == "overdue",
        30,
        "retention-days overdue again",
    )

    # When B reports that the met no-ai-training no longer holds
    refused(c.b.post(c.url("/commitments/retention-days/regressions"), json={"comment": "x"}), 409, "only a met")
    c.post(c.b, "/commitments/no-ai-training/regressions", {"comment": "The switch reset after the update"}, 201)

    # Then the coordinator reads who and why, B its own report, A only that there is one, the vendor nothing
    seen = by_key(c.get(c.coordinator, "/commitments"))["no-ai-training"]
    assert [(r["name"], r["comment"]) for r in seen["regressions"]] == [
        ("Commitments reopened member B", "The switch reset after the update")
    ]
    assert len(by_key(c.get(c.b, "/commitments"))["no-ai-training"]["regressions"]) == 1
    by_a = by_key(c.get(c.a, "/commitments"))["no-ai-training"]
    assert (by_a["regressions_reported"], by_a["regressions"]) == (1, [])
    by_vendor = by_key(c.get(c.vendor, "/commitments"))["no-ai-training"]
    assert (by_vendor["status"], by_vendor["regressions"], by_vendor["regressions_reported"]) == ("met", None, None)

    # When the coordinator reopens both; it may not propose before publishing the reopened items
    before = c.get(c.coordinator, "")
    assert (before["demand_version"], before["round"]) == (1, 1)
    reopened = c.post(c.coordinator, "/reopen", {"items": ["retention-days", "no-ai-training"]}, 200)
    assert (reopened["phase"], reopened["reopened"], reopened["commitments"]) == (
        "negotiating",
        ["no-ai-training", "retention-days"],
        [],
    )
    refused(c.coordinator.post(c.url("/agreement/propose")), 409, "reopened")

    # Then the next demand version holds only the reopened items and continues the numbering, as do rounds
    version = c.post(c.coordinator, "/demand/publish", None, 201)
    assert version["version"] == 2
    assert [i["key"] for i in version["items"]] == ["no-ai-training", "retention-days"]
    answers = [
        {"key": "no-ai-training", "verdict": "accept"},
        {"key": "retention-days", "verdict": "counter", "value": 20},
    ]
    assert c.post(c.vendor, "/responses", {"demand_version": 2, "items": answers}, 201)["round"] == 2
    c.post(c.coordinator, "/agreement/propose", None, 200)
    c.post(c.a, "/agreement/endorsements", {"decision": "accept"}, 201)
    assert c.post(c.b, "/agreement/endorsements", {"decision": "accept"}, 201)["outcome"] == "agreed"

    # And the new agreement makes both commitments anew, to be planned again
    again = c.get(c.coordinator, "/commitments")
    assert again["phase"] == "agreed"
    assert [(k["key"], k["status"], k["due"], k["deliveries"]) for k in again["commitments"]] == [
        ("no-ai-training", "open", None, 0),
        ("retention-days", "open", None, 0),
    ]
    assert by_key(again)["retention-days"]["offer"]["value"] == 20

    # And the webhooks told each what it may know: the vendor of the overdue item, not of checks nor
    # regressions; A of B's regression, without who or why
    vendor_messages = wait_until(
        to_vendor.messages, lambda got: "AgreementReached" in [m["type"] for m in got[-3:]], 30, "the vendor's hooks"
    )
    vendor_types = [m["type"] for m in vendor_messages]
    assert vendor_types.count("CommitmentOverdue") == 2
    assert "CommitmentChecked" not in vendor_types and "RegressionReported" not in vendor_types
    late = next(m for m in vendor_messages if m["type"] == "CommitmentOverdue")
    assert late["notices"][0]["text"].startswith("retention-days is overdue: it was due")
    a_messages = wait_until(
        to_a.messages, lambda got: "AgreementReached" in [m["type"] for m in got[-3:]], 30, "A's hooks"
    )
    (regression,) = [m for m in a_messages if m["type"] == "RegressionReported"]
    assert regression["data"] == {"item_key": "no-ai-training"}
    assert regression["notices"] == [
        {
            "code": "regression_reported",
            "text": "A member reports that no-ai-training no longer holds.",
            "params": {"item": "no-ai-training"},
        }
    ]
    assert [m["data"]["verdict"] for m in a_messages if m["type"] == "CommitmentChecked"] == ["met"]  # its own
