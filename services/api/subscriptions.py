"""``/v1/subscriptions``: a party's webhooks, their delivery log, and enabling them again.

Subscriptions are the organisation's integrations: its integration key or an owner creates,
enables and deletes them (403 for approvers and contributors, who may read them). A subscription
an owner made is disabled when that owner is removed.

Creating a subscription checks its URL (``services.subscriptions.destinations``): https, and a
host that resolves to public addresses only, unless the operator allows more; a refused one is a
422 naming ``url``. Creating a subscription answers its signing secret once. Like organisation keys, that answer is
not replayed for an ``Idempotency-Key``: replaying it would mean keeping it to show again.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy import delete
from sqlmodel import Session, and_, col, func, or_, select

from services.api.bodies import (
    AttemptView,
    DeliveryView,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionPublic,
)
from services.api.dependencies import ApplicationDep, Cursor, Paged, PartyDep, link_next
from services.api.problems import problems
from services.application.errors import Refusal, not_found
from services.application.paging import Page, bad_cursor, decode_cursor, page_of
from services.application.security import Caller
from services.application.service import Application
from services.readmodel.tables import Delivery, DeliveryAttempt, Subscription, utc
from services.subscriptions.destinations import DestinationPolicy, DestinationRefused

subscriptions = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])
SubscriptionId = Annotated[str, Path(pattern=r"^sub_[0-9a-f]{32}$", description="The subscription's id.")]


def _public(row: Subscription) -> SubscriptionPublic:
    return SubscriptionPublic(
        id=row.id,
        url=row.url,
        negotiation_id=row.negotiation_id,
        event_types=row.event_types,
        status=row.status,
        disabled_reason=row.disabled_reason,
        failing_since=utc(row.failing_since),
        created_at=utc(row.created_at),
        disabled_at=utc(row.disabled_at),
    )


def _own(session: Session, caller: Caller, subscription_id: str) -> Subscription:
    row = session.get(Subscription, subscription_id)
    if row is None or row.organisation_id != caller.organisation_id:
        raise not_found(f"there is no subscription {subscription_id}")
    return row


@subscriptions.post("", status_code=201, response_model=SubscriptionCreated, responses=problems(401, 403, 404, 422))
def create_subscription(body: SubscriptionCreate, caller: PartyDep, application: ApplicationDep) -> SubscriptionCreated:
    """Subscribe a URL to the events the caller may see: of one negotiation, or of all it is party to.

    Deliveries are signed per Standard Webhooks with the ``secret`` answered here, once. The URL
    must be https and its host must resolve to public addresses only, unless the hub's operator
    allows more (``KOOPKRACHT_WEBHOOK_ALLOW``, ``KOOPKRACHT_WEBHOOK_ALLOW_HTTP``); otherwise 422.
    The organisation's integration key or an owner subscribes (403 for other people).
    """
    application.people.require_integrations(caller, "manage webhook subscriptions")
    if body.negotiation_id is not None:
        application.viewer(caller, body.negotiation_id)  # 404 unless a party
    _within_quota(application, caller)
    settings = application.hub.settings
    try:
        DestinationPolicy.from_settings(settings.webhook_allow, settings.webhook_allow_http).check_url(str(body.url))
    except DestinationRefused as refused:
        raise Refusal(
            422,
            f"url: {refused.detail}",
            title="Webhook destination refused",
            field="url",
            errors=[{"field": "url", "message": refused.detail}],
        ) from None
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    row = Subscription(
        id=f"sub_{uuid.uuid4().hex}",
        organisation_id=caller.organisation_id,
        person_id=caller.person.id if caller.person is not None else None,
        url=str(body.url),
        negotiation_id=body.negotiation_id,
        event_types=list(body.event_types) if body.event_types else None,
        secret=secret,
        created_at=datetime.now(UTC),
    )
    with Session(application.hub.engine, expire_on_commit=False) as session:
        session.add(row)
        session.commit()
    return SubscriptionCreated(**_public(row).model_dump(), secret=secret)


@subscriptions.get("", response_model=list[SubscriptionPublic], responses=problems(401, 403, 422))
def list_subscriptions(
    request: Request, response: Response, caller: PartyDep, application: ApplicationDep, page: Paged
) -> list[SubscriptionPublic]:
    """The caller's subscriptions (without their secrets), oldest first, in pages (``Link: rel=next``).
    The integration key or an owner: a webhook's address can itself be a secret (a chat's incoming
    webhook, a token in its query)."""
    application.people.require_integrations(caller, "read webhook subscriptions")
    query = select(Subscription).where(Subscription.organisation_id == caller.organisation_id)
    if page.cursor is not None:
        created, last_id = decode_cursor(page.cursor, str, str)
        try:
            created_at = datetime.fromisoformat(created)
        except ValueError:
            raise bad_cursor() from None
        query = query.where(
            or_(
                col(Subscription.created_at) > created_at,
                and_(col(Subscription.created_at) == created_at, col(Subscription.id) > last_id),
            )
        )
    with Session(application.hub.engine) as session:
        rows = session.exec(
            query.order_by(col(Subscription.created_at), col(Subscription.id)).limit(page.limit + 1)
        ).all()
    kept, after = page_of(list(rows), page.limit, lambda row: (row.created_at.isoformat(), row.id))
    return page.answer(request, response, Page([_public(row) for row in kept], after))


def _within_quota(application: Application, caller: Caller) -> None:
    quota = application.hub.settings.max_subscriptions_per_organisation
    with Session(application.hub.engine) as session:
        count = session.exec(
            select(func.count()).select_from(Subscription).where(Subscription.organisation_id == caller.organisation_id)
        ).one()
    if count >= quota:
        raise Refusal(
            409,
            f"you have {quota} subscriptions, the hub's limit: delete one first (one subscription without a "
            "negotiation filter receives the events of every negotiation you are party to)",
            title="Limit reached",
        )


@subscriptions.get("/{subscription_id}", response_model=SubscriptionPublic, responses=problems(401, 403, 404, 422))
def get_subscription(
    subscription_id: SubscriptionId, caller: PartyDep, application: ApplicationDep
) -> SubscriptionPublic:
    """One of the caller's subscriptions: its status, and why it was disabled if it was (the
    integration key or an owner)."""
    application.people.require_integrations(caller, "read webhook subscriptions")
    with Session(application.hub.engine) as session:
        return _public(_own(session, caller, subscription_id))


@subscriptions.delete(
    "/{subscription_id}", status_code=204, response_class=Response, responses=problems(401, 403, 404, 422)
)
def delete_subscription(subscription_id: SubscriptionId, caller: PartyDep, application: ApplicationDep) -> Response:
    """Stop deliveries and forget the subscription, its pending deliveries and its log (the
    integration key or an owner)."""
    application.people.require_integrations(caller, "manage webhook subscriptions")
    with Session(application.hub.engine) as session, session.begin():
        row = _own(session, caller, subscription_id)
        session.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.subscription_id) == row.id))
        session.execute(delete(Delivery).where(col(Delivery.subscription_id) == row.id))
        session.delete(row)
    return Response(status_code=204)


@subscriptions.post(
    "/{subscription_id}/enable", response_model=SubscriptionPublic, responses=problems(401, 403, 404, 422)
)
def enable_subscription(
    subscription_id: SubscriptionId, caller: PartyDep, application: ApplicationDep
) -> SubscriptionPublic:
    """Enable a disabled subscription: its pending deliveries are tried again at once.

    Events that happened while it was disabled were not queued for it; read them from the
    change feed. The integration key or an owner enables it, and becomes whom it belongs to.
    """
    application.people.require_integrations(caller, "manage webhook subscriptions")
    now = datetime.now(UTC)
    with Session(application.hub.engine, expire_on_commit=False) as session, session.begin():
        row = _own(session, caller, subscription_id)
        row.status, row.disabled_reason, row.disabled_at, row.failing_since = "active", None, None, None
        row.person_id = caller.person.id if caller.person is not None else None
        pending = session.exec(
            select(Delivery).where(Delivery.subscription_id == row.id, Delivery.status == "pending")
        ).all()
        for delivery in pending:
            delivery.next_attempt_at = now
    return _public(row)


@subscriptions.get(
    "/{subscription_id}/deliveries", response_model=list[DeliveryView], responses=problems(401, 403, 404, 422)
)
def delivery_log(
    subscription_id: SubscriptionId,
    caller: PartyDep,
    application: ApplicationDep,
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=500, description="The newest deliveries first, at most this many.")] = 50,
    cursor: Cursor = None,
) -> list[DeliveryView]:
    """The subscription's delivery log, newest first, in pages (``Link: rel=next``): each
    delivery, its status, and every attempt (the integration key or an owner)."""
    application.people.require_integrations(caller, "read webhook subscriptions")
    with Session(application.hub.engine) as session:
        row = _own(session, caller, subscription_id)
        query = select(Delivery).where(Delivery.subscription_id == row.id)
        if cursor is not None:
            # The cursor names the last delivery by what its owner sees of it (negotiation and
            # sequence), never by the hub-wide row id, whose gaps would count other parties' deliveries.
            negotiation_id, sequence = decode_cursor(cursor, str, int)
            before = session.exec(
                select(Delivery.id).where(
                    Delivery.subscription_id == row.id,
                    Delivery.negotiation_id == negotiation_id,
                    Delivery.sequence == sequence,
                )
            ).first()
            if before is None:
                raise bad_cursor()
            query = query.where(col(Delivery.id) < before)
        deliveries, after = page_of(
            list(session.exec(query.order_by(col(Delivery.id).desc()).limit(limit + 1)).all()),
            limit,
            lambda d: (d.negotiation_id, d.sequence),
        )
        link_next(request, response, after, limit)
        ids = [d.id for d in deliveries]
        attempts: dict[int, list[AttemptView]] = {}
        for attempt in session.exec(
            select(DeliveryAttempt).where(col(DeliveryAttempt.delivery_id).in_(ids)).order_by(col(DeliveryAttempt.id))
        ).all():
            attempts.setdefault(attempt.delivery_id, []).append(
                AttemptView(
                    attempted_at=utc(attempt.attempted_at),
                    status_code=attempt.status_code,
                    error=attempt.error,
                    duration_ms=attempt.duration_ms,
                )
            )
        return [
            DeliveryView(
                message_id=d.message_id,
                negotiation_id=d.negotiation_id,
                sequence=d.sequence,
                event_type=d.event_type,
                status=d.status,
                attempts=d.attempts,
                last_status=d.last_status,
                last_error=d.last_error,
                created_at=utc(d.created_at),
                next_attempt_at=utc(d.next_attempt_at) if d.status == "pending" else None,
                delivered_at=utc(d.delivered_at),
                log=tuple(attempts.get(d.id or 0, ())),
            )
            for d in deliveries
        ]
