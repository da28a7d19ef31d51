"""``decide``: what a command does to a negotiation — the events it causes, or why it is refused.

The decider reads the state and never changes it. Checks run in the order a caller can act on:
not a party (404), a role that may not act (403), the wrong phase (409), invalid input (422).
A command id that was already decided is answered as a duplicate and causes nothing new.
Event ids are derived from the command id, so a command decided twice yields the same events;
they are linked onto the negotiation's hash chain (``streams.core.chain``) last.
Each handler builds its events as the event models themselves, through a constructor that strict
mypy checks field by field (see ``_new``), with the envelope (id, sequence, time, actor, command)
from a :class:`Stamp`.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any, Literal, ParamSpec, TypedDict, TypeVar

from schemas.commands import (
    Abandon,
    AcceptPlan,
    ActingPerson,
    Actor,
    AnswerClarification,
    ChangePolicy,
    CheckCommitment,
    Command,
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
from schemas.documents import SUPPORT_FIGURES, VENDOR_WITHHELD, PublishedItem
from schemas.events import (
    AgreementFulfilled,
    AgreementProposed,
    AgreementReached,
    AgreementRejected,
    ClarificationAnswered,
    ClarificationRequested,
    CommitmentChecked,
    CommitmentDelivered,
    CommitmentOverdue,
    CommitmentsPlanned,
    CommitmentVerdictGiven,
    DemandPublished,
    EndorsementGiven,
    Event,
    EventBase,
    MemberInvited,
    NegotiationAbandoned,
    NegotiationOpened,
    NegotiationReopened,
    PlanAccepted,
    PlanRejected,
    PolicyChanged,
    PositionStated,
    PositionWithdrawn,
    RegressionReported,
    VendorResponded,
)
from schemas.negotiation import Position, RequirementItem
from schemas.results import CommandAccepted
from streams.core.aggregation import share
from streams.core.chain import canonical_json, chained
from streams.core.state import Commitment, NegotiationState

EVENT_NAMESPACE = uuid.UUID("6f1c2f4e-3d0b-5a7e-9c61-4b6f0e2a9d11")
"""Namespace of the deterministic (UUID v5) event ids."""


class Rejection(Exception):
    """A command refused: ``status`` is the HTTP status it maps to, ``field`` the input at fault."""

    def __init__(self, status: int, title: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.field = field


def _not_found(detail: str) -> Rejection:
    return Rejection(404, "Not found", detail)


def _forbidden(detail: str) -> Rejection:
    return Rejection(403, "Forbidden", detail)


def _conflict(detail: str) -> Rejection:
    return Rejection(409, "Conflict", detail)


def _invalid(field: str, detail: str) -> Rejection:
    return Rejection(422, "Invalid input", f"{field}: {detail}", field)


@dataclass(frozen=True)
class Limits:
    """How large one negotiation may grow (settings of the hub, ``KOOPKRACHT_MAX_*``): a command
    that would go beyond is refused with 409, so one tenant cannot make a negotiation's state,
    its documents and every reader of them grow without end."""

    members: int = 500
    rounds: int = 200
    clarifications: int = 2000


@dataclass(frozen=True)
class Context:
    """What the decider may not make up itself: the time of the decision, and the hub's limits."""

    now: datetime
    limits: Limits = Limits()


@dataclass(frozen=True)
class Decision:
    """The events a command causes; for a command decided before, none, and its first sequences."""

    command_id: str
    negotiation_id: str
    events: tuple[Event, ...]
    duplicate_of: tuple[int, int] | None = None

    @property
    def result(self) -> CommandAccepted:
        if self.duplicate_of is not None:
            first, last = self.duplicate_of
            return CommandAccepted(
                command_id=self.command_id,
                negotiation_id=self.negotiation_id,
                first_sequence=first,
                last_sequence=last,
                duplicate=True,
            )
        return CommandAccepted(
            command_id=self.command_id,
            negotiation_id=self.negotiation_id,
            first_sequence=self.events[0].sequence,
            last_sequence=self.events[-1].sequence,
        )


_EVENT_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes


