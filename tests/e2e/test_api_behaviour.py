"""How the API behaves at its edges: size limits, problems, idempotency, read-your-writes, timeouts, secrets."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from services.readmodel.store import create_db_engine
from tests.e2e.conftest import RunningStack, running_stack


def negotiation(stack: RunningStack, members: int = 1) -> tuple[str, httpx.Client, httpx.Client, list[httpx.Client]]:
    """A new negotiation: (its id, the coordinator, the vendor, the members' clients)."""
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, vendor_key = stack.organisation("Vendor", "vendor")
    coordinator, vendor = stack.client(coordinator_key), stack.client(vendor_key)
    body = {"title": "Edges", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}, {"key": "data-location"}]}
    nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
    clients = []
    for i in range(members):
        member_id, member_key = stack.organisation(f"Member {i}", "member")
        invited = coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id})
        assert invited.status_code == 201, invited.text
        clients.append(stack.client(member_key))
    return nid, coordinator, vendor, clients


def sequence(client: httpx.Client, nid: str) -> int:
    return int(client.get(f"/v1/negotiations/{nid}").json()["sequence"])


def test_a_body_over_64_kib_is_refused_before_it_is_read_and_changes_nothing(stack: RunningStack) -> None:
    nid, coordinator, _, (member,) = negotiation(stack)
    before = sequence(coordinator, nid)
    huge = {"priority": "must", "rationale": "x" * (70 * 1024)}
    # With a Content-Length
    response = member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json=huge)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    # And streamed without one (chunked)
    chunks = (b"x" * 8192 for _ in range(10))
    streamed = member.put(
        f"/v1/negotiations/{nid}/positions/no-ai-training",
        content=chunks,
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert sequence(coordinator, nid) == before


def test_invalid_input_is_a_problem_naming_the_field(stack: RunningStack) -> None:
    nid, coordinator, _, (member,) = negotiation(stack)
    before = sequence(coordinator, nid)
    response = member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "maybe"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "priority"
    assert problem["status"] == 422
    # An item the negotiation does not have is 404; a value on a boolean item is 422 from the core
    assert member.put(f"/v1/negotiations/{nid}/positions/no-such-item", json={"priority": "must"}).status_code == 404
    boolean_with_value = member.put(
        f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must", "value": 3}
    )
    assert boolean_with_value.status_code == 422
    assert sequence(coordinator, nid) == before


def test_a_non_party_cannot_tell_a_negotiation_from_one_that_does_not_exist(stack: RunningStack) -> None:
    nid, _, _, _ = negotiation(stack)
    _, outsider_key = stack.organisation("Outsider", "member")
    outsider = stack.client(outsider_key)
    real = outsider.get(f"/v1/negotiations/{nid}/state")
    missing_id = str(uuid.uuid4())
    missing = outsider.get(f"/v1/negotiations/{missing_id}/state")
    assert real.status_code == missing.status_code == 404
    assert real.json()["detail"].replace(nid, "X") == missing.json()["detail"].replace(missing_id, "X")


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer_and_adds_no_event(stack: RunningStack) -> None:
    nid, coordinator, _vendor, (member,) = negotiation(stack)
    key = {"Idempotency-Key": f"position-{uuid.uuid4()}"}
    path = f"/v1/negotiations/{nid}/positions/no-ai-training"
    first = member.put(path, json={"priority": "must"}, headers=key)
    after_first = sequence(coordinator, nid)
    again = member.put(path, json={"priority": "must"}, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert sequence(coordinator, nid) == after_first
    # The same key for another request is refused
    other = member.put(path, json={"priority": "could"}, headers=key)
    assert other.status_code == 422
    assert sequence(coordinator, nid) == after_first


def test_a_refusal_is_the_first_answer_too(stack: RunningStack) -> None:
    # Given the vendor answers before anything is published: 409
    nid, coordinator, vendor, (member,) = negotiation(stack)
    assert member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"}).status_code == 200
    key = {"Idempotency-Key": f"respond-{uuid.uuid4()}"}
    answer = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
    early = vendor.post(f"/v1/negotiations/{nid}/responses", json=answer, headers=key)
    assert early.status_code == 409
    # When version 1 is published and the vendor retries with the same key
    assert coordinator.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    retried = vendor.post(f"/v1/negotiations/{nid}/responses", json=answer, headers=key)
    # Then it gets the first answer again, and only a new key makes a new attempt
    assert retried.status_code == 409
    assert retried.json() == early.json()
    fresh = vendor.post(f"/v1/negotiations/{nid}/responses", json=answer, headers={"Idempotency-Key": "another"})
    assert fresh.status_code == 201


def test_every_party_reads_a_write_as_soon_as_it_returned(stack: RunningStack) -> None:
    nid, coordinator, _vendor, (member,) = negotiation(stack)
    for value in range(1, 21):
        # When the member changes its position and the API answered 2xx
        accepted = ["NL"] if value % 2 else ["NL", "EU"]
        stated = member.put(
            f"/v1/negotiations/{nid}/positions/data-location", json={"priority": "must", "accepted": accepted}
        )
        assert stated.status_code == 200
        # Then the coordinator's next read already shows it, and so does the live demand
        positions = coordinator.get(f"/v1/negotiations/{nid}/positions").json()
        assert [p["accepted"] for p in positions] == [accepted]
        demand = coordinator.get(f"/v1/negotiations/{nid}/demand").json()
        assert next(i for i in demand["items"] if i["key"] == "data-location")["target"] == sorted(accepted)


def test_api_keys_are_stored_hashed_and_never_logged(stack: RunningStack) -> None:
    organisation_id, api_key = stack.organisation("Careful", "member")
    secret = api_key.split("_", 2)[2]  # kk_<key id>_<secret>: the secret may contain "_"
    assert len(secret) >= 40  # the whole secret (32 random bytes), not a short piece of it
    assert stack.client(api_key).get("/v1/organisations/me").json()["id"] == organisation_id
    engine = create_db_engine(stack.settings.sqlalchemy_url)
    with engine.connect() as connection:
        dump = " ".join(str(row) for row in connection.execute(text("SELECT * FROM organisations")))
    engine.dispose()
    assert secret not in dump
    assert organisation_id in dump
    logs = "".join(p.read_text(errors="replace") for p in Path(stack.stack.logs).glob("*.log"))
    assert secret not in logs
    assert stack.admin_token not in logs


@pytest.fixture(params=["sqlite", "postgresql"])
def impatient_stack(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path) -> Iterator[RunningStack]:
    """A stack of its own whose API waits at most 2 s for a decision."""
    with running_stack(kafka_bootstrap, tmp_path, request.param, command_timeout_s=2.0) as running:
        yield running


def test_a_timeout_is_503_and_the_queued_commands_are_decided_once_with_their_first_answers(
    impatient_stack: RunningStack,
) -> None:
    stack = impatient_stack
    nid, coordinator, vendor, (member,) = negotiation(stack)
    assert member.put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"}).status_code == 200
    before = sequence(coordinator, nid)
    # Given the negotiation worker is down
    stack.stack.stop_child("worker")
    early = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
    vendor_key = {"Idempotency-Key": f"early-{uuid.uuid4()}"}
    # When the vendor answers before anything is published, and then the coordinator publishes
    started = time.monotonic()
    answered = vendor.post(f"/v1/negotiations/{nid}/responses", json=early, headers=vendor_key)
    published = coordinator.post(f"/v1/negotiations/{nid}/demand/publish", headers={"Idempotency-Key": "publish-1"})
    # Then both are 503 with Retry-After, within the API's timeout
    assert (answered.status_code, published.status_code) == (503, 503)
    assert int(answered.headers["retry-after"]) > 0
    assert time.monotonic() - started < 15
    # And a different request under the vendor's key is refused, even before the first is decided
    other = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "reject"}]}
    assert vendor.post(f"/v1/negotiations/{nid}/responses", json=other, headers=vendor_key).status_code == 422

    # When the worker is back, both queued commands are decided, in order, without any retry
    stack.stack.start_child("worker")
    deadline = time.monotonic() + 60
    while sequence(coordinator, nid) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sequence(coordinator, nid) == before + 1  # the publication; the early answer was refused

    # Then the vendor's retry gets the first answer (409), and is not sent again, although it
    # would now be accepted
    retried = vendor.post(f"/v1/negotiations/{nid}/responses", json=early, headers=vendor_key)
    assert retried.status_code == 409, retried.text
    assert coordinator.get(f"/v1/negotiations/{nid}/state").json()["round"] == 0
    again = coordinator.post(f"/v1/negotiations/{nid}/demand/publish", headers={"Idempotency-Key": "publish-1"})
    assert again.status_code == 201
    assert again.json()["version"] == 1
    assert sequence(coordinator, nid) == before + 1


def test_concurrent_requests_with_one_key_get_one_answer_and_add_one_event(stack: RunningStack) -> None:
    from concurrent.futures import ThreadPoolExecutor

    nid, coordinator, _, (member,) = negotiation(stack)
    before = sequence(coordinator, nid)
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    path = f"/v1/negotiations/{nid}/positions/data-location"
    body = {"priority": "must", "accepted": ["NL"]}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: member.put(path, json=body, headers=key), range(6)))
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    assert sequence(coordinator, nid) == before + 1
