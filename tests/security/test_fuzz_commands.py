"""Hostile messages written straight to the commands topic, against a real worker and broker.

Hypothesis draws a batch of messages (garbage bytes, broken JSON, JSON of the wrong shape,
commands with absurd numbers, huge strings, deep nesting, unknown types, negative weights, odd
ids, and actors that claim a part they do not have); they go to the commands topic as they are.
Then:

* the worker is still running and decides a valid command sent after them;
* each message the worker cannot read (or that is under the wrong key) is in the dead letters,
  and only those;
* each command it can read got the result the pure core gives when it decides the same commands
  in the same order, so the worker accepts nothing the core refuses; and no accepted event has an
  actor without a part in the negotiation.

Hypothesis only draws the batch (derandomized, so the batch is the same every run); the broker
round trip happens once for the whole batch.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.kafka.topics import ensure_topics
from schemas.commands import Actor, Command, InviteMember, OpenNegotiation
from schemas.deadletters import DeadLetter
from schemas.negotiation import RequirementItem
from schemas.results import CommandAccepted, CommandRejected, CommandResult
from schemas.topics import COMMAND_RESULTS, DEAD_LETTERS, EVENTS
from streams.app import NegotiationWorker, WorkerConfig
from streams.client import CommandClient
from streams.codec import decode_command, decode_event_value
from streams.core.decider import Context, Rejection, decide
from streams.core.state import NegotiationState, evolve
from tests.integration.harness import ResultCollector, read_topic, wait_until

NID = "fz-1"
COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")
ITEMS = (
    RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),
    RequirementItem(key="retention", title="Retention", kind="at_most", unit="days", category="privacy"),
    RequirementItem(key="location", title="Location", kind="one_of", options=("NL", "EU"), category="privacy"),
)
SETUP: list[Command] = [
    OpenNegotiation(
        command_id="setup-open",
        negotiation_id=NID,
        actor=COORDINATOR,
        title="Fuzzed",
        vendor_id="vendor",
        vendor_name="Vendor",
        items=ITEMS,
    ),
    *(
        InviteMember(
            command_id=f"setup-invite-{m}", negotiation_id=NID, actor=COORDINATOR, organisation_id=m, name=m, weight=2
        )
        for m in ("m-1", "m-2")
    ),
]


def _member(m: str) -> Actor:
    return Actor(organisation_id=m, role="member", name=m)


VALID = [
    {
        "type": "StatePosition",
        "actor": _member("m-1"),
        "item_key": "retention",
        "position": {"priority": "must", "value": 30},
    },
    {
        "type": "StatePosition",
        "actor": _member("m-2"),
        "item_key": "location",
        "position": {"priority": "must", "accepted": ["NL"]},
    },
    {"type": "StatePosition", "actor": _member("m-2"), "item_key": "no-ads", "position": {"priority": "must"}},
    {"type": "PublishDemand", "actor": COORDINATOR},
    {
        "type": "RequestClarification",
        "actor": Actor(organisation_id="vendor", role="vendor", name="V"),
        "item_key": "retention",
        "question": "Why?",
    },
    {"type": "AnswerClarification", "actor": COORDINATOR, "clarification_id": 1, "answer": "Because."},
    {
        "type": "StatePosition",
        "actor": _member("m-1"),
        "item_key": "retention",
        "position": {"priority": "must", "value": 14.5},
    },
    {"type": "PublishDemand", "actor": COORDINATOR},
]
"""Valid commands woven through the batch, so that the hostile ones meet the negotiation in
several phases and the batch holds accepted commands too."""

# -- what hostile messages are made of ----------------------------------------------------------

RAW_NUMBERS = [
    "1e999999999",
    "-1e999999999",
    "1E+5000000",
    "1e-999999999",
    "NaN",
    "Infinity",
    "-Infinity",
    "9" * 5000,
    "1" + "0" * 16,
    "-5",
    "0",
    "5e-324",
    "1e308",
    "0.1",
    "30",
    "1.00000000000000000000001",
]
"""Numbers as JSON text, some of which no JSON encoder would write."""
NUMBER_FIELDS: dict[str, list[tuple[str, ...]]] = {
    "InviteMember": [("weight",)],
    "ChangePolicy": [("policy", "inclusion_share"), ("policy", "coverage")],
    "StatePosition": [("position", "value")],
    "RespondToDemand": [("demand_version",), ("items", "0", "value")],
    "AnswerClarification": [("clarification_id",)],
    "OpenNegotiation": [("policy", "endorsement_share")],
}
"""Where each command type has a number (a path into the document)."""
ODD_IDS = ["fz-1", "a/b", "x" * 65, "", " ", "é", "\u0000", "fz-1\n", "../fz-1", "fz 1", "FZ-1", "m-1", "outsider"]
ACTOR_IDS = ["coop", "vendor", "m-1", "m-2", "outsider", "m-3"]
ROLES = ["coordinator", "member", "vendor", "admin", "root"]
TYPES = [
    "OpenNegotiation",
    "InviteMember",
    "ChangePolicy",
    "StatePosition",
    "WithdrawPosition",
    "PublishDemand",
    "RespondToDemand",
    "RequestClarification",
    "AnswerClarification",
    "ProposeAgreement",
    "Endorse",
    "Abandon",
    "Bribe",
    "",
]

OWN_ACTORS = {
    "StatePosition": ["m-1", "m-2"],
    "WithdrawPosition": ["m-1", "m-2"],
    "Endorse": ["m-1", "m-2"],
    "RespondToDemand": ["vendor"],
    "RequestClarification": ["vendor"],
}
"""Who may send a command type (the coordinator sends the rest): a hostile actor is anyone."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def commands(draw: st.DrawFn) -> dict[str, Any]:
    """A command-shaped document: the right fields for its type, hostile values here and there."""
    # Each field is hostile one time in six (not at 0: Hypothesis favours the ends of a range)
    hostile = st.integers(0, 5).map(lambda roll: roll == 3)
    kind = draw(st.sampled_from(TYPES)) if draw(hostile) else draw(st.sampled_from(TYPES[:-2]))
    own = OWN_ACTORS.get(kind, ["coop"])
    actor = {
        "organisation_id": draw(st.sampled_from(ACTOR_IDS if draw(hostile) else own)),
        "role": draw(st.sampled_from(ROLES)),
        "name": draw(st.sampled_from(["x" * 201, ""])) if draw(hostile) else "Org",
    }
    negotiation_id = draw(st.sampled_from(["fz-other", *ODD_IDS])) if draw(hostile) else NID
    document: dict[str, Any] = {"type": kind, "command_id": "ID", "negotiation_id": negotiation_id, "actor": actor}
    item_key = draw(st.sampled_from(["no-ads", "retention", "location", "unknown", "Retention", "x" * 70]))
    if kind == "OpenNegotiation":
        document |= {"title": "T", "vendor_id": draw(st.sampled_from(ACTOR_IDS)), "vendor_name": "V"}
        document["items"] = [item.model_dump(mode="json") for item in ITEMS]
    elif kind == "InviteMember":
        document |= {"organisation_id": draw(st.sampled_from(ODD_IDS + ACTOR_IDS)), "name": "N", "weight": 1}
    elif kind == "ChangePolicy":
        document["policy"] = {"inclusion_share": draw(st.sampled_from([0.5, "2/3", "1/0", "9" * 5000 + "/1"]))}
    elif kind in ("StatePosition", "WithdrawPosition", "RequestClarification"):
        document["item_key"] = item_key
        if kind == "StatePosition":
            document["position"] = {"priority": draw(st.sampled_from(["must", "could", "never"])), "value": 7}
            if item_key == "location":
                document["position"] = {"priority": "must", "accepted": draw(st.sampled_from([["NL"], ["MARS"], []]))}
        if kind == "RequestClarification":
            document["question"] = draw(st.sampled_from(["Why?", "q" * 4001]))
    elif kind == "RespondToDemand":
        document["demand_version"] = 1
        document["items"] = [{"key": item_key, "verdict": "counter", "value": 3}]
    elif kind == "AnswerClarification":
        document |= {"clarification_id": 1, "answer": "A"}
    elif kind == "Endorse":
        document["decision"] = draw(st.sampled_from(["accept", "reject", "maybe"]))
    # Absurd values in the numeric fields, written as raw JSON text where JSON cannot say them
    for path in NUMBER_FIELDS.get(kind, []):
        if draw(st.integers(0, 2)) == 1:
            target = document
            for step in path[:-1]:
                target = target[int(step)] if isinstance(target, list) else target.setdefault(step, {})
            target[path[-1]] = f"RAW:{draw(st.sampled_from(RAW_NUMBERS))}"
    if draw(st.integers(0, 9)) == 7:  # deep nesting in a field
        document["rationale" if kind == "StatePosition" else "comment"] = "NEST"
    if draw(st.integers(0, 9)) == 7:  # an unknown field
        document[draw(st.sampled_from(["extra", "__proto__", "role"]))] = draw(json_values)
    return document


