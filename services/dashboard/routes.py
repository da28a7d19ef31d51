"""The dashboard's pages and forms. Like the API, each page asks the application service for a
read and each form builds a command and hands it to the same service, so a form does exactly
what the HTTP API does; a refusal comes back as a notice on the board.

People sign in (SPEC section 10): with single sign-on when it is configured
(``services.dashboard.oidc``), else with a personal token; an organisation's integration key does
not open the dashboard. The browser then holds only a random session token
in an HttpOnly, SameSite=Strict cookie (the table keeps its SHA-256), Secure when the hub's
public address (``KOOPKRACHT_PUBLIC_URL``) is https. Every form carries the
session's CSRF token. Live updates come from the same messages as ``/stream``, over an
EventSource that the session cookie authenticates.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import Session
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from schemas.common import number_from_text
from schemas.events import EVENT_TYPES
from schemas.insight import WhatIf, WhatIfRequest
from schemas.negotiation import ItemResponse, Position
from services.application import commands, paging
from services.application.actions import Action, Answer, Once
from services.application.documents import (
    CheckCreate,
    CommentCreate,
    DeliveryCreate,
    EndorsementCreate,
    PlanCreate,
    PlanRejection,
    RegressionCreate,
    ReopenRequest,
)
from services.application.errors import Refusal
from services.application.security import Caller, authenticate
from services.application.service import Application
from services.application.throttle import address_of
from services.dashboard.charts import (
    REPORT_COHESION_WIDTH,
    REPORT_GRID_ROWS,
    REPORT_SUPPORT_WIDTH,
    SYMBOLS,
    cohesion_chart,
    commitment_status,
    commitments_timeline,
    cumulative_chart,
    number,
    own_positions_chart,
    satisfaction_heatmap,
    status_words,
    support_chart,
    support_rows,
)
from services.dashboard.i18n import ItemWords, choose, language_name, languages, translations, translator
from services.dashboard.timeline import timeline_words
from services.readmodel.tables import DashboardSession
from streams.core import views
from streams.core.decider import AFTER_AGREEMENT
from streams.core.notices import phrase
from streams.core.timeline import Line

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.add_extension("jinja2.ext.i18n")  # {% trans %} blocks; their gettext is the page's (see ``page``)
templates.env.install_null_translations()  # type: ignore[attr-defined]  # a render without a page's gettext: English
templates.env.filters["number"] = number
templates.env.globals["cumulative_chart"] = cumulative_chart
templates.env.globals.update(
    commitments_timeline=commitments_timeline,
    commitment_status=commitment_status,
    status_words=status_words,
    SYMBOLS=SYMBOLS,
    # The phases in which the core takes work on planned commitments: the board draws those forms only then.
    AFTER_AGREEMENT=AFTER_AGREEMENT,
    timedelta=timedelta,
)
templates.env.globals.update(  # the board's charts (``_charts.html``) and the coordinator's report
    cohesion_chart=cohesion_chart,
    support_chart=support_chart,
    support_rows=support_rows,
    satisfaction_heatmap=satisfaction_heatmap,
    own_positions_chart=own_positions_chart,
    REPORT_COHESION_WIDTH=REPORT_COHESION_WIDTH,
    REPORT_GRID_ROWS=REPORT_GRID_ROWS,
    REPORT_SUPPORT_WIDTH=REPORT_SUPPORT_WIDTH,
)
dashboard = APIRouter(include_in_schema=False)
COOKIE = "kk_session"
LANGUAGE_COOKIE = "kk_lang"
SESSION_HOURS = 8


# -- sessions ------------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _session(request: Request) -> tuple[Caller, DashboardSession] | None:
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    application = _application(request)
    with Session(application.hub.engine) as session:
        row = session.get(DashboardSession, _hash(token))
        if row is None or row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC) < datetime.now(UTC):
            return None
    # The person as they are now: a removed person's sessions were deleted, a changed role ended them.
    caller = application.people.person_caller(row.person_id)
    if caller is None or caller.organisation_id != row.organisation_id:
        return None
    return caller, row


def _application(request: Request) -> Application:
    application: Application = request.app.state.application
    return application


async def signed_in(request: Request) -> tuple[Caller, DashboardSession] | None:
    return await to_thread.run_sync(_session, request)


async def reader(request: Request) -> tuple[Caller, DashboardSession] | None:
    """The signed-in caller of a page, counted against its organisation's rate limit (429 past it),
    as its API key's requests are: drawing a board is the dearest read there is."""
    found = await signed_in(request)
    if found is not None:
        _application(request).hub.throttle.spend(found[0].organisation_id)
    return found


