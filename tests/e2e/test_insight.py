"""The what-if and the suggestions on the running stack: who may ask, what each party learns (names
for the coordinator, counts for a member, nothing for the vendor), that nothing is written, and a
what-if input moved on the board in a real browser."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import browser, shot, sign_in
from tests.e2e.test_explain import coalition

__all__ = ["browser"]  # the browser fixture, shared with the dashboard's tests

DROP_LOCATION = {"drop": ["data-location"]}
"""Leaving data location out of the demand: Universiteit Leiden (a must on NL, weight 3 of 6), served
today, is left behind; Hogeschool Rotterdam (a must on EU or EEA) is served neither today (the
target is NL) nor then; ROC Zuid (no must) is served either way."""


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    return body


def test_the_what_if_for_each_party_writes_nothing(stack: RunningStack) -> None:
    # Given a negotiation with three members, a conflict on data location
    world = coalition(stack)
    nid, api = world["nid"], world["api"]
    (leiden_id, _), (rotterdam_id, rotterdam_key), _ = world["members"]
    path = f"/v1/negotiations/{nid}/what-if"
    before = api.get(f"/v1/negotiations/{nid}").json()["sequence"]

    # When the coordinator asks what leaving data location out would do
    answer = api.post(path, json=DROP_LOCATION)
    # Then the item leaves the demand and Leiden is left behind, by name
    assert answer.status_code == 200, answer.text
    what_if = answer.json()
    assert [(c["key"], c["change"]) for c in what_if["changes"]] == [("data-location", "leaves")]
    assert [m["name"] for m in what_if["left_behind"]["names"]] == ["Universiteit Leiden"]
    assert [m["name"] for m in what_if["not_served"]["names"]] == ["Universiteit Leiden", "Hogeschool Rotterdam"]
    assert what_if["now_served"] == {"members": 0, "weight_share": 0.0, "names": []}
    assert (what_if["served_share_today"], what_if["served_share"]) == (4 / 6, 1 / 6)
    # and a coverage of 0.6 would ask 30 days of retention instead of 14.5
    tried = api.post(path, json={"coverage": 0.6}).json()
    assert [(c["key"], c["target_before"], c["target_after"]) for c in tried["changes"]] == [
        ("diagnostic-data-retention", 14.5, 30)
    ]
    assert tried["policy"] == {"inclusion_share": 0.5, "coverage": 0.6}

    # When a member asks the same: counts and weight shares, nobody's name or id
    member = stack.client(rotterdam_key).post(path, json=DROP_LOCATION)
    assert member.status_code == 200, member.text
    assert member.json()["left_behind"] == {"members": 1, "weight_share": 0.5, "names": None}
    assert "Universiteit Leiden" not in member.text and leiden_id not in member.text
    # and a member may try its own concessions only
    theirs = {"concessions": [{"member_id": leiden_id, "item_key": "data-location", "position": None}]}
    problem(stack.client(rotterdam_key).post(path, json=theirs), 403)
    mine = {"concessions": [{"item_key": "data-location", "position": {"priority": "should", "accepted": ["EU"]}}]}
    own = stack.client(rotterdam_key).post(path, json=mine)
    assert own.status_code == 200, own.text
    # (with only Leiden's must considered, NL is common ground: the same target, no conflict)
    line = {d["key"]: d for d in own.json()["demand"]}["data-location"]
    assert (line["target"], line["conflict"], own.json()["changes"]) == (["NL"], False, [])

    # Then the vendor is refused (the live demand is never its), an outsider finds nothing
    for key, status in ((world["vendor_key"], 403), (world["outsider_key"], 404)):
        refused = problem(stack.client(key).post(path, json=DROP_LOCATION), status)
        assert "Universiteit Leiden" not in str(refused) and leiden_id not in str(refused)
        assert rotterdam_id not in str(refused)

    # And bad input is a clear 422, bounded requests included
    assert "drop[0]" in problem(api.post(path, json={"drop": ["no-such-item"]}), 422)["detail"]
    problem(api.post(path, json={"coverage": 2}), 422)
    many = {"concessions": [{"member_id": leiden_id, "item_key": "data-location"}] * 51}
    problem(api.post(path, json=many), 422)
    both = {"drop": ["data-location"], "add": ["data-location"]}
    assert "both dropped and added" in problem(api.post(path, json=both), 422)["detail"]

    # And nothing was written by any of it
    assert api.get(f"/v1/negotiations/{nid}").json()["sequence"] == before


def test_the_suggestions_are_the_coordinators(stack: RunningStack) -> None:
    # Given the negotiation with its conflict on data location
    world = coalition(stack)
    nid, api = world["nid"], world["api"]
    (leiden_id, leiden_key), (rotterdam_id, _), _ = world["members"]
    path = f"/v1/negotiations/{nid}/suggestions"
    # When the coordinator asks for suggestions
    answer = api.get(path)
    assert answer.status_code == 200, answer.text
    # Then the conflict ends if Rotterdam (weight 2, lighter than Leiden) also accepted NL
    (conflict,) = answer.json()["conflicts"]
    assert (conflict["item_key"], conflict["option"], conflict["members"]) == ("data-location", "NL", 1)
    assert [c["member_id"] for c in conflict["concessions"]] == [rotterdam_id]
    assert "Hogeschool Rotterdam also accepted NL" in conflict["text"]
    # And nobody else may ask: members and the vendor 403, an outsider 404, naming nobody
    for key, status in ((leiden_key, 403), (world["vendor_key"], 403), (world["outsider_key"], 404)):
        refused = stack.client(key).get(path)
        assert problem(refused, status)
        assert rotterdam_id not in refused.text and "Hogeschool Rotterdam" not in refused.text
        assert leiden_id not in refused.text


def test_a_what_if_input_moved_on_the_board(browser: object, stack: RunningStack) -> None:
    # Given the negotiation, and its coordinator on the board
    world = coalition(stack)
    board = f"{stack.base_url}/dashboard/n/{world['nid']}"
    coordinator = sign_in(browser, stack, world["coordinator_key"])
    coordinator.goto(board)  # type: ignore[attr-defined]
    panel = coordinator.locator("#what-if")  # type: ignore[attr-defined]
    panel.wait_for(state="visible", timeout=10_000)
    # and the suggestions name the member that would end the conflict
    assert "Hogeschool Rotterdam" in coordinator.locator("#suggestions").inner_text()  # type: ignore[attr-defined]
    # When the coordinator types a coverage of 0.6
    coverage = panel.locator("#what-if-coverage")
    coverage.fill("0.6")
    # Then the difference appears without sending the form: retention would ask 30 instead of 14.5
    row = panel.locator("#what-if-changes tr[data-key='diagnostic-data-retention']")
    row.wait_for(state="visible", timeout=10_000)
    assert "14.5 → 30" in row.inner_text()
    # When it also ticks "leave out data location"
    panel.get_by_label("leave out data-location").check()
    # Then Leiden is named among those left behind
    left = panel.locator("#what-if-left-behind")
    left.filter(has_text="Universiteit Leiden").wait_for(timeout=10_000)
    shot(coordinator, "what-if-coordinator")
    # When it tries the suggestion that ends the conflict
    coordinator.locator("#suggestions li[data-item='data-location'] a.try").click()  # type: ignore[attr-defined]
    coordinator.wait_for_url("**/what-if?**")  # type: ignore[attr-defined]
    # Then the what-if carries Rotterdam's concession, and the coalition would stay as it is today
    assert "data-location" in coordinator.locator("#what-if-conceded").inner_text()  # type: ignore[attr-defined]
    assert coordinator.locator("#what-if-same").is_visible()  # type: ignore[attr-defined]

    # When a member sends the same form without script: the page comes back with counts only
    (_, rotterdam_key) = world["members"][1]
    context = browser.new_context(java_script_enabled=False)  # type: ignore[attr-defined]
    member = context.new_page()
    member.goto(f"{stack.base_url}/signin?lang=nl")
    token = stack.owner_tokens.get(rotterdam_key, rotterdam_key)
    member.get_by_label("persoonlijke token").fill(token)
    member.get_by_role("button", name="Inloggen").click()
    member.goto(board)
    member.locator("#what-if-coverage").fill("0.6")
    member.get_by_label("weglaten data-location").check()
    member.get_by_role("button", name="Toon het verschil").click()
    member.wait_for_url("**/what-if?**")
    left_nl = member.locator("#what-if-left-behind")
    assert left_nl.get_attribute("data-members") == "1"
    assert "1 lid" in left_nl.inner_text()
    assert "Universiteit Leiden" not in member.locator("#what-if").inner_text()
    assert "30" in member.locator("#what-if-changes").inner_text()
    shot(member, "what-if-member-nl")
    context.close()

    # And the vendor's board has no what-if, and asking for one is refused, naming nobody
    vendor = sign_in(browser, stack, world["vendor_key"])
    vendor.goto(board)  # type: ignore[attr-defined]
    assert vendor.locator("#what-if").count() == 0  # type: ignore[attr-defined]
    refused = vendor.goto(f"{board}/what-if?coverage=0.6&drop=data-location")  # type: ignore[attr-defined]
    assert refused.status == 403
    text = vendor.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "Universiteit Leiden" not in text and "Hogeschool Rotterdam" not in text
    fragment = vendor.goto(f"{board}/what-if?fragment=1&coverage=0.6")  # type: ignore[attr-defined]
    assert fragment.status == 403
