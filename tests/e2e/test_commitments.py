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
from pathlib import Path
from typing import Any

import httpx
from jsonschema import Draft4Validator, FormatChecker

from tests.e2e.conftest import RunningStack

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
