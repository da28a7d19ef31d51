"""Benchmark: the worker's memory as the commands it has decided grow (not a test).

Run: ``python -m tests.bench.memory`` (``make bench-memory``; ``make bench`` runs it too).

A worker's table over 20 negotiations × 50 members × 40 items decides, through its own
``process_command``, the openings and invitations and then 200,000 position changes, with the
decisions' time moving evenly over eight weeks (the table cannot tell a replay of eight weeks from
eight weeks of work). After every eighth of the changes (each week) it reports the process's resident
memory (VmRSS) and the command ids the negotiations remember. Once nearly every member has a
position on nearly every item (99 % of them after the 200,000 random changes, 92 % at half way) the
states hardly grow, so what still grows is what is kept per command decided.

Two fresh processes play it: the hub as it is (a negotiation remembers a week of command ids,
``streams.core.state.COMMAND_ID_MEMORY``), and, for comparison, the same code remembering every id
for ever (as before issue 21).
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from streams.app import WorkerConfig
from streams.codec import encode_command
from streams.table import NegotiationTable, Outbox, process_command

WORKER_BATCH = WorkerConfig.max_batch

SPAN = timedelta(weeks=8)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def play(negotiations: int, members: int, items: int, positions: int, steps: int) -> list[dict[str, Any]]:
    """Decide the workload; after each of ``steps`` equal parts of the position changes: the figures."""
    from streams.app import GC_THRESHOLDS
    from tests.bench.suite import workload

    gc.set_threshold(*GC_THRESHOLDS)
    setup = negotiations + negotiations * members
    total = setup + positions
    start = datetime(2026, 1, 5, tzinfo=UTC)
    table = NegotiationTable()
    outbox = Outbox()
    rows: list[dict[str, Any]] = []
    for offset, command in enumerate(workload(negotiations, members, items, positions)):
        now = start + SPAN * (offset / total)
        process_command(outbox, table, topic="commands", partition=0, offset=offset,
                        key=command.negotiation_id.encode(), value=encode_command(command), now=now,
                        consumer="bench")  # fmt: skip
        if offset % WORKER_BATCH == WORKER_BATCH - 1:
            outbox = Outbox()
        done = offset + 1 - setup
        if done > 0 and done % (positions // steps) == 0:
            gc.collect()
            rows.append({
                "positions_decided": done,
                "commands_decided": offset + 1,
                "weeks": round((now - start) / timedelta(weeks=1), 2),
                "rss_mb": rss_mb(),
                "command_ids_kept": sum(len(state.commands) for state in table.states.values()),
            })  # fmt: skip
    return rows


def measure(positions: int = 200_000, steps: int = 8) -> dict[str, list[dict[str, Any]]]:
    """Both ways, each in a fresh process (so that one's heap does not count in the other's)."""
    figures = {}
    for name in ("week", "forever"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "tests.bench.memory",
                "--one",
                name,
                "--positions",
                str(positions),
                "--steps",
                str(steps),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        figures[name] = json.loads(out.strip().splitlines()[-1])
    return figures


def table(figures: dict[str, list[dict[str, Any]]]) -> str:
    lines = [
        "| position changes decided (weeks of decisions) | resident memory, a week of ids | ids kept "
        "| resident memory, every id kept | ids kept |",
        "|---|---:|---:|---:|---:|",
    ]
    for week, forever in zip(figures["week"], figures["forever"], strict=True):
        lines.append(
            f"| {week['positions_decided']:,} ({week['weeks']:.0f}) | {week['rss_mb']:.0f} MB | "
            f"{week['command_ids_kept']:,} | {forever['rss_mb']:.0f} MB | {forever['command_ids_kept']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--positions", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--one", choices=("week", "forever"), help="play one way in this process (JSON out)")
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    if args.one:
        if args.one == "forever":
            from streams.core import state

            state.COMMAND_ID_MEMORY = timedelta(days=365_000)  # type: ignore[misc]
        print(json.dumps(play(20, 50, 40, args.positions, args.steps)))
        return
    figures = measure(args.positions, args.steps)
    print(table(figures))
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
