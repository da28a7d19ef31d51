"""The routes of SPEC section 8. Each one authenticates, then reads a view or sends one command.

Who may do what is decided by the pure core: the decider refuses commands (404 for a non-party,
403 for a role that may not act, 409 for the wrong phase, 422 for bad input) and the views cut
every document to what the caller may see. The routes add only what needs the hub's own tables:
API keys, organisations, and resolving catalogue keys, vendor and member ids into a command.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session, col, or_, select
from sse_starlette import EventSourceResponse

from schemas.commands import (
    Abandon,
    AnswerClarification,
    ChangePolicy,
    Endorse,
    InviteMember,
    OpenNegotiation,
    ProposeAgreement,
    PublishDemand,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    WithdrawPosition,
)
from schemas.documents import (
    ClarificationView,
    DemandVersion,
    JointDemand,
    MemberView,
    NegotiationSummary,
    PositionView,
    SharedState,
)
from schemas.events import (
    AgreementProposed,
    AgreementReached,
    AgreementRejected,
    ClarificationAnswered,
    ClarificationRequested,
    DemandPublished,
    EndorsementGiven,
    Event,
    MemberInvited,
    NegotiationAbandoned,
    PolicyChanged,
    PositionStated,
    VendorResponded,
)
from schemas.negotiation import Policy, Position, RequirementItem
from services.api.bodies import (
    Abandonment,
    AbandonRequest,
    AgreementProposal,
    CatalogueRef,
    ChangeFeed,
    ClarificationAnswer,
    ClarificationCreate,
    EndorsementCreate,
    EndorsementResult,
    FeedEntry,
    MemberInvite,
    NegotiationCreate,
    NegotiationListing,
    OrganisationCreate,
    OrganisationCreated,
    OrganisationPublic,
    VendorResponse,
    VendorResponseCreate,
)
from services.api.hub import Hub, negotiation_id_for
from services.api.problems import Problem, problems
from services.api.security import Caller, authenticate, authenticate_known, new_key
from services.catalogue import load_catalogue
from services.readmodel.store import load_events
from services.readmodel.tables import MemberRow, NegotiationRow, Organisation, utc
from services.subscriptions.messages import figures_before, message
from streams.core import ocds, views
from streams.core.state import NegotiationState, evolve, replay
from streams.core.views import Audience

bearer = HTTPBearer(auto_error=False, description="An organisation's API key, or the admin token.")


async def get_hub(request: Request) -> Hub:  # async: FastAPI runs a plain def in a thread
    hub: Hub = request.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


async def get_caller(
    hub: HubDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Caller:
    token = credentials.credentials if credentials is not None else None
    known = authenticate_known(hub.engine, hub.settings.admin_token, token)
    if known is not None:
        return known
    return await to_thread.run_sync(authenticate, hub.engine, hub.settings.admin_token, token)


CallerDep = Annotated[Caller, Depends(get_caller)]
PATH_ID = r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,63}$"
NegotiationId = Annotated[str, Path(pattern=PATH_ID, max_length=64, description="The negotiation's id.")]
ItemKey = Annotated[str, Path(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", max_length=64, description="An item key.")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key returns the first answer and adds no event.",
    ),
]

READ = problems(401, 403, 404, 422)
COMMAND = problems(401, 403, 404, 409, 422, 503)

organisations = APIRouter(prefix="/v1/organisations", tags=["organisations"])
negotiations = APIRouter(prefix="/v1/negotiations", tags=["negotiations"])


# -- organisations ------------------------------------------------------------------------------


@organisations.post("", status_code=201, response_model=OrganisationCreated, responses=problems(401, 403, 422))
def create_organisation(body: OrganisationCreate, caller: CallerDep, hub: HubDep) -> OrganisationCreated:
    """Create an organisation and its API key (admin only). The key is shown once."""
    if caller.role != "admin":
        raise Problem(403, "only the admin creates organisations")
    key = new_key()
    organisation = Organisation(
        id=f"org_{key.key_id}",
        name=body.name,
        role=body.role,
        key_id=key.key_id,
        key_hash=key.hash,
        created_at=datetime.now(UTC),
    )
    with Session(hub.engine, expire_on_commit=False) as session:
        session.add(organisation)
        session.commit()
    return OrganisationCreated(
        id=organisation.id, name=body.name, role=body.role, created_at=organisation.created_at, api_key=key.api_key
    )


@organisations.get("/me", response_model=OrganisationPublic, responses=problems(401))
def who_am_i(caller: CallerDep, hub: HubDep) -> OrganisationPublic:
    """The calling organisation (or the admin)."""
    created = None
    if caller.role != "admin":
        with Session(hub.engine) as session:
            row = session.get(Organisation, caller.organisation_id)
            created = utc(row.created_at) if row is not None else None
    return OrganisationPublic(id=caller.organisation_id, name=caller.name, role=caller.role, created_at=created)


# -- negotiations: opening and listing ------------------------------------------------------------


def _organisation(hub: Hub, organisation_id: str) -> Organisation | None:
    with Session(hub.engine) as session:
        return session.get(Organisation, organisation_id)


def _resolve_items(items: Sequence[CatalogueRef | RequirementItem]) -> tuple[RequirementItem, ...]:
    catalogue = load_catalogue()
    resolved = []
    for index, item in enumerate(items):
        if isinstance(item, CatalogueRef):
            if item.key not in catalogue:
                raise Problem(
                    422,
                    f"items.{index}.key: {item.key!r} is not in the catalogue; define the item inline instead",
                    title="Invalid input",
                    field=f"items.{index}.key",
                )
            item = catalogue[item.key]
        resolved.append(item)
    return tuple(resolved)


@negotiations.post("", status_code=201, response_model=NegotiationSummary, responses=COMMAND)
async def open_negotiation(
    body: NegotiationCreate, request: Request, caller: CallerDep, hub: HubDep, idempotency_key: IdempotencyKey = None
) -> Response:
    """Open a negotiation with a vendor (coordinator). Items come from the catalogue by key, or inline."""
    if caller.role != "coordinator":
        raise Problem(403, f"a {caller.role} may not open negotiations; this needs a coordinator")
    vendor = await to_thread.run_sync(_organisation, hub, body.vendor_id)
    if vendor is None or vendor.role != "vendor":
        raise Problem(422, "vendor_id: there is no vendor organisation with this id", field="vendor_id")
    items = _resolve_items(body.items)

    def build(command_id: str) -> OpenNegotiation:
        return OpenNegotiation(
            command_id=command_id,
            negotiation_id=negotiation_id_for(command_id),
            actor=caller.actor(),
            title=body.title,
            vendor_id=vendor.id,
            vendor_name=vendor.name,
            items=items,
            policy=body.policy or Policy(),
        )

    def render(events: Sequence[Event], state: NegotiationState) -> NegotiationSummary:
        opened = replay(events[:1])
        assert opened is not None
        return views.summary(opened, Audience("coordinator", caller.organisation_id))

    return await hub.execute(request, caller, idempotency_key, build, render, 201)


@negotiations.get("", response_model=list[NegotiationListing], responses=problems(401, 403))
def list_negotiations(caller: CallerDep, hub: HubDep) -> list[NegotiationListing]:
    """The negotiations the caller is party to, newest first."""
    if caller.role == "admin":
        raise Problem(403, "the admin manages organisations and takes no part in negotiations")
    me = caller.organisation_id
    with Session(hub.engine) as session:
        member_of = select(MemberRow.negotiation_id).where(MemberRow.organisation_id == me)
        rows = session.exec(
            select(NegotiationRow)
            .where(
                or_(
                    NegotiationRow.coordinator_id == me,
                    NegotiationRow.vendor_id == me,
                    col(NegotiationRow.id).in_(member_of),
                )
            )
            .order_by(col(NegotiationRow.opened_at).desc())
        ).all()
    return [
        NegotiationListing(
            id=row.id,
            title=row.title,
            phase=row.phase,
            sequence=row.sequence,
            your_role="coordinator" if row.coordinator_id == me else "vendor" if row.vendor_id == me else "member",
            demand_version=row.demand_version,
            round=row.round,
            opened_at=utc(row.opened_at),
            updated_at=utc(row.updated_at),
        )
        for row in rows
    ]


@negotiations.get("/{negotiation_id}", response_model=NegotiationSummary, responses=READ)
def get_negotiation(negotiation_id: NegotiationId, caller: CallerDep, hub: HubDep) -> NegotiationSummary:
    """Title, phase, items, clarifications; members and policy for the coordinator and members."""
    return hub.read(caller, negotiation_id, views.summary)


# -- the coordinator's commands -------------------------------------------------------------------


@negotiations.post("/{negotiation_id}/members", status_code=201, response_model=MemberView, responses=COMMAND)
async def invite_member(
    negotiation_id: NegotiationId,
    body: MemberInvite,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Invite a member organisation with a weight (coordinator)."""
    member = await to_thread.run_sync(_organisation, hub, body.organisation_id)
    if member is None or member.role != "member":
        # Refuse the unknown organisation only to whom may invite: others learn nothing from it.
        viewer = await to_thread.run_sync(hub.read, caller, negotiation_id, lambda state, viewer: viewer)
        if viewer.role != "coordinator":
            raise Problem(403, f"a {viewer.role} may not invite members; this needs the coordinator")
        raise Problem(422, "organisation_id: there is no member organisation with this id", field="organisation_id")
    name = member.name

    def build(command_id: str) -> InviteMember:
        return InviteMember(
            command_id=command_id,
            negotiation_id=negotiation_id,
            actor=caller.actor(),
            organisation_id=body.organisation_id,
            name=name,
            weight=body.weight,
        )

    def render(events: Sequence[Event], state: NegotiationState) -> MemberView:
        event = _only(events, MemberInvited)
        return MemberView(organisation_id=event.organisation_id, name=event.name, weight=event.weight)

    return await hub.execute(request, caller, idempotency_key, build, render, 201)


