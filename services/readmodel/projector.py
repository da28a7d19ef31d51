"""The read-model projector: a consumer of the events topic that writes the read model's tables.

It also queues webhook deliveries for each event (in the same transaction), and keeps the
refusals from the command-results topic, so an API process can answer a retried command whose
first answer it never got.

Per batch of events it opens one transaction, applies each event with the pure core's ``evolve``
(so phases and rounds mean exactly what the worker meant), writes the rows the event touches,
and commits the Kafka offsets only after the transaction. An event at or below the negotiation's
projected sequence was applied before and is skipped, so delivery at least once writes each
event once: rows are upserted by (negotiation, key) and the event log by (negotiation, sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Engine, bindparam, delete
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, SQLModel, col, select
from structlog.contextvars import bind_contextvars, unbind_contextvars

from schemas.common import number_to_json
from schemas.events import (
    EVENT_ADAPTER,
    AgreementReached,
    ClarificationAnswered,
    ClarificationRequested,
    CommitmentChecked,
    CommitmentDelivered,
    CommitmentOverdue,
    CommitmentVerdictGiven,
    DemandPublished,
    EndorsementGiven,
    Event,
    MemberInvited,
    NegotiationReopened,
    PlanAccepted,
    PolicyChanged,
    PositionStated,
    PositionWithdrawn,
    RegressionReported,
    VendorResponded,
)
from schemas.results import CommandRejected
from schemas.topics import COMMAND_RESULTS, EVENTS
from services.metrics import ProjectorMetrics
from services.readmodel.exclusive import ExclusiveLock, exclusive_lock, run_alone
from services.readmodel.store import catch_up, notify_projected
from services.readmodel.tables import (
    ClarificationRow,
    CommandRefusal,
    CommitmentRow,
    Delivery,
    DeliveryAttempt,
    DemandVersionRow,
    EndorsementRow,
    EventRow,
    MemberRow,
    NegotiationRow,
    PositionRow,
    ResponseRow,
    Subscription,
)
from services.subscriptions.messages import Figures, figures_before, members_among, message
from streams.codec import DecodeError, decode_event, decode_result
from streams.connection import KafkaConnection
from streams.core.state import VENDOR_VISIBLE, Commitment, NegotiationState, SequenceGap, evolve
from streams.core.views import Audience, event_view
from streams.rebalance import BatchLock, still_assigned
from streams.tracing import Tracing

log = structlog.get_logger("koopkracht.projector")
COMMIT_EVERY_S = 0.5


class Writes:
    """A batch's rows, by table and primary key: the last write of a key wins (None: deleted).

    They are written at the end of the batch, one statement per table (an upsert, or a delete),
    instead of an ORM merge per event, which read each row before writing it.
    """

    def __init__(self) -> None:
        self.rows: dict[type[SQLModel], dict[tuple[Any, ...], SQLModel | None]] = {}
        self.new: list[SQLModel] = []

    def insert(self, row: SQLModel) -> None:
        """A row that must be new: a conflict fails the batch (an event projected twice means a
        second projector wrote meanwhile; the retry then starts from what it wrote)."""
        self.new.append(row)

    def upsert(self, row: SQLModel) -> None:
        table = row.__table__  # type: ignore[attr-defined]
        key = tuple(getattr(row, column.name) for column in table.primary_key.columns)
        self.rows.setdefault(type(row), {})[key] = row

    def delete(self, model: type[SQLModel], key: tuple[Any, ...]) -> None:
        self.rows.setdefault(model, {})[key] = None

    def write(self, session: Session) -> None:
        dialect = session.get_bind().dialect.name
        by_model: dict[type[SQLModel], list[dict[str, Any]]] = {}
        for row in self.new:
            by_model.setdefault(type(row), []).append(row.model_dump())
        for model, values in by_model.items():
            session.execute(sa_insert(model.__table__), values)  # type: ignore[attr-defined]
        for model, rows in self.rows.items():
            upsert, remove, keys = _statements(model, dialect)
            gone = [
                {f"pk_{name}": value for name, value in zip(keys, key, strict=True)}
                for key, row in rows.items()
                if row is None
            ]
            kept = [row.model_dump() for row in rows.values() if row is not None]
            if gone:
                session.execute(remove, gone)
            if kept:
                session.execute(upsert, kept)


@functools.cache
def _statements(model: type[SQLModel], dialect: str) -> tuple[Any, Any, list[str]]:
    """The upsert and the delete by primary key of a table, built once per dialect."""
    table = model.__table__  # type: ignore[attr-defined]
    keys = [column.name for column in table.primary_key.columns]
    insert = (sqlite_insert if dialect == "sqlite" else postgresql_insert)(table)
    changed = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in keys}
    # A row carrying the sequence of the event that wrote it is never put back by an older event.
    newer = table.c.sequence <= insert.excluded.sequence if "sequence" in table.c else None
    upsert = insert.on_conflict_do_update(index_elements=keys, set_=changed, where=newer)
    remove = delete(table).where(*(table.c[name] == bindparam(f"pk_{name}") for name in keys))
    return upsert, remove, keys


Writer = Callable[["Writes", NegotiationState, Any], None]
_WRITERS: dict[type[Any], Writer] = {}


def _writes(event_type: type[Any]) -> Callable[[Writer], Writer]:
    def register(fn: Writer) -> Writer:
        _WRITERS[event_type] = fn
        return fn

    return register


@_writes(MemberInvited)
def _member(writes: Writes, state: NegotiationState, event: MemberInvited) -> None:
    writes.upsert(
        MemberRow(
            negotiation_id=event.negotiation_id,
            organisation_id=event.organisation_id,
            name=event.name,
            weight=event.weight,
            invited_at=event.occurred_at,
            sequence=event.sequence,
        )
    )


@_writes(PositionStated)
def _position(writes: Writes, state: NegotiationState, event: PositionStated) -> None:
    position = event.position
    writes.upsert(
        PositionRow(
            negotiation_id=event.negotiation_id,
            organisation_id=event.actor_id,
            item_key=event.item_key,
            priority=position.priority,
            value=None if position.value is None else json.dumps(number_to_json(position.value)),
            accepted=None if position.accepted is None else list(position.accepted),
            rationale=position.rationale,
            stated_at=event.occurred_at,
            sequence=event.sequence,
        )
    )


@_writes(PositionWithdrawn)
def _withdrawn(writes: Writes, state: NegotiationState, event: PositionWithdrawn) -> None:
    writes.delete(PositionRow, (event.negotiation_id, event.actor_id, event.item_key))


@_writes(DemandPublished)
def _version(writes: Writes, state: NegotiationState, event: DemandPublished) -> None:
    writes.upsert(
        DemandVersionRow(
            negotiation_id=event.negotiation_id,
            version=event.version,
            hash=event.version_hash,
            published_at=event.occurred_at,
            items=[item.model_dump(mode="json") for item in event.items],
            sequence=event.sequence,
        )
    )


@_writes(VendorResponded)
def _response(writes: Writes, state: NegotiationState, event: VendorResponded) -> None:
    writes.upsert(
        ResponseRow(
            negotiation_id=event.negotiation_id,
            round=event.round,
            demand_version=event.demand_version,
            items=[item.model_dump(mode="json") for item in event.items],
            responded_at=event.occurred_at,
            sequence=event.sequence,
        )
    )


@_writes(ClarificationRequested)
@_writes(ClarificationAnswered)
def _clarification(writes: Writes, state: NegotiationState, event: Any) -> None:
    clarification = state.clarifications[event.clarification_id]
    writes.upsert(
        ClarificationRow(
            negotiation_id=event.negotiation_id,
            clarification_id=clarification.clarification_id,
            item_key=clarification.item_key,
            question=clarification.question,
            answer=clarification.answer,
            asked_at=clarification.asked_at,
            answered_at=clarification.answered_at,
            sequence=event.sequence,
        )
    )


@_writes(EndorsementGiven)
def _endorsement(writes: Writes, state: NegotiationState, event: EndorsementGiven) -> None:
    assert state.proposal is not None
    writes.upsert(
        EndorsementRow(
            negotiation_id=event.negotiation_id,
            proposal=len(state.outcomes) + 1,
            round=state.proposal.round,
            organisation_id=event.actor_id,
            decision=event.decision,
            comment=event.comment,
            given_at=event.occurred_at,
            sequence=event.sequence,
        )
    )


# -- after the agreement (SPEC section 9): one row per commitment ------------------------------
# CommitmentsPlanned, PlanRejected and AgreementFulfilled change no commitment (a plan holds only
# once accepted): they change the negotiation's row (its phase), which every event rewrites.


def _in_utc(moment: datetime | None) -> datetime | None:
    # A vendor may give a due date in its own zone; SQLite keeps no zone, so all are stored in UTC.
    return None if moment is None else moment.astimezone(UTC)


def commitment_row(negotiation_id: str, commitment: Commitment, sequence: int) -> CommitmentRow:
    verdict = commitment.verdict
    return CommitmentRow(
        negotiation_id=negotiation_id,
        item_key=commitment.key,
        status=commitment.status,
        due=_in_utc(commitment.due),
        note=commitment.note,
        deliveries=commitment.deliveries,
        evidence=commitment.evidence,
        delivered_at=_in_utc(commitment.delivered_at),
        verdict=None if verdict is None else verdict.verdict,
        met_at=_in_utc(commitment.met_at),
        overdue_since=_in_utc(commitment.overdue_since),
        regressions=len(commitment.regressions),
        sequence=sequence,
    )


@_writes(AgreementReached)
def _commitments_made(writes: Writes, state: NegotiationState, event: AgreementReached) -> None:
    # The agreed version's items are the commitments this agreement made (after a reopening, only
    # the reopened ones: the others stand as they were, rows included).
    agreed = state.versions[state.outcomes[-1].demand_version - 1]
    for item in agreed.items:
        commitment = state.commitments.get(item.key)
        if commitment is not None:
            writes.upsert(commitment_row(event.negotiation_id, commitment, event.sequence))


@_writes(PlanAccepted)
def _plan_accepted(writes: Writes, state: NegotiationState, event: PlanAccepted) -> None:
    # The accepted plan dated its commitments (and opened the overdue ones it dated anew).
    for commitment in state.commitments.values():
        writes.upsert(commitment_row(event.negotiation_id, commitment, event.sequence))


@_writes(CommitmentDelivered)
@_writes(CommitmentChecked)
@_writes(CommitmentVerdictGiven)
@_writes(CommitmentOverdue)
@_writes(RegressionReported)
def _commitment(writes: Writes, state: NegotiationState, event: Any) -> None:
    commitment = state.commitments[event.item_key]
    writes.upsert(commitment_row(event.negotiation_id, commitment, event.sequence))


@_writes(NegotiationReopened)
def _reopened(writes: Writes, state: NegotiationState, event: NegotiationReopened) -> None:
    # Negotiated again: the next agreement makes these commitments anew (or not, if the vendor
    # rejects the item this time).
    for key in event.items:
        writes.delete(CommitmentRow, (event.negotiation_id, key))


def negotiation_row(state: NegotiationState) -> NegotiationRow:
    return NegotiationRow(
        id=state.negotiation_id,
        title=state.title,
        phase=state.phase,
        sequence=state.sequence,
        coordinator_id=state.coordinator_id,
        vendor_id=state.vendor_id,
        demand_version=state.latest_version.version if state.latest_version else None,
        round=state.round,
        opened_at=state.opened_at,
        updated_at=state.updated_at or state.opened_at,
        vendor_sequence=state.vendor_sequence,
        vendor_updated_at=state.vendor_updated_at,
    )


def active_subscriptions(session: Session) -> dict[str, list[Subscription]]:
    """Active webhook subscriptions by organisation."""
    found: dict[str, list[Subscription]] = {}
    for subscription in session.exec(select(Subscription).where(Subscription.status == "active")).all():
        found.setdefault(subscription.organisation_id, []).append(subscription)
    return found


def deliveries_for(
    subscribers: dict[str, list[Subscription]],
    state: NegotiationState,
    before: Figures,
    event: Event,
) -> list[Delivery]:
    """One delivery per subscription whose owner may see ``event``, for the event's transaction."""
    made: list[Delivery] = []
    for organisation_id, subscriptions in subscribers.items():
        role = state.role_of(organisation_id)
        if role is None:
            continue
        wanted = [
            s
            for s in subscriptions
            if s.negotiation_id in (None, event.negotiation_id) and (not s.event_types or event.type in s.event_types)
        ]
        if not wanted:
            continue
        body = message(state, before, event, Audience(role, organisation_id))  # type: ignore[arg-type]
        if body is None:
            continue
        for subscription in wanted:
            made.append(
                Delivery(
                    subscription_id=subscription.id,
                    negotiation_id=event.negotiation_id,
                    sequence=body["sequence"],  # the vendor's own counter for the vendor
                    event_type=event.type,
                    message_id=f"msg_{uuid.uuid5(uuid.NAMESPACE_URL, f'{subscription.id}/{event.event_id}').hex}",
                    payload=json.dumps(body, separators=(",", ":")),
                    next_attempt_at=event.occurred_at,
                    created_at=datetime.now(UTC),
                )
            )
    return made


