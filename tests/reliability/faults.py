"""Fault scenarios on the hub as deployed, under load, with figures and the suite's invariants.

Each scenario starts the hub (``tests.reliability.harness.Hub``: a 3-broker Kafka, two workers,
the projector, the webhook dispatcher and the API, each its own process), sets up twelve members
on three negotiations, starts the load (``tests.reliability.load``), injects one fault, arranged
by what the processes log rather than by the clock, lets the load run on, drains it, waits until
the read model and the state topic have caught up with the events topic, and checks
(``tests.reliability.checks``).

    python -m tests.reliability.faults [--fault NAME ...] [--json PATH] [--load-s 45]

Faults (``--fault``, repeatable; default: all):

- ``none``: no fault, the baseline.
- ``worker-kill``: the worker owning most of the load's negotiations SIGKILLed; once the other
  has been assigned its partitions and rebuilt its tables, it is restarted.
- ``broker-rebalance``: the broker leading most partitions of the events topic (those holding the
  load's negotiations first) SIGKILLed, then a worker SIGKILLed so the group rebalances while the
  broker is down; once the survivor has been assigned every partition and rebuilt its tables
  during the outage, the broker is restarted, then the worker.
- ``broker-join``: as ``broker-rebalance``, but the group's coordinator is spared and a third
  worker joins right after the kill, so every worker rebuilds its tables during the outage.
- ``projector-kill``: the projector SIGKILLed; restarted once a write has had to be retried.
- ``api-kill``: the API SIGKILLed with at least six requests in flight, and restarted.
- ``zombie``: the worker owning most of the load's negotiations SIGSTOPped until the other one
  has been assigned its partitions (past the 10 s session) and acknowledged writes on them; then
  SIGCONTed, and the zombie must exit or rejoin without a write next to its successor's.

A process that exits on its own is restarted (the deployment's restart policy) and reported.

Figures per fault, over its window (from the injection to the faulty part's return) and the
writes in progress during it (those it caught in flight included): the p50/p99 latency of those
acknowledged (first attempt to 2xx) and their retries; how soon after the injection any write was
acknowledged, and every negotiation had an acknowledged write started after it (healed); the
first acknowledged write after the restarted process or broker was ready; the longest time in
which nothing at all was acknowledged; and the latency before the fault, for comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from rich.console import Console
from rich.table import Table

from infra.kafka import KafkaCluster
from tests.reliability.checks import Check, EventLog, Figures, Settled, check_all, figures, read_events, settle
from tests.reliability.harness import Hub, HubSettings, LogLine, Service, assigned_partitions, wait_for
from tests.reliability.load import Cast, Load, cast

log = structlog.get_logger("koopkracht.reliability")

WARMUP_ACKS = 60
"""Acknowledged writes before the fault: every process has served the load."""
AFTER_ACKS = 30
"""Answered writes after the fault window, before the load stops."""


@dataclass
class Context:
    """What a fault works with, and where it writes down what it did."""

    hub: Hub
    load: Load
    cast: Cast
    timeline: list[tuple[float, str]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    excerpts: list[str] = field(default_factory=list)

    def note(self, what: str) -> float:
        now = time.monotonic()
        self.timeline.append((round(now - self.load.started_at, 2), what))
        log.info("scenario", what=what)
        return now

    def soft_wait(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait for ``condition``; when it does not come, say so in the timeline and go on."""
        try:
            return wait_for(condition, timeout, what)
        except AssertionError:
            self.note(f"NOT SEEN within {timeout:.0f} s: {what}")
            return None

    def excerpt(self, service: Service, since: int, events: tuple[str, ...] = (), limit: int = 12) -> None:
        """Keep the lines of a process's log since ``since`` that matter: these events, warnings, errors."""
        kept = [
            line
            for line in service.lines(since)
            if line.get("event") in events
            or (line.get("level") in ("warning", "error", "critical") and not _client_noise(line))
        ]
        for line in kept[:limit]:
            self.excerpts.append(f"{service.name}: {json.dumps(line)[:300]}")
        if len(kept) > limit:
            self.excerpts.append(f"{service.name}: ... {len(kept) - limit} more such lines")


