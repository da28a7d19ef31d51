"""``/v1/negotiations/{id}/state``, ``…/events``, ``…/stream`` and ``…/export/ocds``: the shared
state, the change feed and its live stream, and the agreement as an OCDS release."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from schemas.documents import SharedState
from services.api.dependencies import ApplicationDep, NegotiationId, PartyDep, TokenDep, still_authenticated
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.api.routes.shared import READ
from services.application.documents import ChangeFeed

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.get("/{negotiation_id}/state", response_model=SharedState, responses=READ)
def get_state(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> SharedState:
    """The shared negotiation state, as the caller may see it."""
    return application.shared_state(caller, negotiation_id)


@router.get("/{negotiation_id}/events", response_model=ChangeFeed, responses=READ)
def change_feed(
    negotiation_id: NegotiationId,
    caller: PartyDep,
    application: ApplicationDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Events after this sequence.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events are read.")] = 100,
) -> ChangeFeed:
    """The change feed: the negotiation's events after ``after``, as the caller may see them."""
    return application.change_feed(caller, negotiation_id, after=after, limit=limit)


@router.get(
    "/{negotiation_id}/export/ocds",
    response_model=dict[str, Any],
    responses={**READ, **problems(409)},
    summary="The agreement as an OCDS release",
)
def export_ocds(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> dict[str, Any]:
    """The agreed negotiation as an Open Contracting (OCDS 1.1.5) release (coordinator, members).

    409 until the negotiation is agreed. The vendor may not export it: it names the members."""
    return application.ocds_release(caller, negotiation_id)


@router.get(
    "/{negotiation_id}/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: one message per event the caller may see, `id` = its sequence.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **READ,
    },
)
async def live_stream(
    negotiation_id: NegotiationId,
    caller: PartyDep,
    application: ApplicationDep,
    credentials: TokenDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^\d{1,10}$", description="Resume after this sequence.")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Start after this sequence.")] = None,
) -> EventSourceResponse:
    """The change feed as Server-Sent Events, live: each message's ``id`` is the event's sequence,
    ``event`` its type, ``data`` the message with its notices. Reconnecting with ``Last-Event-ID``
    resumes with nothing lost and nothing repeated; comment lines keep idle connections open. The stream
    ends once its key is revoked or rotated."""
    viewer = await to_thread.run_sync(application.viewer, caller, negotiation_id)
    cursor = int(last_event_id) if last_event_id is not None else (after or 0)
    messages, give_back = application.live(
        viewer, negotiation_id, cursor, alive=still_authenticated(application, credentials)
    )
    return EventSourceResponse(
        messages, ping=max(1, int(application.hub.settings.sse_heartbeat_s)), background=BackgroundTask(give_back)
    )