class Projection:
    """Applies events to the read model; keeps the states it has built, to avoid rereading them."""

    def __init__(self, engine: Engine, capacity: int = 10_000) -> None:
        self.engine = engine
        self.capacity = capacity
        self.states: dict[str, NegotiationState] = {}

    def apply(
        self, events: list[Event], refusals: Iterable[CommandRejected] = (), written: list[bytes] | None = None
    ) -> int:
        """Write ``events`` (and refusals) in one transaction; returns how many events were new.

        ``written``: each event's JSON as the events topic holds it, kept as it is in the event log
        (its hash is over that JSON; a newer model could write it otherwise). Without it the events
        are written as this code's model writes them.

        Every log line of an event's projection names its negotiation, command and sequence: they
        are bound in a copy of the caller's context, which ends with the call."""
        return contextvars.copy_context().run(self._apply, events, refusals, written)

    def _apply(self, events: list[Event], refusals: Iterable[CommandRejected], written: list[bytes] | None) -> int:
        applied = 0
        touched: dict[str, NegotiationState] = {}
        policy_changed: set[str] = set()
        try:
            with Session(self.engine) as session, session.begin():
                writes = Writes()
                for refusal in refusals:
                    writes.upsert(
                        CommandRefusal(
                            command_id=refusal.command_id,
                            negotiation_id=refusal.negotiation_id,
                            status=refusal.status,
                            title=refusal.title,
                            detail=refusal.detail,
                            field=refusal.field,
                            decided_at=datetime.now(UTC),
                        )
                    )
                subscribers = active_subscriptions(session)
                for index, event in enumerate(events):
                    nid = event.negotiation_id
                    state = touched.get(nid) or self.states.get(nid) or catch_up(session, nid, None)
                    if state is not None and event.sequence <= state.sequence:
                        continue  # delivered again: already in the read model
                    bind_contextvars(negotiation_id=nid, command_id=event.command_id, sequence=event.sequence)
                    before = figures_before(state, members_among(state, subscribers))
                    state = evolve(state, event)
                    if subscribers:
                        try:
                            session.add_all(deliveries_for(subscribers, state, before, event))
                        except Exception as exc:
                            # A defect in making messages must not stop the read model (every
                            # command would answer 503): the event is projected, its deliveries
                            # are missing, and this says so loudly.
                            log.error(
                                "webhook deliveries not queued",
                                negotiation_id=nid,
                                sequence=event.sequence,
                                error=f"{type(exc).__name__}: {str(exc)[:300]}",
                            )
                    writes.insert(
                        EventRow(
                            negotiation_id=nid,
                            sequence=event.sequence,
                            event_id=event.event_id,
                            type=event.type,
                            occurred_at=event.occurred_at,
                            actor_id=event.actor_id,
                            command_id=event.command_id,
                            vendor_sequence=state.vendor_sequence if event.type in VENDOR_VISIBLE else None,
                            data=written[index].decode() if written is not None else event.model_dump_json(),
                        )
                    )
                    writer = _WRITERS.get(type(event))
                    if writer is not None:
                        writer(writes, state, event)
                    if isinstance(event, PolicyChanged):
                        policy_changed.add(nid)
                    touched[nid] = state
                    applied += 1
                    log.debug("event projected", type=event.type)  # with its negotiation, command and sequence
                unbind_contextvars("negotiation_id", "command_id", "sequence")
                for state in touched.values():
                    writes.upsert(negotiation_row(state))
                writes.write(session)
                for nid in policy_changed:
                    recut_pending(session, touched[nid])
                # Delivered at the commit, so an API process woken by it reads what it announces.
                notify_projected(session, {nid: state.sequence for nid, state in touched.items()})
        except BaseException:
            self.states.clear()  # evolve changed them in place; the database did not follow
            raise
        self.states.update(touched)
        if len(self.states) > self.capacity:
            self.states.clear()
        return applied


