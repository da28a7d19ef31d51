"""The hub's limits on one negotiation: members, rounds and clarifications (409 beyond, nothing changed)."""

from __future__ import annotations

from schemas.commands import InviteMember, RequestClarification, RespondToDemand
from streams.core.decider import Limits
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, item


def test_a_negotiation_takes_no_more_members_than_the_limit() -> None:
    n = Negotiation(limits=Limits(members=2)).invite("m1").invite("m2")
    refusal = n.refuse(n.command(InviteMember, COORDINATOR, organisation_id="m3", name="M3", weight=1))
    assert refusal.status == 409
    assert "limit of 2 members" in refusal.detail


def test_a_vendor_answers_no_more_rounds_than_the_limit() -> None:
    n = Negotiation(limits=Limits(rounds=2)).invite("m1").position("m1", "audit-rights").publish()
    n.respond(accept("audit-rights")).respond(accept("audit-rights"))
    assert n.s.round == 2
    latest = n.s.latest_version
    assert latest is not None
    refusal = n.refuse(
        n.command(RespondToDemand, VENDOR, demand_version=latest.version, items=(accept("audit-rights"),))
    )
    assert refusal.status == 409
    assert "limit of 2 rounds" in refusal.detail


def test_a_vendor_asks_no_more_clarifications_than_the_limit() -> None:
    n = Negotiation(item("audit-rights"), limits=Limits(clarifications=1))
    n.invite("m1").position("m1", "audit-rights").publish().ask("audit-rights", "Which audits?")
    refusal = n.refuse(n.command(RequestClarification, VENDOR, item_key="audit-rights", question="And?"))
    assert refusal.status == 409
    assert "limit of 1 clarifications" in refusal.detail


def test_the_default_limits_are_the_documented_ones() -> None:
    assert Limits() == Limits(members=500, rounds=200, clarifications=2000)
