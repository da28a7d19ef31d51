"""Rate limits on the running stack: per organisation's key, and per client address after failed
authentications (a wrong key, a wrong admin token, a failed dashboard sign-in). Refusals are
problem+json 429 with ``Retry-After``.

Each test calls from an address of its own: the API trusts ``X-Forwarded-For`` from 127.0.0.1 (a
proxy on the same host), as it would from a reverse proxy in front of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack, running_stack

PER_KEY = 12
FAILURES = 3


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    limits = {"rate_limit_per_key": f"{PER_KEY}/minute", "rate_limit_failed_auth": f"{FAILURES}/minute"}
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("limits"), "sqlite", **limits) as running:
        yield running


def from_address(stack: RunningStack, address: str, key: str | None = None) -> httpx.Client:
    return stack.client(key, **{"X-Forwarded-For": address})


def assert_too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_a_key_past_its_limit_gets_429_and_other_keys_do_not(stack: RunningStack) -> None:
    # Given two organisations (created by the admin, whose own budget is apart)
    _, busy_key = stack.organisation("Busy member", "member")
    _, calm_key = stack.organisation("Calm member", "member")
    busy = from_address(stack, "198.51.100.1", busy_key)
    # When one key makes its limit's worth of requests, then one more
    answers = [busy.get("/v1/organisations/me").status_code for _ in range(PER_KEY)]
    assert answers == [200] * PER_KEY
    over = busy.get("/v1/negotiations")
    # Then that one is refused, saying when to come back; it counts per key, not per address
    assert_too_many(over)
    assert "with this key" in over.json()["detail"]
    assert from_address(stack, "198.51.100.1", calm_key).get("/v1/organisations/me").status_code == 200


def test_failed_authentications_close_the_address_even_to_a_good_key(stack: RunningStack) -> None:
    _, key = stack.organisation("Guessed member", "member")
    guesser = "203.0.113.7"
    wrong_key = from_address(stack, guesser, "kk_000000000000_not-a-real-secret")
    wrong_admin = from_address(stack, guesser, "not-the-admin-token-but-long-enough-to-look-like-it")
    # Given FAILURES failed authentications from one address: wrong keys and a wrong admin token
    assert [wrong_key.get("/v1/organisations/me").status_code for _ in range(FAILURES - 1)] == [401] * (FAILURES - 1)
    assert wrong_admin.post("/v1/organisations", json={"name": "X", "role": "member"}).status_code == 401
    # Then that address is refused, whatever credential it sends, until the window lets it in again
    assert_too_many(wrong_key.get("/v1/organisations/me"))
    assert_too_many(from_address(stack, guesser, key).get("/v1/organisations/me"))
    assert_too_many(from_address(stack, guesser, stack.admin_token).get("/v1/organisations/me"))
    # ...a request without a credential is no guess: it is told to send one
    assert from_address(stack, guesser).get("/v1/organisations/me").status_code == 401
    # ...and another address is not affected
    assert from_address(stack, "203.0.113.8", key).get("/v1/organisations/me").status_code == 200


def test_failed_dashboard_sign_ins_count_too(stack: RunningStack) -> None:
    _, key = stack.organisation("Dashboard member", "member")
    address = "203.0.113.9"
    browser = from_address(stack, address)
    wrong = [browser.post("/signin", data={"api_key": f"kk_{uuid.uuid4().hex[:12]}_nope"}) for _ in range(FAILURES)]
    assert [r.status_code for r in wrong] == [401] * FAILURES
    # The next sign-in, even with a good key, is refused with a page that says so, and Retry-After
    refused = browser.post("/signin", data={"api_key": stack.person_token(key)})
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # ...and the API refuses that address too: the failures count per address, whichever door
    assert_too_many(from_address(stack, address, key).get("/v1/organisations/me"))


def test_secrets_sent_to_a_limited_stack_are_not_logged(stack: RunningStack, tmp_path: Path) -> None:
    _, key = stack.organisation("Logged member", "member")
    assert from_address(stack, "198.51.100.50", key).get("/v1/organisations/me").status_code == 200
    logs = "\n".join(path.read_text(errors="replace") for path in stack.stack.logs.glob("*.log"))
    assert key.split("_", 2)[2] not in logs
    assert stack.admin_token not in logs


def test_dashboard_pages_count_against_the_organisations_limit(stack: RunningStack) -> None:
    # Given an organisation signed in to the dashboard
    _, key = stack.organisation("Reloading member", "member")
    with httpx.Client(
        base_url=stack.base_url, follow_redirects=False, headers={"X-Forwarded-For": "198.51.100.9"}
    ) as browser:
        assert browser.post("/signin", data={"api_key": stack.person_token(key)}).status_code == 303
        # When it draws its pages more often than its key may make requests
        answers = [browser.get("/dashboard").status_code for _ in range(PER_KEY + 1)]
    # Then the page past the limit is refused like an API request past it
    assert answers[:PER_KEY] == [200] * PER_KEY
    assert answers[PER_KEY] == 429
