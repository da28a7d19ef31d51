"""``/v1/negotiations/{id}/positions``: the members' positions on the items."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.documents import PositionView
from schemas.negotiation import Position
from services.api.dependencies import ApplicationDep, ItemKey, NegotiationId, PartyDep, Send
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import COMMAND, READ
from services.application import commands

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.put("/{negotiation_id}/positions/{item_key}", response_model=PositionView, responses=COMMAND)
async def state_position(negotiation_id: NegotiationId, item_key: ItemKey, body: Position, send: Send) -> Response:
    """State or replace the caller's own position on an item (member)."""
    return await send(commands.state_position(send.caller, negotiation_id, item_key, body))


@router.delete("/{negotiation_id}/positions/{item_key}", status_code=204, response_class=Response, responses=COMMAND)
async def withdraw_position(negotiation_id: NegotiationId, item_key: ItemKey, send: Send) -> Response:
    """Withdraw the caller's own position on an item (member)."""
    return await send(commands.withdraw_position(send.caller, negotiation_id, item_key))


@router.get("/{negotiation_id}/positions", response_model=list[PositionView], responses=READ)
def list_positions(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> list[PositionView]:
    """All positions (coordinator; members when positions are transparent), else the caller's own."""
    return application.positions(caller, negotiation_id)
