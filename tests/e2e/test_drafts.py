"""Drafts and comments inside a member organisation, adopted by an approver (SPEC section 10), over
the HTTP API of the running stack.

A contributor drafts, a colleague comments, the contributor may not adopt, an approver adopts: the
position is stated through the usual command, and only the organisation's own people see which
person it was. Nobody outside the organisation sees a draft or a comment: the coordinator, other
members, the vendor and outsiders get 404 on every drafts route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from services.application.drafts import MAX_COMMENTS_PER_DRAFT
from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import _signed_in, browser, shot, sign_in

__all__ = ["browser"]  # the browser fixture, shared with the dashboard's tests

CONFIDENTIAL = "Our DPO says the research data may not leave NL"


@dataclass
class Coalition:
    nid: str
    coordinator_key: str
    vendor_key: str
    member_key: str
    other_member_key: str
    outsider_key: str
    contributor: str
    privacy_officer: str
    approver: str
    other_approver: str

    def path(self, suffix: str = "") -> str:
        return f"/v1/negotiations/{self.nid}{suffix}"


@pytest.fixture
def coalition(stack: RunningStack) -> Coalition:
    """A negotiation in collecting with two members; the first, TU Delft, has a contributor, a
    privacy officer (a contributor too) and an approver; the second an approver. An outsider
    member organisation is not invited."""
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Nimbus Cloud", "vendor")
    member_id, member_key = stack.organisation("TU Delft", "member")
    other_id, other_key = stack.organisation("Universiteit Leiden", "member")
    _, outsider_key = stack.organisation("Hogeschool Nergens", "member")
    coordinator = stack.client(coordinator_key)
    items = [{"key": "data-location"}, {"key": "diagnostic-data-retention"}]
    opened = coordinator.post("/v1/negotiations", json={"title": "Drafts", "vendor_id": vendor_id, "items": items})
    assert opened.status_code == 201, opened.text
    nid = opened.json()["id"]
    for organisation_id in (member_id, other_id):
        invited = coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": organisation_id})
        assert invited.status_code == 201, invited.text
    _, contributor = stack.person(member_key, "Joris Bakker", "contributor")
    _, privacy_officer = stack.person(member_key, "Femke Jansen", "contributor")
    _, approver = stack.person(member_key, "Pieter van Dam", "approver")
    _, other_approver = stack.person(other_key, "Sanne de Wit", "approver")
    return Coalition(
        nid,
        coordinator_key,
        vendor_key,
        member_key,
        other_key,
        outsider_key,
        contributor,
        privacy_officer,
        approver,
        other_approver,
    )


def acting_people(client: httpx.Client, c: Coalition) -> list[dict[str, str] | None]:
    """The ``acting_person`` of every PositionStated in the client's change feed (None: not shown)."""
    feed = client.get(c.path("/events"), params={"limit": 1000})
    assert feed.status_code == 200, feed.text
    return [e["data"].get("acting_person") for e in feed.json()["events"] if e["type"] == "PositionStated"]


