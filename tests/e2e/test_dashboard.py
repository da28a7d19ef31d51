"""The dashboard in a real browser (Debian's Chromium, driven by Playwright).

A member signs in and states a position; the coordinator's board shows the joint demand change
without a reload; the vendor counters through its form and the coordinator's board shows the new
cohesion, again without a reload; the vendor's pages name no member. Screenshots are kept in
``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RunningStack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("KOOPKRACHT_TEST_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps reaching for the internet it may not use.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as launched:
        yield launched


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Chromium under Playwright (skipped without it, unless the run requires the browser tests).
    Playwright's event loop runs while it is open: start a stack (which runs a loop of its own) first."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("KOOPKRACHT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no Chromium at {CHROMIUM}, and this run requires the browser tests")
        pytest.skip(f"browser tests need Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def sign_in(browser: object, stack: RunningStack, api_key: str, language: str = "en") -> object:
    """A browser page signed in with a personal token, or as the first owner of the organisation
    whose integration key ``api_key`` is."""
    api_key = stack.owner_tokens.get(api_key, api_key)
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale=language)  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{stack.base_url}/signin?lang={language}")
    page.get_by_label(re.compile("personal token|persoonlijke token")).fill(api_key)
    page.get_by_role("button", name=re.compile("Sign in|Inloggen")).click()
    page.wait_for_url(re.compile("/dashboard$"))
    return page


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_board_changes_live_and_the_vendor_sees_no_member(browser: object, stack: RunningStack) -> None:
    # Given a negotiation with two members, opened over the API
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Nimbus Cloud", "vendor")
    a_id, a_key = stack.organisation("Universiteit Leiden", "member")
    b_id, b_key = stack.organisation("Hogeschool Rotterdam", "member")
    api = stack.client(coordinator_key)
    items = [{"key": "diagnostic-data-retention"}, {"key": "no-ai-training"}]
    nid = api.post("/v1/negotiations", json={"title": "Browser test", "vendor_id": vendor_id, "items": items}).json()[
        "id"
    ]
    for member_id, weight in ((a_id, 3), (b_id, 1)):
        assert (
            api.post(
                f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id, "weight": weight}
            ).status_code
            == 201
        )
    board = f"{stack.base_url}/dashboard/n/{nid}"

    # And the coordinator watches the board
    coordinator = sign_in(browser, stack, coordinator_key)
    coordinator.goto(board)
    coordinator.evaluate("window.__notReloaded = true")
    support = coordinator.locator("#item-diagnostic-data-retention .support")
    assert support.inner_text() == "0%"

    # When member A signs in and states a position in its form
    member = sign_in(browser, stack, a_key)
    member.goto(board)
    form = member.locator("#position-diagnostic-data-retention")
    form.get_by_label("Priority").select_option("must")
    form.get_by_label(re.compile("^Value")).fill("14")
    form.get_by_role("button", name="State position").click()
    member.wait_for_url(re.compile(r"notice="))
    # Then the member's board shows its position, and the coordinator's board changes by itself
    assert member.locator("#item-diagnostic-data-retention .support").inner_text() == "75%"
    support.filter(has_text="75%").wait_for(timeout=10_000)
    assert coordinator.evaluate("window.__notReloaded") is True
    # And the member sees a change by somebody else arrive live too
    member.evaluate("window.__notReloaded = true")
    stack.client(b_key).put(
        f"/v1/negotiations/{nid}/positions/diagnostic-data-retention", json={"priority": "should", "value": 30}
    )
    member.locator("#item-diagnostic-data-retention .support").filter(has_text="100%").wait_for(timeout=10_000)
    assert member.evaluate("window.__notReloaded") is True
    shot(member, "member-board")

    # When the coordinator publishes and the vendor counters in its form
    assert api.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    coordinator.locator("#cohesion").filter(has_text="25%").wait_for(timeout=10_000)  # B has no must: 1/4
    vendor = sign_in(browser, stack, vendor_key)
    vendor.goto(board)
    respond = vendor.locator("#respond")
    respond.locator("#verdict-diagnostic-data-retention").select_option("counter")
    respond.locator("#value-diagnostic-data-retention").fill("14")
    respond.get_by_role("button", name="Send the answers").click()
    vendor.wait_for_url(re.compile(r"notice="))
    # Then the coordinator's board shows the new cohesion without a reload: A's must is now met
    coordinator.locator("#cohesion").filter(has_text="100%").wait_for(timeout=10_000)
    assert coordinator.evaluate("window.__notReloaded") is True
    shot(coordinator, "coordinator-board")

    # And no page the vendor sees names a member
    for path in ("/dashboard", f"/dashboard/n/{nid}", f"/dashboard/n/{nid}/board"):
        vendor.goto(f"{stack.base_url}{path}")
        text = vendor.content()
        for name in ("Universiteit Leiden", "Hogeschool Rotterdam", a_id, b_id):
            assert name not in text, (path, name)
    vendor.goto(board)
    shot(vendor, "vendor-board")


def test_forms_need_the_sessions_csrf_token_and_sign_out_ends_the_session(stack: RunningStack) -> None:
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, _ = stack.organisation("Vendor", "vendor")
    member_id, member_key = stack.organisation("Member", "member")
    coordinator = stack.client(coordinator_key)
    body = {"title": "CSRF", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}]}
    nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    stated = stack.client(member_key).put(f"/v1/negotiations/{nid}/positions/no-ai-training", json={"priority": "must"})
    assert stated.status_code == 200
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as browser_like:
        # an integration key does not open the dashboard: it is for systems, the dashboard for people
        assert browser_like.post("/signin", data={"api_key": coordinator_key}).status_code == 403
        signed = browser_like.post("/signin", data={"api_key": stack.person_token(coordinator_key)})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert stack.person_token(coordinator_key) not in cookie
        forged = browser_like.post(f"/dashboard/n/{nid}/publish", data={"csrf": "forged"})
        assert forged.status_code == 303 and "error=" in forged.headers["location"]
        page = browser_like.get(f"/dashboard/n/{nid}").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        once = re.search(r'name="once" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        # A double click on Publish (the same form sent twice) publishes once
        for _ in range(2):
            sent = browser_like.post(f"/dashboard/n/{nid}/publish", data={"csrf": token, "once": once})
            assert "notice=" in sent.headers["location"], sent.headers["location"]
        versions = stack.client(coordinator_key).get(f"/v1/negotiations/{nid}/events", params={"limit": 1000})
        assert [e["type"] for e in versions.json()["events"]].count("DemandPublished") == 1
        assert browser_like.post("/signout", data={"csrf": token}).status_code == 303
        assert browser_like.get(f"/dashboard/n/{nid}").headers["location"] == "/signin"
    # The forged form published nothing; the double click published version 1 only
    assert stack.client(coordinator_key).get(f"/v1/negotiations/{nid}").json()["demand_version"] == 1
    # And a wrong key does not sign in, nor does a right one posted from another site;
    # the pages speak Dutch when asked
    with httpx.Client(base_url=stack.base_url) as anonymous:
        assert anonymous.post("/signin", data={"api_key": "kk_000000000000_nope"}).status_code == 401
        cross_site = anonymous.post(
            "/signin",
            data={"api_key": stack.person_token(coordinator_key)},
            headers={"Origin": "http://elsewhere.example"},
        )
        assert cross_site.status_code == 403
        assert "kk_session" not in cross_site.headers.get("set-cookie", "")
        dutch = anonymous.get("/signin", params={"lang": "nl"})
        assert '<html lang="nl">' in dutch.text
        assert "Inloggen" in dutch.text
        assert "kk_lang=nl" in dutch.headers["set-cookie"]


def _signed_in(stack: RunningStack, key: str, nid: str) -> tuple[httpx.Client, str]:
    """A browser-like client signed in with ``key`` (a personal token, or the integration key of an
    organisation whose first owner signs in), and its session's CSRF token."""
    client = httpx.Client(base_url=stack.base_url, follow_redirects=False)
    stack.clients.append(client)
    assert client.post("/signin", data={"api_key": stack.owner_tokens.get(key, key)}).status_code == 303
    page = client.get(f"/dashboard/n/{nid}").text
    return client, re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def test_forms_send_what_the_api_sends_and_refusals_come_back_as_notices(stack: RunningStack) -> None:
    # Given a negotiation on two catalogue items with one member, both signed in to the dashboard
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, _ = stack.organisation("Vendor", "vendor")
    member_id, member_key = stack.organisation("Member", "member")
    coordinator = stack.client(coordinator_key)
    body = {"title": "Forms", "vendor_id": vendor_id, "items": [{"key": "no-ai-training"}, {"key": "processor-only"}]}
    nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    member_page, member_csrf = _signed_in(stack, member_key, nid)
    coordinator_page, coordinator_csrf = _signed_in(stack, coordinator_key, nid)

    # When the member states a position through its form, with a rationale
    form = {"csrf": member_csrf, "once": "position-form-1", "priority": "must", "rationale": "our board asks"}
    stated = member_page.post(f"/dashboard/n/{nid}/positions/no-ai-training", data=form)
    # Then the board says it is done, and the API reads the very position
    assert "notice=" in stated.headers["location"], stated.headers["location"]
    own = stack.client(member_key).get(f"/v1/negotiations/{nid}/positions").json()
    assert [(p["item_key"], p["priority"], p["rationale"]) for p in own] == [
        ("no-ai-training", "must", "our board asks")
    ]

    # When the member tries a coordinator's command through a form
    refused = member_page.post(f"/dashboard/n/{nid}/publish", data={"csrf": member_csrf, "once": "publish-form-1"})
    # Then the core's refusal comes back as the board's notice, and nothing was published
    assert "error=" in refused.headers["location"] and "publish" in refused.headers["location"]
    assert coordinator.get(f"/v1/negotiations/{nid}").json()["demand_version"] is None

    # When the coordinator publishes, the member adds a position, and the coordinator publishes again
    publish = {"csrf": coordinator_csrf}
    assert "notice=" in coordinator_page.post(f"/dashboard/n/{nid}/publish", data=publish).headers["location"]
    form = {"csrf": member_csrf, "once": "position-form-2", "priority": "must"}
    assert "notice=" in member_page.post(f"/dashboard/n/{nid}/positions/processor-only", data=form).headers["location"]
    assert "notice=" in coordinator_page.post(f"/dashboard/n/{nid}/publish", data=publish).headers["location"]
    # Then the coordinator's board says what version 2 added
    board = coordinator_page.get(f"/dashboard/n/{nid}", params={"lang": "en"}).text
    assert re.search(r"new\s+processor-only;", board), "version 2's change is not on the board"


