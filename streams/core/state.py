"""A negotiation's state and ``evolve``: the one function that applies an event to it.

The state holds the facts (members, positions, published versions, offers, endorsements) and the
indexes kept beside them so that every event costs O(log k) for the k supporters of the item it
touches: per-item aggregates for the joint demand, and per-member / per-item sets of unsatisfied
must positions for cohesion and settled items. Beside them, a log of which rows of the shared
state document each event touched (:class:`Touches`), which a drawing of the document reads
without changing it.

``evolve`` changes the state it is given and returns it: copying a negotiation's state for every
event would cost what the indexes save. Callers that need the state before an event keep a copy
(``copy.deepcopy``) or replay. Events at or below the state's sequence are already applied and
are ignored (at-least-once delivery); a gap in the sequence is an error.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from schemas.documents import DemandVersion, Offer
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
from schemas.negotiation import (
    CheckVerdict,
    CommitmentStatus,
    Decision,
    Phase,
    PlannedCommitment,
    Policy,
    Position,
    RequirementItem,
    Target,
)
from streams.core.aggregation import ItemAggregate
from streams.core.chain import GENESIS
from streams.core.offers import CurrentOffer, satisfies

COMMAND_ID_MEMORY = timedelta(days=7)
"""How long a negotiation remembers an accepted command id (by its events' time): a command sent
again with that id within this is answered as a duplicate. Kafka's redeliveries need no memory
of ids (an aborted transaction's commands are decided as if for the first time; a committed
batch delivered again meets its own events in the log, ``streams.table``); this is for senders
that send the same command again: the request/reply client after a timeout (seconds), the
scheduler's ticks (one interval), and the API's ``Idempotency-Key`` (its records are kept 24 h,
and a retry of a command it sent asks the read model). A week is the commands topic's retention,
and the window is counted in the events' own time (when the command was decided). The memory is
thus bounded by a week of commands (and ``COMMAND_ID_FLOOR``), not by the whole history
(docs/streams.md)."""

COMMAND_ID_FLOOR = 128
"""However far the events' time moves on (a worker's clock stepped ahead), a negotiation keeps at
least its last this many command ids: a resend seconds after its first send stays a duplicate."""


_BUCKET = timedelta(minutes=1)


class SequenceGap(ValueError):
    """An event arrived whose sequence is not the next one: an event is missing before it."""


class ChainBroken(SequenceGap):
    """An event does not link to the negotiation's hash chain (SPEC 7.1): its ``previous_hash``
    is not the head, or it carries no hash after the chain began. Whatever follows cannot be
    trusted to be the log as written, so it is treated as a gap: nothing applies it."""


@dataclass(slots=True)
class Member:
    organisation_id: str
    name: str
    weight: int


@dataclass(slots=True)
class Clarification:
    clarification_id: int
    item_key: str
    question: str
    asked_at: datetime
    answer: str | None = None
    answered_at: datetime | None = None


@dataclass(slots=True)
class Proposal:
    demand_version: int
    round: int
    endorsements: dict[str, Decision] = field(default_factory=dict)
    comments: dict[str, str | None] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """How the endorsement ended: the agreement, or its rejection."""

    agreed: bool
    accepting_share: float
    rejecting_share: float
    demand_version: int
    round: int
    at: datetime
    head_hash: str | None = None
    """The hash of the AgreementReached / AgreementRejected event (None before the log was hashed)."""
    sequence: int = 0
    """The sequence of that event."""


@dataclass(slots=True)
class Check:
    """A member's check of a commitment's current delivery, or the coordinator's verdict on it."""

    verdict: CheckVerdict
    comment: str | None
    at: datetime


@dataclass(slots=True)
class Regression:
    """A member's report that a met commitment no longer holds."""

    member_id: str
    comment: str
    at: datetime