def test_a_contributor_drafts_a_colleague_comments_and_an_approver_adopts(
    stack: RunningStack, coalition: Coalition
) -> None:
    c = coalition
    contributor, officer, approver = (stack.client(t) for t in (c.contributor, c.privacy_officer, c.approver))
    # Given the contributor drafts "data location: NL only", with a confidential rationale
    body = {"priority": "must", "accepted": ["NL"], "rationale": CONFIDENTIAL}
    drafted = contributor.put(c.path("/drafts/data-location"), json=body)
    assert drafted.status_code == 200, drafted.text
    assert drafted.json()["position"] == {**body, "value": None}
    assert drafted.json()["updated_by"]["name"] == "Joris Bakker"
    assert drafted.json()["adopted_at"] is None
    # And the privacy officer comments on it
    commented = officer.post(c.path("/drafts/data-location/comments"), json={"text": "EU would do as well"})
    assert commented.status_code == 201, commented.text
    assert commented.json()["person"]["name"] == "Femke Jansen"

    # When the contributor tries to adopt the draft
    refused = contributor.post(c.path("/drafts/data-location/adopt"))
    # Then it is refused: a contributor does not act for the organisation, and nothing is stated
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert stack.client(c.member_key).get(c.path("/positions")).json() == []

    # When the approver adopts it
    adopted = approver.post(c.path("/drafts/data-location/adopt"))
    # Then the position is stated, with the usual position answer
    assert adopted.status_code == 200, adopted.text
    assert adopted.json()["item_key"] == "data-location"
    assert adopted.json()["accepted"] == ["NL"]
    stated = stack.client(c.member_key).get(c.path("/positions")).json()
    assert [(p["item_key"], p["priority"], p["accepted"], p["rationale"]) for p in stated] == [
        ("data-location", "must", ["NL"], CONFIDENTIAL)
    ]
    # And the draft says who adopted it, with its thread
    (draft,) = contributor.get(c.path("/drafts")).json()
    assert draft["adopted_by"]["name"] == "Pieter van Dam"
    assert draft["adopted_at"] is not None
    assert [(m["person"]["name"], m["text"]) for m in draft["comments"]] == [("Femke Jansen", "EU would do as well")]

    # And the organisation's own people see which person stated it; nobody outside does
    (own,) = acting_people(officer, c)
    assert own is not None and own["name"] == "Pieter van Dam" and own["role"] == "approver"
    (seen_by_coordinator,) = acting_people(stack.client(c.coordinator_key), c)
    assert seen_by_coordinator is not None and set(seen_by_coordinator) == {"digest"}
    for shown in acting_people(stack.client(c.other_approver), c):
        assert shown is None or set(shown) == {"digest"}
    assert acting_people(stack.client(c.vendor_key), c) == []
    for key in (c.coordinator_key, c.other_approver, c.vendor_key):
        feed = stack.client(key).get(c.path("/events"), params={"limit": 1000}).text
        assert "Pieter van Dam" not in feed
        assert "Joris Bakker" not in feed and "Femke Jansen" not in feed and "EU would do as well" not in feed

    # When the contributor redrafts it, the draft waits for an adoption of its own
    redrafted = contributor.put(c.path("/drafts/data-location"), json={"priority": "must", "accepted": ["NL", "EU"]})
    assert redrafted.status_code == 200
    assert redrafted.json()["adopted_at"] is None and redrafted.json()["adopted_by"] is None
    assert [m["text"] for m in redrafted.json()["comments"]] == ["EU would do as well"]


def test_an_approver_adopts_what_they_read_and_not_a_redraft_made_meanwhile(
    stack: RunningStack, coalition: Coalition
) -> None:
    c = coalition
    contributor, approver = stack.client(c.contributor), stack.client(c.approver)
    # Given the approver has read the draft "NL or EU"
    body = {"priority": "must", "accepted": ["NL", "EU"]}
    assert contributor.put(c.path("/drafts/data-location"), json=body).status_code == 200
    (read,) = approver.get(c.path("/drafts")).json()
    # When a contributor redrafts it to "NL or EEA" before the approver clicks adopt
    redraft = {"priority": "must", "accepted": ["NL", "EEA"]}
    assert contributor.put(c.path("/drafts/data-location"), json=redraft).status_code == 200
    stale = approver.post(c.path("/drafts/data-location/adopt"), headers={"If-Match": f'"{read["version"]}"'})
    # Then the adoption of what the approver read is refused, and nothing is stated in their name
    assert stale.status_code == 412, stale.text
    assert "changed since you read it" in stale.json()["detail"]
    assert stack.client(c.member_key).get(c.path("/positions")).json() == []
    # When the approver reads the draft again and adopts that version, it is stated
    (again,) = approver.get(c.path("/drafts")).json()
    assert again["version"] != read["version"]
    fresh = approver.post(c.path("/drafts/data-location/adopt"), headers={"If-Match": f'"{again["version"]}"'})
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["accepted"] == ["NL", "EEA"]


def test_a_replayed_adoption_marks_no_draft_it_did_not_state(stack: RunningStack, coalition: Coalition) -> None:
    c = coalition
    contributor, approver = stack.client(c.contributor), stack.client(c.approver)
    first, second = {"priority": "must", "accepted": ["NL"]}, {"priority": "must", "accepted": ["NL", "EU"]}
    # Given the approver adopted "NL" with an Idempotency-Key, then "NL or EU"
    assert contributor.put(c.path("/drafts/data-location"), json=first).status_code == 200
    once = {"Idempotency-Key": "adopt-nl-only"}
    assert approver.post(c.path("/drafts/data-location/adopt"), headers=once).status_code == 200
    assert contributor.put(c.path("/drafts/data-location"), json=second).status_code == 200
    assert approver.post(c.path("/drafts/data-location/adopt")).status_code == 200
    # When the draft is set back to "NL" and the first adoption is sent again (a stale page)
    assert contributor.put(c.path("/drafts/data-location"), json=first).status_code == 200
    replayed = approver.post(c.path("/drafts/data-location/adopt"), headers=once)
    # Then the answer is the first one, replayed, and the draft is not marked adopted: the
    # organisation's position is still "NL or EU"
    assert replayed.status_code == 200 and replayed.headers.get("Idempotent-Replayed") == "true"
    (draft,) = contributor.get(c.path("/drafts")).json()
    assert draft["adopted_at"] is None
    (stated,) = stack.client(c.member_key).get(c.path("/positions")).json()
    assert stated["accepted"] == ["NL", "EU"]


