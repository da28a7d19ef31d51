"""The application service: the one thing both doors — the HTTP API and the dashboard — call.

A door builds a command (``services.application.commands``) or names a read, and hands it here
with the caller and, for a command, an idempotency key with its request's fingerprint. What the
hub alone knows is added here: organisations, the catalogue, the read model's tables. Whether the
caller may do it is the pure core's to say: the decider refuses commands, the views and reads cut
documents. A refusal is a :class:`~services.application.errors.Refusal`; the API answers it as
problem+json, the dashboard as a notice on the page.

Kafka and the decider's tables are the message bus: nothing here dispatches in-process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from anyio import to_thread
from sqlmodel import Session, and_, col, func, or_, select

from schemas.documents import (
    CommitmentsDocument,
    DemandExplanation,
    DemandVersion,
    JointDemand,
    NegotiationSummary,
    PositionView,
    SharedState,
)
from schemas.insight import Suggestions, WhatIf, WhatIfRequest
from schemas.negotiation import Policy, RequirementItem
from services.application import commands, paging
from services.application.actions import Action, Answer, Once
from services.application.documents import (
    CatalogueRef,
    ChangeFeed,
    FeedEntry,
    NegotiationListing,
    OrganisationCreated,
    OrganisationPublic,
    PersonCreate,
)
from services.application.drafts import Drafts
from services.application.errors import Refusal, not_found, refused
from services.application.hub import Hub
from services.application.people import People
from services.application.security import REVOKED, Caller, as_party, forget_key, new_key
from services.catalogue import load_catalogue
from services.readmodel.store import load_events, load_vendor_events
from services.readmodel.tables import MemberRow, NegotiationRow, Organisation, Subscription, utc
from services.subscriptions.live import LiveSlots, live_messages
from streams.core import decider, insight, reads, views
from streams.core.decider import Rejection
from streams.core.state import NegotiationState
from streams.core.timeline import describe
from streams.core.views import Audience

T = TypeVar("T")


@dataclass
class Application:
    hub: Hub
    live_slots: LiveSlots = field(init=False)

    people: People = field(init=False)
    drafts: Drafts = field(init=False)

    def __post_init__(self) -> None:
        self.live_slots = LiveSlots(self.hub.settings.max_live_streams_per_caller)
        self.people = People(self.hub.engine, sso=self.hub.settings.oidc_enabled)
        self.drafts = Drafts(self.hub)

    # -- commands ----------------------------------------------------------------------------
    async def execute(self, caller: Caller, action: Action, once: Once | None = None, instance: str = "") -> Answer:
        """Send the action's command for the caller; its answer, accepted or refused."""
        return await self.hub.execute(caller, action, once, instance)

    async def opening(
        self,
        caller: Caller,
        title: str,
        vendor_id: str,
        items: Sequence[CatalogueRef | RequirementItem],
        policy: Policy | None,
    ) -> Action:
        """The command that opens a negotiation with the vendor ``vendor_id``, items from the
        catalogue by key or inline."""
        as_party(caller)
        # The core refuses first (only a coordinator opens), before the hub looks anything up.
        _core(decider.may_open, caller.actor())
        quota = self.hub.settings.max_open_negotiations_per_coordinator
        if await to_thread.run_sync(self._open_negotiations, caller.organisation_id) >= quota:
            raise Refusal(
                409,
                f"you have {quota} negotiations open, the hub's limit: agree on or abandon one before opening another",
                title="Limit reached",
            )
        vendor = await to_thread.run_sync(self._organisation, vendor_id)
        if vendor is None or vendor.role != "vendor":
            raise Refusal(422, "vendor_id: there is no vendor organisation with this id", field="vendor_id")
        return commands.open_negotiation(caller, title, vendor, resolve_items(items), policy)

    async def invitation(self, caller: Caller, negotiation_id: str, organisation_id: str, weight: int) -> Action:
        """The command that invites the member organisation ``organisation_id``."""
        as_party(caller)
        member = await to_thread.run_sync(self._organisation, organisation_id)
        if member is None or member.role != "member":
            # Refused by the core first, so only whom may invite learns that there is no such member.
            await to_thread.run_sync(
                self.read, caller, negotiation_id, lambda state, _: _core(decider.may_invite, state, caller.actor())
            )
            raise Refusal(422, "organisation_id: there is no member organisation with this id", field="organisation_id")
        return commands.invite_member(caller, negotiation_id, member, weight)

    # -- reads -------------------------------------------------------------------------------
    def read(self, caller: Caller, negotiation_id: str, view: Callable[[NegotiationState, Audience], T]) -> T:
        """``view`` of the negotiation for the caller; 404 when the caller is not a party."""
        return self.hub.read(caller, negotiation_id, view)

    def viewer(self, caller: Caller, negotiation_id: str) -> Audience:
        """Who the caller is in the negotiation; 404 when not a party."""
        return self.read(caller, negotiation_id, lambda state, viewer: viewer)

    def live(
        self,
        viewer: Audience,
        negotiation_id: str,
        cursor: int,
        board: bool = False,
        alive: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[AsyncIterator[dict[str, str]], Callable[[], None]]:
        """The viewer's live messages after ``cursor`` (``services.subscriptions.live``), and how
        to give back the stream's slot when the connection ends (429 when the viewer's
        organisation holds its limit of streams open). A ``board`` (the dashboard's) also hears
        of changes the viewer may not see, to redraw the joint demand; not a vendor's: that would
        tell it when members act."""
        give_back = self.live_slots.take(viewer.organisation_id)
        announce = board and viewer.role != "vendor"
        messages = live_messages(self.hub, negotiation_id, viewer, cursor, announce_hidden=announce, alive=alive)

        async def stream() -> AsyncIterator[dict[str, str]]:
            try:
                async for item in messages:
                    yield item
            finally:
                give_back()

        return stream(), give_back

    def summary(self, caller: Caller, negotiation_id: str) -> NegotiationSummary:
        return self.read(caller, negotiation_id, views.summary)

    def shared_state(self, caller: Caller, negotiation_id: str) -> SharedState:
        return self.read(caller, negotiation_id, views.shared_state)

    def commitments(self, caller: Caller, negotiation_id: str) -> CommitmentsDocument:
        return self.read(caller, negotiation_id, reads.commitments)

    def positions(self, caller: Caller, negotiation_id: str) -> list[PositionView]:
        return self.read(caller, negotiation_id, reads.positions)

    def demand(self, caller: Caller, negotiation_id: str) -> JointDemand | DemandVersion:
        return self.read(caller, negotiation_id, reads.demand)

    def explain(self, caller: Caller, negotiation_id: str) -> DemandExplanation:
        """Why the live demand is what it is (SPEC 4.1), as the caller may see it."""
        return self.read(caller, negotiation_id, reads.explain)

    def what_if(self, caller: Caller, negotiation_id: str, request: WhatIfRequest) -> WhatIf:
        """What the joint demand, cohesion and the members' standing would be under ``request``
        (``streams.core.insight``): the coordinator's and the members' (counts), never the
        vendor's. A read: nothing is written."""
        return self.read(caller, negotiation_id, lambda state, viewer: insight.what_if(state, viewer, request))

    def suggestions(self, caller: Caller, negotiation_id: str) -> Suggestions:
        """The coordinator's suggestions that raise cohesion (``streams.core.insight``)."""
        return self.read(caller, negotiation_id, insight.suggestions)

    def demand_version(self, caller: Caller, negotiation_id: str, version: int) -> DemandVersion:
        return self.read(caller, negotiation_id, lambda state, viewer: reads.demand_version(state, viewer, version))

    def ocds_release(self, caller: Caller, negotiation_id: str) -> dict[str, Any]:
        prefix = self.hub.settings.ocid_prefix
        return self.read(caller, negotiation_id, lambda state, viewer: reads.ocds_release(state, viewer, prefix))

    def board(self, caller: Caller, negotiation_id: str, timeline: int = 25) -> dict[str, Any]:
        """The dashboard's board: every document the viewer may see, its latest events, and for a
        member its drafts."""
        limits = self.hub.settings.limits()
        data = self.read(caller, negotiation_id, lambda state, viewer: reads.board(state, viewer, limits))
        data["may_act"] = decider.acts_for_organisation(caller.actor())  # a contributor's board has no command forms
        # What the board draws forms and buttons for: the core's allowed actions, none for a contributor.
        data["allowed"] = data["allowed"] if data["may_act"] else frozenset()
        data["commitment_actions"] = data["commitment_actions"] if data["may_act"] else {}
        if data["role"] == "coordinator":
            data["suggestions"] = self.suggestions(caller, negotiation_id)
        after = max(0, data["state"].sequence - timeline)
        events = self.change_feed(caller, negotiation_id, after=after, limit=timeline).events
        # Each event in words for this viewer (streams.core.timeline), told from the data the viewer may see.
        data["timeline"] = self.read(
            caller,
            negotiation_id,
            lambda state, viewer: [(e, describe(state, e.type, e.data, viewer)) for e in events],
        )
        # A member's people also see its drafts, each with its comment thread (SPEC section 10).
        member = data["role"] == "member"
        data["drafts"] = {d.item_key: d for d in self.drafts.of_negotiation(caller, negotiation_id)} if member else {}
        return data

    def report(self, caller: Caller, negotiation_id: str) -> dict[str, Any]:
        """The coordinator's one-page report (``reads.report``): 403 for the other parties."""
        return self.read(caller, negotiation_id, reads.report)

    def change_feed(self, caller: Caller, negotiation_id: str, after: int = 0, limit: int = 100) -> ChangeFeed:
        """The negotiation's events after ``after``, as the caller may see them. The vendor's feed
        is numbered with its own gapless counter (SPEC section 1): ``after`` counts in it too."""

        def view(state: NegotiationState, viewer: Audience) -> ChangeFeed:
            vendor = viewer.role == "vendor"
            end = views.sequence_for(state, viewer)
            with Session(self.hub.engine) as session:
                if vendor:
                    numbered = load_vendor_events(session, negotiation_id, after, min(end, after + limit))
                else:
                    numbered = [
                        (e.sequence, e)
                        for e in load_events(session, negotiation_id, after=after, until=min(end, after + limit))
                    ]
            entries = []
            for number, event in numbered:
                data = views.event_view(state, event, viewer)
                if data is not None:
                    previous_hash, hash_ = views.chain_hashes(state, event, viewer, data)
                    entries.append(
                        FeedEntry(
                            sequence=number,
                            type=event.type,
                            occurred_at=event.occurred_at,
                            data=data,
                            event_id=event.event_id if hash_ is not None else None,
                            previous_hash=previous_hash,
                            hash=hash_,
                        )
                    )
            next_after = numbered[-1][0] if numbered else after
            return ChangeFeed(
                negotiation_id=negotiation_id, events=tuple(entries), next_after=next_after, more=next_after < end
            )

        return self.read(caller, negotiation_id, view)

    def negotiations(
        self, caller: Caller, limit: int = paging.DEFAULT_LIMIT, cursor: str | None = None
    ) -> paging.Page[NegotiationListing]:
        """The negotiations the caller is party to, newest first, a page of at most ``limit``."""
        me = caller.organisation_id
        with Session(self.hub.engine) as session:
            member_of = select(MemberRow.negotiation_id).where(MemberRow.organisation_id == me)
            query = select(NegotiationRow).where(
                or_(
                    NegotiationRow.coordinator_id == me,
                    NegotiationRow.vendor_id == me,
                    col(NegotiationRow.id).in_(member_of),
                )
            )
            if cursor is not None:
                opened, last_id = paging.decode_cursor(cursor, str, str)
                try:
                    opened_at = datetime.fromisoformat(opened)
                except ValueError:
                    raise paging.bad_cursor() from None
                query = query.where(
                    or_(
                        col(NegotiationRow.opened_at) < opened_at,
                        and_(col(NegotiationRow.opened_at) == opened_at, col(NegotiationRow.id) < last_id),
                    )
                )
            rows = session.exec(
                query.order_by(col(NegotiationRow.opened_at).desc(), col(NegotiationRow.id).desc()).limit(limit + 1)
            ).all()
        kept, after = paging.page_of(list(rows), limit, lambda row: (row.opened_at.isoformat(), row.id))
        listings = [
            NegotiationListing(
                id=row.id,
                title=row.title,
                phase=row.phase,
                sequence=row.vendor_sequence if row.vendor_id == me else row.sequence,
                your_role="coordinator" if row.coordinator_id == me else "vendor" if row.vendor_id == me else "member",
                demand_version=row.demand_version,
                round=row.round,
                opened_at=utc(row.opened_at),
                # the vendor learns no time of member activity
                updated_at=utc(row.vendor_updated_at or row.opened_at) if row.vendor_id == me else utc(row.updated_at),
            )
            for row in kept
        ]
        return paging.Page(listings, after)

    def _open_negotiations(self, coordinator_id: str) -> int:
        with Session(self.hub.engine) as session:
            return session.exec(
                select(func.count())
                .select_from(NegotiationRow)
                .where(
                    NegotiationRow.coordinator_id == coordinator_id,
                    col(NegotiationRow.phase).not_in(("agreed", "implementing", "fulfilled", "abandoned")),
                )
            ).one()

    # -- organisations -----------------------------------------------------------------------
    def create_organisation(self, name: str, role: str, owner: PersonCreate | None = None) -> OrganisationCreated:
        """A new organisation, its integration key and its first owner; the key (and, without
        single sign-on, the owner's first personal token) is answered once, only hashes are kept."""
        key = new_key()
        organisation = Organisation(
            id=f"org_{key.key_id}",
            name=name,
            role=role,
            key_id=key.key_id,
            key_hash=key.hash,
            created_at=datetime.now(UTC),
        )
        with Session(self.hub.engine, expire_on_commit=False) as session:
            session.add(organisation)
            first_owner = None
            if owner is not None:
                session.flush()
                first_owner = self.people.add(session, organisation.id, owner, "owner")
            session.commit()
        return OrganisationCreated(
            id=organisation.id,
            name=name,
            role=role,
            created_at=organisation.created_at,
            api_key=key.api_key,
            owner=first_owner,
        )

    def who_am_i(self, caller: Caller) -> OrganisationPublic:
        created = None
        if caller.role != "admin":
            organisation = self._organisation(caller.organisation_id)
            created = utc(organisation.created_at) if organisation is not None else None
        person = self.people.me(caller) if caller.person is not None else None
        return OrganisationPublic(
            id=caller.organisation_id, name=caller.name, role=caller.role, created_at=created, person=person
        )

    def rotate_key(self, caller: Caller) -> OrganisationCreated:
        """A new integration key for the calling organisation; its current key stops working. The
        key itself or an owner rotates it (the admin has none to rotate)."""
        if caller.role == "admin":
            raise Refusal(403, "the admin token is a setting (KOOPKRACHT_ADMIN_TOKEN), not a key to rotate")
        self.people.require_integrations(caller, "rotate the integration key")
        return self.issue_key(caller.organisation_id)

    def issue_key(self, organisation_id: str) -> OrganisationCreated:
        """A new integration key for the organisation, in place of its current one, revoked or not.
        The key is answered once, only its hash is kept."""
        key = new_key()
        organisation, old_key_id = self._replace_key(organisation_id, key.key_id, key.hash)
        forget_key(self.hub.engine, f"kk:{old_key_id}")
        return OrganisationCreated(**_public(organisation).model_dump(), api_key=key.api_key)

    def revoke_key(self, organisation_id: str) -> OrganisationPublic:
        """The organisation's integration key stops working and its webhook subscriptions are
        disabled; ``issue_key`` gives it a new one."""
        organisation, old_key_id = self._replace_key(organisation_id, None, REVOKED)
        forget_key(self.hub.engine, f"kk:{old_key_id}")
        return _public(organisation)

    def _replace_key(self, organisation_id: str, key_id: str | None, key_hash: str) -> tuple[Organisation, str]:
        """Set the organisation's key hash (and key id, unless None), in one transaction; the
        organisation and its former key id. People's sessions and tokens are theirs, untouched."""
        with Session(self.hub.engine, expire_on_commit=False) as session:
            organisation = session.get(Organisation, organisation_id, with_for_update=True)
            if organisation is None:
                raise not_found(f"there is no organisation {organisation_id}")
            old_key_id = organisation.key_id
            organisation.key_id = key_id or old_key_id
            organisation.key_hash = key_hash
            session.add(organisation)
            if key_hash == REVOKED:
                # A subscription made with a stolen key would go on receiving the organisation's
                # events: a revoked organisation's webhooks stop too, until its new key enables them.
                now = datetime.now(UTC)
                for subscription in session.exec(
                    select(Subscription).where(
                        Subscription.organisation_id == organisation_id, Subscription.status == "active"
                    )
                ):
                    subscription.status, subscription.disabled_at = "disabled", now
                    subscription.disabled_reason = "the organisation's key was revoked; enable it with the new key"
                    session.add(subscription)
            session.commit()
        return organisation, old_key_id

    def _organisation(self, organisation_id: str) -> Organisation | None:
        with Session(self.hub.engine) as session:
            return session.get(Organisation, organisation_id)


def _public(organisation: Organisation) -> OrganisationPublic:
    return OrganisationPublic(
        id=organisation.id, name=organisation.name, role=organisation.role, created_at=utc(organisation.created_at)
    )


def resolve_items(items: Sequence[CatalogueRef | RequirementItem]) -> tuple[RequirementItem, ...]:
    """Catalogue keys replaced by the catalogue's items; inline items as they are."""
    catalogue = load_catalogue()
    resolved = []
    for index, item in enumerate(items):
        if isinstance(item, CatalogueRef):
            if item.key not in catalogue:
                raise Refusal(
                    422,
                    f"items.{index}.key: {item.key!r} is not in the catalogue; define the item inline instead",
                    title="Invalid input",
                    field=f"items.{index}.key",
                )
            item = catalogue[item.key]
        resolved.append(item)
    return tuple(resolved)


def _core(rule: Callable[..., None], *args: Any) -> None:
    """Ask a rule of the core; its rejection becomes a refusal."""
    try:
        rule(*args)
    except Rejection as rejection:
        raise refused(rejection) from None
