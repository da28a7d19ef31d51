"""Why the joint demand is what it is (SPEC section 4.1), item by item.

Every conclusion here is the aggregate's own: ``included`` and its reason, the priority, the
considered positions, C, q·C and the target come from the same :class:`ItemAggregate` methods that
compute the demand (``demand_item``), never from a second reading of the rules. What the
explanation adds are the figures behind them: the shares as exact fractions, the considered
positions one by one, the cumulative weight at each distinct considered value (read from the
same weighted values the target search descends), and the per-option tally of one_of.

The considered positions are the one part that walks the members (the aggregate keeps sums,
not who stated what): an explanation costs O(members * items), which a read on request can pay.
Who holds a position is shown only to whom ``views.sees_positions_of`` allows; the others are
listed without a name, sorted by what they state, so their order does not tell who they are.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import accumulate
from typing import Any

from schemas.documents import (
    ConsideredPosition,
    CurvePoint,
    DemandExplanation,
    ExactShare,
    InclusionTest,
    ItemExplanation,
    OptionTally,
    PriorityCount,
    PriorityExplanation,
    TargetDerivation,
)
from schemas.negotiation import Position
from streams.core.aggregation import CONSIDERED_PRIORITIES, ItemAggregate, share
from streams.core.state import NegotiationState
from streams.core.views import Audience, sees_positions_of


def exact(value: Fraction | int) -> ExactShare:
    """An exact figure as ``"p/q"`` and as a float."""
    value = Fraction(value)
    return ExactShare(fraction=f"{value.numerator}/{value.denominator}", value=float(value))


def demand_explanation(state: NegotiationState, viewer: Audience) -> DemandExplanation:
    """SPEC 4.1: for every item of the live demand, why it is what it is, as ``viewer`` may see it."""
    return DemandExplanation(
        negotiation_id=state.negotiation_id,
        sequence=state.sequence,
        items=tuple(item_explanation(state, key, viewer) for key in state.items),
    )


def item_explanation(state: NegotiationState, key: str, viewer: Audience) -> ItemExplanation:
    """SPEC 4.1, one item: the inclusion test, how the priority arose, the target's derivation;
    its conclusions are the item's line of the demand (``ItemAggregate.demand_item``)."""
    aggregate = state.aggregates[key]
    line = aggregate.demand_item(state.total_weight, state.policy)
    return ItemExplanation(
        key=key,
        kind=line.kind,
        included=line.included,
        inclusion=_inclusion(aggregate, state),
        priority=_priority(aggregate, state.total_weight),
        target=line.target,
        conflict=line.conflict,
        derivation=_derivation(aggregate, state, viewer) if aggregate.supporters else None,
    )


def _inclusion(aggregate: ItemAggregate, state: NegotiationState) -> InclusionTest:
    total, policy = state.total_weight, state.policy
    must = aggregate.weight_by_priority["must"]
    because = aggregate.inclusion(total, policy)
    return InclusionTest(
        total_weight=total,
        supporter_weight=aggregate.supporter_weight,
        must_weight=must,
        support_share=exact(share(aggregate.supporter_weight, total)),
        must_share=exact(share(must, total)),
        inclusion_share=exact(policy.inclusion_share),
        included=because is not None,
        because=because,
    )


def _priority(aggregate: ItemAggregate, total_weight: int) -> PriorityExplanation:
    return PriorityExplanation(
        priority=aggregate.priority,
        counts=tuple(
            PriorityCount(priority=p, positions=aggregate.count_by_priority[p], weight=aggregate.weight_by_priority[p])
            for p in ("must", "should", "could")
        ),
        priority_score=exact(aggregate.priority_score(total_weight)),
    )


def _considered_positions(
    aggregate: ItemAggregate, state: NegotiationState, viewer: Audience
) -> tuple[ConsideredPosition, ...]:
    key, counted = aggregate.item.key, CONSIDERED_PRIORITIES[aggregate.considered()]
    named: list[ConsideredPosition] = []
    anonymous: list[tuple[tuple[Any, ...], Position, int]] = []
    for member_id, stated in state.positions.items():
        position = stated.get(key)
        if position is None or position.priority not in counted:
            continue
        member = state.members[member_id]
        if sees_positions_of(state, viewer, member_id):
            named.append(_considered(position, member.weight, member_id, member.name))
        else:
            # Unnamed positions in an order of their own content: the invitation order would name
            # them. The float first keeps most comparisons off the exact fractions.
            value = position.value
            order = (0.0 if value is None else float(value), value or 0, position.accepted or (), position.priority)
            anonymous.append(((*order, member.weight), position, member.weight))
    anonymous.sort(key=lambda entry: entry[0])
    return (*named, *(_considered(position, weight) for _, position, weight in anonymous))


def _considered(
    position: Position, weight: int, member_id: str | None = None, member_name: str | None = None
) -> ConsideredPosition:
    return ConsideredPosition(
        member_id=member_id,
        member_name=member_name,
        priority=position.priority,
        weight=weight,
        value=position.value,
        accepted=position.accepted,
    )


def _curve(aggregate: ItemAggregate, threshold: Fraction) -> tuple[CurvePoint, ...]:
    """The cumulative considered weight at each distinct value, from the same weighted values the
    target search descends: at_most counts the values at or above, at_least those at or below."""
    stated = list(aggregate.considered_values().items())  # ascending
    weights = [w for _, w in stated]
    if aggregate.item.kind == "at_most":
        cumulative = list(accumulate(reversed(weights)))[::-1]
    else:
        cumulative = list(accumulate(weights))
    return tuple(
        CurvePoint(value=value, weight=weight, cumulative=total, reaches=total >= threshold)
        for (value, weight), total in zip(stated, cumulative, strict=True)
    )


def _derivation(aggregate: ItemAggregate, state: NegotiationState, viewer: Audience) -> TargetDerivation:
    kind = aggregate.item.kind
    figures: dict[str, Any] = {}
    if kind in ("at_most", "at_least"):
        threshold = aggregate.threshold(state.policy)
        figures = {
            "coverage": exact(state.policy.coverage),
            "threshold": exact(threshold),
            "curve": _curve(aggregate, threshold),
        }
    elif kind == "one_of":
        assert aggregate.item.options is not None
        _, option_count, option_weight = aggregate.option_tally()
        figures = {
            "intersection": aggregate.intersection(),
            "tally": tuple(
                OptionTally(option=o, positions=option_count[o], weight=option_weight[o])
                for o in aggregate.item.options
            ),
        }
    return TargetDerivation(
        considered=aggregate.considered(),
        positions=_considered_positions(aggregate, state, viewer),
        considered_weight=aggregate.considered_weight(),
        **figures,
    )
