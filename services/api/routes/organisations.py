"""``/v1/organisations``: the admin creates organisations; anyone asks who it is."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.dependencies import AdminDep, ApplicationDep, CallerDep
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.application.documents import OrganisationCreate, OrganisationCreated, OrganisationPublic

router = APIRouter(prefix="/v1/organisations", tags=["organisations"], route_class=ExactJsonRoute)


@router.post("", status_code=201, response_model=OrganisationCreated, responses=problems(401, 403, 422))
def create_organisation(body: OrganisationCreate, _admin: AdminDep, application: ApplicationDep) -> OrganisationCreated:
    """Create an organisation and its API key (admin only). The key is shown once."""
    return application.create_organisation(body.name, body.role)


@router.get("/me", response_model=OrganisationPublic, responses=problems(401))
def who_am_i(caller: CallerDep, application: ApplicationDep) -> OrganisationPublic:
    """The calling organisation (or the admin)."""
    return application.who_am_i(caller)
