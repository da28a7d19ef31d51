"""The tamper-evident log (SPEC 7.1) in the pure core: canonical JSON, the chain the decider
builds, the links ``evolve`` checks, and who sees which hashes."""

from __future__ import annotations

import copy
import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.commands import Endorse, RequestClarification
from schemas.common import number_to_json
from schemas.events import EVENT_ADAPTER, DemandPublished, Event
from streams.codec import _sorted_json
from streams.core import chain
from streams.core.chain import GENESIS, _plain, canonical_json, chained, event_hash, json_hash, link_problem, sealed
from streams.core.decider import decide
from streams.core.ocds import release
from streams.core.state import ChainBroken, NegotiationState, evolve, replay
from streams.core.views import Audience, chain_hashes, event_view, shared_state, version_view
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, item
from tests.unit.test_properties import FAST, coalitions, steps, take

VENDOR_SEES = Audience("vendor", VENDOR)
COORDINATOR_SEES = Audience("coordinator", COORDINATOR)


def agreed() -> Negotiation:
    """A whole negotiation, every kind of event once or more, up to the agreement."""
    n = Negotiation(item("no-ads"), item("retention-days", "at_most"))
    n.invite("m1", 3).invite("m2", 1)
    n.position("m1", "no-ads", rationale="our members ask")
    n.position("m2", "retention-days", value=Fraction("33.5"))
    n.position("m1", "retention-days", value=Fraction("99.95"))
    n.withdraw("m1", "retention-days")
    n.policy(coverage=Fraction(2, 3))  # no finite decimal: written "2/3"
    n.publish()
    n.ask("no-ads", "Which ads?")
    n.answer(1, "All of them, één keer €")
    n.respond(accept("no-ads"), accept("retention-days"))
    n.propose()
    n.endorse("m1", "accept")
    return n


def wire(event: Event) -> bytes:
    """The event's JSON as the worker writes it to the events topic."""
    return event.model_dump_json().encode()


# -- canonical JSON ---------------------------------------------------------------------------


def test_canonical_json_sorts_keys_everywhere_and_writes_no_whitespace() -> None:
    # Given a nested value with unsorted keys
    value = {"b": [{"z": 1, "a": None}], "a": {"y": True, "x": "text"}}
    # Then its canonical JSON has every object's keys sorted and no whitespace at all
    assert canonical_json(value) == b'{"a":{"x":"text","y":true},"b":[{"a":null,"z":1}]}'


def test_canonical_json_is_utf8_without_escapes() -> None:
    assert canonical_json({"name": "één €😀"}) == '{"name":"één €😀"}'.encode()
    assert canonical_json({"quote": 'a"b\\c\n'}) == b'{"quote":"a\\"b\\\\c\\n"}'


def test_exact_numbers_are_written_as_their_shortest_text_and_fractions_as_number_to_json_writes_them() -> None:
    numbers = [Fraction(7), Fraction("0.1"), Fraction("99.95"), Fraction("-2.5"), Fraction(1, 3), Fraction(10**15)]
    assert canonical_json([number_to_json(n) for n in numbers]) == b'[7,0.1,99.95,-2.5,"1/3",1000000000000000]'


def test_canonical_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError):
        canonical_json({"x": [1, {"y": float("-inf")}]})


