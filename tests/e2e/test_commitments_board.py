"""The commitments board (SPEC 9) in Chromium: after an agreement reached over the API, the vendor
plans and delivers, a member checks and the coordinator accepts the plan and gives its verdicts,
each through the dashboard's forms; each party sees what it may (the coordinator the weighted
checks, a member its own check, the vendor no check at all). The coordinator's board is kept as
``test-artifacts/coordinator-commitments.png``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import browser, shot, sign_in

__all__ = ["browser"]  # the browser fixture, shared with the dashboard's tests

RETENTION, TRAINING = "diagnostic-data-retention", "no-ai-training"


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def agreed(stack: RunningStack) -> tuple[str, dict[str, str]]:
    """A negotiation on two items agreed over the API: Universiteit Leiden (weight 3) and
    Hogeschool Rotterdam (weight 1) state their needs, the vendor accepts both, Leiden's
    acceptance (3/4 of the weight) agrees it. Its id, and each party's integration key."""
    _, coordinator = stack.organisation("SURF", "coordinator")
    vendor_id, vendor = stack.organisation("Nimbus Cloud", "vendor")
    leiden_id, leiden = stack.organisation("Universiteit Leiden", "member")
    rotterdam_id, rotterdam = stack.organisation("Hogeschool Rotterdam", "member")
    api = stack.client(coordinator)
    body = {"title": "Cloud suite", "vendor_id": vendor_id, "items": [{"key": TRAINING}, {"key": RETENTION}]}
    nid = ok(api.post("/v1/negotiations", json=body), 201)["id"]
    n = f"/v1/negotiations/{nid}"
    for member_id, weight in ((leiden_id, 3), (rotterdam_id, 1)):
        ok(api.post(f"{n}/members", json={"organisation_id": member_id, "weight": weight}), 201)
    ok(stack.client(leiden).put(f"{n}/positions/{TRAINING}", json={"priority": "must"}), 200)
    ok(stack.client(leiden).put(f"{n}/positions/{RETENTION}", json={"priority": "must", "value": 14}), 200)
    ok(stack.client(rotterdam).put(f"{n}/positions/{TRAINING}", json={"priority": "should"}), 200)
    ok(api.post(f"{n}/demand/publish"), 201)
    answers = [{"key": TRAINING, "verdict": "accept"}, {"key": RETENTION, "verdict": "accept"}]
    ok(stack.client(vendor).post(f"{n}/responses", json={"demand_version": 1, "items": answers}), 201)
    ok(api.post(f"{n}/agreement/propose"), 200)
    endorsed = ok(stack.client(leiden).post(f"{n}/agreement/endorsements", json={"decision": "accept"}), 201)
    assert endorsed["outcome"] == "agreed"
    keys = {"coordinator": coordinator, "vendor": vendor, "leiden": leiden, "rotterdam": rotterdam}
    return nid, keys


def send(page: Any, form: Any, button: str) -> None:
    """Click the form's button and wait for the board to come back with its outcome; a refusal fails."""
    with page.expect_navigation():  # the form's answer: a redirect back to the board
        form.get_by_role("button", name=button).click()
    assert re.search(r"[?&](notice|error)=", page.url), page.url
    errors = page.locator(".flash.error")
    assert errors.count() == 0, errors.inner_text()


