"""``/v1/negotiations/{id}/responses`` and ``…/clarifications``: the vendor's answers and
questions, and the coordinator's answers to them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from schemas.documents import ClarificationView
from services.api.dependencies import NegotiationId, Send
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import COMMAND
from services.application import commands
from services.application.documents import (
    ClarificationAnswer,
    ClarificationCreate,
    VendorResponse,
    VendorResponseCreate,
)

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.post("/{negotiation_id}/responses", status_code=201, response_model=VendorResponse, responses=COMMAND)
async def respond(negotiation_id: NegotiationId, body: VendorResponseCreate, send: Send) -> Response:
    """Answer the latest demand version, item by item, as the next round (vendor)."""
    return await send(commands.respond(send.caller, negotiation_id, body.demand_version, body.items))


@router.post("/{negotiation_id}/clarifications", status_code=201, response_model=ClarificationView, responses=COMMAND)
async def request_clarification(negotiation_id: NegotiationId, body: ClarificationCreate, send: Send) -> Response:
    """Ask the coordinator a question about an item (vendor)."""
    return await send(commands.request_clarification(send.caller, negotiation_id, body.item_key, body.question))


@router.post(
    "/{negotiation_id}/clarifications/{clarification_id}/answer", response_model=ClarificationView, responses=COMMAND
)
async def answer_clarification(
    negotiation_id: NegotiationId,
    clarification_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ClarificationAnswer,
    send: Send,
) -> Response:
    """Answer the vendor's question (coordinator)."""
    return await send(commands.answer_clarification(send.caller, negotiation_id, clarification_id, body.answer))