def _short(text: str, lines: int = 6, width: int = 300) -> str:
    return "\n".join(line[:width] for line in text.splitlines()[-lines:])


CLIENT_NOISE = ("Unable connect to", "Failed fetch messages", "Unable to request metadata", "NodeNotReadyError")


def _client_noise(line: LogLine) -> bool:
    """The Kafka client's complaints about a broker that is down: many a second, all alike."""
    return any(text in str(line.get("event")) for text in CLIENT_NOISE)


@dataclass
class Window:
    injected: float
    end: float
    ready: float | None


# -- where the load lives ---------------------------------------------------------------------


def negotiation_partitions(ctx: Context) -> dict[str, int]:
    """Which partition of the events topic (and so of the commands topic) holds each negotiation."""
    events = read_events(ctx.hub)
    return {e.negotiation_id: p for p, _, e in events.records if e.negotiation_id in ctx.cast.negotiations}


def owned(worker: Service) -> set[int]:
    lines = worker.find("partitions assigned")
    return assigned_partitions(lines[-1]) if lines else set()


def busiest_worker(ctx: Context) -> tuple[Service, Service, set[int]]:
    """(the worker that owns most of the load's negotiations, the other one, the victim's partitions)."""
    partitions = set(negotiation_partitions(ctx).values())
    first, second = ctx.hub.workers()[:2]
    victim, other = (
        (first, second) if len(owned(first) & partitions) >= len(owned(second) & partitions) else (second, first)
    )
    ctx.notes["negotiation_partitions"] = sorted(partitions)
    ctx.notes["victim"] = {"name": victim.name, "partitions": sorted(owned(victim))}
    return victim, other, owned(victim)


def answered_everywhere_after(ctx: Context, after: float) -> bool:
    return all(ctx.load.answered_on(nid, after) for nid in ctx.cast.negotiations)


# -- the faults ------------------------------------------------------------------------------


def no_fault(ctx: Context) -> Window:
    now = ctx.note("no fault")
    return Window(now, now, None)


def worker_kill(ctx: Context) -> Window:
    victim, survivor, partitions = busiest_worker(ctx)
    mark = survivor.mark()
    injected = ctx.note(f"SIGKILL {victim.name} (partitions {sorted(partitions)})")
    ctx.hub.kill(victim.name)
    took = survivor.wait_log("partitions assigned", mark, 60, lambda line: partitions <= assigned_partitions(line))
    ctx.note(f"{survivor.name} assigned {sorted(assigned_partitions(took))}")
    ctx.soft_wait(lambda: survivor.find("tables recovered", mark), 60, f"{survivor.name} recovered its tables")
    ctx.note(f"{survivor.name} recovered its tables")
    restart = ctx.hub.restart(victim.name)
    ctx.note(f"{victim.name} restarted")
    victim.wait_log("tables recovered", restart, 90)
    ready = ctx.note(f"{victim.name} recovered its tables")
    ctx.soft_wait(lambda: survivor.find("tables recovered", restart), 60, f"{survivor.name} recovered after the rejoin")
    ctx.excerpt(survivor, mark, ("partitions assigned", "partitions revoked", "tables recovered"))
    ctx.excerpt(victim, restart, ("partitions assigned", "tables recovered"))
    return Window(injected, time.monotonic(), ready)


def broker_to_kill(ctx: Context, spare: int | None = None) -> tuple[int, int, dict[int, int]]:
    """The broker that leads most partitions of the events topic, counting first those that hold
    the load's negotiations (so the outage hits the load); ``spare`` is never chosen."""
    leaders = ctx.hub.leaders("events")
    loaded = set(negotiation_partitions(ctx).values())
    candidates = {n for n in leaders.values() if n != spare}
    node = max(
        sorted(candidates),
        key=lambda n: (
            sum(1 for p, leader in leaders.items() if leader == n and p in loaded),
            sum(1 for leader in leaders.values() if leader == n),
        ),
    )
    led = sorted(p for p, n in leaders.items() if n == node)
    ctx.notes["broker"] = {
        "node": node,
        "leads_events_partitions": led,
        "negotiation_partitions": sorted(loaded),
        "spared": spare,
    }
    return node, len(led), leaders


