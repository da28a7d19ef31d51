"""Benchmark: how long a partition with a long history takes to come back into service (not a test).

Run: ``python -m tests.bench.recovery [--bootstrap HOST:PORT] [--events 1000000] [--after 10000]``
(``make bench`` runs it as part of the suite). It writes ``--events`` events into partition 0 of a
fresh events topic (a base of realistic negotiations played through the pure core, copied under
new negotiation ids until there are enough), and then measures, in one run:

1. **replay**: a cold worker rebuilding the partition from the events alone (as before snapshots,
   and as after a change to the pure core, which invalidates snapshots);
2. **snapshot**: that worker snapshotting every negotiation of the partition, with a checkpoint;
3. **recovery**: after ``--after`` more events (what the worker lets pass before it snapshots a
   negotiation again, ``snapshot_lag_events``), a new worker fencing the partition and rebuilding
   it from the snapshots and the events after the checkpoint — the time until it could decide.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from infra.kafka.topics import ensure_topics
from schemas.topics import COMMANDS, EVENTS
from streams.app import COMMAND_OFFSET_HEADER, NegotiationWorker, WorkerConfig
from streams.codec import encode_event
from streams.core.decider import Context, decide
from streams.core.state import NegotiationState, evolve


def base_events(negotiations: int, members: int, items: int, positions: int) -> list[dict[str, Any]]:
    """Events of realistic negotiations, played through the pure core, as JSON objects."""
    from datetime import UTC, datetime

    from tests.bench.suite import workload

    now = datetime.now(UTC)
    states: dict[str, NegotiationState] = {}
    events: list[dict[str, Any]] = []
    for command in workload(negotiations, members, items, positions, seed=5):
        decision = decide(states.get(command.negotiation_id), command, Context(now=now))
        for event in decision.events:
            states[command.negotiation_id] = evolve(states.get(command.negotiation_id), event)
            events.append(orjson.loads(encode_event(event).value))
    return events


async def write_copies(bootstrap: str, topic: str, base: list[dict[str, Any]], count: int, first_copy: int) -> int:
    """Write ``count`` events to partition 0: copies of ``base`` under new negotiation ids. Returns
    the next copy number."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=512 * 1024)  # fmt: skip
    await producer.start()
    written, copy = 0, first_copy
    headers = [(COMMAND_OFFSET_HEADER, b"0")]
    try:
        while written < count:
            pending = []
            for event in base:
                event = {**event, "negotiation_id": f"{event['negotiation_id']}-c{copy}",
                         "event_id": f"{event['event_id']}-c{copy}"}  # fmt: skip
                pending.append(await producer.send(topic, key=event["negotiation_id"].encode(),
                                                   value=orjson.dumps(event), partition=0, headers=headers))  # fmt: skip
                written += 1
                if written >= count:
                    break
            await asyncio.gather(*pending)
            copy += 1
    finally:
        await producer.stop()
    return copy


async def commit_one_command(bootstrap: str, prefix: str, group: str, events_end: int) -> None:
    """Record, as the worker would, that the command at offset 0 of partition 0 was decided."""
    tp = TopicPartition(COMMANDS.name(prefix), 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(1, orjson.dumps({"events_end": events_end}).decode())})
    finally:
        await consumer.stop()


async def measure(bootstrap: str, events: int, after: int, say: Any = print) -> dict[str, Any]:
    prefix = f"rec{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, prefix)
    topic = EVENTS.name(prefix)
    config = WorkerConfig(bootstrap=bootstrap, topic_prefix=prefix)
    say("recovery: playing the base negotiations through the pure core")
    base = base_events(negotiations=40, members=50, items=40, positions=40_000)
    say(f"recovery: writing {events - after:,} events into one partition")
    copy = await write_copies(bootstrap, topic, base, events - after, first_copy=0)
    await commit_one_command(bootstrap, prefix, config.group, events - after)

    cold = NegotiationWorker(config)
    started = time.perf_counter()
    await cold.recover([0])
    replay_s = time.perf_counter() - started
    table = cold.tables[0]
    figures: dict[str, Any] = {
        "events": events,
        "negotiations": len(table),
        "replay": {
            "events": table.events_applied,
            "seconds": replay_s,
            "events_per_s": table.events_applied / replay_s,
        },
    }
    say("recovery: snapshotting every negotiation of the partition")
    figures["snapshot"] = await cold.snapshot_partition(0)
    await cold._release({0})

    say(f"recovery: {after:,} more events, then a new worker recovers the partition")
    await write_copies(bootstrap, topic, base, after, first_copy=copy)
    await commit_one_command(bootstrap, prefix, config.group, events)
    warm = NegotiationWorker(config)
    started = time.perf_counter()
    await warm.recover([0])
    recovery_s = time.perf_counter() - started
    recovered = warm.recoveries[-1]
    # Back in service: the first command on an old negotiation decodes its snapshot.
    old = next(iter(warm.tables[0].frozen), None)
    started = time.perf_counter()
    if old is not None:
        warm.tables[0].state(old)
    thaw_ms = (time.perf_counter() - started) * 1000
    await warm._release({0})
    figures["recovery"] = {
        "seconds": recovery_s,
        "events_read": recovered["events_read"],
        "snapshots": recovered["snapshots"],
        "snapshot_records": recovered["snapshot_records"],
        "first_thaw_ms": thaw_ms,
        "speedup": replay_s / recovery_s,
    }
    return figures


def table(figures: dict[str, Any]) -> str:
    r, s, w = figures["replay"], figures["snapshot"], figures["recovery"]
    return "\n".join(
        [
            "| figure | value | goal |",
            "|---|---:|---|",
            f"| replay: a partition of {figures['events']:,} events, {figures['negotiations']:,} negotiations, "
            f"from the log alone | {r['seconds']:.1f} s ({r['events_per_s']:,.0f} events/s) | |",
            f"| snapshot: every negotiation of it | {s['seconds']:.1f} s ({s['snapshots']:,} snapshots, "
            f"{s['bytes'] / 2**20:.0f} MiB) | |",
            f"| recovery: from the snapshots and {w['events_read']:,} events after the checkpoint | "
            f"{w['seconds']:.2f} s ({w['speedup']:.0f}× faster than replay) | < 2 s |",
            f"| … then the first command on an old negotiation decodes its snapshot | {w['first_thaw_ms']:.1f} ms | |",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing Kafka; by default a local one is started")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--after", type=int, default=10_000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    from tests.bench.suite import kafka

    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory():
        figures = asyncio.run(measure(bootstrap, args.events, args.after))
    print(table(figures))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
