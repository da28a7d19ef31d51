"""Every endpoint, for every kind of caller: the status, and no forbidden field in any body.

Callers: the admin, the coordinator, a member of the negotiation, a member not in it, the vendor,
another vendor (each with its integration key), people of the member (its owner, an approver, a
contributor), of the coordinator (an approver) and of the member not in it (its owner), no key, a
wrong key. A refused call must change nothing, so the negotiation's sequence is checked after all
of them. Each allowed command runs against a fresh negotiation in the phase it needs, and must
succeed with the status of SPEC section 8. Who acted is the acting organisation's own business
(SPEC section 10): no caller's answer names a person of another organisation, nor their id.

The drafts endpoints (SPEC section 10) are a member organisation's own: nobody outside the
member (the coordinator, the vendor, outsiders and all their people) sees a draft or a comment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, values_of

SECRET_A = "secret-rationale-of-member-a"
SECRET_B = "secret-rationale-of-member-b"
TITLE = "Matrix negotiation"
ITEMS = [{"key": "no-ai-training"}, {"key": "data-location"}]
VENDOR_NEVER_SEES = (
    "weight",
    "rationale",
    "satisfaction",
    "cohesion",
    "support_share",
    "must_share",
    "priority_score",
    "members",
    "policy",
    "accepting_share",
    "rejecting_share",
)
PEOPLE = {
    # caller: (organisation, role in it, name); a first owner is the one the admin made with the organisation
    "member_owner": ("member", "owner", "Owner of Org member"),
    "member_approver": ("member", "approver", "Max Approver"),
    "member_contributor": ("member", "contributor", "Moe Contributor"),
    "coordinator_approver": ("coordinator", "approver", "Cora Approver"),
    "outsider_owner": ("outsider_member", "owner", "Owner of Org outsider_member"),
}
CALLERS = [
    "admin",
    "coordinator",
    "member",
    "outsider_member",
    "vendor",
    "other_vendor",
    *PEOPLE,
    "no_key",
    "wrong_key",
]


def org_of(caller: str) -> str:
    """The organisation a caller calls for (the admin and the keyless for none: themselves)."""
    return PEOPLE[caller][0] if caller in PEOPLE else caller


def person_role(caller: str) -> str | None:
    """The caller's role inside its organisation; None for an integration key (and the rest)."""
    return PEOPLE[caller][1] if caller in PEOPLE else None


