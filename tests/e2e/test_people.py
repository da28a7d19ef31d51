"""People inside organisations on the running stack (SPEC section 10): what each role may and may
not do, personal tokens, the last owner, the admin's owners for organisations from before people,
and who sees the acting person in the change feed."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from streams.core.chain import json_hash
from tests.e2e.conftest import RunningStack, values_of

ITEMS = [{"key": "no-ai-training"}, {"key": "data-location"}]
HOOK = "http://127.0.0.1:9/hooks/people"
ENVELOPE = ("event_id", "sequence", "occurred_at", "type", "previous_hash")


@dataclass
class Org:
    """An organisation made by the admin with a first owner."""

    stack: RunningStack
    id: str
    key: str
    name: str

    @property
    def owner(self) -> httpx.Client:
        return self.stack.client(self.stack.person_token(self.key))

    @property
    def integration(self) -> httpx.Client:
        return self.stack.client(self.key)

    def person(self, name: str, role: str) -> tuple[str, httpx.Client]:
        """A person the first owner invites: (their id, a client with their personal token)."""
        person_id, token = self.stack.person(self.key, name, role)
        return person_id, self.stack.client(token)


def org(stack: RunningStack, role: str, name: str | None = None) -> Org:
    name = name or f"{role.title()} {uuid.uuid4().hex[:6]}"
    organisation_id, key = stack.organisation(name, role)
    return Org(stack, organisation_id, key, name)


def ok(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def refused(response: httpx.Response, status: int, *words: str) -> str:
    """The refusal's detail, checked: its status, a problem document, and the words it must say."""
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = str(response.json()["detail"])
    assert all(word in detail for word in words), detail
    return detail


@dataclass
class Table:
    """A negotiation: the coordinator, the vendor and two members, each with its first owner."""

    nid: str
    coordinator: Org
    vendor: Org
    a: Org
    b: Org

    @property
    def path(self) -> str:
        return f"/v1/negotiations/{self.nid}"


def table(stack: RunningStack, transparent: bool = False) -> Table:
    coordinator, vendor, a, b = (
        org(stack, "coordinator"),
        org(stack, "vendor"),
        org(stack, "member"),
        org(stack, "member"),
    )
    body = {
        "title": "People negotiation",
        "vendor_id": vendor.id,
        "items": ITEMS,
        "policy": {"transparent_positions": transparent},
    }
    nid = ok(coordinator.integration.post("/v1/negotiations", json=body), 201)["id"]
    for member in (a, b):
        invited = coordinator.integration.post(
            f"/v1/negotiations/{nid}/members", json={"organisation_id": member.id, "weight": 1}
        )
        ok(invited, 201)
    return Table(nid, coordinator, vendor, a, b)


def published(t: Table) -> None:
    """Both members stated a position; version 1 is published."""
    ok(t.a.integration.put(f"{t.path}/positions/no-ai-training", json={"priority": "must"}), 200)
    ok(t.b.integration.put(f"{t.path}/positions/data-location", json={"priority": "must", "accepted": ["EU"]}), 200)
    ok(t.coordinator.integration.post(f"{t.path}/demand/publish"), 201)


def proposed(t: Table) -> None:
    """Version 1 answered by the vendor and the agreement proposed: the members may endorse."""
    answer = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
    ok(t.vendor.integration.post(f"{t.path}/responses", json=answer), 201)
    ok(t.coordinator.integration.post(f"{t.path}/agreement/propose"), 200)


def sequence(t: Table) -> int:
    return int(ok(t.coordinator.integration.get(t.path), 200)["sequence"])


# -- what each role may do -----------------------------------------------------------------------


