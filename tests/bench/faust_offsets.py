"""Reproduction: does faust-streaming commit the offsets of commands it never processed? (not a test)

Run: ``python -m tests.bench.faust_offsets [--bootstrap HOST:PORT] [--commands 10000] [--partitions 4]
[--runs 3] [--expect-loss]`` (``make bench-faust`` runs three). Without ``--bootstrap`` it starts
its own local Kafka (a temporary folder, free loopback ports), as ``make bench`` does.

This is the crash test that kept faust off the command path (docs/streams.md, "Why the worker is
not a faust agent"), played on faust-streaming as the first worker used it: a faust app with an
in-memory store (``memory://``) and a table whose changelog is the events topic, and an agent
consuming the commands topic (keyed by negotiation id) that writes one event per command: the
table entry of the command's negotiation (its next sequence and the command's id), which faust
sends to the table's changelog, that is to the events topic. Each run, on fresh topics:

1. writes ``--commands`` commands over ``--commands / 50`` negotiations to the commands topic;
2. starts the faust worker as a separate process and SIGKILLs it: as soon as the group has
   committed a command that has no event yet (``--kill-on overcommit``, the default; or once every
   command has its event, if that never happens), or once ``--kill-at`` of the commands have their
   event on the events topic (``events``), or at the group's next commit after that (``commit``).
   With ``--rebalance`` a second worker joins the group at ``--kill-at`` and the first is killed
   once it has joined;
3. starts the worker again (with ``--rebalance``, the second one carries on alone) and waits, at
   most ``--timeout`` s, until the group's committed offsets reach the end of the commands topic
   and the events topic has not grown for ``--settle`` s;
4. reads both topics whole (read_committed) and counts per partition the commands with no event
   below the group's committed offset (**lost**: committed, yet no worker wrote their event), the
   commands with no event above it (**not reached**, when the restarted worker did not catch up)
   and the commands with more than one event (**duplicated**: at-least-once delivery).

Throughout the run it also watches for **over-commits**: every half second it reads the group's
committed offsets, then reads the events topic up to its end as of then, and notes each command
below a committed offset that has no event. A worker that writes its events before it commits
never shows one; each one seen is a command that a SIGKILL at that moment would lose. The
workers' logs (``--logs``) also print faust's own bookkeeping (committed, read and acknowledged
offsets per partition) every 5 s.

The first worker's code was not kept. The defaults are the variant that loses commands the way it
was reported to (commands just below a partition's committed offset, lost after the restart):
``--guarantee exactly_once``, killed at the first over-commit seen (faust gets through 10,000
commands in about 3 s, and the over-commits come and go within one commit interval: a kill on a
count of events seldom hits one). Variations: ``--guarantee at_least_once`` (faust's default),
``--concurrency`` (the agent's actors), ``--await-ms`` (what each command awaits),
``--slow-every``/``--slow-ms`` (some commands take longer than faust's 2.8 s commit interval),
``--rebalance``, ``--kill-on``. docs/streams.md has the figures of each.

It prints each run, the installed faust version and a verdict. The exit code is 0 either way,
unless ``--expect-loss`` is given and no command was lost (exit 1), for the day faust fixes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.harness import read_topic, wait_until

ROOT = Path(__file__).resolve().parents[2]
COMMANDS_PER_NEGOTIATION = 50


# -- the faust worker, as the first worker was written (run in a child process) ---------------------


def serve(args: argparse.Namespace) -> None:
    """Run the faust worker of the topics ``<args.serve>.*`` until SIGTERM (or SIGKILL)."""
    import faust
    from faust.worker import Worker

    prefix, partitions = args.serve, args.partitions
    app = faust.App(
        f"{prefix}-worker",  # the consumer group
        broker=f"kafka://{args.bootstrap}",
        datadir=args.datadir,
        store="memory://",  # tables live in memory and are rebuilt from their changelog
        topic_partitions=partitions,
        topic_replication_factor=1,
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
        processing_guarantee=args.guarantee,
    )
    commands = app.topic(f"{prefix}.commands", key_type=str, value_serializer="json", partitions=partitions)
    events = app.topic(f"{prefix}.events", key_type=str, value_serializer="json", partitions=partitions)
    negotiations = app.Table(
        "negotiations", key_type=str, value_type=dict, partitions=partitions, changelog_topic=events
    )

    @app.agent(commands, concurrency=args.concurrency)
    async def decide(stream):  # type: ignore[no-untyped-def]
        async for command in stream:
            nid = command["negotiation_id"]
            if args.await_ms:  # what a decision awaits (a read, a reply): other actors run meanwhile
                await asyncio.sleep(random.uniform(0, 2 * args.await_ms) / 1000)
            if args.slow_every and int(command["command_id"][1:]) % args.slow_every == args.slow_every - 1:
                await asyncio.sleep(args.slow_ms / 1000)  # a slow decision: a retry, a timeout
            previous = negotiations.get(nid)
            # One event per command: the table's new entry, which faust writes to its changelog.
            negotiations[nid] = {
                "negotiation_id": nid,
                "sequence": (previous["sequence"] if previous else 0) + 1,
                "command_id": command["command_id"],
            }

    @app.timer(5.0)
    async def bookkeeping() -> None:  # diagnostics: faust's own view of its offsets, in its log
        consumer = app.consumer
        for tp in sorted(tp for tp in consumer.assignment() if tp.topic == commands.get_topic_name()):
            acked = consumer._acked.get(tp) or []
            print(f"offsets {tp.partition}: committed={consumer._committed_offset.get(tp)} "
                  f"read={consumer._read_offset.get(tp)} acked={len(acked)} [{min(acked, default=None)}..{max(acked, default=None)}] "
                  f"gaps={sorted((i.begin, i.end) for i in consumer._gap.get(tp) or ())[:5]}", flush=True)  # fmt: skip

    Worker(app, loglevel="info").execute_from_commandline()


@dataclass
class FaustProcess:
    """The faust worker as a child process (this module with ``--serve``), its output in a log file."""

    bootstrap: str
    prefix: str
    args: argparse.Namespace  # the variant: partitions, concurrency, await, slow commands, guarantee
    folder: Path
    name: str
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> FaustProcess:
        datadir = self.folder / self.name
        datadir.mkdir(parents=True, exist_ok=True)
        a = self.args
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.faust_offsets", "--serve", self.prefix, "--bootstrap", self.bootstrap,
             "--datadir", str(datadir), "--partitions", str(a.partitions), "--concurrency", str(a.concurrency),
             "--await-ms", str(a.await_ms), "--slow-every", str(a.slow_every), "--slow-ms", str(a.slow_ms),
             "--guarantee", a.guarantee],
            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        return self

    def running(self) -> bool:
        """True while the worker runs; fails with its log when it has exited."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the faust worker {self.name} exited ({self.proc.returncode}):\n{self.log_tail()}")
        return True

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    @property
    def log_path(self) -> Path:
        return self.folder / f"{self.name}.log"

    def has_logged(self, text: str) -> bool:
        return self.log_path.exists() and text in self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 30) -> str:
        path = self.log_path
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