@dataclass
class World:
    stack: RunningStack
    ids: dict[str, str]
    keys: dict[str, str]
    people: list[tuple[str, str, str]]
    """Every person of the world's organisations: (organisation, name, id)."""

    def client(self, caller: str) -> httpx.Client:
        if caller == "no_key":
            return self.stack.client()
        if caller == "wrong_key":
            return self.stack.client("kk_000000000000_not-a-real-secret")
        return self.stack.client(self.keys[caller])

    def prepared(self, phase: str = "negotiating") -> str:
        """A fresh negotiation: members A (7) and B (3) with positions, version 1 published, round 1
        answered, clarification 1 asked; and then, for a later ``phase`` (see ``PHASES``): proposed
        (endorsing), accepted by A (agreed: one commitment, no-ai-training), a plan proposed
        (planned), the plan accepted (implementing), the commitment delivered (delivered) and
        found met (fulfilled)."""
        # The member's position is stated by its approver and the demand published by the
        # coordinator's: the log names people, whom nobody outside their organisation may see.
        coordinator, vendor = self.client("coordinator"), self.client("vendor")
        member_a, member_b = self.client("member_approver"), self.client("member_b")
        publisher = self.client("coordinator_approver")
        opened = coordinator.post(
            "/v1/negotiations", json={"title": TITLE, "vendor_id": self.ids["vendor"], "items": ITEMS}
        )
        assert opened.status_code == 201, opened.text
        nid = opened.json()["id"]
        steps: list[tuple[httpx.Client, str, str, dict[str, Any] | None, int]] = [
            (coordinator, "POST", "/members", {"organisation_id": self.ids["member"], "weight": 7}, 201),
            (coordinator, "POST", "/members", {"organisation_id": self.ids["member_b"], "weight": 3}, 201),
            (member_a, "PUT", "/positions/no-ai-training", {"priority": "must", "rationale": SECRET_A}, 200),
            (member_b, "PUT", "/positions/no-ai-training", {"priority": "should", "rationale": SECRET_B}, 200),
            (member_b, "PUT", "/positions/data-location", {"priority": "must", "accepted": ["NL", "EU"]}, 200),
            (publisher, "POST", "/demand/publish", None, 201),
            (
                vendor,
                "POST",
                "/responses",
                {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]},
                201,
            ),
            (vendor, "POST", "/clarifications", {"item_key": "data-location", "question": "Is EEA fine?"}, 201),
        ]
        due = {"items": [{"key": "no-ai-training", "due": "2099-12-31", "note": "With the next release"}]}
        later = [
            (coordinator, "POST", "/agreement/propose", None, 200),
            (member_a, "POST", "/agreement/endorsements", {"decision": "accept"}, 201),
            (vendor, "POST", "/commitments/plan", due, 201),
            (coordinator, "POST", "/commitments/plan/accept", None, 200),
            (vendor, "POST", "/commitments/no-ai-training/delivered", {"evidence": "https://example.org/n"}, 201),
            (coordinator, "POST", "/commitments/no-ai-training/verdict", {"verdict": "met"}, 200),
        ]
        steps += later[: PHASES.index(phase)]
        for client, method, path, body, status in steps:
            response = client.request(method, f"/v1/negotiations/{nid}{path}", json=body)
            assert response.status_code == status, f"{method} {path}: {response.text}"
        return nid


PHASES = ["negotiating", "endorsing", "agreed", "planned", "implementing", "delivered", "fulfilled"]
"""The phases ``World.prepared`` makes, in order ("planned" and "delivered" are moments of
``agreed`` and ``implementing``: a plan awaiting its decision, a delivery awaiting its verdict)."""


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> World:
    ids, keys = {}, {}
    people = []
    for name, role in [
        ("coordinator", "coordinator"),
        ("member", "member"),
        ("member_b", "member"),
        ("outsider_member", "member"),
        ("spare_member", "member"),
        ("vendor", "vendor"),
        ("other_vendor", "vendor"),
    ]:
        ids[name], keys[name] = stack.organisation(f"Org {name}", role)
        owner = stack.person_token(keys[name])
        me = stack.client(owner).get("/v1/people/me").json()
        people.append((name, me["name"], me["id"]))
        if name in ("member", "outsider_member"):
            keys[f"{'member' if name == 'member' else 'outsider'}_owner"] = owner
    for caller, (organisation, role, name) in PEOPLE.items():
        if role != "owner":
            person_id, keys[caller] = stack.person(keys[organisation], name, role)
            people.append((organisation, name, person_id))
    keys["admin"] = stack.admin_token
    for name in ("coordinator", "member", "outsider_member", "vendor"):
        keys[f"{name}_owner"] = stack.person_token(keys[name])
    return World(stack, ids, keys, people)


WHAT_IF = {"coverage": "1/2", "drop": ["data-location"]}
"""A what-if that leaves member B (a must on data location) behind: the coordinator learns its name."""
READS_BY_POST = ("/what-if",)
"""Endpoints that take a body to read with (a what-if): reads like GETs, for every caller, and no
command (nothing is written, so nothing is replayed with an Idempotency-Key)."""


def reads(method: str, suffix: str) -> bool:
    return method == "GET" or suffix in READS_BY_POST


