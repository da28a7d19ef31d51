"""The worker is the single writer of each negotiation, and a crash loses or doubles nothing."""

from __future__ import annotations

import json
import signal
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from infra.kafka.topics import ensure_topics
from schemas.events import Event
from schemas.topics import COMMANDS, EVENTS, STATE
from streams.codec import decode_event, decode_result
from streams.core.state import replay
from streams.core.views import shared_state
from tests.integration.harness import (
    ResultCollector,
    WorkerProcess,
    comparable,
    expected_states,
    latest_states,
    produce_commands,
    read_topic,
    script,
    timeless,
    wait_until,
)

pytestmark = pytest.mark.slow


async def group_stable(bootstrap: str, group: str, members: int) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    except GroupCoordinatorNotAvailableError:  # the broker is still electing the coordinator
        return False
    finally:
        await admin.close()
    _error, _group, state, _protocol_type, _protocol, found, *_ = response.groups[0]
    return len(found) == members and state == "Stable"


def events_by_negotiation(records: list) -> dict[str, list[Event]]:  # type: ignore[type-arg]
    grouped: dict[str, list[Event]] = defaultdict(list)
    for record in records:
        event = decode_event(record.headers, record.value)
        grouped[event.negotiation_id].append(event)
    return grouped


async def test_a_sigkilled_worker_resumes_with_every_command_applied_exactly_once(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # Given 10,000 commands over 200 negotiations on the commands topic
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=200, commands=10_000, seed=4)
    await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)

    async with ResultCollector(kafka_bootstrap, f"{topic_prefix}.command-results") as results:
        # When the worker is SIGKILLed midway: in the middle of a batch, after that batch's events
        # reached the log inside its transaction, before its results and offsets (a fault point)
        worker = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "w1", sigkill_after_commands=4_321).start()
        try:
            assert worker.wait_exit(120) == -9, worker.log_tail()
        finally:
            worker.stop()
        # ...and started again
        worker = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "w2").start()
        try:
            await wait_until(
                lambda: len(results) == len(expected.commands),
                180,
                lambda: "every command's result\n" + worker.diagnose(),
            )
        finally:
            worker.stop()

    # Then every command has the result the pure core gives it, given exactly once: the killed
    # batch's transaction never committed, so none of its answers was ever seen, and the restart
    # decided its commands again as if for the first time
    for command in expected.commands:
        assert results.results[command.command_id] == [expected.results[command.command_id]], command

    # And the events the killed batch had written are in the log, aborted: a committed read skips them
    committed = await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix))
    everything = await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix), "read_uncommitted")
    print(f"{len(everything) - len(committed)} events of the killed batch aborted")
    assert len(everything) > len(committed), "the kill should have left the batch's events in the log, aborted"

    # And the events topic holds each accepted command's events exactly once, gapless per negotiation
    events = events_by_negotiation(committed)
    ids = Counter(e.event_id for es in events.values() for e in es)
    assert ids.most_common(1)[0][1] == 1, "an event was written twice"
    for nid, want_events in expected.events.items():
        got = events[nid]
        assert [e.sequence for e in got] == list(range(1, len(got) + 1)), nid
        assert [comparable(e) for e in got] == [comparable(e) for e in want_events], nid

    # And the state topic's latest documents equal a pure replay of the events topic
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    replayed = {nid: shared_state(replay(es)) for nid, es in events.items()}  # type: ignore[arg-type]
    assert states == replayed
    assert timeless(states) == timeless(expected_states(expected))


async def test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_dies(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # Given two workers in one consumer group
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=80, commands=4_000, seed=5)
    first = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "a", name="a").start()
    second = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "b", name="b").start()
    try:
        await wait_until(
            lambda: group_stable(kafka_bootstrap, f"{topic_prefix}-worker", 2),
            90,
            lambda: "both workers in the group\n" + first.log_tail() + second.log_tail(),
        )

        async with ResultCollector(kafka_bootstrap, f"{topic_prefix}.command-results") as results:
            # When commands flow and one worker is killed midway
            await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)
            await wait_until(lambda: len(results) >= 1_000, 120, "the first 1,000 results")
            first.kill()
            # Then the survivor takes over its negotiations and every command is answered
            await wait_until(
                lambda: len(results) == len(expected.commands),
                180,
                lambda: "every command's result\n" + second.diagnose(),
            )

        # And the state documents the dead worker still held back (at most one interval's worth)
        # are published by the survivor once it has taken over the dead worker's partitions
        async def states_converged() -> bool:
            return timeless(latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))) == want_states

        want_states = timeless(expected_states(expected))
        await wait_until(states_converged, 90, lambda: "the latest state documents\n" + second.diagnose())
    finally:
        first.stop()
        second.stop()

    # And the outcome is the same as with one worker and no failure
    events = events_by_negotiation(await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix)))
    for nid, want_events in expected.events.items():
        assert [comparable(e) for e in events[nid]] == [comparable(e) for e in want_events], nid
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    assert timeless(states) == timeless(expected_states(expected))


