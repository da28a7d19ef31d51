"""SPEC section 4, the joint demand: one worked example per rule, figures computed by hand."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from schemas.commands import PublishDemand
from schemas.documents import DemandItem
from schemas.negotiation import Policy
from tests.unit.builders import COORDINATOR, Negotiation, item

OPTIONS = ("NL", "EU", "EEA")  # deliberately not in sorted order


def demand_line(kind: str, rows: list[tuple[int, str | None, Any]], policy: Policy | None = None) -> DemandItem:
    """Given members with these (weight, priority or None for no position, value/accepted),
    when they state their positions on one item, then this is the item's line of the demand."""
    negotiation = Negotiation(item("x", kind, OPTIONS if kind == "one_of" else None), policy=policy)
    for index, (weight, _, _) in enumerate(rows):
        negotiation.invite(f"m{index + 1}", weight)
    for index, (_, priority, stated) in enumerate(rows):
        if priority is None:
            continue
        if kind == "one_of":
            negotiation.position(f"m{index + 1}", "x", priority, accepted=stated)
        else:
            negotiation.position(f"m{index + 1}", "x", priority, value=stated)
    return negotiation.demand("x")


# -- support_share, must_share, priority, priority_score -----------------------------------


def test_shares_priority_and_score_of_a_mixed_item() -> None:
    # Given weights 1,2,3,4 (W = 10): m1 must, m2 should, m3 could, m4 silent.
    line = demand_line("boolean", [(1, "must", None), (2, "should", None), (3, "could", None), (4, None, None)])
    # support_share = (1+2+3)/10 = 0.6; must_share = 1/10 = 0.1
    assert line.support_share == 0.6
    assert line.must_share == 0.1
    # priority: one must is enough
    assert line.priority == "must"
    # priority_score = (1*3 + 2*2 + 3*1) / (3*10) = 10/30 = 1/3
    assert line.priority_score == float(Fraction(1, 3))
    # included because must_share > 0 (support 0.6 would also do)
    assert line.included is True
    assert line.target is True
    assert line.conflict is False


@pytest.mark.parametrize(
    ("rows", "priority", "score"),
    [
        # should + could: priority should; score = (2*2 + 1*1) / (3*3) = 5/9
        ([(2, "should", None), (1, "could", None)], "should", Fraction(5, 9)),
        # could only: priority could; score = (1*1 + 1*1) / (3*3) = 2/9 (m3 silent)
        ([(1, "could", None), (1, "could", None), (1, None, None)], "could", Fraction(2, 9)),
        # must only, everyone: score = 3*4 / (3*4) = 1
        ([(4, "must", None)], "must", Fraction(1)),
    ],
    ids=["should-beats-could", "could-only", "all-must"],
)
def test_priority_is_the_strongest_stated_and_score_is_weighted_rank(
    rows: list[tuple[int, str | None, Any]], priority: str, score: Fraction
) -> None:
    line = demand_line("boolean", rows)
    assert line.priority == priority
    assert line.priority_score == float(score)


# -- included --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "policy", "included", "support"),
    [
        # must_share 1/10 > 0: included although support 0.1 < 1/2
        ([(1, "must", None), (9, None, None)], Policy(), True, 0.1),
        # should 1/3 < 1/2: not included
        ([(1, "should", None), (1, None, None), (1, None, None)], Policy(), False, float(Fraction(1, 3))),
        # boundary: support exactly 1/2 = inclusion_share: included
        ([(1, "should", None), (1, None, None)], Policy(), True, 0.5),
        # just below: 49/99 < 1/2: not included
        ([(49, "could", None), (50, None, None)], Policy(), False, float(Fraction(49, 99))),
        # non-default inclusion_share 1/4: could 1/3 >= 1/4: included
        ([(1, "could", None), (2, None, None)], Policy(inclusion_share="1/4"), True, float(Fraction(1, 3))),
        # non-default inclusion_share 0.9: should 8/10 < 0.9: not included
        ([(8, "should", None), (2, None, None)], Policy(inclusion_share=0.9), False, 0.8),
    ],
    ids=["must-any-share", "below-half", "exactly-half", "just-below-half", "quarter", "ninety-percent"],
)
def test_an_item_is_included_with_a_must_or_enough_support(
    rows: list[tuple[int, str | None, Any]], policy: Policy, included: bool, support: float
) -> None:
    line = demand_line("boolean", rows, policy)
    assert line.support_share == support
    assert line.included is included


