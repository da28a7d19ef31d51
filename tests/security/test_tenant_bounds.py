"""No tenant grows without bound: quotas answer 409, live streams per caller 429, every list is paged.

The stack runs with small limits (as settings), so each bound is reached in a few requests.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack, running_stack

LIMITS = {
    "max_open_negotiations_per_coordinator": 3,
    "max_subscriptions_per_organisation": 2,
    "max_live_streams_per_caller": 2,
    "max_members_per_negotiation": 2,
    "max_rounds_per_negotiation": 2,
    "max_clarifications_per_negotiation": 1,
    # subscriptions go to a loopback receiver the operator allowed (nothing is ever delivered:
    # their owners are party to no negotiation)
    "webhook_allow": "127.0.0.1",
    "webhook_allow_http": True,
}
HOOK = "http://127.0.0.1:9/hooks"
ITEMS = [{"key": "no-ai-training"}]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def bounded(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningStack]:
    tmp: Path = tmp_path_factory.mktemp(f"bounded-{request.param}")
    with running_stack(kafka_bootstrap, tmp, request.param, **LIMITS) as running:
        yield running


def party(stack: RunningStack, role: str) -> tuple[str, httpx.Client]:
    organisation_id, key = stack.organisation(f"{role.title()} {uuid.uuid4().hex[:6]}", role)
    return organisation_id, stack.client(key)


def assert_problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"], response.json()


def test_a_coordinator_opens_no_more_negotiations_than_its_quota(bounded: RunningStack) -> None:
    _, coordinator = party(bounded, "coordinator")
    vendor_id, _ = party(bounded, "vendor")
    body = {"title": "Quota", "vendor_id": vendor_id, "items": ITEMS}
    opened = [coordinator.post("/v1/negotiations", json=body) for _ in range(3)]
    assert [r.status_code for r in opened] == [201, 201, 201]
    # Then the fourth is refused, and nothing was opened
    assert_problem(coordinator.post("/v1/negotiations", json=body), 409, "3 negotiations open")
    assert len(coordinator.get("/v1/negotiations").json()) == 3
    # And an abandoned negotiation no longer counts
    nid = opened[0].json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/abandon", json={}).status_code == 200
    assert coordinator.post("/v1/negotiations", json=body).status_code == 201


def test_members_rounds_and_clarifications_stop_at_the_limits(bounded: RunningStack) -> None:
    _, coordinator = party(bounded, "coordinator")
    vendor_id, vendor = party(bounded, "vendor")
    nid = coordinator.post("/v1/negotiations", json={"title": "Limits", "vendor_id": vendor_id, "items": ITEMS}).json()[
        "id"
    ]
    members = [party(bounded, "member") for _ in range(3)]
    invited = [
        coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id})
        for member_id, _ in members
    ]
    assert [r.status_code for r in invited[:2]] == [201, 201]
    assert_problem(invited[2], 409, "limit of 2 members")
    member = members[0][1]
    stated = member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"})
    assert stated.status_code == 200, stated.text
    assert coordinator.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    answer = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "reject"}]}
    rounds = [vendor.post(f"/v1/negotiations/{nid}/responses", json=answer) for _ in range(3)]
    assert [r.status_code for r in rounds[:2]] == [201, 201]
    assert_problem(rounds[2], 409, "limit of 2 rounds")
    ask = {"item_key": "no-ai-training", "question": "Which training?"}
    asked = [vendor.post(f"/v1/negotiations/{nid}/clarifications", json=ask) for _ in range(2)]
    assert asked[0].status_code == 201, asked[0].text
    assert_problem(asked[1], 409, "limit of 1 clarifications")


def test_an_organisation_keeps_no_more_subscriptions_than_its_quota(bounded: RunningStack) -> None:
    _, member = party(bounded, "member")
    body = {"url": HOOK}
    made = [member.post("/v1/subscriptions", json=body) for _ in range(2)]
    assert [r.status_code for r in made] == [201, 201], made[-1].text
    assert_problem(member.post("/v1/subscriptions", json=body), 409, "2 subscriptions")
    assert len(member.get("/v1/subscriptions").json()) == 2
    # And deleting one makes room again
    assert member.delete(f"/v1/subscriptions/{made[0].json()['id']}").status_code == 204
    assert member.post("/v1/subscriptions", json=body).status_code == 201


def test_lists_come_in_pages_linked_by_a_cursor(bounded: RunningStack) -> None:
    # Given a vendor party to five negotiations (of several coordinators) and a member with two subscriptions
    vendor_id, vendor = party(bounded, "vendor")
    opened = []
    for _ in range(2):
        _, coordinator = party(bounded, "coordinator")
        for _ in range(3 if not opened else 2):
            response = coordinator.post(
                "/v1/negotiations", json={"title": "Paged", "vendor_id": vendor_id, "items": ITEMS}
            )
            assert response.status_code == 201, response.text
            opened.append(response.json()["id"])
    # When the vendor follows the Link headers two at a time
    seen: list[str] = []
    response = vendor.get("/v1/negotiations", params={"limit": 2})
    pages = 0
    while True:
        assert response.status_code == 200, response.text
        pages += 1
        seen += [n["id"] for n in response.json()]
        if "next" not in response.links:
            break
        response = vendor.get(response.links["next"]["url"])
    # Then it meets each negotiation once, newest first, in three pages
    assert sorted(seen) == sorted(opened) and len(seen) == len(set(seen)) == 5
    assert seen == list(reversed(opened))
    assert pages == 3
    # And a cursor that is not one of ours is a clear 422, for every paged list
    for path in ("/v1/negotiations", "/v1/subscriptions"):
        for cursor in ("garbage", "WyJ4Il0", "bm90LWpzb24"):
            assert_problem(vendor.get(path, params={"cursor": cursor}), 422, "not a cursor of this list")
    # And subscriptions page the same way
    _, member = party(bounded, "member")
    ids = [member.post("/v1/subscriptions", json={"url": f"{HOOK}/{i}"}).json()["id"] for i in range(2)]
    first = member.get("/v1/subscriptions", params={"limit": 1})
    second = member.get(first.links["next"]["url"])
    assert [s["id"] for s in first.json() + second.json()] == ids
    assert "next" not in second.links


def test_a_caller_holds_no_more_live_streams_than_its_limit(bounded: RunningStack) -> None:
    _, coordinator = party(bounded, "coordinator")
    vendor_id, _ = party(bounded, "vendor")
    nid = coordinator.post(
        "/v1/negotiations", json={"title": "Streams", "vendor_id": vendor_id, "items": ITEMS}
    ).json()["id"]
    path = f"/v1/negotiations/{nid}/stream"
    with coordinator.stream("GET", path) as one, coordinator.stream("GET", path) as two:
        assert one.status_code == two.status_code == 200
        third = coordinator.get(path)
        assert_problem(third, 429, "2 live streams open")
        assert int(third.headers["retry-after"]) > 0
    # When the streams are closed, their slots come back once the server notices the disconnects
    deadline = time.monotonic() + 30
    while True:
        with coordinator.stream("GET", path) as again:
            if again.status_code == 200:
                break
            assert again.status_code == 429
        assert time.monotonic() < deadline, "the slots of closed streams never came back"
        time.sleep(0.1)