async def _still_signed_in(request: Request) -> bool:
    """A live stream ends when its session does (signed out, or expired)."""
    return await signed_in(request) is not None


def _language(request: Request) -> str:
    return choose(
        request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language")
    )


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    language = _language(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            **words(language),
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
            "once": secrets.token_urlsafe(12),  # makes each drawn form one command, however often sent
            "sso_label": _sso_label(request),
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") == language:
        response.set_cookie(
            LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="strict", secure=_secure_cookies(request)
        )
    return response


def words(language: str) -> dict[str, Any]:
    """What a page needs to speak ``language``: ``t``, the catalogue's items, the language links."""
    t = translator(language)
    return {
        "t": t,
        "item_words": ItemWords(t),  # the catalogue's items in the page's language
        # {% trans %} blocks (jinja2.ext.i18n) find the page's catalogue here: one per request, not per process
        "gettext": translations(language).gettext,
        "ngettext": translations(language).ngettext,
        "lang": language,
        "languages": [(code, language_name(code)) for code in languages()],
    }


def _sso_label(request: Request) -> str | None:
    """The single sign-on's name on the sign-in page ("Sign in with <label>"); None without it."""
    settings = _application(request).hub.settings
    return settings.oidc_label if settings.oidc_enabled else None


def _secure_cookies(request: Request) -> bool:
    """Cookies are Secure when the hub's public address is https (a proxy may end TLS and forward
    plain http), or when this request came over https."""
    return _application(request).hub.settings.public_https or request.url.scheme == "https"


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303)


def _check_csrf(row: DashboardSession, token: str) -> None:
    if not hmac.compare_digest(row.csrf_token.encode(), token.encode()):
        raise Refusal(403, "the form is stale or forged (CSRF token mismatch): reload the page")


# -- sign in and out -----------------------------------------------------------------------------


@dashboard.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/dashboard" if await signed_in(request) else "/signin", status_code=303)


@dashboard.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request) -> HTMLResponse:
    return page(request, "signin.html")


def _same_origin(request: Request) -> bool:
    """Whether a form was posted from this site (browsers send Origin / Sec-Fetch-Site): this
    request's own origin, or the hub's public one (behind a proxy the two differ)."""
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    ours = (f"{request.url.scheme}://{request.url.netloc}", _application(request).hub.settings.public_origin)
    return origin in (None, "null") or origin in ours


@dashboard.post("/signin")
async def signin(request: Request, api_key: Annotated[str, Form()]) -> Response:
    """Sign in with a personal token (when the hub has no single sign-on). The form's field keeps
    its old name, ``api_key``, so that saved password managers go on filling it in."""
    hub = _application(request).hub
    t = translator(_language(request))
    invalid = t("That personal token is not valid.")
    if hub.settings.oidc_enabled:
        return page(request, "signin.html", status=403, error=t("Sign in with single sign-on."))
    if not _same_origin(request):  # no signing a victim in to somebody else's account from another site
        return page(request, "signin.html", status=403, error=invalid)
    try:
        with hub.throttle.guard(address_of(request.client), credential_sent=True):
            caller = await to_thread.run_sync(authenticate, hub.engine, None, api_key.strip(), True, 0.0)
    except Refusal as refusal:
        if refusal.status == 429:
            refused = page(request, "signin.html", status=429, error=t("Too many failed sign-ins: try again later."))
            refused.headers.update(refusal.headers)
            return refused
        return page(request, "signin.html", status=401, error=invalid)
    if caller.person is None:
        # An integration key is for systems; the dashboard is for people, so that every act on it
        # is a person's (SPEC section 10).
        message = t("That is an organisation's integration key: sign in with your personal token.")
        return page(request, "signin.html", status=403, error=message)
    return await start_session(request, caller)


