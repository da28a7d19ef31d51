"""``/v1/negotiations/{id}/drafts``: a member organisation's drafts of its positions, their comment
threads, and adopting a draft (SPEC section 10). Seen only inside the organisation: whoever is not
a member of the negotiation gets 404 on every route here."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Response

from schemas.documents import PositionView
from schemas.negotiation import Position
from services.api.dependencies import ApplicationDep, ItemKey, NegotiationId, PartyDep, Send
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.api.routes.shared import COMMAND
from services.application.documents import CommentCreate, CommentView, DraftView

router = APIRouter(prefix="/v1/negotiations", tags=["drafts"], route_class=ExactJsonRoute)


@router.get("/{negotiation_id}/drafts", response_model=list[DraftView], responses=problems(401, 403, 404, 422))
async def drafts(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> list[DraftView]:
    """The calling organisation's drafts in the negotiation, each with its comments, oldest first
    (a member's people and its integration key; 404 for everybody else)."""
    return await to_thread.run_sync(application.drafts.of_negotiation, caller, negotiation_id)


@router.put(
    "/{negotiation_id}/drafts/{item_key}", response_model=DraftView, responses=problems(401, 403, 404, 409, 422)
)
async def save_draft(
    negotiation_id: NegotiationId, item_key: ItemKey, body: Position, caller: PartyDep, application: ApplicationDep
) -> DraftView:
    """Draft or redraft the organisation's position on an item (any of a member's people). The body
    is that of `PUT …/positions/{item_key}`, checked as a stated position is: 409 outside the
    phases that take positions, 422 for what does not fit the item."""
    return await to_thread.run_sync(application.drafts.save, caller, negotiation_id, item_key, body)


@router.post(
    "/{negotiation_id}/drafts/{item_key}/comments",
    status_code=201,
    response_model=CommentView,
    responses=problems(401, 403, 404, 409, 422),
)
async def comment(
    negotiation_id: NegotiationId,
    item_key: ItemKey,
    body: CommentCreate,
    caller: PartyDep,
    application: ApplicationDep,
) -> CommentView:
    """Comment on the organisation's draft of an item (any of a member's people; 404 without a
    draft; 409 past the comment limits)."""
    return await to_thread.run_sync(application.drafts.comment, caller, negotiation_id, item_key, body.text)


@router.post(
    "/{negotiation_id}/drafts/{item_key}/adopt", response_model=PositionView, responses={**COMMAND, **problems(412)}
)
async def adopt(
    negotiation_id: NegotiationId,
    item_key: ItemKey,
    send: Send,
    application: ApplicationDep,
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            max_length=100,
            description="The draft's `version` as read: adopt only if the draft is still that (412 otherwise).",
        ),
    ] = None,
) -> Response:
    """Adopt the draft: state it as the organisation's position (an approver or owner; 403 for a
    contributor), through the same command as `PUT …/positions/{item_key}`, with the same answer.
    Send `If-Match` with the draft's `version` to adopt exactly what you read."""
    version = None if if_match is None else if_match.strip().removeprefix("W/").strip('"')
    return await send.run(
        lambda caller, once, instance: application.drafts.adopt(
            caller, negotiation_id, item_key, once, instance, version=version
        )
    )
