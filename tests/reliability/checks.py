"""What must hold after a fault, read from the hub's own records.

The topics are read with ``isolation_level="read_committed"``: a record of an aborted (or fenced)
transaction is not part of the log any reader acts on. The truth is the events topic; the state
topic's latest document per negotiation, the read model's tables and the API's answers must each
equal a pure replay of it (``streams.core.state.evolve`` and ``streams.core.views``), and every
write the API acknowledged must be in it exactly once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import httpx
from sqlmodel import Session, select

from schemas.common import number_to_json
from schemas.documents import SharedState
from schemas.events import Event, PositionStated
from services.readmodel.store import create_db_engine
from services.readmodel.tables import EventRow, MemberRow, NegotiationRow, PositionRow
from streams.codec import decode_event
from streams.core.state import NegotiationState, SequenceGap, evolve
from streams.core.views import shared_state
from tests.integration.harness import latest_states, read_topic
from tests.reliability.harness import Hub
from tests.reliability.load import Cast, Load, Write


@dataclass
class EventLog:
    """The events topic as read (read_committed), in offset order per partition."""

    records: list[tuple[int, int, Event]]
    """(partition, offset, event)."""

    @property
    def by_negotiation(self) -> dict[str, list[Event]]:
        grouped: dict[str, list[Event]] = defaultdict(list)
        for _, _, event in self.records:
            grouped[event.negotiation_id].append(event)
        return grouped

    def last_sequences(self) -> dict[str, int]:
        return {nid: max(e.sequence for e in events) for nid, events in self.by_negotiation.items()}


def read_events(hub: Hub, isolation_level: str = "read_committed") -> EventLog:
    records = asyncio.run(read_topic(hub.bootstrap, hub.topic("events"), isolation_level))
    return EventLog([(r.partition, r.offset, decode_event(r.headers, r.value)) for r in records])


def read_states(hub: Hub) -> dict[str, SharedState]:
    return latest_states(asyncio.run(read_topic(hub.bootstrap, hub.topic("state"))))


def replay_lenient(events: Iterable[Event]) -> tuple[NegotiationState | None, str | None]:
    """The pure replay (duplicates of a sequence are skipped, as ``evolve`` does); a gap stops it."""
    state: NegotiationState | None = None
    for event in events:
        try:
            state = evolve(state, event)
        except SequenceGap as exc:
            return state, str(exc)
    return state, None


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    count: int = 0
    """How many offending cases (0 when ``ok``)."""

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass
class Settled:
    ok: bool
    seconds: float
    detail: str = ""


def settle(hub: Hub, negotiations: list[str], timeout: float = 120) -> Settled:
    """Wait until the read model and the state topic have reached the events topic's last sequences.

    Does not fail: the checks that follow say what differs when it does not settle.
    """
    started = time.monotonic()
    engine = create_db_engine(hub.database_url)
    detail = ""
    try:
        while time.monotonic() - started < timeout:
            last = read_events(hub).last_sequences()
            with Session(engine) as session:
                projected = {row.id: row.sequence for row in session.exec(select(NegotiationRow)).all()}
            documents = {nid: s.sequence for nid, s in read_states(hub).items()}
            behind = {
                nid: {"events": last.get(nid), "read_model": projected.get(nid), "state": documents.get(nid)}
                for nid in negotiations
                if not (last.get(nid) is not None and last.get(nid) == projected.get(nid) == documents.get(nid))
            }
            if not behind:
                return Settled(True, time.monotonic() - started)
            detail = json.dumps(behind)
            time.sleep(0.5)
    finally:
        engine.dispose()
    return Settled(False, time.monotonic() - started, f"not settled after {timeout:.0f} s: {detail}")


def _json_number(value: Fraction | None) -> Any:
    return None if value is None else number_to_json(value)


def check_all(hub: Hub, cast: Cast, load: Load) -> tuple[list[Check], EventLog]:
    """Every invariant of the suite; see the module docstring."""
    writes = load.snapshot()
    events = read_events(hub)
    states = read_states(hub)
    checks = [
        check_refusals(writes),
        check_answered(writes),
        *check_events_topic(events, "events topic"),
        check_applied_once(writes, events),
        check_acknowledged_in_log(writes, events),
    ]
    replayed: dict[str, NegotiationState] = {}
    gaps: list[str] = []
    for nid, negotiation_events in events.by_negotiation.items():
        state, gap = replay_lenient(negotiation_events)
        if state is not None:
            replayed[nid] = state
        if gap:
            gaps.append(gap)
    checks.append(check_state_topic(states, replayed))
    checks.append(check_read_model(hub, replayed, events))
    checks.append(check_final_positions(hub, cast, writes, replayed))
    return checks, events


def check_refusals(writes: list[Write]) -> Check:
    refused = [w for w in writes if w.refused]
    statuses = Counter(w.status for w in refused)
    examples = "; ".join(f"{w.status} {w.body[:160]}" for w in refused[:3])
    return Check(
        "0 valid writes refused (4xx)",
        not refused,
        f"{len(refused)} refused {dict(statuses)}" + (f", e.g. {examples}" if examples else ""),
        len(refused),
    )


def check_answered(writes: list[Write]) -> Check:
    open_ = [w for w in writes if w.status is None]
    return Check(
        "every write answered (none given up after the drain)",
        not open_,
        f"{len(open_)} never answered" + (f", e.g. {open_[0].idempotency_key}" if open_ else ""),
        len(open_),
    )


def check_events_topic(log: EventLog, what: str) -> list[Check]:
    """No event id twice, no (negotiation, sequence) twice, sequences 1..n per negotiation."""
    ids = Counter(e.event_id for _, _, e in log.records)
    twice_ids = {i: n for i, n in ids.items() if n > 1}
    sequences = Counter((e.negotiation_id, e.sequence) for _, _, e in log.records)
    twice_seq = [(nid, seq, n) for (nid, seq), n in sequences.items() if n > 1]
    where: dict[tuple[str, int], list[str]] = defaultdict(list)
    for partition, offset, e in log.records:
        if sequences[(e.negotiation_id, e.sequence)] > 1:
            where[(e.negotiation_id, e.sequence)].append(f"p{partition}@{offset} {e.type} {e.event_id[:8]}")
    gapless = []
    for nid, events in log.by_negotiation.items():
        seqs = sorted({e.sequence for e in events})
        if seqs != list(range(1, len(seqs) + 1)):
            gapless.append(f"{nid[:8]}: {len(seqs)} sequences from {seqs[0]} to {seqs[-1]}")
    examples = "; ".join(f"{nid[:8]}#{seq}: {where[(nid, seq)]}" for nid, seq, _ in twice_seq[:3])
    return [
        Check(
            f"no event id twice in the {what}",
            not twice_ids,
            f"{len(twice_ids)} event ids more than once" if twice_ids else f"{len(ids)} events",
            len(twice_ids),
        ),
        Check(
            f"no (negotiation, sequence) twice in the {what}",
            not twice_seq,
            f"{len(twice_seq)} sequences written more than once" + (f", e.g. {examples}" if examples else ""),
            len(twice_seq),
        ),
        Check(f"sequences 1..n gapless per negotiation in the {what}", not gapless, "; ".join(gapless), len(gapless)),
    ]


def _stated(log: EventLog) -> list[PositionStated]:
    return [e for _, _, e in log.records if isinstance(e, PositionStated)]


def check_applied_once(writes: list[Write], log: EventLog) -> Check:
    """Each write's value is stated at most once (a command applied twice states it twice)."""
    by_value = Counter(int(e.position.value) for e in _stated(log) if e.position.value is not None)
    by_command = Counter(e.command_id for e in _stated(log))
    twice = sorted(v for v, n in by_value.items() if n > 1)
    commands_twice = sum(1 for n in by_command.values() if n > 1)
    ours = {w.value for w in writes}
    return Check(
        "0 commands applied twice",
        not twice and not commands_twice,
        f"{len(twice)} values stated more than once ({sum(v in ours for v in twice)} of this load), "
        f"{commands_twice} command ids with more than one PositionStated" + (f", e.g. {twice[:5]}" if twice else ""),
        len(twice) + commands_twice,
    )


