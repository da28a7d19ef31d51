"""The worker is the single writer of each negotiation, and a crash loses or doubles nothing."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupCoordinatorNotAvailableError

from infra.kafka.topics import ensure_topics
from schemas.events import Event
from schemas.topics import COMMANDS, EVENTS, STATE
from streams.codec import decode_event
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
    wait_until,
)

pytestmark = pytest.mark.slow


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
    assert states == expected_states(expected)


async def test_two_workers_share_the_partitions_and_one_takes_over_when_the_other_dies(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    # Given two workers in one consumer group
    await ensure_topics(kafka_bootstrap, topic_prefix)
    expected = script(negotiations=80, commands=4_000, seed=5)
    first = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "a", name="a").start()
    second = WorkerProcess(kafka_bootstrap, topic_prefix, tmp_path / "b", name="b").start()
    try:

        async def both_assigned() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
            await admin.start()
            try:
                (response,) = await admin.describe_consumer_groups([f"{topic_prefix}-worker"])
            except GroupCoordinatorNotAvailableError:  # the broker is still electing the coordinator
                return False
            finally:
                await admin.close()
            _error, _group, state, _protocol_type, _protocol, members, *_ = response.groups[0]
            return len(members) == 2 and state == "Stable"

        await wait_until(both_assigned, 90, "both workers in the group\n" + first.log_tail() + second.log_tail())

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
            return latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix))) == want_states

        want_states = expected_states(expected)
        await wait_until(states_converged, 90, lambda: "the latest state documents\n" + second.diagnose())
    finally:
        first.stop()
        second.stop()

    # And the outcome is the same as with one worker and no failure
    events = events_by_negotiation(await read_topic(kafka_bootstrap, EVENTS.name(topic_prefix)))
    for nid, want_events in expected.events.items():
        assert [comparable(e) for e in events[nid]] == [comparable(e) for e in want_events], nid
    states = latest_states(await read_topic(kafka_bootstrap, STATE.name(topic_prefix)))
    assert states == expected_states(expected)