def recut_pending(session: Session, state: NegotiationState) -> int:
    """Cut the negotiation's queued deliveries again under its current policy (SPEC 1: the past
    as the party may see it now), after a ``PolicyChanged``: a delivery its owner may no longer
    see is dropped, with its attempts. Returns how many changed. A delivery being sent at this
    very moment goes out as it was."""
    changed = 0
    pending = session.exec(
        select(Delivery, Subscription.organisation_id)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .where(Delivery.negotiation_id == state.negotiation_id, Delivery.status == "pending")
    ).all()
    for delivery, organisation_id in pending:
        role = state.role_of(organisation_id)
        if role is None:
            continue
        # A vendor's delivery carries the vendor's own counter; everyone else's the sequence.
        number = col(EventRow.vendor_sequence) if role == "vendor" else col(EventRow.sequence)
        data = session.exec(
            select(EventRow.data).where(EventRow.negotiation_id == state.negotiation_id, number == delivery.sequence)
        ).first()
        if data is None:
            continue
        viewer = Audience(role, organisation_id)  # type: ignore[arg-type]
        cut = event_view(state, EVENT_ADAPTER.validate_json(data), viewer)
        payload = json.loads(delivery.payload)
        if cut is None:
            session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id) == delivery.id))
            session.delete(delivery)
        elif cut != payload["data"]:
            payload["data"] = cut
            delivery.payload = json.dumps(payload, separators=(",", ":"))
            session.add(delivery)
        else:
            continue
        changed += 1
    if changed:
        log.info("queued deliveries cut again", negotiation_id=state.negotiation_id, changed=changed)
    return changed


