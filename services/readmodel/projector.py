"""The read-model projector: a consumer of the events topic that writes the read model's tables.

Per batch of events it opens one transaction, applies each event with the pure core's ``evolve``
(so phases and rounds mean exactly what the worker meant), writes the rows the event touches,
and commits the Kafka offsets only after the transaction. An event at or below the negotiation's
projected sequence was applied before and is skipped, so delivery at least once writes each
event once: rows are upserted by (negotiation, key) and the event log by (negotiation, sequence).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from sqlalchemy import Engine, delete
from sqlmodel import Session, col

from schemas.common import number_to_json
from schemas.events import (
    ClarificationAnswered,
    ClarificationRequested,
    DemandPublished,
    EndorsementGiven,
    Event,
    MemberInvited,
    PositionStated,
    PositionWithdrawn,
    VendorResponded,
)
from schemas.topics import EVENTS
from services.readmodel.store import catch_up
from services.readmodel.tables import (
    ClarificationRow,
    DemandVersionRow,
    EndorsementRow,
    EventRow,
    MemberRow,
    NegotiationRow,
    PositionRow,
    ResponseRow,
)
from streams.codec import DecodeError, decode_event
from streams.core.state import NegotiationState, evolve

log = structlog.get_logger("koopkracht.projector")

Writer = Callable[[Session, NegotiationState, Any], None]
_WRITERS: dict[type[Any], Writer] = {}


def _writes(event_type: type[Any]) -> Callable[[Writer], Writer]:
    def register(fn: Writer) -> Writer:
        _WRITERS[event_type] = fn
        return fn

    return register


@_writes(MemberInvited)
def _member(session: Session, state: NegotiationState, event: MemberInvited) -> None:
    session.merge(
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
def _position(session: Session, state: NegotiationState, event: PositionStated) -> None:
    position = event.position
    session.merge(
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
def _withdrawn(session: Session, state: NegotiationState, event: PositionWithdrawn) -> None:
    session.execute(
        delete(PositionRow).where(
            col(PositionRow.negotiation_id) == event.negotiation_id,
            col(PositionRow.organisation_id) == event.actor_id,
            col(PositionRow.item_key) == event.item_key,
        )
    )


@_writes(DemandPublished)
def _version(session: Session, state: NegotiationState, event: DemandPublished) -> None:
    session.merge(
        DemandVersionRow(
            negotiation_id=event.negotiation_id,
            version=event.version,
            hash=event.hash,
            published_at=event.occurred_at,
            items=[item.model_dump(mode="json") for item in event.items],
            sequence=event.sequence,
        )
    )


@_writes(VendorResponded)
def _response(session: Session, state: NegotiationState, event: VendorResponded) -> None:
    session.merge(
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
def _clarification(session: Session, state: NegotiationState, event: Any) -> None:
    clarification = state.clarifications[event.clarification_id]
    session.merge(
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
def _endorsement(session: Session, state: NegotiationState, event: EndorsementGiven) -> None:
    assert state.proposal is not None
    session.merge(
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
    )


class Projection:
    """Applies events to the read model; keeps the states it has built, to avoid rereading them."""

    def __init__(self, engine: Engine, capacity: int = 10_000) -> None:
        self.engine = engine
        self.capacity = capacity
        self.states: dict[str, NegotiationState] = {}

    def apply(self, events: list[Event]) -> int:
        """Write ``events`` in one transaction; returns how many were new."""
        applied = 0
        touched: dict[str, NegotiationState] = {}
        try:
            with Session(self.engine) as session, session.begin():
                for event in events:
                    nid = event.negotiation_id
                    state = touched.get(nid) or self.states.get(nid) or catch_up(session, nid, None)
                    if state is not None and event.sequence <= state.sequence:
                        continue  # delivered again: already in the read model
                    state = evolve(state, event)
                    session.add(
                        EventRow(
                            negotiation_id=nid,
                            sequence=event.sequence,
                            event_id=event.event_id,
                            type=event.type,
                            occurred_at=event.occurred_at,
                            actor_id=event.actor_id,
                            command_id=event.command_id,
                            data=event.model_dump_json(),
                        )
                    )
                    writer = _WRITERS.get(type(event))
                    if writer is not None:
                        writer(session, state, event)
                    touched[nid] = state
                    applied += 1
                for state in touched.values():
                    session.merge(negotiation_row(state))
        except BaseException:
            self.states.clear()  # evolve changed them in place; the database did not follow
            raise
        self.states.update(touched)
        if len(self.states) > self.capacity:
            self.states.clear()
        return applied


class Projector:
    """Consumes the events topic as the ``<prefix>-projector`` group and projects each batch."""

    def __init__(
        self, engine: Engine, bootstrap: str, topic_prefix: str, group_id: str | None = None, max_batch: int = 1000
    ) -> None:
        self.projection = Projection(engine)
        self.bootstrap = bootstrap
        self.topic = EVENTS.name(topic_prefix)
        self.group = group_id or f"{topic_prefix}-projector"
        self.max_batch = max_batch
        self.ready = asyncio.Event()
        self.projected = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        projection = self.projection

        class Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
            async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
                projection.states.clear()  # another projector may move these negotiations on

            async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
                log.info("partitions assigned", partitions=sorted(tp.partition for tp in assigned))

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group,
            client_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
        )
        try:
            await consumer.start()
            consumer.subscribe([self.topic], listener=Rebalance())
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                if not self.ready.is_set() and consumer.assignment():
                    self.ready.set()
                    log.info("projector.ready", topic=self.topic, group=self.group)
                if not batch:
                    continue
                events = []
                for tp, records in batch.items():
                    for record in records:
                        try:
                            events.append(decode_event(record.headers, record.value))
                        except (DecodeError, ValueError) as exc:
                            # The worker is the events topic's only writer; this is a defect to see.
                            log.error(
                                "undecodable event skipped",
                                topic=tp.topic,
                                partition=tp.partition,
                                offset=record.offset,
                                error=str(exc)[:500],
                            )
                applied = await asyncio.to_thread(projection.apply, events)
                self.projected += applied
                await consumer.commit({tp: records[-1].offset + 1 for tp, records in batch.items()})
                log.debug("projected", events=len(events), new=applied)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()