async def start_session(request: Request, caller: Caller, response: Response | None = None) -> Response:
    """Begin a dashboard session for a signed-in person and go to their negotiations (or answer
    ``response``): the browser gets a random token in an HttpOnly, SameSite=Strict cookie; the
    table keeps its SHA-256."""
    assert caller.person is not None
    hub = _application(request).hub
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = DashboardSession(
        token_hash=_hash(token),
        organisation_id=caller.organisation_id,
        person_id=caller.person.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    )

    def store() -> None:
        with Session(hub.engine) as session:
            session.add(row)
            session.commit()

    await to_thread.run_sync(store)
    response = response or RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=_secure_cookies(request),
    )
    return response


@dashboard.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    found = await signed_in(request)
    if found is not None:
        _caller, row = found
        _check_csrf(row, csrf)
        hub = _application(request).hub

        def forget() -> None:
            with Session(hub.engine) as session:
                stored = session.get(DashboardSession, row.token_hash)
                if stored is not None:
                    session.delete(stored)
                    session.commit()

        await to_thread.run_sync(forget)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE, httponly=True, samesite="strict", secure=_secure_cookies(request))
    return response


# -- pages ---------------------------------------------------------------------------------------


@dashboard.get("/dashboard", response_class=HTMLResponse)
async def negotiations_page(request: Request) -> Response:
    found = await reader(request)
    if found is None:
        return _to_signin()
    caller, row = found
    cursor = request.query_params.get("cursor")
    if cursor is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,512}", cursor):
        cursor = None
    try:
        listed = await to_thread.run_sync(_application(request).negotiations, caller, paging.DEFAULT_LIMIT, cursor)
    except Refusal:  # a cursor that is not ours: the first page
        listed = await to_thread.run_sync(_application(request).negotiations, caller)
    return page(
        request,
        "negotiations.html",
        caller=caller,
        csrf=row.csrf_token,
        negotiations=listed.items,
        older=listed.next_cursor,
    )


async def _board(request: Request, negotiation_id: str) -> tuple[Caller, DashboardSession, dict[str, Any]] | None:
    found = await reader(request)
    if found is None:
        return None
    caller, row = found
    data = await to_thread.run_sync(_application(request).board, caller, negotiation_id)
    return caller, row, data


@dashboard.get("/dashboard/n/{negotiation_id}", response_class=HTMLResponse)
async def board_page(request: Request, negotiation_id: str) -> Response:
    try:
        loaded = await _board(request, negotiation_id)
    except Refusal as problem:  # not a party, or no such negotiation: a page, not a JSON problem
        return page(request, "error.html", status=problem.status, title=problem.title, detail=problem.detail)
    if loaded is None:
        return _to_signin()
    caller, row, data = loaded
    return page(
        request,
        "board.html",
        caller=caller,
        csrf=row.csrf_token,
        nid=negotiation_id,
        event_types=[*EVENT_TYPES, "changed"],
        now=datetime.now(UTC),  # "today" on the commitments' timeline
        timeline_words=_timeline_words(request, data),
        **data,
    )


def _timeline_words(request: Request, data: dict[str, Any]) -> Callable[[Line], str]:
    """The board's timeline sentences in the page's language, items by their titles."""
    t = translator(_language(request))
    return timeline_words(t, ItemWords(t), {item.key: item for item in data["summary"].items})


def _share_field(text: str, field: str) -> Fraction | str:
    """A share typed in a form: a fraction as ``2/3`` (read by the share's own rule), else a decimal."""
    if "/" in text:
        return text.strip()
    number = _number(text, field)
    assert number is not None
    return number


MAX_CONCESSIONS_TEXT = 20_000
"""The longest ``concessions`` a what-if link may carry (JSON text; 50 concessions fit)."""


def concessions_json(suggested: Any) -> str:
    """A suggestion's concessions as the what-if's ``concessions`` parameter (JSON), for its "try it" link."""
    return json.dumps(
        [
            {
                "member_id": c.member_id,
                "item_key": c.item_key,
                "position": None if c.position is None else c.position.model_dump(mode="json", exclude_none=True),
            }
            for c in suggested
        ],
        separators=(",", ":"),
    )


templates.env.globals["concessions_json"] = concessions_json