# -- the crash test ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    """A command as written: where it is, and its id."""

    partition: int
    offset: int
    command_id: str


@dataclass
class Run:
    number: int
    prefix: str
    commands: int
    kill_reason: str = ""
    events_at_kill: int = 0
    kill_after_s: float = 0.0  # from the first event to the kill
    committed_at_kill: dict[int, int] = field(default_factory=dict)
    committed_at_end: dict[int, int] = field(default_factory=dict)
    settled: bool = False
    restart_s: float = 0.0
    events: int = 0
    overcommitted: dict[str, float] = field(default_factory=dict)  # command id -> when first seen (s into the run)
    per_partition: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return sum(p["lost"] for p in self.per_partition.values())

    @property
    def duplicated(self) -> int:
        return sum(p["duplicated"] for p in self.per_partition.values())


class Watcher:
    """Reads the events topic as it grows (read_committed) and the group's committed offsets."""

    def __init__(self, bootstrap: str, prefix: str, partitions: int, sent: list[Sent]) -> None:
        self.bootstrap, self.partitions, self.sent = bootstrap, partitions, sent
        self.events_topic, self.commands_topic, self.group = (
            f"{prefix}.events",
            f"{prefix}.commands",
            f"{prefix}-worker",
        )
        self.seen: Counter[str] = Counter()  # events per command id
        self.count = 0
        self.first_at: float | None = None  # when the first event arrived (perf_counter)
        self.started = time.perf_counter()
        self.overcommitted: dict[str, float] = {}
        self.overcommit_seen = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Watcher:
        self.admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await self.admin.start()
        self.probe = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, isolation_level="read_committed")
        await self.probe.start()
        self.reader = reader = AIOKafkaConsumer(self.events_topic, bootstrap_servers=self.bootstrap, auto_offset_reset="earliest",
                                  enable_auto_commit=False, isolation_level="read_committed")  # fmt: skip
        await reader.start()

        async def read() -> None:
            try:
                while True:
                    batch = await reader.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            self.seen[json.loads(record.value)["command_id"]] += 1
                        self.count += len(records)
                    if self.count and self.first_at is None:
                        self.first_at = time.perf_counter()
            finally:
                await reader.stop()

        async def watch() -> None:
            while True:
                await asyncio.sleep(0.5)
                try:
                    overcommitted = await self.check()
                except Exception as exc:  # the broker was slow to answer: look again
                    say(f"(watching the offsets: {exc!r})")
                    continue
                for sent in overcommitted:
                    self.overcommitted.setdefault(sent.command_id, round(time.perf_counter() - self.started, 1))
                    self.overcommit_seen.set()

        self._tasks = [asyncio.create_task(read()), asyncio.create_task(watch())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        await self.probe.stop()
        await self.admin.close()

    async def committed(self) -> dict[int, int]:
        try:
            offsets = await self.admin.list_consumer_group_offsets(self.group)
        except Exception:  # the coordinator may still be loading the group
            return {}
        return {
            tp.partition: m.offset for tp, m in offsets.items() if tp.topic == self.commands_topic and m.offset >= 0
        }

    async def check(self) -> list[Sent]:
        """The commands below the group's committed offsets that have no event on the log."""
        committed = await self.committed()
        tps = [TopicPartition(self.events_topic, p) for p in range(self.partitions)]
        ends = {tp.partition: offset for tp, offset in (await self.probe.end_offsets(tps)).items()}
        # Every event written before the commit is below these ends: read up to them first.

        async def read_to_ends() -> bool:
            positions = [await self.reader.position(TopicPartition(self.events_topic, p)) for p in ends]
            return all(position >= end for position, end in zip(positions, ends.values(), strict=True))

        await wait_until(read_to_ends, 60, "the events")
        return [s for s in self.sent if s.offset < committed.get(s.partition, 0) and not self.seen[s.command_id]]


async def create_topics(bootstrap: str, prefix: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(f"{prefix}.{name}", num_partitions=partitions, replication_factor=1)
                for name in ("commands", "events")
            ]
        )
    finally:
        await admin.close()