def test_nobody_outside_the_organisation_sees_or_touches_its_drafts(stack: RunningStack, coalition: Coalition) -> None:
    c = coalition
    # Given a draft with a comment inside TU Delft
    contributor = stack.client(c.contributor)
    body = {"priority": "must", "accepted": ["NL"], "rationale": CONFIDENTIAL}
    assert contributor.put(c.path("/drafts/data-location"), json=body).status_code == 200
    assert contributor.post(c.path("/drafts/data-location/comments"), json={"text": "secret"}).status_code == 201
    not_party = stack.client(c.outsider_key).get(c.path()).json()
    outsiders = {
        "coordinator": c.coordinator_key,
        "coordinator's owner": stack.person_token(c.coordinator_key),
        "vendor": c.vendor_key,
        "vendor's owner": stack.person_token(c.vendor_key),
        "outsider": c.outsider_key,
        "outsider's owner": stack.person_token(c.outsider_key),
    }
    routes = [
        ("GET", "/drafts", None),
        ("PUT", "/drafts/data-location", {"priority": "should", "accepted": ["EU"]}),
        ("POST", "/drafts/data-location/comments", {"text": "let me in"}),
        ("POST", "/drafts/data-location/adopt", None),
    ]
    # When everybody outside the negotiation's members calls every drafts route
    for who, key in outsiders.items():
        for method, suffix, json in routes:
            response = stack.client(key).request(method, c.path(suffix), json=json)
            # Then each gets 404; an outsider the same answer as for the negotiation itself
            assert response.status_code == 404, (who, method, suffix, response.text)
            if who.startswith("outsider"):
                assert response.json()["detail"] == not_party["detail"], (who, method, suffix)
            assert "secret" not in response.text and CONFIDENTIAL not in response.text

    # When the other member's people call them
    other = stack.client(c.other_approver)
    # Then they see only their own (no) drafts, and TU Delft's draft is one that does not exist for them
    assert other.get(c.path("/drafts")).json() == []
    assert other.post(c.path("/drafts/data-location/comments"), json={"text": "hi"}).status_code == 404
    assert other.post(c.path("/drafts/data-location/adopt")).status_code == 404
    # And a draft of their own is theirs alone
    own_draft = {"priority": "could", "accepted": ["EEA"]}
    assert other.put(c.path("/drafts/data-location"), json=own_draft).status_code == 200
    (mine,) = contributor.get(c.path("/drafts")).json()
    assert mine["position"]["accepted"] == ["NL"] and [m["text"] for m in mine["comments"]] == ["secret"]
    (theirs,) = other.get(c.path("/drafts")).json()
    assert theirs["position"]["accepted"] == ["EEA"] and theirs["comments"] == []

    # And TU Delft's integration key reads the drafts but writes none: drafts are people's
    member = stack.client(c.member_key)
    assert [d["item_key"] for d in member.get(c.path("/drafts")).json()] == ["data-location"]
    system_draft = {"priority": "could", "accepted": ["EU"]}
    assert member.put(c.path("/drafts/data-location"), json=system_draft).status_code == 403
    assert member.post(c.path("/drafts/data-location/comments"), json={"text": "a system"}).status_code == 403
    assert member.post(c.path("/drafts/data-location/adopt")).status_code == 403
    # And nothing of it became an event: nobody stated anything
    assert stack.client(c.coordinator_key).get(c.path("/positions")).json() == []