def check_acknowledged_in_log(writes: list[Write], log: EventLog) -> Check:
    """Every acknowledged write is a PositionStated event in the log."""
    stated = {int(e.position.value) for e in _stated(log) if e.position.value is not None}
    missing = [w for w in writes if w.acknowledged and w.value not in stated]
    acked = sum(w.acknowledged for w in writes)
    return Check(
        "0 acknowledged writes missing from the events topic",
        not missing,
        f"{len(missing)} of {acked} acknowledged writes not in the log"
        + (f", e.g. {[w.idempotency_key for w in missing[:5]]}" if missing else ""),
        len(missing),
    )


def check_state_topic(states: dict[str, SharedState], replayed: dict[str, NegotiationState]) -> Check:
    want = {nid: shared_state(state) for nid, state in replayed.items()}
    differ = sorted(nid for nid in want.keys() | states.keys() if want.get(nid) != states.get(nid))
    detail = "; ".join(
        f"{nid[:8]}: document at {getattr(states.get(nid), 'sequence', None)}, replay at "
        f"{getattr(want.get(nid), 'sequence', None)}"
        for nid in differ[:5]
    )
    return Check("state topic's latest document = pure replay of the events topic", not differ, detail, len(differ))


def check_read_model(hub: Hub, replayed: dict[str, NegotiationState], log: EventLog) -> Check:
    engine = create_db_engine(hub.database_url)
    problems: list[str] = []
    try:
        with Session(engine) as session:
            rows = {row.id: (row.phase, row.sequence, row.round) for row in session.exec(select(NegotiationRow))}
            want_rows = {nid: (s.phase, s.sequence, s.round) for nid, s in replayed.items()}
            if rows != want_rows:
                problems.append(f"negotiations {rows} != replay {want_rows}")
            members = {(r.negotiation_id, r.organisation_id, r.weight) for r in session.exec(select(MemberRow))}
            want_members = {
                (nid, m.organisation_id, m.weight) for nid, s in replayed.items() for m in s.members.values()
            }
            if members != want_members:
                problems.append(f"{len(members ^ want_members)} member rows differ")
            positions = {
                (r.negotiation_id, r.organisation_id, r.item_key, r.priority, r.value, r.rationale)
                for r in session.exec(select(PositionRow))
            }
            want_positions = {
                (
                    nid,
                    member_id,
                    key,
                    p.priority,
                    None if p.value is None else json.dumps(_json_number(p.value)),
                    p.rationale,
                )
                for nid, s in replayed.items()
                for member_id, stated in s.positions.items()
                for key, p in stated.items()
            }
            if positions != want_positions:
                problems.append(
                    f"{len(positions - want_positions)} position rows not in the replay, "
                    f"{len(want_positions - positions)} of the replay's not in the read model"
                )
            logged = {(r.negotiation_id, r.sequence): r.event_id for r in session.exec(select(EventRow))}
            first_in_topic: dict[tuple[str, int], str] = {}
            for _, _, event in log.records:
                first_in_topic.setdefault((event.negotiation_id, event.sequence), event.event_id)
            if logged != first_in_topic:
                differ = {k for k in logged.keys() | first_in_topic.keys() if logged.get(k) != first_in_topic.get(k)}
                problems.append(f"{len(differ)} rows of the events table differ from the topic")
    finally:
        engine.dispose()
    return Check("read model = pure replay of the events topic", not problems, "; ".join(problems), len(problems))


