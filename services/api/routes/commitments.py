"""``/v1/negotiations/{id}/commitments`` and ``…/reopen``: after the agreement (SPEC section 9), the
vendor's plan and deliveries, the members' checks and regression reports, the coordinator's
decisions on plans and deliveries, and reopening the negotiation.

Every command answers with the commitments as the caller may see them once it took effect."""

from __future__ import annotations

from fastapi import APIRouter, Response

from schemas.documents import CommitmentsDocument
from services.api.dependencies import ApplicationDep, ItemKey, NegotiationId, PartyDep, Send
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import COMMAND, READ
from services.application import commands
from services.application.documents import (
    CheckCreate,
    DeliveryCreate,
    PlanCreate,
    PlanRejection,
    RegressionCreate,
    ReopenRequest,
)

router = APIRouter(prefix="/v1/negotiations", tags=["commitments"], route_class=ExactJsonRoute)


@router.get("/{negotiation_id}/commitments", response_model=CommitmentsDocument, responses=READ)
def get_commitments(
    negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep
) -> CommitmentsDocument:
    """The agreement's commitments, the plan awaiting a decision and what is reopened, as the caller
    may see them: members' checks and regression reports are the coordinator's and their own."""
    return application.commitments(caller, negotiation_id)


@router.post(
    "/{negotiation_id}/commitments/plan", status_code=201, response_model=CommitmentsDocument, responses=COMMAND
)
async def plan(negotiation_id: NegotiationId, body: PlanCreate, send: Send) -> Response:
    """Propose the action plan: a due date in the future for every commitment not yet planned (vendor)."""
    return await send(commands.plan_commitments(send.caller, negotiation_id, body.items))


@router.post("/{negotiation_id}/commitments/plan/accept", response_model=CommitmentsDocument, responses=COMMAND)
async def accept_plan(negotiation_id: NegotiationId, send: Send) -> Response:
    """Accept the vendor's plan: its due dates hold and implementation starts (coordinator)."""
    return await send(commands.accept_plan(send.caller, negotiation_id))


@router.post("/{negotiation_id}/commitments/plan/reject", response_model=CommitmentsDocument, responses=COMMAND)
async def reject_plan(negotiation_id: NegotiationId, body: PlanRejection, send: Send) -> Response:
    """Ask the vendor for another plan, saying why (coordinator)."""
    return await send(commands.reject_plan(send.caller, negotiation_id, body.comment))


@router.post(
    "/{negotiation_id}/commitments/{item_key}/delivered",
    status_code=201,
    response_model=CommitmentsDocument,
    responses=COMMAND,
)
async def deliver(negotiation_id: NegotiationId, item_key: ItemKey, body: DeliveryCreate, send: Send) -> Response:
    """Report a commitment done, with evidence: a text or a URL (vendor)."""
    return await send(commands.deliver(send.caller, negotiation_id, item_key, body.evidence))


@router.post(
    "/{negotiation_id}/commitments/{item_key}/checks",
    status_code=201,
    response_model=CommitmentsDocument,
    responses=COMMAND,
)
async def check(negotiation_id: NegotiationId, item_key: ItemKey, body: CheckCreate, send: Send) -> Response:
    """Check a delivery in the member's own environment: met or not met; a second check of the
    same delivery replaces the first (member)."""
    return await send(commands.check(send.caller, negotiation_id, item_key, body.verdict, body.comment))


@router.post("/{negotiation_id}/commitments/{item_key}/verdict", response_model=CommitmentsDocument, responses=COMMAND)
async def verdict(negotiation_id: NegotiationId, item_key: ItemKey, body: CheckCreate, send: Send) -> Response:
    """Decide on a delivery for the coalition: met, or not met (open for a new delivery) (coordinator)."""
    return await send(commands.give_verdict(send.caller, negotiation_id, item_key, body.verdict, body.comment))


@router.post(
    "/{negotiation_id}/commitments/{item_key}/regressions",
    status_code=201,
    response_model=CommitmentsDocument,
    responses=COMMAND,
)
async def report_regression(
    negotiation_id: NegotiationId, item_key: ItemKey, body: RegressionCreate, send: Send
) -> Response:
    """Report that a met commitment no longer holds (member)."""
    return await send(commands.report_regression(send.caller, negotiation_id, item_key, body.comment))


@router.post("/{negotiation_id}/reopen", response_model=CommitmentsDocument, responses=COMMAND)
async def reopen(negotiation_id: NegotiationId, body: ReopenRequest, send: Send) -> Response:
    """Negotiate chosen commitments again: the phase is negotiating, and the next demand version
    holds only these items (coordinator)."""
    return await send(commands.reopen(send.caller, negotiation_id, body.items, body.reason))
