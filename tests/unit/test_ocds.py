"""The OCDS export: an agreed negotiation as a release that the OCDS 1.1.5 schema accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft4Validator, FormatChecker

from streams.core.ocds import NoAgreement, release
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, counter, item, reject

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
