"""The OCDS export: an agreed negotiation as a release that the OCDS 1.1.5 schema accepts."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from jsonschema import Draft4Validator, FormatChecker

from schemas.commands import PlanCommitments
from schemas.negotiation import PlannedCommitment
from streams.core.ocds import NoAgreement, release
from tests.unit.builders import COORDINATOR, NOW, VENDOR, Negotiation, accept, counter, item, reject

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "data" / "ocds" / "release-schema.json").read_text())


def agreed() -> Negotiation:
    retention = item("retention-days", "at_most").model_copy(update={"unit": "days"})
    n = Negotiation(retention, item("no-telemetry"), item("location", "one_of"), item("exit-help"))
    n.invite("m-a", weight=3, name="University A").invite("m-b", weight=1, name="College B")
    n.position("m-a", "retention-days", "must", value=14)
    n.position("m-a", "no-telemetry", "must")
    n.position("m-b", "location", "must", accepted=["NL", "EU"])
    n.position("m-b", "exit-help", "must")
    n.publish()
    n.respond(counter("retention-days", value=14), accept("no-telemetry"), counter("location", option="EU"))
    n.respond(reject("exit-help"))
    n.propose().endorse("m-a", "accept")
    return n


def test_an_agreed_negotiation_is_a_valid_ocds_release() -> None:
    n = agreed()
    document = release(n.s, "ocds-test01")
    validator = Draft4Validator(SCHEMA, format_checker=FormatChecker())
    assert sorted(validator.iter_errors(document), key=str) == []
    # (and the validator does look: a release without tags, or with a wrong date, is refused)
    assert list(validator.iter_errors({**document, "tag": [], "date": "yesterday"}))
    assert document["ocid"] == f"ocds-test01-{n.s.negotiation_id}"
    assert document["buyer"] == {"id": COORDINATOR, "name": "SURF Cooperative"}
    roles = {p["id"]: p["roles"] for p in document["parties"]}
    assert roles == {COORDINATOR: ["buyer", "procuringEntity"], VENDOR: ["supplier", "tenderer"],
                     "m-a": ["interestedParty"], "m-b": ["interestedParty"]}  # fmt: skip
    # The tender's items are the published version's, with their targets in words
    tender = [i["description"] for i in document["tender"]["items"]]
    assert tender == ["retention days: at most 14 days", "no telemetry: required", "location: one of EU, NL",
                      "exit help: required"]  # fmt: skip
    # The contract carries the vendor's offer on each item, as endorsed
    terms = {i["koopkracht"]["key"]: i["koopkracht"] for i in document["contracts"][0]["items"]}
    assert terms["retention-days"] == {"key": "retention-days", "verdict": "counter", "value": 14, "round": 1,
                                       "demand_version": 1}  # fmt: skip
    assert terms["location"]["option"] == "EU"
    assert terms["exit-help"]["verdict"] == "reject"
    assert document["contracts"][0]["awardID"] == document["awards"][0]["id"]
    assert document["awards"][0]["suppliers"] == [{"id": VENDOR, "name": "Contoso Cloud"}]


def test_there_is_no_release_before_the_agreement() -> None:
    n = agreed()
    n.state = None
    for event in n.events[:-2]:  # before the endorsement and the agreement
        from streams.core.state import evolve

        n.state = evolve(n.state, event)
    with pytest.raises(NoAgreement):
        release(n.s, "ocds-test01")


def milestones(n: Negotiation) -> dict[str, dict[str, object]]:
    document = release(n.s, "ocds-test01")
    assert sorted(Draft4Validator(SCHEMA, format_checker=FormatChecker()).iter_errors(document), key=str) == []
    return {m["koopkracht"]["key"]: m for m in document["contracts"][0]["implementation"]["milestones"]}


def test_a_release_during_implementation_has_a_milestone_per_commitment_and_stays_valid() -> None:
    # Given the agreement (retention-days countered, no-telemetry accepted, location countered,
    # exit-help rejected), and the vendor's plan accepted: due on days 10, 20 and 30
    n = agreed()
    day = timedelta(days=1)
    plan = (
        PlannedCommitment(key="retention-days", due=NOW + 10 * day, note="Purge job shortened"),
        PlannedCommitment(key="no-telemetry", due=NOW + 20 * day),
        PlannedCommitment(key="location", due=NOW + 30 * day),
    )
    n.run(n.command(PlanCommitments, VENDOR, items=plan))
    n.accept_plan()
    # When no-telemetry is found met on day 2, location is delivered, and the hub ticks on day 11
    n.at(NOW + 2 * day).deliver("no-telemetry").verdict("no-telemetry").deliver("location")
    n.at(NOW + 11 * day).tick(NOW + 11 * day)
    # Then the release (tagged implementation) validates, with one milestone per commitment, none for exit-help
    document = release(n.s, "ocds-test01")
    assert document["tag"] == ["award", "contract", "implementation"]
    found = milestones(n)
    assert list(found) == ["retention-days", "no-telemetry", "location"]
    # met with its date; overdue is not met; delivered and awaiting a verdict is still scheduled
    assert {key: m["status"] for key, m in found.items()} == {
        "retention-days": "notMet",
        "no-telemetry": "met",
        "location": "scheduled",
    }
    assert {key: m.get("dateMet") for key, m in found.items()} == {
        "retention-days": None,
        "no-telemetry": "2025-03-03T12:00:00+00:00",
        "location": None,
    }
    assert [m["dueDate"] for m in found.values()] == [
        "2025-03-11T12:00:00+00:00",
        "2025-03-21T12:00:00+00:00",
        "2025-03-31T12:00:00+00:00",
    ]
    assert found["retention-days"]["description"] == "Purge job shortened"
    assert found["retention-days"]["id"] == f"{n.s.negotiation_id}-retention-days"
    assert found["location"]["koopkracht"] == {"key": "location", "status": "delivered", "deliveries": 1}
    # (the schema does look at milestones: our own word for a status would be refused)
    contract = document["contracts"][0]
    wrong = {**contract, "implementation": {"milestones": [{**found["location"], "status": "delivered"}]}}
    assert list(Draft4Validator(SCHEMA).iter_errors({**document, "contracts": [wrong]}))
    # When the delivery of location is found not met, it is not met until delivered again
    n.verdict("location", "not_met")
    assert milestones(n)["location"]["status"] == "notMet"
    n.deliver("location")
    assert milestones(n)["location"]["status"] == "scheduled"


def test_a_release_of_a_fulfilled_agreement_has_every_milestone_met_and_none_while_it_is_reopened() -> None:
    # Given every commitment planned, delivered and met
    n = agreed().plan().accept_plan()
    for key in list(n.s.commitments):
        n.deliver(key).verdict(key)
    assert n.s.phase == "fulfilled"
    # Then every milestone is met, and the release is valid
    assert {m["status"] for m in milestones(n).values()} == {"met"}
    # And while it is reopened there is no agreement to release
    n.reopen("location")
    with pytest.raises(NoAgreement):
        release(n.s, "ocds-test01")
