"""What the API's routes depend on: the application service, who is calling (a party to
negotiations, or the admin), the path's ids, and the command call every command route makes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from anyio import to_thread
from fastapi import Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.api.problems import PROBLEM_JSON
from services.application.actions import Action, Answer, Once
from services.application.errors import Refusal
from services.application.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from services.application.security import Caller, as_party, authenticate, authenticate_known
from services.application.service import Application
from services.application.throttle import address_of

T = TypeVar("T")
Alive = Callable[[], Awaitable[bool]]

bearer = HTTPBearer(auto_error=False, description="An organisation's API key, or the admin token.")


async def get_application(request: Request) -> Application:  # async: FastAPI runs a plain def in a thread
    application: Application = request.app.state.application
    return application


ApplicationDep = Annotated[Application, Depends(get_application)]


async def get_caller(
    request: Request,
    application: ApplicationDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    """The caller of a valid key or the admin token; 401 otherwise; 429 over a rate limit."""
    hub = application.hub
    token = credentials.credentials if credentials is not None else None
    ttl_s = hub.settings.key_cache_ttl_s
    with hub.throttle.guard(address_of(request.client), token is not None):
        caller = authenticate_known(hub.engine, hub.settings.admin_token, token, ttl_s)
        if caller is None:
            caller = await to_thread.run_sync(
                lambda: authenticate(hub.engine, hub.settings.admin_token, token, ttl_s=ttl_s)
            )
    hub.throttle.spend(caller.organisation_id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]
TokenDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def still_authenticated(application: Application, credentials: HTTPAuthorizationCredentials | None) -> Alive:
    """For a long answer (a live stream): whether its credential still holds, so that the stream
    ends once its key is revoked or rotated (read again at most every ``KOOPKRACHT_KEY_CACHE_TTL_S``)."""
    hub = application.hub
    token = credentials.credentials if credentials is not None else None
    ttl_s = hub.settings.key_cache_ttl_s

    async def alive() -> bool:
        try:
            if authenticate_known(hub.engine, hub.settings.admin_token, token, ttl_s) is None:
                await to_thread.run_sync(lambda: authenticate(hub.engine, hub.settings.admin_token, token, ttl_s=ttl_s))
        except Refusal:
            return False
        return True

    return alive


async def party(caller: CallerDep) -> Caller:
    """An organisation: the admin takes no part in negotiations (403)."""
    return as_party(caller)


async def admin(caller: CallerDep) -> Caller:
    """The admin only (403 for an organisation)."""
    if caller.role != "admin":
        raise Refusal(403, "only the admin manages organisations")
    return caller


PartyDep = Annotated[Caller, Depends(party)]
AdminDep = Annotated[Caller, Depends(admin)]

PATH_ID = r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$"
NegotiationId = Annotated[str, Path(pattern=PATH_ID, max_length=64, description="The negotiation's id.")]
ItemKey = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64, description="An item key.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key returns the first answer and adds no event.",
    ),
]


@dataclass(frozen=True)
class PageQuery:
    """A list's page: ``limit`` items after ``cursor``. The answer's ``Link: <…>; rel="next"``
    header gives the next page's address; no such header on the last page."""

    limit: int
    cursor: str | None

    def answer(self, request: Request, response: Response, page: Page[T]) -> list[T]:
        link_next(request, response, page.next_cursor, self.limit)
        return page.items


def link_next(request: Request, response: Response, cursor: str | None, limit: int) -> None:
    """The next page's address in a ``Link`` header (RFC 8288); none after the last page."""
    if cursor is not None:
        following = request.url.include_query_params(cursor=cursor, limit=limit)
        response.headers["Link"] = f'<{following}>; rel="next"'


Cursor = Annotated[
    str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$", description="The next page, from a `Link` header.")
]


def page_query(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many items.")] = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PageQuery:
    return PageQuery(limit, cursor)


Paged = Annotated[PageQuery, Depends(page_query)]


class CommandCall:
    """What every command route does once it has built its action: hand it to the application
    service with the caller and the request's ``Idempotency-Key``, and answer with the outcome."""

    def __init__(self, request: Request, caller: Caller, application: Application, idempotency_key: str | None) -> None:
        self.request = request
        self.caller = caller
        self.application = application
        self.idempotency_key = idempotency_key

    async def __call__(self, action: Action) -> Response:
        return await self.run(lambda caller, once, instance: self.application.execute(caller, action, once, instance))

    async def run(self, execute: Callable[[Caller, Once | None, str], Awaitable[Answer]]) -> Response:
        """Answer with what ``execute(caller, once, instance)`` answers: for a command that the
        application service builds and sends itself (adopting a draft)."""
        request = self.request
        once = None
        if self.idempotency_key is not None:
            once = Once.of(self.idempotency_key, request.method, request.url.path, await request.body())
        return response(await execute(self.caller, once, request.url.path))


async def command_call(
    request: Request, caller: PartyDep, application: ApplicationDep, idempotency_key: IdempotencyKey = None
) -> CommandCall:
    return CommandCall(request, caller, application, idempotency_key)


Send = Annotated[CommandCall, Depends(command_call)]


def response(answer: Answer) -> Response:
    """A command's answer over HTTP: its document, or its refusal as problem+json."""
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    if answer.refused:
        return Response(answer.body, status_code=answer.status, media_type=PROBLEM_JSON, headers=headers)
    if not answer.body:
        return Response(status_code=204, headers=headers)
    return Response(answer.body, status_code=answer.status, media_type="application/json", headers=headers)
