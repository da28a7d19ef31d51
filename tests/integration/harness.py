"""Helpers for tests that run the worker against the real broker.

``script`` writes a realistic, deterministic command stream: for each negotiation it plays a
coordinator, members and a vendor against the pure core, so it knows which commands are accepted
and which are refused, and what events and final state the pure core produces. The distributed
pipeline must then produce exactly that, whatever crashes happen in between.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas.commands import (
    Actor,
    AnswerClarification,
    ChangePolicy,
    Command,
    Endorse,
    InviteMember,
    OpenNegotiation,
    ProposeAgreement,
    PublishDemand,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    WithdrawPosition,
)
from schemas.documents import SharedState
from schemas.events import Event
from schemas.negotiation import ItemResponse, Policy, Position, RequirementItem
from schemas.results import CommandAccepted, CommandRejected, CommandResult
from streams.codec import encode_command
from streams.connection import KafkaConnection
from streams.core.decider import Context, Rejection, decide
from streams.core.state import NegotiationState, evolve
from streams.core.views import shared_state

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, tzinfo=UTC)
ITEMS = (
    RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),
    RequirementItem(key="retention-days", title="Retention", kind="at_most", unit="days", category="privacy"),
    RequirementItem(key="sla", title="Availability", kind="at_least", unit="percent", category="security"),
    RequirementItem(
        key="location", title="Data location", kind="one_of", options=("NL", "EU", "EEA"), category="privacy"
    ),
)
COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")
VENDOR = Actor(organisation_id="vendor", role="vendor", name="Vendor")


def member(i: int) -> Actor:
    return Actor(organisation_id=f"member-{i}", role="member", name=f"Member {i}")


@dataclass
class Expected:
    """What the pure core says a script does."""

    commands: list[Command] = field(default_factory=list)
    results: dict[str, CommandResult] = field(default_factory=dict)
    events: dict[str, list[Event]] = field(default_factory=lambda: defaultdict(list))
    states: dict[str, NegotiationState] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return sum(isinstance(r, CommandAccepted) for r in self.results.values())


def _random_position(rng: random.Random, item: RequirementItem) -> Position:
    priority = rng.choice(["must", "must", "should", "could"])
    if item.kind == "boolean":
        return Position(priority=priority)
    if item.kind == "one_of":
        assert item.options is not None
        if rng.random() < 0.05:
            return Position(priority=priority, accepted=("MARS",))  # refused: unknown option
        return Position(priority=priority, accepted=tuple(rng.sample(item.options, rng.randint(1, 3))))
    return Position(priority=priority, value=rng.choice([7, 14, 30, 90, 99.5, 99.9]))


def _random_response(rng: random.Random, state: NegotiationState) -> RespondToDemand | None:
    version = state.latest_version
    if version is None:
        return None
    answers = []
    for item in version.items:
        if rng.random() < 0.3:
            continue
        verdict = rng.choice(["accept", "accept", "reject", "counter"])
        if verdict == "counter" and item.kind == "boolean":
            verdict = "accept"
        value = (
            rng.choice([10, 30, 99.0, 99.95]) if verdict == "counter" and item.kind in ("at_most", "at_least") else None
        )
        option = rng.choice(list(item.options or ())) if verdict == "counter" and item.kind == "one_of" else None
        answers.append(ItemResponse(key=item.key, verdict=verdict, value=value, option=option))
    if not answers:
        answers.append(ItemResponse(key=version.items[0].key, verdict="reject"))
    return RespondToDemand(
        command_id="pending",
        negotiation_id="pending",
        actor=VENDOR,
        demand_version=version.version,
        items=tuple(answers),
    )


def script(negotiations: int, commands: int, seed: int = 1) -> Expected:
    """About ``commands`` commands over ``negotiations`` negotiations, interleaved at random."""
    rng = random.Random(seed)
    per = max(10, commands // negotiations)
    expected = Expected()
    streams: list[list[Command]] = []
    for n in range(negotiations):
        nid = f"neg-{seed}-{n}"
        state: NegotiationState | None = None
        members = 6
        planned: list[Command] = []
        counter = 0

        def issue(command: Command) -> None:
            nonlocal state, counter
            counter += 1
            command = command.model_copy(update={"command_id": f"{nid}-c{counter}", "negotiation_id": nid})
            planned.append(command)
            try:
                decision = decide(state, command, Context(now=NOW))
            except Rejection as r:
                expected.results[command.command_id] = CommandRejected(
                    command_id=command.command_id,
                    negotiation_id=nid,
                    status=r.status,  # type: ignore[arg-type]
                    title=r.title,
                    detail=r.detail,
                    field=r.field,
                )
                return
            for event in decision.events:
                state = evolve(state, event)
                expected.events[nid].append(event)
            expected.results[command.command_id] = decision.result

        base: dict[str, Any] = {"command_id": "pending", "negotiation_id": "pending"}
        issue(
            OpenNegotiation(
                **base,
                actor=COORDINATOR,
                title=f"Negotiation {n}",
                vendor_id="vendor",
                vendor_name="Vendor",
                items=ITEMS,
            )
        )
        for i in range(members):
            issue(
                InviteMember(
                    **base,
                    actor=COORDINATOR,
                    organisation_id=f"member-{i}",
                    name=f"Member {i}",
                    weight=rng.randint(1, 40),
                )
            )
        while counter < per - 4:
            assert state is not None
            roll = rng.random()
            if roll < 0.55:
                item = rng.choice(ITEMS)
                issue(
                    StatePosition(
                        **base,
                        actor=member(rng.randrange(members)),
                        item_key=item.key,
                        position=_random_position(rng, item),
                    )
                )
            elif roll < 0.62:
                issue(WithdrawPosition(**base, actor=member(rng.randrange(members)), item_key=rng.choice(ITEMS).key))
            elif roll < 0.70:
                issue(PublishDemand(**base, actor=COORDINATOR))
            elif roll < 0.82:
                response = _random_response(rng, state)
                if response is not None:
                    issue(response.model_copy(update=base))
            elif roll < 0.86:
                issue(
                    RequestClarification(
                        **base, actor=VENDOR, item_key=rng.choice(ITEMS).key, question="What is meant?"
                    )
                )
            elif roll < 0.90 and state.clarifications:
                issue(
                    AnswerClarification(
                        **base,
                        actor=COORDINATOR,
                        clarification_id=rng.choice(list(state.clarifications)),
                        answer="This.",
                    )
                )
            elif roll < 0.94:
                issue(ChangePolicy(**base, actor=COORDINATOR, policy=Policy(coverage=rng.choice([1, 0.8, 0.5]))))
            else:
                issue(InviteMember(**base, actor=member(0), organisation_id="x", name="X"))  # refused: 403
        issue(ProposeAgreement(**base, actor=COORDINATOR))
        for i in range(3):
            issue(Endorse(**base, actor=member(i), decision=rng.choice(["accept", "accept", "reject"])))
        assert state is not None
        expected.states[nid] = state
        streams.append(planned)
    # Interleave the negotiations, keeping each one's order.
    cursors = [0] * len(streams)
    live = [i for i, s in enumerate(streams) if s]
    while live:
        i = rng.choice(live)
        expected.commands.append(streams[i][cursors[i]])
        cursors[i] += 1
        if cursors[i] == len(streams[i]):
            live.remove(i)
    return expected


async def produce_commands(bootstrap: str, topic: str, commands: Iterable[Command]) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    count = 0
    try:
        futures = []
        for command in commands:
            futures.append(
                await producer.send(topic, key=command.negotiation_id.encode(), value=encode_command(command))
            )
            count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


async def read_topic(
    bootstrap: KafkaConnection | str, topic: str, isolation_level: str = "read_committed"
) -> list[Any]:
    """Every record of a topic, from the beginning to its current end (committed records only,
    unless ``isolation_level`` is ``read_uncommitted``: then aborted ones too)."""
    kafka = KafkaConnection.of(bootstrap)
    consumer = kafka.consumer(enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    try:
        admin = kafka.admin()
        await admin.start()
        try:
            (description,) = await admin.describe_topics([topic])
        finally:
            await admin.close()
        partitions = {p["partition"] for p in description["partitions"]}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        async with asyncio.timeout(120):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for rs in batch.values():
                    records.extend(rs)
        return records
    finally:
        await consumer.stop()


async def wait_until(condition: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> None:
    """Poll an async or plain condition until it holds; fail with ``what`` after ``timeout`` s."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what if isinstance(what, str) else what()}"
            )
        await asyncio.sleep(0.2)


