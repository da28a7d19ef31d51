"""Benchmark: the worker's CPU without Kafka (not a test): replay and the per-command step.

Run: ``python -m tests.bench.core [--negotiations 100] [--members 50] [--items 40] [--positions 40000]``
(``make bench`` runs the replay part over the events topic instead, ``tests/bench/suite.py``).

1. **replay**: the workload of the suite (openings, invitations, a rush of position changes)
   decided once through the pure core and encoded as the worker writes its events (binary-mode
   CloudEvents); then every event decoded (``decode_event``: headers checked, the value read) and
   evolved, as a replay of the events topic does: events/s.
2. **commands**: the same workload's commands, encoded as the API sends them, through
   ``process_command`` (decode, decide, evolve, the events' CloudEvents, the result) into an
   outbox per 500 commands: µs per command. ``--profile`` prints a cProfile of this step.

Both run in this process, on nothing but the CPU: on a busy machine compare ratios within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import pstats
import time
from datetime import UTC, datetime
from typing import Any

from schemas.topics import NEGOTIATION_PARTITIONS
from streams import codec
from streams.app import WorkerConfig
from streams.codec import decode_event, encode_command, encode_event
from streams.core.decider import Context, Rejection, decide
from streams.core.state import NegotiationState, evolve
from streams.table import NegotiationTable, Outbox, process_command


def events(commands: list[Any]) -> list[tuple[list[tuple[str, bytes]], bytes]]:
    """The events the commands cause, as (headers, value) of the events topic."""
    now = datetime.now(UTC)
    states: dict[str, NegotiationState] = {}
    written = []
    for command in commands:
        try:
            decision = decide(states.get(command.negotiation_id), command, Context(now=now))
        except Rejection:
            continue
        for event in decision.events:
            states[command.negotiation_id] = evolve(states.get(command.negotiation_id), event)
            message = encode_event(event)
            written.append((list(message.headers.items()), message.value))  # type: ignore[arg-type]
    return written


def replay(messages: list[tuple[list[tuple[str, bytes]], bytes]], rounds: int) -> dict[str, float]:
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        states: dict[str, NegotiationState] = {}
        for headers, value in messages:
            event = decode_event(headers, value)
            states[event.negotiation_id] = evolve(states.get(event.negotiation_id), event)
        best = max(best, len(messages) / (time.perf_counter() - started))
    decode_only = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for headers, value in messages:
            decode_event(headers, value)
        decode_only = max(decode_only, len(messages) / (time.perf_counter() - started))
    return {"events": len(messages), "events_per_s": best, "decode_us": 1e6 / decode_only,
            "evolve_us": 1e6 / best - 1e6 / decode_only}  # fmt: skip


PARTITIONS = NEGOTIATION_PARTITIONS
WORKER_BATCH = WorkerConfig.max_batch
"""Commands per outbox, as the worker batches them."""


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives a key (murmur2, as aiokafka's producer)."""
    from aiokafka.partitioner import murmur2

    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _replay_share(start: Any, pipe: Any, worker_gc: bool) -> None:
    """One process's part of ``parallel_replay``: receive its share, get ready, wait for the start,
    replay, report. The share comes through the pipe, so the process replays objects of its own, as
    a worker replays what it fetched (not pages shared with the parent, copied on first write)."""
    messages: list[tuple[list[tuple[str, bytes]], bytes]] = pipe.recv()
    if worker_gc:
        from streams.app import GC_THRESHOLDS

        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    pipe.send("ready")
    start.wait()
    started = time.perf_counter()
    states: dict[str, NegotiationState] = {}
    for headers, value in messages:
        event = decode_event(headers, value)
        states[event.negotiation_id] = evolve(states.get(event.negotiation_id), event)
    pipe.send(time.perf_counter() - started)