@dataclass(slots=True)
class Commitment:
    """What the vendor promised on one item of the agreement (SPEC section 9), and how it stands."""

    key: str
    target: Target
    """The agreed demand version's target for the item."""
    offer: Offer
    """The vendor's offer on it at the agreement: accept or counter (a rejected item is no commitment)."""
    agreed_at: datetime
    status: CommitmentStatus = "open"
    due: datetime | None = None
    """Set when the coordinator accepts a plan: from then the commitment can be delivered, and overdue."""
    note: str | None = None
    deliveries: int = 0
    evidence: str | None = None
    delivered_at: datetime | None = None
    checks: dict[str, Check] = field(default_factory=dict)
    """Member id -> its check of the current delivery (a new delivery starts afresh)."""
    verdict: Check | None = None
    """The coordinator's latest verdict (a ``not_met`` one leaves the commitment open)."""
    met_at: datetime | None = None
    overdue_since: datetime | None = None
    """The tick's time at which the commitment was found overdue."""
    regressions: list[Regression] = field(default_factory=list)
    """Reports since it was last met that it no longer holds."""


@dataclass(slots=True)
class Plan:
    """The vendor's action plan awaiting the coordinator's decision."""

    number: int
    items: tuple[PlannedCommitment, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class CohesionPoint:
    """Cohesion right after a demand version was published or the vendor responded: the weights,
    so that the share stays exact (``streams.core.figures.cohesion_history`` reads them)."""

    sequence: int
    moment: str
    """``published`` or ``responded``."""
    version: int
    round: int
    satisfied_weight: int
    total_weight: int


@dataclass(slots=True)
class Touches:
    """Which rows of the shared state document events touched, in order.

    ``evolve`` appends to this log; a drawing of the document remembers the position it read up
    to (``end``) and next time reads only what came after, so drawing never changes the state.
    The log keeps about twice as many entries as the document has rows: past that its older half
    goes, and a reader whose position fell off redraws every row, which costs no more than reading
    the entries it missed would have.
    """

    entries: list[tuple[bool, str | None]] = field(default_factory=list)
    """(whether it is a member's row, the member id or item key); an item key None: every item."""
    end: int = 0
    """How many entries were ever appended: the position after the newest."""

    @property
    def start(self) -> int:
        """The position of the oldest entry still kept."""
        return self.end - len(self.entries)

    def since(self, position: int) -> list[tuple[bool, str | None]] | None:
        """The entries after ``position``, or None when some of them are no longer kept."""
        if not self.start <= position <= self.end:
            return None
        return self.entries[position - self.start :]

    def append(self, member: bool, key: str | None, keep: int) -> None:
        self.entries.append((member, key))
        self.end += 1
        if len(self.entries) > keep:
            del self.entries[: len(self.entries) // 2]


VENDOR_VISIBLE = frozenset(
    {
        "NegotiationOpened",
        "DemandPublished",
        "VendorResponded",
        "ClarificationRequested",
        "ClarificationAnswered",
        "AgreementProposed",
        "AgreementReached",
        "AgreementRejected",
        "NegotiationAbandoned",
        "CommitmentsPlanned",
        "PlanAccepted",
        "PlanRejected",
        "CommitmentDelivered",
        "CommitmentVerdictGiven",
        "CommitmentOverdue",
        "NegotiationReopened",
        "AgreementFulfilled",
    }
)
"""SPEC 1: the events the vendor's view is made of — published demand versions, its own
responses, clarifications, the agreement (and the opening and end of the negotiation); after the
agreement (SPEC 9) its plans and their decisions, its deliveries, the verdicts, overdue items, the
reopening and the fulfilment. Members' checks and regression reports are not among them."""


@dataclass(slots=True)
class NegotiationState:
    negotiation_id: str
    title: str
    coordinator_id: str
    coordinator_name: str
    vendor_id: str
    vendor_name: str
    items: dict[str, RequirementItem]
    policy: Policy
    opened_at: datetime
    phase: Phase = "collecting"
    sequence: int = 0
    updated_at: datetime | None = None
    members: dict[str, Member] = field(default_factory=dict)
    total_weight: int = 0
    positions: dict[str, dict[str, Position]] = field(default_factory=dict)
    versions: list[DemandVersion] = field(default_factory=list)
    round: int = 0
    offers: dict[str, CurrentOffer] = field(default_factory=dict)
    clarifications: dict[int, Clarification] = field(default_factory=dict)
    proposal: Proposal | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    abandon_reason: str | None = None
    commitments: dict[str, Commitment] = field(default_factory=dict)
    """SPEC 9: the agreement's commitments, in the negotiation's item order."""
    plan: Plan | None = None
    """The vendor's plan awaiting the coordinator's decision."""
    plans: int = 0
    """How many plans the vendor proposed: the next one's number is one more."""
    plan_rejection: str | None = None
    """The coordinator's comment on the last rejected plan (until the next plan)."""
    reopened: tuple[str, ...] = ()
    """The items being negotiated again after a reopening (until the next agreement)."""
    answered_version: int = 0
    """The demand version the vendor's latest round answered."""
    reopened_after_version: int = 0
    """How many demand versions were published when the negotiation was last reopened."""
    commands: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Accepted command id -> the first and last sequence of its events, for ``COMMAND_ID_MEMORY``."""
    command_times: deque[tuple[datetime, list[str]]] = field(default_factory=deque)
    """The remembered command ids by when they were first decided, oldest first, a minute to a
    bucket (keyed by its end: a minute after its first id's time): what to forget when."""
    vendor_sequence: int = 0
    """SPEC 1: the vendor's own gapless counter over the events it may see (its feed, stream and
    state are numbered with it; the internal ``sequence`` would tell it how much members did)."""
    vendor_updated_at: datetime | None = None
    """The time of the latest event the vendor may see (member activity has no time for it)."""
    head_hash: str | None = None
    """The ``hash`` of the last event: the head of the hash chain (None: no hashed event yet)."""
    chain_from: int | None = None
    """The sequence of the first hashed event (1, unless the negotiation began before hashing)."""
    # -- indexes, derived from the facts above ----------------------------------------------
    aggregates: dict[str, ItemAggregate] = field(default_factory=dict)
    version_targets: list[dict[str, Target]] = field(default_factory=list)
    must_members: dict[str, set[str]] = field(default_factory=dict)
    must_count: Counter[str] = field(default_factory=Counter)
    """Per member, how many must positions it holds."""
    unsatisfied: dict[str, set[str]] = field(default_factory=dict)
    unsatisfied_by_item: Counter[str] = field(default_factory=Counter)
    satisfied_weight: int = 0
    item_rank: dict[str, int] = field(default_factory=dict)
    """Each item's place in the negotiation's order, for listing a set of items in that order."""
    touches: Touches = field(default_factory=Touches)
    """Which rows of the shared state document events touched: drawings read it, only evolve writes it."""
    cohesion_points: list[CohesionPoint] = field(default_factory=list)
    """Cohesion after each published version and each vendor response, for the board's chart: one
    small record per such event (the weights ``evolve`` keeps anyway), so a board never replays."""

    # -- reading ---------------------------------------------------------------------------
    @property
    def latest_version(self) -> DemandVersion | None:
        return self.versions[-1] if self.versions else None

    @property
    def awaiting_reopened_version(self) -> bool:
        """Reopened, and no demand version published since (SPEC 9): the vendor's answers and the
        agreement wait for the version that holds the reopened items."""
        return bool(self.reopened) and len(self.versions) <= self.reopened_after_version

    def role_of(self, organisation_id: str) -> str | None:
        """The organisation's part in this negotiation, or None when it is not a party."""
        if organisation_id == self.coordinator_id:
            return "coordinator"
        if organisation_id == self.vendor_id:
            return "vendor"
        if organisation_id in self.members:
            return "member"
        return None

    def facts(self) -> dict[str, Any]:
        """Everything the events established, without the indexes: for comparing two states."""
        return {
            "negotiation_id": self.negotiation_id,
            "title": self.title,
            "coordinator": (self.coordinator_id, self.coordinator_name),
            "vendor": (self.vendor_id, self.vendor_name),
            "items": list(self.items.values()),
            "policy": self.policy,
            "phase": self.phase,
            "sequence": self.sequence,
            "members": {k: (m.name, m.weight) for k, m in self.members.items()},
            "positions": {m: dict(sorted(p.items())) for m, p in sorted(self.positions.items())},
            "versions": self.versions,
            "round": self.round,
            "offers": dict(sorted(self.offers.items())),
            "clarifications": self.clarifications,
            "proposal": self.proposal,
            "outcomes": self.outcomes,
            "commitments": self.commitments,
            "plan": self.plan,
            "plans": self.plans,
            "plan_rejection": self.plan_rejection,
            "reopened": (self.reopened, self.reopened_after_version, self.answered_version),
            "commands": self.commands,
            "vendor_sequence": self.vendor_sequence,
            "head_hash": self.head_hash,
            "chain_from": self.chain_from,
        }

    def satisfied(self, member_id: str) -> bool:
        """SPEC 5: "when the current offers satisfy every one of its must positions" (none: satisfied)."""
        return not self.unsatisfied[member_id]

    def settled(self, item_key: str) -> bool:
        """SPEC 5: "when the status is accepted or countered and the offer satisfies every must position" on it."""
        current = self.offers.get(item_key)
        return (
            current is not None
            and current.offer.verdict in ("accept", "counter")
            and self.unsatisfied_by_item[item_key] == 0
        )


# -- evolve --------------------------------------------------------------------------------

E = TypeVar("E")
_EVOLVERS: dict[type[Any], Callable[[NegotiationState, Any], None]] = {}


def _on(
    event_type: type[E],
) -> Callable[[Callable[[NegotiationState, E], None]], Callable[[NegotiationState, E], None]]:
    def register(fn: Callable[[NegotiationState, E], None]) -> Callable[[NegotiationState, E], None]:
        _EVOLVERS[event_type] = fn
        return fn

    return register


def evolve(state: NegotiationState | None, event: Event) -> NegotiationState:
    """Apply one event. Returns the (changed) state; the first event must be NegotiationOpened.

    The event must link to the state's hash chain (``ChainBroken`` otherwise); its own hash is
    not recomputed here (the audit does that, from the JSON as written)."""
    if state is None:
        if not isinstance(event, NegotiationOpened):
            raise SequenceGap(f"negotiation {event.negotiation_id} has no NegotiationOpened before {event.type}")
        if event.sequence != 1:
            raise SequenceGap(f"NegotiationOpened must have sequence 1, not {event.sequence}")
        _check_link(None, event)
        state = _opened(event)
    else:
        if event.sequence <= state.sequence:
            return state
        if event.sequence != state.sequence + 1:
            raise SequenceGap(f"negotiation {state.negotiation_id}: event {event.sequence} follows {state.sequence}")
        head = state.head_hash
        if event.hash is None or head is None or event.previous_hash != head:  # else linked: the common case
            _check_link(head, event)
        _EVOLVERS[type(event)](state, event)
    if event.hash is not None:
        if state.head_hash is None:
            state.chain_from = event.sequence
        state.head_hash = event.hash
    state.sequence = event.sequence
    state.updated_at = event.occurred_at
    if event.type in VENDOR_VISIBLE:
        state.vendor_sequence += 1
        state.vendor_updated_at = event.occurred_at
    _remember_command(state, event)
    return state


def _remember_command(state: NegotiationState, event: Event) -> None:
    """Note the event's command (its first and last sequence), and forget command ids decided
    more than ``COMMAND_ID_MEMORY`` before this event: by the events' own time, so that a replay,
    a snapshot and the worker that wrote them forget exactly alike."""
    commands, times = state.commands, state.command_times
    known = commands.get(event.command_id)
    if known is not None:
        commands[event.command_id] = (known[0], event.sequence)
        return
    commands[event.command_id] = (event.sequence, event.sequence)
    at = event.occurred_at
    if times and at < times[-1][0]:
        times[-1][1].append(event.command_id)
    else:
        times.append((at + _BUCKET, [event.command_id]))  # a new bucket: at most one a minute
    # The ids of buckets that ended a week before go, as long as the last COMMAND_ID_FLOOR stay.
    horizon = at - COMMAND_ID_MEMORY
    while times[0][0] <= horizon and len(commands) - len(times[0][1]) >= COMMAND_ID_FLOOR:
        for command_id in times.popleft()[1]:
            commands.pop(command_id, None)


def _check_link(head: str | None, event: Event) -> None:
    if event.hash is None:
        if head is not None or event.previous_hash is not None:
            raise ChainBroken(
                f"negotiation {event.negotiation_id}: event {event.sequence} carries no hash, after the chain began"
            )
    elif event.previous_hash != (head or GENESIS):
        raise ChainBroken(
            f"negotiation {event.negotiation_id}: event {event.sequence} links to {event.previous_hash}, "
            f"not to the chain's head {head or GENESIS}"
        )


def replay(events: Iterable[Event], state: NegotiationState | None = None) -> NegotiationState | None:
    for event in events:
        state = evolve(state, event)
    return state


def _opened(event: NegotiationOpened) -> NegotiationState:
    state = NegotiationState(
        negotiation_id=event.negotiation_id,
        title=event.title,
        coordinator_id=event.actor_id,
        coordinator_name=event.coordinator_name,
        vendor_id=event.vendor_id,
        vendor_name=event.vendor_name,
        items={item.key: item for item in event.items},
        policy=event.policy,
        opened_at=event.occurred_at,
    )
    state.aggregates = {item.key: ItemAggregate(item) for item in event.items}
    state.item_rank = {item.key: rank for rank, item in enumerate(event.items)}
    _touch_item(state, None)
    state.must_members = {item.key: set() for item in event.items}
    return state


@_on(MemberInvited)
def _member_invited(state: NegotiationState, event: MemberInvited) -> None:
    state.members[event.organisation_id] = Member(event.organisation_id, event.name, event.weight)
    _touch_member(state, event.organisation_id)
    state.positions[event.organisation_id] = {}
    state.unsatisfied[event.organisation_id] = set()
    state.total_weight += event.weight
    # A member without must positions is satisfied.
    state.satisfied_weight += event.weight


@_on(PolicyChanged)
def _policy_changed(state: NegotiationState, event: PolicyChanged) -> None:
    state.policy = event.policy


def _touch_item(state: NegotiationState, item_key: str | None) -> None:
    """The item's row of the shared state may have changed (``None``: every item's row)."""
    state.touches.append(False, item_key, _touches_kept(state))


def _touch_member(state: NegotiationState, member_id: str) -> None:
    """The member's row of the shared state may have changed."""
    state.touches.append(True, member_id, _touches_kept(state))


def _touches_kept(state: NegotiationState) -> int:
    # About twice the document's rows: a drawing that falls off the log would rebuild about as
    # many rows as it had to read entries, so the log needs no more to pay for itself.
    return 2 * (len(state.items) + len(state.members)) + 16


def _mark(state: NegotiationState, member_id: str, item_key: str, satisfied: bool) -> None:
    """Whether the current offer satisfies the member's must position on the item, kept per member
    and per item (so ``satisfied``, ``settled`` and cohesion are read in O(1))."""
    touches, keep = state.touches, _touches_kept(state)
    touches.append(True, member_id, keep)  # its must count or open items may change, and so
    touches.append(False, item_key, keep)  # whether the item is settled
    open_items = state.unsatisfied[member_id]
    was_satisfied = not open_items
    if satisfied:
        if item_key in open_items:
            open_items.remove(item_key)
            state.unsatisfied_by_item[item_key] -= 1
    elif item_key not in open_items:
        open_items.add(item_key)
        state.unsatisfied_by_item[item_key] += 1
    now_satisfied = not open_items
    if was_satisfied != now_satisfied:
        weight = state.members[member_id].weight
        state.satisfied_weight += weight if now_satisfied else -weight


def _leave(state: NegotiationState, member_id: str, item_key: str) -> None:
    old = state.positions[member_id].pop(item_key, None)
    if old is None:
        return
    state.aggregates[item_key].remove(old, state.members[member_id].weight)
    if old.priority == "must":
        state.must_members[item_key].discard(member_id)
        state.must_count[member_id] -= 1
        _mark(state, member_id, item_key, satisfied=True)


@_on(PositionStated)
def _position_stated(state: NegotiationState, event: PositionStated) -> None:
    # The most frequent event of every log: ``_leave`` and the aggregate's lookups are inlined
    # (each call saved is a few per cent of a replay; ``make bench-core``).
    member_id, key, position = event.actor_id, event.item_key, event.position
    held = state.positions[member_id]
    weight = state.members[member_id].weight
    aggregate = state.aggregates[key]
    old = held.pop(key, None)
    if old is not None:
        aggregate.remove(old, weight)
        if old.priority == "must":
            state.must_members[key].discard(member_id)
            state.must_count[member_id] -= 1
            if position.priority != "must":  # a must stays a must: marked below, once
                _mark(state, member_id, key, satisfied=True)
    held[key] = position
    aggregate.add(position, weight)
    if position.priority == "must":
        state.must_members[key].add(member_id)
        state.must_count[member_id] += 1
        ok = satisfies(state.offers.get(key), state.items[key].kind, position)
        _mark(state, member_id, key, satisfied=ok)


@_on(PositionWithdrawn)
def _position_withdrawn(state: NegotiationState, event: PositionWithdrawn) -> None:
    _leave(state, event.actor_id, event.item_key)


@_on(DemandPublished)
def _demand_published(state: NegotiationState, event: DemandPublished) -> None:
    version = DemandVersion(
        negotiation_id=event.negotiation_id,
        version=event.version,
        hash=event.version_hash,
        published_at=event.occurred_at,
        items=event.items,
        head_hash=event.hash,
    )
    state.versions.append(version)
    state.version_targets.append({item.key: item.target for item in event.items})
    _touch_item(state, None)  # every item's target is the new version's (or none)
    if state.phase == "collecting":
        state.phase = "negotiating"
    _remember_cohesion(state, event.sequence, "published", event.version)


@_on(VendorResponded)
def _vendor_responded(state: NegotiationState, event: VendorResponded) -> None:
    state.round = event.round
    state.answered_version = event.demand_version
    targets = state.version_targets[event.demand_version - 1]
    for response in event.items:
        key = response.key
        offer = Offer(
            verdict=response.verdict,
            value=response.value,
            option=response.option,
            comment=response.comment,
            round=event.round,
            demand_version=event.demand_version,
        )
        current = CurrentOffer(offer=offer, answered_target=targets[key])
        state.offers[key] = current
        _touch_item(state, key)
        kind = state.items[key].kind
        for member_id in state.must_members[key]:
            position = state.positions[member_id][key]
            _mark(state, member_id, key, satisfied=satisfies(current, kind, position))
    _remember_cohesion(state, event.sequence, "responded", event.demand_version)


def _remember_cohesion(state: NegotiationState, sequence: int, moment: str, version: int) -> None:
    state.cohesion_points.append(
        CohesionPoint(sequence, moment, version, state.round, state.satisfied_weight, state.total_weight)
    )


@_on(ClarificationRequested)
def _clarification_requested(state: NegotiationState, event: ClarificationRequested) -> None:
    state.clarifications[event.clarification_id] = Clarification(
        event.clarification_id, event.item_key, event.question, event.occurred_at
    )


@_on(ClarificationAnswered)
def _clarification_answered(state: NegotiationState, event: ClarificationAnswered) -> None:
    clarification = state.clarifications[event.clarification_id]
    clarification.answer = event.answer
    clarification.answered_at = event.occurred_at


@_on(AgreementProposed)
def _agreement_proposed(state: NegotiationState, event: AgreementProposed) -> None:
    state.phase = "endorsing"
    state.proposal = Proposal(demand_version=event.demand_version, round=event.round)


@_on(EndorsementGiven)
def _endorsement_given(state: NegotiationState, event: EndorsementGiven) -> None:
    assert state.proposal is not None
    state.proposal.endorsements[event.actor_id] = event.decision
    state.proposal.comments[event.actor_id] = event.comment


def _outcome(state: NegotiationState, event: AgreementReached | AgreementRejected, agreed: bool) -> None:
    assert state.proposal is not None
    state.outcomes.append(
        Outcome(
            agreed=agreed,
            accepting_share=event.accepting_share,
            rejecting_share=event.rejecting_share,
            demand_version=state.proposal.demand_version,
            round=state.proposal.round,
            at=event.occurred_at,
            head_hash=event.hash,
            sequence=event.sequence,
        )
    )


@_on(AgreementReached)
def _agreement_reached(state: NegotiationState, event: AgreementReached) -> None:
    """SPEC 9: "On `AgreementReached` every item of the agreement becomes a **commitment**: its key,
    the agreed terms (target and offer), `due` (none yet) and status `open`"."""
    _outcome(state, event, agreed=True)
    state.phase = "agreed"
    # SPEC 9: every item of the agreement becomes a commitment; an item the vendor rejected (or
    # left unanswered) promises nothing. After a reopening the agreed version holds only the
    # reopened items: their commitments are made again, the others stand as they are.
    agreed = state.versions[state.outcomes[-1].demand_version - 1]
    for item in agreed.items:
        current = state.offers.get(item.key)
        if current is not None and current.offer.verdict in ("accept", "counter"):
            state.commitments[item.key] = Commitment(
                key=item.key, target=item.target, offer=current.offer, agreed_at=event.occurred_at
            )
    state.commitments = {key: state.commitments[key] for key in state.items if key in state.commitments}
    state.reopened = ()
    state.plan = None
    if state.commitments and all(c.due is not None for c in state.commitments.values()):
        # Nothing new to plan (the vendor rejected every reopened item): the planned work goes on.
        state.phase = "implementing"


@_on(AgreementRejected)
def _agreement_rejected(state: NegotiationState, event: AgreementRejected) -> None:
    _outcome(state, event, agreed=False)
    state.phase = "negotiating"
    state.proposal = None


@_on(NegotiationAbandoned)
def _negotiation_abandoned(state: NegotiationState, event: NegotiationAbandoned) -> None:
    state.phase = "abandoned"
    state.abandon_reason = event.reason


# -- after the agreement (SPEC section 9) ----------------------------------------------------------


@_on(CommitmentsPlanned)
def _commitments_planned(state: NegotiationState, event: CommitmentsPlanned) -> None:
    state.plan = Plan(event.plan, event.items, event.occurred_at)
    state.plans = event.plan
    state.plan_rejection = None


@_on(PlanAccepted)
def _plan_accepted(state: NegotiationState, event: PlanAccepted) -> None:
    assert state.plan is not None
    for line in state.plan.items:
        commitment = state.commitments[line.key]
        commitment.due, commitment.note = line.due, line.note
        if commitment.status == "overdue":  # a new due date: open again until it passes
            commitment.status, commitment.overdue_since = "open", None
    state.plan = None
    state.phase = "implementing"


@_on(PlanRejected)
def _plan_rejected(state: NegotiationState, event: PlanRejected) -> None:
    state.plan = None
    state.plan_rejection = event.comment


@_on(CommitmentDelivered)
def _commitment_delivered(state: NegotiationState, event: CommitmentDelivered) -> None:
    commitment = state.commitments[event.item_key]
    commitment.status = "delivered"
    commitment.deliveries = event.delivery
    commitment.evidence = event.evidence
    commitment.delivered_at = event.occurred_at
    commitment.checks = {}


@_on(CommitmentChecked)
def _commitment_checked(state: NegotiationState, event: CommitmentChecked) -> None:
    state.commitments[event.item_key].checks[event.actor_id] = Check(event.verdict, event.comment, event.occurred_at)


@_on(CommitmentVerdictGiven)
def _commitment_verdict(state: NegotiationState, event: CommitmentVerdictGiven) -> None:
    commitment = state.commitments[event.item_key]
    commitment.verdict = Check(event.verdict, event.comment, event.occurred_at)
    if event.verdict == "met":  # (on a met commitment: its regression reports are found unfounded)
        if commitment.status != "met":
            commitment.met_at = event.occurred_at
        commitment.status, commitment.overdue_since = "met", None
        commitment.regressions = []
    else:  # open for a new delivery (overdue again at the next tick, if its date has passed)
        commitment.status, commitment.met_at = "open", None
        if state.phase == "fulfilled":  # a regression found real: the work goes on
            state.phase = "implementing"


@_on(CommitmentOverdue)
def _commitment_overdue(state: NegotiationState, event: CommitmentOverdue) -> None:
    commitment = state.commitments[event.item_key]
    commitment.status, commitment.overdue_since = "overdue", event.checked_at


@_on(RegressionReported)
def _regression_reported(state: NegotiationState, event: RegressionReported) -> None:
    state.commitments[event.item_key].regressions.append(Regression(event.actor_id, event.comment, event.occurred_at))


@_on(NegotiationReopened)
def _negotiation_reopened(state: NegotiationState, event: NegotiationReopened) -> None:
    state.phase = "negotiating"
    state.reopened = event.items
    state.reopened_after_version = len(state.versions)
    state.plan = None
    state.plan_rejection = None
    for key in event.items:
        del state.commitments[key]  # negotiated again: the next agreement makes it anew
    _touch_item(state, None)


@_on(AgreementFulfilled)
def _agreement_fulfilled(state: NegotiationState, event: AgreementFulfilled) -> None:
    state.phase = "fulfilled"