class ResultCollector:
    """Reads the command-results topic in the background."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.results: dict[str, list[CommandResult]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ResultCollector:
        from streams.codec import decode_result

        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()

        async def run() -> None:
            try:
                while True:
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            result = decode_result(record.value)
                            self.results[result.command_id].append(result)
            finally:
                await consumer.stop()

        self._task = asyncio.create_task(run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass

    def __len__(self) -> int:
        return len(self.results)


@dataclass
class WorkerProcess:
    """``koopkracht worker`` as a child process, with the test's bootstrap and topic prefix."""

    bootstrap: str
    prefix: str
    data_dir: Path
    name: str = "worker"
    proc: subprocess.Popen[bytes] | None = None
    sigkill_after_commands: int | None = None
    sigstop_after_commands: int | None = None

    def start(self) -> WorkerProcess:
        env = {
            **os.environ,
            "KOOPKRACHT_KAFKA_BOOTSTRAP": self.bootstrap,
            "KOOPKRACHT_TOPIC_PREFIX": self.prefix,
            "KOOPKRACHT_DATA_DIR": str(self.data_dir),
            "KOOPKRACHT_LOG_FORMAT": "json",
            "KOOPKRACHT_LOG_LEVEL": os.environ.get("KK_WORKER_LOG", "info"),
        }
        if self.sigkill_after_commands is not None:
            env["KOOPKRACHT_FAULT_SIGKILL_AFTER_COMMANDS"] = str(self.sigkill_after_commands)
        if self.sigstop_after_commands is not None:
            env["KOOPKRACHT_FAULT_SIGSTOP_AFTER_COMMANDS"] = str(self.sigstop_after_commands)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT
        )
        return self

    def wait_exit(self, timeout: float) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def diagnose(self) -> str:
        """The log's end and, when py-spy is installed, where the worker is stuck."""
        import shutil

        text = self.log_tail()
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if self.proc is not None and self.proc.poll() is None and Path(spy).exists():
            dump = subprocess.run(
                [spy, "dump", "--pid", str(self.proc.pid)], capture_output=True, text=True, check=False
            )
            text += "\n" + dump.stdout[-6000:]
        return text

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def latest_states(records: list[Any]) -> dict[str, SharedState]:
    latest: dict[str, SharedState] = {}
    for record in records:
        latest[record.key.decode()] = SharedState.model_validate_json(record.value)
    return latest


def comparable(event: Event) -> dict[str, Any]:
    """An event without its time (the worker's clock is not the script's), nor its hashes, which
    cover the time (the chain is checked by replaying the worker's events: ``evolve`` checks links)."""
    return event.model_dump(mode="json", exclude={"occurred_at", "previous_hash", "hash"})


def timeless(states: dict[str, SharedState]) -> dict[str, SharedState]:
    """State documents without their head hash, which covers the events' times (see ``comparable``)."""
    return {nid: state.model_copy(update={"head_hash": None}) for nid, state in states.items()}


def expected_states(expected: Expected) -> dict[str, SharedState]:
    return {nid: shared_state(state) for nid, state in expected.states.items()}
