"""Who is calling: the admin token, an organisation's integration key, or a person's token.

An organisation's API key — its **integration key**, for systems — is ``kk_<key id>_<secret>``;
a person's **personal token** is ``kkp_<key id>_<secret>`` (SPEC section 10). The key id (public,
12 hex digits) finds the row, the secret (32 random bytes, URL-safe) is stored only as its SHA-256
and compared in constant time. A key with 256 bits of entropy needs no slow hash: nobody can guess
it from the hash. Neither keys nor tokens nor the admin token are logged (the log processor masks
them, and no code binds them). An integration key acts for its organisation as an approver does;
a personal token acts as its person, with the person's role.

An organisation has one key at a time: rotating it replaces the row's key id and hash, revoking it
sets the hash to one no secret has. Each API process trusts a key it has read for at most
``KOOPKRACHT_KEY_CACHE_TTL_S`` seconds, so either is in force everywhere within that bound.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from schemas.commands import ActingPerson, Actor
from schemas.negotiation import PersonRole
from services.application.errors import ADMIN_TAKES_NO_PART, Refusal
from services.readmodel.tables import Organisation, Person, PersonalToken

Role = Literal["admin", "coordinator", "member", "vendor"]
ADMIN_ID = "admin"
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
REVOKED = "revoked"
"""The key hash of an organisation whose key the admin revoked: no secret hashes to it."""
KEY_CACHE_TTL_S = 10.0
"""How long a key once read is trusted without reading it again (``KOOPKRACHT_KEY_CACHE_TTL_S``)."""


@dataclass(frozen=True)
class NewKey:
    key_id: str
    secret: str
    prefix: str = "kk"

    @property
    def api_key(self) -> str:
        return f"{self.prefix}_{self.key_id}_{self.secret}"

    @property
    def hash(self) -> str:
        return hash_secret(self.secret)


def new_key(prefix: str = "kk") -> NewKey:
    """A new integration key (``kk``) or personal token (``kkp``)."""
    return NewKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32), prefix=prefix)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(api_key: str) -> tuple[str, str] | None:
    """(cache key, secret) of an integration key or personal token; the cache key is the key id
    with its kind (``kk:…`` or ``kkp:…``). None when it is neither."""
    prefix, _, rest = api_key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix not in ("kk", "kkp") or len(key_id) != 12 or not secret:
        return None
    return f"{prefix}:{key_id}", secret


@dataclass(frozen=True)
class PersonRef:
    """A person of the calling organisation, as a request names them."""

    id: str
    name: str
    role: PersonRole


@dataclass(frozen=True)
class Caller:
    organisation_id: str
    name: str
    role: Role
    person: PersonRef | None = None
    """The person calling; None for the organisation's integration key and for the admin."""

    def actor(self) -> Actor:
        """Who a command is sent by; a fresh salt seals the person in the log (``ActingPerson``)."""
        assert self.role != "admin"
        person = None
        if self.person is not None:
            person = ActingPerson(
                id=self.person.id, name=self.person.name, role=self.person.role, salt=secrets.token_hex(16)
            )
        return Actor(
            organisation_id=self.organisation_id,
            role=self.role,
            name=self.name,
            person=person,
            salt=secrets.token_hex(16),
        )


UNAUTHORISED_HEADERS = {"WWW-Authenticate": 'Bearer realm="koopkracht"'}


def _unauthorised(detail: str) -> Refusal:
    return Refusal(401, detail, headers=UNAUTHORISED_HEADERS)


def authenticate_known(
    engine: Engine, admin_token: SecretStr | None, credentials: str | None, ttl_s: float = KEY_CACHE_TTL_S
) -> Caller | None:
    """The caller, when the credential is the admin token or a key read less than ``ttl_s`` ago (no
    database access, so it can run on the event loop); None when ``authenticate`` must decide."""
    try:
        return authenticate(engine, admin_token, credentials, read=False, ttl_s=ttl_s)
    except Refusal:
        return None


def authenticate(
    engine: Engine,
    admin_token: SecretStr | None,
    credentials: str | None,
    read: bool = True,
    ttl_s: float = KEY_CACHE_TTL_S,
) -> Caller:
    """The caller for a bearer credential; raises a 401 problem when there is none or it is wrong
    (with ``read`` False, also when its key has not been read from the database in ``ttl_s``)."""
    if not credentials:
        raise _unauthorised("send Authorization: Bearer <api key or personal token>")
    if admin_token is not None and hmac.compare_digest(credentials.encode(), admin_token.get_secret_value().encode()):
        return Caller(ADMIN_ID, "admin", "admin")
    parts = split_key(credentials)
    known = None
    if parts is not None:
        known = _known_key(engine, parts[0], read, ttl_s)
    # Compare even when there is no row, so a wrong key id costs the same time as a wrong secret.
    expected = known[0] if known is not None else _DUMMY_HASH
    given = hash_secret(parts[1]) if parts is not None else ""
    if not hmac.compare_digest(expected.encode(), given.encode()) or known is None or parts is None:
        raise _unauthorised("the API key or personal token is not valid")
    if known[2] and parts[0].startswith("kkp:"):
        # A personal token's last use, as near as the cache allows: once per read of its row, and
        # only once its secret was right (a key id alone, which the token shows, must not move it).
        _used(engine, parts[0].removeprefix("kkp:"))
    return known[1]


