"""Drafts and comments inside a member organisation (SPEC section 10): how its people align before
the organisation states a position.

Any person of a member organisation drafts the organisation's position on an item and comments on
the draft; an approver or owner **adopts** it, which states the position through the usual command
(``commands.state_position`` → the hub → the decider), so that the event records the adopting
person. A draft is checked with the core's own rule for positions (``decider.position_fits``: the
item, the phase, the item's kind and options), so adopting fails only for what changed since.

Drafts are the hub's internal working state, not negotiation facts: they live in tables of their
own (``drafts``, ``draft_comments``), are no events, and are seen by nobody outside the
organisation. Whoever is not a member of the negotiation gets 404 on every drafts route: an
outsider the very answer of a negotiation it is not party to, the coordinator and the vendor one
that is the same whatever drafts the members have. A member sees and addresses only its own
drafts, so another member's draft is a draft that does not exist. Writing needs a person (every
draft and comment names who wrote it); the organisation's integration key may read.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from anyio import to_thread
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from schemas.documents import PositionView
from schemas.negotiation import Position
from services.application import commands
from services.application.actions import Answer, Once
from services.application.documents import CommentView, DraftView, PersonNamed
from services.application.errors import Refusal, not_found, refused
from services.application.hub import Hub
from services.application.security import Caller, PersonRef
from services.readmodel.tables import Draft, DraftComment, utc
from streams.core import decider
from streams.core.decider import Rejection
from streams.core.state import NegotiationState
from streams.core.views import Audience

T = TypeVar("T")

MAX_COMMENTS_PER_DRAFT = 200
MAX_COMMENTS_PER_NEGOTIATION = 2000
"""An organisation's comments in one negotiation, over all its drafts: bounds the drafts document."""


