"""The figures behind the board's charts, computed by the pure core and cut for the viewer.

- **Cohesion over versions and rounds** (coordinator, members; never the vendor, SPEC 1): the
  exact cohesion right after each published demand version and each vendor response. ``evolve``
  records the satisfied and the whole weight at those two events (``NegotiationState.
  cohesion_points``, one small record each, read from the counters it keeps anyway), so that
  drawing the history never replays the log: a board drawn live for a negotiation of thousands of
  position events costs what the handful of versions and rounds cost.
- **Satisfaction per member and included must item**: satisfied by the current offer, not, or no
  must position. The rows name the members, so they are the coordinator's, and a member's only
  when the policy makes positions transparent (from the positions and offers it may then see, the
  member could work them out); everybody else who may see cohesion gets the counts per item.
- **A member's own positions against the live target and the current offer**, per item, with
  whether that offer satisfies the position (of any priority).

Every function here only reads the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from schemas.documents import Offer
from schemas.negotiation import Kind, Priority, Target
from streams.core.aggregation import share
from streams.core.offers import CurrentOffer, satisfies
from streams.core.state import NegotiationState
from streams.core.views import Audience, included_must_items

Moment = Literal["published", "responded", "now"]
Cell = Literal["satisfied", "unsatisfied", "no_must"]


@dataclass(frozen=True, slots=True)
class CohesionStep:
    """Cohesion right after a version was published (``round``: the rounds answered so far), after
    the vendor answered ``version`` in ``round``, or ``now``, when positions or members changed it
    since."""

    moment: Moment
    version: int
    round: int
    cohesion: Fraction
    satisfied_weight: int
    total_weight: int


def cohesion_history(state: NegotiationState, viewer: Audience) -> tuple[CohesionStep, ...]:
    """The cohesion after each published version and each vendor response, oldest first, and
    where it stands now when it moved since the last of them (members changed their positions);
    none before the first version, and none for the vendor, who never sees cohesion (SPEC 1)."""
    if viewer.role == "vendor" or not state.cohesion_points:
        return ()
    steps = tuple(
        CohesionStep(
            moment="published" if point.moment == "published" else "responded",
            version=point.version,
            round=point.round,
            cohesion=share(point.satisfied_weight, point.total_weight),
            satisfied_weight=point.satisfied_weight,
            total_weight=point.total_weight,
        )
        for point in state.cohesion_points
    )
    last, now = steps[-1], share(state.satisfied_weight, state.total_weight)
    if (state.satisfied_weight, state.total_weight) != (last.satisfied_weight, last.total_weight):
        steps += (CohesionStep("now", last.version, last.round, now, state.satisfied_weight, state.total_weight),)
    return steps


@dataclass(frozen=True, slots=True)
class GridColumn:
    """An included must item, with how many members (not weights) its current offer satisfies,
    does not satisfy, and how many hold no must position on it."""

    key: str
    title: str
    satisfied: int
    unsatisfied: int
    no_must: int


@dataclass(frozen=True, slots=True)
class GridRow:
    organisation_id: str
    name: str
    weight: int
    cells: tuple[Cell, ...]
    """One per column, in the columns' order."""


@dataclass(frozen=True, slots=True)
class SatisfactionGrid:
    columns: tuple[GridColumn, ...]
    rows: tuple[GridRow, ...]
    """Named rows: the coordinator's, and a member's under transparent positions; else empty."""
    members: int
    """How many members the negotiation has."""


def satisfaction_grid(state: NegotiationState, viewer: Audience) -> SatisfactionGrid | None:
    """SPEC 5's satisfaction per member and included must item; None for the vendor."""
    if viewer.role == "vendor":
        return None
    keys = included_must_items(state)
    columns = []
    for key in keys:
        holders = len(state.must_members[key])
        unsatisfied = state.unsatisfied_by_item[key]
        columns.append(
            GridColumn(
                key=key,
                title=state.items[key].title,
                satisfied=holders - unsatisfied,
                unsatisfied=unsatisfied,
                no_must=len(state.members) - holders,
            )
        )
    named = viewer.role == "coordinator" or state.policy.transparent_positions
    rows = (
        tuple(
            GridRow(
                organisation_id=member_id,
                name=member.name,
                weight=member.weight,
                cells=tuple(_cell(state, member_id, key) for key in keys),
            )
            for member_id, member in state.members.items()
        )
        if named
        else ()
    )
    return SatisfactionGrid(columns=tuple(columns), rows=rows, members=len(state.members))


def _cell(state: NegotiationState, member_id: str, key: str) -> Cell:
    if member_id not in state.must_members[key]:
        return "no_must"
    return "unsatisfied" if key in state.unsatisfied[member_id] else "satisfied"


@dataclass(frozen=True, slots=True)
class OwnPosition:
    """A member's position on an item beside the live joint target and the vendor's current offer."""

    key: str
    title: str
    kind: Kind
    unit: str | None
    options: tuple[str, ...] | None
    """one_of: the item's options."""
    priority: Priority
    value: Fraction | None
    accepted: tuple[str, ...] | None
    target: Target | None
    """The live joint demand's target (None: the item has no target)."""
    offer: Offer | None
    offered: Target | None
    """What the current offer amounts to: a counter's value or option, an accept's answered
    target; None for a rejection or no answer."""
    satisfied: bool
    """Whether the current offer satisfies this position (SPEC 5; no offer or a rejection: no)."""


def own_positions(state: NegotiationState, viewer: Audience) -> tuple[OwnPosition, ...]:
    """The member's own positions, in the negotiation's item order; none for anybody else."""
    if viewer.role != "member":
        return ()
    mine = state.positions.get(viewer.organisation_id, {})
    found = []
    for key, item in state.items.items():
        position = mine.get(key)
        if position is None:
            continue
        current = state.offers.get(key)
        target, _ = state.aggregates[key].target(state.policy)
        found.append(
            OwnPosition(
                key=key,
                title=item.title,
                kind=item.kind,
                unit=item.unit,
                options=item.options,
                priority=position.priority,
                value=position.value,
                accepted=position.accepted,
                target=target,
                offer=None if current is None else current.offer,
                offered=_offered(current),
                satisfied=satisfies(current, item.kind, position),
            )
        )
    return tuple(found)


def _offered(current: CurrentOffer | None) -> Target | None:
    if current is None or current.offer.verdict == "reject":
        return None
    offer = current.offer
    if offer.verdict == "accept":
        return current.answered_target
    if offer.value is not None:
        return offer.value
    return None if offer.option is None else (offer.option,)
