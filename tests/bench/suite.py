"""``make bench``: every benchmark of the hub in one run, against the real local broker (not a test).

Measures, in this order, and prints one table (``--json FILE`` writes the figures):

1. **ceiling** — raw aiokafka produce → consume of messages the size of a command, on a topic
   shaped like the commands topic (messages/s), and a raw produce → consume round trip (ms);
2. **pipeline** — commands/s through one worker process (decide, evolve, events, state,
   results) over ``--negotiations`` × ``--members`` × ``--items``, sustained ``--seconds``; and
   its ratio to the ceiling;
3. **latency** — HTTP write of a position → the SSE message at a subscribed party, p50/p95/p99,
   at ``--rate`` requests/s offered (open loop) and at saturation;
4. **aggregation** — one PositionStated at 10 … 10,000 supporters against a naive recomputation;
   and the state document after one change, drawn from the changed rows against drawn whole, as
   members grow; and the coordinator's insight (``tests/bench/suggestions.py``): suggestions and
   what-ifs at 10, 100 and 1,000 members x 50 items;
5. **replay** — events/s of a pure replay of the events topic, in one process and with its
   partitions spread over one process per core; and the recovery of one partition
   with ``--recovery-events`` events behind it (``tests/bench/recovery.py``): from the log alone,
   and from snapshots with ``--recovery-after`` events after their checkpoint;
6. **memory** — peak resident memory (VmHWM) of the worker (after 2) and of the API (after 3);
   and a worker's table as the commands it decided grow over eight weeks of decisions
   (``tests/bench/memory.py``);
7. **faults** — the fault suite's scenarios (``tests/reliability/faults.py``, on a 3-broker
   Kafka): p50/p99 of the writes acknowledged during each fault, and how long it took to heal.

It starts its own Kafka (in a temporary folder, free loopback ports) unless ``--bootstrap`` names one.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from infra.kafka import ClusterSpec, KafkaCluster
from infra.kafka.topics import ensure_topics
from schemas.commands import Actor, InviteMember, OpenNegotiation, StatePosition
from schemas.negotiation import Position, RequirementItem
from schemas.topics import COMMAND_RESULTS, COMMANDS, EVENTS
from services.catalogue import load_catalogue
from streams.codec import decode_event, encode_command
from streams.core.state import NegotiationState, evolve
from tests.bench import aggregation
from tests.bench import suggestions as insight
from tests.bench.recovery import table as recovery_table
from tests.conftest import free_base_port
from tests.integration.harness import ResultCollector, WorkerProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- 1. the ceiling --------------------------------------------------------------------------------


async def ceiling(bootstrap: str, prefix: str, size: int, count: int) -> dict[str, float]:
    topic = COMMANDS.name(prefix)
    payload = b"x" * size
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=2)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await producer.partitions_for(topic))]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        started = time.perf_counter()
        pending = [await producer.send(topic, key=str(i % 1000).encode(), value=payload) for i in range(count)]
        await asyncio.gather(*pending)
        seen = 0
        while seen < count:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        elapsed = time.perf_counter() - started
        rtts = []
        for _i in range(200):
            sent = time.perf_counter()
            await producer.send_and_wait(topic, key=b"rtt", value=payload)
            got = 0
            while not got:
                batch = await consumer.getmany(timeout_ms=500)
                got = sum(len(records) for records in batch.values())
            rtts.append((time.perf_counter() - sent) * 1000)
    finally:
        await consumer.stop()
        await producer.stop()
    return {"messages_per_s": count / elapsed, "round_trip_p50_ms": percentile(rtts, 0.5),
            "round_trip_p99_ms": percentile(rtts, 0.99), "message_bytes": size}  # fmt: skip


# -- 2. the pipeline -------------------------------------------------------------------------------


def workload(negotiations: int, members: int, items: int, positions: int, seed: int = 7) -> Iterator[Any]:
    """Open the negotiations, invite the members, then a rush of position changes across all of them."""
    rng = random.Random(seed)
    catalogue = [i for i in load_catalogue().values() if i.kind in ("at_most", "at_least", "boolean")]
    chosen: list[RequirementItem] = (catalogue * (items // len(catalogue) + 1))[:items]
    chosen = [i.model_copy(update={"key": f"{i.key}-{n}"}) for n, i in enumerate(chosen)]
    nids = [f"bench-{n}" for n in range(negotiations)]
    for nid in nids:
        yield OpenNegotiation(command_id=f"{nid}-open", negotiation_id=nid, actor=COORDINATOR, title="Bench",
                              vendor_id="vendor", vendor_name="Vendor", items=tuple(chosen))  # fmt: skip
    for m in range(members):
        for nid in nids:
            yield InviteMember(command_id=f"{nid}-inv-{m}", negotiation_id=nid, actor=COORDINATOR,
                               organisation_id=f"m{m}", name=f"Member {m}", weight=rng.randint(1, 40))  # fmt: skip
    for n in range(positions):
        nid = nids[n % negotiations]
        m = rng.randrange(members)
        item = rng.choice(chosen)
        value = None if item.kind == "boolean" else rng.randint(1, 365)
        yield StatePosition(command_id=f"{nid}-pos-{n}", negotiation_id=nid,
                            actor=Actor(organisation_id=f"m{m}", role="member", name=f"Member {m}"),
                            item_key=item.key, position=Position(priority=rng.choice(["must", "should", "could"]),
                                                                  value=value))  # fmt: skip


async def pipeline(bootstrap: str, prefix: str, args: argparse.Namespace, data_dir: Path) -> dict[str, float]:
    total = args.negotiations + args.negotiations * args.members + args.positions
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=20,
                                max_batch_size=256 * 1024)  # fmt: skip
    await producer.start()
    sizes = []
    try:
        pending = []
        for command in workload(args.negotiations, args.members, args.items, args.positions):
            value = encode_command(command)
            sizes.append(len(value))
            pending.append(await producer.send(COMMANDS.name(prefix), key=command.negotiation_id.encode(), value=value))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    async with ResultCollector(bootstrap, COMMAND_RESULTS.name(prefix)) as results:
        worker = WorkerProcess(bootstrap, prefix, data_dir / "worker").start()
        try:
            await wait_until(lambda: len(results) >= 1, 180, "a first result")
            first = time.perf_counter()
            deadline = first + args.seconds
            while len(results) < total and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
            done, elapsed = len(results), time.perf_counter() - first
            rss = peak_rss_mb(worker.proc.pid)  # type: ignore[union-attr]
        finally:
            worker.stop()
    return {"commands_offered": total, "commands_done": done, "seconds": elapsed, "commands_per_s": done / elapsed,
            "command_bytes_mean": statistics.fmean(sizes), "worker_peak_rss_mb": rss}  # fmt: skip


# -- 3. latency through HTTP -----------------------------------------------------------------------


def latency(bootstrap: str, data_dir: Path, rates: list[float], writes: int) -> dict[str, Any]:
    from tests.e2e.conftest import running_stack

    figures: dict[str, Any] = {}
    with running_stack(bootstrap, data_dir / "stack", "sqlite") as stack:
        _, coordinator_key = stack.organisation("Coop", "coordinator")
        vendor_id, _ = stack.organisation("Vendor", "vendor")
        members = [stack.organisation(f"Member {i}", "member") for i in range(10)]
        coordinator = stack.client(coordinator_key)
        nid = coordinator.post("/v1/negotiations", json={"title": "Latency", "vendor_id": vendor_id,
                                                         "items": [{"key": "diagnostic-data-retention"}]}).json()["id"]  # fmt: skip
        for member_id, _ in members:
            coordinator.post(f"/v1/negotiations/{nid}/members", json={"organisation_id": member_id}).raise_for_status()
        for rate in rates:
            figures[f"{rate:g}/s" if rate else "saturation"] = asyncio.run(_load(stack.base_url, coordinator_key, nid,
                                                                            members, rate, writes))  # fmt: skip
        figures["api_peak_rss_mb"] = peak_rss_mb(stack.stack.child("api").proc.pid)  # type: ignore[union-attr]
    return figures


class LeanConnections:
    """HTTP/1.1 keep-alive connections for the load: a request line, headers and a JSON body out,
    the status and a Content-Length body back. The load generator shares the two cores with the
    hub; this costs a fraction of a general client's CPU per request, so it disturbs less what it
    measures. Any answer without a Content-Length, or a closed connection, is an error."""

    def __init__(self, base: str, size: int) -> None:
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.size = size
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.opened = 0

    async def request(self, method: str, path: str, body: bytes, key: str) -> int:
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {key}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
        reused = bool(self.idle)
        if reused:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        writer.write(head.encode() + body)
        try:
            status_line = await reader.readline()
        except ConnectionResetError:
            status_line = b""
        if not status_line:
            writer.close()
            if not reused:
                raise ConnectionError("the server closed a new connection")
            # The server closed an idle kept-alive connection before reading: send on a new one.
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
            writer.write(head.encode() + body)
            status_line = await reader.readline()
        length = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {status_line!r}")
        await reader.readexactly(length)
        self.idle.append((reader, writer))
        return int(status_line.split()[1])

    async def close(self) -> None:
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()


async def _load(base: str, coordinator_key: str, nid: str, members: list[tuple[str, str]], rate: float,
                writes: int) -> dict[str, float]:  # fmt: skip
    arrivals: dict[int, float] = {}
    decided: dict[int, float] = {}  # when the worker decided it (the event's time), on this clock
    sent: dict[int, float] = {}
    http_ms: list[float] = []
    ready = asyncio.Event()
    base_value = random.randint(10_000, 10_000_000)

    async def listen(after: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {coordinator_key}"},
                                     timeout=None) as client, client.stream("GET", f"/v1/negotiations/{nid}/stream",
                                                                            params={"after": after}) as response:  # fmt: skip
            ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    value = (message["data"].get("position") or {}).get("value")
                    if message["type"] == "PositionStated" and value is not None:
                        now = time.perf_counter()
                        arrivals[int(value) - base_value] = now
                        occurred = datetime.fromisoformat(message["occurred_at"]).timestamp()
                        decided[int(value) - base_value] = now - (time.time() - occurred)

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {coordinator_key}"}) as client:
        current = (await client.get(f"/v1/negotiations/{nid}")).json()["sequence"]
    listener = asyncio.create_task(listen(current))
    await asyncio.wait_for(ready.wait(), 10)
    connections = LeanConnections(base, 64)
    limit = asyncio.Semaphore(64)

    async def write(i: int) -> None:
        async with limit:
            sent[i] = time.perf_counter()
            status = await connections.request(
                "PUT",
                f"/v1/negotiations/{nid}/positions/diagnostic-data-retention",
                json.dumps({"priority": "must", "value": base_value + i}).encode(),
                members[i % len(members)][1],
            )
            if status != 200:
                raise RuntimeError(f"write {i} answered {status}")
            http_ms.append((time.perf_counter() - sent[i]) * 1000)

    started = time.perf_counter()
    tasks = []
    for i in range(writes):
        if rate:
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(write(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - started
    deadline = time.perf_counter() + 30
    while len(arrivals) < writes and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    listener.cancel()
    await connections.close()
    sse_ms = [(arrivals[i] - sent[i]) * 1000 for i in sent if i in arrivals]
    decide_ms = [(decided[i] - sent[i]) * 1000 for i in sent if i in decided]
    if __import__("os").environ.get("KK_SERIES"):
        series = [(arrivals[i] - sent[i]) * 1000 for i in sorted(sent) if i in arrivals]
        print(
            "series",
            [round(statistics.median(series[k : k + 250])) for k in range(0, len(series), 250)],
            file=sys.stderr,
        )
    return {"offered_per_s": rate, "achieved_per_s": writes / elapsed, "writes": writes,
            "http_p50_ms": percentile(http_ms, 0.5), "http_p99_ms": percentile(http_ms, 0.99),
            "sse_p50_ms": percentile(sse_ms, 0.5), "sse_p95_ms": percentile(sse_ms, 0.95),
            "sse_p99_ms": percentile(sse_ms, 0.99), "sse_received": len(sse_ms),
            "decided_p50_ms": percentile(decide_ms, 0.5), "decided_p99_ms": percentile(decide_ms, 0.99)}  # fmt: skip


# -- 5. replay and recovery ------------------------------------------------------------------------


async def replay(bootstrap: str, prefix: str) -> dict[str, float]:
    """Decode every event of the events topic and evolve the states: the pure replay's rate, in one
    process with the worker's collector settings (as the worker replays), and with the topic's
    partitions spread over one process per core (as the deployment's two worker replicas replay
    theirs, ``tests/bench/core.py``'s ``parallel_replay``)."""
    from streams.app import GC_THRESHOLDS
    from tests.bench.core import parallel_replay
    from tests.integration.harness import read_topic

    records = await read_topic(bootstrap, EVENTS.name(prefix))
    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        started = time.perf_counter()
        states: dict[str, NegotiationState] = {}
        for record in records:
            event = decode_event(record.headers, record.value)
            states[event.negotiation_id] = evolve(states.get(event.negotiation_id), event)
        elapsed = time.perf_counter() - started
    finally:
        gc.set_threshold(*thresholds)
    negotiations = len(states)
    del states
    by_partition: dict[int, list[tuple[list[tuple[str, bytes]], bytes]]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append((list(record.headers), record.value))
    parallel = parallel_replay(by_partition)
    return {"events": len(records), "events_per_s": len(records) / elapsed, "negotiations": negotiations,
            "parallel_events_per_s": parallel["events_per_s"], "parallel_processes": parallel["processes"],
            "parallel_partitions": parallel["partitions"],
            "parallel_shares": parallel["shares"]}  # fmt: skip


# -- 2b. the state document as negotiations grow ---------------------------------------------------


def state_documents(members: list[int], items: int, changes: int = 2_000, seed: int = 11) -> dict[int, Any]:
    """The worker's cost of a negotiation's state document after one position change, at ``items``
    items and a growing number of members: drawn from the changed rows (as the worker does) against
    drawn whole through the validated models (as the API draws a party's view, and the worker did
    before). Drawing stays nearly flat; the document's bytes grow with the members."""
    from streams.codec import encode_state
    from streams.core.decider import Context, Limits, decide
    from streams.core.views import StateDocumentCache, shared_state

    figures: dict[int, Any] = {}
    now = datetime.now(UTC)
    for size in members:
        # Beyond the hub's default limit of members, as an operator may raise it (KOOPKRACHT_MAX_MEMBERS).
        context = Context(now=now, limits=Limits(members=max(size, Limits.members)))
        commands = list(workload(1, size, items, changes, seed))
        state: NegotiationState | None = None
        documents = StateDocumentCache()
        timings_rows, timings_whole, sizes = [], [], []
        for n, command in enumerate(commands):
            decision = decide(state, command, context)
            for event in decision.events:
                state = evolve(state, event)
            assert state is not None
            if n < len(commands) - changes:
                continue
            started = time.perf_counter()
            document = encode_state(state, documents)
            timings_rows.append(time.perf_counter() - started)
            started = time.perf_counter()
            shared_state(state).model_dump_json()
            timings_whole.append(time.perf_counter() - started)
            sizes.append(len(document))
        figures[size] = {"rows_us_median": statistics.median(timings_rows) * 1e6,
                         "whole_us_median": statistics.median(timings_whole) * 1e6,
                         "document_bytes": statistics.fmean(sizes)}  # fmt: skip
    return figures


# -- the run ---------------------------------------------------------------------------------------


@contextmanager
def kafka(bootstrap: str | None) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    with tempfile.TemporaryDirectory() as folder:
        cluster = KafkaCluster(Path(folder), ClusterSpec(nodes=1, base_port=free_base_port(2)))
        cluster.start()
        try:
            yield cluster.bootstrap
        finally:
            cluster.stop()


async def run(args: argparse.Namespace, bootstrap: str, folder: Path) -> dict[str, Any]:
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, prefix)
    figures: dict[str, Any] = {
        "machine": {
            "cores": __import__("os").cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "when": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "command": " ".join(sys.argv),
    }
    say("pipeline: producing the workload and running one worker")
    figures["pipeline"] = await pipeline(bootstrap, prefix, args, folder)
    say("ceiling: raw produce → consume")
    ceiling_prefix = f"ceil{uuid.uuid4().hex[:6]}"
    await ensure_topics(bootstrap, ceiling_prefix)
    figures["ceiling"] = await ceiling(bootstrap, ceiling_prefix, int(figures["pipeline"]["command_bytes_mean"]),
                                       args.ceiling_messages)  # fmt: skip
    figures["pipeline"]["ratio_to_ceiling"] = (
        figures["pipeline"]["commands_per_s"] / figures["ceiling"]["messages_per_s"]
    )
    say("replay: decoding and evolving the events topic")
    figures["replay"] = await replay(bootstrap, prefix)
    from tests.bench.recovery import measure

    figures["recovery"] = await measure(bootstrap, args.recovery_events, args.recovery_after, say)
    return figures


def say(text: str) -> None:
    print(f"· {text}", file=sys.stderr, flush=True)


def table(figures: dict[str, Any]) -> str:
    p, c, r, rec = figures["pipeline"], figures["ceiling"], figures["replay"], figures["recovery"]
    agg = figures["aggregation"]
    lines = [
        "| figure | value | goal |",
        "|---|---:|---|",
        f"| ceiling: raw produce → consume, {c['message_bytes']} B messages | {c['messages_per_s']:,.0f} msg/s | |",
        f"| ceiling: raw round trip p50 / p99 | {c['round_trip_p50_ms']:.1f} / {c['round_trip_p99_ms']:.1f} ms | |",
        f"| pipeline: one worker, {p['commands_done']:,} commands in {p['seconds']:.0f} s | "
        f"{p['commands_per_s']:,.0f} cmd/s | |",
        f"| pipeline / ceiling | {p['ratio_to_ceiling']:.1%} | ≥ 30 % |",
    ]
    raw_p99 = c["round_trip_p99_ms"]
    for name, load in figures["latency"].items():
        if name == "api_peak_rss_mb":
            continue
        lines.append(
            f"| latency HTTP → SSE at {name} (achieved {load['achieved_per_s']:.0f}/s), p50 / p95 / p99 | "
            f"{load['sse_p50_ms']:.0f} / {load['sse_p95_ms']:.0f} / {load['sse_p99_ms']:.0f} ms"
            + (f" (p99 {load['sse_p99_ms'] / raw_p99:.0f}× the raw round trip's)" if name != "saturation" else "")
            + f" | {'p99 ≤ 5× the raw round trip p99' if name != 'saturation' else ''} |"
        )
        lines.append(
            f"| … of which HTTP write → the worker's decision, p50 / p99 | "
            f"{load['decided_p50_ms']:.0f} / {load['decided_p99_ms']:.0f} ms | |"
        )
    lines += [
        f"| aggregation: PositionStated at 10 / 10,000 supporters (median) | {agg[10]['position_stated_us_median']:.1f} / "
        f"{agg[10_000]['position_stated_us_median']:.1f} µs ({agg[10_000]['position_stated_us_median'] / agg[10]['position_stated_us_median']:.2f}×) | within 2× |",
        f"| replay: decode + evolve, {r['events']:,} events, one process | {r['events_per_s']:,.0f} events/s | ≥ 100,000/s |",
        f"| replay: the same, its {r['parallel_partitions']} partitions over {r['parallel_processes']} processes "
        f"| {r['parallel_events_per_s']:,.0f} events/s | ≥ 100,000/s |",
        *(
            f"| insight at {n:,} members × 50 items: suggestions / what-if (policy) / what-if (concessions), median "
            f"| {i['suggestions']['median_ms']:.1f} / {i['what_if_policy']['median_ms']:.1f} / "
            f"{i['what_if_concessions']['median_ms']:.1f} ms | < 1 s |"
            for n, i in figures.get("insight", {}).items()
        ),
        *(
            f"| state document at {n:,} members × {figures['state_documents'][n]['document_bytes'] / 1024:.0f} KiB: "
            f"changed rows / whole (median) | {d['rows_us_median']:.0f} / {d['whole_us_median']:.0f} µs | |"
            for n, d in figures["state_documents"].items()
        ),
        *recovery_table(rec).splitlines()[2:],
        f"| memory: worker / API peak RSS | {p['worker_peak_rss_mb']:.0f} / "
        f"{figures['latency']['api_peak_rss_mb']:.0f} MB | |",
    ]
    if "memory" in figures:
        week, forever = figures["memory"]["week"], figures["memory"]["forever"]
        lines.append(
            f"| memory: a worker's table after {week[len(week) // 2 - 1]['positions_decided']:,} / "
            f"{week[-1]['positions_decided']:,} position changes over {week[-1]['weeks']:.0f} weeks (every id kept) | "
            f"{week[len(week) // 2 - 1]['rss_mb']:.0f} / {week[-1]['rss_mb']:.0f} MB "
            f"({forever[len(forever) // 2 - 1]['rss_mb']:.0f} / {forever[-1]['rss_mb']:.0f} MB) "
            f"| flat in the commands decided |"
        )
    for outcome in figures.get("faults", []):
        f = outcome["figures"] or {}
        healed = f.get("healed_after_fault_s")
        lines.append(
            f"| fault {outcome['fault']}: acknowledged writes during it, p50 / p99 (healed after) | "
            f"{f.get('p50_ms') or 0:,.0f} / {f.get('p99_ms') or 0:,.0f} ms "
            f"({'-' if healed is None else f'{healed:.1f} s'}){'' if outcome['ok'] else ' FAILED'} | |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", help="an existing Kafka; by default a local one is started")
    parser.add_argument("--negotiations", type=int, default=1_000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--positions", type=int, default=400_000, help="position changes after the invitations")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the pipeline is measured at most")
    parser.add_argument("--ceiling-messages", type=int, default=200_000)
    parser.add_argument("--recovery-events", type=int, default=1_000_000, help="events behind the recovered partition")
    parser.add_argument("--recovery-after", type=int, default=10_000, help="events after its checkpoint")
    parser.add_argument("--rate", type=float, default=200.0, help="offered HTTP writes per second")
    parser.add_argument("--writes", type=int, default=2_000, help="HTTP writes per latency run")
    parser.add_argument("--json", dest="json_path", default="bench-results.json")
    parser.add_argument("--no-faults", dest="faults", action="store_false", help="skip the fault scenarios")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    try:
        with kafka(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as folder:
            figures = asyncio.run(run(args, bootstrap, Path(folder)))
            say("latency: HTTP write → SSE message")
            figures["latency"] = latency(bootstrap, Path(folder), [args.rate, 0.0], args.writes)
        say("state documents: drawn from changed rows, against drawn whole")
        figures["state_documents"] = state_documents([10, 50, 200, 1_000], args.items)
        say("aggregation: one PositionStated as supporters grow")
        rng = random.Random(3)
        # As many samples as ``make bench-aggregation`` takes, for a steady median.
        figures["aggregation"] = {n: aggregation.measure(n, 3_000, rng) for n in (10, 100, 1_000, 10_000)}
        say("memory: a worker's table over eight weeks of decisions (tests/bench/memory.py)")
        from tests.bench import memory

        figures["memory"] = memory.measure()
        say("insight: suggestions and what-if at 10 / 100 / 1,000 members x 50 items")
        figures["insight"] = {n: insight.measure(n, 10) for n in insight.SIZES}
        if args.faults:
            say("faults: each fault of the fault suite under twelve members' load (tests/reliability)")
            from tests.reliability import faults

            with tempfile.TemporaryDirectory() as folder:
                outcomes = Path(folder) / "faults.json"
                faults.main(["--json", str(outcomes)])
                figures["faults"] = json.loads(outcomes.read_text())
    finally:
        # What was measured is kept even when a later step fails.
        Path(args.json_path).write_text(json.dumps(figures, indent=2, default=str))
    machine = figures.get("machine", {})
    print(f"{machine.get('when', '')}: {machine.get('cores', '?')} cores, Python {machine.get('python', '?')}, "
          f"{machine.get('platform', '?')}\n")  # fmt: skip
    print(table(figures))
    print(f"\n(figures in {args.json_path})")


if __name__ == "__main__":
    main()
