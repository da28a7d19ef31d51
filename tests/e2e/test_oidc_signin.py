"""Single sign-on to the dashboard (SPEC section 10) with a real OpenID provider on loopback
(``tests/openid_provider.py``) and the running stack configured for it (``KOOPKRACHT_OIDC_*``).

In Chromium, an owner the admin invited by e-mail signs in through the provider and invites a
contributor by e-mail on the people page, who signs in through the provider too; each lands on
their negotiations, named on the page. Over HTTP: a second sign-in finds the same person by the
issuer's subject, not by the e-mail address; a callback with another state, an ID token with
another nonce and an identity nobody invited are each refused with a page that says why, and none
of them starts a session; an unreachable provider gets a page of its own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import free_base_port
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.test_dashboard import chromium, shot
from tests.openid_provider import OpenIDProvider, openid_provider

CLIENT_ID = "koopkracht-e2e"
CLIENT_SECRET = "the-secret-the-federation-gave-this-hub"


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIDProvider]:
    with openid_provider() as running:
        yield running


# One database: the sign-in's only database work (finding and binding a person) runs on both
# databases in tests/integration/test_people.py; a second stack here would add a minute to CI.
@pytest.fixture(scope="module", params=["sqlite"])
def stack(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    provider: OpenIDProvider,
) -> Iterator[RunningStack]:
    settings = {
        "oidc_issuer": provider.issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_label": "SURFconext",
    }
    folder = tmp_path_factory.mktemp(f"sso-{request.param}")
    with running_stack(kafka_bootstrap, folder, request.param, **settings) as running:
        yield running


@pytest.fixture
def browser(stack: RunningStack) -> Iterator[object]:
    """Chromium for one test, after this module's stack has started: no stack may start while
    Playwright's event loop runs (each stack runs one of its own as it starts)."""
    with chromium() as launched:
        yield launched


def _unique(word: str) -> str:
    return f"{word}-{uuid.uuid4().hex[:8]}"


def organisation_with_owner(stack: RunningStack, name: str, owner: str, email: str) -> tuple[str, str]:
    """An organisation whose first owner the admin invites by e-mail: (its id, its integration key)."""
    body = {"name": name, "role": "member", "owner": {"name": owner, "email": email}}
    created = stack.client(stack.admin_token).post("/v1/organisations", json=body)
    assert created.status_code == 201, created.text
    # With single sign-on the owner gets no personal token: they sign in through the provider
    assert created.json()["owner"]["personal_token"] is None
    return created.json()["id"], created.json()["api_key"]


def sign_in_over_http(
    stack: RunningStack, provider: OpenIDProvider, subject: str, tamper: dict[str, str] | None = None
) -> tuple[httpx.Client, httpx.Response]:
    """What a browser does, over plain HTTP: start at the hub, sign in as ``subject`` on the
    provider's page (with the authorization request's parameters changed by ``tamper``), come back.
    The client (with the cookies it was given) and the hub's answer to the callback."""
    browser_like = httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30)
    stack.clients.append(browser_like)
    started = browser_like.get("/signin/oidc")
    assert started.status_code == 303, started.text
    request = httpx.URL(started.headers["location"])
    assert str(request).startswith(provider.issuer)
    if tamper:
        request = request.copy_merge_params(tamper)
    back = provider.authorize(str(request), subject)
    assert back.startswith(f"{stack.base_url}/signin/oidc/callback?")
    return browser_like, browser_like.get(back)


def signed_in(answer: httpx.Response) -> bool:
    """Whether the hub's answer to a callback started a dashboard session: a page of the hub that
    sets the session cookie and moves on to the negotiations (a redirect would not do: browsers
    withhold a SameSite=Strict cookie from the next hop of a redirect chain that began on the
    provider's site)."""
    moves_on = '<meta http-equiv="refresh" content="0; url=/dashboard">' in answer.text
    return answer.status_code == 200 and moves_on and "kk_session=" in answer.headers.get("set-cookie", "")


def _people(stack: RunningStack, key: str) -> dict[str, dict[str, object]]:
    listed = stack.client(key).get("/v1/organisations/me/people")
    assert listed.status_code == 200, listed.text
    return {str(person["email"]): person for person in listed.json()}


def sign_in_in_chromium(browser: object, stack: RunningStack, provider: OpenIDProvider, subject: str) -> object:
    """A new browser window that signs in through the provider as ``subject``, on the provider's
    own authorize page; the page it lands on."""
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{stack.base_url}/signin")
    page.get_by_role("link", name="Sign in with SURFconext").click()
    page.wait_for_url(re.compile(re.escape(provider.issuer) + "/oauth2/authorize"))
    page.get_by_placeholder("sub").fill(subject)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(r"/dashboard$"))
    page.get_by_role("heading", name="Negotiations").wait_for()
    return page


