"""The dashboard's pages for people, in Chromium: an owner invites a person, who gets a personal
token shown once and signs in with it; the owner changes the person's role and removes them, which
ends their session; a person makes and revokes their own tokens. A contributor sees the people but
cannot manage them."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import RunningStack
from tests.e2e.test_dashboard import browser, shot, sign_in

__all__ = ["browser"]  # the browser fixture, shared with the dashboard's tests


def _me(stack: RunningStack, token: str) -> int:
    return stack.client(token).get("/v1/people/me").status_code


def test_an_owner_invites_re_roles_and_removes_a_person_on_the_people_page(
    browser: object, stack: RunningStack
) -> None:
    # Given a member organisation's owner signed in to the dashboard
    _, key = stack.organisation("Universiteit Utrecht", "member", owner="Olga Owner")
    owner = sign_in(browser, stack, key)
    owner.get_by_role("link", name="People").click()  # type: ignore[attr-defined]
    owner.wait_for_url(re.compile("/dashboard/people$"))  # type: ignore[attr-defined]
    # When she invites a privacy officer as a contributor
    invitation = owner.locator("form.invite")  # type: ignore[attr-defined]
    invitation.get_by_label("Name").fill("Priya Privacy")
    invitation.get_by_label("E-mail").fill("priya@uu.example")
    invitation.get_by_label("Role").select_option("contributor")
    invitation.get_by_role("button", name="Invite").click()
    # Then the page shows the new person's personal token once, and it signs in as her
    token = owner.locator("code.token").inner_text()  # type: ignore[attr-defined]
    assert token.startswith("kkp_")
    shot(owner, "people-invited")
    owner.goto(f"{stack.base_url}/dashboard/people")  # type: ignore[attr-defined]
    assert owner.locator("code.token").count() == 0  # type: ignore[attr-defined]
    row = owner.locator("tr", has_text="Priya Privacy")  # type: ignore[attr-defined]
    assert "contributor" in row.inner_text() and "priya@uu.example" in row.inner_text()
    person = stack.client(token).get("/v1/people/me").json()
    assert (person["name"], person["role"]) == ("Priya Privacy", "contributor")
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as priya:
        assert priya.post("/signin", data={"api_key": token}).status_code == 303
        people = priya.get("/dashboard/people")
        # a contributor sees her colleagues but no form to manage them
        assert "Olga Owner" in people.text and "/remove" not in people.text and "Invite a person" not in people.text
        # When the owner makes her an approver, her session ends (she signs in again with her new role)
        row.get_by_label("Role").select_option("approver")
        row.get_by_role("button", name="Change role").click()
        owner.wait_for_selector("text=Done.")  # type: ignore[attr-defined]
        assert priya.get("/dashboard").headers.get("location") == "/signin"
        assert stack.client(token).get("/v1/people/me").json()["role"] == "approver"
        assert priya.post("/signin", data={"api_key": token}).status_code == 303
        # When the owner removes her
        row = owner.locator("tr", has_text="Priya Privacy")  # type: ignore[attr-defined]
        row.get_by_role("button", name="Remove").click()
        owner.wait_for_selector("text=Removed Priya Privacy.")  # type: ignore[attr-defined]
        # Then her session has ended and her token no longer works
        assert priya.get("/dashboard").headers.get("location") == "/signin"
    assert _me(stack, token) == 401
    assert "removed" in owner.locator("tr", has_text="Priya Privacy").inner_text()  # type: ignore[attr-defined]
    # And the last owner cannot remove herself: the page says why
    owner_row = owner.locator("tr", has_text="Olga Owner")  # type: ignore[attr-defined]
    owner_row.get_by_role("button", name="Remove").click()
    owner.wait_for_selector("text=keeps at least one owner")  # type: ignore[attr-defined]


def test_a_person_makes_and_revokes_their_own_tokens(browser: object, stack: RunningStack) -> None:
    # Given an approver signed in
    _, key = stack.organisation("Hogeschool Utrecht", "member")
    _, token = stack.person(key, "Arjen Approver", "approver")
    page = sign_in(browser, stack, token)
    page.get_by_role("link", name="Your tokens").click()  # type: ignore[attr-defined]
    # When he makes a token for a script
    page.get_by_label("Label").fill("nightly export")  # type: ignore[attr-defined]
    page.get_by_role("button", name="Make a token").click()  # type: ignore[attr-defined]
    made = page.locator("code.token").inner_text()  # type: ignore[attr-defined]
    # Then it works as him, is listed with its last use, and stops once revoked
    assert stack.client(made).get("/v1/people/me").json()["name"] == "Arjen Approver"
    page.goto(f"{stack.base_url}/dashboard/tokens")  # type: ignore[attr-defined]
    row = page.locator("tr", has_text="nightly export")  # type: ignore[attr-defined]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d.*\d{4}-\d\d-\d\d \d\d:\d\d", row.inner_text())  # made, last used
    shot(page, "personal-tokens")
    row.get_by_role("button", name="Revoke").click()
    page.wait_for_selector("text=Revoked.")  # type: ignore[attr-defined]
    assert _me(stack, made) == 401
    assert _me(stack, token) == 200  # his other token goes on
    # And a forged form (no session's CSRF token) makes no token and comes back as the tokens page
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as browser_like:
        assert browser_like.post("/signin", data={"api_key": token}).status_code == 303
        forged = browser_like.post("/dashboard/tokens", data={"csrf": "forged", "label": "sneaky"})
        assert forged.status_code == 403 and "Your personal tokens" in forged.text
    assert "sneaky" not in [t["label"] for t in stack.client(token).get("/v1/people/me/tokens").json()]
