"""The explanation of the joint demand (SPEC section 4.1): its conclusions are the demand's own,
its figures add up, and it names members only to whom may see their positions."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.documents import DemandExplanation, ItemExplanation
from schemas.negotiation import Policy, Position
from streams.core.decider import Rejection
from streams.core.explanation import demand_explanation
from streams.core.reads import explain
from streams.core.views import Audience, live_demand
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, item
from tests.unit.test_properties import FAST, ITEMS, KIND, build, coalitions, operations, shares

COORDINATOR_SEES = Audience("coordinator", COORDINATOR)


def fraction(text: str) -> Fraction:
    numerator, denominator = text.split("/")
    return Fraction(int(numerator), int(denominator))


def check_against_demand(explained: DemandExplanation, n: Negotiation, policy: Policy) -> None:
    """Every conclusion of the explanation is the demand's, and its figures lead to it."""
    demand = live_demand(n.s)
    assert explained.sequence == demand.sequence
    assert [e.key for e in explained.items] == [line.key for line in demand.items]
    for line, e in zip(demand.items, explained.items, strict=True):
        # the conclusions are the demand's
        assert (e.included, e.priority.priority, e.target, e.conflict) == (
            line.included,
            line.priority,
            line.target,
            line.conflict,
        )
        # the inclusion test in figures leads to the same answer
        test = e.inclusion
        support, must, needed = (
            fraction(s.fraction) for s in (test.support_share, test.must_share, test.inclusion_share)
        )
        assert (
            test.inclusion_share.fraction == f"{policy.inclusion_share.numerator}/{policy.inclusion_share.denominator}"
        )
        assert float(support) == test.support_share.value == line.support_share
        assert float(must) == test.must_share.value == line.must_share
        assert test.included == line.included == (must > 0 or (test.supporter_weight > 0 and support >= needed))
        assert test.because == ("must" if must > 0 else "support" if line.included else None)
        # the priority is the highest one with a position; the score Σ w·rank / (3·W)
        counts = {c.priority: c for c in e.priority.counts}
        assert line.priority == next((p for p in ("must", "should", "could") if counts[p].positions), None)
        score = fraction(e.priority.priority_score.fraction)
        assert score == Fraction(
            sum(rank * counts[p].weight for p, rank in (("must", 3), ("should", 2), ("could", 1))),
            3 * test.total_weight,
        )
        assert float(score) == line.priority_score
        check_derivation(e, policy)


def check_derivation(e: ItemExplanation, policy: Policy) -> None:
    derivation = e.derivation
    if e.target is None:
        assert derivation is None
        return
    assert derivation is not None
    # the considered positions are the ones the spec names, and C is their weight
    priorities = {p.priority for p in derivation.positions}
    allowed = {"must_and_should": {"must", "should"}, "must": {"must"}, "all": {"must", "should", "could"}}
    assert priorities <= allowed[derivation.considered]
    counts = {c.priority: c for c in e.priority.counts}
    if e.kind == "one_of":
        assert derivation.considered == ("must" if counts["must"].positions else "all")
    else:
        assert derivation.considered == (
            "must_and_should" if counts["must"].positions + counts["should"].positions else "all"
        )
    assert len(derivation.positions) == sum(counts[p].positions for p in allowed[derivation.considered])
    assert derivation.considered_weight == sum(p.weight for p in derivation.positions)
    if e.kind in ("at_most", "at_least"):
        assert derivation.threshold is not None and derivation.curve is not None
        threshold = fraction(derivation.threshold.fraction)
        assert threshold == policy.coverage * derivation.considered_weight
        curve = derivation.curve
        values = [point.value for point in curve]
        assert values == sorted(set(p.value for p in derivation.positions))  # type: ignore[type-var]
        for point in curve:
            at = sum(p.weight for p in derivation.positions if p.value == point.value)
            beyond = sum(
                p.weight
                for p in derivation.positions
                if (p.value >= point.value if e.kind == "at_most" else p.value <= point.value)  # type: ignore[operator]
            )
            assert (point.weight, point.cumulative, point.reaches) == (at, beyond, beyond >= threshold)
        # where the curve first reaches q·C, scanning from the lax end, is the target
        scan = reversed(curve) if e.kind == "at_most" else iter(curve)
        assert next(point.value for point in scan if point.cumulative >= threshold) == e.target
    elif e.kind == "one_of":
        assert derivation.tally is not None and derivation.intersection is not None
        for tally in derivation.tally:
            accepting = [p for p in derivation.positions if tally.option in (p.accepted or ())]
            assert (tally.positions, tally.weight) == (len(accepting), sum(p.weight for p in accepting))
        common = [t.option for t in derivation.tally if t.positions == len(derivation.positions)]
        assert list(derivation.intersection) == sorted(common)
        if derivation.intersection:
            assert (e.target, e.conflict) == (derivation.intersection, False)
        else:
            best = max(t.weight for t in derivation.tally)
            assert (e.target, e.conflict) == (
                tuple(sorted(t.option for t in derivation.tally if t.weight == best)),
                True,
            )
    else:
        assert e.target is True