PositionKey = tuple[str, str, str]
"""(negotiation, member, item)."""


def expected_positions(writes: list[Write]) -> dict[PositionKey, set[int | None]]:
    """The values each (negotiation, member, item) may end with: its last acknowledged write's, or
    that of a later write that was never answered (it may have taken effect). Refused writes
    changed nothing. A member writes one write after another, in the order of their values."""
    expected: dict[PositionKey, set[int | None]] = {}
    by_key: dict[PositionKey, list[Write]] = defaultdict(list)
    for w in writes:
        by_key[(w.negotiation_id, w.member_id, w.item_key)].append(w)
    for key, ws in by_key.items():
        ws.sort(key=lambda w: w.value)
        acked = [i for i, w in enumerate(ws) if w.acknowledged]
        start = acked[-1] if acked else 0
        allowed: set[int | None] = {w.value for w in ws[start:] if w.acknowledged or w.status is None}
        if allowed and not acked:
            allowed.add(None)  # none acknowledged: the open ones may all have come to nothing
        if allowed:
            expected[key] = allowed
    return expected


def check_final_positions(hub: Hub, cast: Cast, writes: list[Write], replayed: dict[str, NegotiationState]) -> Check:
    """The last acknowledged write of each member on each item is its position, in the replay and
    through the API (a write that was never answered after it may have replaced it)."""
    expected = expected_positions(writes)
    api: dict[PositionKey, int | None] = {}
    auth = {"Authorization": f"Bearer {cast.coordinator.api_key}"}
    with httpx.Client(base_url=hub.base_url, headers=auth, timeout=30) as client:
        for nid in cast.negotiations:
            response = client.get(f"/v1/negotiations/{nid}/positions")
            response.raise_for_status()
            for p in response.json():
                api[(nid, p["member_id"], p["item_key"])] = None if p["value"] is None else int(p["value"])
    in_replay: dict[PositionKey, int | None] = {
        (nid, member_id, key): None if p.value is None else int(p.value)
        for nid, s in replayed.items()
        if nid in cast.negotiations
        for member_id, stated in s.positions.items()
        for key, p in stated.items()
    }
    lost_replay = [k for k, allowed in expected.items() if in_replay.get(k) not in allowed]
    lost_api = [k for k, allowed in expected.items() if api.get(k) not in allowed]
    extra = sorted((in_replay.keys() | api.keys()) - expected.keys())
    detail = (
        f"{len(expected)} (negotiation, member, item) positions; {len(lost_replay)} not the last acknowledged "
        f"in the replay, {len(lost_api)} through the API, {len(extra)} unexpected"
    )
    examples = [
        f"{k[0][:8]}/{k[2]}: want one of {sorted(expected[k], key=str)}, replay {in_replay.get(k)}, API {api.get(k)}"
        for k in (lost_replay or lost_api)[:3]
    ]
    ok = not lost_replay and not lost_api and not extra
    return Check(
        "0 acknowledged writes lost (final positions)",
        ok,
        detail + (": " + "; ".join(examples) if examples else ""),
        len(lost_replay) + len(lost_api) + len(extra),
    )


