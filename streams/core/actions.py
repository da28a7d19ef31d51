"""Which actions a viewer may take now: what the board draws forms and buttons for.

The same rules as the decider's guards (role 403, phase and state 409), read without a command,
so that a board never offers what the core would refuse: an agreed negotiation has no "State
position" form, a contributor (who acts for nobody, SPEC section 10) has no form at all. The
decider still decides every command; a unit test plays every action in every phase for every
role and checks that the decider accepts what this allows and refuses the rest with 403 or 409.
After the agreement, :func:`commitment_actions` says the same per commitment (deliver, check,
verdict, regression), by each commitment's status.
"""

from __future__ import annotations

from typing import Literal

from streams.core.decider import AFTER_AGREEMENT, Limits, published_items
from streams.core.state import NegotiationState
from streams.core.views import Audience

ActionName = Literal[
    "state_position",
    "withdraw_position",
    "change_policy",
    "invite",
    "publish",
    "propose",
    "abandon",
    "respond",
    "ask",
    "answer",
    "endorse",
    "plan",
    "decide_plan",
    "reopen",
]
ACTIONS: tuple[ActionName, ...] = (
    "state_position",
    "withdraw_position",
    "change_policy",
    "invite",
    "publish",
    "propose",
    "abandon",
    "respond",
    "ask",
    "answer",
    "endorse",
    "plan",
    "decide_plan",
    "reopen",
)
OPEN = ("collecting", "negotiating")
"""The phases in which positions, the policy and the membership may change."""


def allowed_actions(
    state: NegotiationState, viewer: Audience, acts_for_organisation: bool = True, limits: Limits = Limits()
) -> frozenset[ActionName]:
    """The actions ``viewer`` may take on the negotiation now. ``acts_for_organisation`` is false
    for a contributor (``decider.acts_for_organisation``): it may take none. ``withdraw_position``
    means the member may withdraw the positions it holds (it needs one); ``answer`` that a
    clarification awaits an answer."""
    if not acts_for_organisation:
        return frozenset()
    phase, role = state.phase, viewer.role
    allowed: set[ActionName] = set()
    if role == "member":
        if phase in OPEN:
            allowed.add("state_position")
            if state.positions.get(viewer.organisation_id):
                allowed.add("withdraw_position")
        proposal = state.proposal
        if phase == "endorsing" and proposal is not None and viewer.organisation_id not in proposal.endorsements:
            allowed.add("endorse")
    elif role == "coordinator":
        if phase in OPEN:
            allowed.add("change_policy")
            if len(state.members) < limits.members:
                allowed.add("invite")
            if published_items(state):
                allowed.add("publish")
        if phase == "negotiating" and _may_propose(state):
            allowed.add("propose")
        if phase in (*OPEN, "endorsing"):
            allowed.add("abandon")
        if phase in ("negotiating", "endorsing") and any(c.answer is None for c in state.clarifications.values()):
            allowed.add("answer")
        if phase == "agreed" and state.plan is not None:
            allowed.add("decide_plan")
        if phase in ("agreed", "implementing", "fulfilled"):
            allowed.add("reopen")
    elif role == "vendor":
        if phase == "negotiating":
            if not state.awaiting_reopened_version:
                allowed.add("respond")
            if len(state.clarifications) < limits.clarifications:
                allowed.add("ask")
        if phase == "agreed" and state.plans < limits.rounds:
            allowed.add("plan")
    return frozenset(allowed)


def _may_propose(state: NegotiationState) -> bool:
    """The decider's checks of a proposal after its role and phase (``decider._propose``)."""
    if state.round == 0 or state.awaiting_reopened_version:
        return False
    return not (state.reopened and state.answered_version <= state.reopened_after_version)


CommitmentActionName = Literal["deliver", "check", "verdict", "regress"]
COMMITMENT_ACTIONS: tuple[CommitmentActionName, ...] = ("deliver", "check", "verdict", "regress")


def commitment_actions(
    state: NegotiationState, viewer: Audience, acts_for_organisation: bool = True, limits: Limits = Limits()
) -> dict[str, frozenset[CommitmentActionName]]:
    """The actions ``viewer`` may take now on each commitment (SPEC 9), by the decider's checks:
    a planned commitment while its work goes on (``AFTER_AGREEMENT``); the vendor delivers open or
    overdue work, a member checks a delivery and reports a regression of what is met, the
    coordinator gives a verdict on a delivery or on a met commitment whose regression was reported."""
    if not acts_for_organisation or state.phase not in AFTER_AGREEMENT:
        return {}
    said: dict[str, frozenset[CommitmentActionName]] = {}
    for key, commitment in state.commitments.items():
        if commitment.due is None:
            continue
        allowed: set[CommitmentActionName] = set()
        status, role = commitment.status, viewer.role
        if role == "vendor" and status not in ("delivered", "met") and commitment.deliveries < limits.rounds:
            allowed.add("deliver")
        elif role == "member" and status == "delivered":
            allowed.add("check")
        elif role == "member" and status == "met" and len(commitment.regressions) < limits.rounds:
            allowed.add("regress")
        elif role == "coordinator" and (status == "delivered" or (status == "met" and commitment.regressions)):
            allowed.add("verdict")
        said[key] = frozenset(allowed)
    return said
