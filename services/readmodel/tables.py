"""The read model's tables (SQLModel), one family per thing people ask about.

The negotiation tables are rebuilt from events by the projector, their only writer; each row
says which event (``sequence``) last wrote it. The API reads ``negotiations``, ``members`` and
``events``; the scheduler reads ``commitments``; ``positions``, ``demand_versions``, ``responses``,
``clarifications`` and ``endorsements`` are kept for SQL consumers (reporting, ad-hoc queries) and
the API never reads them (it answers from the state the pure core rebuilds from ``events``). ``organisations``,
``people``, ``personal_tokens``, ``drafts``, ``draft_comments`` and ``idempotency_records`` are the
API's own: they are not negotiation facts but the hub's configuration, the members' internal working
state, and its memory of answers already given.

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


class Person(SQLModel, table=True):
    """A person of an organisation (SPEC section 10), with one role in it: ``owner``, ``approver`` or
    ``contributor``. Invited by e-mail address (``subject`` None until the first single sign-on binds
    it), or found by the identity provider's ``issuer`` and ``subject``. A removed person keeps the
    row (the log names them by id) but can sign in no more."""

    __tablename__ = "people"
    __table_args__ = (Index("ux_people_identity", "issuer", "subject", unique=True),)

    id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(max_length=64, index=True)
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=320, index=True)
    """Lower-case; how an invitation is matched at the first single sign-on."""
    role: str = Field(max_length=16)
    issuer: str | None = Field(default=None, max_length=500)
    subject: str | None = Field(default=None, max_length=255)
    status: str = Field(default="active", max_length=16)
    """``active`` or ``removed``."""
    created_at: datetime = Field(sa_column=_time(nullable=False))
    bound_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    removed_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class PersonalToken(SQLModel, table=True):
    """A person's API token for scripts: ``kkp_<key id>_<secret>``, shown once, only the secret's
    SHA-256 kept. Revoked tokens keep their row (with ``revoked_at``) so the list shows them."""

    __tablename__ = "personal_tokens"

    key_id: str = Field(primary_key=True, max_length=32)
    person_id: str = Field(max_length=64, index=True)
    organisation_id: str = Field(max_length=64)
    label: str = Field(max_length=100)
    token_hash: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_time(nullable=False))
    last_used_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """When the token was last read from the database to let a request in: within
    ``KOOPKRACHT_KEY_CACHE_TTL_S`` of its last use."""
    revoked_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class Draft(SQLModel, table=True):
    """A member organisation's draft of its position on one item (SPEC section 10): its people's
    working state before an approver adopts it, which states the position. Not a negotiation fact,
    so not an event: only the organisation's people see it. ``position`` is the position's JSON
    (exact numbers as their JSON text, as the commands carry them)."""

    __tablename__ = "drafts"

    organisation_id: str = Field(primary_key=True, max_length=64)
    negotiation_id: str = Field(primary_key=True, max_length=64)
    item_key: str = Field(primary_key=True, max_length=64)
    position: str = Field(sa_column=Column(Text, nullable=False))
    updated_by_id: str = Field(max_length=64)
    updated_by_name: str = Field(max_length=200)
    updated_at: datetime = Field(sa_column=_time(nullable=False))
    adopted_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """When this very draft was adopted (stated as the position); None once it changes again."""
    adopted_by_id: str | None = Field(default=None, max_length=64)
    adopted_by_name: str | None = Field(default=None, max_length=200)


class DraftComment(SQLModel, table=True):
    """A comment of a person on their organisation's draft of an item. Its id is random, so that no
    number counts anybody's comments; the thread is ordered by ``created_at``."""

    __tablename__ = "draft_comments"
    __table_args__ = (Index("ix_draft_comments_thread", "organisation_id", "negotiation_id", "item_key", "created_at"),)

    id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(max_length=64)
    negotiation_id: str = Field(max_length=64)
    item_key: str = Field(max_length=64)
    person_id: str = Field(max_length=64)
    person_name: str = Field(max_length=200)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=_time(nullable=False))


