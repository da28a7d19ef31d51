"""Request bodies and response documents of the HTTP API that are not contracts of the core.

The negotiation documents themselves (summary, joint demand, demand versions, state, positions)
are the contracts in ``schemas.documents``; these are the API's own envelopes around them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, HttpUrl, UrlConstraints

from schemas.common import Frozen, Identifier, LongText, ShortText, Slug, Weight
from schemas.events import EVENT_TYPES
from schemas.negotiation import Decision, ItemResponse, Phase, Policy, RequirementItem


class OrganisationCreate(Frozen):
    name: ShortText
    role: Literal["coordinator", "member", "vendor"]


class OrganisationPublic(Frozen):
    id: Identifier
    name: ShortText
    role: Literal["admin", "coordinator", "member", "vendor"]
    created_at: datetime | None = None


class OrganisationCreated(OrganisationPublic):
    api_key: str
    """Shown once: only its hash is stored."""


class CatalogueRef(Frozen):
    """An item of the built-in catalogue, by its key."""

    key: Slug


class NegotiationCreate(Frozen):
    title: ShortText
    vendor_id: Identifier
    items: Annotated[list[CatalogueRef | RequirementItem], Field(min_length=1, max_length=500)]
    policy: Policy | None = None


class NegotiationListing(Frozen):
    """One line of ``GET /v1/negotiations``."""

    id: Identifier
    title: ShortText
    phase: Phase
    sequence: int
    your_role: Literal["coordinator", "member", "vendor"]
    demand_version: int | None
    round: int
    opened_at: datetime
    updated_at: datetime


class MemberInvite(Frozen):
    organisation_id: Identifier
    weight: Weight = 1


class VendorResponseCreate(Frozen):
    demand_version: int = Field(strict=True, ge=1)
    items: Annotated[list[ItemResponse], Field(min_length=1, max_length=500)]


class VendorResponse(Frozen):
    negotiation_id: Identifier
    round: int
    demand_version: int
    responded_at: datetime
    items: tuple[ItemResponse, ...]


class ClarificationCreate(Frozen):
    item_key: Slug
    question: Annotated[str, Field(min_length=1, max_length=4000)]


class ClarificationAnswer(Frozen):
    answer: Annotated[str, Field(min_length=1, max_length=4000)]


class AgreementProposal(Frozen):
    negotiation_id: Identifier
    phase: Phase
    demand_version: int
    round: int
    proposed_at: datetime


class EndorsementCreate(Frozen):
    decision: Decision
    comment: LongText | None = None


class EndorsementResult(Frozen):
    """The endorsement, and the outcome when it decided the agreement."""

    negotiation_id: Identifier
    decision: Decision
    comment: str | None
    given_at: datetime
    outcome: Literal["agreed", "rejected"] | None


class AbandonRequest(Frozen):
    reason: LongText | None = None


class Abandonment(Frozen):
    negotiation_id: Identifier
    phase: Phase
    reason: str | None
    abandoned_at: datetime


class FeedEntry(Frozen):
    """One event of the change feed, as the caller may see it."""

    sequence: int
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class ChangeFeed(Frozen):
    """A page of the change feed. Continue with ``after=next_after`` while ``more`` is true.

    Events the caller may not see are left out, but still move ``next_after`` on.
    """

    negotiation_id: Identifier
    events: tuple[FeedEntry, ...]
    next_after: int
    more: bool


class SupervisedProcess(Frozen):
    """One process that ``koopkracht up`` keeps running, as its supervisor last saw it."""

    state: Literal["running", "backing-off", "stopped", "given-up"]
    """``backing-off``: it exited and is started again after a delay."""
    restarts: int
    last_exit_code: int | None = None
    last_signal: str | None = None
    """The signal that ended it last (``SIGKILL`` …), when one did."""
    last_exit_at: datetime | None = None
    last_restart_at: datetime | None = None


class Readiness(Frozen):
    status: Literal["ready", "not ready"]
    checks: dict[str, str]
    processes: dict[str, SupervisedProcess] | None = None
    """Per process of the stack, its state and restarts; null when no supervisor runs the API."""


EventTypeName = Literal[EVENT_TYPES]  # type: ignore[valid-type]


class SubscriptionCreate(Frozen):
    """A webhook: every event (or those of ``event_types``) of one negotiation, or of all the caller's."""

    url: Annotated[HttpUrl, UrlConstraints(max_length=2048)]
    negotiation_id: Identifier | None = None
    event_types: Annotated[list[EventTypeName], Field(min_length=1, max_length=len(EVENT_TYPES))] | None = None


class SubscriptionPublic(Frozen):
    id: str
    url: str
    negotiation_id: str | None
    event_types: list[str] | None
    status: Literal["active", "disabled"]
    disabled_reason: str | None
    failing_since: datetime | None
    created_at: datetime
    disabled_at: datetime | None


class SubscriptionCreated(SubscriptionPublic):
    secret: str
    """``whsec_…``: shown once; verify each delivery's ``webhook-signature`` with it."""


class AttemptView(Frozen):
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


class DeliveryView(Frozen):
    """One delivery of the subscription's log, with each attempt."""

    id: int
    message_id: str
    negotiation_id: str
    sequence: int
    event_type: str
    status: Literal["pending", "delivered"]
    attempts: int
    last_status: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    log: tuple[AttemptView, ...]


__all__ = ["RequirementItem"]