@dataclass
class Figures:
    """How the hub answered while a fault lasted: over the writes in progress during the window
    (injection to the faulty part's return), the p50/p99 latency of those acknowledged (first
    attempt to 2xx) and their retries; then how soon after the injection any write, and every
    negotiation, was acknowledged again; and the same writes' latency before the fault."""

    window_s: float
    writes: int
    acknowledged: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    retries: int
    retry_outcomes: dict[str, int] = field(default_factory=dict)
    first_ack_after_fault_s: float | None = None
    healed_after_fault_s: float | None = None
    """Until every negotiation had an acknowledged write that started after the fault."""
    first_ack_after_ready_s: float | None = None
    """From the moment the restarted process (or broker) was ready to the next acknowledged write."""
    longest_silence_s: float | None = None
    """The longest time in the window in which no write at all was acknowledged."""
    baseline_p50_ms: float | None = None
    baseline_p99_ms: float | None = None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def figures(
    writes: list[Write], negotiations: list[str], injected: float, window_end: float, ready: float | None
) -> Figures:
    """The figures of a fault window [injected, window_end] (see ``Figures``).

    The window's writes are those in progress at some moment of it: started before its end and
    finished (or still open) after its start, so the writes the fault caught in flight count.
    """
    during = [w for w in writes if w.started <= window_end and (w.finished is None or w.finished >= injected)]
    acked = [w for w in during if w.acknowledged]
    latencies = [w.latency * 1000 for w in acked]
    before = [w.latency * 1000 for w in writes if w.acknowledged and w.finished is not None and w.finished < injected]
    outcomes = Counter(a.outcome for w in during for a in w.retries)
    after = sorted(w.finished for w in writes if w.acknowledged and w.finished is not None and w.finished > injected)
    healed: float | None = 0.0
    for nid in negotiations:
        first = min(
            (
                w.finished
                for w in writes
                if w.negotiation_id == nid and w.acknowledged and w.started > injected and w.finished
            ),
            default=None,
        )
        healed = None if first is None or healed is None else max(healed, first - injected)
    after_ready = [t for t in after if ready is not None and t > ready]
    # The longest stretch without any acknowledgement, from the injection to the first one after the window.
    until = next((t for t in after if t > window_end), window_end)
    marks = [injected, *[t for t in after if t <= until], until]
    return Figures(
        window_s=round(window_end - injected, 2),
        writes=len(during),
        acknowledged=len(acked),
        p50_ms=_round(_percentile(latencies, 0.5)),
        p99_ms=_round(_percentile(latencies, 0.99)),
        max_ms=_round(max(latencies, default=None)),
        retries=sum(outcomes.values()),
        retry_outcomes=dict(outcomes),
        first_ack_after_fault_s=_round(after[0] - injected if after else None, 3),
        healed_after_fault_s=_round(healed, 3),
        first_ack_after_ready_s=_round(after_ready[0] - ready if after_ready and ready is not None else None, 3),
        longest_silence_s=_round(max(b - a for a, b in itertools.pairwise(marks)), 3),
        baseline_p50_ms=_round(_percentile(before, 0.5)),
        baseline_p99_ms=_round(_percentile(before, 0.99)),
    )


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
