"""Browser headers and the session cookie, on the running stack with ``KOOPKRACHT_PUBLIC_URL``
https (as behind a proxy that ends TLS and forwards plain http): every answer has the security
headers, the session cookie is Secure although the request is plain http, and the dashboard works
in Chromium under its Content-Security-Policy with no violation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.api.app import create_app
from services.api.headers import CONTENT_SECURITY_POLICY
from services.readmodel.store import create_db_engine
from services.settings import SettingsError, load_settings
from tests.e2e.conftest import RunningStack, running_stack
from tests.e2e.test_dashboard import browser, sign_in  # noqa: F401 - the browser fixture

PUBLIC = "https://hub.example.org"


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(kafka_bootstrap, tmp_path_factory.mktemp("headers"), "sqlite", public_url=PUBLIC) as running:
        yield running


@pytest.fixture(scope="module")
def negotiation(stack: RunningStack) -> dict[str, str]:
    """A negotiation with one member who stated a position: its id and the parties' keys."""
    _, coordinator_key = stack.organisation("Coop", "coordinator")
    vendor_id, vendor_key = stack.organisation("Vendor", "vendor")
    member_id, member_key = stack.organisation("Member", "member")
    coordinator = stack.client(coordinator_key)
    body = {"title": "Headers", "vendor_id": vendor_id, "items": [{"key": "diagnostic-data-retention"}]}
    nid = coordinator.post("/v1/negotiations", json=body).json()["id"]
    assert coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).status_code == 201
    return {"id": nid, "coordinator": coordinator_key, "member": member_key, "vendor": vendor_key}


def assert_protected(response: httpx.Response, policy: str = CONTENT_SECURITY_POLICY) -> None:
    where = f"{response.request.method} {response.request.url.path} → {response.status_code}"
    assert response.headers.get("content-security-policy") == policy, where
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"], where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("x-frame-options") == "DENY", where
    assert response.headers.get("referrer-policy") == "same-origin", where
    assert response.headers.get("strict-transport-security") == "max-age=31536000", where
    if not response.request.url.path.startswith("/static/"):
        # no answer with negotiation data or a new token may be kept by a cache (a live stream says no-cache)
        assert {"no-store", "no-cache"} & set(response.headers.get("cache-control", "").split(", ")), where


def session_cookie(signed_in: httpx.Response) -> str:
    """``kk_session=<token>`` from a sign-in's Set-Cookie."""
    return signed_in.headers["set-cookie"].split(";", 1)[0]


def test_the_policy_allows_no_inline_script_or_style_and_no_framing() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_every_answer_has_the_security_headers(stack: RunningStack, negotiation: dict[str, str]) -> None:
    nid = negotiation["id"]
    # Given a member signed in to the dashboard (over plain http, as the proxy forwards it)
    with httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30) as browser_like:
        signed = browser_like.post(
            "/signin", data={"api_key": stack.person_token(negotiation["member"])}, headers={"Origin": PUBLIC}
        )
        assert signed.status_code == 303
        assert_protected(signed)
        browser_like.headers["cookie"] = session_cookie(signed)
        answers = [
            browser_like.get("/"),
            browser_like.get("/signin"),
            browser_like.get("/dashboard"),
            browser_like.get(f"/dashboard/n/{nid}"),
            browser_like.get(f"/dashboard/n/{nid}/board"),
            browser_like.get("/dashboard/n/no-such-negotiation"),  # the error page
            browser_like.get(f"/dashboard/n/{nid}/report"),  # the coordinator's: 403 for a member
            browser_like.get("/static/dashboard.js"),
            browser_like.get("/static/dashboard.css"),
            browser_like.get("/static/nothing.js"),
            browser_like.post(f"/dashboard/n/{nid}/publish", data={"csrf": "forged"}),  # refused: a redirect
        ]
        with browser_like.stream("GET", f"/dashboard/n/{nid}/live") as live:
            assert live.headers["content-type"].startswith("text/event-stream")
            answers.append(live)
    # And anybody, the API's callers too
    with httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30) as anonymous:
        answers += [
            anonymous.post("/signin", data={"api_key": "kk_000000000000_nope"}),  # the sign-in page, 401
            anonymous.get(f"/dashboard/n/{nid}/board"),  # 401
            anonymous.get("/healthz"),
            anonymous.get("/openapi.json"),
            anonymous.get("/v1/negotiations"),  # 401 problem+json
            anonymous.get("/v1/no-such-thing"),  # 404 problem+json
            anonymous.post("/v1/negotiations", content=b"x" * (65 * 1024)),  # 413 before any route
        ]
        docs = anonymous.get("/docs")
    member_api = stack.client(negotiation["member"])
    answers += [member_api.get(f"/v1/negotiations/{nid}"), member_api.get(f"/v1/negotiations/{nid}/nope")]

    # Then every one of them has the headers
    statuses = sorted({a.status_code for a in answers})
    assert {200, 303, 401, 403, 404, 413} <= set(statuses), statuses
    for answer in answers:
        assert_protected(answer)
    # And the error page is the dashboard's own page, not a bare problem document
    assert "text/html" in answers[5].headers["content-type"] and answers[5].status_code == 404
    # And the interactive docs (Swagger UI from its CDN, with an inline start-up script) may not be framed
    assert_protected(docs, policy="frame-ancestors 'none'")