@dataclass
class Drafts:
    hub: Hub

    # -- reads ------------------------------------------------------------------------------------
    def of_negotiation(self, caller: Caller, negotiation_id: str) -> list[DraftView]:
        """The caller's organisation's drafts in the negotiation, in the order of its items, each
        with its comments (oldest first): to its people and its integration key."""
        order = self._as_member(caller, negotiation_id, lambda state: list(state.items))
        with Session(self.hub.engine) as session:
            drafts = session.exec(
                select(Draft).where(
                    Draft.organisation_id == caller.organisation_id, Draft.negotiation_id == negotiation_id
                )
            ).all()
            comments = session.exec(
                select(DraftComment)
                .where(
                    DraftComment.organisation_id == caller.organisation_id,
                    DraftComment.negotiation_id == negotiation_id,
                )
                .order_by(col(DraftComment.created_at), col(DraftComment.id))
            ).all()
        threads: dict[str, list[CommentView]] = {}
        for comment in comments:
            threads.setdefault(comment.item_key, []).append(_comment_view(comment))
        rank = {key: index for index, key in enumerate(order)}
        return [
            _draft_view(draft, threads.get(draft.item_key, []))
            for draft in sorted(drafts, key=lambda d: rank.get(d.item_key, len(rank)))
        ]

    # -- writes -----------------------------------------------------------------------------------
    def save(self, caller: Caller, negotiation_id: str, item_key: str, position: Position) -> DraftView:
        """Draft (or redraft) the organisation's position on the item: any of its people may. The
        draft is checked as the core checks a stated position, except for who states it."""
        self._as_member(
            caller, negotiation_id, lambda state: decider.position_fits(state, item_key, position), person=True
        )
        person = _person(caller)
        text = position.model_dump_json()
        now = datetime.now(UTC)
        for attempt in range(2):  # two first drafts at once: the second finds the first and updates it
            try:
                with Session(self.hub.engine, expire_on_commit=False) as session:
                    key = (caller.organisation_id, negotiation_id, item_key)
                    draft = session.get(Draft, key, with_for_update=True)
                    if draft is None:
                        draft = Draft(
                            organisation_id=caller.organisation_id,
                            negotiation_id=negotiation_id,
                            item_key=item_key,
                            position=text,
                            updated_by_id=person.id,
                            updated_by_name=person.name,
                            updated_at=now,
                        )
                    elif draft.position != text:
                        # No longer what was adopted: it waits for an adoption of its own.
                        draft.position, draft.adopted_at = text, None
                        draft.adopted_by_id = draft.adopted_by_name = None
                    draft.updated_by_id, draft.updated_by_name, draft.updated_at = person.id, person.name, now
                    session.add(draft)
                    session.commit()
                    thread = self._thread(session, caller.organisation_id, negotiation_id, item_key)
                return _draft_view(draft, thread)
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def comment(self, caller: Caller, negotiation_id: str, item_key: str, text: str) -> CommentView:
        """A comment on the organisation's draft of the item, by any of its people (404 when there
        is no draft yet: a thread belongs to a draft)."""
        self._as_member(caller, negotiation_id, lambda state: None, person=True)
        person = _person(caller)
        with Session(self.hub.engine, expire_on_commit=False) as session:
            if session.get(Draft, (caller.organisation_id, negotiation_id, item_key)) is None:
                raise not_found(f"{caller.name} has no draft on {item_key!r} in negotiation {negotiation_id}")
            counted = (
                select(func.count())
                .select_from(DraftComment)
                .where(
                    DraftComment.organisation_id == caller.organisation_id,
                    DraftComment.negotiation_id == negotiation_id,
                )
            )
            on_draft = session.exec(counted.where(DraftComment.item_key == item_key)).one()
            in_negotiation = session.exec(counted).one()
            if on_draft >= MAX_COMMENTS_PER_DRAFT:
                raise Refusal(409, f"a draft takes at most {MAX_COMMENTS_PER_DRAFT} comments", title="Limit reached")
            if in_negotiation >= MAX_COMMENTS_PER_NEGOTIATION:
                raise Refusal(
                    409,
                    f"an organisation makes at most {MAX_COMMENTS_PER_NEGOTIATION} comments in one negotiation",
                    title="Limit reached",
                )
            comment = DraftComment(
                id=f"comment_{secrets.token_hex(8)}",
                organisation_id=caller.organisation_id,
                negotiation_id=negotiation_id,
                item_key=item_key,
                person_id=person.id,
                person_name=person.name,
                text=text,
                created_at=datetime.now(UTC),
            )
            session.add(comment)
            session.commit()
        return _comment_view(comment)

    async def adopt(
        self,
        caller: Caller,
        negotiation_id: str,
        item_key: str,
        once: Once | None = None,
        instance: str = "",
        version: str | None = None,
    ) -> Answer:
        """State the draft as the organisation's position (an approver or owner; a contributor is
        refused 403 by the core's rule), through the usual command: the answer is the usual
        position answer, and the event records the adopting person.

        With ``version`` (the draft's ``version`` the approver read), the draft is stated only if it
        still is that one (412 otherwise): else a colleague's redraft between reading and clicking
        would be stated in the approver's name. The dashboard always sends it."""

        def check(state: NegotiationState) -> None:
            decider.may_state_positions(state, caller.actor())

        await to_thread.run_sync(lambda: self._as_member(caller, negotiation_id, check, person=True))
        draft = await to_thread.run_sync(self._draft, caller, negotiation_id, item_key)
        if version is not None and version != draft_version(draft.position):
            raise Refusal(
                412,
                f"the draft on {item_key!r} changed since you read it: read it again, then adopt what you read",
                title="Precondition failed",
            )
        position = Position.model_validate_json(draft.position)
        await to_thread.run_sync(
            lambda: self._as_member(caller, negotiation_id, lambda s: decider.position_fits(s, item_key, position))
        )
        answer = await self.hub.execute(
            caller, commands.state_position(caller, negotiation_id, item_key, position), once, instance
        )
        if not answer.refused:
            stated = PositionView.model_validate_json(answer.body)
            adopted = Position(
                priority=stated.priority, value=stated.value, accepted=stated.accepted, rationale=stated.rationale
            )
            await to_thread.run_sync(
                self._adopted, caller, negotiation_id, item_key, adopted.model_dump_json(), answer.replayed
            )
        return answer

    # -- helpers ----------------------------------------------------------------------------------
    def _as_member(
        self, caller: Caller, negotiation_id: str, check: Callable[[NegotiationState], T], person: bool = False
    ) -> T:
        """``check(state)`` for a caller of a member organisation of the negotiation, in the order
        of every check: not a member (404), not a person when ``person`` is asked (403), then the
        check's own refusals (the core's rejections, as refusals)."""

        def view(state: NegotiationState, viewer: Audience) -> T:
            if viewer.role != "member":
                # The same answer whatever drafts the members have: nothing of theirs shows.
                raise not_found(
                    f"negotiation {negotiation_id} has no drafts for you: drafts are a member organisation's own"
                )
            if person and caller.person is None:
                raise Refusal(
                    403,
                    "drafts, comments and adoptions are a person's: call with a personal token, not an integration key",
                )
            try:
                return check(state)
            except Rejection as rejection:
                raise refused(rejection) from None

        return self.hub.read(caller, negotiation_id, view)

    def _draft(self, caller: Caller, negotiation_id: str, item_key: str) -> Draft:
        with Session(self.hub.engine) as session:
            draft = session.get(Draft, (caller.organisation_id, negotiation_id, item_key))
        if draft is None:
            raise not_found(f"{caller.name} has no draft on {item_key!r} in negotiation {negotiation_id}")
        return draft

    def _adopted(self, caller: Caller, negotiation_id: str, item_key: str, stated: str, replayed: bool) -> None:
        """Mark the draft adopted, if it is still what was stated: it may have changed meanwhile. A
        replayed answer (an ``Idempotency-Key`` used again) stated nothing now, so it marks nothing:
        the first adoption marked what it stated then."""
        person = _person(caller)
        if replayed:
            return
        with Session(self.hub.engine) as session:
            draft = session.get(Draft, (caller.organisation_id, negotiation_id, item_key), with_for_update=True)
            if draft is None or draft.position != stated:
                return
            draft.adopted_at = datetime.now(UTC)
            draft.adopted_by_id, draft.adopted_by_name = person.id, person.name
            session.add(draft)
            session.commit()

    @staticmethod
    def _thread(session: Session, organisation_id: str, negotiation_id: str, item_key: str) -> list[CommentView]:
        rows = session.exec(
            select(DraftComment)
            .where(
                DraftComment.organisation_id == organisation_id,
                DraftComment.negotiation_id == negotiation_id,
                DraftComment.item_key == item_key,
            )
            .order_by(col(DraftComment.created_at), col(DraftComment.id))
        ).all()
        return [_comment_view(c) for c in rows]


