"""A whole negotiation through HTTP only, checked against figures worked out by hand from SPEC.md.

Given three members with weights 5 (A), 3 (B) and 2 (C), so W = 10, and five items:

| item              | kind     | A (5)                 | B (3)                  | C (2)        |
|-------------------|----------|-----------------------|------------------------|--------------|
| data-location     | one_of   | must {NL, EU}         | should {EU, EEA}       |              |
| retention-days    | at_most  | must 30               | should 60              | could 90     |
| no-telemetry      | boolean  | should                | must                   |              |
| support-hours     | at_least | could 8               |                        | should 12    |
| exit-assistance   | boolean  |                       |                        |              |

the joint demand under the default policy (inclusion 1/2, coverage 1) is:
- data-location: support 8/10, must 5/10, priority must, score (5·3+3·2)/30 = 0.7; considered
  are the must positions (A), so the target is A's set sorted: [EU, NL], no conflict.
- retention-days: support 1, must 0.5, score (15+6+2)/30 = 23/30; considered A and B (C = 8),
  the largest t with Σw(value >= t) >= 8 is 30.
- no-telemetry: support 0.8, must 0.3, score (10+9)/30 = 19/30, target true.
- support-hours: support 0.7 >= 1/2 so included, no must, priority should, score (5+4)/30 = 0.3;
  considered C only, target 12.
- exit-assistance: nobody, not included.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator, FormatChecker

from tests.e2e.conftest import RunningStack

ITEMS = [
    {"key": "data-location", "title": "Where data is stored", "kind": "one_of", "category": "privacy",
     "options": ["NL", "EU", "EEA", "US"]},
    {"key": "retention-days", "title": "Retention of diagnostic data", "kind": "at_most", "category": "privacy",
     "unit": "days"},
    {"key": "no-telemetry", "title": "No telemetry to the vendor", "kind": "boolean", "category": "privacy"},
    {"key": "support-hours", "title": "Support hours per day", "kind": "at_least", "category": "exit",
     "unit": "hours"},
    {"key": "exit-assistance", "title": "Assistance at exit", "kind": "boolean", "category": "exit"},
]  # fmt: skip


def ok(response: Any, status: int) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def terms_hash(negotiation_id: str, version: int, items: list[dict[str, Any]]) -> str:
    """SHA-256 of the canonical JSON of the version's terms: the items without support figures
    and conflict flags (what the vendor may not see)."""
    hidden = {"priority_score", "support_share", "must_share", "conflict"}
    terms = [{k: v for k, v in item.items() if k not in hidden} for item in items]
    document = {"negotiation_id": negotiation_id, "version": version, "items": terms}
    return hashlib.sha256(
        json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items}


def test_a_whole_negotiation_through_http(stack: RunningStack) -> None:
    # -- Given the organisations, created by the admin ------------------------------------------
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Vendor BV", "vendor")
    a_id, a_key = stack.organisation("University A", "member")
    b_id, b_key = stack.organisation("University B", "member")
    c_id, c_key = stack.organisation("College C", "member")
    coordinator, vendor = stack.client(coordinator_key), stack.client(vendor_key)
    a, b, c = stack.client(a_key), stack.client(b_key), stack.client(c_key)

    # -- When the coordinator opens the negotiation and invites the members -----------------------
    opened = ok(coordinator.post("/v1/negotiations", json={"title": "Cloud suite 2027", "vendor_id": vendor_id,
                                                           "items": ITEMS}), 201)  # fmt: skip
    nid = opened["id"]
    assert opened["phase"] == "collecting"
    assert [i["key"] for i in opened["items"]] == [i["key"] for i in ITEMS]
    for member_id, weight in ((a_id, 5), (b_id, 3), (c_id, 2)):
        invited = ok(coordinator.post(f"/v1/negotiations/{nid}/members",
                                      json={"organisation_id": member_id, "weight": weight}), 201)  # fmt: skip
        assert invited["weight"] == weight

    # -- And the members state their positions ---------------------------------------------------
    positions = [
        (a, "data-location", {"priority": "must", "accepted": ["NL", "EU"], "rationale": "Our DPIA requires it"}),
        (a, "retention-days", {"priority": "must", "value": 30}),
        (a, "no-telemetry", {"priority": "should"}),
        (a, "support-hours", {"priority": "could", "value": 8}),
        (b, "data-location", {"priority": "should", "accepted": ["EU", "EEA"]}),
        (b, "retention-days", {"priority": "should", "value": 60}),
        (b, "no-telemetry", {"priority": "must"}),
        (c, "retention-days", {"priority": "could", "value": 90}),
        (c, "support-hours", {"priority": "should", "value": 12}),
    ]
    for client, key, position in positions:
        stated = ok(client.put(f"/v1/negotiations/{nid}/positions/{key}", json=position), 200)
        assert stated["item_key"] == key and stated["priority"] == position["priority"]

    # -- Then the live joint demand is the one worked out by hand --------------------------------
    demand = ok(c.get(f"/v1/negotiations/{nid}/demand"), 200)
    items = by_key(demand["items"])
    assert items["data-location"] == {"key": "data-location", "kind": "one_of", "included": True,
                                      "priority": "must", "priority_score": pytest.approx(0.7),
                                      "support_share": 0.8, "must_share": 0.5, "target": ["EU", "NL"],
                                      "conflict": False}  # fmt: skip
    assert items["retention-days"]["target"] == 30
    assert items["retention-days"]["priority_score"] == pytest.approx(23 / 30)
    assert (items["retention-days"]["support_share"], items["retention-days"]["must_share"]) == (1.0, 0.5)
    assert items["no-telemetry"]["target"] is True
    assert items["no-telemetry"]["priority_score"] == pytest.approx(19 / 30)
    assert (items["no-telemetry"]["support_share"], items["no-telemetry"]["must_share"]) == (0.8, 0.3)
    assert items["support-hours"]["included"] is True and items["support-hours"]["priority"] == "should"
    assert items["support-hours"]["target"] == 12
    assert items["support-hours"]["priority_score"] == pytest.approx(0.3)
    assert items["exit-assistance"]["included"] is False and items["exit-assistance"]["target"] is None
    # The vendor sees no live demand: nothing is published yet.
    assert vendor.get(f"/v1/negotiations/{nid}/demand").status_code == 404

    # -- A member sees only its own positions; the coordinator sees all, with rationales ----------
    own = ok(c.get(f"/v1/negotiations/{nid}/positions"), 200)
    assert {(p["member_id"], p["item_key"]) for p in own} == {(c_id, "retention-days"), (c_id, "support-hours")}
    every = ok(coordinator.get(f"/v1/negotiations/{nid}/positions"), 200)
    assert len(every) == 9
    assert {p["rationale"] for p in every if p["member_id"] == a_id} == {"Our DPIA requires it", None}

    # -- When the coordinator publishes version 1 -------------------------------------------------
    v1 = ok(coordinator.post(f"/v1/negotiations/{nid}/demand/publish"), 201)
    assert v1["version"] == 1
    assert [i["key"] for i in v1["items"]] == ["data-location", "retention-days", "no-telemetry", "support-hours"]
    assert v1["hash"] == terms_hash(nid, 1, v1["items"])

    # -- Then the vendor reads it without support figures, and sees no members ---------------------
    seen_by_vendor = ok(vendor.get(f"/v1/negotiations/{nid}/demand"), 200)
    assert seen_by_vendor["version"] == 1 and seen_by_vendor["hash"] == v1["hash"]
    # The vendor can check the hash against what it sees: it covers no hidden figure.
    assert terms_hash(nid, 1, seen_by_vendor["items"]) == v1["hash"]
    for item in seen_by_vendor["items"]:
        assert item["support_share"] is None and item["must_share"] is None and item["priority_score"] is None
    summary = ok(vendor.get(f"/v1/negotiations/{nid}"), 200)
    assert summary["phase"] == "negotiating" and summary.get("members") is None and summary.get("policy") is None

    # -- When the vendor answers in round 1 --------------------------------------------------------
    round1 = ok(vendor.post(f"/v1/negotiations/{nid}/responses", json={"demand_version": 1, "items": [
        {"key": "data-location", "verdict": "accept"},
        {"key": "retention-days", "verdict": "counter", "value": 45},
        {"key": "no-telemetry", "verdict": "reject", "comment": "needed for security"},
        {"key": "support-hours", "verdict": "accept"},
    ]}), 201)  # fmt: skip
    assert round1["round"] == 1

    # Then: A is unsatisfied (45 > 30 on a must), B too (no-telemetry rejected), C has no must.
    state = ok(coordinator.get(f"/v1/negotiations/{nid}/state"), 200)
    assert state["round"] == 1 and state["demand_version"] == 1
    assert state["cohesion"] == pytest.approx(0.2)
    satisfied = {s["organisation_id"]: s["satisfied"] for s in state["satisfaction"]}
    assert satisfied == {a_id: False, b_id: False, c_id: True}
    status = {i["key"]: (i["status"], i["settled"]) for i in state["items"]}
    assert status == {"data-location": ("accepted", True), "retention-days": ("countered", False),
                      "no-telemetry": ("rejected", False), "support-hours": ("accepted", True),
                      "exit-assistance": ("pending", False)}  # fmt: skip
    assert state["ready_to_endorse"] is False
    own_state = ok(a.get(f"/v1/negotiations/{nid}/state"), 200)
    assert [s["organisation_id"] for s in own_state["satisfaction"]] == [a_id]
    assert own_state["satisfaction"][0]["unsatisfied_items"] == ["retention-days"]
    vendor_state = ok(vendor.get(f"/v1/negotiations/{nid}/state"), 200)
    assert vendor_state.get("cohesion") is None and vendor_state.get("satisfaction") is None

    # -- The vendor asks, the coordinator answers ---------------------------------------------------
    asked = ok(vendor.post(f"/v1/negotiations/{nid}/clarifications",
                           json={"item_key": "retention-days", "question": "Do backups count?"}), 201)  # fmt: skip
    answered = ok(coordinator.post(f"/v1/negotiations/{nid}/clarifications/{asked['clarification_id']}/answer",
                                   json={"answer": "Yes, backups count."}), 200)  # fmt: skip
    assert answered["question"] == "Do backups count?" and answered["answer"] == "Yes, backups count."

    # -- Version 2 is published; an answer to version 1 is now a conflict -------------------------
    v2 = ok(coordinator.post(f"/v1/negotiations/{nid}/demand/publish"), 201)
    assert v2["version"] == 2 and v2["hash"] != v1["hash"]
    stale_answer = {"demand_version": 1, "items": [{"key": "no-telemetry", "verdict": "accept"}]}
    stale = vendor.post(f"/v1/negotiations/{nid}/responses", json=stale_answer)
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("application/problem+json")
    round2 = ok(vendor.post(f"/v1/negotiations/{nid}/responses", json={"demand_version": 2, "items": [
        {"key": "retention-days", "verdict": "counter", "value": 30},
        {"key": "no-telemetry", "verdict": "accept"},
    ]}), 201)  # fmt: skip
    assert round2["round"] == 2

    # Then every member is satisfied and every included must item is settled.
    state = ok(b.get(f"/v1/negotiations/{nid}/state"), 200)
    assert state["cohesion"] == 1.0 and state["ready_to_endorse"] is True

    # -- Propose; A accepts (0.5 < 2/3), B accepts (0.8 >= 2/3): agreed ------------------------------
    assert coordinator.get(f"/v1/negotiations/{nid}/export/ocds").status_code == 409  # no agreement yet
    proposed = ok(coordinator.post(f"/v1/negotiations/{nid}/agreement/propose"), 200)
    assert (proposed["phase"], proposed["demand_version"], proposed["round"]) == ("endorsing", 2, 2)
    first = ok(a.post(f"/v1/negotiations/{nid}/agreement/endorsements", json={"decision": "accept"}), 201)
    assert first["outcome"] is None
    second = ok(b.post(f"/v1/negotiations/{nid}/agreement/endorsements", json={"decision": "accept"}), 201)
    assert second["outcome"] == "agreed"
    late = c.post(f"/v1/negotiations/{nid}/agreement/endorsements", json={"decision": "reject"})
    assert late.status_code == 409

    # -- Then everybody reads the agreement; the vendor's feed names no member ---------------------
    for client in (coordinator, vendor, a, b, c):
        assert ok(client.get(f"/v1/negotiations/{nid}/state"), 200)["phase"] == "agreed"
    feed = ok(vendor.get(f"/v1/negotiations/{nid}/events", params={"limit": 1000}), 200)
    types = [e["type"] for e in feed["events"]]
    assert "PositionStated" not in types and "MemberInvited" not in types and "EndorsementGiven" not in types
    assert types[-1] == "AgreementReached" and feed["more"] is False
    text = json.dumps(feed)
    for member_id in (a_id, b_id, c_id):
        assert member_id not in text
    # -- And the agreement exports as an OCDS release, for the coalition only ---------------------
    release = ok(a.get(f"/v1/negotiations/{nid}/export/ocds"), 200)
    schema = json.loads((Path(__file__).resolve().parents[1] / "data" / "ocds" / "release-schema.json").read_text())
    assert list(Draft4Validator(schema, format_checker=FormatChecker()).iter_errors(release)) == []
    contract = {i["koopkracht"]["key"]: i["koopkracht"] for i in release["contracts"][0]["items"]}
    assert contract["retention-days"]["value"] == 30
    assert contract["no-telemetry"]["verdict"] == "accept"
    assert vendor.get(f"/v1/negotiations/{nid}/export/ocds").status_code == 403
    listed = ok(c.get("/v1/negotiations"), 200)
    assert [(n["id"], n["phase"], n["your_role"]) for n in listed] == [(nid, "agreed", "member")]