# (method, path after /v1/negotiations/{id}, body, the role allowed to act, its status, phase it needs)
NEGOTIATION_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], int, str]] = [
    ("GET", "", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    ("POST", "/members", {"organisation_id": "<spare_member>", "weight": 2}, ("coordinator",), 201, "negotiating"),
    ("PUT", "/policy", {"inclusion_share": "2/3"}, ("coordinator",), 200, "negotiating"),
    ("PUT", "/positions/data-location", {"priority": "should", "accepted": ["EU"]}, ("member",), 200, "negotiating"),
    ("DELETE", "/positions/no-ai-training", None, ("member",), 204, "negotiating"),
    ("GET", "/positions", None, ("coordinator", "member"), 200, "negotiating"),
    ("GET", "/demand", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    ("GET", "/demand/explain", None, ("coordinator", "member"), 200, "negotiating"),
    ("POST", "/what-if", WHAT_IF, ("coordinator", "member"), 200, "negotiating"),
    ("GET", "/suggestions", None, ("coordinator",), 200, "negotiating"),
    ("POST", "/demand/publish", None, ("coordinator",), 201, "negotiating"),
    ("GET", "/demand/versions/1", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    (
        "POST",
        "/responses",
        {"demand_version": 1, "items": [{"key": "data-location", "verdict": "counter", "option": "EU"}]},
        ("vendor",),
        201,
        "negotiating",
    ),
    ("GET", "/state", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    (
        "POST",
        "/clarifications",
        {"item_key": "no-ai-training", "question": "Which models?"},
        ("vendor",),
        201,
        "negotiating",
    ),
    ("POST", "/clarifications/1/answer", {"answer": "Yes, EEA is fine."}, ("coordinator",), 200, "negotiating"),
    ("POST", "/agreement/propose", None, ("coordinator",), 200, "negotiating"),
    ("POST", "/agreement/endorsements", {"decision": "accept"}, ("member",), 201, "endorsing"),
    ("POST", "/abandon", {"reason": "budget"}, ("coordinator",), 200, "negotiating"),
    ("GET", "/events", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    ("GET", "/stream", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    ("GET", "/export/ocds", None, ("coordinator", "member"), 409, "negotiating"),  # 200 once agreed
    # after the agreement (SPEC section 9)
    ("GET", "/commitments", None, ("coordinator", "member", "vendor"), 200, "negotiating"),
    (
        "POST",
        "/commitments/plan",
        {"items": [{"key": "no-ai-training", "due": "2099-06-30"}]},
        ("vendor",),
        201,
        "agreed",
    ),
    ("POST", "/commitments/plan/accept", None, ("coordinator",), 200, "planned"),
    ("POST", "/commitments/plan/reject", {"comment": "Sooner, please"}, ("coordinator",), 200, "planned"),
    (
        "POST",
        "/commitments/no-ai-training/delivered",
        {"evidence": "Switched off in the admin centre"},
        ("vendor",),
        201,
        "implementing",
    ),
    ("POST", "/commitments/no-ai-training/checks", {"verdict": "met"}, ("member",), 201, "delivered"),
    ("POST", "/commitments/no-ai-training/verdict", {"verdict": "not_met"}, ("coordinator",), 200, "delivered"),
    ("POST", "/commitments/no-ai-training/regressions", {"comment": "It is back"}, ("member",), 201, "fulfilled"),
    ("POST", "/reopen", {"items": ["no-ai-training"]}, ("coordinator",), 200, "implementing"),
]


def expected_status(caller: str, allowed: tuple[str, ...], allowed_status: int, method: str = "GET") -> int:
    """``method`` "GET" for any read (``reads``): a contributor reads, and acts for nobody."""
    if caller in ("no_key", "wrong_key"):
        return 401
    if caller == "admin":
        return 403
    if org_of(caller) in ("outsider_member", "other_vendor"):
        return 404  # not a party: nothing in it exists for them
    if org_of(caller) not in allowed:
        return 403
    if person_role(caller) == "contributor" and method != "GET":
        return 403  # a contributor reads, and acts for nobody (SPEC section 10)
    return allowed_status


def people_leaks(caller: str, body: Any, world: World) -> list[str]:
    """People of other organisations than the caller's, named or identified in a response body."""
    text = json.dumps(body)
    return [
        f"{name} of {organisation}"
        for organisation, name, person_id in world.people
        if organisation != org_of(caller) and (name in text or person_id in text)
    ]


def forbidden_in(caller: str, body: Any, world: World) -> list[str]:
    """What this caller may not see, found in a response body."""
    text = json.dumps(body)
    found = people_leaks(caller, body, world) if caller != "admin" else []
    caller = org_of(caller)
    if caller in ("vendor", "other_vendor"):
        for member in ("member", "member_b", "spare_member"):
            if world.ids[member] in text or f"Org {member}" in text:
                found.append(f"the identity of {member}")
        found += [secret for secret in (SECRET_A, SECRET_B) if secret in text]
        for field in VENDOR_NEVER_SEES:
            found += [f"{field}={value!r}" for value in values_of(body, field) if value is not None]
        if values_of(body, "included"):  # only lines of the live joint demand say whether they are included
            found.append("the live demand")
    if caller == "member":
        found += [SECRET_B] if SECRET_B in text else []
        if isinstance(body, list):  # positions: only its own without transparency
            found += [
                f"position of {p['member_id']}"
                for p in body
                if p.get("member_id", world.ids["member"]) != world.ids["member"]
            ]
        for derivation in values_of(body, "derivation"):  # the explanation: names only its own position
            found += [
                f"explained position of {p['member_id']}"
                for p in (derivation or {}).get("positions", [])
                if p.get("member_id") not in (None, world.ids["member"])
                or (p.get("member_id") is None) != (p.get("member_name") is None)
            ]
        # a what-if: counts, never the names of the members it moves
        found += [f"names in a what-if: {names}" for names in values_of(body, "names") if names is not None]
        for satisfaction in values_of(body, "satisfaction"):
            found += [
                f"satisfaction of {s['organisation_id']}"
                for s in satisfaction or []
                if s["organisation_id"] != world.ids["member"]
            ]
    if caller in ("outsider_member", "other_vendor", "admin", "no_key", "wrong_key") and TITLE in text:
        found.append("the negotiation's title")
    return found


def call(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None, world: World) -> httpx.Response:
    if path.endswith("/stream"):
        # A live stream does not end: take its status (and an error's body), then hang up.
        with client.stream(method, path, params={"after": 10**6}) as response:
            if response.status_code >= 400:
                response.read()
                return response
        return httpx.Response(response.status_code, headers={"content-type": response.headers["content-type"]})
    if body is not None:
        body = json.loads(json.dumps(body).replace("<spare_member>", world.ids["spare_member"]))
    return client.request(method, path, json=body)


def problem_shape(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    problem = response.json()
    assert problem["status"] == response.status_code
    assert problem["title"]


def test_every_negotiation_endpoint_for_every_caller(world: World) -> None:
    # Given a negotiation in the negotiating phase with two members, a published version and a round
    nid = world.prepared()
    coordinator = world.client("coordinator")
    before = coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"]
    mismatches, leaks = [], []
    # When every caller calls every endpoint that the caller may not use to change anything
    for method, suffix, body, allowed, allowed_status, _ in NEGOTIATION_ENDPOINTS:
        for caller in CALLERS:
            expected = expected_status(caller, allowed, allowed_status, "GET" if reads(method, suffix) else method)
            if expected == allowed_status and not reads(method, suffix):
                continue  # allowed commands run below, each on a negotiation of its own
            response = call(world.client(caller), method, f"/v1/negotiations/{nid}{suffix}", body, world)
            if response.status_code != expected:
                mismatches.append(f"{caller} {method} {suffix or '/'}: {response.status_code}, wanted {expected}")
            if response.status_code >= 400:
                problem_shape(response)
            if response.content:
                leaks += [
                    f"{caller} {method} {suffix or '/'}: {leak}"
                    for leak in forbidden_in(caller, response.json(), world)
                ]
    # Then each got its status, nobody saw what they may not, and nothing changed
    assert mismatches == []
    assert leaks == []
    assert coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"] == before


def acting_callers(allowed: tuple[str, ...]) -> list[str]:
    """Who may send a command of the one role allowed: its integration key, and its people who act
    for it (the member's owner and approver, the coordinator's approver)."""
    (role,) = allowed
    return [role] + [
        caller for caller, (organisation, r, _) in PEOPLE.items() if organisation == role and r != "contributor"
    ]


AFTER_AGREEMENT = ("/commitments", "/reopen")
"""SPEC section 9's endpoints: each is acted on by its organisation's integration key only here.
Who acts for an organisation is one rule of the core (``acts_for_organisation``), which the
endpoints before them prove for the people who may (owners, approvers) at every phase, and the
first test of this module for those who may not (contributors) at every endpoint, these included;
each of these acts prepares a negotiation through up to fourteen commands."""

ACTS = [
    (caller, *endpoint)
    for endpoint in NEGOTIATION_ENDPOINTS
    if not reads(endpoint[0], endpoint[1])
    for caller in (endpoint[3] if endpoint[1].startswith(AFTER_AGREEMENT) else acting_callers(endpoint[3]))
]


@pytest.mark.parametrize(
    ("caller", "method", "suffix", "body", "allowed", "status", "phase"),
    ACTS,
    ids=[f"{a[0]} {a[1]} {a[2]}" for a in ACTS],
)
def test_the_allowed_party_can_act(
    world: World,
    caller: str,
    method: str,
    suffix: str,
    body: dict[str, Any] | None,
    allowed: tuple[str, ...],
    status: int,
    phase: str,
) -> None:
    # Given a fresh negotiation in the phase the command needs
    nid = world.prepared(phase)
    before = world.client("coordinator").get(f"/v1/negotiations/{nid}").json()["sequence"]
    # When the one role that may act does so, with its integration key or as a person who acts for it
    response = call(world.client(caller), method, f"/v1/negotiations/{nid}{suffix}", body, world)
    # Then it succeeds, the change is readable at once, and the body shows nothing forbidden
    assert response.status_code == status, response.text
    after = world.client("coordinator").get(f"/v1/negotiations/{nid}").json()["sequence"]
    assert after > before
    # (the vendor counts only the events it may see, with its own counter)
    assert world.client("vendor").get(f"/v1/negotiations/{nid}").json()["sequence"] <= after
    if response.content:
        assert forbidden_in(caller, response.json(), world) == []


@pytest.mark.parametrize("caller", CALLERS)
def test_the_endpoints_outside_a_negotiation(world: World, caller: str) -> None:
    client = world.client(caller)
    create_org = client.post("/v1/organisations", json={"name": "New member", "role": "member"})
    me = client.get("/v1/organisations/me")
    create_negotiation = client.post(
        "/v1/negotiations", json={"title": "Another", "vendor_id": world.ids["vendor"], "items": ITEMS}
    )
    listing = client.get("/v1/negotiations")
    if caller in ("no_key", "wrong_key"):
        assert [r.status_code for r in (create_org, me, create_negotiation, listing)] == [401] * 4
        assert create_org.headers["www-authenticate"].startswith("Bearer")
        return
    assert create_org.status_code == (201 if caller == "admin" else 403)
    assert me.status_code == 200
    assert me.json()["role"] == ("admin" if caller == "admin" else _role(caller))
    assert "api_key" not in me.json()
    # The person behind a personal token is named; an integration key is nobody
    if caller in PEOPLE:
        assert (me.json()["person"]["name"], me.json()["person"]["role"]) == (PEOPLE[caller][2], PEOPLE[caller][1])
    else:
        assert me.json().get("person") is None
    opens = org_of(caller) == "coordinator" and person_role(caller) != "contributor"
    assert create_negotiation.status_code == (201 if opens else 403)
    assert listing.status_code == (403 if caller == "admin" else 200)
    if org_of(caller) in ("outsider_member", "other_vendor"):
        assert listing.json() == []
    for response in (me, listing):
        if response.status_code == 200:
            assert forbidden_in(caller, response.json(), world) == []


def _role(caller: str) -> str:
    return {"coordinator": "coordinator", "member": "member", "outsider_member": "member"}.get(org_of(caller), "vendor")


@pytest.mark.parametrize("caller", CALLERS)
def test_subscriptions_for_every_caller(world: World, caller: str) -> None:
    nid = world.prepared()
    client = world.client(caller)
    anywhere = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"})
    here = client.post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook", "negotiation_id": nid})
    listed = client.get("/v1/subscriptions")
    expected = {"no_key": 401, "wrong_key": 401, "admin": 403}.get(caller)
    if expected is not None:
        assert [r.status_code for r in (anywhere, here, listed)] == [expected] * 3
        return
    if person_role(caller) in ("approver", "contributor"):
        # Webhooks are the organisation's integrations: its owners and its integration key manage
        # and read them (an address can itself be a secret)
        assert [r.status_code for r in (anywhere, here, listed)] == [403, 403, 403]
        made = world.client(org_of(caller)).post("/v1/subscriptions", json={"url": "http://127.0.0.1:9/hook"})
        assert made.status_code == 201
        subscription_id = made.json()["id"]
        for method, suffix, status in (("GET", "", 403), ("GET", "/deliveries", 403), ("POST", "/enable", 403)):
            assert client.request(method, f"/v1/subscriptions/{subscription_id}{suffix}").status_code == status
        assert client.delete(f"/v1/subscriptions/{subscription_id}").status_code == 403
        assert world.client(org_of(caller)).delete(f"/v1/subscriptions/{subscription_id}").status_code == 204
        return
    assert anywhere.status_code == 201
    assert here.status_code == (404 if org_of(caller) in ("outsider_member", "other_vendor") else 201)
    assert listed.status_code == 200
    assert all("secret" not in s for s in listed.json())
    # Nobody reads, enables or deletes another organisation's subscription
    other = world.client("coordinator" if org_of(caller) != "coordinator" else "vendor")
    subscription_id = anywhere.json()["id"]
    for method, suffix in (("GET", ""), ("GET", "/deliveries"), ("POST", "/enable"), ("DELETE", "")):
        assert other.request(method, f"/v1/subscriptions/{subscription_id}{suffix}").status_code == 404
    assert client.delete(f"/v1/subscriptions/{subscription_id}").status_code == 204


@pytest.mark.parametrize("caller", CALLERS)
def test_the_people_endpoints_for_every_caller(world: World, caller: str) -> None:
    # Given a person of the member to re-role and remove, and a spare token of its approver's
    client, member_owner, approver = world.client(caller), world.client("member_owner"), world.client("member_approver")
    target = member_owner.post("/v1/organisations/me/people", json={"name": "Tess Target", "role": "contributor"})
    assert target.status_code == 201, target.text
    target_id = target.json()["id"]
    world.people.append(("member", "Tess Target", target_id))
    spare = approver.post("/v1/people/me/tokens", json={"label": "spare"})
    assert spare.status_code == 201, spare.text
    organisation, role = org_of(caller), person_role(caller)
    invited = f"Ivy Invited by {caller}"  # names are told apart by the leak check: one per organisation
    owner_here = 200 if organisation == "member" else 404  # another organisation's people are not there
    # (what, method, path, body, status)
    calls: list[tuple[str, str, str, dict[str, Any] | None, int]] = [
        ("list people", "GET", "/v1/organisations/me/people", None, 403 if caller == "admin" else 200),
        ("invite", "POST", "/v1/organisations/me/people", {"name": invited}, 201 if role == "owner" else 403),
        (
            "change a role",
            "PUT",
            f"/v1/organisations/me/people/{target_id}",
            {"role": "approver"},
            owner_here if role == "owner" else 403,
        ),
        ("remove", "DELETE", f"/v1/organisations/me/people/{target_id}", None, owner_here if role == "owner" else 403),
        (
            "add an owner",
            "POST",
            f"/v1/organisations/{world.ids['member']}/owners",
            {"name": "Adam Admin-made"},
            201 if caller == "admin" else 403,
        ),
        ("who am I", "GET", "/v1/people/me", None, 200 if role else 403),
        ("list tokens", "GET", "/v1/people/me/tokens", None, 200 if role else 403),
        ("make a token", "POST", "/v1/people/me/tokens", {"label": "matrix"}, 201 if role else 403),
        (
            "revoke another's token",
            "DELETE",
            f"/v1/people/me/tokens/{spare.json()['id']}",
            None,
            (200 if caller == "member_approver" else 404) if role else 403,
        ),
    ]
    if caller == "admin" or role in ("approver", "contributor"):
        # (the owners and integration keys that may rotate the key are not run here: the key is the world's)
        calls.append(("rotate the key", "POST", "/v1/organisations/me/key/rotate", None, 403))
    mismatches, leaks = [], []
    # When the caller calls each
    for what, method, path, body, status in calls:
        response = client.request(method, path, json=body)
        expected = 401 if caller in ("no_key", "wrong_key") else status
        if response.status_code != expected:
            mismatches.append(f"{what}: {response.status_code}, wanted {expected}: {response.text[:200]}")
        if response.status_code >= 400:
            problem_shape(response)
        elif response.content:
            created = response.json()
            if isinstance(created, dict) and created.get("name") in (invited, "Adam Admin-made"):
                world.people.append(("member" if caller == "admin" else organisation, created["name"], created["id"]))
            if caller != "admin":
                leaks += [f"{what}: {leak}" for leak in people_leaks(caller, created, world)]
            if method == "GET" and role:
                # a person's own documents never hold a token, only their ids
                assert "kkp_" not in json.dumps(created), what
    # Then each got its status, and saw no person of another organisation
    assert mismatches == []
    assert leaks == []
    approver.delete(f"/v1/people/me/tokens/{spare.json()['id']}")


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_operations_endpoints_answer_anyone(world: World, path: str) -> None:
    assert world.client("no_key").get(path).status_code == 200


@pytest.mark.parametrize("caller", CALLERS)
def test_metrics_answer_only_the_metrics_token(world: World, caller: str) -> None:
    # /metrics counts commands by type: only the operator's scraper reads it (docs/security.md#metrics)
    assert world.client(caller).get("/metrics").status_code == 401
    scraped = world.stack.client(world.stack.metrics_token).get("/metrics")
    assert scraped.status_code == 200
    secret = world.keys["coordinator"].split("_", 2)[2]  # kk_<key id>_<secret>: the secret may contain "_"
    assert len(secret) >= 40  # the whole secret (32 random bytes), not a short piece of it
    assert secret not in scraped.text


# -- the drafts of a member organisation (SPEC section 10) ----------------------------------------

DRAFT_SECRET = "secret-draft-of-member-a"
COMMENT_SECRET = "secret-comment-inside-member-a"
DRAFT_CALLERS = [
    *CALLERS,
    "member_owner",
    "member_approver",
    "member_contributor",
    "coordinator_owner",
    "vendor_owner",
    "outsider_member_owner",
]
MEMBER_A = {
    "member": "integration key",
    "member_owner": "owner",
    "member_approver": "approver",
    "member_contributor": "contributor",
}
"""Member A's callers, and what each is in it."""
DRAFTERS = ("owner", "approver", "contributor")

# (method, path after /v1/negotiations/{id}, body, who of the member may (its people by role, or its
# "integration key"), its status)
DRAFT_ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], int]] = [
    ("GET", "/drafts", None, ("integration key", *DRAFTERS), 200),
    ("PUT", "/drafts/data-location", {"priority": "should", "accepted": ["EU"]}, DRAFTERS, 200),
    ("POST", "/drafts/data-location/comments", {"text": "Fine by me"}, DRAFTERS, 201),
    ("POST", "/drafts/data-location/adopt", None, ("owner", "approver"), 200),
]


def expected_draft_status(caller: str, allowed: tuple[str, ...], allowed_status: int) -> int:
    if caller in ("no_key", "wrong_key"):
        return 401
    if caller == "admin":
        return 403
    if caller not in MEMBER_A:
        return 404  # the coordinator, the vendor, outsiders and all their people: there are no drafts
    return allowed_status if MEMBER_A[caller] in allowed else 403


def drafted(world: World, nid: str) -> list[Any]:
    """Member A's contributor drafts data-location with a secret rationale and comments on it."""
    contributor = world.client("member_contributor")
    draft = {"priority": "must", "accepted": ["NL"], "rationale": DRAFT_SECRET}
    assert contributor.put(f"/v1/negotiations/{nid}/drafts/data-location", json=draft).status_code == 200
    comment = {"text": COMMENT_SECRET}
    assert contributor.post(f"/v1/negotiations/{nid}/drafts/data-location/comments", json=comment).status_code == 201
    drafts: list[Any] = contributor.get(f"/v1/negotiations/{nid}/drafts").json()
    return drafts


def test_every_drafts_endpoint_for_every_caller(world: World) -> None:
    # Given a negotiation in which member A's contributor drafted a position and commented on it
    nid = world.prepared()
    before_drafts = drafted(world, nid)
    coordinator = world.client("coordinator")
    before = coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"]
    mismatches, leaks = [], []
    # When every caller calls every drafts endpoint that the caller may not use to change anything
    for method, suffix, body, allowed, allowed_status in DRAFT_ENDPOINTS:
        for caller in DRAFT_CALLERS:
            expected = expected_draft_status(caller, allowed, allowed_status)
            if expected == allowed_status and method != "GET":
                continue  # allowed writes run below, each on a negotiation of its own
            response = call(world.client(caller), method, f"/v1/negotiations/{nid}{suffix}", body, world)
            if response.status_code != expected:
                mismatches.append(f"{caller} {method} {suffix}: {response.status_code}, wanted {expected}")
            if response.status_code >= 400:
                problem_shape(response)
            if caller not in MEMBER_A:
                leaks += [
                    f"{caller} {method} {suffix}: {s}" for s in (DRAFT_SECRET, COMMENT_SECRET) if s in response.text
                ]
    # Then each got its status, nobody outside member A saw its draft, and nothing changed
    assert mismatches == []
    assert leaks == []
    assert coordinator.get(f"/v1/negotiations/{nid}").json()["sequence"] == before
    assert world.client("member_contributor").get(f"/v1/negotiations/{nid}/drafts").json() == before_drafts


@pytest.mark.parametrize(
    ("method", "suffix", "body", "caller", "status"),
    [
        (method, suffix, body, caller, status)
        for method, suffix, body, allowed, status in DRAFT_ENDPOINTS
        if method != "GET"
        for caller, role in MEMBER_A.items()
        if role in allowed
    ],
    ids=[
        f"{method} {suffix} by {role}"
        for method, suffix, _, allowed, _ in DRAFT_ENDPOINTS
        if method != "GET"
        for role in MEMBER_A.values()
        if role in allowed
    ],
)
def test_the_members_people_draft_comment_and_adopt(
    world: World, method: str, suffix: str, body: dict[str, Any] | None, caller: str, status: int
) -> None:
    # Given a fresh negotiation with a draft of member A
    nid = world.prepared()
    drafted(world, nid)
    before = world.client("coordinator").get(f"/v1/negotiations/{nid}").json()["sequence"]
    # When one of member A's people who may act does so
    response = call(world.client(caller), method, f"/v1/negotiations/{nid}{suffix}", body, world)
    # Then it succeeds; only an adoption is a command, and it states the position
    assert response.status_code == status, response.text
    after = world.client("coordinator").get(f"/v1/negotiations/{nid}").json()["sequence"]
    assert after == (before + 1 if suffix.endswith("/adopt") else before)
    if suffix.endswith("/adopt"):
        own = world.client("member").get(f"/v1/negotiations/{nid}/positions").json()
        assert ("data-location", ["NL"]) in [(p["item_key"], p.get("accepted")) for p in own]
