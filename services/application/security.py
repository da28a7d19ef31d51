"""Who is calling: the admin token or an organisation's API key.

An API key is ``kk_<key id>_<secret>``: the key id (public, 12 hex digits) finds the row, the
secret (32 random bytes, URL-safe) is stored only as its SHA-256 and compared in constant time.
A key with 256 bits of entropy needs no slow hash: nobody can guess it from the hash. Neither
keys nor the admin token are logged (the log processor masks them, and no code binds them).

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
from typing import Literal

from pydantic import SecretStr
from sqlalchemy import Engine
from sqlmodel import Session, select

from schemas.commands import Actor
from services.application.errors import ADMIN_TAKES_NO_PART, Refusal
from services.readmodel.tables import Organisation

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

    @property
    def api_key(self) -> str:
        return f"kk_{self.key_id}_{self.secret}"

    @property
    def hash(self) -> str:
        return hash_secret(self.secret)


def new_key() -> NewKey:
    return NewKey(key_id=secrets.token_hex(6), secret=secrets.token_urlsafe(32))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(api_key: str) -> tuple[str, str] | None:
    prefix, _, rest = api_key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != "kk" or len(key_id) != 12 or not secret:
        return None
    return key_id, secret


@dataclass(frozen=True)
class Caller:
    organisation_id: str
    name: str
    role: Role

    def actor(self) -> Actor:
        assert self.role != "admin"
        return Actor(organisation_id=self.organisation_id, role=self.role, name=self.name)


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
        raise _unauthorised("send Authorization: Bearer <api key>")
    if admin_token is not None and hmac.compare_digest(credentials.encode(), admin_token.get_secret_value().encode()):
        return Caller(ADMIN_ID, "admin", "admin")
    parts = split_key(credentials)
    known = None
    if parts is not None:
        known = _known_key(engine, parts[0], read, ttl_s)
    # Compare even when there is no row, so a wrong key id costs the same time as a wrong secret.
    expected = known[0] if known is not None else _DUMMY_HASH
    given = hash_secret(parts[1]) if parts is not None else ""
    if not hmac.compare_digest(expected.encode(), given.encode()) or known is None:
        raise _unauthorised("the API key is not valid")
    return known[1]


_KNOWN_KEYS: weakref.WeakKeyDictionary[Engine, OrderedDict[str, tuple[str, Caller, float]]] = (
    weakref.WeakKeyDictionary()
)
_KNOWN_KEYS_KEPT = 4096
_known_keys_guard = threading.Lock()


def _known_key(engine: Engine, key_id: str, read: bool, ttl_s: float) -> tuple[str, Caller] | None:
    """The stored hash of a key and its organisation, remembered for ``ttl_s`` once read.

    A key can be revoked or replaced (rotated) in another API process, so what was read is trusted
    only for ``ttl_s`` seconds (``KOOPKRACHT_KEY_CACHE_TTL_S``): then the row is read again. Only the
    hash is kept, as in the database. Unknown key ids are not remembered.
    """
    now = time.monotonic()
    with _known_keys_guard:
        keys = _KNOWN_KEYS.setdefault(engine, OrderedDict())
        known = keys.get(key_id)
        if known is not None and now - known[2] < ttl_s:
            keys.move_to_end(key_id)
            return known[0], known[1]
    if not read:
        return None
    with Session(engine) as session:
        organisation = session.exec(select(Organisation).where(Organisation.key_id == key_id)).first()
    if organisation is None:
        forget_key(engine, key_id)
        return None
    caller = Caller(organisation.id, organisation.name, organisation.role)  # type: ignore[arg-type]
    with _known_keys_guard:
        keys[key_id] = (organisation.key_hash, caller, now)
        keys.move_to_end(key_id)
        while len(keys) > _KNOWN_KEYS_KEPT:
            keys.popitem(last=False)
    return organisation.key_hash, caller


def forget_key(engine: Engine, key_id: str) -> None:
    """This process no longer trusts what it read of ``key_id`` (it was revoked or replaced here)."""
    with _known_keys_guard:
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