def broker_during_rebalance(ctx: Context) -> Window:
    hub = ctx.hub
    node, led, leaders = broker_to_kill(ctx)
    partitions = len(hub.leaders("commands"))
    victim, survivor = hub.workers()[:2]
    mark = survivor.mark()
    injected = ctx.note(
        f"SIGKILL broker {node} (leads {led} of {len(leaders)} events partitions: {ctx.notes['broker']})"
    )
    hub.kill_broker(node)
    ctx.note(f"SIGKILL {victim.name}: the group rebalances while broker {node} is down")
    hub.kill(victim.name)
    took = survivor.wait_log("partitions assigned", mark, 90, lambda line: len(assigned_partitions(line)) == partitions)
    ctx.note(f"{survivor.name} assigned {sorted(assigned_partitions(took))} during the outage")
    recovered: LogLine | None = ctx.soft_wait(
        lambda: next(iter(survivor.find("tables recovered", mark)), None),
        90,
        f"{survivor.name} to recover its tables during the outage",
    )
    if recovered is not None:
        ctx.notes["recovery_during_outage"] = {
            k: recovered.get(k) for k in ("events", "negotiations", "to_replay", "seconds")
        }
        ctx.note(f"{survivor.name} recovered during the outage: {ctx.notes['recovery_during_outage']}")
    hub.restart_brokers()
    ready = ctx.note(f"broker {node} restarted and registered")
    ctx.soft_wait(
        lambda: answered_everywhere_after(ctx, ready), 60, "an answer on every negotiation after the broker's return"
    )
    ctx.note("every negotiation answered after the broker's return")
    restart = hub.restart(victim.name)
    ctx.note(f"{victim.name} restarted")
    ctx.soft_wait(lambda: victim.find("tables recovered", restart), 90, f"{victim.name} to recover its tables")
    ctx.note(f"{victim.name} recovered its tables")
    ctx.excerpt(survivor, mark, ("partitions assigned", "partitions revoked", "tables recovered"), limit=20)
    ctx.excerpt(victim, restart, ("partitions assigned", "tables recovered"))
    return Window(injected, time.monotonic(), ready)


def broker_during_join(ctx: Context) -> Window:
    """The broker leading most events partitions (the worker group's coordinator spared, so the
    group can rebalance at once) SIGKILLed, and a third worker started right away: every worker
    rebuilds its tables while the dead broker may still be the partitions' leader."""
    hub = ctx.hub
    coordinator = hub.coordinator()
    node, count, leaders = broker_to_kill(ctx, spare=coordinator)
    workers = hub.workers()
    marks = {w.name: w.mark() for w in workers}
    injected = ctx.note(
        f"SIGKILL broker {node} (leads {count} of {len(leaders)} events partitions; coordinator {coordinator})"
    )
    hub.kill_broker(node)
    joiner, joined = hub.add_worker()
    ctx.note(f"{joiner.name} started: the group rebalances while broker {node} is down")
    marks[joiner.name] = joined
    for worker in [*workers, joiner]:
        took = worker.wait_log(
            "partitions assigned", marks[worker.name], 90, lambda line: bool(assigned_partitions(line))
        )
        ctx.note(f"{worker.name} assigned {sorted(assigned_partitions(took))} during the outage")
    recoveries = {}
    for worker in [*workers, joiner]:
        line = ctx.soft_wait(
            lambda: next(iter(worker.find("tables recovered", marks[worker.name])), None),
            90,
            f"{worker.name} to recover its tables during the outage",
        )
        if line is not None:
            recoveries[worker.name] = {k: line.get(k) for k in ("partitions", "events", "negotiations", "seconds")}
            ctx.note(f"{worker.name} recovered during the outage: {recoveries[worker.name]}")
    ctx.notes["recovery_during_outage"] = recoveries
    hub.restart_brokers()
    ready = ctx.note(f"broker {node} restarted and registered")
    ctx.soft_wait(
        lambda: answered_everywhere_after(ctx, ready), 60, "an answer on every negotiation after the broker's return"
    )
    ctx.note("every negotiation answered after the broker's return")
    for worker in [*workers, joiner]:
        ctx.excerpt(worker, marks[worker.name], ("partitions assigned", "partitions revoked", "tables recovered"))
    return Window(injected, time.monotonic(), ready)