def _what_if_request(request: Request) -> WhatIfRequest:
    """The what-if a form asks (GET: a what-if writes nothing); ValueError says what is wrong.
    ``concessions`` (JSON) comes from a suggestion's "try it" link and rides along in the form."""
    params = request.query_params
    fields: dict[str, Any] = {"drop": tuple(params.getlist("drop")), "add": tuple(params.getlist("add"))}
    conceded = params.get("concessions", "").strip()
    if conceded:
        if len(conceded) > MAX_CONCESSIONS_TEXT:
            raise ValueError(f"concessions: at most {MAX_CONCESSIONS_TEXT} characters")
        try:
            fields["concessions"] = json.loads(conceded)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested deeper than Python recurses
            raise ValueError("concessions: not a list of concessions") from None
    for name in ("inclusion_share", "coverage"):
        text = params.get(name, "").strip()
        if text:
            fields[name] = _share_field(text, name)
    return WhatIfRequest.model_validate(fields)


def _what_if(application: Application, caller: Caller, negotiation_id: str, request: Request) -> dict[str, Any]:
    """The what-if's answer for the panel: ``what_if`` (and the request), or ``what_if_error``."""
    try:
        asked = _what_if_request(request)
        answer: WhatIf = application.what_if(caller, negotiation_id, asked)
    except ValidationError as exc:
        first = exc.errors()[0]
        return {"what_if_error": ".".join(str(p) for p in first["loc"]) + ": " + str(first["msg"])}
    except ValueError as exc:
        return {"what_if_error": str(exc)[:300]}
    except Refusal as refusal:
        if refusal.status in (403, 404):
            raise
        return {"what_if_error": refusal.detail}
    return {"what_if": answer, "what_if_request": asked}


@dashboard.get("/dashboard/n/{negotiation_id}/what-if", response_class=HTMLResponse)
async def what_if_page(request: Request, negotiation_id: str) -> Response:
    """The board with the what-if's answer (the form's submit), or with ``fragment=1`` only the
    answer (the panel's script)."""
    application = _application(request)
    fragment = request.query_params.get("fragment") == "1"
    try:
        if fragment:
            found = await reader(request)
            if found is None:
                return Response(status_code=401)
            answer = await to_thread.run_sync(_what_if, application, found[0], negotiation_id, request)
            return page(request, "_what_if_result.html", **answer)
        loaded = await _board(request, negotiation_id)
        if loaded is None:
            return _to_signin()
        caller, row, data = loaded
        answer = await to_thread.run_sync(_what_if, application, caller, negotiation_id, request)
    except Refusal as problem:
        if fragment:  # drawn into the panel: the refusal's words, not a page
            return page(request, "_what_if_result.html", status=problem.status, what_if_error=problem.detail)
        return page(request, "error.html", status=problem.status, title=problem.title, detail=problem.detail)
    return page(
        request,
        "board.html",
        caller=caller,
        csrf=row.csrf_token,
        nid=negotiation_id,
        event_types=[*EVENT_TYPES, "changed"],
        now=datetime.now(UTC),
        timeline_words=_timeline_words(request, data),
        **data,
        **answer,
    )


@dashboard.get("/dashboard/n/{negotiation_id}/board", response_class=HTMLResponse)
async def board_fragment(request: Request, negotiation_id: str) -> Response:
    loaded = await _board(request, negotiation_id)
    if loaded is None:
        return Response(status_code=401)
    caller, row, data = loaded
    return page(
        request,
        "_board.html",
        caller=caller,
        csrf=row.csrf_token,
        nid=negotiation_id,
        now=datetime.now(UTC),
        timeline_words=_timeline_words(request, data),
        **data,
    )


@dashboard.get("/dashboard/n/{negotiation_id}/report", response_class=HTMLResponse)
async def report_page(request: Request, negotiation_id: str) -> Response:
    """The coordinator's board on one page, to print for the member council: key figures, charts
    and the joint demand. It names the members, so it is the coordinator's only (the core's read
    refuses anybody else: 403 for the members and the vendor, 404 for whom is no party)."""
    found = await reader(request)
    if found is None:
        return _to_signin()
    caller, row = found
    try:
        data = await to_thread.run_sync(_application(request).report, caller, negotiation_id)
    except Refusal as problem:
        return page(request, "error.html", status=problem.status, title=problem.title, detail=problem.detail)
    return page(
        request, "report.html", caller=caller, csrf=row.csrf_token, nid=negotiation_id, now=datetime.now(UTC), **data
    )