def _definition(value: object) -> bytes:
    """Canonical JSON by its definition: Python's encoder (``chain._ENCODER``)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=1e-6, max_value=1e18).map(lambda f: round(f, 5))
    | st.text(alphabet=st.characters(exclude_categories=("Cs",)))
    | st.sampled_from(["0.00001", "1e-05", "1e16", "\u0000", '\n\t"\\'])
)
_JSON_VALUES = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=8), _JSON_VALUES, max_size=6))
def test_canonical_json_is_pythons_encoder_on_every_json_object(value: dict[str, object]) -> None:
    # orjson writes the plain objects (installed by streams.codec), Python's encoder the rest:
    # the text is the same either way
    assert chain._sorted_writer is _sorted_json
    assert canonical_json(value) == _definition(value)


@pytest.mark.parametrize(
    "value",
    [
        {"small": 0.00001, "tiny": 1e-7, "large": 1e16, "huge": 1.2345678901234568e20, "zero": -0.0, "edge": 1e-4},
        {"big": 2**64, "negative": -(2**63) - 1},
        {"keys": {2: "a", 1: "b"}, "mixed": [{True: None}]},
        {"nested": [{"b": 1, "a": [0.1, 99.95, "é€😀\u2028\x7f\x00"]}]},
    ],
)
def test_canonical_json_writes_what_orjson_writes_otherwise_as_python_does(value: dict[str, object]) -> None:
    assert canonical_json(value) == _definition(value)


def test_a_value_that_holds_itself_is_refused_as_pythons_encoder_refuses_it() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        canonical_json({"a": cycle})
    shared = [1, 2]
    assert canonical_json({"a": shared, "b": shared}) == b'{"a":[1,2],"b":[1,2]}'


def test_the_core_writes_canonical_json_without_a_writer_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pure core alone (no shell, no orjson): Python's encoder writes everything, the same text
    value = {"b": [1, 0.1, "é"], "a": {"z": None, "y": True}}
    written = canonical_json(value)
    monkeypatch.setattr(chain, "_sorted_writer", None)
    assert canonical_json(value) == written == _definition(value)


def test_every_kind_of_event_the_hub_writes_is_hashed_by_the_fast_path() -> None:
    assert chain._sorted_writer is _sorted_json
    events = agreed().events
    assert len({event.type for event in events}) >= 8
    for event in events:
        data = sealed(event.model_dump(mode="json", exclude={"hash"}))
        assert _plain(data), event.type
        assert canonical_json(data) == _sorted_json(data) == _definition(data)


# -- the chain the decider builds ---------------------------------------------------------------


def test_each_event_links_to_the_previous_one_and_the_state_holds_the_head() -> None:
    # Given a whole negotiation decided by the core
    n = agreed()
    # Then the first event links to the genesis, each next one to the hash before it
    assert n.events[0].previous_hash == GENESIS
    for before, after in zip(n.events, n.events[1:], strict=False):
        assert after.previous_hash == before.hash
    # And every hash is the SHA-256 of the event's canonical JSON without its hash
    assert all(e.hash == event_hash(e) for e in n.events)
    assert len({e.hash for e in n.events}) == len(n.events)
    # And the state's head is the last event's hash, from sequence 1 on
    assert n.s.head_hash == n.events[-1].hash and n.s.chain_from == 1
    assert shared_state(n.s).head_hash == n.s.head_hash


def test_the_hash_of_the_json_as_written_is_the_hash_the_event_carries() -> None:
    # Given every event as JSON on the wire, as any reader gets it
    for event in agreed().events:
        data = json.loads(wire(event))
        # Then its canonical JSON without the hash hashes to the hash it carries (what the audit checks)
        assert json_hash(data) == event.hash
        assert link_problem(data, event.previous_hash if event.previous_hash != GENESIS else None) is None


def test_a_command_decided_again_against_the_same_state_yields_byte_identical_events() -> None:
    # Given a state, and a command that causes two events (an endorsement that reaches the agreement)
    n = Negotiation(item("no-ads"))
    n.invite("m1").position("m1", "no-ads").publish().respond(accept("no-ads")).propose()
    before = copy.deepcopy(n.s)
    command = n.command(Endorse, "m1", decision="accept")
    # When it is decided twice (as after a restart)
    first = decide(before, command, n.context)
    second = decide(copy.deepcopy(before), command, n.context)
    # Then the events are the same bytes, hashes included, and the second links onto the first
    assert [wire(e) for e in first.events] == [wire(e) for e in second.events]
    assert len(first.events) == 2 and first.events[1].previous_hash == first.events[0].hash


def test_demand_versions_and_the_agreement_record_the_head_at_their_event() -> None:
    n = agreed()
    published = next(e for e in n.events if isinstance(e, DemandPublished))
    reached = n.events[-1]
    # Then the version records the hash of its DemandPublished event (the head after it) …
    version = n.s.versions[0]
    assert version.head_hash == published.hash and version.hash == published.version_hash
    # … which the vendor does not see
    assert version_view(n.s, version, VENDOR_SEES).head_hash is None
    assert version_view(n.s, version, COORDINATOR_SEES).head_hash == published.hash
    # And the OCDS release carries the agreement's head: the hash of AgreementReached
    assert reached.type == "AgreementReached"
    assert release(n.s, "ocds-test")["koopkracht"] == {"head_hash": reached.hash, "sequence": reached.sequence}


# -- evolve's links ----------------------------------------------------------------------------


def test_evolve_refuses_an_event_that_does_not_link_to_the_head() -> None:
    n = agreed()
    state = replay(n.events[:5])
    assert state is not None
    forged = n.events[5].model_copy(update={"previous_hash": "f" * 64})
    with pytest.raises(ChainBroken, match=r"event 6 links to f+, not to the chain's head"):
        evolve(state, forged)


def test_evolve_refuses_an_event_without_hashes_once_the_chain_began() -> None:
    n = agreed()
    state = replay(n.events[:5])
    assert state is not None
    stripped = EVENT_ADAPTER.validate_python(json.loads(wire(n.events[5])) | {"previous_hash": None, "hash": None})
    with pytest.raises(ChainBroken, match="carries no hash, after the chain began"):
        evolve(state, stripped)
    assert state.sequence == 5


def unhashed(events: list[Event]) -> list[Event]:
    """The events as written before the log was hashed (DemandPublished then named its version
    hash ``hash``)."""
    old = []
    for event in events:
        data = json.loads(wire(event))
        del data["previous_hash"], data["hash"]
        if data["type"] == "DemandPublished":
            data["hash"] = data.pop("version_hash")
        old.append(EVENT_ADAPTER.validate_json(json.dumps(data)))
    return old


def test_a_negotiation_begun_before_hashing_starts_its_chain_at_its_first_hashed_event() -> None:
    # Given a negotiation whose first events were written before the log was hashed
    n = agreed()
    old = unhashed(n.events[:9])
    assert isinstance(old[8], DemandPublished) and old[8].version_hash == n.events[8].version_hash
    state = replay(old)
    assert state is not None and state.head_hash is None and state.versions[0].head_hash is None
    # When the next command is decided
    command = n.command(RequestClarification, VENDOR, item_key="no-ads", question="Which ads?")
    events = decide(state, command, n.context).events
    # Then its event starts the chain at the genesis, and the state says where the chain began
    assert events[0].previous_hash == GENESIS
    state = evolve(state, events[0])
    assert state.head_hash == events[0].hash and state.chain_from == 10


# -- who sees which hashes ----------------------------------------------------------------------


def test_the_coordinator_sees_every_hash_the_vendor_none_and_a_member_those_of_events_it_sees_whole() -> None:
    n = agreed()
    member = Audience("member", "m2")
    for event in n.events:
        for viewer in (COORDINATOR_SEES, VENDOR_SEES, member):
            data = event_view(n.s, event, viewer)
            if data is None:
                continue
            assert "hash" not in data and "previous_hash" not in data
            hashes = chain_hashes(n.s, event, viewer, data)
            whole = data == event_view(n.s, event, COORDINATOR_SEES)
            if viewer.role == "coordinator" or (viewer.role == "member" and whole):
                assert hashes == (event.previous_hash, event.hash)
            else:
                assert hashes == (None, None)
    # m1's endorsement reached the agreement: m2 sees the outcome, without who, and without its hashes
    reached = event_view(n.s, n.events[-1], member)
    assert reached is not None and "actor_id" not in reached
    assert chain_hashes(n.s, n.events[-1], member, reached) == (None, None)
    assert shared_state(n.s, VENDOR_SEES).head_hash is None
    assert shared_state(n.s, member).head_hash == n.s.head_hash


# -- properties ----------------------------------------------------------------------------------


def random_negotiation(coalition: tuple[list[int], list[tuple[str, str, object]]], script: list[object]) -> Negotiation:
    from tests.unit.test_properties import build

    weights, stated = coalition
    n = build(weights, stated)  # type: ignore[arg-type]
    for step in script:
        take(n, weights, step)  # type: ignore[arg-type]
    return n


def verify(values: list[bytes]) -> int | None:
    """The index of the first event whose JSON does not link and hash right (None: all do)."""
    head: str | None = None
    for index, value in enumerate(values):
        try:
            data = json.loads(value)
        except ValueError:
            return index
        if not isinstance(data, dict) or link_problem(data, head) is not None:
            return index
        head = data.get("hash")
    return None


@FAST
@given(coalition=coalitions(), script=st.lists(steps, min_size=2, max_size=15), data=st.data())
def test_the_head_is_the_last_hash_and_any_flipped_byte_is_found_at_its_event(
    coalition: tuple[list[int], list[tuple[str, str, object]]], script: list[object], data: st.DataObject
) -> None:
    # Given a random negotiation, replayed from its events
    n = random_negotiation(coalition, script)
    state = replay(n.events)
    assert isinstance(state, NegotiationState)
    assert state.head_hash == n.events[-1].hash
    values = [wire(e) for e in n.events]
    assert verify(values) is None
    # When one byte of one event's JSON is flipped
    index = data.draw(st.integers(0, len(values) - 1), label="event")
    position = data.draw(st.integers(0, len(values[index]) - 1), label="byte")
    bit = data.draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]), label="bit")
    tampered = bytearray(values[index])
    tampered[position] ^= bit
    values[index] = bytes(tampered)
    # Then the check names that event — unless the flip left the same JSON value (as 'e' for 'E'
    # in an exponent), which is no change to what the hash covers
    try:
        same = json.loads(values[index]) == json.loads(wire(n.events[index]))
    except ValueError:
        same = False
    assert verify(values) == (None if same else index)


def test_chained_relinks_events_onto_another_head() -> None:
    n = agreed()
    tail = n.events[3:6]
    relinked = chained(tail, "a" * 64)
    assert relinked[0].previous_hash == "a" * 64
    assert [e.sequence for e in relinked] == [e.sequence for e in tail]
    assert all(e.hash == event_hash(e) for e in relinked)
    assert [type(e) for e in relinked] == [type(e) for e in tail]