def test_a_draft_is_checked_as_a_position_is_and_threads_are_bounded(stack: RunningStack, coalition: Coalition) -> None:
    c = coalition
    contributor, approver = stack.client(c.contributor), stack.client(c.approver)
    # A draft that does not fit its item is refused with the core's reasons
    wrong = contributor.put(c.path("/drafts/data-location"), json={"priority": "must", "value": 3})
    assert wrong.status_code == 422 and wrong.json()["field"] == "value", wrong.text
    unknown = contributor.put(c.path("/drafts/data-location"), json={"priority": "must", "accepted": ["Mars"]})
    assert unknown.status_code == 422 and "Mars" in unknown.json()["detail"]
    assert contributor.put(c.path("/drafts/no-such-item"), json={"priority": "must"}).status_code == 404
    # A number is kept exactly, as a position's is
    exact = {"priority": "should", "value": 0.1}
    saved = contributor.put(c.path("/drafts/diagnostic-data-retention"), json=exact)
    assert saved.status_code == 200 and saved.json()["position"]["value"] == 0.1
    assert '"value":0.1' in saved.text.replace(" ", "")
    # Nothing to comment on or adopt without a draft
    assert contributor.post(c.path("/drafts/data-location/comments"), json={"text": "x"}).status_code == 404
    assert approver.post(c.path("/drafts/data-location/adopt")).status_code == 404
    # A comment is bounded in length, a thread in comments
    too_long = contributor.post(c.path("/drafts/diagnostic-data-retention/comments"), json={"text": "x" * 2001})
    assert too_long.status_code == 422
    for n in range(MAX_COMMENTS_PER_DRAFT):
        added = contributor.post(c.path("/drafts/diagnostic-data-retention/comments"), json={"text": f"#{n}"})
        assert added.status_code == 201, added.text
    full = contributor.post(c.path("/drafts/diagnostic-data-retention/comments"), json={"text": "one more"})
    assert full.status_code == 409, full.text
    (draft,) = contributor.get(c.path("/drafts")).json()
    assert [m["text"] for m in draft["comments"]] == [f"#{n}" for n in range(MAX_COMMENTS_PER_DRAFT)]
    # An adoption is one command: retried with its Idempotency-Key, it states once
    once = {"Idempotency-Key": "adopt-retention-1"}
    first = approver.post(c.path("/drafts/diagnostic-data-retention/adopt"), headers=once)
    again = approver.post(c.path("/drafts/diagnostic-data-retention/adopt"), headers=once)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers.get("idempotent-replayed") == "true" and again.json() == first.json()
    assert len(acting_people(stack.client(c.member_key), c)) == 1
    assert contributor.get(c.path("/drafts")).json()[0]["adopted_at"] is not None
    # And a retry after the draft changed marks the new draft adopted no more than it states it
    assert contributor.put(
        c.path("/drafts/diagnostic-data-retention"), json={"priority": "must", "value": 7}
    ).is_success
    replayed = approver.post(c.path("/drafts/diagnostic-data-retention/adopt"), headers=once)
    assert replayed.headers.get("idempotent-replayed") == "true" and replayed.json()["value"] == 0.1
    assert contributor.get(c.path("/drafts")).json()[0]["adopted_at"] is None
    # Once the negotiation is over, a draft is refused for the phase, as adopting it would be
    assert stack.client(c.coordinator_key).post(c.path("/abandon"), json={}).status_code == 200
    late = contributor.put(c.path("/drafts/diagnostic-data-retention"), json={"priority": "must", "value": 7})
    assert late.status_code == 409, late.text
    assert approver.post(c.path("/drafts/diagnostic-data-retention/adopt")).status_code == 409