def test_an_owner_invites_changes_roles_removes_rotates_the_key_and_acts(stack: RunningStack) -> None:
    t = table(stack)
    owner = t.a.owner
    # When the owner invites a person
    invited = ok(
        owner.post("/v1/organisations/me/people", json={"name": "Cas Contributor", "role": "contributor"}), 201
    )
    # Then the person is theirs, with a first personal token shown once
    assert (invited["organisation_id"], invited["role"], invited["status"]) == (t.a.id, "contributor", "active")
    assert invited["personal_token"].startswith("kkp_")
    listed = ok(owner.get("/v1/organisations/me/people"), 200)
    assert [p["name"] for p in listed] == [f"Owner of {t.a.name}", "Cas Contributor"]
    assert all("personal_token" not in p for p in listed)
    cas = stack.client(invited["personal_token"])
    # And the owner makes the person an approver, who then acts for the organisation
    changed = ok(owner.put(f"/v1/organisations/me/people/{invited['id']}", json={"role": "approver"}), 200)
    assert changed["role"] == "approver"
    ok(cas.put(f"{t.path}/positions/no-ai-training", json={"priority": "should"}), 200)
    # And the owner states a position itself
    ok(owner.put(f"{t.path}/positions/data-location", json={"priority": "must", "accepted": ["NL"]}), 200)
    # And removes the person, who can do nothing more
    removed = ok(owner.delete(f"/v1/organisations/me/people/{invited['id']}"), 200)
    assert removed["status"] == "removed"
    before = sequence(t)
    refused(cas.put(f"{t.path}/positions/no-ai-training", json={"priority": "must"}), 401)
    refused(cas.get(t.path), 401)
    assert sequence(t) == before
    # And rotates the integration key: the new key works, the old one stops, the owner goes on
    rotated = ok(owner.post("/v1/organisations/me/key/rotate"), 201)
    assert ok(stack.client(rotated["api_key"]).get("/v1/organisations/me"), 200)["id"] == t.a.id
    refused(t.a.integration.get("/v1/organisations/me"), 401)
    assert ok(owner.get("/v1/organisations/me"), 200)["person"]["role"] == "owner"


def test_an_approver_acts_for_its_organisation_but_manages_nobody(stack: RunningStack) -> None:
    t = table(stack)
    _, member_approver = t.a.person("Ada Approver", "approver")
    _, coordinator_approver = t.coordinator.person("Carla Approver", "approver")
    _, vendor_approver = t.vendor.person("Victor Approver", "approver")
    # When the approvers act for their organisations: state, publish, ask, answer, respond, endorse
    ok(member_approver.put(f"{t.path}/positions/no-ai-training", json={"priority": "must"}), 200)
    ok(t.b.integration.put(f"{t.path}/positions/data-location", json={"priority": "should", "accepted": ["EU"]}), 200)
    ok(coordinator_approver.post(f"{t.path}/demand/publish"), 201)
    asked = ok(
        vendor_approver.post(f"{t.path}/clarifications", json={"item_key": "no-ai-training", "question": "?"}), 201
    )
    ok(
        coordinator_approver.post(f"{t.path}/clarifications/{asked['clarification_id']}/answer", json={"answer": "!"}),
        200,
    )
    answer = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
    ok(vendor_approver.post(f"{t.path}/responses", json=answer), 201)
    ok(coordinator_approver.post(f"{t.path}/agreement/propose"), 200)
    ok(member_approver.post(f"{t.path}/agreement/endorsements", json={"decision": "accept"}), 201)
    # Then each succeeded; but an approver invites nobody, re-roles nobody, rotates no key, and
    # manages no webhook (403, naming who may)
    refused(member_approver.post("/v1/organisations/me/people", json={"name": "X"}), 403, "approver", "owner")
    owner_id = ok(t.a.owner.get("/v1/people/me"), 200)["id"]
    refused(member_approver.put(f"/v1/organisations/me/people/{owner_id}", json={"role": "contributor"}), 403)
    refused(member_approver.delete(f"/v1/organisations/me/people/{owner_id}"), 403)
    refused(member_approver.post("/v1/organisations/me/key/rotate"), 403, "rotate the integration key", "owner")
    refused(member_approver.post("/v1/subscriptions", json={"url": HOOK}), 403, "webhook", "owner")
    # While the key it could not rotate still works
    assert ok(t.a.integration.get("/v1/organisations/me"), 200)["id"] == t.a.id


def test_a_contributor_reads_but_acts_for_nobody(stack: RunningStack) -> None:
    t = table(stack)
    published(t)
    proposed(t)
    _, contributor = t.a.person("Cas Contributor", "contributor")
    _, coordinator_contributor = t.coordinator.person("Coby Contributor", "contributor")
    before = sequence(t)
    # When a contributor reads the board: the state, the summary, its positions and the feed
    for path in ("", "/state", "/demand", "/positions", "/events"):
        ok(contributor.get(f"{t.path}{path}"), 200)
    # Then it may; but stating a position or endorsing is refused with a clear message
    for response in (
        contributor.put(f"{t.path}/positions/data-location", json={"priority": "must", "accepted": ["NL"]}),
        contributor.delete(f"{t.path}/positions/no-ai-training"),
        contributor.post(f"{t.path}/agreement/endorsements", json={"decision": "reject"}),
    ):
        refused(response, 403, "a contributor may not", "an approver or owner of")
    # And so is a coordinator's contributor, publishing or abandoning
    refused(coordinator_contributor.post(f"{t.path}/demand/publish"), 403, "contributor")
    refused(coordinator_contributor.post(f"{t.path}/abandon", json={}), 403, "contributor")
    refused(
        coordinator_contributor.post("/v1/negotiations", json={"title": "X", "vendor_id": t.vendor.id, "items": ITEMS}),
        403,
        "contributor",
    )
    # And so are inviting, rotating the key, subscribing and reading the subscriptions (whose
    # addresses can be secrets)
    refused(contributor.post("/v1/organisations/me/people", json={"name": "X"}), 403, "contributor", "owner")
    refused(contributor.post("/v1/organisations/me/key/rotate"), 403)
    refused(contributor.post("/v1/subscriptions", json={"url": HOOK}), 403)
    refused(contributor.get("/v1/subscriptions"), 403)
    # And nothing changed
    assert sequence(t) == before


