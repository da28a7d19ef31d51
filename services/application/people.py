"""People inside organisations (SPEC section 10): who they are, their role, their personal tokens,
and how single sign-on finds them.

An organisation's **owner** invites and removes people and manages its integration key; an
**approver** acts for the organisation; a **contributor** drafts and comments only. Which commands
a role may send is the pure core's rule (``decider.acts_for_organisation``); who may manage
people is this module's, since people are the hub's configuration, not negotiation facts.

A person is found at sign-in by the identity provider's issuer and subject; an invitation by
e-mail address is bound to the first verified identity that signs in with that address. One
identity is one person of one organisation. Removing a person revokes their tokens and ends their
dashboard sessions at once in this API process, and within ``KOOPKRACHT_KEY_CACHE_TTL_S`` in
every other; the log keeps naming them by id, as it should.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, update
from sqlmodel import Session, col, func, select

from schemas.negotiation import PersonRole
from services.application.documents import (
    PersonCreate,
    PersonCreated,
    PersonPublic,
    TokenCreated,
    TokenPublic,
)
from services.application.errors import Refusal, not_found
from services.application.security import Caller, PersonRef, forget_key, new_key
from services.readmodel.tables import DashboardSession, Organisation, Person, PersonalToken, Subscription, utc

MAX_PEOPLE_PER_ORGANISATION = 1000
MAX_TOKENS_PER_PERSON = 20


def _public(person: Person) -> PersonPublic:
    return PersonPublic(
        id=person.id,
        organisation_id=person.organisation_id,
        name=person.name,
        email=person.email,
        role=person.role,
        status=person.status,
        signed_in_with_sso=person.subject is not None,
        created_at=utc(person.created_at) or person.created_at,
    )


def _token_public(token: PersonalToken) -> TokenPublic:
    return TokenPublic(
        id=token.key_id,
        label=token.label,
        created_at=utc(token.created_at) or token.created_at,
        last_used_at=utc(token.last_used_at),
        revoked_at=utc(token.revoked_at),
    )


def caller_of(person: Person, organisation_name: str, organisation_role: str) -> Caller:
    return Caller(
        person.organisation_id,
        organisation_name,
        organisation_role,  # type: ignore[arg-type]
        PersonRef(person.id, person.name, person.role),  # type: ignore[arg-type]
    )


@dataclass
class People:
    engine: Engine
    sso: bool
    """Whether single sign-on is configured: then an invitation carries no personal token."""

    # -- who may manage ---------------------------------------------------------------------------
    @staticmethod
    def require_owner(caller: Caller, what: str) -> None:
        """Only an owner of the organisation manages its people and integration key (403)."""
        if caller.role == "admin":
            raise Refusal(403, f"the admin does not {what} inside an organisation; its owners do")
        if caller.person is None:
            raise Refusal(403, f"an integration key may not {what}: an owner of {caller.name} signs in to do it")
        if caller.person.role != "owner":
            raise Refusal(403, f"a {caller.person.role} may not {what}; this needs an owner of {caller.name}")

    @classmethod
    def require_integrations(cls, caller: Caller, what: str) -> None:
        """The organisation's integrations (its integration key, its webhook subscriptions) are
        managed by the integration key itself or an owner (403 for other people and the admin)."""
        if caller.person is not None or caller.role == "admin":
            cls.require_owner(caller, what)

    @staticmethod
    def require_person(caller: Caller) -> PersonRef:
        if caller.role == "admin":
            raise Refusal(403, "the admin is not a person of an organisation: call this with a personal token")
        if caller.person is None:
            raise Refusal(403, "this is a person's own: call it with a personal token, not an integration key")
        return caller.person

    # -- people -----------------------------------------------------------------------------------
    def add(self, session: Session, organisation_id: str, body: PersonCreate, role: PersonRole) -> PersonCreated:
        """A new person of the organisation (in the caller's transaction); with no single sign-on,
        with a first personal token, shown once. With single sign-on, the e-mail address is how the
        person will be found at their first sign-in, so it is required (422)."""
        if self.sso and not body.email:
            raise Refusal(
                422,
                "email: the hub signs people in with single sign-on, which finds an invited person by "
                "their e-mail address: give one",
                field="email",
            )
        self._lock_organisation(session, organisation_id)
        count = session.exec(
            select(func.count()).select_from(Person).where(Person.organisation_id == organisation_id)
        ).one()
        if count >= MAX_PEOPLE_PER_ORGANISATION:
            raise Refusal(
                409, f"an organisation has at most {MAX_PEOPLE_PER_ORGANISATION} people", title="Limit reached"
            )
        email = body.email.lower() if body.email else None
        if (
            email is not None
            and session.exec(
                select(Person.id).where(
                    Person.organisation_id == organisation_id, Person.email == email, Person.status == "active"
                )
            ).first()
        ):
            raise Refusal(409, f"{email} is already one of the organisation's people", title="Already invited")
        key = new_key()
        person = Person(
            id=f"person_{key.key_id}",
            organisation_id=organisation_id,
            name=body.name,
            email=email,
            role=role,
            status="active",
            created_at=datetime.now(UTC),
        )
        session.add(person)
        token = None
        if not self.sso:
            token = self._new_token(session, person, "first personal token").token
        return PersonCreated(**_public(person).model_dump(), personal_token=token)

    def invite(self, caller: Caller, body: PersonCreate) -> PersonCreated:
        self.require_owner(caller, "invite people")
        with Session(self.engine, expire_on_commit=False) as session:
            created = self.add(session, caller.organisation_id, body, body.role)
            session.commit()
        return created

    def add_owner(self, organisation_id: str, body: PersonCreate) -> PersonCreated:
        """An owner for the organisation, by the admin: the first of a new organisation, or of one
        that existed before people did."""
        with Session(self.engine, expire_on_commit=False) as session:
            if session.get(Organisation, organisation_id) is None:
                raise not_found(f"there is no organisation {organisation_id}")
            created = self.add(session, organisation_id, body, "owner")
            session.commit()
        return created

    def of_organisation(self, caller: Caller) -> list[PersonPublic]:
        """The organisation's people, to any of its people and its integration key."""
        if caller.role == "admin":
            raise Refusal(403, "the admin does not see inside organisations")
        with Session(self.engine) as session:
            rows = session.exec(
                select(Person)
                .where(Person.organisation_id == caller.organisation_id)
                .order_by(col(Person.created_at), col(Person.id))
            ).all()
        return [_public(p) for p in rows]

    def change_role(self, caller: Caller, person_id: str, role: PersonRole) -> PersonPublic:
        self.require_owner(caller, "change people's roles")
        with Session(self.engine, expire_on_commit=False) as session:
            self._lock_organisation(session, caller.organisation_id)
            person = self._own(session, caller, person_id)
            if person.status != "active":
                raise Refusal(409, "the person was removed; invite them again")
            if person.role == "owner" and role != "owner":
                self._keep_an_owner(session, caller.organisation_id)
            person.role = role
            session.add(person)
            keys = self._end_sessions_and_cached_tokens(session, person.id, revoke=False)
            session.commit()
        for key_id in keys:
            forget_key(self.engine, f"kkp:{key_id}")
        return _public(person)

    def remove(self, caller: Caller, person_id: str) -> PersonPublic:
        """The person may act no more: their tokens are revoked, their sessions end, and the webhook
        subscriptions they made are disabled (an owner may enable them again)."""
        self.require_owner(caller, "remove people")
        with Session(self.engine, expire_on_commit=False) as session:
            self._lock_organisation(session, caller.organisation_id)
            person = self._own(session, caller, person_id)
            if person.status == "removed":
                return _public(person)
            if person.role == "owner":
                self._keep_an_owner(session, caller.organisation_id)
            person.status, person.removed_at = "removed", datetime.now(UTC)
            # The identity is released: the person may be invited again (here or elsewhere) and
            # bind it anew; the removed row keeps the name and id the log refers to.
            person.issuer, person.subject = None, None
            session.add(person)
            keys = self._end_sessions_and_cached_tokens(session, person.id, revoke=True)
            self._disable_subscriptions(session, person)
            session.commit()
        for key_id in keys:
            forget_key(self.engine, f"kkp:{key_id}")
        return _public(person)

    def me(self, caller: Caller) -> PersonPublic:
        ref = self.require_person(caller)
        with Session(self.engine) as session:
            person = session.get(Person, ref.id)
            if person is None:
                raise not_found("there is no such person")
            return _public(person)

    # -- personal tokens ----------------------------------------------------------------------------
    def tokens(self, caller: Caller) -> list[TokenPublic]:
        ref = self.require_person(caller)
        with Session(self.engine) as session:
            rows = session.exec(
                select(PersonalToken)
                .where(PersonalToken.person_id == ref.id)
                .order_by(col(PersonalToken.created_at), col(PersonalToken.key_id))
            ).all()
        return [_token_public(t) for t in rows]

    def create_token(self, caller: Caller, label: str) -> TokenCreated:
        ref = self.require_person(caller)
        with Session(self.engine, expire_on_commit=False) as session:
            person = session.get(Person, ref.id)
            if person is None or person.status != "active":
                raise Refusal(403, "the person was removed")
            live = session.exec(
                select(func.count())
                .select_from(PersonalToken)
                .where(PersonalToken.person_id == ref.id, col(PersonalToken.revoked_at).is_(None))
            ).one()
            if live >= MAX_TOKENS_PER_PERSON:
                raise Refusal(
                    409, f"you have {MAX_TOKENS_PER_PERSON} tokens in use: revoke one first", title="Limit reached"
                )
            created = self._new_token(session, person, label)
            session.commit()
        return created

    def revoke_token(self, caller: Caller, token_id: str) -> TokenPublic:
        ref = self.require_person(caller)
        with Session(self.engine, expire_on_commit=False) as session:
            token = session.get(PersonalToken, token_id, with_for_update=True)
            if token is None or token.person_id != ref.id:
                raise not_found(f"you have no token {token_id}")
            if token.revoked_at is None:
                token.revoked_at = datetime.now(UTC)
                session.add(token)
                # The list keeps the most recently revoked tokens only, so it stays bounded.
                for old in session.exec(
                    select(PersonalToken)
                    .where(PersonalToken.person_id == ref.id, col(PersonalToken.revoked_at).is_not(None))
                    .order_by(col(PersonalToken.revoked_at).desc(), col(PersonalToken.key_id))
                    .offset(MAX_TOKENS_PER_PERSON)
                ):
                    session.delete(old)
                session.commit()
        forget_key(self.engine, f"kkp:{token_id}")
        return _token_public(token)

    # -- single sign-on ---------------------------------------------------------------------------
    def person_for_sign_in(self, issuer: str, subject: str, email: str | None, email_verified: bool) -> Caller:
        """The person an identity signs in as: the one bound to ``(issuer, subject)``, else the open
        invitation for the verified ``email``, which this binds. 403 otherwise.

        An identity is one person of one organisation, so an address that several organisations
        have invited binds to none of them until all but one withdraw their invitation: otherwise
        any owner could invite somebody else's address and capture that person's first sign-in."""
        with Session(self.engine, expire_on_commit=False) as session:
            person = session.exec(select(Person).where(Person.issuer == issuer, Person.subject == subject)).first()
            if person is None and email and email_verified:
                invitations = session.exec(
                    select(Person)
                    .where(
                        Person.email == email.lower(),  # kept lower-case, so the index serves
                        col(Person.subject).is_(None),
                        Person.status == "active",
                    )
                    .order_by(col(Person.created_at))
                    .with_for_update()
                ).all()
                if len(invitations) > 1:
                    names = sorted(
                        {
                            o.name
                            for o in session.exec(
                                select(Organisation).where(
                                    col(Organisation.id).in_([p.organisation_id for p in invitations])
                                )
                            )
                        }
                    )
                    raise Refusal(
                        403,
                        f"{email} is invited by {len(invitations)} organisations ({', '.join(names)}); a person "
                        "belongs to one: ask the owners of all but yours to withdraw their invitation",
                    )
                person = invitations[0] if invitations else None
                if person is not None:
                    # Bound only if still open: SQLite takes no row lock, so two identities signing
                    # in with the address at once must not both bind it (the second finds nobody).
                    bound = session.execute(
                        update(Person)
                        .where(col(Person.id) == person.id, col(Person.subject).is_(None))
                        .values(issuer=issuer, subject=subject, bound_at=datetime.now(UTC))
                    )
                    session.commit()
                    person = person if bound.rowcount == 1 else None  # type: ignore[attr-defined]
            if person is None:
                hint = f" ask an owner of your organisation to invite {email}" if email else ""
                raise Refusal(403, f"nobody has invited this identity to the hub:{hint}".rstrip(":"))
            organisation = session.get(Organisation, person.organisation_id)
            if organisation is None:
                raise Refusal(403, "your organisation no longer exists")
            return caller_of(person, organisation.name, organisation.role)

    def person_caller(self, person_id: str) -> Caller | None:
        """The caller a dashboard session's person is now (their current role), or None when the
        person was removed."""
        with Session(self.engine) as session:
            person = session.get(Person, person_id)
            if person is None or person.status != "active":
                return None
            organisation = session.get(Organisation, person.organisation_id)
            if organisation is None:
                return None
            return caller_of(person, organisation.name, organisation.role)

    # -- helpers ------------------------------------------------------------------------------------
    def _new_token(self, session: Session, person: Person, label: str) -> TokenCreated:
        key = new_key("kkp")
        token = PersonalToken(
            key_id=key.key_id,
            person_id=person.id,
            organisation_id=person.organisation_id,
            label=label,
            token_hash=key.hash,
            created_at=datetime.now(UTC),
        )
        session.add(token)
        return TokenCreated(**_token_public(token).model_dump(), token=key.api_key)

    @staticmethod
    def _lock_organisation(session: Session, organisation_id: str) -> None:
        """Hold the organisation's row for the rest of the transaction: its people change one
        request at a time, so two owners who demote or remove each other at once cannot both count
        two owners and leave none. An UPDATE rather than SELECT … FOR UPDATE: SQLite has no row
        locks, and a write is what makes it take its write lock before the count."""
        session.execute(
            update(Organisation).where(col(Organisation.id) == organisation_id).values(name=Organisation.name)
        )

    @staticmethod
    def _disable_subscriptions(session: Session, person: Person) -> None:
        """A removed person's webhooks would go on sending the organisation's events (with the names
        of who acted) wherever they pointed them: they stop, until an owner enables them again."""
        now = datetime.now(UTC)
        for subscription in session.exec(
            select(Subscription).where(Subscription.person_id == person.id, Subscription.status == "active")
        ):
            subscription.status, subscription.disabled_at = "disabled", now
            subscription.disabled_reason = (
                f"{person.name}, who made it, was removed from the organisation; an owner may enable it again"
            )
            session.add(subscription)

    @staticmethod
    def _own(session: Session, caller: Caller, person_id: str) -> Person:
        person = session.get(Person, person_id)
        if person is None or person.organisation_id != caller.organisation_id:
            raise not_found(f"there is no person {person_id} in {caller.name}")
        return person

    @staticmethod
    def _keep_an_owner(session: Session, organisation_id: str) -> None:
        owners = session.exec(
            select(func.count())
            .select_from(Person)
            .where(Person.organisation_id == organisation_id, Person.role == "owner", Person.status == "active")
        ).one()
        if owners <= 1:
            raise Refusal(409, "an organisation keeps at least one owner: make another person owner first")

    @staticmethod
    def _end_sessions_and_cached_tokens(session: Session, person_id: str, revoke: bool) -> Sequence[str]:
        """End the person's dashboard sessions (they sign in again, with their new role if it
        changed); with ``revoke``, revoke their tokens. The key ids to forget from the cache."""
        for row in session.exec(select(DashboardSession).where(DashboardSession.person_id == person_id)):
            session.delete(row)
        tokens = session.exec(select(PersonalToken).where(PersonalToken.person_id == person_id)).all()
        if revoke:
            now = datetime.now(UTC)
            for token in tokens:
                if token.revoked_at is None:
                    token.revoked_at = now
                    session.add(token)
        return [t.key_id for t in tokens]
