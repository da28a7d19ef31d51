"""What a board offers is what the core takes: for every phase and every role, each action that
``allowed_actions`` allows is accepted by the decider, and each it leaves out is refused with 403
(the role, or a contributor) or 409 (the phase, the state) — or 404 when the thing the action is
about does not exist (no clarification to answer, no position to withdraw)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from schemas.commands import (
    Abandon,
    AcceptPlan,
    ActingPerson,
    Actor,
    AnswerClarification,
    ChangePolicy,
    CheckCommitment,
    DeliverCommitment,
    Endorse,
    GiveVerdict,
    InviteMember,
    PlanCommitments,
    ProposeAgreement,
    PublishDemand,
    Reopen,
    ReportRegression,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    WithdrawPosition,
)
from schemas.negotiation import ItemResponse, PlannedCommitment, Policy, Position
from streams.core.actions import ACTIONS, COMMITMENT_ACTIONS, allowed_actions, commitment_actions
from streams.core.decider import Rejection, decide
from streams.core.views import audience
from tests.unit.boards import SCENARIOS
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation

VIEWERS = (COORDINATOR, "m1", "m2", VENDOR)


def command(n: Negotiation, action: str, by: str) -> Any:
    """A well-formed command for ``action``, sent by ``by``: only its role, the phase and the
    state can make the decider refuse it."""
    s = n.s
    latest = s.latest_version
    first = latest.items[0].key if latest else "no-ai-training"
    if action == "state_position":
        return n.command(StatePosition, by, item_key="no-ai-training", position=Position(priority="must"))
    if action == "withdraw_position":
        held = s.positions.get(by) or {}
        return n.command(WithdrawPosition, by, item_key=next(iter(held), "no-ai-training"))
    if action == "change_policy":
        return n.command(ChangePolicy, by, policy=Policy())
    if action == "invite":
        return n.command(InviteMember, by, organisation_id="m9", name="Hogeschool Utrecht", weight=1)
    if action == "publish":
        return n.command(PublishDemand, by)
    if action == "propose":
        return n.command(ProposeAgreement, by)
    if action == "abandon":
        return n.command(Abandon, by)
    if action == "respond":
        version = latest.version if latest else 1
        answers = (ItemResponse(key=first, verdict="accept"),)
        return n.command(RespondToDemand, by, demand_version=version, items=answers)
    if action == "ask":
        return n.command(RequestClarification, by, item_key=first, question="What do you mean?")
    if action == "answer":
        waiting = [c.clarification_id for c in s.clarifications.values() if c.answer is None]
        return n.command(AnswerClarification, by, clarification_id=(waiting or [1])[0], answer="This.")
    if action == "endorse":
        return n.command(Endorse, by, decision="accept")
    if action == "plan":
        due = n.context.now + timedelta(days=30)
        keys = [k for k, c in s.commitments.items() if c.status not in ("met", "delivered")] or ["no-ai-training"]
        return n.command(PlanCommitments, by, items=tuple(PlannedCommitment(key=k, due=due) for k in keys))
    if action == "decide_plan":
        return n.command(AcceptPlan, by)
    if action == "reopen":
        return n.command(Reopen, by, items=(next(iter(s.commitments), "no-ai-training"),))
    raise AssertionError(action)


def refusal_of(n: Negotiation, sent: Any) -> Rejection | None:
    """The decider's refusal of the command, or None when it takes it."""
    try:
        decide(n.s, sent, n.context)
    except Rejection as refusal:
        return refusal
    return None


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_board_offers_what_the_decider_takes(scenario: str) -> None:
    # Given a negotiation in this phase
    n = SCENARIOS[scenario]()
    offered_somewhere = set()
    for by in VIEWERS:
        viewer = audience(n.s, by)
        assert viewer is not None
        # When the core says which actions this viewer may take now
        allowed = allowed_actions(n.s, viewer)
        offered_somewhere |= allowed
        for action in ACTIONS:
            refusal = refusal_of(n, command(n, action, by))
            if action in allowed:
                # Then what it allows is accepted
                assert refusal is None, f"{scenario}: {by} may {action}, but {refusal}"
            else:
                # And what it leaves out is refused for the role or the state (or is about nothing)
                assert refusal is not None, f"{scenario}: {by} may not {action}, yet the decider accepts it"
                assert refusal.status in (403, 404, 409), f"{scenario}: {by} {action}: {refusal}"
                assert refusal.status != 404 or action in ("answer", "withdraw_position", "reopen"), refusal.detail
    # (each scenario offers somebody something, except the abandoned negotiation)
    assert bool(offered_somewhere) == (scenario != "abandoned")


def test_an_agreed_negotiation_takes_no_positions_and_a_contributor_no_command() -> None:
    # Given an agreed negotiation and one still collecting
    agreed, collecting = SCENARIOS["agreed"](), SCENARIOS["collecting"]()
    member = audience(collecting.s, "m1")
    assert member is not None
    # Then positions may be stated while collecting, not once agreed
    assert "state_position" in allowed_actions(collecting.s, member)
    assert "state_position" not in allowed_actions(agreed.s, member)
    # And a contributor may take no action at all, as the decider refuses its every command with 403
    assert allowed_actions(collecting.s, member, acts_for_organisation=False) == frozenset()
    person = ActingPerson(id="p-1", name="Ans de Vries", role="contributor", salt="0" * 32)
    actor = Actor(organisation_id="m1", role="member", name="Universiteit Utrecht", person=person)
    sent = command(collecting, "state_position", "m1").model_copy(update={"actor": actor})
    with pytest.raises(Rejection) as refused:
        decide(collecting.s, sent, collecting.context)
    assert refused.value.status == 403


def commitment_command(n: Negotiation, action: str, by: str, key: str) -> Any:
    if action == "deliver":
        return n.command(DeliverCommitment, by, item_key=key, evidence="Release notes 4.2")
    if action == "check":
        return n.command(CheckCommitment, by, item_key=key, verdict="met")
    if action == "verdict":
        return n.command(GiveVerdict, by, item_key=key, verdict="not_met")
    if action == "regress":
        return n.command(ReportRegression, by, item_key=key, comment="It is back")
    raise AssertionError(action)


@pytest.mark.parametrize("scenario", [*SCENARIOS, "regressed"])
def test_the_commitments_board_offers_what_the_decider_takes(scenario: str) -> None:
    # Given a negotiation in this phase (or with a met commitment whose regression a member reported)
    n = SCENARIOS["fulfilled"]().regress("m1", "no-ai-training") if scenario == "regressed" else SCENARIOS[scenario]()
    for by in VIEWERS:
        viewer = audience(n.s, by)
        assert viewer is not None
        # When the core says what the viewer may do on each commitment now
        offered = commitment_actions(n.s, viewer)
        for key in n.s.commitments:
            for action in COMMITMENT_ACTIONS:
                refusal = refusal_of(n, commitment_command(n, action, by, key))
                allowed = action in offered.get(key, frozenset())
                # Then what it offers is accepted, and what it does not is refused for the role or the state
                assert (refusal is None) == allowed, f"{scenario}: {by} {action} {key}: {allowed}, {refusal}"
                assert refusal is None or refusal.status in (403, 409), refusal.detail