def test_a_contributor_replaying_an_approvers_idempotency_key_is_refused_not_answered(stack: RunningStack) -> None:
    t = table(stack)
    _, approver = t.a.person("Ada Approver", "approver")
    _, contributor = t.a.person("Cas Contributor", "contributor")
    body = {"priority": "must"}
    headers = {"Idempotency-Key": "state-no-ai-training"}
    # Given the approver's position, stated with an Idempotency-Key
    ok(approver.put(f"{t.path}/positions/no-ai-training", json=body, headers=headers), 200)
    # When a contributor sends the same request with the same key
    replay = contributor.put(f"{t.path}/positions/no-ai-training", json=body, headers=headers)
    # Then the contributor is refused, not shown the approver's success as its own
    refused(replay, 403, "contributor")
    # While the approver's own retry is the first answer again
    again = approver.put(f"{t.path}/positions/no-ai-training", json=body, headers=headers)
    assert again.status_code == 200 and again.headers.get("idempotent-replayed") == "true"


# -- personal tokens -------------------------------------------------------------------------------


def test_a_personal_token_is_shown_once_listed_with_its_last_use_and_revoked(stack: RunningStack) -> None:
    a = org(stack, "member")
    _, ada = a.person("Ada Approver", "approver")
    # When Ada makes a token for a script
    made = ok(ada.post("/v1/people/me/tokens", json={"label": "nightly export"}), 201)
    token = made["token"]
    assert token.startswith(f"kkp_{made['id']}_") and made["last_used_at"] is None
    # Then the list shows it, unused, and never the token itself
    listed = {t["id"]: t for t in ok(ada.get("/v1/people/me/tokens"), 200)}
    assert listed[made["id"]]["label"] == "nightly export" and listed[made["id"]]["last_used_at"] is None
    assert token not in json.dumps(listed) and all("token" not in t for t in listed.values())
    # When the script uses it
    script = stack.client(token)
    assert ok(script.get("/v1/people/me"), 200)["name"] == "Ada Approver"
    # Then its last use is filled in
    used = {t["id"]: t for t in ok(ada.get("/v1/people/me/tokens"), 200)}[made["id"]]
    assert used["last_used_at"] is not None and used["revoked_at"] is None
    # When Ada revokes it
    revoked = ok(ada.delete(f"/v1/people/me/tokens/{made['id']}"), 200)
    assert revoked["revoked_at"] is not None
    # Then it lets nobody in, and the list says so; her other token goes on
    refused(script.get("/v1/people/me"), 401)
    assert {t["id"]: t for t in ok(ada.get("/v1/people/me/tokens"), 200)}[made["id"]]["revoked_at"] is not None
    assert ok(ada.get("/v1/people/me"), 200)["role"] == "approver"
    # And nobody else revokes her tokens, and an integration key has no tokens of its own
    _, bram = a.person("Bram Approver", "approver")
    second = ok(ada.post("/v1/people/me/tokens", json={"label": "second"}), 201)
    refused(bram.delete(f"/v1/people/me/tokens/{second['id']}"), 404)
    refused(a.integration.get("/v1/people/me/tokens"), 403, "personal token")
    refused(a.integration.post("/v1/people/me/tokens", json={"label": "x"}), 403)
    assert ok(stack.client(second["token"]).get("/v1/people/me"), 200)["name"] == "Ada Approver"


# -- owners --------------------------------------------------------------------------------------