@dashboard.get("/dashboard/n/{negotiation_id}/live")
async def live(request: Request, negotiation_id: str) -> Response:
    found = await reader(request)
    if found is None:
        return Response(status_code=401)
    caller, _ = found
    application = _application(request)
    viewer, sequence = await to_thread.run_sync(
        application.read, caller, negotiation_id, lambda state, viewer: (viewer, views.sequence_for(state, viewer))
    )
    last = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    cursor = int(last) if re.fullmatch(r"[0-9]{1,10}", last) else sequence
    messages, give_back = application.live(
        viewer, negotiation_id, cursor, board=True, alive=lambda: _still_signed_in(request)
    )
    return EventSourceResponse(
        _in_words(messages, translator(_language(request))),
        ping=max(1, int(application.hub.settings.sse_heartbeat_s)),
        background=BackgroundTask(give_back),
    )


async def _in_words(messages: AsyncIterator[dict[str, str]], t: Callable[..., str]) -> AsyncIterator[dict[str, str]]:
    """The board's live messages with their notices in the page's language: each notice's text is
    worded again from its code and parameters (``streams.core.notices.phrase``), translated."""
    async for item in messages:
        body = json.loads(item["data"])
        if body.get("notices"):
            for notice in body["notices"]:
                notice["text"] = phrase(notice["code"], notice["params"]).render(t)
            item = {**item, "data": json.dumps(body)}
        yield item


# -- forms: each builds a command and hands it to the application service -----------------------


async def _act(request: Request, negotiation_id: str, action: Callable[[Caller], Action], anchor: str = "") -> Response:
    """Send the command ``action(caller)`` builds and go back to the board with its outcome."""
    application = _application(request)
    return await _submit(
        request,
        negotiation_id,
        lambda caller, once: application.execute(caller, action(caller), once, request.url.path),
        anchor,
    )


async def _submit(
    request: Request,
    negotiation_id: str,
    run: Callable[[Caller, Once | None], Awaitable[Answer | None]],
    anchor: str = "",
) -> Response:
    """Do what ``run(caller, once)`` does for the signed-in person and go back to the board with
    its outcome: a command's answer, or None for what is no command (a draft, a comment). A
    success goes back to ``anchor`` on the board (``#draft-…``)."""
    found = await signed_in(request)
    if found is None:
        return _to_signin()
    caller, row = found
    back = f"/dashboard/n/{quote(negotiation_id)}"
    t = translator(_language(request))
    form = await _form(request)
    drawn = str(form.get("once", ""))
    # A page's form sent twice (a double click) is one command: its Idempotency-Key.
    key = f"{drawn}:{request.url.path}" if re.fullmatch(r"[A-Za-z0-9_-]{8,64}", drawn) else None
    try:
        _check_csrf(row, str(form.get("csrf", "")))
        refuse_nul(await request.body())
        _application(request).hub.throttle.spend(caller.organisation_id)  # as the organisation's API key
        once = None if key is None else Once.of(key, request.method, request.url.path, await request.body())
        answer = await run(caller, once)
    except Refusal as problem:
        return RedirectResponse(f"{back}?error={quote(problem.detail)}", status_code=303)
    except ValueError as exc:  # includes pydantic's ValidationError: a form field that is not valid
        if not isinstance(exc, ValidationError):
            return RedirectResponse(f"{back}?error={quote(str(exc)[:300])}", status_code=303)
        first = exc.errors()[0]
        message = ".".join(str(p) for p in first["loc"]) + ": " + str(first["msg"])
        return RedirectResponse(f"{back}?error={quote(message)}", status_code=303)
    if answer is not None and answer.refused:
        return RedirectResponse(f"{back}?error={quote(answer.detail)}", status_code=303)
    done = t("Done.")
    return RedirectResponse(f"{back}?notice={quote(done)}{anchor}", status_code=303)


def refuse_nul(body: bytes) -> None:
    """A form's text may not hold the NUL character (PostgreSQL keeps none): url-encoded, it is
    ``%00`` (a typed ``%`` is ``%25``), so the raw body tells exactly."""
    if b"%00" in body:
        raise ValueError("a text may not hold the NUL character (U+0000)")


async def _form(request: Request) -> Any:
    """The posted form. The raw body is read first, so that it can be fingerprinted for the
    form's idempotency key (Starlette's form parser would consume it)."""
    await request.body()
    return await request.form()