@settings(FAST, max_examples=150)
@given(
    coalition=coalitions(),
    policy=st.builds(Policy, coverage=shares, inclusion_share=shares),
    script=st.lists(operations, max_size=12),
)
def test_every_explanations_conclusion_is_the_demands_target_and_inclusion(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], policy: Policy, script: list[tuple[Any, ...]]
) -> None:
    # Given a random negotiation: weights, positions, a policy, then changes to them
    weights, stated = coalition
    n = build(weights, stated, policy)
    check_against_demand(demand_explanation(n.s, COORDINATOR_SEES), n, policy)
    for operation in script:
        member = f"m{operation[1] % len(weights) + 1}" if operation[0] != "policy" else ""
        if operation[0] == "state":
            n.position(member, operation[2], operation[3].priority, operation[3].value, operation[3].accepted)
        elif operation[0] == "withdraw":
            if operation[2] not in n.s.positions[member]:
                continue
            n.withdraw(member, operation[2])
        else:
            policy = Policy(coverage=operation[1], inclusion_share=operation[2])
            n.policy(coverage=operation[1], inclusion_share=operation[2])
        # Then after every step each item's explanation concludes what the demand says, and its
        # figures (shares, C, q·C, the curve, the tally) lead there
        check_against_demand(demand_explanation(n.s, COORDINATOR_SEES), n, policy)


@FAST
@given(coalition=coalitions(), transparent=st.booleans(), viewer=st.integers(0, 5))
def test_members_are_named_only_to_whom_may_see_their_positions(
    coalition: tuple[list[int], list[tuple[str, str, Position]]], transparent: bool, viewer: int
) -> None:
    # Given a random negotiation, its positions transparent or not, seen by one of its members
    weights, stated = coalition
    n = build(weights, stated, Policy(transparent_positions=transparent))
    me = f"m{viewer % len(weights) + 1}"
    explained = demand_explanation(n.s, Audience("member", me))
    coordinator = demand_explanation(n.s, COORDINATOR_SEES)
    for mine, full in zip(explained.items, coordinator.items, strict=True):
        if mine.derivation is None:
            continue
        assert full.derivation is not None

        # Then the member sees the same positions and weights as the coordinator…
        def content(p: Any) -> tuple[Any, ...]:
            return (p.priority, p.weight, p.value, p.accepted)

        assert sorted(map(content, mine.derivation.positions), key=repr) == sorted(
            map(content, full.derivation.positions), key=repr
        )
        # …every position named for the coordinator, for the member only its own unless transparent
        assert all(p.member_id and p.member_name for p in full.derivation.positions)
        named = {p.member_id for p in mine.derivation.positions if p.member_id is not None}
        holders = {p.member_id for p in full.derivation.positions}
        assert named == (holders if transparent else holders & {me})
        assert all((p.member_id is None) == (p.member_name is None) for p in mine.derivation.positions)


