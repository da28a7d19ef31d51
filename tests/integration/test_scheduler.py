"""The scheduler on the real broker: time, as a command (SPEC section 9). A real worker decides its
ticks, a real projector writes the read model the scheduler asks; the test moves time by passing
it to ``tick_once``, never by sleeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from infra.kafka.topics import ensure_topics
from schemas.commands import (
    AcceptPlan,
    Actor,
    Command,
    Endorse,
    InviteMember,
    OpenNegotiation,
    PlanCommitments,
    ProposeAgreement,
    PublishDemand,
    RespondToDemand,
    StatePosition,
    Tick,
)
from schemas.negotiation import ItemResponse, PlannedCommitment, Position, RequirementItem
from schemas.results import CommandAccepted
from services.readmodel.projector import Projector
from services.readmodel.store import create_db_engine, upgrade
from services.readmodel.tables import CommitmentRow, EventRow, Heartbeat, NegotiationRow
from services.scheduler import HEARTBEAT, SCHEDULER, Scheduler, tick_command_id
from streams.app import NegotiationWorker, WorkerConfig
from streams.client import CommandClient
from tests.integration.harness import wait_until

COORDINATOR = Actor(organisation_id="coop", role="coordinator", name="Coop")
VENDOR = Actor(organisation_id="vendor", role="vendor", name="Vendor")
MEMBER = Actor(organisation_id="uni", role="member", name="University")
ITEMS = (RequirementItem(key="no-ads", title="No advertising", kind="boolean", category="privacy"),)
MINUTE = timedelta(minutes=1)


@dataclass
class Hub:
    engine: Engine
    client: CommandClient


@pytest.fixture
async def hub(kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> AsyncIterator[Hub]:
    """A worker, a projector into SQLite, and a command client, on the session's broker."""
    await ensure_topics(kafka_bootstrap, topic_prefix)
    database = f"sqlite:///{tmp_path / 'readmodel.db'}"
    upgrade(database)
    engine = create_db_engine(database)
    worker = NegotiationWorker(WorkerConfig(bootstrap=kafka_bootstrap, topic_prefix=topic_prefix))
    projector = Projector(engine, kafka_bootstrap, topic_prefix)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(worker.run(stop)), asyncio.create_task(projector.run(stop))]
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        await asyncio.wait_for(projector.ready.wait(), 60)
        async with CommandClient(kafka_bootstrap, topic_prefix) as client:
            yield Hub(engine, client)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


class Driver:
    """Sends one negotiation's commands and waits until the read model has their events."""

    def __init__(self, hub: Hub, negotiation_id: str) -> None:
        self.hub = hub
        self.negotiation_id = negotiation_id
        self.sent = 0

    async def send(self, command_type: type[Any], actor: Actor, **fields: Any) -> CommandAccepted:
        self.sent += 1
        command: Command = command_type(
            command_id=f"{self.negotiation_id}-{self.sent}", negotiation_id=self.negotiation_id, actor=actor, **fields
        )
        result = await self.hub.client.send(command, timeout=30)
        assert isinstance(result, CommandAccepted), result
        await projected(self.hub.engine, self.negotiation_id, result.last_sequence)
        return result

    async def implementing(self, due: datetime) -> None:
        """Agreed, with the vendor's plan (no-ads due at ``due``) accepted."""
        await self.send(
            OpenNegotiation, COORDINATOR, title="Office suite", vendor_id="vendor", vendor_name="Vendor", items=ITEMS
        )
        await self.send(InviteMember, COORDINATOR, organisation_id="uni", name="University")
        await self.send(StatePosition, MEMBER, item_key="no-ads", position=Position(priority="must"))
        await self.send(PublishDemand, COORDINATOR)
        accepted = (ItemResponse(key="no-ads", verdict="accept"),)
        await self.send(RespondToDemand, VENDOR, demand_version=1, items=accepted)
        await self.send(ProposeAgreement, COORDINATOR)
        await self.send(Endorse, MEMBER, decision="accept")
        await self.send(PlanCommitments, VENDOR, items=(PlannedCommitment(key="no-ads", due=due),))
        await self.send(AcceptPlan, COORDINATOR)


async def projected(engine: Engine, negotiation_id: str, sequence: int) -> None:
    def reached() -> bool:
        with Session(engine) as session:
            row = session.get(NegotiationRow, negotiation_id)
            return row is not None and row.sequence >= sequence

    await wait_until(reached, 60, f"the read model to reach {negotiation_id}@{sequence}")