def _number(text: str, field: str = "value") -> Fraction | None:
    """A number typed in a form (a decimal comma too): its text is checked for length, exponent
    and digits before anything exact is built from it (``schemas.common.number_from_text``), so a
    typed ``1e999999999`` is refused at once instead of growing into a billion-digit integer."""
    if not text.strip():
        return None
    try:
        return number_from_text(text)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None


def _position(form: Any) -> Position:
    """The position a form describes (a position's, or a draft's)."""
    value = str(form.get("value", ""))
    rationale = str(form.get("rationale", "")).strip()
    return Position(
        priority=str(form.get("priority", "must")),
        value=_number(value) if value.strip() else None,
        accepted=tuple(str(v) for v in form.getlist("accepted")) or None,
        rationale=rationale or None,
    )


@dashboard.post("/dashboard/n/{negotiation_id}/positions/{item_key}")
async def state_position(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)
    return await _act(
        request,
        negotiation_id,
        lambda caller: commands.state_position(caller, negotiation_id, item_key, _position(form)),
    )


# -- a member's drafts (SPEC section 10): the application service's, like the API's routes -------


@dashboard.post("/dashboard/n/{negotiation_id}/drafts/{item_key}")
async def save_draft(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)
    drafts = _application(request).drafts

    async def run(caller: Caller, once: Once | None) -> None:
        position = _position(form)
        await to_thread.run_sync(drafts.save, caller, negotiation_id, item_key, position)

    return await _submit(request, negotiation_id, run, f"#draft-{quote(item_key)}")


@dashboard.post("/dashboard/n/{negotiation_id}/drafts/{item_key}/comments")
async def comment_draft(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)
    drafts = _application(request).drafts

    async def run(caller: Caller, once: Once | None) -> None:
        text = CommentCreate(text=str(form.get("text", "")).strip()).text
        await to_thread.run_sync(drafts.comment, caller, negotiation_id, item_key, text)

    return await _submit(request, negotiation_id, run, f"#draft-{quote(item_key)}")


@dashboard.post("/dashboard/n/{negotiation_id}/drafts/{item_key}/adopt")
async def adopt_draft(request: Request, negotiation_id: str, item_key: str) -> Response:
    drafts = _application(request).drafts
    form = await _form(request)
    version = str(form.get("version", "")) or "none"  # the draft the approver read: adopt that or nothing
    return await _submit(
        request,
        negotiation_id,
        lambda caller, once: drafts.adopt(caller, negotiation_id, item_key, once, request.url.path, version=version),
        f"#draft-{quote(item_key)}",
    )


@dashboard.post("/dashboard/n/{negotiation_id}/positions/{item_key}/withdraw")
async def withdraw_position(request: Request, negotiation_id: str, item_key: str) -> Response:
    return await _act(
        request, negotiation_id, lambda caller: commands.withdraw_position(caller, negotiation_id, item_key)
    )


@dashboard.post("/dashboard/n/{negotiation_id}/publish")
async def publish(request: Request, negotiation_id: str) -> Response:
    return await _act(request, negotiation_id, lambda caller: commands.publish_demand(caller, negotiation_id))


@dashboard.post("/dashboard/n/{negotiation_id}/propose")
async def propose(request: Request, negotiation_id: str) -> Response:
    return await _act(request, negotiation_id, lambda caller: commands.propose_agreement(caller, negotiation_id))


@dashboard.post("/dashboard/n/{negotiation_id}/abandon")
async def abandon(request: Request, negotiation_id: str) -> Response:
    return await _act(request, negotiation_id, lambda caller: commands.abandon(caller, negotiation_id, None))


