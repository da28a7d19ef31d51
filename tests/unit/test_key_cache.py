"""The API process's cache of keys and personal tokens (``services.application.security``): what it
read is trusted for the cache's bound, and a key this process forgets (revoked, rotated, a person
removed) is never trusted from the cache again, even when a read of it was under way."""

from __future__ import annotations

from typing import Any

import pytest

from services.application import security
from services.application.security import (
    Caller,
    PersonRef,
    authenticate,
    authenticate_known,
    forget_key,
    hash_secret,
    split_key,
)

TOKEN = "kkp_0123456789ab_the-secret"
ADA = Caller("org_uni", "Uni", "member", PersonRef("person_ada", "Ada", "approver"))


class Engine:
    """Stands in for a database engine: the cache keys its entries by engine."""


def reads(monkeypatch: pytest.MonkeyPatch, during: Any = None) -> list[str]:
    """Each read of a key's row (returns Ada's token row; ``during`` runs while it is read)."""
    seen: list[str] = []

    def read_key(engine: Any, key_id: str) -> tuple[str, Caller]:
        seen.append(key_id)
        if during is not None:
            during(engine, key_id)
        return hash_secret("the-secret"), ADA

    monkeypatch.setattr(security, "_read_key", read_key)
    monkeypatch.setattr(security, "_used", lambda engine, key_id: seen.append(f"used {key_id}"))
    return seen


def test_a_personal_token_is_read_once_then_known_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = Engine()
    seen = reads(monkeypatch)
    # Given a token not read yet: the event loop's check does not decide it
    assert authenticate_known(engine, None, TOKEN) is None
    # When it is read once
    assert authenticate(engine, None, TOKEN) == ADA
    # Then later requests are let in without reading it again, as the person with their role
    assert authenticate_known(engine, None, TOKEN) == ADA
    assert authenticate(engine, None, TOKEN).person == PersonRef("person_ada", "Ada", "approver")
    assert seen == ["kkp:0123456789ab", "used 0123456789ab"]
    # And past the bound it is read again
    assert authenticate_known(engine, None, TOKEN, ttl_s=0.0) is None
    # And a token and an integration key with the same key id are different entries
    assert split_key(TOKEN) != split_key(TOKEN.replace("kkp_", "kk_", 1))


def test_a_forgotten_token_is_not_trusted_from_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    engine: Any = Engine()
    reads(monkeypatch)
    assert authenticate(engine, None, TOKEN) == ADA
    # When this process revokes it
    forget_key(engine, "kkp:0123456789ab")
    # Then the next request must read it again
    assert authenticate_known(engine, None, TOKEN) is None


def test_a_token_revoked_while_it_was_being_read_is_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request that reads the token's row just before an owner's removal of its person
    # commits, and this process forgets the token while that read is under way
    engine: Any = Engine()
    reads(monkeypatch, during=lambda engine_, key_id: forget_key(engine_, key_id))
    # When that request is answered with what it read (it began before the removal)
    assert authenticate(engine, None, TOKEN) == ADA
    # Then the row it read is not remembered: the next request does not get in from the cache
    assert authenticate_known(engine, None, TOKEN) is None


def test_a_wrong_secret_for_a_tokens_key_id_does_not_count_as_its_use(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given somebody who saw the key id a token shows, but not its secret
    engine: Any = Engine()
    seen = reads(monkeypatch)
    # When they try it
    with pytest.raises(security.Refusal):
        authenticate(engine, None, "kkp_0123456789ab_" + "A" * 43)
    # Then the row was read, but the token's last use did not move
    assert seen == ["kkp:0123456789ab"]