def test_people_invited_by_email_sign_in_through_the_provider(
    stack: RunningStack,
    provider: OpenIDProvider,
    browser: object,
) -> None:
    # Given an organisation whose owner, Anna, the admin invited by her e-mail address
    anna_email = f"{_unique('anna')}@uni-leiden.example"
    _, key = organisation_with_owner(stack, "Universiteit Leiden", "Anna de Vries", anna_email)
    # And the provider knows her as a subject of its own, with that verified address
    anna = _unique("surf-anna")
    provider.person(anna, anna_email, "A. de Vries")

    # When she opens the sign-in page
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en")  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{stack.base_url}/signin")
    # Then it offers single sign-on, and no personal-token field
    assert page.get_by_role("link", name="Sign in with SURFconext").is_visible()
    assert page.locator("input[name=api_key]").count() == 0
    shot(page, "oidc-signin-page")
    context.close()

    # When she signs in with it, at the provider's own page
    owner = sign_in_in_chromium(browser, stack, provider, anna)
    # Then she lands on her organisation's negotiations, signed in as herself
    assert "Anna de Vries (owner) · Universiteit Leiden" in owner.locator(".who").inner_text()  # type: ignore[attr-defined]
    # And her invitation is bound to the provider's identity
    assert _people(stack, key)[anna_email]["signed_in_with_sso"] is True

    # When she invites Bram by his e-mail address on the people page
    bram_email = f"{_unique('bram')}@uni-leiden.example"
    owner.goto(f"{stack.base_url}/dashboard/people")  # type: ignore[attr-defined]
    invite = owner.locator("form.invite")  # type: ignore[attr-defined]
    invite.get_by_label("Name").fill("Bram Jansen")
    invite.get_by_label("E-mail").fill(bram_email)
    invite.get_by_label("Role").select_option("contributor")
    invite.get_by_role("button", name="Invite").click()
    owner.get_by_text(f"They sign in with SURFconext using {bram_email}.").wait_for()  # type: ignore[attr-defined]

    # And Bram signs in through the provider, as whom the provider knows him
    bram = _unique("surf-bram")
    provider.person(bram, bram_email, "B. Jansen")
    page = sign_in_in_chromium(browser, stack, provider, bram)
    # Then he is on his organisation's negotiations, named, as a contributor
    assert "Bram Jansen (contributor) · Universiteit Leiden" in page.locator(".who").inner_text()  # type: ignore[attr-defined]
    shot(page, "oidc-signin")
    assert _people(stack, key)[bram_email]["signed_in_with_sso"] is True


def test_the_second_sign_in_finds_the_person_by_subject_not_by_email(
    stack: RunningStack, provider: OpenIDProvider
) -> None:
    # Given Bram, invited by e-mail, who signed in once through the provider
    email = f"{_unique('bram')}@hr.example"
    _, key = organisation_with_owner(stack, "Hogeschool Rotterdam", "Bram Jansen", email)
    subject = _unique("surf-bram")
    provider.person(subject, email, "Bram Jansen")
    first, answer = sign_in_over_http(stack, provider, subject)
    assert signed_in(answer)
    assert "Bram Jansen" in first.get("/dashboard").text

    # When his address at the provider changes, and he signs in again
    provider.person(subject, f"b.jansen-{uuid.uuid4().hex[:6]}@new.hr.example", "Bram Jansen")
    again, answer = sign_in_over_http(stack, provider, subject)
    # Then he is the same person: the hub knows him by the issuer's subject now
    assert signed_in(answer)
    assert "Bram Jansen (owner) · Hogeschool Rotterdam" in again.get("/dashboard").text
    assert list(_people(stack, key)) == [email]

    # And another identity with his old address is nobody: the invitation is spent
    impostor = _unique("impostor")
    provider.person(impostor, email, "Not Bram")
    _, answer = sign_in_over_http(stack, provider, impostor)
    assert answer.status_code == 403


def test_an_identity_nobody_invited_is_told_whom_to_ask(stack: RunningStack, provider: OpenIDProvider) -> None:
    # Given somebody the provider knows, but whom nobody invited to the hub
    email = f"{_unique('carla')}@elsewhere.example"
    subject = _unique("surf-carla")
    provider.person(subject, email, "Carla")
    # When she signs in through the provider
    browser_like, answer = sign_in_over_http(stack, provider, subject)
    # Then the page says nobody invited her and whom to ask, and she is not signed in
    assert answer.status_code == 403
    assert f"ask an owner of your organisation to invite {email}" in answer.text
    assert "kk_session" not in answer.headers.get("set-cookie", "")
    assert browser_like.get("/dashboard").headers["location"] == "/signin"