def _used(engine: Engine, key_id: str) -> None:
    with Session(engine) as session:
        token = session.get(PersonalToken, key_id)
        if token is not None:
            token.last_used_at = datetime.now(UTC)
            session.add(token)
            session.commit()


_KNOWN_KEYS: weakref.WeakKeyDictionary[Engine, OrderedDict[str, tuple[str, Caller, float]]] = (
    weakref.WeakKeyDictionary()
)
_KNOWN_KEYS_KEPT = 4096
_FORGETS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
"""How many times each engine's keys were forgotten: a read that began before a forget is not kept."""
_known_keys_guard = threading.Lock()


def _known_key(engine: Engine, key_id: str, read: bool, ttl_s: float) -> tuple[str, Caller, bool] | None:
    """The stored hash of a key or token (``key_id`` with its kind, ``kk:…`` or ``kkp:…``), who
    it lets in, and whether it was read from the database just now; remembered for ``ttl_s`` once read.

    A key can be revoked or replaced (rotated), a person removed, in another API process, so what
    was read is trusted only for ``ttl_s`` seconds (``KOOPKRACHT_KEY_CACHE_TTL_S``): then the row
    is read again. Only the hash is kept, as in the database. Unknown key ids are not remembered.
    The cache holds at most ``_KNOWN_KEYS_KEPT`` keys and tokens per engine, the least recently
    used leaving first (to be read again at their next use).

    A row read while this process revoked the key (or removed the person) may be the row as it was
    before: it answers the request that read it, which began before the revocation, but is not
    remembered, so that "at once in this API process" holds for every later request.
    """
    now = time.monotonic()
    with _known_keys_guard:
        keys = _KNOWN_KEYS.setdefault(engine, OrderedDict())
        known = keys.get(key_id)
        if known is not None and now - known[2] < ttl_s:
            keys.move_to_end(key_id)
            return known[0], known[1], False
        forgets = _FORGETS.get(engine, 0)
    if not read:
        return None
    found = _read_key(engine, key_id)
    if found is None:
        with _known_keys_guard:
            keys.pop(key_id, None)
        return None
    stored_hash, caller = found
    with _known_keys_guard:
        if _FORGETS.get(engine, 0) == forgets:
            keys[key_id] = (stored_hash, caller, now)
            keys.move_to_end(key_id)
            while len(keys) > _KNOWN_KEYS_KEPT:
                keys.popitem(last=False)
    return stored_hash, caller, True


def _read_key(engine: Engine, key_id: str) -> tuple[str, Caller] | None:
    kind, _, bare = key_id.partition(":")
    with Session(engine) as session:
        if kind == "kk":
            organisation = session.exec(select(Organisation).where(Organisation.key_id == bare)).first()
            if organisation is None:
                return None
            return organisation.key_hash, Caller(organisation.id, organisation.name, organisation.role)  # type: ignore[arg-type]
        row = session.exec(
            select(PersonalToken, Person, Organisation)
            .where(PersonalToken.key_id == bare)
            .join(Person, Person.id == PersonalToken.person_id)  # type: ignore[arg-type]
            .join(Organisation, Organisation.id == Person.organisation_id)  # type: ignore[arg-type]
        ).first()
        if row is None:
            return None
        token, person, organisation = row
        if token.revoked_at is not None or person.status != "active":
            return REVOKED, Caller(organisation.id, organisation.name, organisation.role)  # type: ignore[arg-type]
        person_ref = PersonRef(person.id, person.name, person.role)  # type: ignore[arg-type]
        return token.token_hash, Caller(organisation.id, organisation.name, organisation.role, person_ref)  # type: ignore[arg-type]


def forget_key(engine: Engine, key_id: str) -> None:
    """This process no longer trusts what it read of ``key_id`` (it was revoked or replaced here),
    nor what a read under way when it was forgotten brings back (``_known_key``)."""
    with _known_keys_guard:
        _FORGETS[engine] = _FORGETS.get(engine, 0) + 1
        keys = _KNOWN_KEYS.get(engine)
        if keys is not None:
            keys.pop(key_id, None)


def check_metrics_token(metrics_token: SecretStr | None, credentials: str | None) -> None:
    """401 unless ``credentials`` is the metrics token (and always when none is set)."""
    if metrics_token is None:
        raise _unauthorised("/metrics is closed: the operator sets KOOPKRACHT_METRICS_TOKEN to read it")
    if not credentials or not hmac.compare_digest(credentials.encode(), metrics_token.get_secret_value().encode()):
        raise _unauthorised("send Authorization: Bearer <metrics token>")


def as_party(caller: Caller) -> Caller:
    """The caller, if it may take part in negotiations: the admin takes no part (403). Both the
    API's dependency and the application service apply this one rule."""
    if caller.role == "admin":
        raise Refusal(403, ADMIN_TAKES_NO_PART)
    return caller