class UndecodableEvent(RuntimeError):
    """An event this version cannot read: the projector stops rather than skip it."""


ONE_PROJECTOR = "one projector writes the read model at a time; this one takes over when it is gone"


class Projector:
    """Consumes the events topic (and refusals from the command-results topic) as the
    ``<prefix>-projector`` group, and projects each batch in one transaction.

    Only the holder of the projector's lock (``services.readmodel.exclusive``) consumes: a second
    projector waits for it, and joins the group only once it holds it."""

    def __init__(
        self,
        engine: Engine,
        bootstrap: KafkaConnection | str,
        topic_prefix: str,
        group_id: str | None = None,
        max_batch: int = 1000,
        metrics: ProjectorMetrics | None = None,
        tracing: Tracing | None = None,
        lock: ExclusiveLock | None = None,
    ) -> None:
        self.projection = Projection(engine)
        self.kafka = KafkaConnection.of(bootstrap)
        self.metrics = metrics or ProjectorMetrics()
        self.tracing = tracing or Tracing.off()
        """Projecting a batch is a span per decision whose events it holds (``streams.tracing``)."""
        self.consumer: AIOKafkaConsumer | None = None
        """The group's consumer while ``run`` runs (its lag is reported from it)."""
        self.topic = EVENTS.name(topic_prefix)
        self.results_topic = COMMAND_RESULTS.name(topic_prefix)
        self.group = group_id or f"{topic_prefix}-projector"
        self.max_batch = max_batch
        self.ready = asyncio.Event()
        self.projected = 0
        self.lock = lock or exclusive_lock(engine, "projector")

    def decode(self, batch: dict[TopicPartition, list[Any]]) -> tuple[list[Event], list[CommandRejected], list[bytes]]:
        """The batch's events, refusals, and each event's JSON as written."""
        events: list[Event] = []
        refusals: list[CommandRejected] = []
        written: list[bytes] = []
        for tp, records in batch.items():
            for record in records:
                try:
                    if tp.topic == self.topic:
                        events.append(decode_event(record.headers, record.value))
                        written.append(record.value)
                    elif record.value is not None:
                        result = decode_result(record.value)
                        if isinstance(result, CommandRejected):
                            refusals.append(result)
                except (DecodeError, ValueError) as exc:
                    # Skipping it would leave a gap that stops this negotiation's projection for
                    # good; a newer worker's event needs a newer projector. Stop, loudly.
                    raise UndecodableEvent(
                        f"{tp.topic}[{tp.partition}]@{record.offset} cannot be read by this version: {exc}"
                    ) from exc
        return events, refusals, written

    async def apply(
        self, events: list[Event], refusals: list[CommandRejected], stop: asyncio.Event, written: list[bytes]
    ) -> int:
        """Apply the batch, retrying while the database is away (the batch is idempotent)."""
        pause = 0.5
        while True:
            try:
                return await asyncio.to_thread(self.projection.apply, events, refusals, written)
            except SequenceGap:
                raise
            except Exception as exc:
                if stop.is_set():
                    raise
                log.warning("projection failed; retrying", error=f"{type(exc).__name__}: {str(exc)[:300]}", pause=pause)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)
                pause = min(pause * 2, 30.0)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Project until ``stop``, while this projector holds the projector's lock: a second one
        waits, outside the consumer group (it would be assigned partitions it does not project),
        and takes over when the first is gone."""
        await run_alone(self.lock, stop or asyncio.Event(), self.consume, ONE_PROJECTOR)

    async def consume(self, stop: asyncio.Event) -> None:
        """Consume and project until ``stop``."""
        self.projection.states.clear()  # another projector may have moved them on meanwhile

        async def revoked(partitions: set[TopicPartition]) -> None:
            # Under the batch lock: the batch in progress is written and committed first.
            self.projection.states.clear()  # another projector may move these on
            if uncommitted:
                with contextlib.suppress(Exception):
                    await consumer.commit(uncommitted)
                uncommitted.clear()

        async def assigned(partitions: list[TopicPartition]) -> None:
            log.info("partitions assigned", partitions=sorted(f"{tp.topic}:{tp.partition}" for tp in partitions))

        batch_lock = BatchLock(revoked, assigned)

        # Offsets are committed at most every COMMIT_EVERY_S, not per batch: a batch is projected
        # idempotently, so a crash only delivers a few batches again, and the read model no longer
        # waits for a broker round trip per batch.
        uncommitted: dict[TopicPartition, int] = {}
        committed_at = time.monotonic()
        consumer = self.kafka.consumer(
            group_id=self.group,
            client_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # the worker writes in transactions
            max_poll_records=self.max_batch,
        )
        self.consumer = consumer
        try:
            await consumer.start()
            consumer.subscribe([self.topic, self.results_topic], listener=batch_lock)
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                if not self.ready.is_set() and consumer.assignment():
                    self.ready.set()
                    log.info("projector.ready", topic=self.topic, group=self.group)
                if not batch:
                    continue
                async with batch_lock:
                    started = time.perf_counter()
                    batch = still_assigned(consumer, batch)
                    events, refusals, written = self.decode(batch)
                    carriers = (r.headers for tp, rs in batch.items() if tp.topic == self.topic for r in rs)
                    with self.tracing.processing_batch(self.topic, carriers):
                        applied = await self.apply(events, refusals, stop, written)
                    self.projected += applied
                    self.metrics.projected(applied, time.perf_counter() - started)
                    uncommitted.update({tp: records[-1].offset + 1 for tp, records in batch.items()})
                    if time.monotonic() - committed_at > COMMIT_EVERY_S:
                        await consumer.commit(uncommitted)
                        uncommitted.clear()
                        committed_at = time.monotonic()
                log.debug("projected", events=len(events), new=applied, refusals=len(refusals))
        finally:
            self.ready.clear()
            self.consumer = None  # its assignment and lag are no longer this projector's
            with contextlib.suppress(Exception):
                if uncommitted:
                    await consumer.commit(uncommitted)
            with contextlib.suppress(Exception):
                await consumer.stop()
