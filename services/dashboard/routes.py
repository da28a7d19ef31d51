"""The dashboard's pages and forms. Reads use the core's audience views, like the API; every form
calls the API's own route function, so a form does exactly what the HTTP API does.

Sign-in takes an organisation's API key once; the browser then holds only a random session token
in an HttpOnly, SameSite=Strict cookie (the table keeps its SHA-256). Every form carries the
session's CSRF token. Live updates come from the same messages as ``/stream``, over an
EventSource that the session cookie authenticates.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
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

from schemas.events import EVENT_TYPES
from schemas.negotiation import ItemResponse, Position
from services.api import routes as api
from services.api.bodies import ClarificationAnswer, ClarificationCreate, EndorsementCreate, VendorResponseCreate
from services.api.hub import Hub
from services.api.problems import Problem
from services.api.security import Caller, authenticate
from services.dashboard.i18n import choose, translator
from services.readmodel.tables import DashboardSession, Organisation
from streams.core import views
from streams.core.state import NegotiationState
from streams.core.views import Audience

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
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
    hub: Hub = request.app.state.hub
    with Session(hub.engine) as session:
        row = session.get(DashboardSession, _hash(token))
        if row is None or row.expires_at.replace(tzinfo=row.expires_at.tzinfo or UTC) < datetime.now(UTC):
            return None
        organisation = session.get(Organisation, row.organisation_id)
        if organisation is None:
            return None
        return Caller(organisation.id, organisation.name, organisation.role), row  # type: ignore[arg-type]


async def signed_in(request: Request) -> tuple[Caller, DashboardSession] | None:
    return await to_thread.run_sync(_session, request)


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
            "t": translator(language),
            "lang": language,
            "notice": request.query_params.get("notice"),
            "error": request.query_params.get("error"),
            "once": secrets.token_urlsafe(12),  # makes each drawn form one command, however often sent
            **context,
        },
        status_code=status,
    )
    if request.query_params.get("lang") == language:
        response.set_cookie(LANGUAGE_COOKIE, language, max_age=365 * 86400, samesite="strict")
    return response


def _to_signin() -> RedirectResponse:
    return RedirectResponse("/signin", status_code=303)


def _check_csrf(row: DashboardSession, token: str) -> None:
    if not hmac.compare_digest(row.csrf_token.encode(), token.encode()):
        raise Problem(403, "the form is stale or forged (CSRF token mismatch): reload the page")


# -- sign in and out -----------------------------------------------------------------------------


@dashboard.get("/")
async def home(request: Request) -> Response:
    return RedirectResponse("/dashboard" if await signed_in(request) else "/signin", status_code=303)


@dashboard.get("/signin", response_class=HTMLResponse)
async def signin_form(request: Request) -> HTMLResponse:
    return page(request, "signin.html")


def _same_origin(request: Request) -> bool:
    """Whether a form was posted from this site (browsers send Origin / Sec-Fetch-Site)."""
    if request.headers.get("sec-fetch-site") not in (None, "same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin in (None, "null") or origin == f"{request.url.scheme}://{request.url.netloc}"


@dashboard.post("/signin")
async def signin(request: Request, api_key: Annotated[str, Form()]) -> Response:
    hub: Hub = request.app.state.hub
    t = translator(_language(request))
    if not _same_origin(request):  # no signing a victim in to somebody else's account from another site
        return page(request, "signin.html", status=403, error=t("That API key is not valid."))
    try:
        caller = await to_thread.run_sync(authenticate, hub.engine, None, api_key.strip())
    except Problem:
        return page(request, "signin.html", status=401, error=t("That API key is not valid."))
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    row = DashboardSession(
        token_hash=_hash(token),
        organisation_id=caller.organisation_id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=now,
        expires_at=now + timedelta(hours=SESSION_HOURS),
    )

    def store() -> None:
        with Session(hub.engine) as session:
            session.add(row)
            session.commit()

    await to_thread.run_sync(store)
    response = RedirectResponse("/dashboard", status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_HOURS * 3600,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@dashboard.post("/signout")
async def signout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    found = await signed_in(request)
    if found is not None:
        _caller, row = found
        _check_csrf(row, csrf)
        hub: Hub = request.app.state.hub

        def forget() -> None:
            with Session(hub.engine) as session:
                stored = session.get(DashboardSession, row.token_hash)
                if stored is not None:
                    session.delete(stored)
                    session.commit()

        await to_thread.run_sync(forget)
    response = RedirectResponse("/signin", status_code=303)
    response.delete_cookie(COOKIE)
    return response


# -- pages ---------------------------------------------------------------------------------------


@dashboard.get("/dashboard", response_class=HTMLResponse)
async def negotiations_page(request: Request) -> Response:
    found = await signed_in(request)
    if found is None:
        return _to_signin()
    caller, row = found
    hub: Hub = request.app.state.hub
    listed = await to_thread.run_sync(api.list_negotiations, caller, hub)
    return page(request, "negotiations.html", caller=caller, csrf=row.csrf_token, negotiations=listed)


def board(state: NegotiationState, viewer: Audience) -> dict[str, Any]:
    """Everything the board shows, cut for the viewer by the core's views."""
    shared = views.shared_state(state, viewer)
    summary = views.summary(state, viewer)
    versions = [views.version_view(state, version, viewer) for version in state.versions]
    demand = {i.key: i for i in views.live_demand(state).items} if viewer.role != "vendor" else {}
    published = {i.key: i for i in versions[-1].items} if versions else {}
    positions = views.positions(state, viewer) if viewer.role != "vendor" else []
    own = {p.item_key: p for p in positions if p.member_id == viewer.organisation_id}
    changes = []
    for before, after in itertools.pairwise(versions):
        old = {i.key: i for i in before.items}
        new = {i.key: i for i in after.items}
        changes.append(
            {
                "version": after.version,
                "added": [k for k in new if k not in old],
                "dropped": [k for k in old if k not in new],
                "retargeted": [
                    (k, old[k].target, new[k].target) for k in new if k in old and old[k].target != new[k].target
                ],
            }
        )
    return {
        "state": shared,
        "summary": summary,
        "versions": versions,
        "changes": changes,
        "demand": demand,
        "published": published,
        "positions": positions,
        "own": own,
        "role": viewer.role,
        "endorsed": state.proposal.endorsements.get(viewer.organisation_id) if state.proposal else None,
    }


