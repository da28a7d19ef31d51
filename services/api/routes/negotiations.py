"""``/v1/negotiations``: opening, listing and reading a negotiation; its members and policy."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from schemas.documents import MemberView, NegotiationSummary
from schemas.negotiation import Policy
from services.api.dependencies import ApplicationDep, NegotiationId, Paged, PartyDep, Send
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.api.routes.shared import COMMAND, READ
from services.application import commands
from services.application.documents import MemberInvite, NegotiationCreate, NegotiationListing

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.post("", status_code=201, response_model=NegotiationSummary, responses=COMMAND)
async def open_negotiation(body: NegotiationCreate, send: Send) -> Response:
    """Open a negotiation with a vendor (coordinator). Items come from the catalogue by key, or inline."""
    action = await send.application.opening(send.caller, body.title, body.vendor_id, body.items, body.policy)
    return await send(action)


@router.get("", response_model=list[NegotiationListing], responses=problems(401, 403, 422))
def list_negotiations(
    request: Request, response: Response, caller: PartyDep, application: ApplicationDep, page: Paged
) -> list[NegotiationListing]:
    """The negotiations the caller is party to, newest first, in pages (``Link: rel=next``)."""
    return page.answer(request, response, application.negotiations(caller, page.limit, page.cursor))


@router.get("/{negotiation_id}", response_model=NegotiationSummary, responses=READ)
def get_negotiation(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> NegotiationSummary:
    """Title, phase, items, clarifications; members and policy for the coordinator and members."""
    return application.summary(caller, negotiation_id)


@router.post("/{negotiation_id}/members", status_code=201, response_model=MemberView, responses=COMMAND)
async def invite_member(negotiation_id: NegotiationId, body: MemberInvite, send: Send) -> Response:
    """Invite a member organisation with a weight (coordinator)."""
    action = await send.application.invitation(send.caller, negotiation_id, body.organisation_id, body.weight)
    return await send(action)


@router.put("/{negotiation_id}/policy", response_model=Policy, responses=COMMAND)
async def change_policy(negotiation_id: NegotiationId, body: Policy, send: Send) -> Response:
    """Replace the policy (coordinator, while collecting or negotiating)."""
    return await send(commands.change_policy(send.caller, negotiation_id, body))