async def produce_commands(bootstrap: str, topic: str, count: int, seed: int) -> list[Sent]:
    """``count`` commands over ``count / 50`` negotiations, keyed by negotiation id, as the API writes them."""
    rng = random.Random(seed)
    negotiations = [f"n{i:04d}-{uuid.uuid4().hex[:6]}" for i in range(max(1, count // COMMANDS_PER_NEGOTIATION))]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        ids, futures = [], []
        for i in range(count):
            nid, command_id = rng.choice(negotiations), f"c{i:06d}"
            value = json.dumps({"command_id": command_id, "negotiation_id": nid}).encode()
            futures.append(await producer.send(topic, key=nid.encode(), value=value))
            ids.append(command_id)
        written = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return [Sent(meta.partition, meta.offset, command_id) for meta, command_id in zip(written, ids, strict=True)]


async def crash_run(args: argparse.Namespace, bootstrap: str, number: int, folder: Path) -> Run:
    prefix = f"faust{uuid.uuid4().hex[:6]}"
    run = Run(number, prefix, args.commands)
    await create_topics(bootstrap, prefix, args.partitions)
    sent = await produce_commands(bootstrap, f"{prefix}.commands", args.commands, seed=number)
    ends = Counter(s.partition for s in sent)  # the commands topic's end offsets (it starts at 0)

    def worker(name: str) -> FaustProcess:
        return FaustProcess(bootstrap, prefix, args, folder / prefix, name)

    async with Watcher(bootstrap, prefix, args.partitions, sent) as watcher:
        first = worker("first").start()
        second: FaustProcess | None = None
        try:
            if args.kill_on == "overcommit":
                run.kill_reason = "an over-commit was seen"
                await wait_until(
                    lambda: first.running() and (watcher.overcommit_seen.is_set() or len(watcher.seen) == len(sent)),
                    args.timeout, lambda: f"an over-commit or every event\n{first.log_tail()}",
                )  # fmt: skip
                if not watcher.overcommit_seen.is_set():
                    run.kill_reason = "no over-commit was seen: killed once every command had its event"
            else:
                run.kill_reason = f"{args.kill_at:.0%} of the commands had their event"
                await wait_until(lambda: first.running() and watcher.count >= args.kill_at * args.commands, args.timeout,
                                 lambda: f"{args.kill_at:.0%} of the events\n{first.log_tail()}")  # fmt: skip
            if args.rebalance:
                # A second worker joins the group: the first one rebalances while it works.
                second = worker("second").start()
                await wait_until(lambda: second.running() and second.has_logged("Joined group"), args.timeout,
                                 lambda: f"the second worker to join\n{second.log_tail() if second else ''}")  # fmt: skip
                run.kill_reason += "; a second worker joined the group"
            if args.kill_on == "commit":
                # Right after the group's next commit: what it committed is kept, what was in flight is not.
                before = await watcher.committed()

                async def moved() -> bool:
                    return first.running() and await watcher.committed() != before

                await wait_until(moved, args.timeout, "the group's next commit")
                run.kill_reason += "; then the group committed"
            first.kill()
        finally:
            first.stop()
        run.events_at_kill = watcher.count
        run.kill_after_s = time.perf_counter() - (watcher.first_at or time.perf_counter())
        # A transaction the worker had asked to commit may complete just after the kill: read the
        # offsets once they have held still for 2 s.
        held = [await watcher.committed(), time.perf_counter()]

        async def held_still() -> bool:
            now = await watcher.committed()
            if now != held[0]:
                held[:] = [now, time.perf_counter()]
            return time.perf_counter() - held[1] >= 2

        await wait_until(held_still, 30, "the committed offsets to hold still")
        run.committed_at_kill = held[0]
        say(f"run {number}: SIGKILLed the worker ({run.kill_reason}) at {run.events_at_kill:,} events, "
            f"{run.kill_after_s:.1f} s after the first; {sum(run.committed_at_kill.values()):,} of "
            f"{args.commands:,} commands committed")  # fmt: skip

        restarted = second or worker("restarted").start()
        started = time.perf_counter()
        last_growth = [watcher.count, time.perf_counter()]

        async def done() -> bool:
            restarted.running()
            run.committed_at_end = await watcher.committed()
            if watcher.count != last_growth[0]:
                last_growth[:] = [watcher.count, time.perf_counter()]
            caught_up = all(run.committed_at_end.get(p, 0) >= end for p, end in ends.items())
            return caught_up and time.perf_counter() - last_growth[1] >= args.settle

        try:
            await wait_until(done, args.timeout, lambda: f"the restarted worker to catch up\n{restarted.log_tail()}")
            run.settled = True
        except AssertionError as exc:
            say(f"run {number}: {exc}")
        finally:
            run.restart_s = time.perf_counter() - started
            restarted.stop()
        run.overcommitted = dict(watcher.overcommitted)

    # Count, per partition of the commands topic, the events of each command, from the whole topics.
    commands = await read_topic(bootstrap, f"{prefix}.commands")
    events = await read_topic(bootstrap, f"{prefix}.events")
    run.events = len(events)
    written = Counter(json.loads(record.value)["command_id"] for record in events)
    for p in range(args.partitions):
        mine = [(r.offset, json.loads(r.value)["command_id"]) for r in commands if r.partition == p]
        # No event, below the group's committed offset: lost. No event above it: not reached (only
        # when the restarted worker did not catch up).
        at_end = run.committed_at_end.get(p, 0)
        lost = [offset for offset, command_id in mine if written[command_id] == 0 and offset < at_end]
        at_kill = run.committed_at_kill.get(p, 0)
        run.per_partition[p] = {
            "commands": len(mine),
            "committed_at_kill": at_kill,
            "committed_at_end": at_end,
            "not_reached": sum(1 for offset, command_id in mine if written[command_id] == 0 and offset >= at_end),
            "overcommitted": sum(1 for _, command_id in mine if command_id in run.overcommitted),
            "lost": len(lost),
            "lost_below_kill_commit": sum(1 for offset in lost if offset < at_kill),
            "lost_offsets": lost[:10],
            "duplicated": sum(1 for _, command_id in mine if written[command_id] > 1),
        }
    return run


def say(line: str) -> None:
    print(line, flush=True)


def report(run: Run) -> str:
    f = run.per_partition
    lines = [
        f"run {run.number} ({run.prefix}): {run.commands:,} commands, {run.events:,} events; the restarted worker "
        + (f"caught up in {run.restart_s:.0f} s" if run.settled else f"did NOT catch up in {run.restart_s:.0f} s"),
        "| partition | commands | committed at kill | committed at end | over-committed (seen) | lost | of them below the kill's commit | not reached | duplicated | lost offsets (first 10) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        *(
            f"| {p} | {x['commands']:,} | {x['committed_at_kill']:,} | {x['committed_at_end']:,} | {x['overcommitted']} | "
            f"{x['lost']} | {x['lost_below_kill_commit']} | {x['not_reached']} | {x['duplicated']} | "
            f"{', '.join(map(str, x['lost_offsets']))} |"
            for p, x in f.items()
        ),
        f"| all | {run.commands:,} | {sum(run.committed_at_kill.values()):,} | {sum(run.committed_at_end.values()):,} | "
        f"{len(run.overcommitted)} | {run.lost} | {sum(x['lost_below_kill_commit'] for x in f.values())} | "
        f"{sum(x['not_reached'] for x in f.values())} | {run.duplicated} | |",
    ]
    return "\n".join(lines)


async def measure(args: argparse.Namespace, bootstrap: str, folder: Path) -> list[Run]:
    runs = []
    for number in range(1, args.runs + 1):
        run = await crash_run(args, bootstrap, number, folder)
        say(report(run))
        runs.append(run)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing Kafka; by default a local one is started")
    parser.add_argument("--commands", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--runs", type=int, default=1, help="crash runs, each on fresh topics (the defect may be intermittent)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="the agent's concurrency (actors per worker)")
    parser.add_argument("--await-ms", type=float, default=0.0,
                        help="what each command awaits, on average (0 to twice as long): other actors run meanwhile")  # fmt: skip
    parser.add_argument("--slow-every", type=int, default=0, help="every Nth command is slow (0: none)")
    parser.add_argument("--slow-ms", type=float, default=10_000.0,
                        help="how long a slow command awaits (faust commits every 2.8 s)")  # fmt: skip
    parser.add_argument("--guarantee", choices=["at_least_once", "exactly_once"], default="exactly_once",
                        help="faust's processing_guarantee")  # fmt: skip
    parser.add_argument(
        "--kill-at", type=float, default=0.5, help="the fraction of the commands with an event to wait for"
    )
    parser.add_argument("--kill-on", choices=["events", "commit", "overcommit"], default="overcommit",
                        help="SIGKILL at --kill-at (events), at the group's next commit after it (commit), or as soon "
                        "as a command without an event is committed (overcommit)")  # fmt: skip
    parser.add_argument("--rebalance", action="store_true",
                        help="at --kill-at a second worker joins the group; the first is killed once it has joined")  # fmt: skip
    parser.add_argument("--settle", type=float, default=5.0, help="seconds without a new event that count as done")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each stage")
    parser.add_argument("--logs", type=Path, help="keep the workers' logs in this folder")
    parser.add_argument("--expect-loss", action="store_true", help="exit 1 when no command was lost")
    parser.add_argument("--json", dest="json_path")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # the child: run the faust worker of this prefix
    parser.add_argument("--datadir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return

    from importlib.metadata import version

    from tests.bench.suite import kafka

    faust_version = version("faust-streaming")
    variant = (f"agent concurrency {args.concurrency}, {args.guarantee}, await {args.await_ms:g} ms"
               + (f", every {args.slow_every}th command {args.slow_ms / 1000:g} s" if args.slow_every else "")
               + f", kill on {args.kill_on}" + (" during a rebalance" if args.rebalance else ""))  # fmt: skip
    say(f"faust-streaming {faust_version}, aiokafka {version('aiokafka')}: {args.runs} run(s) of {args.commands:,} "
        f"commands on {args.partitions} partitions; {variant}")  # fmt: skip
    with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as temporary:
        folder = args.logs or Path(temporary)
        runs = asyncio.run(measure(args, bootstrap, folder))
    lost = sum(run.lost for run in runs)
    say(f"\nfaust-streaming {faust_version} ({variant}): lost per run {[run.lost for run in runs]}, "
        f"over-committed per run {[len(run.overcommitted) for run in runs]}, "
        f"duplicated per run {[run.duplicated for run in runs]}")  # fmt: skip
    say(f"verdict: defect reproduced: {lost} commands lost" if lost else "verdict: not reproduced in this run: 0 lost")
    if overcommitted := sum(len(run.overcommitted) for run in runs):
        say(f"({overcommitted} commands were seen committed before their event was on the log: each one a command "
            "that a SIGKILL at that moment would lose)")  # fmt: skip
    if not_reached := sum(x["not_reached"] for run in runs for x in run.per_partition.values()):
        say(f"({not_reached} commands above a committed offset never got their event: not counted as lost)")
    if any(not run.settled for run in runs):
        say("note: a restarted worker did not catch up within --timeout; the figures count what it had done")
    if args.json_path:
        figures = {"faust_streaming": faust_version, "variant": variant, "command": " ".join(sys.argv),
                   "runs": [asdict(run) | {"lost": run.lost, "duplicated": run.duplicated} for run in runs]}  # fmt: skip
        Path(args.json_path).write_text(json.dumps(figures, indent=2))
    if args.expect_loss and not lost:
        sys.exit(1)


if __name__ == "__main__":
    main()
