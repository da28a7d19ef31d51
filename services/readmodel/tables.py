"""The read model's tables (SQLModel), one family per thing people ask about.

The negotiation tables are rebuilt from events by the projector, their only writer; each row
says which event (``sequence``) last wrote it. ``organisations`` and ``idempotency_records`` are
the API's own: they are not negotiation facts but the hub's configuration and its memory of
answers already given.

Times are stored in UTC. Exact numbers (position values) are stored as their JSON text, so no
database rounds them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Column, DateTime, Index, Text
from sqlmodel import Field, SQLModel


def utc(moment: datetime | None) -> datetime | None:
    """A time read back from the database, as UTC (SQLite forgets the zone)."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _time(**kwargs: object) -> Column[datetime]:
    return Column(DateTime(timezone=True), **kwargs)  # type: ignore[arg-type]


# -- the API's own tables -------------------------------------------------------------------------


class Organisation(SQLModel, table=True):
    __tablename__ = "organisations"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)
    key_id: str = Field(max_length=32, unique=True)
    """The public part of the API key, used to find the row; the secret part is only hashed."""
    key_hash: str = Field(max_length=64)
    """SHA-256 (hex) of the secret part of the API key."""
    created_at: datetime = Field(sa_column=_time(nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """The first answer to a command sent with an ``Idempotency-Key``, returned again on retries."""

    __tablename__ = "idempotency_records"

    organisation_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    """SHA-256 of method, path and body: a key reused for another request is an error."""
    status: int
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_time(nullable=False))


# -- negotiation tables, written by the projector ------------------------------------------------


class NegotiationRow(SQLModel, table=True):
    __tablename__ = "negotiations"

    id: str = Field(primary_key=True, max_length=64)
    title: str = Field(max_length=200)
    phase: str = Field(max_length=16)
    sequence: int
    coordinator_id: str = Field(max_length=64, index=True)
    vendor_id: str = Field(max_length=64, index=True)
    demand_version: int | None = None
    round: int = 0
    opened_at: datetime = Field(sa_column=_time(nullable=False))
    updated_at: datetime = Field(sa_column=_time(nullable=False))


class MemberRow(SQLModel, table=True):
    __tablename__ = "members"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(primary_key=True, max_length=64, index=True)
    name: str = Field(max_length=200)
    weight: int
    invited_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class PositionRow(SQLModel, table=True):
    """A member's current position on an item; withdrawn positions are deleted."""

    __tablename__ = "positions"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(primary_key=True, max_length=64)
    item_key: str = Field(primary_key=True, max_length=64)
    priority: str = Field(max_length=8)
    value: str | None = Field(default=None, max_length=64)
    """The exact number as JSON text, for at_most and at_least items."""
    accepted: list[str] | None = Field(default=None, sa_column=Column(JSON))
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    stated_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class DemandVersionRow(SQLModel, table=True):
    __tablename__ = "demand_versions"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    hash: str = Field(max_length=64)
    published_at: datetime = Field(sa_column=_time(nullable=False))
    items: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    sequence: int


class ResponseRow(SQLModel, table=True):
    """One vendor response: a round, answering one demand version."""

    __tablename__ = "responses"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    round: int = Field(primary_key=True)
    demand_version: int
    items: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    responded_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class ClarificationRow(SQLModel, table=True):
    __tablename__ = "clarifications"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    clarification_id: int = Field(primary_key=True)
    item_key: str = Field(max_length=64)
    question: str = Field(sa_column=Column(Text, nullable=False))
    answer: str | None = Field(default=None, sa_column=Column(Text))
    asked_at: datetime = Field(sa_column=_time(nullable=False))
    answered_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    sequence: int


class EndorsementRow(SQLModel, table=True):
    """A member's accept or reject of a proposed agreement."""

    __tablename__ = "endorsements"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    proposal: int = Field(primary_key=True)
    """Which proposal of the negotiation (1, 2, … : a rejected agreement can be proposed again)."""
    round: int
    """The vendor round whose offers the proposal put up for endorsement."""
    organisation_id: str = Field(primary_key=True, max_length=64)
    decision: str = Field(max_length=8)
    comment: str | None = Field(default=None, sa_column=Column(Text))
    given_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class EventRow(SQLModel, table=True):
    """The event log: every event, as the JSON the worker wrote, keyed by (negotiation, sequence)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_event_id", "event_id", unique=True),)

    negotiation_id: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=32)
    occurred_at: datetime = Field(sa_column=_time(nullable=False))
    actor_id: str = Field(max_length=64)
    command_id: str = Field(max_length=64)
    data: str = Field(sa_column=Column(Text, nullable=False))
