"""The compiled decoders (``streams.decoders``) accept and refuse exactly what the pydantic
contract accepts and refuses, and build equal models; valid events and commands take the fast path."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from schemas.commands import ActingPerson, Actor, Command, StatePosition
from schemas.events import EVENT_ADAPTER, EVENT_TYPES
from schemas.negotiation import ItemResponse, Policy, Position
from streams.decoders import COMMANDS, EVENTS, Compiled
from tests.unit.builders import COORDINATOR, NOW, Negotiation, accept, item

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


class Recorded(Negotiation):
    """A negotiation that keeps every command it decided."""

    commands: list[Any]

    def run(self, command: Any) -> Any:
        if not hasattr(self, "commands"):
            self.commands = []
        self.commands.append(command)
        return super().run(command)


def lifecycle() -> Recorded:
    """One negotiation through every command and every event type."""
    n = Recorded(
        item("audit-rights"),
        item("retention-days", "at_most"),
        item("region", "one_of"),
        policy=Policy(coverage=1, inclusion_share="1/3"),  # type: ignore[arg-type]
    )
    n.invite("m1", weight=3).invite("m2", weight=2)
    n.policy(inclusion_share="2/3", coverage=0.9, endorsement_share="1/2")
    n.position("m1", "retention-days", "must", value=30)
    n.position("m2", "retention-days", "should", value=12.5)
    n.position("m1", "region", "must", accepted=("NL", "EU"))
    n.position("m2", "audit-rights", "could")
    n.withdraw("m2", "audit-rights")
    person = ActingPerson(id="p-1", name="Ann Example", role="approver", salt="0" * 32)
    n.run(
        StatePosition(
            command_id="cmd-person",
            negotiation_id=n.negotiation_id,
            actor=Actor(organisation_id="m2", role="member", name="Member m2", person=person, salt="a" * 32),
            item_key="audit-rights",
            position=Position(priority="must", rationale="We audit every year"),
        )
    )
    n.publish()
    counter = ItemResponse(key="retention-days", verdict="counter", value=45, comment="We keep logs 45 days")
    n.respond(accept("audit-rights"), counter, ItemResponse(key="region", verdict="accept"))
    n.ask("region", "Which data centres?")
    n.answer(1, "Amsterdam and Frankfurt")
    n.propose().endorse("m1", "reject", "Too long")
    n.respond(accept("audit-rights"), accept("retention-days"), accept("region"))
    n.propose().endorse("m1", "accept", "Fine")
    n.plan({"audit-rights": 10, "retention-days": 20, "region": 30}).reject_plan("Sooner, please")
    n.plan({"audit-rights": 1, "retention-days": 20, "region": 30}).accept_plan()
    n.deliver("retention-days").check("m1", "retention-days", "not_met", "Still 60 days").verdict(
        "retention-days", "not_met"
    )
    n.tick(NOW + timedelta(days=2))
    n.deliver("audit-rights").verdict("audit-rights")
    n.deliver("retention-days").verdict("retention-days")
    n.deliver("region").verdict("region")
    n.regress("m1", "region", "Moved to Virginia")
    n.reopen("region", reason="Region moved")
    n.abandon("Enough")
    return n


LIFE = lifecycle()
EVENT_JSON = [json.loads(event.model_dump_json()) for event in LIFE.events]
COMMAND_JSON = [json.loads(command.model_dump_json()) for command in LIFE.commands]


def test_the_lifecycle_covers_every_event_and_command_type() -> None:
    assert {e["type"] for e in EVENT_JSON} == set(EVENT_TYPES)
    assert {c["type"] for c in COMMAND_JSON} == {m.model_fields["type"].default for m in _command_types()}


def _command_types() -> tuple[Any, ...]:
    from streams.decoders import _members

    return _members(Command)


def outcome(decode: Any, value: bytes) -> tuple[str, Any]:
    try:
        model = decode(value)
    except ValidationError as exc:
        return "refused", [(e["loc"], e["type"]) for e in exc.errors()]
    return "accepted", (type(model), model, model.model_dump_json(), model.model_fields_set)


def same(compiled: Compiled, adapter: TypeAdapter[Any], value: bytes) -> None:
    assert outcome(compiled, value) == outcome(adapter.validate_json, value)


@pytest.mark.parametrize("kind", ["event", "command"])
def test_every_valid_message_takes_the_fast_path_and_equals_pydantics(kind: str) -> None:
    # Given every event and command of a whole negotiation, as the hub writes them
    compiled, adapter, documents = (
        (EVENTS, EVENT_ADAPTER, EVENT_JSON) if kind == "event" else (COMMANDS, COMMAND_ADAPTER, COMMAND_JSON)
    )
    for document in documents:
        value = json.dumps(document).encode()
        # When the compiled decoder reads it, without falling back to pydantic
        if document["type"] in compiled.slow_types:
            continue
        model = compiled.fast(value)
        # Then it is the model pydantic builds, field for field, and writes the same JSON
        reference = adapter.validate_json(value)
        assert type(model) is type(reference)
        assert model == reference
        assert model.model_dump_json() == reference.model_dump_json()
        assert model.model_fields_set == reference.model_fields_set
    # Only the demand version's event (its target is a union pydantic reads in its smart mode) is left to pydantic.
    assert EVENTS.slow_types == ["DemandPublished"]
    assert COMMANDS.slow_types == []


# -- mutations ----------------------------------------------------------------------------------

TRICKY_TEXT = st.sampled_from(
    [
        "",
        "a",
        "neg-1\n",
        "neg 1",
        "x" * 65,
        "x" * 201,
        "a\x00b",
        "\x1c",
        " ",
        "é",
        "0" * 64,
        "0" * 63 + "g",
        "2025-03-01T12:00:00Z",
        "2025-03-01T12:00:00.1234567Z",
        "2025-03-01T12:00:00.123456+02:00",
        "2025-03-01t12:00:00z",
        "2025-03-01 12:00:00Z",
        "2025-03-01T12:00:00",
        "2025-03-01",
        "2025-02-30T12:00:00Z",
        "2025-03-01T24:00:00Z",
        "2025-03-01T12:00:00+24:00",
        "2025-03-01T12:00:00-00:00",
        "2025-03-01T12:00Z",
        "1/3",
        "2/3",
        "0/1",
        "1",
        "must",
        "accept",
        "counter",
        "NL",
        "EU",
        "met",
    ]
)
JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0, 1, 2, 45, 10**15, 10**15 + 1, 10**9, 10**9 + 1, -1]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.1, 1.0, 12.5, 1e-320, 1e16, 0.30000000000000004, -0.0]),
    TRICKY_TEXT,
    st.text(max_size=8),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["key", "verdict", "x"]), inner, max_size=3)
    ),
    max_leaves=6,
)


def paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn, documents: list[dict[str, Any]]) -> bytes:
    document = json.loads(json.dumps(draw(st.sampled_from(documents))))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(paths(document)))
        if not where:
            continue
        *parent_path, last = where
        parent = document
        for step in parent_path:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "drop", "add", "float", "text"]))
        if action == "drop":
            if isinstance(parent, dict):
                del parent[last]
            else:
                parent.pop(last)
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["unknown", "version_hash", "hash", "value", "type"]))] = draw(JSON_VALUES)
        elif action == "float" and isinstance(parent[last], int) and not isinstance(parent[last], bool):
            parent[last] = float(parent[last])
        elif action == "text" and isinstance(parent[last], str):
            parent[last] = parent[last] + draw(st.sampled_from(["\n", " ", "\x00", "-", "Z", "0", "é"]))
        else:
            parent[last] = draw(JSON_VALUES)
    text = json.dumps(document)
    if draw(st.booleans()) and text.endswith("}"):
        text = text[:-1] + ', "type": ' + json.dumps(document.get("type")) + "}"  # a key twice
    return text.encode()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=mutated(EVENT_JSON))
def test_mutated_events_are_accepted_or_refused_as_pydantic_does(value: bytes) -> None:
    # Given an event of the lifecycle with up to three fields replaced, dropped, added or bent
    # When both decoders read it, Then both accept it as the same event, or both refuse it alike
    same(EVENTS, EVENT_ADAPTER, value)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=mutated(COMMAND_JSON))
def test_mutated_commands_are_accepted_or_refused_as_pydantic_does(value: bytes) -> None:
    same(COMMANDS, COMMAND_ADAPTER, value)


@settings(max_examples=500, deadline=None)
@given(value=st.binary(max_size=64) | st.sampled_from([b"", b"null", b"[]", b"{}", b'{"type": "PositionStated"}']))
def test_bytes_that_are_no_json_object_are_refused_by_both(value: bytes) -> None:
    same(EVENTS, EVENT_ADAPTER, value)
    same(COMMANDS, COMMAND_ADAPTER, value)


def test_a_fast_path_that_accepts_takes_what_pydantic_takes_for_numbers() -> None:
    # Given positions whose values are written as the JSON numbers a client may send
    base = next(c for c in COMMAND_JSON if c["type"] == "StatePosition" and c["position"].get("value") is not None)
    for number in (
        "0.1",
        "12.50",
        "1e2",
        "1E-3",
        "45",
        "-7",
        "1000000000000000",
        "1000000000000001",
        "1e400",
        "0.30000000000000004",
    ):
        value = json.dumps(base).replace('"value": 30', f'"value": {number}').encode()
        assert b'"value": 30' not in value or number == "30"
        # Then the compiled decoder reads it exactly as the contract does (or refuses it as it does)
        same(COMMANDS, COMMAND_ADAPTER, value)
    assert COORDINATOR  # (the lifecycle's coordinator sent the opening)


@settings(max_examples=3000, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from("abzAZ09_.:-- \n\x1fé٣"), max_size=70)
    | st.text(alphabet="0123456789abcdefABCDEF\n", min_size=31, max_size=65)
)
def test_the_inline_pattern_checks_are_the_patterns(text: str) -> None:
    # Given any text, When the compiled decoder's inline check and the contract's pattern (as
    # pydantic's engine reads it: ``$`` at the very end) judge it, Then they agree
    import re

    from streams.decoders import _FAILS

    for pattern, fails in _FAILS.items():
        namespace = {
            "_ID_CHARS": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-",
            "_HEX_CHARS": "0123456789abcdef",
            "_SLUG_CHARS": "abcdefghijklmnopqrstuvwxyz0123456789-",
            "v": text,
        }
        assert (not eval(fails.format(v="v"), namespace)) == bool(re.search(pattern.replace("$", r"\Z"), text)), pattern