def event_id(negotiation_id: str, command_id: str, index: int) -> str:
    """``str(uuid.uuid5(EVENT_NAMESPACE, "<negotiation>/<command>/<index>"))``, computed without
    building the UUID object (a tenth of the worker's time per command went there); a property
    test holds the two equal, since recovery compares logged event ids with decided ones."""
    digest = bytearray(
        hashlib.sha1(_EVENT_NAMESPACE_BYTES + f"{negotiation_id}/{command_id}/{index}".encode()).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hexa = digest[:16].hex()
    return f"{hexa[:8]}-{hexa[8:12]}-{hexa[12:16]}-{hexa[16:20]}-{hexa[20:32]}"


class Envelope(TypedDict):
    """What every event of a decision carries besides its own fields."""

    event_id: str
    negotiation_id: str
    sequence: int
    occurred_at: datetime
    actor_id: str
    command_id: str
    acting_person: ActingPerson | None
    salt: str | None


@dataclass(frozen=True, slots=True)
class Stamp:
    """Gives the ``index``-th event of a command's decision its envelope: a deterministic id,
    the next sequence after ``last_sequence``, the decision's time, the actor, the command, and
    the person who sent it (``acting_person``, SPEC section 10)."""

    command: Command
    context: Context
    last_sequence: int

    def __call__(self, index: int) -> Envelope:
        command = self.command
        return Envelope(
            event_id=event_id(command.negotiation_id, command.command_id, index),
            negotiation_id=command.negotiation_id,
            sequence=self.last_sequence + index + 1,
            occurred_at=self.context.now,
            actor_id=command.actor.organisation_id,
            command_id=command.command_id,
            acting_person=command.actor.person,
            salt=command.actor.salt,
        )


P = ParamSpec("P")
M = TypeVar("M", bound=EventBase)


def _new(construct: Callable[P, M]) -> Callable[P, M]:
    """The event class of ``construct`` (its ``model_construct``), to be called as itself.

    Called like ``_new(MemberInvited.model_construct)(**stamp(0), name=...)``: the event is built
    and validated by the class, as any pydantic model, but with the signature of its
    ``model_construct``, which the pydantic mypy plugin types field by field. The class's own
    ``__init__`` takes every field as ``Any`` (the plugin's ``init_typed`` is off for the whole
    project), so without this strict mypy would check the names of an event's fields but none of
    their types.
    """
    return construct.__self__  # type: ignore[attr-defined, no-any-return]


C = TypeVar("C")
Handler = Callable[[NegotiationState, C, Stamp], list[Event]]
_DECIDERS: dict[type[Any], Handler[Any]] = {}


def _handles(command_type: type[C]) -> Callable[[Handler[C]], Handler[C]]:
    def register(fn: Handler[C]) -> Handler[C]:
        _DECIDERS[command_type] = fn
        return fn

    return register


def decide(state: NegotiationState | None, command: Command, context: Context) -> Decision:
    """Decide one command against the current state; raises :class:`Rejection` when refused."""
    if state is not None and command.command_id in state.commands:
        # The hub's scheduler is no party, yet its tick, delivered again, is a duplicate like any other.
        hub_tick = isinstance(command, Tick) and command.actor.role == "admin"
        if state.role_of(command.actor.organisation_id) is None and not hub_tick:
            raise _not_found(f"there is no negotiation {state.negotiation_id}")
        # A contributor learns nothing by sending a command id that was decided before: it acts for nobody.
        _acts_for_organisation(command.actor, command.type)
        return Decision(command.command_id, command.negotiation_id, (), duplicate_of=state.commands[command.command_id])
    if isinstance(command, OpenNegotiation):
        if state is not None:
            raise _conflict(f"negotiation {command.negotiation_id} already exists")
        events = _open(command, Stamp(command, context, 0))
    else:
        if state is None:
            raise _not_found(f"there is no negotiation {command.negotiation_id}")
        events = _DECIDERS[type(command)](state, command, Stamp(command, context, state.sequence))
    # Linked onto the chain here, once every event is built: a command decided again against the
    # same state at the same time yields the same events, hashes included.
    return Decision(
        command.command_id, command.negotiation_id, tuple(chained(events, None if state is None else state.head_hash))
    )


# -- guards --------------------------------------------------------------------------------


def _role(state: NegotiationState, command: Command, *allowed: str) -> str:
    return _role_of(state, command.actor, command.type, *allowed)


def _role_of(state: NegotiationState, actor: Actor, command_type: str, *allowed: str) -> str:
    role = state.role_of(actor.organisation_id)
    if role is None:
        raise _not_found(f"there is no negotiation {state.negotiation_id}")
    if role not in allowed:
        raise _forbidden(f"a {role} may not {_verb(command_type)}; this needs the {' or '.join(allowed)}")
    _acts_for_organisation(actor, command_type)
    return role


def acts_for_organisation(actor: Actor) -> bool:
    """Whether the actor may send commands for its organisation (SPEC section 10): an owner, an
    approver or the integration key (no person) may; a contributor drafts and comments inside it."""
    return actor.person is None or actor.person.role != "contributor"


def _acts_for_organisation(actor: Actor, command_type: str) -> None:
    """Refuse (403) a command of an actor who does not act for its organisation."""
    if not acts_for_organisation(actor):
        raise _forbidden(
            f"a contributor may not {_verb(command_type)}: a contributor drafts and comments, "
            f"an approver or owner of {actor.name} acts for it"
        )


def _phase(state: NegotiationState, command: Command, *allowed: str) -> None:
    _phase_for(state, command.type, *allowed)


def _phase_for(state: NegotiationState, command_type: str, *allowed: str) -> None:
    if state.phase not in allowed:
        raise _conflict(
            f"cannot {_verb(command_type)} while the negotiation is {state.phase} (allowed when {' or '.join(allowed)})"
        )


def _within(count: int, limit: int, what: str) -> None:
    if count >= limit:
        raise _conflict(f"this negotiation has reached the hub's limit of {limit} {what}")


def may_open(actor: Actor) -> None:
    """Only a coordinator opens a negotiation (raises the :class:`Rejection` otherwise)."""
    if actor.role != "coordinator":
        raise _forbidden(f"a {actor.role} may not open negotiations; this needs a coordinator")
    _acts_for_organisation(actor, "OpenNegotiation")


def may_invite(state: NegotiationState, actor: Actor) -> None:
    """Only the negotiation's coordinator invites members, while it is collecting or negotiating
    (raises the :class:`Rejection` otherwise). The hub asks before it says whether an invited
    organisation exists, so that only whom may invite learns it."""
    _role_of(state, actor, "InviteMember", "coordinator")
    _phase_for(state, "InviteMember", "collecting", "negotiating")


def _verb(command_type: str) -> str:
    words = {
        "InviteMember": "invite members",
        "ChangePolicy": "change the policy",
        "StatePosition": "state positions",
        "WithdrawPosition": "withdraw positions",
        "PublishDemand": "publish the demand",
        "RespondToDemand": "respond to the demand",
        "RequestClarification": "ask for clarification",
        "AnswerClarification": "answer clarifications",
        "ProposeAgreement": "propose the agreement",
        "Endorse": "endorse the agreement",
        "Abandon": "abandon the negotiation",
        "OpenNegotiation": "open negotiations",
        "PlanCommitments": "plan the commitments",
        "AcceptPlan": "accept the plan",
        "RejectPlan": "reject the plan",
        "DeliverCommitment": "deliver commitments",
        "CheckCommitment": "check deliveries",
        "GiveVerdict": "give verdicts on deliveries",
        "ReportRegression": "report regressions",
        "Reopen": "reopen the negotiation",
        "Tick": "send ticks",
    }
    return words[command_type]


def _item(state: NegotiationState, key: str, *, in_path: bool, field: str = "item_key") -> RequirementItem:
    item = state.items.get(key)
    if item is None:
        if in_path:
            raise _not_found(f"negotiation {state.negotiation_id} has no item {key!r}")
        raise _invalid(field, f"negotiation {state.negotiation_id} has no item {key!r}")
    return item


def check_position(item: RequirementItem, position: Position) -> None:
    """A position must fit its item's kind: a number, accepted options, or neither."""
    if item.kind == "boolean":
        if position.value is not None:
            raise _invalid("value", f"{item.key} is a yes/no guarantee and takes no value")
        if position.accepted is not None:
            raise _invalid("accepted", f"{item.key} is a yes/no guarantee and takes no options")
    elif item.kind in ("at_most", "at_least"):
        if position.value is None:
            raise _invalid("value", f"{item.key} is {item.kind} and needs a number")
        if position.accepted is not None:
            raise _invalid("accepted", f"{item.key} is {item.kind} and takes no options")
    else:
        assert item.options is not None
        if position.value is not None:
            raise _invalid("value", f"{item.key} is one_of and takes accepted options, not a value")
        if position.accepted is None:
            raise _invalid("accepted", f"{item.key} is one_of and needs the accepted options")
        unknown = [o for o in position.accepted if o not in item.options]
        if unknown:
            raise _invalid(
                "accepted", f"unknown option {unknown[0]!r} for {item.key}; the options are {list(item.options)}"
            )


# -- commands ------------------------------------------------------------------------------


def _open(command: OpenNegotiation, stamp: Stamp) -> list[Event]:
    may_open(command.actor)
    if command.vendor_id == command.actor.organisation_id:
        raise _invalid("vendor_id", "the vendor must be another organisation than the coordinator")
    seen: set[str] = set()
    for index, item in enumerate(command.items):
        if item.key in seen:
            raise _invalid(f"items[{index}].key", f"item {item.key!r} appears more than once")
        seen.add(item.key)
    return [
        _new(NegotiationOpened.model_construct)(
            **stamp(0),
            title=command.title,
            coordinator_name=command.actor.name,
            vendor_id=command.vendor_id,
            vendor_name=command.vendor_name,
            items=command.items,
            policy=command.policy,
        )
    ]


@_handles(InviteMember)
def _invite(state: NegotiationState, command: InviteMember, stamp: Stamp) -> list[Event]:
    may_invite(state, command.actor)
    if command.organisation_id in (state.coordinator_id, state.vendor_id):
        raise _invalid("organisation_id", "the coordinator and the vendor cannot be members")
    if command.organisation_id in state.members:
        raise _conflict(f"{command.name} is already a member of this negotiation")
    _within(len(state.members), stamp.context.limits.members, "members")
    return [
        _new(MemberInvited.model_construct)(
            **stamp(0), organisation_id=command.organisation_id, name=command.name, weight=command.weight
        )
    ]


@_handles(ChangePolicy)
def _change_policy(state: NegotiationState, command: ChangePolicy, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "collecting", "negotiating")
    return [_new(PolicyChanged.model_construct)(**stamp(0), policy=command.policy)]


def may_state_positions(state: NegotiationState, actor: Actor) -> None:
    """Only a member states positions, through an owner or approver of it or its integration key
    (raises the :class:`Rejection` otherwise). The hub asks before it adopts a draft, so that a
    contributor's adoption is refused without a command."""
    _role_of(state, actor, "StatePosition", "member")


def position_fits(state: NegotiationState, item_key: str, position: Position) -> None:
    """What a position must be besides who states it: on an item of the negotiation (404), while
    positions may change (409), fitting the item's kind and options (422). The hub checks a draft
    with this very rule, so that adopting it can fail only for what changed since."""
    item = _item(state, item_key, in_path=True)
    _phase_for(state, "StatePosition", "collecting", "negotiating")
    check_position(item, position)


@_handles(StatePosition)
def _state_position(state: NegotiationState, command: StatePosition, stamp: Stamp) -> list[Event]:
    may_state_positions(state, command.actor)
    position_fits(state, command.item_key, command.position)
    return [_new(PositionStated.model_construct)(**stamp(0), item_key=command.item_key, position=command.position)]


@_handles(WithdrawPosition)
def _withdraw(state: NegotiationState, command: WithdrawPosition, stamp: Stamp) -> list[Event]:
    _role(state, command, "member")
    _item(state, command.item_key, in_path=True)
    _phase(state, command, "collecting", "negotiating")
    if command.item_key not in state.positions[command.actor.organisation_id]:
        raise _not_found(f"you have no position on {command.item_key!r}")
    return [_new(PositionWithdrawn.model_construct)(**stamp(0), item_key=command.item_key)]


def version_hash(negotiation_id: str, version: int, items: Iterable[PublishedItem]) -> str:
    """SHA-256 of the canonical JSON of ``{negotiation_id, version, items}``, the items without
    their support figures and conflict flags: the terms every party sees, so every party can check it."""
    document = {
        "negotiation_id": negotiation_id,
        "version": version,
        "items": [item.model_dump(mode="json", exclude=set(SUPPORT_FIGURES | VENDOR_WITHHELD)) for item in items],
    }
    return hashlib.sha256(canonical_json(document)).hexdigest()


def published_items(state: NegotiationState) -> tuple[PublishedItem, ...]:
    """The included items of the live demand, frozen with their figures."""
    frozen = []
    for key, item in state.items.items():
        if state.reopened and key not in state.reopened:
            continue  # reopened on chosen items (SPEC 9): the rest of the agreement stands
        line = state.aggregates[key].demand_item(state.total_weight, state.policy)
        if not line.included:
            continue
        assert line.priority is not None
        assert line.target is not None
        frozen.append(
            PublishedItem(
                key=key,
                title=item.title,
                kind=item.kind,
                category=item.category,
                unit=item.unit,
                options=item.options,
                priority=line.priority,
                priority_score=line.priority_score,
                support_share=line.support_share,
                must_share=line.must_share,
                target=line.target,
                conflict=line.conflict,
            )
        )
    return tuple(frozen)


@_handles(PublishDemand)
def _publish(state: NegotiationState, command: PublishDemand, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "collecting", "negotiating")
    items = published_items(state)
    if not items:
        raise _conflict("nothing to publish: no item is included in the joint demand yet")
    version = len(state.versions) + 1
    return [
        _new(DemandPublished.model_construct)(
            **stamp(0), version=version, version_hash=version_hash(state.negotiation_id, version, items), items=items
        )
    ]


@_handles(RespondToDemand)
def _respond(state: NegotiationState, command: RespondToDemand, stamp: Stamp) -> list[Event]:
    _role(state, command, "vendor")
    _phase(state, command, "negotiating")
    latest = state.latest_version
    assert latest is not None  # negotiating implies a published version
    if state.awaiting_reopened_version:
        raise _conflict(
            f"the negotiation was reopened: answer the next demand version, not version {latest.version}, "
            "which the agreement settled"
        )
    if command.demand_version != latest.version:
        raise _conflict(f"demand version {command.demand_version} is not the latest published one ({latest.version})")
    _within(state.round, stamp.context.limits.rounds, "rounds")
    published = {item.key: item for item in latest.items}
    seen: set[str] = set()
    for index, response in enumerate(command.items):
        field = f"items[{index}]"
        item = published.get(response.key)
        if item is None:
            raise _invalid(f"{field}.key", f"{response.key!r} is not in demand version {latest.version}")
        if response.key in seen:
            raise _invalid(f"{field}.key", f"{response.key!r} is answered more than once")
        seen.add(response.key)
        if response.verdict != "counter":
            continue
        if item.kind == "boolean":
            raise _invalid(f"{field}.verdict", f"{response.key} is a yes/no guarantee: accept or reject it")
        if item.kind in ("at_most", "at_least"):
            if response.value is None:
                raise _invalid(f"{field}.value", f"a counter on {response.key} needs a number")
        else:
            assert item.options is not None
            if response.option is None:
                raise _invalid(f"{field}.option", f"a counter on {response.key} needs one option")
            if response.option not in item.options:
                raise _invalid(
                    f"{field}.option",
                    f"unknown option {response.option!r} for {response.key}; the options are {list(item.options)}",
                )
    return [
        _new(VendorResponded.model_construct)(
            **stamp(0), demand_version=latest.version, round=state.round + 1, items=command.items
        )
    ]


@_handles(RequestClarification)
def _ask(state: NegotiationState, command: RequestClarification, stamp: Stamp) -> list[Event]:
    _role(state, command, "vendor")
    _phase(state, command, "negotiating")
    _item(state, command.item_key, in_path=False)
    _within(len(state.clarifications), stamp.context.limits.clarifications, "clarifications")
    return [
        _new(ClarificationRequested.model_construct)(
            **stamp(0),
            clarification_id=len(state.clarifications) + 1,
            item_key=command.item_key,
            question=command.question,
        )
    ]


@_handles(AnswerClarification)
def _answer(state: NegotiationState, command: AnswerClarification, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    clarification = state.clarifications.get(command.clarification_id)
    if clarification is None:
        raise _not_found(f"there is no clarification {command.clarification_id}")
    _phase(state, command, "negotiating", "endorsing")
    if clarification.answer is not None:
        raise _conflict(f"clarification {command.clarification_id} is already answered")
    return [
        _new(ClarificationAnswered.model_construct)(
            **stamp(0), clarification_id=command.clarification_id, answer=command.answer
        )
    ]


@_handles(ProposeAgreement)
def _propose(state: NegotiationState, command: ProposeAgreement, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "negotiating")
    if state.round == 0:
        raise _conflict("the vendor has not responded yet: an agreement needs at least one response")
    assert state.latest_version is not None
    if state.awaiting_reopened_version:
        raise _conflict("the negotiation was reopened: publish a demand version of the reopened items before proposing")
    if state.reopened and state.answered_version <= state.reopened_after_version:
        raise _conflict(
            "the negotiation was reopened: the vendor has not answered the demand version of the reopened items yet"
        )
    return [
        _new(AgreementProposed.model_construct)(
            **stamp(0), demand_version=state.latest_version.version, round=state.round
        )
    ]


def endorsement_shares(state: NegotiationState, endorsements: dict[str, str]) -> tuple[Fraction, Fraction]:
    """(accepting share, rejecting share) of the coalition's weight."""
    accepting = sum(state.members[m].weight for m, d in endorsements.items() if d == "accept")
    rejecting = sum(state.members[m].weight for m, d in endorsements.items() if d == "reject")
    return share(accepting, state.total_weight), share(rejecting, state.total_weight)


def endorsement_outcome(
    accepting: Fraction, rejecting: Fraction, endorsement_share: Fraction
) -> Literal["agreed", "rejected"] | None:
    """SPEC 6: "agreed when the accepting weight share reaches" it; rejected when the rejecting share > 1 - it."""
    if accepting >= endorsement_share:
        return "agreed"
    if rejecting > 1 - endorsement_share:
        return "rejected"
    return None  # the vote goes on


@_handles(Endorse)
def _endorse(state: NegotiationState, command: Endorse, stamp: Stamp) -> list[Event]:
    _role(state, command, "member")
    _phase(state, command, "endorsing")
    assert state.proposal is not None
    member_id = command.actor.organisation_id
    if member_id in state.proposal.endorsements:
        raise _conflict(f"you have already decided on this proposal ({state.proposal.endorsements[member_id]})")
    events: list[Event] = [
        _new(EndorsementGiven.model_construct)(**stamp(0), decision=command.decision, comment=command.comment)
    ]
    accepting, rejecting = endorsement_shares(state, {**state.proposal.endorsements, member_id: command.decision})
    outcome = endorsement_outcome(accepting, rejecting, state.policy.endorsement_share)
    if outcome == "agreed":
        events.append(
            _new(AgreementReached.model_construct)(
                **stamp(1), accepting_share=float(accepting), rejecting_share=float(rejecting)
            )
        )
        if _fulfilled_by_agreement(state):
            events.append(_new(AgreementFulfilled.model_construct)(**stamp(2), commitments=len(state.commitments)))
    elif outcome == "rejected":
        events.append(
            _new(AgreementRejected.model_construct)(
                **stamp(1), accepting_share=float(accepting), rejecting_share=float(rejecting)
            )
        )
    return events


def _fulfilled_by_agreement(state: NegotiationState) -> bool:
    """Whether an agreement reached after a reopening leaves nothing to do: it makes no new
    commitment (the vendor rejected every reopened item) and every commitment that stood is met
    (or none stood: every commitment was reopened, and none is made again).
    (An agreement that leaves planned work but nothing to plan goes on in implementation, see
    ``state._agreement_reached``.)"""
    if not state.reopened or state.proposal is None:
        return False
    agreed = state.versions[state.proposal.demand_version - 1]
    promised = any(
        (current := state.offers.get(item.key)) is not None and current.offer.verdict in ("accept", "counter")
        for item in agreed.items
    )
    return not promised and all(c.status == "met" and not c.regressions for c in state.commitments.values())


@_handles(Abandon)
def _abandon(state: NegotiationState, command: Abandon, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "collecting", "negotiating", "endorsing")
    return [_new(NegotiationAbandoned.model_construct)(**stamp(0), reason=command.reason)]


# -- after the agreement (SPEC section 9) ----------------------------------------------------------

PLAN_HORIZON = timedelta(days=100 * 365)
"""How far ahead a plan may date a commitment: a century is beyond any contract."""
TICK_AHEAD = timedelta(minutes=5)
"""How far a tick's time may run ahead of the worker's clock: more is a scheduler's clock gone
wrong, whose overdue items could not be undone."""

AFTER_AGREEMENT = ("agreed", "implementing", "fulfilled", "negotiating", "endorsing")
"""The phases in which commitments, once planned, are worked on: also while a reopening
renegotiates some of them (the others' work goes on)."""


def _commitment(state: NegotiationState, key: str) -> Commitment:
    commitment = state.commitments.get(key)
    if commitment is None:
        raise _not_found(f"negotiation {state.negotiation_id} has no commitment on {key!r}")
    return commitment


def _planned(state: NegotiationState, command: Command, commitment: Commitment) -> None:
    _phase(state, command, *AFTER_AGREEMENT)
    if commitment.due is None:
        raise _conflict(f"{commitment.key} has no accepted plan yet: the vendor plans, the coordinator accepts")


def overdue_commitments(state: NegotiationState, now: datetime) -> list[Commitment]:
    """SPEC 9: the commitments "neither delivered nor met by its due date" at ``now`` and not yet
    found overdue. The tick's time is the only clock read, so a replay decides the same."""
    return [c for c in state.commitments.values() if c.status == "open" and c.due is not None and now > c.due]


@_handles(PlanCommitments)
def _plan(state: NegotiationState, command: PlanCommitments, stamp: Stamp) -> list[Event]:
    _role(state, command, "vendor")
    _phase(state, command, "agreed")
    _within(state.plans, stamp.context.limits.rounds, "plans")
    seen: set[str] = set()
    for index, line in enumerate(command.items):
        field = f"items[{index}]"
        commitment = state.commitments.get(line.key)
        if commitment is None:
            raise _invalid(f"{field}.key", f"{line.key!r} is not a commitment of the agreement")
        if line.key in seen:
            raise _invalid(f"{field}.key", f"{line.key!r} is planned more than once")
        seen.add(line.key)
        if commitment.status in ("met", "delivered"):
            raise _invalid(f"{field}.key", f"{line.key} is {commitment.status}: only open work is planned")
        if line.due <= stamp.context.now:
            raise _invalid(f"{field}.due", f"the due date of {line.key} must be in the future")
        if line.due > stamp.context.now + PLAN_HORIZON:
            years = PLAN_HORIZON.days // 365
            raise _invalid(f"{field}.due", f"the due date of {line.key} must be within {years} years")
    missing = [key for key, c in state.commitments.items() if c.due is None and key not in seen]
    if missing:
        raise _invalid("items", f"the plan must give every commitment a due date; missing: {', '.join(missing)}")
    return [_new(CommitmentsPlanned.model_construct)(**stamp(0), plan=state.plans + 1, items=command.items)]


@_handles(AcceptPlan)  # type: ignore[arg-type]  # one handler for both decisions on a plan
@_handles(RejectPlan)
def _decide_plan(state: NegotiationState, command: AcceptPlan | RejectPlan, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "agreed")
    if state.plan is None:
        raise _conflict("the vendor has proposed no plan to decide on")
    if isinstance(command, AcceptPlan):
        return [_new(PlanAccepted.model_construct)(**stamp(0), plan=state.plan.number)]
    return [_new(PlanRejected.model_construct)(**stamp(0), plan=state.plan.number, comment=command.comment)]


@_handles(DeliverCommitment)
def _deliver(state: NegotiationState, command: DeliverCommitment, stamp: Stamp) -> list[Event]:
    _role(state, command, "vendor")
    commitment = _commitment(state, command.item_key)
    _planned(state, command, commitment)
    if commitment.status in ("delivered", "met"):
        raise _conflict(f"{commitment.key} is {commitment.status}; it can be delivered again after a not_met verdict")
    _within(commitment.deliveries, stamp.context.limits.rounds, "deliveries of a commitment")
    return [
        _new(CommitmentDelivered.model_construct)(
            **stamp(0), item_key=commitment.key, delivery=commitment.deliveries + 1, evidence=command.evidence
        )
    ]


@_handles(CheckCommitment)
def _check(state: NegotiationState, command: CheckCommitment, stamp: Stamp) -> list[Event]:
    _role(state, command, "member")
    commitment = _commitment(state, command.item_key)
    _planned(state, command, commitment)
    if commitment.status != "delivered":
        hint = "; report a regression if it no longer holds" if commitment.status == "met" else ""
        raise _conflict(f"{commitment.key} is {commitment.status}: only a delivery awaiting a verdict is checked{hint}")
    return [
        _new(CommitmentChecked.model_construct)(
            **stamp(0),
            item_key=commitment.key,
            delivery=commitment.deliveries,
            verdict=command.verdict,
            comment=command.comment,
        )
    ]


@_handles(GiveVerdict)
def _verdict(state: NegotiationState, command: GiveVerdict, stamp: Stamp) -> list[Event]:
    """SPEC 9: "The coordinator decides on the coalition's behalf … → `met` or `not_met`"; the
    verdict that makes every commitment met fulfils the agreement ("`fulfilled` (every commitment met)")."""
    _role(state, command, "coordinator")
    commitment = _commitment(state, command.item_key)
    _planned(state, command, commitment)
    # A delivery awaits its verdict; a met commitment whose regression a member reported may be
    # found not met after all (it is then delivered again, under the same agreement).
    regressed = commitment.status == "met" and bool(commitment.regressions)
    if commitment.status != "delivered" and not regressed:
        raise _conflict(
            f"{commitment.key} is {commitment.status}: a verdict is given on a delivery, or on a met commitment "
            "whose regression a member reported"
        )
    events: list[Event] = [
        _new(CommitmentVerdictGiven.model_construct)(
            **stamp(0),
            item_key=commitment.key,
            delivery=commitment.deliveries,
            verdict=command.verdict,
            comment=command.comment,
        )
    ]
    if command.verdict == "met" and state.phase == "implementing" and not state.reopened:
        # Fulfilled when every other commitment is met too, with no regression report awaiting a verdict
        others_met = all(
            c.status == "met" and not c.regressions for key, c in state.commitments.items() if key != commitment.key
        )
        if others_met:
            events.append(_new(AgreementFulfilled.model_construct)(**stamp(1), commitments=len(state.commitments)))
    return events


@_handles(Tick)
def _tick(state: NegotiationState, command: Tick, stamp: Stamp) -> list[Event]:
    """SPEC 9: "a scheduler sends `Tick {now}` to each negotiation in implementation; the decider
    emits `CommitmentOverdue` for what has passed its date" (refused when nothing has)."""
    if command.actor.role != "admin" or command.actor.person is not None:
        raise _forbidden("only the hub's scheduler sends ticks")
    _phase(state, command, *AFTER_AGREEMENT)
    if command.now > stamp.context.now + TICK_AHEAD:
        raise _invalid(
            "now",
            f"the tick's time {command.now.isoformat()} is ahead of the hub's clock "
            f"({stamp.context.now.isoformat()}): is the scheduler's clock right?",
        )
    overdue = overdue_commitments(state, command.now)
    if not overdue:
        raise _conflict(f"nothing is overdue at {command.now.isoformat()}")
    return [
        _new(CommitmentOverdue.model_construct)(
            **stamp(index), item_key=commitment.key, due=_due(commitment), checked_at=command.now
        )
        for index, commitment in enumerate(overdue)
    ]


def _due(commitment: Commitment) -> datetime:
    assert commitment.due is not None  # only planned commitments become overdue
    return commitment.due


@_handles(ReportRegression)
def _regression(state: NegotiationState, command: ReportRegression, stamp: Stamp) -> list[Event]:
    _role(state, command, "member")
    commitment = _commitment(state, command.item_key)
    _planned(state, command, commitment)
    if commitment.status != "met":
        raise _conflict(f"{commitment.key} is {commitment.status}: only a met commitment can regress")
    _within(len(commitment.regressions), stamp.context.limits.rounds, "regression reports on a commitment")
    return [_new(RegressionReported.model_construct)(**stamp(0), item_key=commitment.key, comment=command.comment)]


@_handles(Reopen)
def _reopen(state: NegotiationState, command: Reopen, stamp: Stamp) -> list[Event]:
    _role(state, command, "coordinator")
    _phase(state, command, "agreed", "implementing", "fulfilled")
    seen: set[str] = set()
    for index, key in enumerate(command.items):
        if key not in state.commitments:
            raise _invalid(f"items[{index}]", f"{key!r} is not a commitment of the agreement")
        if key in seen:
            raise _invalid(f"items[{index}]", f"{key!r} is named more than once")
        seen.add(key)
    in_order = tuple(key for key in state.commitments if key in seen)
    return [_new(NegotiationReopened.model_construct)(**stamp(0), items=in_order, reason=command.reason)]
