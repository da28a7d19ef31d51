"""``/v1/negotiations/{id}/demand``: the live joint demand, its explanation, publishing it, the published versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from schemas.documents import DemandExplanation, DemandVersion, JointDemand
from services.api.dependencies import ApplicationDep, NegotiationId, PartyDep, Send
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import COMMAND, READ
from services.application import commands

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.get("/{negotiation_id}/demand", response_model=JointDemand | DemandVersion, responses=READ)
def get_demand(
    negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep
) -> JointDemand | DemandVersion:
    """The live joint demand (coordinator, members); for the vendor the latest published version."""
    return application.demand(caller, negotiation_id)


@router.get("/{negotiation_id}/demand/explain", response_model=DemandExplanation, responses=READ)
def explain_demand(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> DemandExplanation:
    """Why every item of the live joint demand is what it is (coordinator, members): the inclusion
    test, how the priority arose, and how the target follows from the considered positions."""
    return application.explain(caller, negotiation_id)


@router.post("/{negotiation_id}/demand/publish", status_code=201, response_model=DemandVersion, responses=COMMAND)
async def publish_demand(negotiation_id: NegotiationId, send: Send) -> Response:
    """Publish the live demand as the next demand version (coordinator)."""
    return await send(commands.publish_demand(send.caller, negotiation_id))


@router.get("/{negotiation_id}/demand/versions/{version}", response_model=DemandVersion, responses=READ)
def get_demand_version(
    negotiation_id: NegotiationId,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    caller: PartyDep,
    application: ApplicationDep,
) -> DemandVersion:
    """A published demand version."""
    return application.demand_version(caller, negotiation_id, version)