def _person(caller: Caller) -> PersonRef:
    assert caller.person is not None  # _as_member(…, person=True) refused the integration key
    return caller.person


def _comment_view(comment: DraftComment) -> CommentView:
    return CommentView(
        id=comment.id,
        person=PersonNamed(id=comment.person_id, name=comment.person_name),
        text=comment.text,
        created_at=utc(comment.created_at) or comment.created_at,
    )


def draft_version(position_json: str) -> str:
    """The version of a draft's content: the first 16 hex digits of the SHA-256 of its JSON."""
    return hashlib.sha256(position_json.encode()).hexdigest()[:16]


def _draft_view(draft: Draft, thread: list[CommentView]) -> DraftView:
    adopted_by = None
    if draft.adopted_by_id is not None and draft.adopted_by_name is not None:
        adopted_by = PersonNamed(id=draft.adopted_by_id, name=draft.adopted_by_name)
    return DraftView(
        item_key=draft.item_key,
        position=Position.model_validate_json(draft.position),
        version=draft_version(draft.position),
        updated_by=PersonNamed(id=draft.updated_by_id, name=draft.updated_by_name),
        updated_at=utc(draft.updated_at) or draft.updated_at,
        adopted_at=utc(draft.adopted_at),
        adopted_by=adopted_by,
        comments=tuple(thread),
    )