def test_the_last_owner_can_be_neither_removed_nor_demoted(stack: RunningStack) -> None:
    a = org(stack, "member")
    owner = a.owner
    me = ok(owner.get("/v1/people/me"), 200)
    # When the only owner removes or demotes itself
    refused(owner.delete(f"/v1/organisations/me/people/{me['id']}"), 409, "at least one owner")
    refused(owner.put(f"/v1/organisations/me/people/{me['id']}", json={"role": "approver"}), 409, "at least one owner")
    # Then it is still the owner
    assert ok(owner.get("/v1/people/me"), 200)["role"] == "owner"
    # While with a second owner it may step down, and the second may not then
    second_id, second = a.person("Second Owner", "owner")
    ok(owner.put(f"/v1/organisations/me/people/{me['id']}", json={"role": "approver"}), 200)
    refused(second.delete(f"/v1/organisations/me/people/{second_id}"), 409, "at least one owner")


def test_a_person_of_another_organisation_finds_none_of_this_ones_people(stack: RunningStack) -> None:
    a, b = org(stack, "member"), org(stack, "member")
    ada_id, _ = a.person("Ada Approver", "approver")
    b_owner = b.owner
    # When an owner of b tries a's person
    refused(b_owner.put(f"/v1/organisations/me/people/{ada_id}", json={"role": "owner"}), 404)
    refused(b_owner.delete(f"/v1/organisations/me/people/{ada_id}"), 404)
    # Then nothing is found and nothing changed; b's list is b's only
    assert ada_id not in json.dumps(ok(b_owner.get("/v1/organisations/me/people"), 200))
    ada = next(p for p in ok(a.owner.get("/v1/organisations/me/people"), 200) if p["id"] == ada_id)
    assert (ada["role"], ada["status"]) == ("approver", "active")


def test_the_admin_gives_an_owner_to_an_organisation_from_before_people(stack: RunningStack) -> None:
    admin = stack.client(stack.admin_token)
    # Given an organisation made as before people: with a key and nobody in it
    made = ok(admin.post("/v1/organisations", json={"name": "Old Uni", "role": "member"}), 201)
    assert made["owner"] is None
    key = stack.client(made["api_key"])
    # Then its key goes on working, as its integration key
    me = ok(key.get("/v1/organisations/me"), 200)
    assert (me["id"], me["person"]) == (made["id"], None)
    assert ok(key.get("/v1/organisations/me/people"), 200) == []
    refused(key.post("/v1/organisations/me/people", json={"name": "Self Made", "role": "owner"}), 403, "owner")
    # When the admin gives it an owner (nobody else may; and no organisation that is not there)
    body = {"name": "Olga Owner", "email": "olga@old-uni.example", "role": "contributor"}
    refused(key.post(f"/v1/organisations/{made['id']}/owners", json=body), 403)
    refused(admin.post("/v1/organisations/org_000000000000/owners", json=body), 404)
    owner = ok(admin.post(f"/v1/organisations/{made['id']}/owners", json=body), 201)
    # Then she is its owner, whatever role was sent, with a first personal token
    assert (owner["organisation_id"], owner["role"], owner["email"]) == (made["id"], "owner", "olga@old-uni.example")
    olga = stack.client(owner["personal_token"])
    # And she manages its people, while the key goes on as before
    ok(olga.post("/v1/organisations/me/people", json={"name": "Ada Approver", "role": "approver"}), 201)
    assert [p["name"] for p in ok(key.get("/v1/organisations/me/people"), 200)] == ["Olga Owner", "Ada Approver"]
    # And the admin sees inside no organisation
    refused(admin.get("/v1/organisations/me/people"), 403)
    refused(admin.get("/v1/people/me"), 403, "admin")


def test_who_am_i_names_the_person_behind_a_personal_token(stack: RunningStack) -> None:
    a = org(stack, "member")
    person_id, ada = a.person("Ada Approver", "approver")
    me = ok(ada.get("/v1/organisations/me"), 200)
    assert (me["id"], me["role"]) == (a.id, "member")
    assert (me["person"]["id"], me["person"]["name"], me["person"]["role"]) == (person_id, "Ada Approver", "approver")
    assert ok(a.integration.get("/v1/organisations/me"), 200)["person"] is None


def test_a_removed_owners_webhooks_stop_until_another_owner_enables_them(stack: RunningStack) -> None:
    a = org(stack, "member")
    second_id, second = a.person("Second Owner", "owner")
    # Given a webhook the second owner made, and one the integration key made
    theirs = ok(second.post("/v1/subscriptions", json={"url": HOOK}), 201)
    systems = ok(a.integration.post("/v1/subscriptions", json={"url": HOOK + "/system"}), 201)
    # When the first owner removes the second
    ok(a.owner.delete(f"/v1/organisations/me/people/{second_id}"), 200)
    # Then the second's webhook is disabled, saying why; the integration key's goes on
    status = {s["id"]: s for s in ok(a.owner.get("/v1/subscriptions"), 200)}
    assert status[theirs["id"]]["status"] == "disabled"
    assert "Second Owner" in status[theirs["id"]]["disabled_reason"]
    assert status[systems["id"]]["status"] == "active"
    # And an owner may enable it again, deciding it is the organisation's
    assert ok(a.owner.post(f"/v1/subscriptions/{theirs['id']}/enable"), 200)["status"] == "active"


