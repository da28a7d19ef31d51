"""API keys: the admin revokes an organisation's integration key or issues it a new one; an
organisation rotates its own; an owner removes a person, whose personal tokens stop. A revoked or
replaced key stops working at once in the API process that changed it, and
within ``KOOPKRACHT_KEY_CACHE_TTL_S`` in every other: here a second API process on the same database
and Kafka, which had the key in its cache. The admin token must be long enough to start at all.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.settings import SettingsError, load_settings
from tests.conftest import free_base_port
from tests.e2e.conftest import RunningStack, running_stack
from tests.reliability.harness import wait_for

TTL_S = 3.0
MARGIN_S = 10.0  # two cores shared with other test runs: a poll may wait its turn


@dataclass
class TwoApis:
    stack: RunningStack
    other_url: str
    other_log: Path

    def first(self, key: str | None) -> httpx.Client:
        return self.stack.client(key)

    def second(self, key: str | None) -> httpx.Client:
        client = httpx.Client(
            base_url=self.other_url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=30
        )
        self.stack.clients.append(client)
        return client


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def apis(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TwoApis]:
    tmp = tmp_path_factory.mktemp(f"keys-{request.param}")
    with running_stack(kafka_bootstrap, tmp, request.param, key_cache_ttl_s=TTL_S) as stack:
        # A second API process, as a deployment with several would run: same settings, another port
        port = free_base_port(1)
        log = tmp / "second-api.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "services", "api", "--port", str(port)],
                env=stack.stack.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: process.poll() is None and _answers(f"{url}/healthz"), 60, "the second API")
            yield TwoApis(stack, url, log)
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def me(client: httpx.Client) -> int:
    return client.get("/v1/organisations/me").status_code


def test_a_revoked_key_gets_401_in_every_api_process_within_the_bound(apis: TwoApis) -> None:
    organisation_id, key = apis.stack.organisation("Revoked member", "member")
    # Given the key works in both API processes (so both have it in their cache)
    assert me(apis.first(key)) == 200
    assert me(apis.second(key)) == 200
    # When the admin revokes it through the first
    revoked = apis.first(apis.stack.admin_token).post(f"/v1/organisations/{organisation_id}/key/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["id"] == organisation_id
    assert "api_key" not in revoked.json()
    # Then the first refuses it at once, the second within the cache's bound
    assert me(apis.first(key)) == 401
    wait_for(lambda: me(apis.second(key)) == 401, TTL_S + MARGIN_S, "the second API to refuse the revoked key")
    # ...and it signs in to no dashboard either
    assert apis.second(None).post("/signin", data={"api_key": key}).status_code == 401
    # When the admin issues it a new key, that one works everywhere, the revoked one nowhere
    issued = apis.first(apis.stack.admin_token).post(f"/v1/organisations/{organisation_id}/key")
    assert issued.status_code == 201, issued.text
    new_key = issued.json()["api_key"]
    assert [me(apis.first(new_key)), me(apis.second(new_key))] == [200, 200]
    assert [me(apis.first(key)), me(apis.second(key))] == [401, 401]


def test_a_rotated_key_the_new_works_the_old_stops(apis: TwoApis) -> None:
    organisation_id, old = apis.stack.organisation("Rotating coop", "coordinator")
    assert me(apis.first(old)) == 200
    assert me(apis.second(old)) == 200
    # When the organisation rotates its key through the second API process
    rotated = apis.second(old).post("/v1/organisations/me/key/rotate")
    assert rotated.status_code == 201, rotated.text
    body = rotated.json()
    assert body["id"] == organisation_id
    new = body["api_key"]
    assert new != old
    # Then the new key works in both processes, the old one stops: at once where it was rotated,
    # within the bound in the other
    assert [me(apis.first(new)), me(apis.second(new))] == [200, 200]
    assert me(apis.second(old)) == 401
    wait_for(lambda: me(apis.first(old)) == 401, TTL_S + MARGIN_S, "the first API to refuse the rotated key")
    # ...and the organisation is the same: its negotiations and documents stay its own
    assert apis.first(new).get("/v1/organisations/me").json()["id"] == organisation_id


def test_a_live_stream_on_a_revoked_key_ends(apis: TwoApis) -> None:
    coordinator_id, key = apis.stack.organisation("Streaming coop", "coordinator")
    vendor_id, _ = apis.stack.organisation("Streamed vendor", "vendor")
    opened = apis.first(key).post(
        "/v1/negotiations", json={"title": "Streamed", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
    )
    assert opened.status_code == 201, opened.text
    heartbeat_s = apis.stack.settings.sse_heartbeat_s
    # Given the coordinator follows its negotiation live on the second API process
    with apis.second(key).stream("GET", f"/v1/negotiations/{opened.json()['id']}/stream") as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: NegotiationOpened"
        # When the admin revokes its key through the first
        revoke = apis.first(apis.stack.admin_token).post(f"/v1/organisations/{coordinator_id}/key/revoke")
        assert revoke.status_code == 200
        # Then the stream ends within the key cache's bound and one heartbeat (each comment line
        # the server sends meanwhile lets the deadline be checked)
        deadline = time.monotonic() + TTL_S + heartbeat_s + MARGIN_S
        for _ in lines:
            assert time.monotonic() < deadline, "the stream outlived its revoked key"


def test_removing_a_person_ends_their_sessions_and_tokens_in_every_api_process(apis: TwoApis) -> None:
    # Given a second owner of a coordinator with two personal tokens, known to both API processes,
    # and signed in to the dashboard
    _, key = apis.stack.organisation("Dashboard coop", "coordinator")
    person_id, token = apis.stack.person(key, "Ada Owner", "owner")
    script = apis.first(token).post("/v1/people/me/tokens", json={"label": "nightly export"})
    assert script.status_code == 201, script.text
    second_token = script.json()["token"]
    for credential in (token, second_token):
        assert [me(apis.first(credential)), me(apis.second(credential))] == [200, 200]
    browser = apis.stack.client()
    assert browser.post("/signin", data={"api_key": token}).status_code == 303
    assert browser.get("/dashboard").status_code == 200
    # ...and with a webhook she subscribed to the organisation's events (an approver could not)
    hook = {"url": "http://127.0.0.1:9/her-own-server"}
    subscribed = apis.first(token).post("/v1/subscriptions", json=hook)
    assert subscribed.status_code == 201, subscribed.text
    _, approver = apis.stack.person(key, "Arjen Approver", "approver")
    refused = apis.first(approver).post("/v1/subscriptions", json=hook)
    assert refused.status_code == 403 and "owner" in refused.json()["detail"]
    # When an owner removes her through the first API process
    removed = apis.first(apis.stack.person_token(key)).delete(f"/v1/organisations/me/people/{person_id}")
    assert removed.status_code == 200, removed.text
    assert removed.json()["status"] == "removed"
    # Then her dashboard session has ended, her tokens are refused at once by the first process and
    # within the key cache's bound by the second, and she cannot sign in again
    assert browser.get("/dashboard").headers.get("location") == "/signin"
    for credential in (token, second_token):
        assert me(apis.first(credential)) == 401
        wait_for(lambda c=credential: me(apis.second(c)) == 401, TTL_S + MARGIN_S, "the second API to refuse her")
    assert apis.stack.client().post("/signin", data={"api_key": token}).status_code == 401
    # ...and her webhook no longer receives the organisation's events
    owner = apis.first(apis.stack.person_token(key))
    hook_now = owner.get(f"/v1/subscriptions/{subscribed.json()['id']}").json()
    assert hook_now["status"] == "disabled" and "removed" in hook_now["disabled_reason"]
    # ...while the organisation's integration key and its owner go on
    assert me(apis.second(key)) == 200
    assert me(apis.second(apis.stack.person_token(key))) == 200


def test_a_rotation_of_the_integration_key_leaves_peoples_sessions_alone(apis: TwoApis) -> None:
    _, key = apis.stack.organisation("Rotating dashboard coop", "coordinator")
    browser = apis.stack.client()
    assert browser.post("/signin", data={"api_key": apis.stack.person_token(key)}).status_code == 303
    assert apis.first(key).post("/v1/organisations/me/key/rotate").status_code == 201
    assert browser.get("/dashboard").status_code == 200


def test_who_may_revoke_issue_and_rotate(apis: TwoApis) -> None:
    member_id, member_key = apis.stack.organisation("Curious member", "member")
    other_id, other_key = apis.stack.organisation("Other member", "member")
    admin, member = apis.first(apis.stack.admin_token), apis.first(member_key)
    # An organisation revokes or reissues no key, its own or another's; only the admin does
    for target in (member_id, other_id):
        assert member.post(f"/v1/organisations/{target}/key/revoke").status_code == 403
        assert member.post(f"/v1/organisations/{target}/key").status_code == 403
    assert me(apis.first(other_key)) == 200
    # The admin has no key to rotate; an unknown organisation is 404; a bad id is 422
    assert admin.post("/v1/organisations/me/key/rotate").status_code == 403
    assert admin.post("/v1/organisations/org_000000000000/key/revoke").status_code == 404
    assert admin.post("/v1/organisations/org_000000000000/key").status_code == 404
    assert admin.post("/v1/organisations/no%20spaces/key/revoke").status_code == 422
    # Without a valid key, nobody rotates
    assert apis.first("kk_000000000000_not-a-real-secret").post("/v1/organisations/me/key/rotate").status_code == 401
    # Revoking twice changes nothing more
    assert admin.post(f"/v1/organisations/{other_id}/key/revoke").status_code == 200
    assert admin.post(f"/v1/organisations/{other_id}/key/revoke").status_code == 200
    assert me(apis.first(other_key)) == 401


def test_no_key_or_token_is_logged(apis: TwoApis) -> None:
    organisation_id, key = apis.stack.organisation("Logged coop", "coordinator")
    new = apis.first(key).post("/v1/organisations/me/key/rotate").json()["api_key"]
    issued = apis.second(apis.stack.admin_token).post(f"/v1/organisations/{organisation_id}/key").json()["api_key"]
    logs = apis.other_log.read_text(errors="replace") + "\n".join(
        path.read_text(errors="replace") for path in apis.stack.stack.logs.glob("*.log")
    )
    for secret in (key, new, issued):
        assert secret.split("_", 2)[2] not in logs
    assert apis.stack.admin_token not in logs


@pytest.mark.parametrize("token", ["", "short", "x" * 31])
def test_a_short_admin_token_stops_start_up_naming_it(monkeypatch: pytest.MonkeyPatch, token: str) -> None:
    monkeypatch.setenv("KOOPKRACHT_ADMIN_TOKEN", token)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "KOOPKRACHT_ADMIN_TOKEN: Value error, must be at least 32 characters" in str(raised.value.code)


def test_an_admin_token_of_32_characters_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPKRACHT_ADMIN_TOKEN", "x" * 32)
    assert load_settings().admin_token is not None


def test_a_revoked_organisations_webhooks_stop_until_its_new_key_enables_them(apis: TwoApis) -> None:
    # Given an organisation with a webhook subscription (made, say, with a key that leaked)
    organisation_id, key = apis.stack.organisation("Leaky member", "member")
    made = apis.first(key).post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hooks/leaky"})
    assert made.status_code == 201, made.text
    # When the admin revokes the key
    assert apis.first(apis.stack.admin_token).post(f"/v1/organisations/{organisation_id}/key/revoke").status_code == 200
    # Then the subscription is disabled, saying why, and stays so until the new key enables it
    new_key = apis.first(apis.stack.admin_token).post(f"/v1/organisations/{organisation_id}/key").json()["api_key"]
    owner = apis.first(new_key)
    (subscription,) = owner.get("/v1/subscriptions").json()
    assert subscription["status"] == "disabled"
    assert "revoked" in subscription["disabled_reason"]
    assert owner.post(f"/v1/subscriptions/{subscription['id']}/enable").json()["status"] == "active"