def commitment(engine: Engine, negotiation_id: str) -> CommitmentRow:
    with Session(engine) as session:
        row = session.get(CommitmentRow, (negotiation_id, "no-ads"))
    assert row is not None
    return row


def events_of(engine: Engine, negotiation_id: str, event_type: str | None = None) -> int:
    query = select(func.count()).select_from(EventRow).where(col(EventRow.negotiation_id) == negotiation_id)
    if event_type is not None:
        query = query.where(col(EventRow.type) == event_type)
    with Session(engine) as session:
        return int(session.exec(query).one())


async def test_a_tick_after_the_due_date_makes_the_commitment_overdue_once(hub: Hub) -> None:
    # Given two negotiations implementing a plan: no-ads due at D in one, a day later in the other
    # (D is soon: a tick may run at most a few minutes ahead of the worker's clock)
    due = (datetime.now(UTC) + timedelta(seconds=10)).replace(microsecond=0)
    late, later = Driver(hub, "n-late"), Driver(hub, "n-later")
    await late.implementing(due)
    await later.implementing(due + timedelta(days=1))
    scheduler = Scheduler(hub.engine, hub.client, timeout_s=30)
    before = events_of(hub.engine, "n-late")

    # When the scheduler runs a minute before D
    early = await scheduler.tick_once(due - MINUTE)
    # Then it sends nothing, and nothing is overdue
    assert (early.candidates, early.sent) == (0, 0)
    assert commitment(hub.engine, "n-late").status == "open"

    # When it runs a minute after D
    now = due + MINUTE
    ticked = await scheduler.tick_once(now)
    # Then it ticked only the negotiation whose date passed, and the worker made no-ads overdue
    assert (ticked.candidates, ticked.sent, ticked.accepted, ticked.overdue) == (1, 1, 1, 1)
    await wait_until(
        lambda: commitment(hub.engine, "n-late").status == "overdue", 60, "the read model to show no-ads overdue"
    )
    row = commitment(hub.engine, "n-late")
    assert row.overdue_since is not None and row.overdue_since.replace(tzinfo=UTC) == now
    assert events_of(hub.engine, "n-late", "CommitmentOverdue") == 1
    assert events_of(hub.engine, "n-late") == before + 1
    assert commitment(hub.engine, "n-later").status == "open"

    # When it runs again at the same time
    again = await scheduler.tick_once(now)
    # Then it sends nothing: nothing open is due any more
    assert (again.candidates, again.sent) == (0, 0)

    # When a second scheduler, whose read model lagged, sends its tick for the same time anyway
    second = await hub.client.send(
        Tick(command_id=tick_command_id("n-late", now), negotiation_id="n-late", actor=SCHEDULER, now=now), timeout=30
    )
    # Then the worker answers it as the tick it already decided, and the log holds one overdue event
    assert isinstance(second, CommandAccepted) and second.duplicate
    assert events_of(hub.engine, "n-late", "CommitmentOverdue") == 1
    assert events_of(hub.engine, "n-late") == before + 1


async def test_the_loop_ticks_at_its_clocks_time_beats_and_stops_when_told(hub: Hub) -> None:
    # Given a negotiation whose commitment is due at D (a whole minute), and a scheduler with a
    # one-minute interval whose clock says D + 90 s
    # (D at least ten seconds ahead, so that the plan is for the future; the scheduler's clock at
    # most about two minutes ahead of the worker's, within the skew a tick may have)
    due = (datetime.now(UTC) + timedelta(seconds=70)).replace(second=0, microsecond=0)
    await Driver(hub, "n-loop").implementing(due)
    scheduler = Scheduler(hub.engine, hub.client, interval_s=60, timeout_s=30, clock=lambda: due + 1.5 * MINUTE)

    # When it runs
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    # Then its first round makes the commitment overdue at its clock's time rounded down to the
    # interval (D + 1 min: what a second scheduler in that minute would send too)
    await wait_until(
        lambda: commitment(hub.engine, "n-loop").status == "overdue", 60, "the loop to make no-ads overdue"
    )
    overdue_since = commitment(hub.engine, "n-loop").overdue_since
    assert overdue_since is not None and overdue_since.replace(tzinfo=UTC) == due + MINUTE
    # And it says it is alive
    await wait_until(lambda: beat(hub.engine) is not None, 30, "the scheduler's heartbeat")
    # When it is told to stop (as SIGTERM does) while it waits for its next round
    stop.set()
    # Then it stops at once, well before the interval is over
    await asyncio.wait_for(running, 10)


def beat(engine: Engine) -> datetime | None:
    with Session(engine) as session:
        row = session.get(Heartbeat, HEARTBEAT)
        return None if row is None else row.beat_at