def _stopped(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    return any(line.startswith("State:") and "T" in line.split()[1] for line in status.splitlines())


def _assigned_everything(worker: WorkerProcess, after: int) -> bool:
    """Whether the worker's log, past ``after`` lines, says it was handed all the partitions and rebuilt them."""
    lines = (worker.data_dir / f"{worker.name}.log").read_text(errors="replace").splitlines()[after:]
    assigned = recovered = False
    for line in lines:
        if '"partitions assigned"' in line and json.loads(line).get("partitions") == list(range(8)):
            assigned, recovered = True, False
        elif assigned and '"tables recovered"' in line:
            recovered = True
    return assigned and recovered


async def test_a_worker_paused_past_its_session_writes_nothing_beside_its_successor(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # Given two workers in one group, one of which will pause itself (SIGSTOP) in the middle of a
    # batch, with its transactions open: a zombie to be
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=80, commands=4_000, seed=6)
    zombie = WorkerProcess(
        kafka_bootstrap, topic_prefix, tmp_path / "z", name="zombie", sigstop_after_commands=1_200
    ).start()
    successor = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "s", name="successor").start()
    try:
        await wait_until(
            lambda: group_stable(kafka_bootstrap, f"{topic_prefix}-worker", 2), 90, "both workers in the group"
        )
        async with ResultCollector(kafka_bootstrap, f"{topic_prefix}.command-results") as results:
            # When the commands flow, the zombie pauses mid-batch, and its session runs out
            await produce_commands(kafka_bootstrap, COMMANDS.name(topic_prefix), expected.commands)
            assert zombie.proc is not None
            await wait_until(lambda: _stopped(zombie.proc.pid), 120, lambda: "the zombie paused\n" + zombie.log_tail())  # type: ignore[union-attr]
            seen = len((successor.data_dir / "successor.log").read_text().splitlines())
            await wait_until(
                lambda: _assigned_everything(successor, seen),
                90,
                lambda: "the successor taking over every partition\n" + successor.log_tail(),
            )
            # And the successor answers every command, the zombie's unfinished batch included
            await wait_until(
                lambda: len(results) == len(expected.commands),
                180,
                lambda: "every command's result\n" + successor.diagnose(),
            )
            # When the zombie resumes and tries to finish its batch
            zombie.proc.send_signal(signal.SIGCONT)
            exit_code = zombie.wait_exit(60)
            # Then it was fenced: it says so and stops
            assert exit_code != 0
            assert "fenced: another worker took over" in (zombie.data_dir / "zombie.log").read_text(), zombie.log_tail()
            for command in expected.commands:
                assert results.results[command.command_id] == [expected.results[command.command_id]], command
    finally:
        zombie.stop()
        successor.stop()

    # And the topics themselves, read uncommitted too, hold no result the zombie wrote after it
    # resumed: each command's result is there once, from the successor
    written = Counter(
        decode_result(r.value).command_id
        for r in await read_topic(kafka_bootstrap, f"{topic_prefix}.command-results", "read_uncommitted")
    )
    assert set(written.values()) == {1}, written.most_common(3)
    # And the events topic holds each event once, gapless, exactly what one worker would write
    events = events_by_negotiation(await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix)))
    assert Counter(e.event_id for es in events.values() for e in es).most_common(1)[0][1] == 1
    for nid, want_events in expected.events.items():
        assert [comparable(e) for e in events[nid]] == [comparable(e) for e in want_events], nid
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    assert timeless(states) == timeless(expected_states(expected))
