"""``koopkracht audit verify``: prove the log (SPEC 7.1).

Reads the events topic from its beginning (committed records only, as every reader does), checks
every negotiation's hash chain from the JSON as written (``streams.core.chain.link_problem``: each
event links to the one before and hashes to the hash it carries), replays every negotiation with
the pure core, and compares the result with the state topic (the latest document of each
negotiation, when the replay reaches its sequence) and with the read model (its ``negotiations``
row, and every event of its event log against the topic's). It names the first broken link or
difference of each negotiation; the caller exits non-zero when there is one.

Negotiations begun before the log was hashed have a chain from their first hashed event on (its
``previous_hash`` is the genesis, 64 zeros); the report says from which sequence. With
``require_hashes`` an event without hashes is a finding too (for a log that began hashed).

Nothing is written: the audit proves, it does not repair.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import TopicPartition
from pydantic import ValidationError

from schemas.events import EVENT_ADAPTER
from schemas.topics import EVENTS, STATE
from streams.connection import KafkaConnection
from streams.core.chain import canonical_json, json_hash, link_problem
from streams.core.state import NegotiationState, evolve
from streams.core.views import shared_state_data

if TYPE_CHECKING:
    from sqlalchemy import Engine

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, advance, total)``: ``total`` once when a phase's size is known, then advances."""


@dataclass
class Finding:
    """One broken link or difference: where it is and what is wrong."""

    negotiation_id: str
    source: str
    """``events topic``, ``state topic`` or ``read model``."""
    sequence: int | None
    detail: str
    location: str | None = None
    """Where the record is: ``topic[partition]@offset``, or the read model's row."""

    def __str__(self) -> str:
        where = f" at {self.location}" if self.location else ""
        event = f" event {self.sequence}" if self.sequence is not None else ""
        return f"{self.source}: negotiation {self.negotiation_id}{event}{where}: {self.detail}"


@dataclass
class NegotiationAudit:
    """What the audit found for one negotiation."""

    negotiation_id: str
    events: int = 0
    chain_from: int | None = None
    """The sequence of the first hashed event (None: no hashed event)."""
    head_hash: str | None = None
    state_topic: str = "no document"
    """``ok`` (equal at the document's sequence), ``no document``, or ``differs``."""
    read_model: str = "not checked"
    """``ok``, ``not projected``, ``not checked``, or ``differs``."""
    findings: list[Finding] = field(default_factory=list)
    # -- while reading --------------------------------------------------------------------
    sequence: int = 0
    state: NegotiationState | None = None
    broken: bool = False
    digests: list[bytes] = field(default_factory=list)
    """Per sequence, the SHA-256 of the event's canonical JSON, to compare the read model with."""

    @property
    def chain_ok(self) -> bool:
        return not any(f.source == "events topic" for f in self.findings)

    @property
    def ok(self) -> bool:
        return not self.findings

    def find(self, source: str, sequence: int | None, detail: str, location: str | None = None) -> None:
        self.findings.append(Finding(self.negotiation_id, source, sequence, detail, location))


@dataclass
class AuditReport:
    negotiations: dict[str, NegotiationAudit] = field(default_factory=dict)
    events_read: int = 0
    general: list[Finding] = field(default_factory=list)
    """Findings that belong to no negotiation (an unreadable key, a missing topic)."""

    @property
    def findings(self) -> list[Finding]:
        return self.general + [f for n in self.negotiations.values() for f in n.findings]

    @property
    def ok(self) -> bool:
        return not self.findings


def _first_difference(expected: Any, found: Any, path: str = "") -> str | None:
    """The path of the first place where two JSON values differ (None: they are equal)."""
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in sorted(expected.keys() | found.keys()):
            if key not in found or key not in expected:
                return f"{path}.{key}".lstrip(".")
            inner = _first_difference(expected[key], found[key], f"{path}.{key}")
            if inner is not None:
                return inner
        return None
    if isinstance(expected, list) and isinstance(found, list):
        if len(expected) != len(found):
            return f"{path} (length {len(expected)} vs {len(found)})".lstrip(".")
        for index, (a, b) in enumerate(zip(expected, found, strict=True)):
            inner = _first_difference(a, b, f"{path}[{index}]")
            if inner is not None:
                return inner
        return None
    return None if expected == found else (path.lstrip(".") or "the value")