def projector_kill(ctx: Context) -> Window:
    projector = ctx.hub.services["projector"]
    injected = ctx.note("SIGKILL projector")
    ctx.hub.kill("projector")
    ctx.soft_wait(lambda: ctx.load.retried_since(injected), 60, "a write retried (the read model stands still)")
    ctx.note("a write was retried")
    restart = ctx.hub.restart("projector")
    ctx.note("projector restarted")
    projector.wait_log("partitions assigned", restart, 60)
    ctx.hub.wait_ready(60)
    ready = ctx.note("projector assigned its partitions, the API ready")
    ctx.excerpt(projector, restart)
    return Window(injected, ready, ready)


def api_kill(ctx: Context) -> Window:
    api = ctx.hub.services["api"]
    wait_for(lambda: ctx.load.in_flight >= 6, 60, "six requests in flight")
    in_flight = ctx.load.in_flight
    injected = ctx.note(f"SIGKILL api with {in_flight} requests in flight")
    ctx.notes["in_flight_at_kill"] = in_flight
    ctx.hub.kill("api")
    ctx.soft_wait(lambda: ctx.load.retried_since(injected), 30, "a request cut off by the kill")
    restart = ctx.hub.restart("api")
    ctx.note("api restarted")
    ctx.hub.wait_ready(90)
    ready = ctx.note("api ready")
    ctx.excerpt(api, restart)
    return Window(injected, ready, ready)


def zombie(ctx: Context) -> Window:
    victim, successor, partitions = busiest_worker(ctx)
    mark = successor.mark()
    injected = ctx.note(f"SIGSTOP {victim.name} (partitions {sorted(partitions)})")
    victim.pause()
    try:
        took = successor.wait_log("partitions assigned", mark, 90, lambda line: partitions <= assigned_partitions(line))
        ctx.note(f"{successor.name} assigned {sorted(assigned_partitions(took))}")
        ctx.soft_wait(lambda: successor.find("tables recovered", mark), 60, f"{successor.name} recovered its tables")
        took_over = time.monotonic()
        mine = [nid for nid, p in negotiation_partitions(ctx).items() if p in partitions]
        ctx.notes["negotiations_taken_over"] = len(mine)
        ctx.soft_wait(
            lambda: all(
                any(w.negotiation_id == nid and w.started > took_over for w in ctx.load.acknowledged(took_over))
                for nid in mine
            ),
            60,
            f"{successor.name} acknowledging writes on the {len(mine)} negotiations it took over",
        )
        ctx.note(f"{successor.name} acknowledged writes on the negotiations it took over")
        resumed_mark = victim.mark()
    finally:
        victim.resume()
    ctx.note(f"SIGCONT {victim.name}")
    exits_before = len(ctx.hub.exits)

    def rejoined_or_exited() -> bool:
        exited = any(e.service == victim.name for e in ctx.hub.exits[exits_before:])
        return exited or not victim.alive() or bool(victim.find("partitions assigned", resumed_mark))

    ctx.soft_wait(rejoined_or_exited, 90, f"{victim.name} to exit or rejoin")
    ready = ctx.note(
        f"{victim.name} "
        + ("exited" if any(e.service == victim.name for e in ctx.hub.exits[exits_before:]) else "rejoined")
    )
    ctx.excerpt(victim, resumed_mark, ("partitions assigned", "partitions revoked", "tables recovered"), limit=20)
    ctx.excerpt(successor, mark, ("partitions assigned", "partitions revoked", "tables recovered"))
    return Window(injected, ready, ready)


