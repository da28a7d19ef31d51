"""Request bodies and response documents that only the HTTP API has: readiness, and webhook
subscriptions with their delivery log. The documents both doors share are in
``services.application.documents``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, HttpUrl, UrlConstraints

from schemas.common import Frozen, Identifier
from schemas.events import EVENT_TYPES


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
    """One delivery of the subscription's log, with each attempt. It is known by its ``message_id``
    (the ``webhook-id`` its receiver got): the hub's own row numbers are not shown, as their gaps
    would count the deliveries of other parties."""

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
