"""Refusals: why the hub will not do or show what a caller asked, whichever door it came through.

The API answers a refusal as problem+json (``services.api.problems``), the dashboard as a notice
on the page. The pure core's :class:`~streams.core.decider.Rejection` becomes one here.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from streams.core.decider import Rejection

ADMIN_TAKES_NO_PART = "the admin manages organisations and takes no part in negotiations"


class Refusal(Exception):
    """A request refused: ``status`` as in HTTP, ``field`` the input at fault, ``headers`` to send
    with it (``Retry-After``, ``WWW-Authenticate``)."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.errors = errors


def refused(rejection: Rejection) -> Refusal:
    """The core's rejection of a command or a read, as a refusal."""
    return Refusal(rejection.status, rejection.detail, title=rejection.title, field=rejection.field)


def not_found(detail: str) -> Refusal:
    return Refusal(404, detail, title="Not found")


def refusal_document(refusal: Refusal, instance: str | None = None) -> dict[str, Any]:
    """The refusal as an RFC 9457 problem document: what the API answers, and what an
    ``Idempotency-Key``'s record keeps to answer again."""
    body: dict[str, Any] = {"type": "about:blank", "title": refusal.title, "status": refusal.status}
    body["detail"] = refusal.detail
    if instance is not None:
        body["instance"] = instance
    if refusal.field is not None:
        body["field"] = refusal.field
    if refusal.errors is not None:
        body["errors"] = refusal.errors
    return body