@negotiations.put("/{negotiation_id}/policy", response_model=Policy, responses=COMMAND)
async def change_policy(
    negotiation_id: NegotiationId,
    body: Policy,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Replace the policy (coordinator, while collecting or negotiating)."""
    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: ChangePolicy(command_id=cid, negotiation_id=negotiation_id, actor=caller.actor(), policy=body),
        lambda events, state: _only(events, PolicyChanged).policy,
        200,
    )


@negotiations.post("/{negotiation_id}/demand/publish", status_code=201, response_model=DemandVersion, responses=COMMAND)
async def publish_demand(
    negotiation_id: NegotiationId,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Publish the live demand as the next demand version (coordinator)."""
    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: PublishDemand(command_id=cid, negotiation_id=negotiation_id, actor=caller.actor()),
        lambda events, state: state.versions[_only(events, DemandPublished).version - 1],
        201,
    )


@negotiations.post(
    "/{negotiation_id}/clarifications/{clarification_id}/answer", response_model=ClarificationView, responses=COMMAND
)
async def answer_clarification(
    negotiation_id: NegotiationId,
    clarification_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    body: ClarificationAnswer,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Answer the vendor's question (coordinator)."""

    def render(events: Sequence[Event], state: NegotiationState) -> ClarificationView:
        event = _only(events, ClarificationAnswered)
        asked = state.clarifications[event.clarification_id]
        return ClarificationView(
            clarification_id=event.clarification_id,
            item_key=asked.item_key,
            question=asked.question,
            answer=event.answer,
            asked_at=asked.asked_at,
            answered_at=event.occurred_at,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: AnswerClarification(
            command_id=cid,
            negotiation_id=negotiation_id,
            actor=caller.actor(),
            clarification_id=clarification_id,
            answer=body.answer,
        ),
        render,
        200,
    )


@negotiations.post("/{negotiation_id}/agreement/propose", response_model=AgreementProposal, responses=COMMAND)
async def propose_agreement(
    negotiation_id: NegotiationId,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Put the vendor's current offers up for endorsement (coordinator)."""

    def render(events: Sequence[Event], state: NegotiationState) -> AgreementProposal:
        event = _only(events, AgreementProposed)
        return AgreementProposal(
            negotiation_id=event.negotiation_id,
            phase="endorsing",
            demand_version=event.demand_version,
            round=event.round,
            proposed_at=event.occurred_at,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: ProposeAgreement(command_id=cid, negotiation_id=negotiation_id, actor=caller.actor()),
        render,
        200,
    )


@negotiations.post("/{negotiation_id}/abandon", response_model=Abandonment, responses=COMMAND)
async def abandon(
    negotiation_id: NegotiationId,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    body: AbandonRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Abandon the negotiation (coordinator, in any phase that is not final)."""

    def render(events: Sequence[Event], state: NegotiationState) -> Abandonment:
        event = _only(events, NegotiationAbandoned)
        return Abandonment(
            negotiation_id=event.negotiation_id, phase="abandoned", reason=event.reason, abandoned_at=event.occurred_at
        )

    reason = body.reason if body is not None else None
    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: Abandon(command_id=cid, negotiation_id=negotiation_id, actor=caller.actor(), reason=reason),
        render,
        200,
    )


# -- the members' commands ------------------------------------------------------------------------


@negotiations.put("/{negotiation_id}/positions/{item_key}", response_model=PositionView, responses=COMMAND)
async def state_position(
    negotiation_id: NegotiationId,
    item_key: ItemKey,
    body: Position,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """State or replace the caller's own position on an item (member)."""

    def render(events: Sequence[Event], state: NegotiationState) -> PositionView:
        event = _only(events, PositionStated)
        return PositionView(
            member_id=event.actor_id,
            member_name=state.members[event.actor_id].name,
            item_key=event.item_key,
            priority=event.position.priority,
            value=event.position.value,
            accepted=event.position.accepted,
            rationale=event.position.rationale,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: StatePosition(
            command_id=cid, negotiation_id=negotiation_id, actor=caller.actor(), item_key=item_key, position=body
        ),
        render,
        200,
    )


@negotiations.delete(
    "/{negotiation_id}/positions/{item_key}", status_code=204, response_class=Response, responses=COMMAND
)
async def withdraw_position(
    negotiation_id: NegotiationId,
    item_key: ItemKey,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Withdraw the caller's own position on an item (member)."""
    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: WithdrawPosition(
            command_id=cid, negotiation_id=negotiation_id, actor=caller.actor(), item_key=item_key
        ),
        lambda events, state: None,
        204,
    )


@negotiations.post(
    "/{negotiation_id}/agreement/endorsements", status_code=201, response_model=EndorsementResult, responses=COMMAND
)
async def endorse(
    negotiation_id: NegotiationId,
    body: EndorsementCreate,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Accept or reject the proposed agreement (member); the answer says if this decided it."""

    def render(events: Sequence[Event], state: NegotiationState) -> EndorsementResult:
        event = _only(events, EndorsementGiven)
        kinds = {type(e) for e in events}
        outcome = "agreed" if AgreementReached in kinds else "rejected" if AgreementRejected in kinds else None
        return EndorsementResult(
            negotiation_id=event.negotiation_id,
            decision=event.decision,
            comment=event.comment,
            given_at=event.occurred_at,
            outcome=outcome,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: Endorse(
            command_id=cid,
            negotiation_id=negotiation_id,
            actor=caller.actor(),
            decision=body.decision,
            comment=body.comment,
        ),
        render,
        201,
    )


# -- the vendor's commands ------------------------------------------------------------------------


@negotiations.post("/{negotiation_id}/responses", status_code=201, response_model=VendorResponse, responses=COMMAND)
async def respond(
    negotiation_id: NegotiationId,
    body: VendorResponseCreate,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Answer the latest demand version, item by item, as the next round (vendor)."""

    def render(events: Sequence[Event], state: NegotiationState) -> VendorResponse:
        event = _only(events, VendorResponded)
        return VendorResponse(
            negotiation_id=event.negotiation_id,
            round=event.round,
            demand_version=event.demand_version,
            responded_at=event.occurred_at,
            items=event.items,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: RespondToDemand(
            command_id=cid,
            negotiation_id=negotiation_id,
            actor=caller.actor(),
            demand_version=body.demand_version,
            items=tuple(body.items),
        ),
        render,
        201,
    )


@negotiations.post(
    "/{negotiation_id}/clarifications", status_code=201, response_model=ClarificationView, responses=COMMAND
)
async def request_clarification(
    negotiation_id: NegotiationId,
    body: ClarificationCreate,
    request: Request,
    caller: CallerDep,
    hub: HubDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Ask the coordinator a question about an item (vendor)."""

    def render(events: Sequence[Event], state: NegotiationState) -> ClarificationView:
        event = _only(events, ClarificationRequested)
        return ClarificationView(
            clarification_id=event.clarification_id,
            item_key=event.item_key,
            question=event.question,
            answer=None,
            asked_at=event.occurred_at,
            answered_at=None,
        )

    return await hub.execute(
        request,
        caller,
        idempotency_key,
        lambda cid: RequestClarification(
            command_id=cid,
            negotiation_id=negotiation_id,
            actor=caller.actor(),
            item_key=body.item_key,
            question=body.question,
        ),
        render,
        201,
    )


# -- reads ----------------------------------------------------------------------------------------


@negotiations.get("/{negotiation_id}/positions", response_model=list[PositionView], responses=READ)
def list_positions(negotiation_id: NegotiationId, caller: CallerDep, hub: HubDep) -> list[PositionView]:
    """All positions (coordinator; members when positions are transparent), else the caller's own."""

    def view(state: NegotiationState, viewer: Audience) -> list[PositionView]:
        if viewer.role == "vendor":
            raise Problem(403, "a vendor never sees members' positions")
        return views.positions(state, viewer)

    return hub.read(caller, negotiation_id, view)


@negotiations.get("/{negotiation_id}/demand", response_model=JointDemand | DemandVersion, responses=READ)
def get_demand(negotiation_id: NegotiationId, caller: CallerDep, hub: HubDep) -> JointDemand | DemandVersion:
    """The live joint demand (coordinator, members); for the vendor the latest published version."""

    def view(state: NegotiationState, viewer: Audience) -> JointDemand | DemandVersion:
        if viewer.role != "vendor":
            return views.live_demand(state)
        if state.latest_version is None:
            raise Problem(404, "no demand version has been published yet", title="Not found")
        return views.version_view(state, state.latest_version, viewer)

    return hub.read(caller, negotiation_id, view)


@negotiations.get("/{negotiation_id}/demand/versions/{version}", response_model=DemandVersion, responses=READ)
def get_demand_version(
    negotiation_id: NegotiationId, version: Annotated[int, Path(ge=1, le=2**31 - 1)], caller: CallerDep, hub: HubDep
) -> DemandVersion:
    """A published demand version."""

    def view(state: NegotiationState, viewer: Audience) -> DemandVersion:
        if version > len(state.versions):
            raise Problem(404, f"demand version {version} has not been published", title="Not found")
        return views.version_view(state, state.versions[version - 1], viewer)

    return hub.read(caller, negotiation_id, view)


@negotiations.get("/{negotiation_id}/state", response_model=SharedState, responses=READ)
def get_state(negotiation_id: NegotiationId, caller: CallerDep, hub: HubDep) -> SharedState:
    """The shared negotiation state, as the caller may see it."""
    return hub.read(caller, negotiation_id, views.shared_state)


@negotiations.get("/{negotiation_id}/events", response_model=ChangeFeed, responses=READ)
def change_feed(
    negotiation_id: NegotiationId,
    caller: CallerDep,
    hub: HubDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="Events after this sequence.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many events are read.")] = 100,
) -> ChangeFeed:
    """The change feed: the negotiation's events after ``after``, as the caller may see them."""

    def view(state: NegotiationState, viewer: Audience) -> ChangeFeed:
        with Session(hub.engine) as session:
            events = load_events(session, negotiation_id, after=after, until=min(state.sequence, after + limit))
        entries = []
        for event in events:
            data = views.event_view(state, event, viewer)
            if data is not None:
                entries.append(
                    FeedEntry(sequence=event.sequence, type=event.type, occurred_at=event.occurred_at, data=data)
                )
        next_after = events[-1].sequence if events else after
        return ChangeFeed(
            negotiation_id=negotiation_id,
            events=tuple(entries),
            next_after=next_after,
            more=next_after < state.sequence,
        )

    return hub.read(caller, negotiation_id, view)


@negotiations.get(
    "/{negotiation_id}/export/ocds",
    response_model=dict[str, Any],
    responses={**READ, **problems(409)},
    summary="The agreement as an OCDS release",
)
def export_ocds(negotiation_id: NegotiationId, caller: CallerDep, hub: HubDep) -> dict[str, Any]:
    """The agreed negotiation as an Open Contracting (OCDS 1.1.5) release (coordinator, members).

    409 until the negotiation is agreed. The vendor may not export it: it names the members."""

    def view(state: NegotiationState, viewer: Audience) -> dict[str, Any]:
        if viewer.role == "vendor":
            raise Problem(403, "the OCDS export names the members: it is for the coordinator and the members")
        try:
            return ocds.release(state, hub.settings.ocid_prefix)
        except ocds.NoAgreement as exc:
            raise Problem(409, str(exc), title="Conflict") from None

    return hub.read(caller, negotiation_id, view)


@negotiations.get(
    "/{negotiation_id}/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "Server-Sent Events: one message per event the caller may see, `id` = its sequence.",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **READ,
    },
)
async def live_stream(
    negotiation_id: NegotiationId,
    caller: CallerDep,
    hub: HubDep,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", pattern=r"^\d{1,10}$", description="Resume after this sequence.")
    ] = None,
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Start after this sequence.")] = None,
) -> EventSourceResponse:
    """The change feed as Server-Sent Events, live: each message's ``id`` is the event's sequence,
    ``event`` its type, ``data`` the message with its notices. Reconnecting with ``Last-Event-ID``
    resumes with nothing lost and nothing repeated; comment lines keep idle connections open."""
    viewer = await to_thread.run_sync(hub.read, caller, negotiation_id, lambda state, viewer: viewer)
    cursor = int(last_event_id) if last_event_id is not None else (after or 0)
    return EventSourceResponse(
        live_messages(hub, negotiation_id, viewer, cursor), ping=max(1, int(hub.settings.sse_heartbeat_s))
    )


async def live_messages(
    hub: Hub,
    negotiation_id: str,
    viewer: Audience,
    cursor: int,
    announce_hidden: bool = False,
    alive: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[dict[str, str]]:
    """The viewer's messages after ``cursor``, then each new one as the read model receives it.

    The stream keeps its own copy of the state, rebuilt from the event log, so each message is
    cut and explained with the state right after its event, the same on every connection. With
    ``announce_hidden`` an event the viewer may not see still yields a bare ``changed`` message
    (its sequence only): the dashboard of a coordinator or member redraws the joint demand, which
    another member's position changes. ``alive`` is asked between messages and at every heartbeat;
    the stream ends when it says no.
    """
    members = [viewer.organisation_id] if viewer.role == "member" else []

    def events_after(sequence: int) -> list[Event]:
        with Session(hub.engine) as session:
            return load_events(session, negotiation_id, after=sequence)

    state: NegotiationState | None = None
    pending = await to_thread.run_sync(events_after, 0)
    while True:
        for event in pending:
            before = figures_before(state, members)
            state = evolve(state, event)
            body = message(state, before, event, viewer) if event.sequence > cursor else None
            if body is not None:
                yield {"id": str(event.sequence), "event": event.type, "data": json.dumps(body)}
            elif announce_hidden and event.sequence > cursor:
                yield {"id": str(event.sequence), "event": "changed", "data": json.dumps({"sequence": event.sequence})}
        seen = max(cursor, state.sequence if state is not None else 0)
        reached = await hub.watch.reached(negotiation_id, seen + 1, timeout=hub.settings.sse_heartbeat_s)
        if alive is not None and not await alive():
            return
        after = state.sequence if state is not None else 0
        # The watch has usually just read the new events into the API's state cache: take them
        # from there; otherwise (or with a heartbeat's timeout) read them.
        done, recent = (
            (False, None)
            if reached is None
            else hub.states.peek(negotiation_id, after + 1, reached, lambda _state, events: events)
        )
        pending = recent if done and recent is not None else await to_thread.run_sync(events_after, after)


# -- helpers --------------------------------------------------------------------------------------


def _only(events: Sequence[Event], event_type: type[Any]) -> Any:
    for event in events:
        if isinstance(event, event_type):
            return event
    raise LookupError(f"the command caused no {event_type.__name__}")