@dashboard.post("/dashboard/n/{negotiation_id}/responses")
async def respond(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        answers = []
        for key in [str(k)[len("verdict-") :] for k in form if str(k).startswith("verdict-")]:
            verdict = str(form.get(f"verdict-{key}", ""))
            if not verdict:
                continue
            value, option = str(form.get(f"value-{key}", "")), str(form.get(f"option-{key}", ""))
            answers.append(
                ItemResponse(
                    key=key,
                    verdict=verdict,
                    value=_number(value, f"value-{key}") if verdict == "counter" and value.strip() else None,
                    option=option if verdict == "counter" and option else None,
                    comment=str(form.get(f"comment-{key}", "")).strip() or None,
                )
            )
        version = str(form.get("demand_version", ""))
        if not re.fullmatch(r"[0-9]{1,9}", version):
            raise ValueError("demand_version is missing")
        return commands.respond(caller, negotiation_id, int(version), answers)

    return await _act(request, negotiation_id, action)


@dashboard.post("/dashboard/n/{negotiation_id}/clarifications")
async def ask(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)
    item_key, question = str(form.get("item_key", "")), str(form.get("question", ""))
    return await _act(
        request,
        negotiation_id,
        lambda caller: commands.request_clarification(caller, negotiation_id, item_key, question),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/clarifications/{clarification_id}/answer")
async def answer(request: Request, negotiation_id: str, clarification_id: int) -> Response:
    form = await _form(request)
    text = str(form.get("answer", ""))
    return await _act(
        request,
        negotiation_id,
        lambda caller: commands.answer_clarification(caller, negotiation_id, clarification_id, text),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/endorse")
async def endorse(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = EndorsementCreate(decision=str(form.get("decision", "")))
        return commands.endorse(caller, negotiation_id, body.decision, body.comment)

    return await _act(request, negotiation_id, action)


# -- after the agreement (SPEC 9): the commitments' forms, the same commands as the API's routes ----


def _commitment_anchor(item_key: str) -> str:
    return f"#commitment-{quote(item_key)}"


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/plan")
async def plan_commitments(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        # One line per commitment the vendor gave a date; a commitment left without one is the
        # core's to refuse (it names what the plan misses).
        lines = []
        for key in [str(k)[len("due-") :] for k in form if str(k).startswith("due-")]:
            due = str(form.get(f"due-{key}", "")).strip()
            if due:
                note = str(form.get(f"note-{key}", "")).strip() or None
                lines.append({"key": key, "due": due, "note": note})
        body = PlanCreate.model_validate({"items": lines})
        return commands.plan_commitments(caller, negotiation_id, body.items)

    return await _act(request, negotiation_id, action, "#commitments")


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/plan/accept")
async def accept_plan(request: Request, negotiation_id: str) -> Response:
    return await _act(
        request, negotiation_id, lambda caller: commands.accept_plan(caller, negotiation_id), "#commitments"
    )


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/plan/reject")
async def reject_plan(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = PlanRejection(comment=str(form.get("comment", "")).strip())
        return commands.reject_plan(caller, negotiation_id, body.comment)

    return await _act(request, negotiation_id, action, "#commitments")


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/{item_key}/delivered")
async def deliver(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = DeliveryCreate(evidence=str(form.get("evidence", "")).strip())
        return commands.deliver(caller, negotiation_id, item_key, body.evidence)

    return await _act(request, negotiation_id, action, _commitment_anchor(item_key))


def _check(form: Any) -> CheckCreate:
    """A check's or a verdict's form: met or not met, and a comment."""
    return CheckCreate(verdict=str(form.get("verdict", "")), comment=str(form.get("comment", "")).strip() or None)


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/{item_key}/checks")
async def check(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = _check(form)
        return commands.check(caller, negotiation_id, item_key, body.verdict, body.comment)

    return await _act(request, negotiation_id, action, _commitment_anchor(item_key))


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/{item_key}/verdict")
async def give_verdict(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = _check(form)
        return commands.give_verdict(caller, negotiation_id, item_key, body.verdict, body.comment)

    return await _act(request, negotiation_id, action, _commitment_anchor(item_key))


@dashboard.post("/dashboard/n/{negotiation_id}/commitments/{item_key}/regressions")
async def report_regression(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = RegressionCreate(comment=str(form.get("comment", "")).strip())
        return commands.report_regression(caller, negotiation_id, item_key, body.comment)

    return await _act(request, negotiation_id, action, _commitment_anchor(item_key))


@dashboard.post("/dashboard/n/{negotiation_id}/reopen")
async def reopen(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    def action(caller: Caller) -> Action:
        body = ReopenRequest(
            items=tuple(str(k) for k in form.getlist("items")), reason=str(form.get("reason", "")).strip() or None
        )
        return commands.reopen(caller, negotiation_id, body.items, body.reason)

    return await _act(request, negotiation_id, action, "#commitments")
