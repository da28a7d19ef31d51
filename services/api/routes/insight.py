"""``/v1/negotiations/{id}/what-if`` and ``/suggestions``: the coordinator's insight (reads, no events)."""

from __future__ import annotations

from fastapi import APIRouter

from schemas.insight import Suggestions, WhatIf, WhatIfRequest
from services.api.dependencies import ApplicationDep, NegotiationId, PartyDep
from services.api.numbers import ExactJsonRoute
from services.api.routes.shared import READ

router = APIRouter(prefix="/v1/negotiations", tags=["negotiations"], route_class=ExactJsonRoute)


@router.post("/{negotiation_id}/what-if", response_model=WhatIf, responses=READ)
def what_if(
    negotiation_id: NegotiationId, body: WhatIfRequest, caller: PartyDep, application: ApplicationDep
) -> WhatIf:
    """What the joint demand, cohesion and the members' standing would be with another policy,
    items dropped or added, or members' concessions (coordinator: with names; member: counts, and
    only its own concessions). A read: nothing is written. Never the vendor's (403)."""
    return application.what_if(caller, negotiation_id, body)


@router.get("/{negotiation_id}/suggestions", response_model=Suggestions, responses=READ)
def suggestions(negotiation_id: NegotiationId, caller: PartyDep, application: ApplicationDep) -> Suggestions:
    """Deterministic suggestions that raise cohesion (coordinator): the members' concessions that
    would end each conflict or satisfy a member, and the vendor's best answer per item."""
    return application.suggestions(caller, negotiation_id)