def parallel_replay(
    partitions: dict[int, list[tuple[list[tuple[str, bytes]], bytes]]], processes: int = 0, worker_gc: bool = True
) -> dict[str, float]:
    """Replay the partitions in ``processes`` processes at once (default: one per core), each
    partition in one of them, as a consumer group spreads partitions over the worker replicas
    (the deployment runs two, ``infra/helm``): independent partitions need nothing from each
    other. Events/s over the wall time until the last process is done.

    Each process receives its share and starts on a common signal once every one is ready, so the
    figure is decode + evolve alone, as ``replay`` measures it in one process."""
    import multiprocessing
    import os

    processes = processes or os.cpu_count() or 1
    shares: list[list[tuple[list[tuple[str, bytes]], bytes]]] = [[] for _ in range(processes)]
    for _, messages in sorted(partitions.items(), key=lambda kv: -len(kv[1])):  # the largest first, to the least loaded
        min(shares, key=len).extend(messages)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    pipes, children = [], []
    for share in shares:
        ours, theirs = context.Pipe()
        child = context.Process(target=_replay_share, args=(start, theirs, worker_gc))
        child.start()
        theirs.close()  # the child's end only in the child: if it dies, our end reads EOF (no hang)
        ours.send(share)
        pipes.append(ours)
        children.append(child)

    def hear(pipe: Any) -> Any:
        try:
            return pipe.recv()
        except EOFError:
            for child in children:
                child.kill()
            raise RuntimeError("a replay process failed (see its traceback above)") from None

    for pipe in pipes:  # every process has its share and its collector settled: the clock starts
        hear(pipe)
    started = time.perf_counter()
    start.set()
    for pipe in pipes:  # each process tells its own seconds when it is done
        hear(pipe)
    wall = time.perf_counter() - started
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a replay process ended with exit code {child.exitcode}")
    total = sum(len(share) for share in shares)
    return {"events": total, "partitions": len(partitions), "processes": processes, "events_per_s": total / wall,
            "shares": [len(share) for share in shares]}  # fmt: skip


def commands_step(values: list[tuple[bytes, bytes]], profile: bool) -> dict[str, float]:
    gc.collect()
    table = NegotiationTable()
    now = datetime.now(UTC)
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    outbox = Outbox()
    for offset, (key, value) in enumerate(values):
        process_command(outbox, table, topic="commands", partition=0, offset=offset, key=key, value=value, now=now,
                        consumer="bench")  # fmt: skip
        if offset % WORKER_BATCH == WORKER_BATCH - 1:
            outbox = Outbox()
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return {"commands": len(values), "us_per_command": elapsed / len(values) * 1e6,
            "commands_per_s": len(values) / elapsed}  # fmt: skip


class _Pydantic:
    """The decoders before ``streams.decoders``: the pydantic models' own validation, for comparison."""

    def __enter__(self) -> None:
        from pydantic import TypeAdapter

        from schemas.commands import Command
        from schemas.events import EVENT_ADAPTER

        self.saved = codec.EVENT_DECODER, codec.COMMANDS
        codec.EVENT_DECODER, codec.COMMANDS = EVENT_ADAPTER.validate_json, TypeAdapter(Command).validate_json  # type: ignore[assignment]

    def __exit__(self, *_: object) -> None:
        codec.EVENT_DECODER, codec.COMMANDS = self.saved


class _Compiled:
    """Both compiled decoders of ``streams.decoders`` (the worker reads commands with one)."""

    def __enter__(self) -> None:
        from streams.decoders import COMMANDS, EVENTS

        self.saved = codec.EVENT_DECODER, codec.COMMANDS
        codec.EVENT_DECODER, codec.COMMANDS = EVENTS, COMMANDS

    def __exit__(self, *_: object) -> None:
        codec.EVENT_DECODER, codec.COMMANDS = self.saved