# -- the acting person in the change feed ------------------------------------------------------


def feed(client: httpx.Client, t: Table) -> list[dict[str, Any]]:
    return list(ok(client.get(f"{t.path}/events", params={"limit": 1000}), 200)["events"])


def verified(entries: list[dict[str, Any]], nid: str) -> int:
    """How many entries carry hashes; each one's data and envelope hash to its hash (SPEC 7.1)."""
    count = 0
    for entry in entries:
        if entry.get("hash") is None:
            continue
        whole = {**entry["data"], **{field: entry[field] for field in ENVELOPE}, "negotiation_id": nid}
        assert json_hash(whole) == entry["hash"], entry["type"]
        count += 1
    return count


def test_only_the_acting_organisation_sees_who_acted(stack: RunningStack) -> None:
    # Given transparent positions, an approver of member a who states a position and endorses,
    # and a coordinator's approver who publishes and proposes
    t = table(stack, transparent=True)
    ada_id, ada = t.a.person("Ada Approver", "approver")
    _, carla = t.coordinator.person("Carla Approver", "approver")
    ok(ada.put(f"{t.path}/positions/no-ai-training", json={"priority": "must"}), 200)
    ok(t.b.integration.put(f"{t.path}/positions/data-location", json={"priority": "must", "accepted": ["EU"]}), 200)
    ok(carla.post(f"{t.path}/demand/publish"), 201)
    answer = {"demand_version": 1, "items": [{"key": "no-ai-training", "verdict": "accept"}]}
    ok(t.vendor.integration.post(f"{t.path}/responses", json=answer), 201)
    ok(carla.post(f"{t.path}/agreement/propose"), 200)
    ok(ada.post(f"{t.path}/agreement/endorsements", json={"decision": "accept"}), 201)
    _, cas = t.a.person("Cas Contributor", "contributor")
    # When a's own people read the feed
    for reader in (t.a.owner, cas):
        stated = next(e for e in feed(reader, t) if e["type"] == "PositionStated" and e["data"]["actor_id"] == t.a.id)
        # Then they see that Ada acted
        assert stated["data"]["acting_person"]["name"] == "Ada Approver"
        assert stated["data"]["acting_person"]["id"] == ada_id
        assert stated["data"]["acting_person"]["role"] == "approver"
    # When the coordinator and member b read it: only a digest of whoever acted elsewhere
    for reader, own in ((t.coordinator.owner, t.coordinator.id), (t.b.owner, t.b.id)):
        entries = feed(reader, t)
        stated = next(e for e in entries if e["type"] == "PositionStated" and e["data"]["actor_id"] == t.a.id)
        assert set(stated["data"]["acting_person"]) == {"digest"}
        for entry in entries:
            if entry["data"].get("actor_id") != own and "acting_person" in entry["data"]:
                assert set(entry["data"]["acting_person"]) == {"digest"}, entry
        text = json.dumps(entries)
        assert "Ada Approver" not in text and ada_id not in text
        # And every hash they are given still verifies
        assert verified(entries, t.nid) > 0
    # And the coordinator's own people see Carla, and verify every event of the negotiation
    coordinator_entries = feed(t.coordinator.owner, t)
    published_entry = next(e for e in coordinator_entries if e["type"] == "DemandPublished")
    assert published_entry["data"]["acting_person"]["name"] == "Carla Approver"
    assert verified(coordinator_entries, t.nid) == len(coordinator_entries)
    assert verified(feed(t.a.owner, t), t.nid) > 0
    # And the vendor's feed has no acting person anywhere: no name, no digest, no hash
    vendor_entries = feed(t.vendor.owner, t)
    assert {e["type"] for e in vendor_entries} >= {"NegotiationOpened", "DemandPublished", "AgreementProposed"}
    for entry in vendor_entries:
        assert values_of(entry, "acting_person") == [] and entry.get("hash") is None, entry
    text = json.dumps(vendor_entries)
    assert "Ada Approver" not in text and "Carla Approver" not in text and "digest" not in text