FAULTS: dict[str, Callable[[Context], Window]] = {
    "none": no_fault,
    "worker-kill": worker_kill,
    "broker-rebalance": broker_during_rebalance,
    "broker-join": broker_during_join,
    "projector-kill": projector_kill,
    "api-kill": api_kill,
    "zombie": zombie,
}


# -- one scenario ----------------------------------------------------------------------------


@dataclass
class Outcome:
    fault: str
    seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)
    figures: Figures | None = None
    settled: Settled | None = None
    timeline: list[tuple[float, str]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    excerpts: list[str] = field(default_factory=list)
    exits: list[dict[str, Any]] = field(default_factory=list)
    writes: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    root: str = ""
    events: EventLog | None = field(default=None, repr=False)
    """The events topic as read (read_committed) for the checks."""

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def report(self) -> str:
        lines = [f"== {self.fault}: {'ok' if self.ok else 'FAILED'} in {self.seconds:.0f} s ({self.root})"]
        if self.error:
            lines.append(f"error: {self.error}")
        lines += [f"  t={t:7.2f}s  {what}" for t, what in self.timeline]
        lines += [f"  {c.line()}" for c in self.checks]
        if self.settled is not None:
            lines.append(f"  settled: {self.settled.ok} after {self.settled.seconds:.1f} s {self.settled.detail}")
        lines += [
            f"  exit: {e['service']} code {e['code']} at t={e['t']}, its log ended:\n{_short(e['log_tail'])}"
            for e in self.exits
        ]
        lines += [f"  log: {x}" for x in self.excerpts]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "fault": self.fault,
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "writes": self.writes,
            "figures": None if self.figures is None else dataclasses.asdict(self.figures),
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "settled": None if self.settled is None else dataclasses.asdict(self.settled),
            "timeline": self.timeline,
            "notes": self.notes,
            "exits": self.exits,
            "log_excerpts": self.excerpts,
            "root": self.root,
        }


def run_scenario(
    fault: str,
    root: Path,
    cluster: KafkaCluster | None = None,
    load_s: float = 45.0,
    pause_s: float = 0.05,
    code_root: Path | None = None,
) -> Outcome:
    """Run one fault scenario in ``root``; every process it started is stopped before it returns."""
    started = time.monotonic()
    outcome = Outcome(fault, root=str(root))
    hub = Hub(root, cluster, HubSettings(code_root=code_root))
    load: Load | None = None
    window: Window | None = None
    try:
        hub.start()
        the_cast = cast(hub.base_url, hub.admin_token)
        load = Load(hub.base_url, the_cast, pause_s=pause_s).start()
        ctx = Context(hub, load, the_cast)
        wait_for(lambda: len(load.acknowledged()) >= WARMUP_ACKS, 90, f"{WARMUP_ACKS} acknowledged writes")
        ctx.note(f"warm: {len(load.acknowledged())} writes acknowledged")
        try:
            window = FAULTS[fault](ctx)
        finally:
            outcome.timeline, outcome.notes, outcome.excerpts = ctx.timeline, ctx.notes, ctx.excerpts
        end = window.end
        ctx.soft_wait(
            lambda: (
                time.monotonic() - load.started_at >= load_s
                and sum(1 for w in load.snapshot() if w.started > end and w.status is not None) >= AFTER_ACKS
            ),
            load_s + 120,
            f"{load_s:.0f} s of load and {AFTER_ACKS} answered writes after the fault",
        )
        load.stop(drain_s=90)
        ctx.note("load stopped and drained")
        if fault == "none":
            window = Window(window.injected, load.stopped_at, None)
    except Exception as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        log.error("scenario failed", fault=fault, error=outcome.error, trace=traceback.format_exc())
    try:
        if load is not None:
            if not load.stopped_at:
                load.stop(drain_s=30)
            writes = load.snapshot()
            outcome.writes = {
                "total": len(writes),
                "acknowledged": sum(w.acknowledged for w in writes),
                "refused": sum(w.refused for w in writes),
                "unanswered": sum(w.status is None for w in writes),
                "retries": sum(len(w.retries) for w in writes),
                "retry_outcomes": dict(Counter(a.outcome for w in writes for a in w.retries)),
                "refusals": dict(Counter(str(w.status) for w in writes if w.refused)),
            }
            if window is not None:
                outcome.figures = figures(writes, load.cast.negotiations, window.injected, window.end, window.ready)
            if hub.cluster is not None and not all(n.alive for n in hub.cluster.status()):
                hub.restart_brokers()  # the fault failed half-way: check what it left, on the whole cluster
            if hub.cluster is not None:
                outcome.settled = settle(hub, load.cast.negotiations)
                outcome.checks, outcome.events = check_all(hub, load.cast, load)
                outcome.notes["events_topic_records"] = {
                    "read_committed": len(outcome.events.records),
                    "read_uncommitted": len(read_events(hub, "read_uncommitted").records),
                }
        origin = load.started_at if load else started
        outcome.exits = [
            {"service": e.service, "code": e.code, "t": round(e.at - origin, 2), "log_tail": _short(e.log_tail, 80)}
            for e in hub.exits
        ]
        outcome.timeline = sorted(
            [
                *outcome.timeline,
                *[(e["t"], f"{e['service']} exited on its own (code {e['code']}); restarted") for e in outcome.exits],
            ],
            key=lambda entry: entry[0],
        )
    except Exception as exc:
        outcome.error = (outcome.error or "") + f" checks: {type(exc).__name__}: {exc}"
        log.error("checks failed to run", fault=fault, trace=traceback.format_exc())
    finally:
        hub.stop()
        outcome.seconds = time.monotonic() - started
    return outcome