def test_the_parties_plan_deliver_check_and_judge_on_the_commitments_board(
    browser: object, stack: RunningStack
) -> None:
    # Given an agreement on two items, reached over the API
    nid, keys = agreed(stack)
    board = f"{stack.base_url}/dashboard/n/{nid}?lang=en"
    today = datetime.now(UTC).date()
    training_due, retention_due = today + timedelta(days=30), today + timedelta(days=75)

    # When the vendor's owner plans a due date for each commitment on the board, with a note on one
    vendor = sign_in(browser, stack, keys["vendor"])
    vendor.goto(board)  # type: ignore[attr-defined]
    plan = vendor.locator("#plan-form")  # type: ignore[attr-defined]
    plan.locator(f"#due-{TRAINING}").fill(training_due.isoformat())
    plan.locator(f"#due-{RETENTION}").fill(retention_due.isoformat())
    plan.locator(f"#note-{RETENTION}").fill("after the spring release")
    send(vendor, plan, "Propose the plan")
    # Then the plan waits for the coordinator, and the vendor has no plan form any more
    assert "Plan 1 awaits the coordinator's decision" in vendor.locator("#plan").inner_text()  # type: ignore[attr-defined]
    assert vendor.locator("#plan-form").count() == 0  # type: ignore[attr-defined]

    # When the coordinator's owner accepts the plan
    coordinator = sign_in(browser, stack, keys["coordinator"])
    coordinator.goto(board)  # type: ignore[attr-defined]
    proposed = coordinator.locator("#plan").inner_text()  # type: ignore[attr-defined]
    assert training_due.isoformat() in proposed and "after the spring release" in proposed
    send(coordinator, coordinator.locator(".plan-decision"), "Accept the plan")  # type: ignore[attr-defined]
    # Then implementation has started, with the planned due dates on the timeline
    assert coordinator.locator(".meta .phase").inner_text() == "implementing"  # type: ignore[attr-defined]
    assert training_due.isoformat() in coordinator.locator(f"#timeline-{TRAINING} > title").text_content()  # type: ignore[attr-defined]

    # When the vendor reports both commitments delivered, with evidence
    vendor.goto(board)  # type: ignore[attr-defined]
    for key, evidence in ((TRAINING, "https://trust.nimbus.example/ai-training"), (RETENTION, "Release notes 4.2")):
        delivery = vendor.locator(f"#commitment-{key} form.deliver")  # type: ignore[attr-defined]
        delivery.get_by_label("Evidence").fill(evidence)
        send(vendor, delivery, "Report delivered")
    assert vendor.locator(f"#commitment-{TRAINING} h3 .commitment-status").inner_text() == "◆ delivered"  # type: ignore[attr-defined]

    # And Universiteit Leiden checks them in its own environment: one holds, the other does not
    leiden = sign_in(browser, stack, keys["leiden"])
    leiden.goto(board)  # type: ignore[attr-defined]
    for key, verdict, comment in (
        (TRAINING, "met", "No training on our tenant's data"),
        (RETENTION, "not_met", "Logs still kept for 30 days"),
    ):
        check = leiden.locator(f"#commitment-{key} form.check")  # type: ignore[attr-defined]
        check.locator(f'input[name="verdict"][value="{verdict}"]').check()
        check.get_by_label("Comment").fill(comment)
        send(leiden, check, "Send the check")

    # Then the coordinator sees the weighted tally and each member's check
    coordinator.goto(board)  # type: ignore[attr-defined]
    tally = coordinator.locator(f"#tally-{TRAINING}")  # type: ignore[attr-defined]
    assert tally.locator(".met-share").inner_text() == "75%"
    assert tally.locator(".not-met-share").inner_text() == "0%"
    assert tally.locator(".checked-share").inner_text() == "75%"
    row = tally.locator("tr", has_text="Universiteit Leiden")
    assert "No training on our tenant's data" in row.inner_text() and "met" in row.inner_text()
    assert coordinator.locator(f"#tally-{RETENTION} .not-met-share").inner_text() == "75%"  # type: ignore[attr-defined]

    # When the coordinator gives "met" on one and "not met" on the other
    for key, verdict, comment in ((TRAINING, "met", "Confirmed on our side"), (RETENTION, "not_met", "30 > 14")):
        judge = coordinator.locator(f"#commitment-{key} form.give-verdict")  # type: ignore[attr-defined]
        judge.locator(f'input[name="verdict"][value="{verdict}"]').check()
        judge.get_by_label("Comment").fill(comment)
        send(coordinator, judge, "Give the verdict")

    # Then the coordinator's board shows each status in words, on the timeline too, with today marked
    status = coordinator.locator("#commitments .commitment-status")  # type: ignore[attr-defined]
    assert coordinator.locator(f"#commitment-{TRAINING} h3 .commitment-status").inner_text() == "✓ met"  # type: ignore[attr-defined]
    assert coordinator.locator(f"#commitment-{RETENTION} h3 .commitment-status").inner_text() == "✗ not met"  # type: ignore[attr-defined]
    assert status.count() >= 2
    timeline = coordinator.locator("svg.commitments-timeline")  # type: ignore[attr-defined]
    assert timeline.locator(f"#timeline-{TRAINING} text.status").text_content() == "✓ met"
    assert timeline.locator(f"#timeline-{RETENTION} text.status").text_content() == "✗ not met"
    assert timeline.locator("text.today").text_content() == f"today {today.isoformat()}"
    assert "2 commitments: 1 met, 1 not met" in timeline.locator("desc").text_content()
    events = coordinator.locator(".timeline li[data-type='CommitmentVerdictGiven']")  # type: ignore[attr-defined]
    assert events.count() == 2 and "You found Retention of diagnostic data not met" in events.first.inner_text()
    # and the tally of the met delivery stays, for the record
    assert coordinator.locator(f"#tally-{TRAINING} .met-share").inner_text() == "75%"  # type: ignore[attr-defined]
    shot(coordinator, "coordinator-commitments")

    # And the vendor sees the verdicts and may deliver the unmet one again, but no member's check
    vendor.goto(board)  # type: ignore[attr-defined]
    assert "30 > 14" in vendor.locator(f"#commitment-{RETENTION} .verdict").inner_text()  # type: ignore[attr-defined]
    assert vendor.locator(f"#commitment-{RETENTION} form.deliver").count() == 1  # type: ignore[attr-defined]
    assert vendor.locator(f"#commitment-{TRAINING} form.deliver").count() == 0  # type: ignore[attr-defined]
    assert vendor.locator(".tally, .your-check, .checks").count() == 0  # type: ignore[attr-defined]
    seen_by_vendor = vendor.content()  # type: ignore[attr-defined]
    for secret in ("Universiteit Leiden", "Hogeschool Rotterdam", "No training on our tenant", "Logs still kept"):
        assert secret not in seen_by_vendor, secret
    shot(vendor, "vendor-commitments")

    # And Leiden sees its own check, no tally, and may report a regression on the met commitment
    leiden.goto(board)  # type: ignore[attr-defined]
    own = leiden.locator(f"#your-check-{RETENTION}").inner_text()  # type: ignore[attr-defined]
    assert "not met" in own and "Logs still kept for 30 days" in own
    assert leiden.locator(".tally").count() == 0  # type: ignore[attr-defined]
    assert leiden.locator(f"#commitment-{TRAINING} form.regression").count() == 1  # type: ignore[attr-defined]
    # while Rotterdam, which did not check, sees none of Leiden's checks
    rotterdam = sign_in(browser, stack, keys["rotterdam"])
    rotterdam.goto(board)  # type: ignore[attr-defined]
    assert "you have not checked" in rotterdam.locator(f"#your-check-{TRAINING}").inner_text()  # type: ignore[attr-defined]
    assert "No training on our tenant" not in rotterdam.content()  # type: ignore[attr-defined]

    # And in Dutch the board speaks of toezeggingen, in uitvoering, voldaan and niet voldaan
    coordinator.goto(f"{stack.base_url}/dashboard/n/{nid}?lang=nl")  # type: ignore[attr-defined]
    assert coordinator.locator(".meta .phase").inner_text() == "in uitvoering"  # type: ignore[attr-defined]
    assert coordinator.locator("#commitments-heading").inner_text() == "Toezeggingen"  # type: ignore[attr-defined]
    dutch = coordinator.locator("svg.commitments-timeline")  # type: ignore[attr-defined]
    assert dutch.locator(f"#timeline-{RETENTION} text.status").text_content() == "✗ niet voldaan"
    assert (dutch.locator("text.today").text_content() or "").startswith("vandaag")
    assert "U hebt vastgesteld dat aan Bewaartermijn van diagnostische gegevens niet is voldaan" in (
        coordinator.locator(".timeline").inner_text()  # type: ignore[attr-defined]
    )