async def _board(request: Request, negotiation_id: str) -> tuple[Caller, DashboardSession, dict[str, Any]] | None:
    found = await signed_in(request)
    if found is None:
        return None
    caller, row = found
    hub: Hub = request.app.state.hub
    data = await to_thread.run_sync(hub.read, caller, negotiation_id, board)
    after = max(0, data["state"].sequence - 25)
    feed = await to_thread.run_sync(lambda: api.change_feed(negotiation_id, caller, hub, after=after, limit=25))
    data["timeline"] = feed.events
    return caller, row, data


@dashboard.get("/dashboard/n/{negotiation_id}", response_class=HTMLResponse)
async def board_page(request: Request, negotiation_id: str) -> Response:
    try:
        loaded = await _board(request, negotiation_id)
    except Problem as problem:  # not a party, or no such negotiation: a page, not a JSON problem
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
        **data,
    )


@dashboard.get("/dashboard/n/{negotiation_id}/board", response_class=HTMLResponse)
async def board_fragment(request: Request, negotiation_id: str) -> Response:
    loaded = await _board(request, negotiation_id)
    if loaded is None:
        return Response(status_code=401)
    caller, row, data = loaded
    return page(request, "_board.html", caller=caller, csrf=row.csrf_token, nid=negotiation_id, **data)


@dashboard.get("/dashboard/n/{negotiation_id}/live")
async def live(request: Request, negotiation_id: str) -> Response:
    found = await signed_in(request)
    if found is None:
        return Response(status_code=401)
    caller, _ = found
    hub: Hub = request.app.state.hub
    viewer = await to_thread.run_sync(hub.read, caller, negotiation_id, lambda state, viewer: viewer)
    sequence = await to_thread.run_sync(hub.read, caller, negotiation_id, lambda state, viewer: state.sequence)
    last = request.headers.get("last-event-id") or request.query_params.get("after") or ""
    cursor = int(last) if re.fullmatch(r"[0-9]{1,10}", last) else sequence
    # The vendor's board changes only with what it may see; announcing more would tell it when
    # members act.
    announce = viewer.role != "vendor"
    return EventSourceResponse(
        api.live_messages(
            hub, negotiation_id, viewer, cursor, announce_hidden=announce, alive=lambda: _still_signed_in(request)
        ),
        ping=max(1, int(hub.settings.sse_heartbeat_s)),
    )


# -- forms: each calls the API's route ----------------------------------------------------------


async def _act(request: Request, negotiation_id: str, csrf: str, action: Any) -> Response:
    """Run ``action(caller, hub)`` (an API route call) and go back to the board with its outcome."""
    found = await signed_in(request)
    if found is None:
        return _to_signin()
    caller, row = found
    back = f"/dashboard/n/{quote(negotiation_id)}"
    t = translator(_language(request))
    form = await _form(request)
    once = str(form.get("once", ""))
    # A page's form sent twice (a double click) is one command: the API's Idempotency-Key.
    request.state.once = f"{once}:{request.url.path}" if re.fullmatch(r"[A-Za-z0-9_-]{8,64}", once) else None
    try:
        _check_csrf(row, csrf)
        answer = await action(caller, request.app.state.hub)
    except Problem as problem:
        return RedirectResponse(f"{back}?error={quote(problem.detail)}", status_code=303)
    except ValueError as exc:  # includes pydantic's ValidationError: a form field that is not valid
        if not isinstance(exc, ValidationError):
            return RedirectResponse(f"{back}?error={quote(str(exc)[:300])}", status_code=303)
        first = exc.errors()[0]
        message = ".".join(str(p) for p in first["loc"]) + ": " + str(first["msg"])
        return RedirectResponse(f"{back}?error={quote(message)}", status_code=303)
    if answer.status_code >= 400:
        detail = json.loads(answer.body).get("detail", "refused")
        return RedirectResponse(f"{back}?error={quote(detail)}", status_code=303)
    return RedirectResponse(f"{back}?notice={quote(t('Done.'))}", status_code=303)


