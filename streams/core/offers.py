"""Offer evaluation (SPEC section 5): does the vendor's current offer satisfy a position?"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from schemas.documents import Offer
from schemas.negotiation import Kind, Position, Target


@dataclass(frozen=True, slots=True)
class CurrentOffer:
    """The vendor's latest verdict on an item, with the target of the version it answered."""

    offer: Offer
    answered_target: Target


def satisfies(current: CurrentOffer | None, kind: Kind, position: Position) -> bool:
    """SPEC 5: whether the current offer "satisfies a member's position"; "reject or no answer → no"."""
    if current is None:
        return False
    offer = current.offer
    if offer.verdict == "reject":
        return False
    if kind == "boolean":
        return offer.verdict == "accept"
    if offer.verdict == "accept":
        target = current.answered_target
        if kind == "at_most":
            assert isinstance(target, Fraction)
            assert position.value is not None
            return target <= position.value
        if kind == "at_least":
            assert isinstance(target, Fraction)
            assert position.value is not None
            return target >= position.value
        assert isinstance(target, tuple)
        assert position.accepted is not None
        return set(target) <= set(position.accepted)
    # counter
    if kind == "at_most":
        assert offer.value is not None
        assert position.value is not None
        return offer.value <= position.value
    if kind == "at_least":
        assert offer.value is not None
        assert position.value is not None
        return offer.value >= position.value
    assert position.accepted is not None
    return offer.option in position.accepted


def status_of(current: CurrentOffer | None) -> str:
    """SPEC 5: "Item `status`: pending | accepted | countered | rejected", from the vendor's latest verdict."""
    if current is None:
        return "pending"
    return {"accept": "accepted", "counter": "countered", "reject": "rejected"}[current.offer.verdict]


def meets_published_target(current: CurrentOffer | None, kind: Kind) -> bool:
    """SPEC 1: the vendor's ``settled``, "judged against the published target of the version its
    offer answered" — an accept, or a counter at least as good as that target; never the live positions."""
    if current is None or current.offer.verdict == "reject":
        return False
    offer, target = current.offer, current.answered_target
    if offer.verdict == "accept" or kind == "boolean":
        return offer.verdict == "accept"
    if target is None:
        return False
    if kind == "at_most":
        assert isinstance(target, Fraction)
        assert offer.value is not None
        return offer.value <= target
    if kind == "at_least":
        assert isinstance(target, Fraction)
        assert offer.value is not None
        return offer.value >= target
    assert isinstance(target, tuple)
    return offer.option in target
