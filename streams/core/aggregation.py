"""The joint demand (SPEC section 4), kept incrementally per item.

Each item has an :class:`ItemAggregate` that a position enters and leaves in O(log k) for the k
supporters of that item; the item's line of the joint demand is then read off in O(log k) (or
O(options) for ``one_of``). Nothing here ever walks over all members or all items.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Literal

from schemas.documents import Considered, DemandItem
from schemas.negotiation import PRIORITY_RANK, Policy, Position, Priority, RequirementItem, Target
from streams.core.weighted import WeightedValues

CONSIDERED_PRIORITIES: dict[Considered, frozenset[Priority]] = {
    "must_and_should": frozenset({"must", "should"}),
    "must": frozenset({"must"}),
    "all": frozenset({"must", "should", "could"}),
}

Inclusion = Literal["must", "support"]
"""Why an item is included (SPEC 4): a must position on it, or enough support."""


def share(weight: int, total: int) -> Fraction:
    """weight / total, with an empty coalition (total 0) counting as share 0."""
    return Fraction(weight, total) if total else Fraction(0)


_NO_OPTIONS: Counter[str] = Counter()
"""The option counters of items that have no options (read as empty, never written)."""


class ItemAggregate:
    """Running sums over the positions on one item."""

    __slots__ = (
        "item",
        "weight_by_priority",
        "count_by_priority",
        "strong",
        "weak",
        "must_count",
        "all_count",
        "option_must_count",
        "option_all_count",
        "option_must_weight",
        "option_all_weight",
        "_ordered",
        "_one_of",
    )

    def __init__(self, item: RequirementItem) -> None:
        self.item = item
        self.weight_by_priority: dict[str, int] = {"must": 0, "should": 0, "could": 0}
        self.count_by_priority: dict[str, int] = {"must": 0, "should": 0, "could": 0}
        # at_most / at_least: the values of must+should positions, and of could positions.
        self.strong = WeightedValues()
        self.weak = WeightedValues()
        # one_of: how many considered positions accept each option, by count and weight.
        self.must_count = 0
        self.all_count = 0
        # (Only a one_of item has counters of its own; the others share one that nothing writes:
        # four Counters for each item of every opened negotiation cost a replay ~5 µs an event.)
        one_of = item.kind == "one_of"
        self._one_of = one_of
        self._ordered = item.kind in ("at_most", "at_least")
        self.option_must_count: Counter[str] = Counter() if one_of else _NO_OPTIONS
        self.option_all_count: Counter[str] = Counter() if one_of else _NO_OPTIONS
        self.option_must_weight: Counter[str] = Counter() if one_of else _NO_OPTIONS
        self.option_all_weight: Counter[str] = Counter() if one_of else _NO_OPTIONS

    # -- changes ---------------------------------------------------------------------------
    def add(self, position: Position, weight: int) -> None:
        self._apply(position, weight, +1)

    def remove(self, position: Position, weight: int) -> None:
        self._apply(position, weight, -1)

    def _apply(self, position: Position, weight: int, sign: int) -> None:
        priority = position.priority
        self.weight_by_priority[priority] += sign * weight
        self.count_by_priority[priority] += sign
        if self._ordered:
            value = position.value
            assert value is not None
            values = self.weak if priority == "could" else self.strong
            values.add(value, weight if sign > 0 else -weight)
        elif self._one_of:
            assert position.accepted is not None
            self.all_count += sign
            must = priority == "must"
            if must:
                self.must_count += sign
            signed = sign * weight
            for option in position.accepted:
                self.option_all_count[option] += sign
                self.option_all_weight[option] += signed
                if must:
                    self.option_must_count[option] += sign
                    self.option_must_weight[option] += signed

    # -- figures ---------------------------------------------------------------------------
    @property
    def supporter_weight(self) -> int:
        w = self.weight_by_priority
        return w["must"] + w["should"] + w["could"]

    @property
    def supporters(self) -> int:
        """SPEC 4: "`supporters`: members with a position on the item" (their number)."""
        c = self.count_by_priority
        return c["must"] + c["should"] + c["could"]

    @property
    def priority(self) -> Priority | None:
        """SPEC 4: "must" if any supporter says must, else "should" if any says should, else "could"."""
        for name in ("must", "should", "could"):
            if self.count_by_priority[name]:
                return name
        return None

    def priority_score(self, total_weight: int) -> Fraction:
        """SPEC 4: "`priority_score` = Σ w·rank / (3·W), rank must=3, should=2, could=1"."""
        w = self.weight_by_priority
        points = sum(PRIORITY_RANK[p] * w[p] for p in ("must", "should", "could"))
        return share(points, 3 * total_weight)

    def inclusion(self, total_weight: int, policy: Policy) -> Inclusion | None:
        """Why the item is included: "must" (`must_share > 0`), "support" (`support_share >=
        policy.inclusion_share`), or None when it is not."""
        if self.weight_by_priority["must"] > 0:
            return "must"
        if total_weight > 0 and share(self.supporter_weight, total_weight) >= policy.inclusion_share:
            return "support"
        return None

    def included(self, total_weight: int, policy: Policy) -> bool:
        """SPEC 4: "`included` = `must_share > 0` or `support_share >= policy.inclusion_share`"."""
        return self.inclusion(total_weight, policy) is not None

    def considered(self) -> Considered:
        """SPEC 4: the considered positions, "those with priority must or should, or all positions if
        there are none of those"; for one_of "must positions if any, else all"."""
        c = self.count_by_priority
        if self.item.kind == "one_of":
            return "must" if c["must"] else "all"
        return "must_and_should" if c["must"] + c["should"] else "all"

    def considered_weight(self) -> int:
        """C: the weight sum of the considered positions."""
        return sum(self.weight_by_priority[p] for p in CONSIDERED_PRIORITIES[self.considered()])

    def considered_values(self) -> WeightedValues:
        """at_most / at_least: the stated values of the considered positions, with their weights."""
        return self.strong if self.considered() == "must_and_should" else self.weak

    def threshold(self, policy: Policy) -> Fraction:
        """q·C: the coverage times the weight of the considered positions."""
        return policy.coverage * self.considered_weight()

    def target(self, policy: Policy) -> tuple[Target | None, bool]:
        """SPEC 4: (target, conflict) over "those with priority must or should, or all positions if there are none"."""
        if self.supporters == 0:
            return None, False
        kind = self.item.kind
        if kind == "boolean":
            return True, False
        if kind in ("at_most", "at_least"):
            considered, threshold = self.considered_values(), self.threshold(policy)
            if kind == "at_most":
                return considered.largest_with_weight_at_or_above(threshold), False
            return considered.smallest_with_weight_at_or_below(threshold), False
        return self._one_of_target()

    def option_tally(self) -> tuple[int, Counter[str], Counter[str]]:
        """one_of: (how many positions are considered, and per option how many of them accept it
        and with what weight)."""
        if self.considered() == "must":
            return self.must_count, self.option_must_count, self.option_must_weight
        return self.all_count, self.option_all_count, self.option_all_weight

    def intersection(self) -> tuple[str, ...]:
        """one_of: the options every considered position accepts, sorted."""
        assert self.item.options is not None
        count, option_count, _ = self.option_tally()
        return tuple(sorted(o for o in self.item.options if option_count[o] == count))

    def _one_of_target(self) -> tuple[Target, bool]:
        """SPEC 4, one_of: the intersection of the accepted sets, else a `conflict`: the options of largest Σw."""
        assert self.item.options is not None
        common = self.intersection()
        if common:
            return common, False
        _, _, option_weight = self.option_tally()
        best = max(option_weight[o] for o in self.item.options)
        return tuple(sorted(o for o in self.item.options if option_weight[o] == best)), True

    def demand_item(self, total_weight: int, policy: Policy) -> DemandItem:
        """This item's line of the joint demand (SPEC 4), "computed ... from the current positions"."""
        target, conflict = self.target(policy)
        return DemandItem(
            key=self.item.key,
            kind=self.item.kind,
            included=self.included(total_weight, policy),
            priority=self.priority,
            priority_score=float(self.priority_score(total_weight)),
            support_share=float(share(self.supporter_weight, total_weight)),
            must_share=float(share(self.weight_by_priority["must"], total_weight)),
            target=target,
            conflict=conflict,
        )