async def _form(request: Request) -> Any:
    """The posted form. The raw body is read first, so that the API's routes can fingerprint it
    (Starlette's form parser would consume it)."""
    await request.body()
    return await request.form()


def _once(request: Request) -> str | None:
    once: str | None = getattr(request.state, "once", None)
    return once


def _number(text: str) -> Decimal | None:
    """A number typed in a form (a decimal comma too), read exactly."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None


@dashboard.post("/dashboard/n/{negotiation_id}/positions/{item_key}")
async def state_position(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)
    accepted = [str(v) for v in form.getlist("accepted")]
    value = str(form.get("value", ""))
    rationale = str(form.get("rationale", "")).strip()

    async def action(caller: Caller, hub: Hub) -> Response:
        position = Position(
            priority=str(form.get("priority", "must")),
            value=_number(value) if value.strip() else None,
            accepted=tuple(accepted) or None,
            rationale=rationale or None,
        )
        return await api.state_position(negotiation_id, item_key, position, request, caller, hub, _once(request))

    return await _act(request, negotiation_id, str(form.get("csrf", "")), action)


@dashboard.post("/dashboard/n/{negotiation_id}/positions/{item_key}/withdraw")
async def withdraw_position(request: Request, negotiation_id: str, item_key: str) -> Response:
    form = await _form(request)
    return await _act(
        request,
        negotiation_id,
        str(form.get("csrf", "")),
        lambda caller, hub: api.withdraw_position(negotiation_id, item_key, request, caller, hub, _once(request)),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/publish")
async def publish(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)
    return await _act(
        request,
        negotiation_id,
        str(form.get("csrf", "")),
        lambda caller, hub: api.publish_demand(negotiation_id, request, caller, hub, _once(request)),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/propose")
async def propose(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)
    return await _act(
        request,
        negotiation_id,
        str(form.get("csrf", "")),
        lambda caller, hub: api.propose_agreement(negotiation_id, request, caller, hub, _once(request)),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/abandon")
async def abandon(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)
    return await _act(
        request,
        negotiation_id,
        str(form.get("csrf", "")),
        lambda caller, hub: api.abandon(negotiation_id, request, caller, hub, None, _once(request)),
    )


@dashboard.post("/dashboard/n/{negotiation_id}/responses")
async def respond(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    async def action(caller: Caller, hub: Hub) -> Response:
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
                    value=_number(value) if verdict == "counter" and value.strip() else None,
                    option=option if verdict == "counter" and option else None,
                    comment=str(form.get(f"comment-{key}", "")).strip() or None,
                )
            )
        version = str(form.get("demand_version", ""))
        if not re.fullmatch(r"[0-9]{1,9}", version):
            raise ValueError("demand_version is missing")
        body = VendorResponseCreate(demand_version=int(version), items=answers)
        return await api.respond(negotiation_id, body, request, caller, hub, _once(request))

    return await _act(request, negotiation_id, str(form.get("csrf", "")), action)


@dashboard.post("/dashboard/n/{negotiation_id}/clarifications")
async def ask(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    async def action(caller: Caller, hub: Hub) -> Response:
        body = ClarificationCreate(item_key=str(form.get("item_key", "")), question=str(form.get("question", "")))
        return await api.request_clarification(negotiation_id, body, request, caller, hub, _once(request))

    return await _act(request, negotiation_id, str(form.get("csrf", "")), action)


@dashboard.post("/dashboard/n/{negotiation_id}/clarifications/{clarification_id}/answer")
async def answer(request: Request, negotiation_id: str, clarification_id: int) -> Response:
    form = await _form(request)

    async def action(caller: Caller, hub: Hub) -> Response:
        body = ClarificationAnswer(answer=str(form.get("answer", "")))
        return await api.answer_clarification(
            negotiation_id, clarification_id, body, request, caller, hub, _once(request)
        )

    return await _act(request, negotiation_id, str(form.get("csrf", "")), action)


@dashboard.post("/dashboard/n/{negotiation_id}/endorse")
async def endorse(request: Request, negotiation_id: str) -> Response:
    form = await _form(request)

    async def action(caller: Caller, hub: Hub) -> Response:
        body = EndorsementCreate(decision=str(form.get("decision", "")))
        return await api.endorse(negotiation_id, body, request, caller, hub, _once(request))

    return await _act(request, negotiation_id, str(form.get("csrf", "")), action)