@pytest.mark.parametrize(
    ("inclusion_share", "weights"),
    [
        # 0.1 as a binary float is 0.1000000000000000055…; read as decimal text it is exactly 1/10
        (0.1, (1, 9)),
        # 0.2 as a binary float is 0.2000000000000000111…
        (0.2, (2, 8)),
        # 0.3 as a binary float is 0.2999999999999999888… (the brief's example)
        (0.3, (3, 7)),
    ],
)
def test_policy_numbers_are_read_through_their_decimal_text(inclusion_share: float, weights: tuple[int, int]) -> None:
    # Given a could supporter whose share is exactly the inclusion_share
    line = demand_line(
        "boolean", [(weights[0], "could", None), (weights[1], None, None)], Policy(inclusion_share=inclusion_share)
    )
    # Then the item is included (support_share >= inclusion_share holds exactly)
    assert line.support_share == inclusion_share
    assert line.included is True


def test_coverage_is_read_through_its_decimal_text() -> None:
    # Given five must positions of weight 1 at 10..50 and coverage 0.2 (q·C = exactly 1):
    # the largest t with Σw(value >= t) >= 1 is 50. Read as a binary float (0.2000…111),
    # q·C would exceed 1 and the target would drop to 40.
    line = demand_line("at_most", [(1, "must", v) for v in (10, 20, 30, 40, 50)], Policy(coverage=0.2))
    assert line.target == 50


# -- targets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "rows", "policy", "target"),
    [
        # boolean: always true
        ("boolean", [(1, "should", None)], Policy(), True),
        # coverage 1: at_most is the strictest = minimum of 30, 10, 20
        ("at_most", [(1, "must", 30), (2, "must", 10), (3, "should", 20)], Policy(), 10),
        # coverage 1: at_least is the strictest = maximum
        ("at_least", [(1, "must", 30), (2, "must", 10), (3, "should", 20)], Policy(), 30),
        # weights 1,2,3,4 with values 10,20,30,40; C = 10, q = 0.5, q·C = 5.
        # at_most: Σw(>=40) = 4 < 5; Σw(>=30) = 3+4 = 7 >= 5 → 30
        ("at_most", [(1, "must", 10), (2, "must", 20), (3, "must", 30), (4, "must", 40)], Policy(coverage=0.5), 30),
        # at_least: Σw(<=10) = 1, Σw(<=20) = 3, Σw(<=30) = 6 >= 5 → 30
        ("at_least", [(1, "must", 10), (2, "must", 20), (3, "must", 30), (4, "must", 40)], Policy(coverage=0.5), 30),
        # weights 1,2,3,4 with values 40,30,20,10 at q = 0.5 (q·C = 5):
        # at_most: Σw(>=40) = 1, Σw(>=30) = 3, Σw(>=20) = 6 → 20
        ("at_most", [(1, "must", 40), (2, "must", 30), (3, "must", 20), (4, "must", 10)], Policy(coverage=0.5), 20),
        # at_least: Σw(<=10) = 4, Σw(<=20) = 7 → 20
        ("at_least", [(1, "must", 40), (2, "must", 30), (3, "must", 20), (4, "must", 10)], Policy(coverage=0.5), 20),
        # weights 1,2,3,4 with values 10,20,30,40 at q = 0.7 (q·C = 7):
        # at_most: Σw(>=40) = 4, Σw(>=30) = 7 >= 7 (equality counts) → 30
        ("at_most", [(1, "must", 10), (2, "must", 20), (3, "must", 30), (4, "must", 40)], Policy(coverage=0.7), 30),
        # at_least: Σw(<=30) = 6 < 7, Σw(<=40) = 10 → 40
        ("at_least", [(1, "must", 10), (2, "must", 20), (3, "must", 30), (4, "must", 40)], Policy(coverage=0.7), 40),
        # boundary: two weight-5 members at 10 and 20, q = 1/2 (q·C = 5):
        # at_most: Σw(>=20) = 5 >= 5 → 20; at_least: Σw(<=10) = 5 >= 5 → 10
        ("at_most", [(5, "must", 10), (5, "must", 20)], Policy(coverage="1/2"), 20),
        ("at_least", [(5, "must", 10), (5, "must", 20)], Policy(coverage="1/2"), 10),
        # decimal values stay exact: min(2.5, 7.25) = 2.5
        ("at_most", [(1, "must", 7.25), (1, "must", 2.5)], Policy(), Fraction(5, 2)),
    ],
    ids=[
        "boolean",
        "at-most-q1",
        "at-least-q1",
        "at-most-q0.5",
        "at-least-q0.5",
        "at-most-q0.5-reversed",
        "at-least-q0.5-reversed",
        "at-most-q0.7",
        "at-least-q0.7",
        "at-most-boundary",
        "at-least-boundary",
        "decimals",
    ],
)
def test_target(kind: str, rows: list[tuple[int, str | None, Any]], policy: Policy, target: Any) -> None:
    line = demand_line(kind, rows, policy)
    assert line.target == target
    if kind == "boolean":
        assert line.target is True
    else:
        assert isinstance(line.target, Fraction)
    assert line.conflict is False


