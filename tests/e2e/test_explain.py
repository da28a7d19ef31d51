"""The explanation of the joint demand over HTTP and on the board (SPEC section 4.1), on the
running stack: who reads it with which names, and a "why?" opened in a real browser."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import browser, shot, sign_in

__all__ = ["browser"]  # the browser fixture, shared with the dashboard's tests

ITEMS = [{"key": "diagnostic-data-retention"}, {"key": "data-location"}]


def coalition(stack: RunningStack) -> dict[str, Any]:
    """A negotiation with three members (weights 3, 2, 1) and positions on both items."""
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Nimbus Cloud", "vendor")
    members = [
        stack.organisation(name, "member") for name in ("Universiteit Leiden", "Hogeschool Rotterdam", "ROC Zuid")
    ]
    _, outsider_key = stack.organisation("Outsider", "member")
    api = stack.client(coordinator_key)
    opened = api.post("/v1/negotiations", json={"title": "Why", "vendor_id": vendor_id, "items": ITEMS})
    assert opened.status_code == 201, opened.text
    nid = opened.json()["id"]
    for (member_id, _), weight in zip(members, (3, 2, 1), strict=True):
        invited = api.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id, "weight": weight})
        assert invited.status_code == 201, invited.text
    positions = [
        ("diagnostic-data-retention", {"priority": "must", "value": 30, "rationale": "secret-a"}),
        ("diagnostic-data-retention", {"priority": "should", "value": 14.5}),
        ("diagnostic-data-retention", {"priority": "could", "value": 7}),
    ]
    for (_, key), (item_key, body) in zip(members, positions, strict=True):
        stated = stack.client(key).put(f"/v1/negotiations/{nid}/positions/{item_key}", json=body)
        assert stated.status_code == 200, stated.text
    for (_, key), accepted in zip(members[:2], (["NL"], ["EU", "EEA"]), strict=True):
        body = {"priority": "must", "accepted": accepted}
        assert stack.client(key).put(f"/v1/negotiations/{nid}/positions/data-location", json=body).status_code == 200
    return {
        "nid": nid,
        "api": api,
        "coordinator_key": coordinator_key,
        "vendor_key": vendor_key,
        "members": members,
        "outsider_key": outsider_key,
    }


def names_in(explained: dict[str, Any]) -> set[str]:
    return {
        p["member_name"]
        for item in explained["items"]
        if item["derivation"]
        for p in item["derivation"]["positions"]
        if p["member_name"] is not None
    }


def test_the_explanation_for_each_party(stack: RunningStack) -> None:
    # Given a negotiation with positions of three members
    world = coalition(stack)
    nid, api = world["nid"], world["api"]
    path = f"/v1/negotiations/{nid}/demand/explain"
    # When the coordinator asks why the demand is what it is
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    explained = answer.json()
    demand = api.get(f"/v1/negotiations/{nid}/demand").json()
    # Then every item's conclusion is the demand's, at the same sequence
    assert explained["sequence"] == demand["sequence"]
    for line, item in zip(demand["items"], explained["items"], strict=True):
        assert (item["key"], item["included"], item["target"], item["conflict"]) == (
            line["key"],
            line["included"],
            line["target"],
            line["conflict"],
        )
    retention, location = explained["items"]
    # the at_most item: the could position is not considered; C = 5, q·C = 5, reached first at 14.5
    assert retention["inclusion"]["because"] == "must"
    assert retention["inclusion"]["must_share"] == {"fraction": "1/2", "value": 0.5}
    derivation = retention["derivation"]
    assert derivation["considered"] == "must_and_should"
    assert (derivation["considered_weight"], derivation["threshold"]["fraction"]) == (5, "5/1")
    assert [(p["value"], p["cumulative"], p["reaches"]) for p in derivation["curve"]] == [
        (14.5, 5, True),
        (30, 3, False),
    ]
    assert retention["target"] == 14.5
    # the one_of item: no common option, NL (weight 3) wins the tally: a conflict
    assert location["derivation"]["intersection"] == []
    assert [(t["option"], t["weight"]) for t in location["derivation"]["tally"]][:3] == [
        ("NL", 3),
        ("EU", 2),
        ("EEA", 2),
    ]
    assert (location["target"], location["conflict"]) == (["NL"], True)
    # and the coordinator sees every considered position's member, no rationale
    assert names_in(explained) == {"Universiteit Leiden", "Hogeschool Rotterdam"}
    assert "secret-a" not in answer.text

    # When a member asks: the same figures, only its own position named
    (leiden_id, leiden_key), (rotterdam_id, _), _ = world["members"]
    member = stack.client(leiden_key).get(path)
    assert member.status_code == 200
    assert names_in(member.json()) == {"Universiteit Leiden"}
    assert rotterdam_id not in member.text and "Hogeschool Rotterdam" not in member.text
    assert [i["derivation"]["curve"] for i in member.json()["items"][:1]] == [derivation["curve"]]
    # …and everyone's once positions are transparent
    assert api.put(f"/v1/negotiations/{nid}/policy", json={"transparent_positions": True}).status_code == 200
    assert names_in(stack.client(leiden_key).get(path).json()) == {"Universiteit Leiden", "Hogeschool Rotterdam"}

    # Then the vendor is refused (403) and an outsider finds nothing (404), as problem details
    for key, status in ((world["vendor_key"], 403), (world["outsider_key"], 404)):
        refused = stack.client(key).get(path)
        assert refused.status_code == status
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "Universiteit Leiden" not in refused.text and leiden_id not in refused.text


def test_a_why_opened_on_the_board(browser: object, stack: RunningStack) -> None:
    # Given the negotiation, and a member of it on its board
    world = coalition(stack)
    board = f"{stack.base_url}/dashboard/n/{world['nid']}"
    (_, rotterdam_key) = world["members"][1]
    member = sign_in(browser, stack, rotterdam_key)
    member.goto(board)  # type: ignore[attr-defined]
    # When it opens the "why?" of the retention target
    why = member.locator("#why-diagnostic-data-retention")  # type: ignore[attr-defined]
    why.locator("summary").click()
    # Then the chart and the words are visible: the inclusion test, C and q·C, the conclusion
    chart = why.locator("svg.chart")
    chart.wait_for(state="visible", timeout=10_000)
    assert chart.locator("rect.bar").count() == 2
    assert chart.locator("rect.bar.target").count() == 1
    # (a horizontal line has no height, which Playwright counts as invisible: its label is checked)
    assert chart.locator("line.threshold").count() == 1
    assert chart.locator("text.threshold-label").text_content() == "q·C = 5"
    assert chart.locator("text.threshold-label").is_visible()
    text = why.inner_text()
    assert "Included: members with a must position hold 1/2 (50%) of the weight." in text
    assert "C = 5" in text and "q·C = 5" in text
    assert re.search(r"reaches q·C: 14\.5\.", text)
    # and the member sees its own position named, the other without a name
    assert "Hogeschool Rotterdam" in text and "a member" in text and "Universiteit Leiden" not in text
    # And the one_of "why?" shows the tally and says it is a conflict
    location = member.locator("#why-data-location")  # type: ignore[attr-defined]
    location.locator("summary").click()
    assert location.locator("table.tally").is_visible()
    assert "a conflict" in location.inner_text()
    # and its own form shows its value as it typed it (14.5, not the fraction 29/2)
    assert member.locator("#value-diagnostic-data-retention").input_value() == "14.5"  # type: ignore[attr-defined]
    why.scroll_into_view_if_needed()
    shot(member, "why-member")

    # When the coordinator opens the same "why?" in Dutch, it names both members and the chart is there
    coordinator = sign_in(browser, stack, world["coordinator_key"], language="nl")
    coordinator.goto(f"{board}?lang=nl")  # type: ignore[attr-defined]
    why_nl = coordinator.locator("#why-diagnostic-data-retention")  # type: ignore[attr-defined]
    why_nl.locator("summary", has_text="waarom?").click()
    why_nl.locator("svg.chart").wait_for(state="visible", timeout=10_000)
    text_nl = why_nl.inner_text()
    assert "Opgenomen" in text_nl and "Universiteit Leiden" in text_nl and "Hogeschool Rotterdam" in text_nl
    # And an open "why?" stays open when the board redraws itself live
    coordinator.evaluate("window.__notReloaded = true")  # type: ignore[attr-defined]
    (_, zuid_key) = world["members"][2]
    body = {"priority": "should", "value": 10}
    stated = stack.client(zuid_key).put(
        f"/v1/negotiations/{world['nid']}/positions/diagnostic-data-retention", json=body
    )
    assert stated.status_code == 200
    # ROC Zuid (weight 1) now says should 10: C = 6 and the target is 10
    coordinator.locator("#item-diagnostic-data-retention td.target").filter(has_text="10 dagen").wait_for(  # type: ignore[attr-defined]
        timeout=10_000
    )
    assert coordinator.evaluate("window.__notReloaded") is True  # type: ignore[attr-defined]
    assert coordinator.locator("#why-diagnostic-data-retention[open] svg.chart").is_visible()  # type: ignore[attr-defined]
    assert "C = 6" in coordinator.locator("#why-diagnostic-data-retention").inner_text()  # type: ignore[attr-defined]
    shot(coordinator, "why-coordinator-nl")