def test_a_callback_with_another_state_is_refused(stack: RunningStack, provider: OpenIDProvider) -> None:
    # Given a person the hub knows
    email = f"{_unique('dirk')}@uva.example"
    organisation_with_owner(stack, "Universiteit van Amsterdam", "Dirk", email)
    subject = _unique("surf-dirk")
    provider.person(subject, email, "Dirk")
    browser_like = httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30)
    stack.clients.append(browser_like)
    started = browser_like.get("/signin/oidc")
    # (the sign-in's cookie lives ten minutes, for the sign-in's paths only, out of scripts' reach,
    # and is sent when the provider's site sends the browser back: SameSite=Lax)
    flow_cookie = started.headers["set-cookie"]
    for attribute in ("kk_oidc=", "HttpOnly", "Max-Age=600", "Path=/signin/oidc", "SameSite=lax"):
        assert attribute in flow_cookie, flow_cookie
    back = httpx.URL(provider.authorize(started.headers["location"], subject))

    # When the callback comes back with a state changed on the way
    tampered = browser_like.get(str(back.copy_set_param("state", "attacker-chosen-state")))
    # Then the hub refuses it without redeeming the code, and nobody is signed in
    assert tampered.status_code == 400
    assert "not started in this browser" in tampered.text
    assert "kk_session" not in tampered.headers.get("set-cookie", "")
    # And the flow cookie is spent: the genuine callback afterwards is refused too
    assert browser_like.get(str(back)).status_code == 400

    # When another browser (without this one's flow cookie) brings a genuine callback
    started = browser_like.get("/signin/oidc")
    back = httpx.URL(provider.authorize(started.headers["location"], subject))
    with httpx.Client(follow_redirects=False, timeout=30) as other_browser:
        # Then it is refused: a callback belongs to the browser that started the sign-in
        assert other_browser.get(str(back)).status_code == 400
    # While in the browser that started it, it signs in
    assert signed_in(browser_like.get(str(back)))
    assert "Dirk (owner)" in browser_like.get("/dashboard").text


def test_an_id_token_with_another_nonce_is_refused(stack: RunningStack, provider: OpenIDProvider) -> None:
    # Given a person the hub knows
    email = f"{_unique('eva')}@tue.example"
    organisation_with_owner(stack, "TU Eindhoven", "Eva", email)
    subject = _unique("surf-eva")
    provider.person(subject, email, "Eva")
    # When the authorization request's nonce is changed on the way to the provider (so the ID token
    # the provider signs carries a nonce this browser's sign-in did not send)
    browser_like, answer = sign_in_over_http(stack, provider, subject, tamper={"nonce": "replayed-nonce"})
    # Then the hub refuses the ID token, says so, and nobody is signed in
    assert answer.status_code == 401
    assert "did not pass the hub&#39;s checks" in answer.text
    assert "nonce" in answer.text
    assert "kk_session" not in answer.headers.get("set-cookie", "")
    assert browser_like.get("/dashboard").headers["location"] == "/signin"


def test_with_single_sign_on_a_personal_token_does_not_open_the_dashboard(stack: RunningStack) -> None:
    with httpx.Client(base_url=stack.base_url, follow_redirects=False) as browser_like:
        refused = browser_like.post("/signin", data={"api_key": "kkp_000000000000_whatever"})
        assert refused.status_code == 403
        assert "kk_session" not in refused.headers.get("set-cookie", "")


def test_a_provider_that_cannot_be_reached_gets_a_page_that_says_so(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # Given a hub whose provider does not answer (nothing listens at its issuer)
    settings = {
        "oidc_issuer": f"http://127.0.0.1:{free_base_port(1)}",
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_label": "SURFconext",
    }
    with (
        running_stack(kafka_bootstrap, tmp_path_factory.mktemp("sso-unreachable"), "sqlite", **settings) as hub,
        httpx.Client(base_url=hub.base_url, follow_redirects=False, timeout=30) as browser_like,
    ):
        # When somebody opens the sign-in page in Dutch, then it offers the provider by its name
        assert "Inloggen met SURFconext" in browser_like.get("/signin", params={"lang": "nl"}).text
        # When they choose it
        answer = browser_like.get("/signin/oidc")
        # Then the page says the provider cannot be reached, in their language, and sends nobody off
        assert answer.status_code == 502
        assert "SURFconext is nu niet bereikbaar" in answer.text
        assert "location" not in answer.headers
