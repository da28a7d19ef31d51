"""``/v1/negotiations/{id}/agreement`` and ``…/abandon``: proposing the agreement, endorsing it,
and abandoning the negotiation."""

from __future__ import annotations

from fastapi import APIRouter, Response

from services.api.dependencies import NegotiationId, Send
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import COMMAND
from services.application import commands
from services.application.documents import (
    Abandonment,
    AbandonRequest,
    AgreementProposal,
    EndorsementCreate,
    EndorsementResult,
)

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.post("/{negotiation_id}/agreement/propose", response_model=AgreementProposal, responses=COMMAND)
async def propose_agreement(negotiation_id: NegotiationId, send: Send) -> Response:
    """Put the vendor's current offers up for endorsement (coordinator)."""
    return await send(commands.propose_agreement(send.caller, negotiation_id))


@router.post(
    "/{negotiation_id}/agreement/endorsements", status_code=201, response_model=EndorsementResult, responses=COMMAND
)
async def endorse(negotiation_id: NegotiationId, body: EndorsementCreate, send: Send) -> Response:
    """Accept or reject the proposed agreement (member); the answer says if this decided it."""
    return await send(commands.endorse(send.caller, negotiation_id, body.decision, body.comment))


@router.post("/{negotiation_id}/abandon", response_model=Abandonment, responses=COMMAND)
async def abandon(negotiation_id: NegotiationId, send: Send, body: AbandonRequest | None = None) -> Response:
    """Abandon the negotiation (coordinator, in any phase that is not final)."""
    return await send(commands.abandon(send.caller, negotiation_id, body.reason if body is not None else None))
