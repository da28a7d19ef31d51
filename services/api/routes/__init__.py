"""The routes of SPEC section 8, a router per resource. Each one builds a command or names a
read, hands it to the application service (``services.application``) and answers with what it
gets back; refusals become problem+json in ``services.api.problems``."""

from __future__ import annotations

from fastapi import APIRouter

from services.api.routes import (
    agreement,
    commitments,
    demand,
    drafts,
    feed,
    insight,
    negotiations,
    organisations,
    people,
    positions,
    responses,
)

ROUTERS: tuple[APIRouter, ...] = (
    people.router,  # before organisations: /v1/organisations/me/people is not an organisation's id
    organisations.router,
    negotiations.router,
    positions.router,
    drafts.router,
    demand.router,
    insight.router,
    responses.router,
    agreement.router,
    commitments.router,
    feed.router,
)