def test_an_at_most_item_explained_in_figures() -> None:
    # Given weights 3, 2, 1 with a must at 30, a should at 14 and a could at 7 days, coverage 2/3
    n = Negotiation(item("retention-days", "at_most"), policy=Policy(coverage=Fraction(2, 3)))
    n.invite("m1", 3).invite("m2", 2).invite("m3", 1)
    n.position("m1", "retention-days", "must", 30).position("m2", "retention-days", "should", 14)
    n.position("m3", "retention-days", "could", 7)
    # When the coordinator asks why
    (e,) = demand_explanation(n.s, COORDINATOR_SEES).items
    # Then the must includes it, the could is not considered, C = 5, q·C = 10/3, and the curve
    # reaches 10/3 first at 30 (3 ≥ 10/3 is false) … at 14 (5)
    assert e.inclusion.because == "must"
    assert (e.inclusion.support_share.fraction, e.inclusion.must_share.fraction) == ("1/1", "1/2")
    assert e.priority.priority_score.fraction == "7/9"  # (3·3 + 2·2 + 1·1) / (3·6)
    d = e.derivation
    assert d is not None and d.threshold is not None and d.curve is not None
    assert d.considered == "must_and_should"
    assert [(p.member_name, p.value) for p in d.positions] == [("Member m1", 30), ("Member m2", 14)]
    assert (d.considered_weight, d.threshold.fraction) == (5, "10/3")
    assert [(p.value, p.cumulative, p.reaches) for p in d.curve] == [(14, 5, True), (30, 3, False)]
    assert e.target == 14
    # And the document's JSON writes the exact shares as fractions and as floats
    data = demand_explanation(n.s, COORDINATOR_SEES).model_dump(mode="json")
    assert data["items"][0]["derivation"]["threshold"] == {"fraction": "10/3", "value": 10 / 3}


def test_a_one_of_conflict_explained_by_its_tally() -> None:
    # Given two must positions with disjoint options (weights 3 and 2) and a should accepting all
    n = Negotiation(item("data-location", "one_of", ("NL", "EU", "EEA")))
    n.invite("m1", 3).invite("m2", 2).invite("m3", 4)
    n.position("m1", "data-location", "must", accepted=("NL",))
    n.position("m2", "data-location", "must", accepted=("EU", "EEA"))
    n.position("m3", "data-location", "should", accepted=("NL", "EU", "EEA"))
    (e,) = demand_explanation(n.s, Audience("member", "m3")).items
    d = e.derivation
    assert d is not None and d.tally is not None
    # Then only must positions count, their intersection is empty, and NL's weight 3 wins
    assert d.considered == "must"
    assert d.intersection == ()
    assert [(t.option, t.positions, t.weight) for t in d.tally] == [("NL", 1, 3), ("EU", 1, 2), ("EEA", 1, 2)]
    assert (e.target, e.conflict) == (("NL",), True)
    # And the member m3, without transparency, sees the musts without names
    assert [(p.member_id, p.weight) for p in d.positions] == [(None, 2), (None, 3)]


def test_an_item_below_the_inclusion_share_says_so() -> None:
    # Given one could position of weight 1 out of 3
    n = Negotiation(item("audit-rights"), item("uptime", "at_least"))
    n.invite("m1", 1).invite("m2", 2).position("m1", "audit-rights", "could")
    boolean, unsupported = demand_explanation(n.s, COORDINATOR_SEES).items
    # Then it is not included: 1/3 < 1/2, and no must; its target is still true
    assert (boolean.included, boolean.inclusion.because) == (False, None)
    assert (boolean.inclusion.support_share.fraction, boolean.inclusion.inclusion_share.fraction) == ("1/3", "1/2")
    assert boolean.target is True and boolean.derivation is not None
    assert boolean.derivation.considered == "all"
    # And an item without supporters has no derivation
    assert unsupported.derivation is None and unsupported.target is None


def test_the_vendor_is_refused_the_explanation() -> None:
    n = Negotiation(*ITEMS).invite("m1").position("m1", "audit-rights")
    with pytest.raises(Rejection) as refused:
        explain(n.s, Audience("vendor", VENDOR))
    assert refused.value.status == 403
    assert [e.key for e in explain(n.s, Audience("member", "m1")).items] == list(KIND)