class IdempotencyRecord(SQLModel, table=True):
    """A command sent with an ``Idempotency-Key``: written before the command is sent, and holding
    its first answer once there is one, to return again on every retry. Purged
    ``idempotency_retention_s`` after ``created_at`` (``services.readmodel.retention``)."""

    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_created_at", "created_at"),)  # for purging

    organisation_id: str = Field(primary_key=True, max_length=64)
    key: str = Field(primary_key=True, max_length=255)
    fingerprint: str = Field(max_length=64)
    """SHA-256 of method, path and body: a key reused for another request is an error."""
    command_id: str = Field(max_length=64)
    negotiation_id: str = Field(max_length=64)
    state: str = Field(max_length=16)
    """``sending`` → ``sent`` (the broker has it) or ``unsent`` (it did not take it) → ``answered``."""
    status: int | None = None
    body: str | None = Field(default=None, sa_column=Column(Text))
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
    vendor_sequence: int = 0
    """The vendor's own counter (SPEC section 1): what its listing shows instead of ``sequence``."""
    vendor_updated_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """The time of the latest event the vendor may see: its listing shows no member activity."""


class MemberRow(SQLModel, table=True):
    __tablename__ = "members"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(primary_key=True, max_length=64, index=True)
    name: str = Field(max_length=200)
    weight: int
    invited_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class PositionRow(SQLModel, table=True):
    """A member's current position on an item; withdrawn positions are deleted.

    Kept for SQL consumers: the API does not read it."""

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
    """A published demand version. Kept for SQL consumers: the API does not read it."""

    __tablename__ = "demand_versions"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    version: int = Field(primary_key=True)
    hash: str = Field(max_length=64)
    published_at: datetime = Field(sa_column=_time(nullable=False))
    items: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    sequence: int


class ResponseRow(SQLModel, table=True):
    """One vendor response: a round, answering one demand version.

    Kept for SQL consumers: the API does not read it."""

    __tablename__ = "responses"

    negotiation_id: str = Field(primary_key=True, max_length=64)
    round: int = Field(primary_key=True)
    demand_version: int
    items: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    responded_at: datetime = Field(sa_column=_time(nullable=False))
    sequence: int


class ClarificationRow(SQLModel, table=True):
    """A vendor's question on an item and the coordinator's answer. Kept for SQL consumers: the API
    does not read it."""

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
    """A member's accept or reject of a proposed agreement.

    Kept for SQL consumers: the API does not read it."""

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


class CommitmentRow(SQLModel, table=True):
    """A commitment of the agreement (SPEC section 9) and how it stands: made at ``AgreementReached``,
    dated when the coordinator accepts the vendor's plan, then delivered, judged, found overdue by a
    tick, reported regressed; deleted when the negotiation is reopened on it (the next agreement
    makes it anew). Members' checks are not here: only the coordinator and each member see them.

    The scheduler reads it (``ix_commitments_due``: open commitments whose due date has passed);
    the API does not (it answers from the state the pure core rebuilds from ``events``)."""

    __tablename__ = "commitments"
    __table_args__ = (Index("ix_commitments_due", "status", "due"),)  # the scheduler's question

    negotiation_id: str = Field(primary_key=True, max_length=64)
    item_key: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=16)
    """``open``, ``delivered``, ``met`` or ``overdue``."""
    due: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """None until a plan is accepted."""
    note: str | None = Field(default=None, sa_column=Column(Text))
    deliveries: int = 0
    evidence: str | None = Field(default=None, sa_column=Column(Text))
    """The latest delivery's evidence (text or a URL)."""
    delivered_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    verdict: str | None = Field(default=None, max_length=8)
    """The coordinator's latest verdict: ``met`` or ``not_met``."""
    met_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    overdue_since: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """The time of the tick that found it overdue."""
    regressions: int = 0
    """Regressions reported since it was last met."""
    sequence: int


