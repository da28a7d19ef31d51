"""The dashboard's pages for people (SPEC section 10): the organisation's people, which its owners
invite, re-role and remove, and each person's own personal tokens.

Each form calls the application service's ``People``, as the API's ``/v1/organisations/me/people``
and ``/v1/people/me/tokens`` do. A token made here (an invitation without single sign-on, or a new
personal token) is shown once, in the answer to the form itself: never in an address, which
browsers keep in their history.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Form, Request, Response
from pydantic import ValidationError

from services.application.documents import PersonChange, PersonCreate, TokenCreate
from services.application.errors import Refusal
from services.application.security import Caller
from services.dashboard.i18n import translator
from services.dashboard.routes import (
    _application,
    _check_csrf,
    _language,
    _to_signin,
    page,
    reader,
    signed_in,
)
from services.readmodel.tables import DashboardSession

people_pages = APIRouter(include_in_schema=False)


async def _people_page(
    request: Request, caller: Caller, row: DashboardSession, status: int = 200, **shown: Any
) -> Response:
    people = _application(request).people
    listed = await to_thread.run_sync(people.of_organisation, caller)
    return page(
        request,
        "people.html",
        status=status,
        caller=caller,
        csrf=row.csrf_token,
        people=listed,
        owner=caller.person is not None and caller.person.role == "owner",
        sso=_application(request).hub.settings.oidc_enabled,
        oidc_label=_application(request).hub.settings.oidc_label,
        **shown,
    )


@people_pages.get("/dashboard/people")
async def people_page(request: Request) -> Response:
    found = await reader(request)
    if found is None:
        return _to_signin()
    return await _people_page(request, *found)


Page = Callable[..., Awaitable[Response]]
"""Draws one of this module's pages for the caller: ``(request, caller, row, status=…, **shown)``."""


async def _form(
    request: Request,
    csrf: str,
    redraw: Page,
    act: Callable[[Caller, DashboardSession, Callable[[str], str]], Awaitable[Response]],
) -> Response:
    """What every form here does: the session and its CSRF token, the organisation's rate limit,
    then ``act``; a refusal or an invalid field redraws the form's page with it."""
    found = await signed_in(request)
    if found is None:
        return _to_signin()
    caller, row = found
    try:
        _check_csrf(row, csrf)
        # (FastAPI has parsed the form already, which consumed the body: its values are asked)
        if any("\x00" in value for value in (await request.form()).values() if isinstance(value, str)):
            raise ValueError("a text may not hold the NUL character (U+0000)")
        _application(request).hub.throttle.spend(caller.organisation_id)
        return await act(caller, row, translator(_language(request)))
    except ValidationError as exc:
        first = exc.errors()[0]
        message = ".".join(str(p) for p in first["loc"]) + ": " + str(first["msg"])
        return await redraw(request, caller, row, status=422, error=message)
    except ValueError as exc:  # a NUL in the form
        return await redraw(request, caller, row, status=422, error=str(exc))
    except Refusal as refusal:
        return await redraw(request, caller, row, status=refusal.status, error=refusal.detail)


@people_pages.post("/dashboard/people")
async def invite(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "contributor",
) -> Response:
    async def act(caller: Caller, row: DashboardSession, t: Callable[[str], str]) -> Response:
        body = PersonCreate(name=name.strip(), email=email.strip() or None, role=role)
        created = await to_thread.run_sync(_application(request).people.invite, caller, body)
        notice = t("Invited {name}.").format(name=created.name)
        return await _people_page(request, caller, row, status=201, notice=notice, new_person=created)

    return await _form(request, csrf, _people_page, act)


@people_pages.post("/dashboard/people/{person_id}/role")
async def change_role(
    request: Request, person_id: str, csrf: Annotated[str, Form()] = "", role: Annotated[str, Form()] = ""
) -> Response:
    async def act(caller: Caller, row: DashboardSession, t: Callable[[str], str]) -> Response:
        try:
            chosen = PersonChange(role=role)
        except ValidationError:
            return await _people_page(request, caller, row, status=422, error=t("Choose a role."))
        people = _application(request).people
        changed = await to_thread.run_sync(people.change_role, caller, person_id, chosen.role)
        if caller.person is not None and changed.id == caller.person.id:
            return _to_signin()  # one's own role changed: one's sessions ended with it
        return await _people_page(request, caller, row, notice=t("Done."))

    return await _form(request, csrf, _people_page, act)


@people_pages.post("/dashboard/people/{person_id}/remove")
async def remove(request: Request, person_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    async def act(caller: Caller, row: DashboardSession, t: Callable[[str], str]) -> Response:
        removed = await to_thread.run_sync(_application(request).people.remove, caller, person_id)
        return await _people_page(request, caller, row, notice=t("Removed {name}.").format(name=removed.name))

    return await _form(request, csrf, _people_page, act)


# -- personal tokens ------------------------------------------------------------------------------


async def _tokens_page(
    request: Request, caller: Caller, row: DashboardSession, status: int = 200, **shown: Any
) -> Response:
    tokens = await to_thread.run_sync(_application(request).people.tokens, caller)
    return page(request, "tokens.html", status=status, caller=caller, csrf=row.csrf_token, tokens=tokens, **shown)


@people_pages.get("/dashboard/tokens")
async def tokens_page(request: Request) -> Response:
    found = await reader(request)
    if found is None:
        return _to_signin()
    return await _tokens_page(request, *found)


@people_pages.post("/dashboard/tokens")
async def create_token(
    request: Request, csrf: Annotated[str, Form()] = "", label: Annotated[str, Form()] = ""
) -> Response:
    async def act(caller: Caller, row: DashboardSession, t: Callable[[str], str]) -> Response:
        chosen = TokenCreate(label=label.strip() or "personal token")
        created = await to_thread.run_sync(_application(request).people.create_token, caller, chosen.label)
        return await _tokens_page(request, caller, row, status=201, new_token=created)

    return await _form(request, csrf, _tokens_page, act)


@people_pages.post("/dashboard/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str, csrf: Annotated[str, Form()] = "") -> Response:
    async def act(caller: Caller, row: DashboardSession, t: Callable[[str], str]) -> Response:
        await to_thread.run_sync(_application(request).people.revoke_token, caller, token_id)
        return await _tokens_page(request, caller, row, notice=t("Revoked."))

    return await _form(request, csrf, _tokens_page, act)