def test_the_session_cookie_is_secure_behind_a_proxy_that_ends_tls(
    stack: RunningStack, negotiation: dict[str, str]
) -> None:
    # Given the hub's public address is https, and the proxy forwards the browser's form as plain http
    with httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30) as forwarded:
        # When a member signs in from the public page
        signed = forwarded.post(
            "/signin",
            data={"api_key": stack.person_token(negotiation["member"])},
            headers={"Origin": PUBLIC, "Sec-Fetch-Site": "same-origin"},
        )
        # Then the form from the public origin is accepted, and the session cookie is Secure
        assert signed.status_code == 303, signed.text
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("kk_session=")
        assert {"secure", "httponly", "samesite=strict"} <= {part.strip().lower() for part in cookie.split(";")}
        # And so is the language cookie, and the one that signs out
        language = forwarded.get("/signin", params={"lang": "nl"}).headers["set-cookie"]
        assert language.startswith("kk_lang=nl") and "secure" in language.lower()
        # (an https page would send the Secure cookie back; httpx sends it over http only when told)
        forwarded.headers["cookie"] = session_cookie(signed)
        page = forwarded.get("/dashboard").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        out = forwarded.post("/signout", data={"csrf": token}, headers={"Origin": PUBLIC})
        assert out.status_code == 303 and "secure" in out.headers["set-cookie"].lower()
    # And a form from another site is still refused, and sets no cookie
    with httpx.Client(base_url=stack.base_url, follow_redirects=False, timeout=30) as elsewhere:
        refused = elsewhere.post(
            "/signin",
            data={"api_key": stack.person_token(negotiation["member"])},
            headers={"Origin": "https://hub.example.org.evil.test"},
        )
        assert refused.status_code == 403
        assert "kk_session" not in refused.headers.get("set-cookie", "")


def test_an_unexpected_error_has_the_headers_too(tmp_path: Path) -> None:
    # Given the API with a route that fails unexpectedly (no Kafka is needed to build it)
    settings = load_settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, public_url=PUBLIC)
    app = create_app(settings, create_db_engine(f"sqlite:///{tmp_path / 'db.sqlite'}"))

    def fail() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/fail", fail)

    # When it is called, Then the 500 problem document has the headers as well
    async def call() -> httpx.Response:  # straight to the application: its lifespan (Kafka) never starts
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get("/fail")

    answer = asyncio.run(call())
    assert answer.status_code == 500
    assert_protected(answer)


@pytest.mark.parametrize("value", ["hub.example.org", "ftp://hub.example.org", "https://", "https://h/?x=1"])
def test_a_public_url_that_is_not_an_http_address_stops_the_start(value: str) -> None:
    with pytest.raises(SettingsError, match="KOOPKRACHT_PUBLIC_URL"):
        load_settings(public_url=value)