def test_the_draft_thread_on_the_board_and_an_adoption_with_a_click(
    browser: object, stack: RunningStack, coalition: Coalition
) -> None:
    c = coalition
    board = f"{stack.base_url}/dashboard/n/{c.nid}"
    # Given the contributor drafts "NL only" in the board's draft form
    contributor = sign_in(browser, stack, c.contributor)
    contributor.goto(board)  # type: ignore[attr-defined]
    thread = contributor.locator("#draft-data-location")  # type: ignore[attr-defined]
    thread.locator("summary").click()
    form = thread.locator("#draft-form-data-location")
    form.get_by_label("Priority").select_option("must")
    form.get_by_label("NL").check()
    form.get_by_label(re.compile("^Rationale")).fill(CONFIDENTIAL)
    form.get_by_role("button", name="Save the draft").click()
    contributor.wait_for_url(re.compile(r"notice=.*#draft-data-location$"))  # type: ignore[attr-defined]
    # And a contributor is offered no adoption, and no position form it could send
    assert thread.get_by_role("button", name=re.compile("^Adopt")).count() == 0
    assert contributor.locator("#position-data-location button").count() == 0  # type: ignore[attr-defined]
    assert contributor.locator("p.contributor").count() == 1  # type: ignore[attr-defined]
    # And the privacy officer comments in the thread
    officer = sign_in(browser, stack, c.privacy_officer)
    officer.goto(board)  # type: ignore[attr-defined]
    comment = officer.locator("#draft-data-location")  # type: ignore[attr-defined]
    comment.get_by_label("Your comment").fill("NL only rules out the EU data boundary; EU would do as well.")
    comment.get_by_role("button", name="Add the comment").click()
    officer.wait_for_url(re.compile(r"notice="))  # type: ignore[attr-defined]

    # When the approver opens the board
    approver = sign_in(browser, stack, c.approver)
    approver.goto(board)  # type: ignore[attr-defined]
    thread = approver.locator("#draft-data-location")  # type: ignore[attr-defined]
    # Then the thread shows the draft, who drafted it, and the comment with its author
    text = thread.inner_text()
    assert "Drafted by Joris Bakker" in text and "NL" in text and CONFIDENTIAL in text
    assert "Femke Jansen" in text and "EU would do as well" in text
    # When the approver adopts it with a click
    thread.get_by_role("button", name=re.compile("^Adopt")).click()
    approver.wait_for_url(re.compile(r"notice="))  # type: ignore[attr-defined]
    # Then the draft says who adopted it, and the organisation's position is stated
    approver.locator("#draft-data-location .adopted").wait_for(timeout=10_000)  # type: ignore[attr-defined]
    assert "Adopted by Pieter van Dam" in approver.locator("#draft-data-location").inner_text()  # type: ignore[attr-defined]
    stated = stack.client(c.member_key).get(c.path("/positions")).json()
    assert [(p["item_key"], p["accepted"]) for p in stated] == [("data-location", ["NL"])]
    assert approver.locator("#item-data-location .support").inner_text() == "50%"  # type: ignore[attr-defined]
    # ...and the timeline tells TU Delft's people who stated it
    approver.locator(".timeline .by", has_text="Pieter van Dam").wait_for(timeout=10_000)  # type: ignore[attr-defined]
    shot(approver, "draft-thread")

    # And the coordinator's board draws no draft thread; the other member's only its own, empty one
    for key in (stack.person_token(c.coordinator_key), c.other_approver):
        page = sign_in(browser, stack, key)
        page.goto(board)  # type: ignore[attr-defined]
        content = page.content()  # type: ignore[attr-defined]
        assert ('id="draft-' in content) is (key == c.other_approver)
        assert "Joris Bakker" not in content and "Femke Jansen" not in content and "EU would do" not in content
        assert "Pieter van Dam" not in content  # who acted is TU Delft's own business
    # (the coordinator reads the stated position's rationale, as SPEC section 1 allows; another member does not)
    assert CONFIDENTIAL not in content


def test_the_dashboards_draft_forms_refuse_what_the_api_refuses(stack: RunningStack, coalition: Coalition) -> None:
    c = coalition
    # Given the contributor, signed in to the dashboard, drafts and comments through its forms
    page, csrf = _signed_in(stack, c.contributor, c.nid)
    base = f"/dashboard/n/{c.nid}/drafts/diagnostic-data-retention"
    saved = page.post(base, data={"csrf": csrf, "priority": "must", "value": "14,5"})
    assert "notice=" in saved.headers["location"] and saved.headers["location"].endswith(
        "#draft-diagnostic-data-retention"
    )
    commented = page.post(f"{base}/comments", data={"csrf": csrf, "text": "Half a day more is fine"})
    assert "notice=" in commented.headers["location"]
    (draft,) = stack.client(c.contributor).get(c.path("/drafts")).json()
    assert draft["position"]["value"] == 14.5 and draft["comments"][0]["text"] == "Half a day more is fine"
    # When the contributor presses adopt through a forged form, or drafts what the item does not take
    adopted = page.post(f"{base}/adopt", data={"csrf": csrf, "once": "adopt-form-1"})
    wrong = page.post(base, data={"csrf": csrf, "priority": "must", "value": ""})
    forged = page.post(f"{base}/comments", data={"csrf": "forged", "text": "sneaky"})
    # Then each comes back as the board's error, and nothing changed
    for refused in (adopted, wrong, forged):
        assert "error=" in refused.headers["location"], refused.headers["location"]
    assert "contributor" in adopted.headers["location"]
    assert stack.client(c.member_key).get(c.path("/positions")).json() == []
    (draft,) = stack.client(c.contributor).get(c.path("/drafts")).json()
    assert draft["position"]["value"] == 14.5 and len(draft["comments"]) == 1
