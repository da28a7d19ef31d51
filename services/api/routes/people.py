"""People inside organisations (SPEC section 10): an organisation's owners invite, re-role and
remove its people (``/v1/organisations/me/people``); the admin gives an organisation an owner;
every person manages their own personal tokens (``/v1/people/me/tokens``)."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Path

from services.api.dependencies import PATH_ID, AdminDep, ApplicationDep, CallerDep
from services.api.numbers import ExactJsonRoute
from services.api.problems import problems
from services.application.documents import (
    PersonChange,
    PersonCreate,
    PersonCreated,
    PersonPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
)

router = APIRouter(tags=["people"], route_class=ExactJsonRoute)
PersonId = Annotated[str, Path(pattern=PATH_ID, max_length=64, description="The person's id.")]
OrganisationId = Annotated[str, Path(pattern=PATH_ID, max_length=64, description="The organisation's id.")]
TokenId = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The token's id.")]


@router.get("/v1/organisations/me/people", response_model=list[PersonPublic], responses=problems(401, 403))
async def people(caller: CallerDep, application: ApplicationDep) -> list[PersonPublic]:
    """The calling organisation's people (to its people and its integration key)."""
    return await to_thread.run_sync(application.people.of_organisation, caller)


@router.post(
    "/v1/organisations/me/people", status_code=201, response_model=PersonCreated, responses=problems(401, 403, 409, 422)
)
async def invite(body: PersonCreate, caller: CallerDep, application: ApplicationDep) -> PersonCreated:
    """Invite a person into the calling organisation with a role (owners only). With single sign-on,
    the invitation binds at the person's first sign-in with this e-mail address; without it, the
    answer carries the person's first personal token, shown once."""
    return await to_thread.run_sync(application.people.invite, caller, body)


@router.put(
    "/v1/organisations/me/people/{person_id}", response_model=PersonPublic, responses=problems(401, 403, 404, 409, 422)
)
async def change_role(
    person_id: PersonId, body: PersonChange, caller: CallerDep, application: ApplicationDep
) -> PersonPublic:
    """Change a person's role (owners only); the person's dashboard sessions end, to begin again
    with the new role. The last owner stays an owner (409)."""
    return await to_thread.run_sync(application.people.change_role, caller, person_id, body.role)


@router.delete(
    "/v1/organisations/me/people/{person_id}", response_model=PersonPublic, responses=problems(401, 403, 404, 409)
)
async def remove(person_id: PersonId, caller: CallerDep, application: ApplicationDep) -> PersonPublic:
    """Remove a person (owners only): their personal tokens are revoked and their dashboard sessions
    end, at once in this API process and within `KOOPKRACHT_KEY_CACHE_TTL_S` (10 s) in every other.
    The last owner cannot be removed (409)."""
    return await to_thread.run_sync(application.people.remove, caller, person_id)


@router.post(
    "/v1/organisations/{organisation_id}/owners",
    status_code=201,
    response_model=PersonCreated,
    responses=problems(401, 403, 404, 422),
)
async def add_owner(
    organisation_id: OrganisationId, body: PersonCreate, _admin: AdminDep, application: ApplicationDep
) -> PersonCreated:
    """Give an organisation an owner (admin only), e.g. one created before people existed, or whose
    owners lost their access; any organisation may be given one. The person's role is `owner`
    whatever is sent."""
    return await to_thread.run_sync(application.people.add_owner, organisation_id, body)


@router.get("/v1/people/me", response_model=PersonPublic, responses=problems(401, 403))
async def me(caller: CallerDep, application: ApplicationDep) -> PersonPublic:
    """The calling person (403 for an integration key)."""
    return await to_thread.run_sync(application.people.me, caller)


@router.get("/v1/people/me/tokens", response_model=list[TokenPublic], responses=problems(401, 403))
async def tokens(caller: CallerDep, application: ApplicationDep) -> list[TokenPublic]:
    """The calling person's personal tokens, with when each was last used; never the tokens themselves."""
    return await to_thread.run_sync(application.people.tokens, caller)


@router.post(
    "/v1/people/me/tokens", status_code=201, response_model=TokenCreated, responses=problems(401, 403, 409, 422)
)
async def create_token(body: TokenCreate, caller: CallerDep, application: ApplicationDep) -> TokenCreated:
    """A new personal token for the calling person, shown once."""
    return await to_thread.run_sync(application.people.create_token, caller, body.label)


@router.delete("/v1/people/me/tokens/{token_id}", response_model=TokenPublic, responses=problems(401, 403, 404))
async def revoke_token(token_id: TokenId, caller: CallerDep, application: ApplicationDep) -> TokenPublic:
    """Revoke one of the calling person's tokens: it stops working at once in this API process and
    within `KOOPKRACHT_KEY_CACHE_TTL_S` (10 s) in every other."""
    return await to_thread.run_sync(application.people.revoke_token, caller, token_id)
