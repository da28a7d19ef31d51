"""``/v1/organisations``: the admin creates organisations and revokes or reissues their keys; an
organisation rotates its own key; anyone asks who it is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.api.dependencies import PATH_ID, AdminDep, ApplicationDep, CallerDep
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.application.documents import OrganisationCreate, OrganisationCreated, OrganisationPublic

router = APIRouter(prefix="/v1/organisations", tags=["organisations"], route_class=ExactJsonRoute)
OrganisationId = Annotated[str, Path(pattern=PATH_ID, max_length=64, description="The organisation's id.")]


@router.post("", status_code=201, response_model=OrganisationCreated, responses=problems(401, 403, 422))
def create_organisation(body: OrganisationCreate, _admin: AdminDep, application: ApplicationDep) -> OrganisationCreated:
    """Create an organisation, its integration key and (with `owner`) its first owner (admin only).
    The key, and without single sign-on the owner's first personal token, are shown once."""
    return application.create_organisation(body.name, body.role, body.owner)


@router.get("/me", response_model=OrganisationPublic, responses=problems(401))
def who_am_i(caller: CallerDep, application: ApplicationDep) -> OrganisationPublic:
    """The calling organisation (or the admin)."""
    return application.who_am_i(caller)


@router.post("/me/key/rotate", status_code=201, response_model=OrganisationCreated, responses=problems(401, 403))
def rotate_key(caller: CallerDep, application: ApplicationDep) -> OrganisationCreated:
    """A new API key for the calling organisation, shown once. The key that called stops working at
    once in this API process and within `KOOPKRACHT_KEY_CACHE_TTL_S` (10 s) in every other. The
    integration key itself or an owner rotates it (403 for other people); the admin has none (403)."""
    return application.rotate_key(caller)


@router.post("/{organisation_id}/key/revoke", response_model=OrganisationPublic, responses=problems(401, 403, 404, 422))
def revoke_key(organisation_id: OrganisationId, _admin: AdminDep, application: ApplicationDep) -> OrganisationPublic:
    """Revoke the organisation's API key (admin only): it stops working at once in this API process and
    within `KOOPKRACHT_KEY_CACHE_TTL_S` (10 s) in every other, and its webhook subscriptions are disabled.
    People's personal tokens and sessions are theirs and go on. Revoking a revoked key changes nothing.
    `POST …/key` gives the organisation a new one."""
    return application.revoke_key(organisation_id)


@router.post(
    "/{organisation_id}/key",
    status_code=201,
    response_model=OrganisationCreated,
    responses=problems(401, 403, 404, 422),
)
def issue_key(organisation_id: OrganisationId, _admin: AdminDep, application: ApplicationDep) -> OrganisationCreated:
    """A new API key for the organisation (admin only), shown once, in place of its current key, revoked
    or not (which stops working as on revocation): for an organisation that lost its key."""
    return application.issue_key(organisation_id)