def test_a_dutch_board_speaks_dutch_throughout_and_its_live_notices_too(browser: object, stack: RunningStack) -> None:
    # Given a negotiation on catalogue items, published, with a member's positions and a vendor's question
    _, coordinator_key = stack.organisation("SURF", "coordinator")
    vendor_id, vendor_key = stack.organisation("Nimbus Cloud", "vendor")
    a_id, a_key = stack.organisation("Universiteit Utrecht", "member")
    api = stack.client(coordinator_key)
    items = [{"key": "diagnostic-data-retention"}, {"key": "data-location"}, {"key": "no-ai-training"}]
    opened = api.post(
        "/v1/negotiations", json={"title": "Kantoorsoftware 2027", "vendor_id": vendor_id, "items": items}
    )
    nid = opened.json()["id"]
    assert api.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": a_id, "weight": 3}).status_code == 201
    member_api = stack.client(a_key)
    for key, position in (
        ("diagnostic-data-retention", {"priority": "must", "value": 30}),
        ("data-location", {"priority": "must", "accepted": ["NL", "EU"]}),
        ("no-ai-training", {"priority": "should"}),
    ):
        assert member_api.put(f"/v1/negotiations/{nid}/positions/{key}", json=position).status_code in (200, 201, 202)
    assert api.post(f"/v1/negotiations/{nid}/demand/publish").status_code == 201
    board = f"{stack.base_url}/dashboard/n/{nid}"

    # When the member reads its board in Dutch and the vendor answers
    member = sign_in(browser, stack, a_key, language="nl")
    member.goto(f"{board}?lang=nl")  # type: ignore[attr-defined]
    vendor = stack.client(vendor_key)
    answers = {
        "demand_version": 1,
        "items": [
            {"key": "diagnostic-data-retention", "verdict": "counter", "value": 60},
            {"key": "data-location", "verdict": "counter", "option": "EU"},
            {"key": "no-ai-training", "verdict": "accept"},
        ],
    }
    assert vendor.post(f"/v1/negotiations/{nid}/responses", json=answers).status_code in (200, 201, 202)
    # Then its live notices arrive in Dutch, and its board speaks Dutch: catalogue, units, timeline
    notices = member.locator("#live-notices")  # type: ignore[attr-defined]
    notices.filter(has_text="De leverancier deed een tegenbod op diagnostic-data-retention: 60 dagen").wait_for(
        timeout=10_000
    )
    member.goto(f"{board}?lang=nl")  # type: ignore[attr-defined]
    text = member.locator("#board").inner_text()  # type: ignore[attr-defined]
    assert "Bewaartermijn van diagnostische gegevens" in text and "30 dagen" in text
    assert "U hebt uw standpunt ingenomen over Locatie waar gegevens worden opgeslagen en verwerkt" in text
    assert "De leverancier heeft in ronde 1 op 3 eisen geantwoord" in text
    for english in ("Retention of diagnostic data", "days", "PositionStated", "Timeline", "State position"):
        assert english not in text, english
    dutch_shot(member, "board-nl-member")

    # And the coordinator's and the vendor's Dutch boards say what each may know, in Dutch
    coordinator = sign_in(browser, stack, coordinator_key, language="nl")
    coordinator.goto(f"{board}?lang=nl")  # type: ignore[attr-defined]
    said = coordinator.locator("#board").inner_text()  # type: ignore[attr-defined]
    assert "Universiteit Utrecht heeft een standpunt ingenomen over Bewaartermijn van diagnostische gegevens" in said
    dutch_shot(coordinator, "board-nl-coordinator")
    vendor_page = sign_in(browser, stack, vendor_key, language="nl")
    vendor_page.goto(f"{board}?lang=nl")  # type: ignore[attr-defined]
    seen = vendor_page.locator("#board").inner_text()  # type: ignore[attr-defined]
    assert "De coalitie heeft versie 1 gepubliceerd (3 eisen)" in seen and "Universiteit Utrecht" not in seen
    dutch_shot(vendor_page, "board-nl-vendor")


def dutch_shot(page: object, name: str) -> None:
    """A screenshot kept with the others, and in ``KOOPKRACHT_SCREENSHOTS`` (a folder) when that is set."""
    shot(page, name)
    folder = os.environ.get("KOOPKRACHT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
