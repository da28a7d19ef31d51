"""Benchmark: worker throughput (commands/s) and table recovery time (not a test).

Run: ``python -m tests.bench.worker --bootstrap HOST:PORT [--commands 20000] [--recovery-events 100000]``
(``make bench-worker`` starts a local Kafka for it). Writes a realistic command stream (the same
generator as the crash tests), runs one worker in this process, and reports commands/s from the
first to the last result; then it times a cold worker rebuilding its tables from the events topic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from aiokafka import AIOKafkaProducer

from infra.kafka.topics import ensure_topics
from schemas.topics import COMMAND_RESULTS, COMMANDS, EVENTS
from streams.app import COMMAND_OFFSET_HEADER, NegotiationWorker, WorkerConfig
from streams.codec import encode_event
from tests.integration.harness import Expected, ResultCollector, produce_commands, script, wait_until


async def run(bootstrap: str, commands: int, recovery_events: int) -> dict[str, float]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, prefix)
    figures: dict[str, float] = {}
    expected = script(negotiations=max(1, commands // 50), commands=commands, seed=11)
    await produce_commands(bootstrap, COMMANDS.name(prefix), expected.commands)
    async with ResultCollector(bootstrap, COMMAND_RESULTS.name(prefix)) as results:
        worker = NegotiationWorker(WorkerConfig(bootstrap=bootstrap, topic_prefix=prefix))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await wait_until(lambda: len(results) >= 1, 120, "a first result")
        first = time.perf_counter()
        await wait_until(lambda: len(results) == len(expected.commands), 600, "every result")
        elapsed = time.perf_counter() - first
        stop.set()
        await task
    figures["commands"] = len(expected.commands)
    figures["events"] = sum(len(v) for v in expected.events.values())
    figures["commands_per_s"] = (len(expected.commands) - 1) / elapsed
    # Grow the events topic to the size asked for (events written as the worker writes them),
    # then time a cold worker rebuilding every partition's table from it.
    events = int(figures["events"])
    seed = 12
    while events < recovery_events:
        more = script(negotiations=400, commands=20_000, seed=seed)
        events += await produce_events(bootstrap, EVENTS.name(prefix), more)
        seed += 1
    cold = NegotiationWorker(WorkerConfig(bootstrap=bootstrap, topic_prefix=prefix))
    started = time.perf_counter()
    await cold.recover(list(range(COMMANDS.partitions)))
    figures["recovery_s"] = time.perf_counter() - started
    await cold._release(set(cold.producers))
    figures["recovered_events"] = sum(t.events_applied for t in cold.tables.values())
    figures["recovery_events_per_s"] = figures["recovered_events"] / figures["recovery_s"]
    return figures


async def produce_events(bootstrap: str, topic: str, expected: Expected) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=4 << 20)
    await producer.start()
    count = 0
    try:
        futures = []
        for events in expected.events.values():
            for event in events:
                message = encode_event(event)
                futures.append(
                    await producer.send(
                        topic,
                        key=message.key,
                        value=message.value,
                        headers=[*message.headers.items(), (COMMAND_OFFSET_HEADER, b"-1")],
                    )
                )
                count += 1
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--recovery-events", type=int, default=100_000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    figures = asyncio.run(run(args.bootstrap, args.commands, args.recovery_events))
    for name, value in figures.items():
        print(f"{name:>24}: {value:,.1f}")
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump(figures, out, indent=2)


if __name__ == "__main__":
    main()