def test_the_dashboard_works_in_chromium_with_no_policy_violation(
    stack: RunningStack,
    negotiation: dict[str, str],
    browser: object,  # noqa: F811 - the fixture imported above; after the stack, which starts outside its event loop
) -> None:
    nid = negotiation["id"]
    errors: list[str] = []

    def expected(message: object) -> bool:
        """The error page's own 404, and Chromium asking for a favicon there is none of, are no fault."""
        url = message.location.get("url", "")  # type: ignore[attr-defined]
        return message.text.startswith("Failed to load resource") and (  # type: ignore[attr-defined]
            url.endswith("/favicon.ico") or url.endswith("/no-such-negotiation")
        )

    def watched(page: object) -> object:
        # securitypolicyviolation is what the browser fires for every blocked script, style, frame or connection
        page.add_init_script(  # type: ignore[attr-defined]
            "document.addEventListener('securitypolicyviolation', e => "
            "console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not expected(m) else None)  # type: ignore[attr-defined]
        page.on("pageerror", lambda e: errors.append(str(e)))  # type: ignore[attr-defined]
        return page

    # Given the coordinator signed in on the sign-in page, with its board open
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="en")  # type: ignore[attr-defined]
    coordinator = watched(context.new_page())
    coordinator.goto(f"{stack.base_url}/signin?lang=en")  # type: ignore[attr-defined]
    token = stack.person_token(negotiation["coordinator"])
    coordinator.get_by_label(re.compile("personal token")).fill(token)  # type: ignore[attr-defined]
    coordinator.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    coordinator.wait_for_url(re.compile("/dashboard$"))  # type: ignore[attr-defined]
    coordinator.goto(f"{stack.base_url}/dashboard/n/{nid}")  # type: ignore[attr-defined]
    coordinator.evaluate("window.__notReloaded = true")  # type: ignore[attr-defined]
    support = coordinator.locator("#item-diagnostic-data-retention .support")  # type: ignore[attr-defined]
    assert support.inner_text() == "0%"

    # When the member states a position over the API
    stated = stack.client(negotiation["member"]).put(
        f"/v1/negotiations/{nid}/positions/diagnostic-data-retention", json={"priority": "must", "value": 14}
    )
    assert stated.status_code == 200
    # Then the board changes by itself (EventSource and fragment fetch under connect-src 'self')
    support.filter(has_text="100%").wait_for(timeout=10_000)
    assert coordinator.evaluate("window.__notReloaded") is True  # type: ignore[attr-defined]

    # When the coordinator presses Abandon and says no to the question (asked by dashboard.js, not inline)
    asked: list[str] = []

    def answer_no(dialog: object) -> None:
        asked.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    coordinator.once("dialog", answer_no)  # type: ignore[attr-defined]
    coordinator.get_by_role("button", name="Abandon").click()  # type: ignore[attr-defined]
    # Then it was asked, and nothing was abandoned
    assert asked == ["Abandon?"]
    assert stack.client(negotiation["coordinator"]).get(f"/v1/negotiations/{nid}").json()["phase"] == "collecting"

    # And the negotiations page, the report for the member council (its charts and print button)
    # and an error page show no violation either
    coordinator.goto(f"{stack.base_url}/dashboard/n/{nid}/report")  # type: ignore[attr-defined]
    coordinator.get_by_role("button", name="Print / save as PDF").wait_for()  # type: ignore[attr-defined]
    coordinator.goto(f"{stack.base_url}/dashboard")  # type: ignore[attr-defined]
    coordinator.goto(f"{stack.base_url}/dashboard/n/no-such-negotiation")  # type: ignore[attr-defined]
    assert errors == []

    # And the watch sees a violation when there is one: an inline script is blocked and reported
    coordinator.goto(f"{stack.base_url}/dashboard")  # type: ignore[attr-defined]
    with coordinator.expect_console_message(lambda m: "CSP violation: script-src" in m.text, timeout=10_000):  # type: ignore[attr-defined]
        coordinator.evaluate(  # type: ignore[attr-defined]
            "() => { const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
            " document.body.append(s); }"
        )
    assert coordinator.evaluate("window.__ran === undefined") is True  # type: ignore[attr-defined]
    context.close()  # type: ignore[attr-defined]