@pytest.mark.parametrize(
    ("kind", "rows", "target"),
    [
        # a must (10) and a could (5): could is ignored when any must/should exists → 10
        ("at_most", [(1, "must", 10), (5, "could", 5)], 10),
        # a should (10) and a heavy could (5): still only the should counts → 10
        ("at_most", [(1, "should", 10), (9, "could", 5)], 10),
        # only could positions: all are considered → min(10, 5) = 5
        ("at_most", [(1, "could", 10), (5, "could", 5)], 5),
        # at_least: must 10, could 50 → the could is ignored → 10
        ("at_least", [(1, "must", 10), (5, "could", 50)], 10),
        # at_least: only could → max(10, 50) = 50
        ("at_least", [(1, "could", 10), (5, "could", 50)], 50),
        # should and must together are both considered (must 10, should 4) → at_most 4
        ("at_most", [(1, "must", 10), (1, "should", 4)], 4),
    ],
    ids=[
        "must-ignores-could",
        "should-ignores-could",
        "could-only",
        "at-least-must-ignores-could",
        "at-least-could-only",
        "must-and-should-both",
    ],
)
def test_considered_positions(kind: str, rows: list[tuple[int, str | None, Any]], target: int) -> None:
    assert demand_line(kind, rows).target == target


def test_considered_positions_with_coverage_use_the_weight_of_the_considered_only() -> None:
    # Given must 10 (w1), should 20 (w1), could 30 (w100); q = 1/2.
    # C = 2 (could ignored), q·C = 1: largest t with Σw(>=t) >= 1 among {10, 20} → 20.
    # (Were the could counted, C = 102 and the target would be 30.)
    line = demand_line("at_most", [(1, "must", 10), (1, "should", 20), (100, "could", 30)], Policy(coverage="1/2"))
    assert line.target == 20