async def _read_topic(
    bootstrap: KafkaConnection | str, topic: str, handle: Callable[[Any], None], progress: Progress | None, phase: str
) -> bool:
    """Every committed record of ``topic`` up to its end now, partition by partition in order;
    False when the topic does not exist."""
    kafka = KafkaConnection.of(bootstrap)
    consumer = kafka.consumer(
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="koopkracht-audit",
    )
    admin = kafka.admin(client_id="koopkracht-audit")
    await admin.start()
    try:
        (description,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if description.get("error_code") or not description.get("partitions"):
        return False
    await consumer.start()
    try:
        tps = sorted(TopicPartition(topic, p["partition"]) for p in description["partitions"])
        starts = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        if progress is not None:
            progress(phase, 0, sum(ends[tp] - starts[tp] for tp in tps))
        for tp in tps:
            if ends[tp] <= starts[tp]:
                continue  # nothing to read (and a fetch from a new, empty partition may hang)
            # One partition at a time: each negotiation lives in one, in order.
            consumer.assign([tp])
            consumer.seek(tp, starts[tp])
            while (position := await consumer.position(tp)) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
                for record in batch.get(tp, []):
                    if record.offset < ends[tp]:
                        handle(record)
                if progress is not None:
                    progress(phase, await consumer.position(tp) - position, None)
        return True
    finally:
        await consumer.stop()


def _document(data: dict[str, Any], state: NegotiationState) -> dict[str, Any]:
    """The state document the replay draws, as the state topic carries it."""
    drawn: dict[str, Any] = orjson.loads(orjson.dumps(shared_state_data(state)))
    if "head_hash" not in data:
        drawn.pop("head_hash", None)  # a document written before the log was hashed
    return drawn


_ROW_FIELDS = ("title", "phase", "sequence", "coordinator_id", "vendor_id", "demand_version", "round")


def _row_of(state: NegotiationState) -> dict[str, Any]:
    return {
        "title": state.title,
        "phase": state.phase,
        "sequence": state.sequence,
        "coordinator_id": state.coordinator_id,
        "vendor_id": state.vendor_id,
        "demand_version": state.latest_version.version if state.latest_version else None,
        "round": state.round,
    }


async def audit(
    bootstrap: KafkaConnection | str,
    topic_prefix: str,
    engine: Engine | None,
    negotiation_id: str | None = None,
    *,
    require_hashes: bool = False,
    progress: Progress | None = None,
) -> AuditReport:
    """Check the chains of the events topic, replay them, and compare with the state topic and
    (when ``engine`` is given) the read model. Only ``negotiation_id``, when given."""
    report = AuditReport()

    def wanted(key: str) -> bool:
        return negotiation_id is None or key == negotiation_id

    # The latest state document of each negotiation, compared when the replay reaches its sequence.
    documents: dict[str, tuple[int, dict[str, Any], str]] = {}

    def keep_document(record: Any) -> None:
        if record.key is None or record.value is None:
            return
        key = record.key.decode(errors="replace")
        if wanted(key):
            try:
                data = orjson.loads(record.value)
                documents[key] = (int(data["sequence"]), data, f"{record.topic}[{record.partition}]@{record.offset}")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                documents[key] = (-1, {}, f"{record.topic}[{record.partition}]@{record.offset}")

    await _read_topic(bootstrap, STATE.name(topic_prefix), keep_document, progress, "state topic")

    rows: dict[str, dict[str, Any]] = {}
    if engine is not None:
        rows = _negotiation_rows(engine, negotiation_id)

    def negotiation(key: str) -> NegotiationAudit:
        found = report.negotiations.get(key)
        if found is None:
            found = report.negotiations[key] = NegotiationAudit(key)
        return found

    def compare_at_sequence(n: NegotiationAudit) -> None:
        assert n.state is not None
        document = documents.get(n.negotiation_id)
        if document is not None and document[0] == n.sequence:
            differs = _first_difference(_document(document[1], n.state), document[1])
            if differs is None:
                n.state_topic = "ok"
            else:
                n.state_topic = "differs"
                n.find("state topic", n.sequence, f"the document differs from the replay at {differs}", document[2])
        row = rows.get(n.negotiation_id)
        if row is not None and row["sequence"] == n.sequence:
            differs = _first_difference(_row_of(n.state), row)
            if differs is None:
                n.read_model = "ok"
            else:
                n.read_model = "differs"
                n.find("read model", n.sequence, f"the negotiations row differs from the replay at {differs}")

    def check_event(record: Any) -> None:
        report.events_read += 1
        location = f"{record.topic}[{record.partition}]@{record.offset}"
        if record.key is None:
            report.general.append(Finding("?", "events topic", None, "an event without a key", location))
            return
        key = record.key.decode(errors="replace")
        if not wanted(key):
            return
        n = negotiation(key)
        n.events += 1
        if n.broken:
            return  # past the first broken link nothing can be trusted to be as written
        expected_sequence = n.sequence + 1
        try:
            data = json.loads(record.value)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (ValueError, TypeError) as exc:
            n.broken = True
            n.find("events topic", expected_sequence, f"the event is not valid JSON ({exc})", location)
            return
        sequence = data.get("sequence")
        if sequence != expected_sequence or data.get("negotiation_id") != key:
            n.broken = True
            n.find(
                "events topic",
                expected_sequence,
                f"found sequence {sequence!r} of negotiation {data.get('negotiation_id')!r} "
                f"where sequence {expected_sequence} of {key} belongs",
                location,
            )
            return
        problem = link_problem(data, n.head_hash)
        if problem is None and require_hashes and data.get("hash") is None:
            problem = "carries no hash (and every event must)"
        if problem is not None:
            n.broken = True
            n.find("events topic", expected_sequence, problem, location)
            return
        try:
            event = EVENT_ADAPTER.validate_python(data)
            n.state = evolve(n.state, event)
        except (ValidationError, ValueError) as exc:
            n.broken = True
            n.find("events topic", expected_sequence, f"the pure core cannot replay it: {exc}", location)
            return
        if n.chain_from is None and event.hash is not None:
            n.chain_from = event.sequence
        n.head_hash = event.hash or n.head_hash
        n.sequence = expected_sequence
        n.digests.append(hashlib.sha256(canonical_json(data)).digest())
        compare_at_sequence(n)

    if not await _read_topic(bootstrap, EVENTS.name(topic_prefix), check_event, progress, "events topic"):
        report.general.append(Finding("-", "events topic", None, f"there is no topic {EVENTS.name(topic_prefix)}"))
        return report
    if negotiation_id is not None and negotiation_id not in report.negotiations:
        report.general.append(Finding(negotiation_id, "events topic", None, "the events topic has no such negotiation"))

    for key, (sequence, _, location) in documents.items():
        n = negotiation(key)
        if n.state_topic == "no document" and not n.broken:
            n.state_topic = "differs"
            n.find(
                "state topic", sequence, f"the document is at sequence {sequence}, the log at {n.sequence}", location
            )
    if engine is not None:
        _compare_read_model(engine, negotiation_id, report, rows, negotiation, progress)
    return report


def _negotiation_rows(engine: Engine, negotiation_id: str | None) -> dict[str, dict[str, Any]]:
    from sqlmodel import Session, col, select

    from services.readmodel.tables import NegotiationRow

    query = select(NegotiationRow)
    if negotiation_id is not None:
        query = query.where(col(NegotiationRow.id) == negotiation_id)
    with Session(engine) as session:
        return {row.id: {name: getattr(row, name) for name in _ROW_FIELDS} for row in session.exec(query)}


def _compare_read_model(
    engine: Engine,
    negotiation_id: str | None,
    report: AuditReport,
    rows: dict[str, dict[str, Any]],
    negotiation: Callable[[str], NegotiationAudit],
    progress: Progress | None,
) -> None:
    """Every event of the read model's log against the topic's, and each row's sequence."""
    from sqlalchemy import func
    from sqlalchemy import select as sa_select
    from sqlmodel import col

    from services.readmodel.tables import EventRow

    where = [] if negotiation_id is None else [col(EventRow.negotiation_id) == negotiation_id]
    with engine.connect() as connection:
        total = connection.execute(sa_select(func.count()).select_from(EventRow).where(*where)).scalar_one()
        if progress is not None:
            progress("read model", 0, int(total))
        result = connection.execution_options(yield_per=5000).execute(
            sa_select(col(EventRow.negotiation_id), col(EventRow.sequence), col(EventRow.data))
            .where(*where)
            .order_by(col(EventRow.negotiation_id), col(EventRow.sequence))
        )
        projected: dict[str, int] = {}
        for key, sequence, text in result:
            if progress is not None:
                progress("read model", 1, None)
            n = negotiation(key)
            if projected.get(key, 0) < 0:
                continue  # a difference was named: the first one is enough
            location = f"events table, row ({key}, {sequence})"
            if sequence != projected.get(key, 0) + 1:
                detail = f"the event log jumps from {projected.get(key, 0)} to {sequence}"
                projected[key] = -1
                n.read_model = "differs"
                n.find("read model", sequence, detail, location)
                continue
            projected[key] = sequence
            problem = _row_problem(text, n, sequence)
            if problem is not None:
                projected[key] = -1
                n.read_model = "differs"
                n.find("read model", sequence, problem, location)
    for key, n in report.negotiations.items():
        if n.read_model == "differs":
            continue
        last = projected.get(key, 0)
        row = rows.get(key)
        if last > len(n.digests) and not n.broken:
            n.read_model = "differs"
            n.find(
                "read model", len(n.digests) + 1, f"the read model holds events up to {last}, the log to {n.sequence}"
            )
        elif row is not None and row["sequence"] != last:
            n.read_model = "differs"
            n.find(
                "read model", None, f"the negotiations row is at sequence {row['sequence']}, its event log at {last}"
            )
        elif n.read_model == "not checked":
            n.read_model = "not projected" if last == 0 else "ok"


def _row_problem(text: str, n: NegotiationAudit, sequence: int) -> str | None:
    """What is wrong with the read model's JSON of event ``sequence``, compared with the topic's."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return f"the stored event is not valid JSON ({exc})"
    if sequence > len(n.digests):
        return "the events topic has no such event" if not n.broken else None
    if hashlib.sha256(canonical_json(data)).digest() == n.digests[sequence - 1]:
        return None
    carried = data.get("hash")
    if carried is not None and json_hash(data) != carried:
        return (
            f"differs from the events topic: its content hashes to {json_hash(data)}, but it carries the hash {carried}"
        )
    return f"differs from the events topic, rewritten whole (it carries the hash {carried})"
