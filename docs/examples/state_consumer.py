"""Follow the shared negotiation state from Kafka: one line per change, the newest state per negotiation.

The state topic ``<prefix>.state`` is compacted: keyed by negotiation id, each value is the
negotiation's latest shared state as JSON (the coordinator's full view, see docs/subscriptions.md).
Read it from the beginning to get every negotiation's current state, then keep reading for changes.

    python docs/examples/state_consumer.py --bootstrap 127.0.0.1:19092 [--prefix koopkracht] [--idle 5]

``--idle N`` stops after N seconds without a new message (useful in scripts); without it, it runs
until Ctrl-C. Needs only ``aiokafka``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import uuid

from aiokafka import AIOKafkaConsumer


async def follow(bootstrap: str, prefix: str, idle: float | None) -> None:
    consumer = AIOKafkaConsumer(
        f"{prefix}.state",
        bootstrap_servers=bootstrap,
        group_id=f"state-follower-{uuid.uuid4().hex[:8]}",  # a group of its own: start from the beginning
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # the worker writes in transactions: skip aborted ones
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=int((idle or 1) * 1000))
            if not batch and idle is not None:
                return
            for records in batch.values():
                for record in records:
                    state = json.loads(record.value)
                    settled = sum(1 for item in state["items"] if item["settled"])
                    print(
                        f"{record.key.decode()} phase={state['phase']} sequence={state['sequence']} "
                        f"version={state['demand_version']} round={state['round']} "
                        f"settled={settled}/{len(state['items'])} cohesion={state.get('cohesion')} "
                        f"ready_to_endorse={state['ready_to_endorse']}",
                        flush=True,
                    )
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--prefix", default="koopkracht")
    parser.add_argument("--idle", type=float, default=None, help="stop after this many seconds without a message")
    args = parser.parse_args()
    asyncio.run(follow(args.bootstrap, args.prefix, args.idle))


if __name__ == "__main__":
    main()