# -- the command line ------------------------------------------------------------------------


def table(outcomes: list[Outcome]) -> Table:
    t = Table(
        "fault", "result", "s", "acked", "refused", "p50 ms", "p99 ms", "retries", "1st ack", "healed",
        "after ready", "silence", "failed checks", title="Fault suite (figures over each fault's window)",
    )  # fmt: skip

    def n(value: float | None, unit: str = "") -> str:
        return "-" if value is None else f"{value:g}{unit}"

    for o in outcomes:
        f = o.figures
        t.add_row(
            o.fault,
            "ok" if o.ok else "FAILED",
            f"{o.seconds:.0f}",
            str(o.writes.get("acknowledged", "-")),
            str(o.writes.get("refused", "-")),
            n(None if f is None else f.p50_ms),
            n(None if f is None else f.p99_ms),
            n(None if f is None else f.retries),
            n(None if f is None else f.first_ack_after_fault_s, " s"),
            n(None if f is None else f.healed_after_fault_s, " s"),
            n(None if f is None else f.first_ack_after_ready_s, " s"),
            n(None if f is None else f.longest_silence_s, " s"),
            "; ".join(c.name for c in o.failed()) or (o.error or "")[:80],
        )
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fault", action="append", choices=list(FAULTS), help="repeatable; default: all")
    parser.add_argument("--json", type=Path, help="write the outcomes here")
    parser.add_argument("--load-s", type=float, default=45.0, help="seconds of load per scenario (at least)")
    parser.add_argument("--pause-s", type=float, default=0.05, help="each member's pause between writes")
    parser.add_argument("--keep", action="store_true", help="keep the scenarios' folders (logs, database)")
    parser.add_argument("--code-root", type=Path, help="run the services from this source tree (e.g. an older commit)")
    args = parser.parse_args(argv)
    faults = args.fault or list(FAULTS)
    console = Console(width=200)
    tmp = Path(tempfile.mkdtemp(prefix="koopkracht-faults-"))
    outcomes: list[Outcome] = []
    cluster: KafkaCluster | None = None
    try:
        cluster = Hub.new_cluster(tmp / "kafka")
        for fault in faults:
            outcome = run_scenario(
                fault, tmp / fault, cluster, load_s=args.load_s, pause_s=args.pause_s, code_root=args.code_root
            )
            outcomes.append(outcome)
            console.print(outcome.report(), markup=False, highlight=False)
    finally:
        if cluster is not None:
            cluster.stop()
        if args.json:
            args.json.write_text(json.dumps([o.as_json() for o in outcomes], indent=2, default=str))
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    console.print(table(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
