"""The tamper-evident log (SPEC 7.1): canonical JSON, event hashes, and the links between them.

Each event carries ``previous_hash``, the ``hash`` of its negotiation's previous event (``GENESIS``,
64 zeros, for the first), and ``hash``: the SHA-256 of the event's canonical JSON without ``hash``.
The decider chains the events it decides (``chained``), ``evolve`` refuses an event that does not
link to the state's head, and the audit recomputes every hash from the JSON as it was written
(``json_hash``) — the one function all three share, so they cannot disagree.

Canonical JSON is the JSON value written with sorted keys, no whitespace, UTF-8 (no ``\\u``
escapes). Numbers are written as Python writes them: integers as digits, other numbers as the
shortest text that reads back as the same double (``repr``: ``0.1``, ``99.95``, ``1e-05``). Exact
numbers reach the JSON through ``schemas.common.number_to_json``: an integer, a decimal, or, for a
fraction without a finite decimal form, the string ``"p/q"``; the hash covers that text. The
version hash of a demand version (``decider.version_hash``) uses the same function.

Events written before the log was hashed carry neither field: a negotiation's chain then begins
at its first hashed event, whose ``previous_hash`` is ``GENESIS`` too ("genesis at sequence N").
Once a chain has begun, every later event must carry both fields.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from schemas.events import EventBase

GENESIS = "0" * 64
"""The ``previous_hash`` of a negotiation's first hashed event."""

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
"""The definition of canonical JSON: Python's own encoder, so written."""
_sorted_writer: Callable[[dict[str, Any]], bytes] | None = None
"""A faster writer of sorted JSON, installed by the shell (``install_sorted_writer``); the core
needs none and writes everything with ``_ENCODER`` without it."""


def install_sorted_writer(write: Callable[[dict[str, Any]], bytes] | None) -> None:
    """Let ``canonical_json`` write the plain objects (``_plain``) with ``write``: a JSON writer
    with sorted keys and no whitespace, UTF-8 without escapes, that raises ``TypeError`` for what
    it cannot write. ``streams.codec`` installs orjson's, whose text for those objects is
    provably ``_ENCODER``'s (``tests/unit/test_hash_chain.py``). None: Python's encoder alone."""
    global _sorted_writer
    _sorted_writer = write


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 — the text a hash is taken of.

    Its definition is Python's encoder (``_ENCODER``). Every event the worker decides is hashed
    once, so an installed writer (``install_sorted_writer``: orjson's, at about a third of the
    cost) writes a JSON object whose values are all plain: texts, integers, booleans, nulls,
    lists, objects, and floats in [1e-4, 1e16) or zero, which both write as the same shortest
    positional digits (Python writes others with an exponent, ``1e-05``, where orjson writes
    ``0.00001`` or ``1e-7``; and orjson writes NaN as null, which canonical JSON refuses).
    Anything else (a container met twice included, so that a cycle is refused as before), and
    whatever the writer refuses (an integer beyond 64 bits, a key that is not a text, a lone
    surrogate), is written by Python's encoder, which writes or refuses it as it always did.
    """
    write = _sorted_writer
    if write is not None and type(value) is dict and _plain(value):
        try:
            return write(value)
        except TypeError:  # (orjson.JSONEncodeError is one)
            pass
    return _ENCODER.encode(value).encode()


def _plain(value: dict[str, Any]) -> bool:
    """Whether every value inside ``value`` is of the kinds orjson writes exactly as Python."""
    stack: list[Any] = [value]
    pop, push = stack.pop, stack.append
    seen = {id(value)}  # a container met twice (a cycle, or shared): Python's encoder decides
    while stack:
        container = pop()
        items = container.values() if type(container) is dict else container
        for item in items:
            kind = type(item)
            if kind is str or kind is int or item is None or kind is bool:
                continue
            if kind is float:
                if not (1e-4 <= abs(item) < 1e16 or item == 0.0):  # (False for NaN)
                    return False
            elif kind is dict or kind is list or kind is tuple:
                if id(item) in seen:
                    return False
                seen.add(id(item))
                push(item)
            else:
                return False
    return True


def json_hash(data: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's JSON object without its ``hash``, its
    acting person sealed (``sealed``)."""
    if "hash" in data:
        data = {key: value for key, value in data.items() if key != "hash"}
    return hashlib.sha256(canonical_json(sealed(data))).hexdigest()


def event_hash(event: EventBase) -> str:
    """The ``hash`` an event must carry: of its JSON (as written to the log) without ``hash``."""
    return json_hash(event.model_dump(mode="json", exclude={"hash"}))


def person_digest(person: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an acting person (id, name, role and salt)."""
    return hashlib.sha256(canonical_json(person)).hexdigest()


def sealed(data: dict[str, Any]) -> dict[str, Any]:
    """An event's JSON with its acting person replaced by ``{"digest": person_digest(person)}``.

    The chain covers the acting person only in this form (SPEC 7.1, section 10): a party outside
    the acting organisation sees just the digest and still verifies every hash, while the
    organisation's own people, who see the person and its salt, can check that the log names
    them. The per-command salt makes the digest useless for confirming a guess of who acted.
    Sealing sealed data changes nothing.
    """
    person = data.get("acting_person")
    if not isinstance(person, dict) or set(person) == {"digest"}:
        return data
    return {**data, "acting_person": {"digest": person_digest(person)}}


E = TypeVar("E", bound=EventBase)


def chained(events: Iterable[E], head: str | None) -> list[E]:
    """The events linked one after another onto ``head`` (None: no chain yet, they start one)."""
    linked: list[E] = []
    previous = head or GENESIS
    for event in events:
        # The hash of the event as it will be (``event_hash`` of it), from its JSON with the link
        # set: one copy of the event instead of two.
        data = event.model_dump(mode="json", exclude={"hash"})
        data["previous_hash"] = previous
        digest = json_hash(data)
        linked.append(event.model_copy(update={"previous_hash": previous, "hash": digest}))
        previous = digest
    return linked


def link_problem(data: dict[str, Any], head: str | None) -> str | None:
    """What is wrong with an event's JSON as the next link after ``head`` (None: no chain yet),
    or None when it links and hashes right."""
    found_previous, found_hash = data.get("previous_hash"), data.get("hash")
    if found_previous is None and found_hash is None:
        if head is not None:
            return "carries no hash, after the chain began"
        return None
    if not isinstance(found_hash, str):
        return "carries a previous_hash but no hash"
    expected_previous = head or GENESIS
    if found_previous != expected_previous:
        return f"previous_hash {found_previous} does not link to the chain's head {expected_previous}"
    recomputed = json_hash(data)
    if recomputed != found_hash:
        return f"its content hashes to {recomputed}, but it carries the hash {found_hash}"
    return None