def _raw(document: dict[str, Any], command_id: str) -> bytes:
    document = {**document, "command_id": command_id}
    text = json.dumps(document)
    for raw in RAW_NUMBERS:
        text = text.replace(f'"RAW:{raw}"', raw)
    return text.replace('"NEST"', "[" * 5000 + "]" * 5000).encode()


messages = st.one_of(
    st.tuples(st.just("garbage"), st.binary(max_size=64)),
    st.tuples(st.just("broken"), st.sampled_from(['{"type": "StatePosition", ', "[", '{"a": 1}}', "\xff\xfe", "nul"])),
    st.tuples(st.just("shape"), json_values),
    st.tuples(st.just("command"), commands()),
    st.tuples(st.just("command"), commands()),
    st.tuples(st.just("command"), commands()),
)


def hostile_batch() -> list[tuple[bytes | None, bytes]]:
    """The batch Hypothesis draws: (key, value) per message, the same every run."""
    drawn: list[tuple[str, Any, int]] = []

    @settings(
        max_examples=150,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(messages, st.integers(0, 9))
    def draw(message: tuple[str, Any], roll: int) -> None:
        drawn.append((*message, roll))

    draw()
    batch: list[tuple[bytes | None, bytes]] = []
    for n, valid in enumerate(VALID):
        document = {**valid, "negotiation_id": NID, "actor": valid["actor"].model_dump()}
        drawn.insert(n * len(drawn) // len(VALID), ("command", document, 2))
    for i, (kind, content, roll) in enumerate(drawn):
        if kind == "garbage":
            batch.append((NID.encode(), content))
        elif kind == "broken":
            batch.append((NID.encode(), content.encode("utf-8", "surrogateescape")))
        elif kind == "shape":
            batch.append((NID.encode(), json.dumps(content).encode()))
        else:
            # Mostly a fresh command id; now and then the id of an earlier one (a replay)
            command_id = f"h-{i}" if roll else f"h-{max(0, i - 3)}"
            key = content["negotiation_id"] if roll != 1 else NID  # roll 1: perhaps the wrong key
            batch.append((key.encode("utf-8", "surrogateescape") if key else None, _raw(content, command_id)))
    return batch


# -- the test ------------------------------------------------------------------------------------


@pytest.fixture
async def worker(
    kafka_bootstrap: str, topic_prefix: str
) -> AsyncIterator[tuple[NegotiationWorker, asyncio.Task[None]]]:
    await ensure_topics(kafka_bootstrap, topic_prefix)
    running = NegotiationWorker(WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix))
    stop = asyncio.Event()
    task = asyncio.create_task(running.run(stop))
    await asyncio.wait_for(running.ready.wait(), 60)
    yield running, task
    stop.set()
    await asyncio.wait_for(task, 30)


def _readable(key: bytes | None, value: bytes) -> Command | None:
    """The command the worker must decide, or None: it must be dead-lettered."""
    try:
        command = decode_command(value)
    except Exception:
        return None
    return command if key == command.negotiation_id.encode() else None


def _core_result(state: NegotiationState | None, command: Command) -> tuple[CommandResult, NegotiationState | None]:
    try:
        decision = decide(state, command, Context(now=datetime.now(UTC)))
    except Rejection as r:
        rejected = CommandRejected(
            command_id=command.command_id,
            negotiation_id=command.negotiation_id,
            status=r.status,  # type: ignore[arg-type]
            title=r.title,
            detail=r.detail,
            field=r.field,
        )
        return rejected, state
    for event in decision.events:
        state = evolve(state, event)
    return decision.result, state


def _outcome(result: CommandResult) -> tuple[str, int | None, bool]:
    if isinstance(result, CommandRejected):
        return "rejected", result.status, False
    assert isinstance(result, CommandAccepted)
    return "accepted", None, result.duplicate


@pytest.mark.timeout(240)
async def test_hostile_commands_are_dead_lettered_or_decided_as_the_core_decides(
    worker: tuple[NegotiationWorker, asyncio.Task[None]], kafka_bootstrap: str, topic_prefix: str
) -> None:
    _, task = worker
    batch = hostile_batch()
    assert len(batch) >= 100
    async with ResultCollector(kafka_bootstrap, COMMAND_RESULTS.name(topic_prefix)) as results:
        async with CommandClient(kafka_bootstrap, topic_prefix) as client:
            # Given a negotiation with a coordinator, two members and a vendor
            for command in SETUP:
                assert isinstance(await client.send(command, timeout=30), CommandAccepted)
            # When the hostile batch is written to the commands topic as it is
            sent = [(key, value, await client.send_raw(key, value)) for key, value in batch]
            # Then the worker is alive and still decides a valid command after it (in a negotiation
            # of its own: the batch may legitimately have ended the fuzzed one, e.g. by an Abandon)
            after = OpenNegotiation(
                command_id="after-the-batch",
                negotiation_id=f"{NID}-after",
                actor=COORDINATOR,
                title="After the batch",
                vendor_id="vendor",
                vendor_name="Vendor",
                items=ITEMS,
            )
            answer = await client.send(after, timeout=60)
        assert not task.done(), task
        assert isinstance(answer, CommandAccepted), answer
        readable = [(_readable(key, value), meta) for key, value, meta in sent]
        expected_results = sum(command is not None for command, _ in readable)
        await wait_until(
            lambda: sum(len(r) for k, r in results.results.items() if k.startswith("h-")) >= expected_results,
            60,
            "a result for each readable command",
        )

    # And what it cannot read is in the dead letters, and only that
    letters = [
        DeadLetter.model_validate_json(r.value)
        for r in await read_topic(kafka_bootstrap, DEAD_LETTERS.name(topic_prefix))
    ]
    lettered = {(letter.partition, letter.offset) for letter in letters}
    unreadable = {(meta.partition, meta.offset) for command, meta in readable if command is None}
    assert lettered == unreadable
    assert all(letter.reason for letter in letters)

    # And each readable command got the core's result, deciding the same commands in the same order
    states: dict[str, NegotiationState | None] = defaultdict(lambda: None)
    for command in SETUP:
        _, states[NID] = _core_result(states[NID], command)
    expected: dict[str, list[tuple[str, int | None, bool]]] = defaultdict(list)
    for command, _ in readable:
        if command is not None:
            result, states[command.negotiation_id] = _core_result(states[command.negotiation_id], command)
            expected[command.command_id].append(_outcome(result))
    got = {k: [_outcome(r) for r in rs] for k, rs in results.results.items() if k.startswith("h-")}
    assert got == dict(expected)
    assert any(o[0] == "accepted" for os in got.values() for o in os), "the batch should hold some valid commands"
    assert any(o[0] == "rejected" for os in got.values() for o in os)

    # And every event of the fuzzed negotiation has an actor with a part in it
    events = [
        decode_event_value(r.value)
        for r in await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix))
        if r.key == NID.encode()
    ]
    state: NegotiationState | None = None
    for event in events:
        if state is not None:
            assert state.role_of(event.actor_id) is not None, event
        state = evolve(state, event)
    assert state is not None
