"""People inside organisations on a real database (SPEC section 10): the last-owner guard under
concurrent changes, invitations under single sign-on, and the migration that brought people to
databases that had organisations before them."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import event, text
from sqlmodel import Session, select

from services.application.documents import PersonCreate
from services.application.errors import Refusal
from services.application.people import MAX_TOKENS_PER_PERSON, People
from services.application.security import Caller, PersonRef, authenticate, new_key
from services.readmodel.store import alembic_config, create_db_engine, require_current_schema, upgrade
from services.readmodel.tables import DashboardSession, Organisation, Person

RACE_THREAD = "owner-race-"


def organisation(engine: Any, role: str = "member") -> tuple[str, str]:
    """A new organisation: (its id, its integration key)."""
    key = new_key()
    with Session(engine) as session:
        session.add(Organisation(id=f"org_{key.key_id}", name="Uni", role=role, key_id=key.key_id,
                                 key_hash=key.hash, created_at=datetime.now(UTC)))  # fmt: skip
        session.commit()
    return f"org_{key.key_id}", key.api_key


def owner_caller(organisation_id: str, person_id: str) -> Caller:
    return Caller(organisation_id, "Uni", "member", PersonRef(person_id, "An owner", "owner"))


def active_owners(engine: Any, organisation_id: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Person.id).where(
                    Person.organisation_id == organisation_id, Person.role == "owner", Person.status == "active"
                )
            ).all()
        )


@pytest.mark.parametrize(
    "second",
    [
        lambda people, caller, target: people.change_role(caller, target, "approver"),
        lambda people, caller, target: people.remove(caller, target),
    ],
    ids=["demotes", "removes"],
)
def test_two_owners_who_remove_each_other_at_once_leave_one_owner(
    database: str, second: Callable[[People, Caller, str], Any]
) -> None:
    # Given an organisation with two owners, Ada and Bram
    upgrade(database)
    engine = create_db_engine(database)
    people = People(engine, sso=False)
    organisation_id, _ = organisation(engine)
    ada = people.add_owner(organisation_id, PersonCreate(name="Ada")).id
    bram = people.add_owner(organisation_id, PersonCreate(name="Bram")).id
    # Each owner's request stops just after counting the organisation's owners, until the other's
    # has counted them too: the interleaving that let both see two owners and both go ahead. When
    # the guard makes the second wait for the first, the first's wait ends by its timeout (a
    # bounded wait for something that must not happen), and the second counts after the first.
    both_counted = threading.Barrier(2, timeout=2.0)

    @event.listens_for(engine, "after_cursor_execute")
    def hold_after_counting(*args: Any) -> None:
        statement = args[2].lower()
        if threading.current_thread().name.startswith(RACE_THREAD) and "count(" in statement and "people" in statement:
            with contextlib.suppress(threading.BrokenBarrierError):
                both_counted.wait()

    outcomes: dict[str, int] = {}

    def act(name: str, change: Callable[[], Any]) -> None:
        try:
            change()
            outcomes[name] = 200
        except Refusal as refusal:
            outcomes[name] = refusal.status

    # When Ada removes Bram while Bram demotes (or removes) Ada
    threads = [
        threading.Thread(
            target=act,
            args=("ada", lambda: people.remove(owner_caller(organisation_id, ada), bram)),
            name=f"{RACE_THREAD}ada",
        ),
        threading.Thread(
            target=act,
            args=("bram", lambda: second(people, owner_caller(organisation_id, bram), ada)),
            name=f"{RACE_THREAD}bram",
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    event.remove(engine, "after_cursor_execute", hold_after_counting)
    # Then one of them went ahead, the other was refused, and the organisation keeps an owner
    assert sorted(outcomes.values()) == [200, 409], outcomes
    assert len(active_owners(engine, organisation_id)) == 1


def test_with_single_sign_on_a_person_is_invited_by_e_mail_address(database: str) -> None:
    # Given a hub with single sign-on, where a person is found by the e-mail address invited
    upgrade(database)
    engine = create_db_engine(database)
    people = People(engine, sso=True)
    organisation_id, _ = organisation(engine)
    # When the admin gives the organisation an owner without an address
    with pytest.raises(Refusal) as refused:
        people.add_owner(organisation_id, PersonCreate(name="Nobody Knows"))
    # Then it is refused: nobody could ever sign in as that person
    assert refused.value.status == 422
    assert "email" in refused.value.detail
    assert active_owners(engine, organisation_id) == []
    # While an owner with an address is added, without a personal token (they sign in with single sign-on)
    created = people.add_owner(organisation_id, PersonCreate(name="Ada", email="Ada@Uni.example"))
    assert created.personal_token is None and created.email == "ada@uni.example"
    # And an owner's invitation without an address is refused the same way
    with pytest.raises(Refusal) as again:
        people.invite(owner_caller(organisation_id, created.id), PersonCreate(name="Bram", role="approver"))
    assert again.value.status == 422


def test_an_address_invited_by_two_organisations_binds_to_neither_until_one_withdraws(database: str) -> None:
    # Given a hub with single sign-on, where one university invited its privacy officer, and the
    # owner of another organisation invited her address too (to capture her first sign-in)
    upgrade(database)
    engine = create_db_engine(database)
    people = People(engine, sso=True)
    hers, _ = organisation(engine)
    theirs, _ = organisation(engine)
    her_owner = people.add_owner(hers, PersonCreate(name="Her owner", email="owner@uni.example"))
    their_owner = people.add_owner(theirs, PersonCreate(name="Their owner", email="owner@other.example"))
    invited = people.invite(owner_caller(hers, her_owner.id), PersonCreate(name="Priya", email="priya@uni.example"))
    capture = people.invite(owner_caller(theirs, their_owner.id), PersonCreate(name="Priya", email="PRIYA@uni.example"))
    # When she signs in for the first time
    with pytest.raises(Refusal) as refused:
        people.person_for_sign_in("https://idp.example", "priya-subject", "priya@uni.example", True)
    # Then she is bound to neither, and told why
    assert refused.value.status == 403
    assert "invited by 2 organisations" in refused.value.detail
    with Session(engine) as session:
        assert session.get(Person, invited.id).subject is None  # type: ignore[union-attr]
        assert session.get(Person, capture.id).subject is None  # type: ignore[union-attr]
    # When the other organisation's invitation is withdrawn, she signs in as her university's
    people.remove(owner_caller(theirs, their_owner.id), capture.id)
    caller = people.person_for_sign_in("https://idp.example", "priya-subject", "priya@uni.example", True)
    assert caller.organisation_id == hers and caller.person is not None and caller.person.id == invited.id
    # And an address the provider did not verify binds nothing
    with pytest.raises(Refusal):
        people.person_for_sign_in("https://idp.example", "other-subject", "owner@uni.example", False)


def test_an_organisation_from_before_people_keeps_its_key_as_its_integration_key(database: str) -> None:
    # Given a database at revision 0003 (before people) with an organisation and a dashboard
    # session begun with the organisation's key
    config = alembic_config(database)
    create_db_engine(database).dispose()
    command.upgrade(config, "0003")
    engine = create_db_engine(database)
    key = new_key()
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organisations (id, name, role, key_id, key_hash, created_at) "
                "VALUES (:id, 'Old Uni', 'member', :key_id, :key_hash, :now)"
            ),
            {"id": f"org_{key.key_id}", "key_id": key.key_id, "key_hash": key.hash, "now": now},
        )
        connection.execute(
            text(
                "INSERT INTO dashboard_sessions (token_hash, organisation_id, csrf_token, created_at, expires_at) "
                "VALUES (:token_hash, :organisation_id, 'csrf', :now, :expires)"
            ),
            {
                "token_hash": hashlib.sha256(b"an old session").hexdigest(),
                "organisation_id": f"org_{key.key_id}",
                "now": now,
                "expires": now + timedelta(hours=8),
            },
        )
    # When it is upgraded to the newest revision
    upgrade(database)
    engine = create_db_engine(database)
    require_current_schema(engine)
    # Then the organisation's key still lets it in, as its integration key (no person)
    caller = authenticate(engine, None, key.api_key, ttl_s=0.0)
    assert (caller.organisation_id, caller.name, caller.role, caller.person) == (
        f"org_{key.key_id}",
        "Old Uni",
        "member",
        None,
    )
    # And the session begun with the key is gone: the dashboard is for people now
    with Session(engine) as session:
        assert session.exec(select(DashboardSession)).all() == []
        assert session.exec(select(Person)).all() == []
    # And the admin can give it an owner, whose token lets them in as a person of it
    owner = People(engine, sso=False).add_owner(f"org_{key.key_id}", PersonCreate(name="Ada Owner"))
    assert owner.personal_token is not None
    person = authenticate(engine, None, owner.personal_token, ttl_s=0.0).person
    assert person is not None and (person.name, person.role) == ("Ada Owner", "owner")


def test_a_persons_token_list_keeps_the_latest_revoked_tokens_only(database: str) -> None:
    # Given a person who made and revoked more tokens than a person may hold at once
    upgrade(database)
    engine = create_db_engine(database)
    people = People(engine, sso=False)
    organisation_id, _ = organisation(engine)
    owner = people.add_owner(organisation_id, PersonCreate(name="Tinkerer"))
    caller = owner_caller(organisation_id, owner.id)
    for i in range(MAX_TOKENS_PER_PERSON + 5):
        people.revoke_token(caller, people.create_token(caller, f"try {i}").id)
    # Then the list holds her first token (in use) and the latest revoked ones, no more
    listed = people.tokens(caller)
    revoked = [t.label for t in listed if t.revoked_at is not None]
    assert len(revoked) == MAX_TOKENS_PER_PERSON
    assert f"try {MAX_TOKENS_PER_PERSON + 4}" in revoked and "try 0" not in revoked
    assert [t.label for t in listed if t.revoked_at is None] == ["first personal token"]


def test_a_removed_person_may_be_invited_again_and_binds_anew(database: str) -> None:
    # Given a person who signed in with single sign-on and was then removed
    upgrade(database)
    engine = create_db_engine(database)
    people = People(engine, sso=True)
    organisation_id, _ = organisation(engine)
    owner = people.add_owner(organisation_id, PersonCreate(name="Owner", email="owner@uni.example"))
    as_owner = owner_caller(organisation_id, owner.id)
    first = people.invite(as_owner, PersonCreate(name="Ann", email="ann@uni.example", role="approver"))
    assert people.person_for_sign_in("https://idp.example", "ann", "ann@uni.example", True).person.id == first.id  # type: ignore[union-attr]
    people.remove(as_owner, first.id)
    # Then her identity finds nobody
    with pytest.raises(Refusal) as refused:
        people.person_for_sign_in("https://idp.example", "ann", "ann@uni.example", True)
    assert "nobody has invited" in refused.value.detail
    # When the owner invites her again, her next sign-in binds the new invitation
    again = people.invite(as_owner, PersonCreate(name="Ann", email="ann@uni.example", role="contributor"))
    caller = people.person_for_sign_in("https://idp.example", "ann", "ann@uni.example", True)
    assert caller.person is not None and (caller.person.id, caller.person.role) == (again.id, "contributor")
