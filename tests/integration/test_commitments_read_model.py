"""The read model's commitments (SPEC section 9), on SQLite and PostgreSQL: the rows the projector
writes through a whole life after the agreement, and the scheduler's question to them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlmodel import Session, select

from schemas.commands import (
    AcceptPlan,
    CheckCommitment,
    DeliverCommitment,
    GiveVerdict,
    PlanCommitments,
    Reopen,
    ReportRegression,
    Tick,
)
from schemas.events import Event
from schemas.negotiation import PlannedCommitment
from services.readmodel.projector import Projection
from services.readmodel.store import create_db_engine, upgrade
from services.readmodel.tables import CommitmentRow, utc
from services.scheduler import SCHEDULER, due_negotiations
from streams.core.state import NegotiationState
from tests.unit.builders import COORDINATOR, NOW, VENDOR, Negotiation, accept, item

DAY = timedelta(days=1)
CEST = timezone(timedelta(hours=2))
NO_ADS_DUE = NOW + DAY
EXIT_HELP_DUE = (NOW + 30 * DAY).astimezone(CEST)  # the vendor writes its own zone


def rows(engine: Any) -> dict[str, CommitmentRow]:
    with Session(engine) as session:
        return {row.item_key: row for row in session.exec(select(CommitmentRow)).all()}


def facts(row: CommitmentRow) -> dict[str, Any]:
    """A row as comparable facts, its times in UTC whichever database kept them."""
    return {
        "status": row.status,
        "due": utc(row.due),
        "note": row.note,
        "deliveries": row.deliveries,
        "evidence": row.evidence,
        "delivered_at": utc(row.delivered_at),
        "verdict": row.verdict,
        "met_at": utc(row.met_at),
        "overdue_since": utc(row.overdue_since),
        "regressions": row.regressions,
    }


def from_state(state: NegotiationState) -> dict[str, dict[str, Any]]:
    """What the pure core says each commitment is."""
    return {
        key: {
            "status": c.status,
            "due": c.due,
            "note": c.note,
            "deliveries": c.deliveries,
            "evidence": c.evidence,
            "delivered_at": c.delivered_at,
            "verdict": c.verdict.verdict if c.verdict else None,
            "met_at": c.met_at,
            "overdue_since": c.overdue_since,
            "regressions": len(c.regressions),
        }
        for key, c in state.commitments.items()
    }


class Story:
    """One negotiation after its agreement, projected stage by stage."""

    def __init__(self, database: str) -> None:
        upgrade(database)
        self.engine = create_db_engine(database)
        self.projection = Projection(self.engine)
        self.n = Negotiation(item("no-ads"), item("exit-help"))
        self.projected = 0

    def project(self) -> list[Event]:
        """Project the events since the last call, in one batch; returns them."""
        new = self.n.events[self.projected :]
        self.projection.apply(list(new))
        self.projected = len(self.n.events)
        return new

    def by(self, command_type: type[Any], who: str, **fields: Any) -> Story:
        self.n.run(self.n.command(command_type, who, **fields))
        return self

    def tick(self, now: datetime) -> Story:
        self.n.at(max(now, self.n.context.now))  # decided by a worker whose clock reads the tick's time
        self.n.run(
            Tick(command_id=self.n.next_command_id(), negotiation_id=self.n.negotiation_id, actor=SCHEDULER, now=now)
        )
        return self


def agreed(story: Story) -> Story:
    n = story.n
    n.invite("m1", weight=2).invite("m2", weight=1)
    n.position("m1", "no-ads").position("m2", "exit-help").publish()
    n.respond(accept("no-ads"), accept("exit-help")).propose().endorse("m1", "accept")
    return story


def test_commitment_rows_follow_a_whole_life_after_the_agreement(database: str) -> None:
    story = agreed(Story(database))
    engine = story.engine

    # Given the agreement is projected
    reached = story.project()[-1]
    assert reached.type == "AgreementReached"
    # Then every item of it is an open commitment without a due date, written by that event
    made = rows(engine)
    assert {key: (r.status, r.due, r.deliveries, r.sequence) for key, r in made.items()} == {
        "no-ads": ("open", None, 0, reached.sequence),
        "exit-help": ("open", None, 0, reached.sequence),
    }
    # And the scheduler has nothing to look at, however late it is
    assert due_negotiations(engine, NOW + 365 * DAY) == []

    # When the vendor plans (one due date in its own zone) and the coordinator accepts the plan
    plan = (
        PlannedCommitment(key="no-ads", due=NO_ADS_DUE),
        PlannedCommitment(key="exit-help", due=EXIT_HELP_DUE, note="with a runbook"),
    )
    story.by(PlanCommitments, VENDOR, items=plan).by(AcceptPlan, COORDINATOR).project()
    # Then the rows carry the due dates (the same instants, in UTC) and the note
    dated = rows(engine)
    assert utc(dated["no-ads"].due) == NO_ADS_DUE
    assert utc(dated["exit-help"].due) == EXIT_HELP_DUE
    assert dated["exit-help"].note == "with a runbook"
    assert {key: facts(r) for key, r in dated.items()} == from_state(story.n.s)
    # And the scheduler sees the negotiation only once a due date has passed
    assert due_negotiations(engine, NO_ADS_DUE - timedelta(minutes=1)) == []
    assert due_negotiations(engine, NO_ADS_DUE + timedelta(minutes=1)) == [story.n.negotiation_id]

    # When the vendor delivers no-ads, a member checks it and the coordinator finds it not met
    story.by(DeliverCommitment, VENDOR, item_key="no-ads", evidence="https://vendor.example/no-ads")
    story.by(CheckCommitment, "m1", item_key="no-ads", verdict="not_met", comment="ads in the mail client")
    story.by(GiveVerdict, COORDINATOR, item_key="no-ads", verdict="not_met").project()
    # Then it is open again, with its delivery and the verdict on it
    judged = rows(engine)["no-ads"]
    assert (judged.status, judged.deliveries, judged.verdict) == ("open", 1, "not_met")
    assert judged.evidence == "https://vendor.example/no-ads"

    # When the scheduler's tick comes after its due date
    checked_at = NO_ADS_DUE + timedelta(hours=1)
    overdue = story.tick(checked_at).project()
    # Then no-ads is overdue since the tick's time, and exit-help (due later) is not
    assert [e.type for e in overdue] == ["CommitmentOverdue"]
    late = rows(engine)
    assert (late["no-ads"].status, utc(late["no-ads"].overdue_since)) == ("overdue", checked_at)
    assert late["no-ads"].sequence == overdue[0].sequence
    assert late["exit-help"].status == "open"
    # And the scheduler no longer names the negotiation at that time
    assert due_negotiations(engine, checked_at) == []

    # When exit-help is delivered, met, and a member reports that it regressed
    story.by(DeliverCommitment, VENDOR, item_key="exit-help", evidence="runbook v1")
    story.by(GiveVerdict, COORDINATOR, item_key="exit-help", verdict="met")
    story.by(ReportRegression, "m2", item_key="exit-help", comment="the export fails again").project()
    met = rows(engine)["exit-help"]
    assert (met.status, met.verdict, met.regressions) == ("met", "met", 1)
    assert met.met_at is not None
    assert {key: facts(r) for key, r in rows(engine).items()} == from_state(story.n.s)

    # When the coordinator reopens the negotiation on no-ads
    reopened = story.by(Reopen, COORDINATOR, items=("no-ads",)).project()
    # Then only no-ads's row is gone; exit-help's stands as it was
    assert set(rows(engine)) == {"exit-help"}
    assert facts(rows(engine)["exit-help"]) == facts(met)
    assert rows(engine)["exit-help"].sequence == met.sequence

    # When no-ads is negotiated again and agreed anew
    n = story.n
    n.publish().respond(accept("no-ads")).propose().endorse("m1", "accept")
    again = story.project()
    assert again[-1].type == "AgreementReached" and reopened[0].sequence < again[-1].sequence
    # Then no-ads is a new open commitment, without a due date, deliveries or verdict, written by
    # the new agreement; exit-help is untouched
    after = rows(engine)
    assert facts(after["no-ads"]) == {
        "status": "open",
        "due": None,
        "note": None,
        "deliveries": 0,
        "evidence": None,
        "delivered_at": None,
        "verdict": None,
        "met_at": None,
        "overdue_since": None,
        "regressions": 0,
    }
    assert after["no-ads"].sequence == again[-1].sequence
    assert after["exit-help"].sequence == met.sequence
    assert {key: facts(r) for key, r in after.items()} == from_state(story.n.s)


def test_a_whole_life_in_one_batch_leaves_the_same_rows(database: str) -> None:
    # Given the same life after the agreement, reopened and agreed again, projected in one batch
    # (no-ads is written, deleted and written again within it)
    story = agreed(Story(database))
    plan = (PlannedCommitment(key="no-ads", due=NO_ADS_DUE), PlannedCommitment(key="exit-help", due=EXIT_HELP_DUE))
    story.by(PlanCommitments, VENDOR, items=plan).by(AcceptPlan, COORDINATOR).tick(NO_ADS_DUE + DAY)
    story.by(Reopen, COORDINATOR, items=("no-ads",))
    story.n.publish().respond(accept("no-ads")).propose().endorse("m1", "accept")

    # When it is projected at once
    story.project()

    # Then the rows are what the pure core says: no-ads anew, exit-help dated and open
    after = rows(story.engine)
    assert {key: facts(r) for key, r in after.items()} == from_state(story.n.s)
    assert (after["no-ads"].status, after["no-ads"].due) == ("open", None)
    assert (after["exit-help"].status, utc(after["exit-help"].due)) == ("open", EXIT_HELP_DUE.astimezone(UTC))
    assert after["no-ads"].sequence == story.n.s.sequence


def test_an_abandoned_negotiation_is_not_ticked(database: str) -> None:
    # Given a negotiation reopened on one commitment while the other's due date passes, then abandoned
    story = agreed(Story(database))
    plan = (PlannedCommitment(key="no-ads", due=NO_ADS_DUE), PlannedCommitment(key="exit-help", due=EXIT_HELP_DUE))
    story.by(PlanCommitments, VENDOR, items=plan).by(AcceptPlan, COORDINATOR)
    story.by(Reopen, COORDINATOR, items=("no-ads",)).project()
    late = EXIT_HELP_DUE + DAY
    # Then, while it is renegotiated, the other commitment's work goes on: the scheduler names it
    assert due_negotiations(story.engine, late) == [story.n.negotiation_id]
    # When the coordinator abandons it
    story.n.abandon("the vendor walked away")
    story.project()
    # Then the scheduler no longer names it (a tick would be refused every round)
    assert rows(story.engine)["exit-help"].status == "open"
    assert due_negotiations(story.engine, late) == []