class EventRow(SQLModel, table=True):
    """The event log: every event, as the JSON the worker wrote, keyed by (negotiation, sequence)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_event_id", "event_id", unique=True),
        Index("ix_events_command", "negotiation_id", "command_id"),
        Index("ix_events_vendor_sequence", "negotiation_id", "vendor_sequence"),
    )

    negotiation_id: str = Field(primary_key=True, max_length=64)
    sequence: int = Field(primary_key=True)
    event_id: str = Field(max_length=64)
    type: str = Field(max_length=32)
    occurred_at: datetime = Field(sa_column=_time(nullable=False))
    actor_id: str = Field(max_length=64)
    command_id: str = Field(max_length=64)
    vendor_sequence: int | None = None
    """The event's number in the vendor's own counter, when the vendor may see it (its feed pages by it)."""
    data: str = Field(sa_column=Column(Text, nullable=False))


class CommandRefusal(SQLModel, table=True):
    """A command the worker refused, from the command-results topic: the answer to a retry whose
    first request never got its answer (it timed out, or its API process stopped)."""

    __tablename__ = "command_refusals"

    command_id: str = Field(primary_key=True, max_length=64)
    negotiation_id: str = Field(max_length=64)
    status: int
    title: str = Field(max_length=200)
    detail: str = Field(sa_column=Column(Text, nullable=False))
    field: str | None = Field(default=None, max_length=200)
    decided_at: datetime = Field(sa_column=_time(nullable=False))


# -- subscriptions: webhooks and their deliveries ------------------------------------------------


class Subscription(SQLModel, table=True):
    """A party's webhook: where to deliver, what, and whether it still does.

    The secret signs deliveries (Standard Webhooks); it is shown once, kept to sign, never logged.
    """

    __tablename__ = "subscriptions"

    id: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(max_length=64, index=True)
    person_id: str | None = Field(default=None, max_length=64, index=True)
    """The owner who made it or last enabled it (None: the integration key): their removal
    disables it."""
    url: str = Field(max_length=2048)
    negotiation_id: str | None = Field(default=None, max_length=64)
    event_types: list[str] | None = Field(default=None, sa_column=Column(JSON))
    secret: str = Field(max_length=128)
    status: str = Field(default="active", max_length=16)
    """``active`` or ``disabled`` (after failing for longer than the give-up time, or by its owner)."""
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    failing_since: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    created_at: datetime = Field(sa_column=_time(nullable=False))
    disabled_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))


class Delivery(SQLModel, table=True):
    """One event for one subscription, cut for its owner. Delivered in ``id`` order per subscription."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ux_deliveries_event", "subscription_id", "negotiation_id", "sequence", unique=True),
        Index("ix_deliveries_pending", "subscription_id", "status", "id"),
        Index("ix_deliveries_delivered", "status", "delivered_at"),  # for purging
    )

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: str = Field(max_length=64)
    negotiation_id: str = Field(max_length=64)
    sequence: int
    event_type: str = Field(max_length=32)
    message_id: str = Field(max_length=64)
    """The ``webhook-id``: the same on every attempt, so receivers can drop repeats."""
    payload: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=16)
    """``pending`` until a 2xx answer makes it ``delivered``."""
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=_time(nullable=False))
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(sa_column=_time(nullable=False))
    delivered_at: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    claimed_by: str | None = Field(default=None, max_length=128)
    """The dispatcher sending it now (several may run on PostgreSQL): it claimed the delivery, so
    no other sends it, until ``claimed_until``; None when nobody does."""
    claimed_until: datetime | None = Field(default=None, sa_column=_time(nullable=True))
    """When the claim runs out: a dispatcher that died while sending lets the delivery go then."""


class DeliveryAttempt(SQLModel, table=True):
    """The delivery log: every attempt, its answer or its error."""

    __tablename__ = "delivery_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(index=True)
    subscription_id: str = Field(max_length=64, index=True)
    attempted_at: datetime = Field(sa_column=_time(nullable=False))
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    duration_ms: float


class Heartbeat(SQLModel, table=True):
    """A background service's sign of life, for ``/readyz``."""

    __tablename__ = "heartbeats"

    service: str = Field(primary_key=True, max_length=32)
    beat_at: datetime = Field(sa_column=_time(nullable=False))


class Lease(SQLModel, table=True):
    """A process that must run alone holds its lease while it runs: ``holder`` until ``expires_at``,
    renewed well before (``services.readmodel.exclusive``). On SQLite the projector's and the webhook
    dispatcher's; on PostgreSQL the projector holds an advisory lock instead, and dispatchers claim
    deliveries."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=32)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=_time(nullable=False))


class DashboardSession(SQLModel, table=True):
    """A signed-in dashboard user: the cookie holds a random token, the table only its SHA-256."""

    __tablename__ = "dashboard_sessions"
    __table_args__ = (Index("ix_dashboard_sessions_expires_at", "expires_at"),)  # for purging

    token_hash: str = Field(primary_key=True, max_length=64)
    organisation_id: str = Field(max_length=64, index=True)
    person_id: str = Field(max_length=64, index=True)
    """The signed-in person: only people sign in to the dashboard."""
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_column=_time(nullable=False))
    expires_at: datetime = Field(sa_column=_time(nullable=False))