# -- one_of -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "target", "conflict"),
    [
        # intersection {NL, EU, EEA} ∩ {EU, NL} = {EU, NL}, sorted
        ([(1, "must", ("NL", "EU", "EEA")), (1, "must", ("EU", "NL"))], ("EU", "NL"), False),
        # single position: its accepted set, sorted
        ([(1, "should", ("NL", "EEA"))], ("EEA", "NL"), False),
        # conflict: NL 3, EU 2+2 = 4, EEA 2 → EU
        ([(3, "must", ("NL",)), (2, "must", ("EU",)), (2, "must", ("EEA", "EU"))], ("EU",), True),
        # conflict with a tie: NL 2, EU 2 → both, sorted
        ([(2, "must", ("NL",)), (2, "must", ("EU",))], ("EU", "NL"), True),
        # a three-way tie: NL 1, EU 1, EEA 1 → all, sorted
        ([(1, "must", ("NL",)), (1, "must", ("EU",)), (1, "must", ("EEA",))], ("EEA", "EU", "NL"), True),
        # must positions only: the heavy should for EEA is ignored → {NL, EU} ∩ {EU} = {EU}
        ([(1, "must", ("NL", "EU")), (1, "must", ("EU",)), (10, "should", ("EEA",))], ("EU",), False),
        # must positions only also in a conflict: must NL (1) vs must EU (2); the should for NL (10) is ignored
        ([(1, "must", ("NL",)), (2, "must", ("EU",)), (10, "should", ("NL",))], ("EU",), True),
        # no must: should AND could are considered (unlike at_most): NL 1 vs EU 2 → EU
        ([(1, "should", ("NL",)), (2, "could", ("EU",))], ("EU",), True),
        # no must: the could narrows the intersection {NL, EU} ∩ {EU, EEA} = {EU}
        ([(1, "should", ("NL", "EU")), (1, "could", ("EU", "EEA"))], ("EU",), False),
    ],
    ids=[
        "intersection",
        "single",
        "conflict",
        "conflict-tie",
        "three-way-tie",
        "must-only",
        "must-only-conflict",
        "no-must-all-conflict",
        "no-must-all-intersection",
    ],
)
def test_one_of_target(rows: list[tuple[int, str | None, Any]], target: tuple[str, ...], conflict: bool) -> None:
    line = demand_line("one_of", rows)
    assert line.target == target
    assert line.conflict is conflict


# -- items without supporters, W = 0 -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["boolean", "at_most", "at_least", "one_of"])
def test_an_item_without_supporters_is_not_included_and_has_no_target(kind: str) -> None:
    line = demand_line(kind, [(3, None, None), (4, None, None)], Policy(inclusion_share="1/100"))
    assert line == DemandItem(
        key="x",
        kind=kind,
        included=False,
        priority=None,
        priority_score=0.0,  # type: ignore[arg-type]
        support_share=0.0,
        must_share=0.0,
        target=None,
        conflict=False,
    )


def test_withdrawn_and_replaced_positions_no_longer_count() -> None:
    # Given m1 must 10 (w1) and m2 must 20 (w3) on an at_most item
    negotiation = Negotiation(item("x", "at_most"))
    negotiation.invite("m1", 1).invite("m2", 3)
    negotiation.position("m1", "x", "must", 10).position("m2", "x", "must", 20)
    assert negotiation.demand("x").target == 10
    # When m1 replaces its must by a could at 5 → considered is m2 only → 20; must_share 3/4
    negotiation.position("m1", "x", "could", 5)
    line = negotiation.demand("x")
    assert (line.target, line.must_share, line.support_share) == (20, 0.75, 1.0)
    # And when m2 withdraws, only the could remains → 5; support 1/4 < 1/2, not included
    negotiation.withdraw("m2", "x")
    line = negotiation.demand("x")
    assert (line.target, line.included, line.priority, line.support_share) == (5, False, "could", 0.25)


def test_a_negotiation_without_members_has_an_empty_demand_and_nothing_to_publish() -> None:
    # Given W = 0 (nobody invited)
    negotiation = Negotiation(item("x", "at_most"), item("y", "one_of"))
    # Then no item has support and nothing is included
    for line in (negotiation.demand("x"), negotiation.demand("y")):
        assert (line.included, line.support_share, line.priority_score, line.target) == (False, 0.0, 0.0, None)
    # And publishing is refused (nothing is included)
    refusal = negotiation.refuse(negotiation.command(PublishDemand, COORDINATOR))
    assert refusal.status == 409