def interleaved(
    messages: list[tuple[list[tuple[str, bytes]], bytes]], values: list[tuple[bytes, bytes]], chunk: int = 500
) -> dict[str, float]:
    """Pydantic's decoders against the compiled ones, chunk by chunk in turn, on a busy machine:
    each side's median chunk counts, so a burst of load from elsewhere hits both alike.

    Replay: decoding, and evolving the decoded events, timed apart. Commands: two tables decide
    the same commands in lockstep, one with each decoder."""
    import statistics

    def median_us(times: list[float], per: int) -> float:
        return statistics.median(times) / per * 1e6

    pydantic, compiled = _Pydantic(), _Compiled()
    figures: dict[str, float] = {}
    decode_times: dict[str, list[float]] = {"pydantic": [], "compiled": []}
    evolve_times: list[float] = []
    states: dict[str, NegotiationState] = {}
    for start in range(0, len(messages) - chunk + 1, chunk):
        part = messages[start : start + chunk]
        for name in ("pydantic", "compiled"):
            with pydantic if name == "pydantic" else compiled:
                started = time.perf_counter()
                decoded = [decode_event(headers, value) for headers, value in part]
                decode_times[name].append(time.perf_counter() - started)
        started = time.perf_counter()
        for event in decoded:
            states[event.negotiation_id] = evolve(states.get(event.negotiation_id), event)
        evolve_times.append(time.perf_counter() - started)
    for name, times in decode_times.items():
        figures[f"decode_us_{name}"] = median_us(times, chunk)
    figures["evolve_us"] = median_us(evolve_times, chunk)
    tables = {"pydantic": NegotiationTable(), "compiled": NegotiationTable()}
    command_times: dict[str, list[float]] = {"pydantic": [], "compiled": []}
    now = datetime.now(UTC)
    for start in range(0, len(values) - chunk + 1, chunk):
        for name, table in tables.items():
            with pydantic if name == "pydantic" else compiled:
                outbox = Outbox()
                started = time.perf_counter()
                for offset in range(start, start + chunk):
                    key, value = values[offset]
                    process_command(outbox, table, topic="commands", partition=0, offset=offset, key=key, value=value,
                                    now=now, consumer="bench")  # fmt: skip
                command_times[name].append(time.perf_counter() - started)
    for name, times in command_times.items():
        figures[f"command_us_{name}"] = median_us(times, chunk)
    return figures


def main() -> None:
    from tests.bench.suite import workload

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--negotiations", type=int, default=100)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--positions", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=3, help="replays; the best counts")
    parser.add_argument("--compare", action="store_true",
                        help="pydantic's own decoders against the compiled ones, in turn chunk by chunk")  # fmt: skip
    parser.add_argument("--worker-gc", action="store_true", help="the worker's collector settings (streams.app)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the command step")
    args = parser.parse_args()
    commands = list(workload(args.negotiations, args.members, args.items, args.positions))
    messages = events(commands)
    values = [(c.negotiation_id.encode(), encode_command(c)) for c in commands]
    if args.worker_gc:
        from streams.app import GC_THRESHOLDS

        gc.collect()
        gc.freeze()  # (what the workload built is long-lived, as a worker's recovered tables are)
        gc.set_threshold(*GC_THRESHOLDS)
    if args.compare:
        f = interleaved(messages, values)
        for name in ("pydantic", "compiled"):
            total = f[f"decode_us_{name}"] + f["evolve_us"]
            print(f"{name} decoders, chunks of 500 in turn (medians): decode {f[f'decode_us_{name}']:.2f} µs + evolve "
                  f"{f['evolve_us']:.2f} µs = {1e6 / total:,.0f} events/s replayed; "
                  f"process_command {f[f'command_us_{name}']:.1f} µs per command")  # fmt: skip
        return
    decoders = [("", contextlib.nullcontext())]
    for name, decoding in decoders:
        with decoding:
            r = replay(messages, args.rounds)
            print(f"replay{name and f' ({name} decoders)'}: {r['events']:,} events, {r['events_per_s']:,.0f} events/s "
                  f"(decode {r['decode_us']:.1f} µs, evolve {r['evolve_us']:.1f} µs per event)")  # fmt: skip
    by_partition: dict[int, list[tuple[list[tuple[str, bytes]], bytes]]] = {}
    for headers, value in messages:
        key = dict(headers)["ce_subject"]
        by_partition.setdefault(partition_of(key, PARTITIONS), []).append((headers, value))
    best = max((parallel_replay(by_partition, worker_gc=args.worker_gc) for _ in range(args.rounds)),
               key=lambda f: f["events_per_s"])  # fmt: skip
    print(f"replay in parallel: {PARTITIONS} partitions over {best['processes']} processes "
          f"({', '.join(f'{n:,}' for n in best['shares'])} events): {best['events_per_s']:,.0f} events/s")  # fmt: skip
    for name, decoding in decoders:
        with decoding:
            c = commands_step(values, args.profile)
            print(f"commands{name and f' ({name} decoders)'}: {c['commands']:,} through process_command, "
                  f"{c['us_per_command']:.1f} µs per command ({c['commands_per_s']:,.0f} commands/s)")  # fmt: skip


if __name__ == "__main__":
    main()