def test_commitment_forms_are_for_who_acts_and_the_core_still_refuses(stack: RunningStack) -> None:
    # Given an agreement whose plan the coordinator accepted over the API
    nid, keys = agreed(stack)
    n = f"/v1/negotiations/{nid}"
    due = (datetime.now(UTC) + timedelta(days=40)).date().isoformat()
    plan = {"items": [{"key": TRAINING, "due": due}, {"key": RETENTION, "due": due}]}
    ok(stack.client(keys["vendor"]).post(f"{n}/commitments/plan", json=plan), 201)
    ok(stack.client(keys["coordinator"]).post(f"{n}/commitments/plan/accept"), 200)
    # And a contributor of the vendor, signed in to the dashboard
    _, token = stack.person(keys["vendor"], "Carla Contributor", "contributor")
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as carla:
        assert carla.post("/signin", data={"api_key": token}).status_code == 303
        page = carla.get(f"/dashboard/n/{nid}", params={"lang": "en"}).text
        # Then she reads the commitments but gets no form to deliver them
        assert 'id="commitments"' in page and "/delivered" not in page
        # And a delivery she forges anyway is refused by the core, as a notice, and changes nothing
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        forged = carla.post(
            f"/dashboard/n/{nid}/commitments/{TRAINING}/delivered", data={"csrf": csrf, "evidence": "done"}
        )
        assert forged.status_code == 303 and "error=" in forged.headers["location"]
    # And a member's owner, who acts for it, is refused a vendor's act by the core
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as leiden:
        assert leiden.post("/signin", data={"api_key": stack.person_token(keys["leiden"])}).status_code == 303
        page = leiden.get(f"/dashboard/n/{nid}").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        refused = leiden.post(
            f"/dashboard/n/{nid}/commitments/{TRAINING}/delivered", data={"csrf": csrf, "evidence": "done"}
        )
        assert "error=" in refused.headers["location"] and "vendor" in refused.headers["location"]
    commitments = ok(stack.client(keys["coordinator"]).get(f"{n}/commitments"), 200)["commitments"]
    assert {c["key"]: c["status"] for c in commitments} == {TRAINING: "open", RETENTION: "open"}
