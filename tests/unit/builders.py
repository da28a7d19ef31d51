"""A small fluent builder that drives one negotiation through ``decide`` + ``evolve``.

Every command gets the next command id (``cmd-1``, ``cmd-2`` …) and is decided at one fixed time,
so two negotiations built with the same steps are identical event for event.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.commands import (
    Abandon,
    AcceptPlan,
    Actor,
    AnswerClarification,
    ChangePolicy,
    CheckCommitment,
    DeliverCommitment,
    Endorse,
    GiveVerdict,
    InviteMember,
    OpenNegotiation,
    PlanCommitments,
    ProposeAgreement,
    PublishDemand,
    RejectPlan,
    Reopen,
    ReportRegression,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    Tick,
    WithdrawPosition,
)
from schemas.documents import DemandItem
from schemas.events import Event
from schemas.negotiation import ItemResponse, PlannedCommitment, Policy, Position, RequirementItem
from streams.core.decider import Context, Decision, Limits, Rejection, decide
from streams.core.state import NegotiationState, evolve
from streams.core.views import live_demand

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
COORDINATOR = "coop-surf"
VENDOR = "vendor-contoso"
OUTSIDER = "org-outsider"
HUB = "hub"
"""The hub itself: its scheduler sends ticks as the admin."""


def item(key: str, kind: str = "boolean", options: tuple[str, ...] | None = None) -> RequirementItem:
    if kind == "one_of" and options is None:
        options = ("NL", "EU", "EEA")
    return RequirementItem(key=key, title=key.replace("-", " "), kind=kind, category="privacy", options=options)  # type: ignore[arg-type]


class Negotiation:
    """One negotiation; each step decides a command and applies its events."""

    def __init__(
        self,
        *items: RequirementItem,
        policy: Policy | None = None,
        negotiation_id: str = "neg-1",
        limits: Limits | None = None,
    ) -> None:
        self.negotiation_id = negotiation_id
        self.context = Context(NOW, limits or Limits())
        self.state: NegotiationState | None = None
        self.events: list[Event] = []
        self.names: dict[str, str] = {COORDINATOR: "SURF Cooperative", VENDOR: "Contoso Cloud"}
        self._counter = 0
        self.run(
            OpenNegotiation(
                **self._envelope(COORDINATOR),
                title="Cloud suite privacy terms",
                vendor_id=VENDOR,
                vendor_name=self.names[VENDOR],
                items=items or (item("audit-rights"),),
                policy=policy or Policy(),
            )
        )

    # -- plumbing ------------------------------------------------------------------------
    def next_command_id(self) -> str:
        self._counter += 1
        return f"cmd-{self._counter}"

    def _envelope(self, by: str, command_id: str | None = None) -> dict[str, Any]:
        role = "coordinator" if by == COORDINATOR else "vendor" if by == VENDOR else "admin" if by == HUB else "member"
        actor = Actor(organisation_id=by, role=role, name=self.names.get(by, by))
        return {
            "command_id": command_id or self.next_command_id(),
            "negotiation_id": self.negotiation_id,
            "actor": actor,
        }

    def command(self, command_type: type[Any], by: str, command_id: str | None = None, **fields: Any) -> Any:
        return command_type(**self._envelope(by, command_id), **fields)

    def run(self, command: Any) -> Decision:
        """Decide the command and apply its events (raises Rejection when refused)."""
        decision = decide(self.state, command, self.context)
        for event in decision.events:
            self.state = evolve(self.state, event)
            self.events.append(event)
        return decision

    def refuse(self, command: Any) -> Rejection:
        """Decide a command that must be refused; returns the refusal and checks nothing changed."""
        before = copy.deepcopy(self.s.facts())
        try:
            decide(self.state, command, self.context)
        except Rejection as refusal:
            assert self.s.facts() == before
            return refusal
        raise AssertionError(f"{command.type} was accepted, expected a refusal")

    @property
    def s(self) -> NegotiationState:
        assert self.state is not None
        return self.state

    # -- steps ---------------------------------------------------------------------------
    def invite(self, member: str, weight: int = 1, name: str | None = None) -> Negotiation:
        self.names[member] = name or f"Member {member}"
        self.run(
            self.command(InviteMember, COORDINATOR, organisation_id=member, name=self.names[member], weight=weight)
        )
        return self

    def position(
        self,
        member: str,
        key: str,
        priority: str = "must",
        value: Any = None,
        accepted: tuple[str, ...] | None = None,
        rationale: str | None = None,
    ) -> Negotiation:
        position = Position(priority=priority, value=value, accepted=accepted, rationale=rationale)  # type: ignore[arg-type]
        self.run(self.command(StatePosition, member, item_key=key, position=position))
        return self

    def withdraw(self, member: str, key: str) -> Negotiation:
        self.run(self.command(WithdrawPosition, member, item_key=key))
        return self

    def policy(self, **fields: Any) -> Negotiation:
        self.run(self.command(ChangePolicy, COORDINATOR, policy=Policy(**fields)))
        return self

    def publish(self) -> Negotiation:
        self.run(self.command(PublishDemand, COORDINATOR))
        return self

    def respond(self, *answers: ItemResponse, version: int | None = None) -> Negotiation:
        latest = self.s.latest_version
        assert latest is not None
        self.run(self.command(RespondToDemand, VENDOR, demand_version=version or latest.version, items=answers))
        return self

    def ask(self, key: str, question: str) -> Negotiation:
        self.run(self.command(RequestClarification, VENDOR, item_key=key, question=question))
        return self

    def answer(self, clarification_id: int, text: str) -> Negotiation:
        self.run(self.command(AnswerClarification, COORDINATOR, clarification_id=clarification_id, answer=text))
        return self

    def propose(self) -> Negotiation:
        self.run(self.command(ProposeAgreement, COORDINATOR))
        return self

    def endorse(self, member: str, decision: str, comment: str | None = None) -> Negotiation:
        self.run(self.command(Endorse, member, decision=decision, comment=comment))
        return self

    def abandon(self, reason: str | None = None) -> Negotiation:
        self.run(self.command(Abandon, COORDINATOR, reason=reason))
        return self

    # -- after the agreement (SPEC 9) ----------------------------------------------------
    def at(self, now: datetime) -> Negotiation:
        """Decide the next commands at ``now``."""
        self.context = replace(self.context, now=now)
        return self

    def plan(self, days: dict[str, int] | None = None, **due: datetime) -> Negotiation:
        """The vendor plans: each commitment due ``days[key]`` days after now (default: every
        commitment in 30 days), or at the times given by keyword (``**{"no-ads": when}``)."""
        now = self.context.now
        dues = {k: now + timedelta(days=d) for k, d in (days or {}).items()} | due
        if not dues:
            dues = {k: now + timedelta(days=30) for k, c in self.s.commitments.items() if c.due is None}
        lines = tuple(PlannedCommitment(key=k, due=when) for k, when in dues.items())
        self.run(self.command(PlanCommitments, VENDOR, items=lines))
        return self

    def accept_plan(self) -> Negotiation:
        self.run(self.command(AcceptPlan, COORDINATOR))
        return self

    def reject_plan(self, comment: str = "Too late") -> Negotiation:
        self.run(self.command(RejectPlan, COORDINATOR, comment=comment))
        return self

    def deliver(self, key: str, evidence: str = "Done: see the release notes") -> Negotiation:
        self.run(self.command(DeliverCommitment, VENDOR, item_key=key, evidence=evidence))
        return self

    def check(self, member: str, key: str, verdict: str = "met", comment: str | None = None) -> Negotiation:
        self.run(self.command(CheckCommitment, member, item_key=key, verdict=verdict, comment=comment))
        return self

    def verdict(self, key: str, verdict: str = "met", comment: str | None = None) -> Negotiation:
        self.run(self.command(GiveVerdict, COORDINATOR, item_key=key, verdict=verdict, comment=comment))
        return self

    def tick(self, now: datetime) -> Negotiation:
        """The scheduler's tick at ``now``, decided by a worker whose clock reads at least ``now``."""
        if now > self.context.now:
            self.at(now)
        self.run(self.command(Tick, HUB, now=now))
        return self

    def regress(self, member: str, key: str, comment: str = "It is back") -> Negotiation:
        self.run(self.command(ReportRegression, member, item_key=key, comment=comment))
        return self

    def reopen(self, *keys: str, reason: str | None = None) -> Negotiation:
        self.run(self.command(Reopen, COORDINATOR, items=keys, reason=reason))
        return self

    # -- reading -------------------------------------------------------------------------
    def demand(self, key: str) -> DemandItem:
        return next(line for line in live_demand(self.s).items if line.key == key)


def accept(key: str) -> ItemResponse:
    return ItemResponse(key=key, verdict="accept")


def reject(key: str) -> ItemResponse:
    return ItemResponse(key=key, verdict="reject")


def counter(key: str, value: Any = None, option: str | None = None) -> ItemResponse:
    return ItemResponse(key=key, verdict="counter", value=value, option=option)
