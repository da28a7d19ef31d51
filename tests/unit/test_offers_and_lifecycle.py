"""SPEC sections 5 and 6: how vendor offers satisfy members, and the negotiation's lifecycle."""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
from pydantic import ValidationError

from schemas.commands import (
    Abandon,
    ChangePolicy,
    Endorse,
    InviteMember,
    ProposeAgreement,
    PublishDemand,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    WithdrawPosition,
)
from schemas.events import EVENT_ADAPTER, AgreementReached, AgreementRejected, EndorsementGiven, MemberInvited
from schemas.negotiation import ItemResponse, Policy, Position
from streams.core.decider import Context, Stamp, _new, decide, event_id
from streams.core.state import SequenceGap, evolve, replay
from streams.core.views import cohesion, ready_to_endorse, shared_state
from tests.unit.builders import (
    COORDINATOR,
    NOW,
    OUTSIDER,
    VENDOR,
    Negotiation,
    accept,
    counter,
    item,
    reject,
)

ITEMS = (
    item("audit-rights"),
    item("retention-days", "at_most"),
    item("uptime", "at_least"),
    item("data-location", "one_of"),
)


def negotiation(*weights: int, policy: Policy | None = None) -> Negotiation:
    """Given a negotiation on the four kinds of item with members m1, m2, … of these weights."""
    built = Negotiation(*ITEMS, policy=policy)
    for index, weight in enumerate(weights):
        built.invite(f"m{index + 1}", weight)
    return built


def satisfied(n: Negotiation) -> dict[str, bool]:
    return {line.organisation_id: line.satisfied for line in shared_state(n.s).satisfaction or ()}


def state_item(n: Negotiation, key: str) -> tuple[str, bool]:
    line = next(i for i in shared_state(n.s).items if i.key == key)
    return line.status, line.settled


# -- section 5: offers ----------------------------------------------------------------------


def test_accept_on_at_most_is_judged_by_the_target_of_the_answered_version() -> None:
    # Given m1 (w1) needs retention <= 30 and version 1 is published with target 30
    n = negotiation(1, 3)
    n.position("m1", "retention-days", "must", 30).publish()
    # And m2 (w3) then needs <= 20, so the live target drops to 20
    n.position("m2", "retention-days", "must", 20)
    assert n.demand("retention-days").target == 20
    # When the vendor accepts version 1
    n.respond(accept("retention-days"))
    # Then the accept means 30: m1 (30 <= 30) is satisfied, m2 (30 > 20) is not
    assert satisfied(n) == {"m1": True, "m2": False}
    assert cohesion(n.s) == 0.25
    assert state_item(n, "retention-days") == ("accepted", False)
    # When version 2 (target 20) is published and accepted
    n.publish().respond(accept("retention-days"))
    # Then everybody is satisfied and the item is settled
    assert satisfied(n) == {"m1": True, "m2": True}
    assert cohesion(n.s) == 1.0
    assert state_item(n, "retention-days") == ("accepted", True)


def test_accept_on_at_least_with_partial_coverage_does_not_satisfy_the_strictest() -> None:
    # Given coverage 1/2 and uptime musts 99.9 (m1) and 99.5 (m2), equal weights:
    # smallest t with Σw(<= t) >= 1 is 99.5
    n = negotiation(1, 1, policy=Policy(coverage="1/2"))
    n.position("m1", "uptime", "must", 99.9).position("m2", "uptime", "must", 99.5).publish()
    assert n.s.latest_version is not None
    assert n.s.latest_version.items[0].target == Fraction("99.5")
    # When the vendor accepts
    n.respond(accept("uptime"))
    # Then 99.5 >= 99.5 satisfies m2, but 99.5 < 99.9 does not satisfy m1
    assert satisfied(n) == {"m1": False, "m2": True}
    assert state_item(n, "uptime") == ("accepted", False)


def test_counter_on_at_least_satisfies_whoever_it_meets() -> None:
    # Given uptime musts 99.9 (m1) and 99.5 (m2), published with target 99.9
    n = negotiation(1, 1)
    n.position("m1", "uptime", "must", 99.9).position("m2", "uptime", "must", 99.5).publish()
    # When the vendor accepts: target 99.9 satisfies both
    n.respond(accept("uptime"))
    assert satisfied(n) == {"m1": True, "m2": True}
    # When it counters 99.7: 99.7 >= 99.5 (m2) but 99.7 < 99.9 (m1)
    n.respond(counter("uptime", value=99.7))
    assert satisfied(n) == {"m1": False, "m2": True}
    assert state_item(n, "uptime") == ("countered", False)
    # When it counters 99.9: both met, settled as a counter
    n.respond(counter("uptime", value=99.9))
    assert satisfied(n) == {"m1": True, "m2": True}
    assert state_item(n, "uptime") == ("countered", True)


def test_counter_on_at_most() -> None:
    # Given retention musts 30 (m1) and 60 (m2)
    n = negotiation(1, 1)
    n.position("m1", "retention-days", "must", 30).position("m2", "retention-days", "must", 60).publish()
    # When the vendor counters 45: 45 <= 60 (m2) but 45 > 30 (m1)
    n.respond(counter("retention-days", value=45))
    assert satisfied(n) == {"m1": False, "m2": True}
    # When it counters 30: 30 <= 30 and 30 <= 60
    n.respond(counter("retention-days", value=30))
    assert satisfied(n) == {"m1": True, "m2": True}


def test_accept_and_counter_on_one_of() -> None:
    # Given m1 accepts {NL, EU} and m2 {EU, EEA}: target {EU}
    n = negotiation(1, 1)
    n.position("m1", "data-location", "must", accepted=("NL", "EU"))
    n.position("m2", "data-location", "must", accepted=("EU", "EEA")).publish()
    # When the vendor accepts: {EU} ⊆ both
    n.respond(accept("data-location"))
    assert satisfied(n) == {"m1": True, "m2": True}
    # When it counters NL: only m1 accepts NL
    n.respond(counter("data-location", option="NL"))
    assert satisfied(n) == {"m1": True, "m2": False}
    assert state_item(n, "data-location") == ("countered", False)


def test_accept_on_a_one_of_conflict_serves_only_the_winning_side() -> None:
    # Given m1 (w3) must NL and m2 (w1) must EU: conflict, target {NL}
    n = negotiation(3, 1)
    n.position("m1", "data-location", "must", accepted=("NL",))
    n.position("m2", "data-location", "must", accepted=("EU",)).publish()
    # When the vendor accepts: {NL} ⊆ {NL}, but {NL} ⊄ {EU}
    n.respond(accept("data-location"))
    assert satisfied(n) == {"m1": True, "m2": False}
    assert cohesion(n.s) == 0.75
    # When it counters EU instead
    n.respond(counter("data-location", option="EU"))
    assert satisfied(n) == {"m1": False, "m2": True}
    assert cohesion(n.s) == 0.25


def test_accept_on_a_tied_one_of_conflict_needs_every_target_option_accepted() -> None:
    # Given m1 must NL and m2 must EU with equal weights: conflict, target {EU, NL}
    n = negotiation(1, 1)
    n.position("m1", "data-location", "must", accepted=("NL",))
    n.position("m2", "data-location", "must", accepted=("EU",)).publish()
    assert n.s.versions[0].items[0].target == ("EU", "NL")
    # When the vendor accepts: {EU, NL} is a subset of neither member's accepted options
    n.respond(accept("data-location"))
    assert satisfied(n) == {"m1": False, "m2": False}
    assert state_item(n, "data-location") == ("accepted", False)


def test_boolean_accept_satisfies_and_reject_does_not() -> None:
    n = negotiation(1)
    n.position("m1", "audit-rights", "must").publish()
    n.respond(accept("audit-rights"))
    assert satisfied(n) == {"m1": True}
    assert state_item(n, "audit-rights") == ("accepted", True)
    # the latest verdict is the current offer: a later reject undoes it
    n.respond(reject("audit-rights"))
    assert satisfied(n) == {"m1": False}
    assert state_item(n, "audit-rights") == ("rejected", False)


@pytest.mark.parametrize(
    ("key", "priority_value", "accepted"),
    [("retention-days", 30, None), ("uptime", 99, None), ("data-location", None, ("NL", "EU", "EEA"))],
)
def test_reject_never_satisfies(key: str, priority_value: int | None, accepted: tuple[str, ...] | None) -> None:
    # Given a very lenient must position
    n = negotiation(1)
    n.position("m1", key, "must", priority_value, accepted=accepted).publish()
    # When the vendor rejects
    n.respond(reject(key))
    # Then the member is not satisfied
    assert satisfied(n) == {"m1": False}
    assert state_item(n, key) == ("rejected", False)


def test_no_answer_never_satisfies_and_members_without_musts_are_satisfied() -> None:
    # Given m1 (w2) must audit-rights and m2 (w3) only should
    n = negotiation(2, 3)
    n.position("m1", "audit-rights", "must").position("m2", "audit-rights", "should")
    n.position("m1", "retention-days", "should", 10).position("m2", "retention-days", "should", 10).publish()
    # When the vendor answers retention only
    n.respond(accept("retention-days"))
    # Then audit-rights is pending: m1 is unsatisfied; m2 (no musts) is satisfied → cohesion 3/5
    assert state_item(n, "audit-rights") == ("pending", False)
    assert satisfied(n) == {"m1": False, "m2": True}
    assert cohesion(n.s) == 0.6
    m1 = next(line for line in shared_state(n.s).satisfaction or () if line.organisation_id == "m1")
    assert (m1.must_items, m1.satisfied_must_items, m1.unsatisfied_items) == (1, 0, ("audit-rights",))


def test_changing_a_position_after_the_offer_is_reassessed() -> None:
    # Given m1 must retention <= 30 was accepted at target 30
    n = negotiation(1)
    n.position("m1", "retention-days", "must", 30).publish().respond(accept("retention-days"))
    assert satisfied(n) == {"m1": True}
    # When m1 tightens to 20: 30 > 20
    n.position("m1", "retention-days", "must", 20)
    assert satisfied(n) == {"m1": False}
    # When m1 turns it into a should: no musts left, satisfied again
    n.position("m1", "retention-days", "should", 20)
    assert satisfied(n) == {"m1": True}


def test_cohesion_is_the_weight_share_of_satisfied_members() -> None:
    # Given weights 2, 3, 5 (W = 10), all needing retention, with different limits
    n = negotiation(2, 3, 5)
    n.position("m1", "retention-days", "must", 10)
    n.position("m2", "retention-days", "must", 30)
    n.position("m3", "retention-days", "must", 60).publish()
    # When the vendor counters 30: m2 and m3 are met → (3+5)/10
    n.respond(counter("retention-days", value=30))
    assert satisfied(n) == {"m1": False, "m2": True, "m3": True}
    assert cohesion(n.s) == 0.8
    assert shared_state(n.s).cohesion == 0.8


def test_ready_to_endorse_when_every_included_must_item_is_settled() -> None:
    # Given musts on audit-rights and retention, and a should-only item (uptime)
    n = negotiation(1, 1)
    n.position("m1", "audit-rights", "must").position("m2", "retention-days", "must", 30)
    n.position("m1", "uptime", "should", 99).position("m2", "uptime", "should", 99).publish()
    assert ready_to_endorse(n.s) is False
    # When only audit-rights is accepted: retention is still pending
    n.respond(accept("audit-rights"))
    assert ready_to_endorse(n.s) is False
    # When retention is countered within m2's limit: every must item settled, uptime pending does not matter
    n.respond(counter("retention-days", value=25))
    assert state_item(n, "uptime") == ("pending", False)
    assert ready_to_endorse(n.s) is True
    assert shared_state(n.s).ready_to_endorse is True
    # When the vendor rejects audit-rights again: not ready
    n.respond(reject("audit-rights"))
    assert ready_to_endorse(n.s) is False


# -- section 6: lifecycle -----------------------------------------------------------------------


def test_the_first_publish_starts_negotiating_and_later_ones_add_versions() -> None:
    n = negotiation(1)
    n.position("m1", "audit-rights", "must")
    assert n.s.phase == "collecting"
    n.publish()
    assert (n.s.phase, [v.version for v in n.s.versions]) == ("negotiating", [1])
    n.publish()
    assert (n.s.phase, [v.version for v in n.s.versions]) == ("negotiating", [1, 2])


def test_proposing_needs_a_vendor_response() -> None:
    # Given a published demand without any response
    n = negotiation(1)
    n.position("m1", "audit-rights", "must").publish()
    # When the coordinator proposes: 409
    assert n.refuse(n.command(ProposeAgreement, COORDINATOR)).status == 409
    # When the vendor has responded (even with a reject: readiness is not enforced)
    n.respond(reject("audit-rights")).propose()
    assert n.s.phase == "endorsing"
    assert n.s.proposal is not None
    assert (n.s.proposal.demand_version, n.s.proposal.round) == (1, 1)


def endorsing(*weights: int, policy: Policy | None = None) -> Negotiation:
    n = negotiation(*weights, policy=policy)
    n.position("m1", "audit-rights", "must").publish().respond(accept("audit-rights")).propose()
    return n


def test_agreement_is_reached_when_the_accepting_share_reaches_two_thirds_exactly() -> None:
    # Given three members of weight 1
    n = endorsing(1, 1, 1)
    # When m1 accepts (1/3) and m2 rejects (1/3, which does not exceed 1/3): undecided
    n.endorse("m1", "accept").endorse("m2", "reject")
    assert n.s.phase == "endorsing"
    assert [e.type for e in n.events[-2:]] == ["EndorsementGiven", "EndorsementGiven"]
    # When m3 accepts: 2/3 >= 2/3
    n.endorse("m3", "accept")
    assert n.s.phase == "agreed"
    reached = n.events[-1]
    assert isinstance(reached, AgreementReached)
    assert (reached.accepting_share, reached.rejecting_share) == (float(Fraction(2, 3)), float(Fraction(1, 3)))
    assert n.s.outcomes[-1].agreed is True


def test_a_heavy_member_alone_can_reach_the_threshold() -> None:
    # Given weights 2 and 1: m1 alone is 2/3
    n = endorsing(2, 1)
    n.endorse("m1", "accept")
    assert n.s.phase == "agreed"


def test_agreement_is_rejected_when_the_rejecting_share_exceeds_one_third() -> None:
    # Given weights 1, 1, 1
    n = endorsing(1, 1, 1)
    # When m1 rejects: 1/3 does not exceed 1/3
    n.endorse("m1", "reject")
    assert n.s.phase == "endorsing"
    # When m2 rejects: 2/3 > 1/3 → rejected, back to negotiating
    n.endorse("m2", "reject")
    assert isinstance(n.events[-1], AgreementRejected)
    assert (n.s.phase, n.s.proposal) == ("negotiating", None)
    assert n.s.outcomes[-1].agreed is False
    # And a new proposal starts a fresh endorsement in which m1 may decide again
    n.propose().endorse("m1", "accept").endorse("m3", "accept")
    assert n.s.phase == "agreed"


def test_rejecting_share_just_above_one_third_rejects() -> None:
    # Given a rejecting member of weight 33 out of 99 (exactly 1/3) or 34 out of 100 (more than 1/3)
    n = endorsing(33, 66)
    n.endorse("m1", "reject")  # 33/99 = 1/3, not more
    assert n.s.phase == "endorsing"
    n2 = endorsing(34, 66)
    n2.endorse("m1", "reject")  # 34/100 > 1/3
    assert n2.s.phase == "negotiating"


def test_endorsement_share_is_read_through_its_decimal_text() -> None:
    # Given endorsement_share 0.2 (binary float 0.2000…111) and m1 of weight 2 out of 10
    n = endorsing(2, 8, policy=Policy(endorsement_share=0.2))
    # When m1 accepts: exactly 2/10 >= 0.2
    n.endorse("m1", "accept")
    assert n.s.phase == "agreed"


def test_a_member_decides_once_per_proposal() -> None:
    n = endorsing(1, 1, 1)
    n.endorse("m1", "accept")
    assert n.refuse(n.command(Endorse, "m1", decision="reject")).status == 409


def collecting() -> Negotiation:
    n = negotiation(1)
    n.position("m1", "audit-rights", "must")
    return n


def negotiating() -> Negotiation:
    return collecting().publish()


def endorsing_alone() -> Negotiation:
    return endorsing(1)


def agreed() -> Negotiation:
    n = endorsing(1)
    n.endorse("m1", "accept")
    return n


@pytest.mark.parametrize("phase", [collecting, negotiating, endorsing_alone])
def test_abandon_from_every_open_phase_and_never_after(phase: object) -> None:
    n = phase()  # type: ignore[operator]
    n.abandon("vendor walked away")
    assert (n.s.phase, n.s.abandon_reason) == ("abandoned", "vendor walked away")
    assert n.refuse(n.command(Abandon, COORDINATOR)).status == 409


def test_an_agreed_negotiation_cannot_be_abandoned() -> None:
    n = agreed()
    assert n.refuse(n.command(Abandon, COORDINATOR)).status == 409
    assert n.s.phase == "agreed"


@pytest.mark.parametrize(
    ("phase", "command_type", "by", "fields"),
    [
        (collecting, RespondToDemand, VENDOR, {"demand_version": 1, "items": (accept("audit-rights"),)}),
        (collecting, ProposeAgreement, COORDINATOR, {}),
        (collecting, RequestClarification, VENDOR, {"item_key": "audit-rights", "question": "Which audits?"}),
        (negotiating, Endorse, "m1", {"decision": "accept"}),
        (endorsing_alone, StatePosition, "m1", {"item_key": "uptime", "position": Position(priority="must", value=99)}),
        (endorsing_alone, WithdrawPosition, "m1", {"item_key": "audit-rights"}),
        (endorsing_alone, PublishDemand, COORDINATOR, {}),
        (endorsing_alone, ChangePolicy, COORDINATOR, {"policy": Policy()}),
        (endorsing_alone, InviteMember, COORDINATOR, {"organisation_id": "m9", "name": "Late", "weight": 1}),
        (endorsing_alone, RespondToDemand, VENDOR, {"demand_version": 1, "items": (accept("audit-rights"),)}),
        (endorsing_alone, ProposeAgreement, COORDINATOR, {}),
        (agreed, ChangePolicy, COORDINATOR, {"policy": Policy()}),
        (agreed, StatePosition, "m1", {"item_key": "uptime", "position": Position(priority="must", value=99)}),
        (agreed, PublishDemand, COORDINATOR, {}),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_a_command_in_the_wrong_phase_gets_409_and_changes_nothing(
    phase: object, command_type: type, by: str, fields: dict[str, object]
) -> None:
    n = phase()  # type: ignore[operator]
    sequence = n.s.sequence
    refusal = n.refuse(n.command(command_type, by, **fields))
    assert refusal.status == 409
    assert n.s.sequence == sequence


# -- roles and input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("by", "command_type", "fields", "status"),
    [
        (OUTSIDER, StatePosition, {"item_key": "audit-rights", "position": Position(priority="must")}, 404),
        (OUTSIDER, PublishDemand, {}, 404),
        (OUTSIDER, Abandon, {}, 404),
        (VENDOR, StatePosition, {"item_key": "audit-rights", "position": Position(priority="must")}, 403),
        ("m1", PublishDemand, {}, 403),
        ("m1", InviteMember, {"organisation_id": "m7", "name": "Friend", "weight": 1}, 403),
        ("m1", RespondToDemand, {"demand_version": 1, "items": (accept("audit-rights"),)}, 403),
        (COORDINATOR, Endorse, {"decision": "accept"}, 403),
        (VENDOR, Abandon, {}, 403),
        (COORDINATOR, StatePosition, {"item_key": "audit-rights", "position": Position(priority="must")}, 403),
    ],
    ids=[
        "outsider-position",
        "outsider-publish",
        "outsider-abandon",
        "vendor-position",
        "member-publish",
        "member-invite",
        "member-respond",
        "coordinator-endorse",
        "vendor-abandon",
        "coordinator-position",
    ],
)
def test_roles(by: str, command_type: type, fields: dict[str, object], status: int) -> None:
    n = negotiating()
    assert n.refuse(n.command(command_type, by, **fields)).status == status


@pytest.mark.parametrize(
    ("key", "position", "field"),
    [
        ("retention-days", Position(priority="must"), "value"),
        ("uptime", Position(priority="must", accepted=("NL",)), "value"),
        ("retention-days", Position(priority="must", value=3, accepted=("NL",)), "accepted"),
        ("audit-rights", Position(priority="must", value=1), "value"),
        ("data-location", Position(priority="must", accepted=("NL", "Mars")), "accepted"),
        ("data-location", Position(priority="must"), "accepted"),
        ("data-location", Position(priority="must", value=2), "value"),
    ],
    ids=[
        "at-most-no-value",
        "at-least-options",
        "at-most-both",
        "boolean-value",
        "unknown-option",
        "one-of-no-options",
        "one-of-value",
    ],
)
def test_a_position_that_does_not_fit_its_item_gets_422(key: str, position: Position, field: str) -> None:
    n = collecting()
    refusal = n.refuse(n.command(StatePosition, "m1", item_key=key, position=position))
    assert (refusal.status, refusal.field) == (422, field)


def test_a_position_on_an_item_the_negotiation_lacks_gets_404() -> None:
    n = collecting()
    refusal = n.refuse(n.command(StatePosition, "m1", item_key="no-such-item", position=Position(priority="must")))
    assert refusal.status == 404


def test_withdrawing_a_position_never_stated_gets_404() -> None:
    n = collecting()
    assert n.refuse(n.command(WithdrawPosition, "m1", item_key="uptime")).status == 404


def published_all_kinds() -> Negotiation:
    """Version 1 holds audit-rights, retention-days and data-location; uptime (1/3 could) is not included."""
    n = negotiation(1, 1, 1)
    n.position("m1", "audit-rights", "must").position("m1", "retention-days", "must", 30)
    n.position("m1", "data-location", "must", accepted=("NL",)).position("m1", "uptime", "could", 99)
    return n.publish()


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        (counter("audit-rights", value=1), "items[0].verdict"),
        (counter("audit-rights"), "items[0].verdict"),
        (counter("retention-days"), "items[0].value"),
        (counter("retention-days", option="NL"), "items[0].value"),
        (counter("data-location", option="Mars"), "items[0].option"),
        (counter("data-location", value=3), "items[0].option"),
        (accept("uptime"), "items[0].key"),
        (accept("no-such-item"), "items[0].key"),
    ],
    ids=[
        "counter-boolean-value",
        "counter-boolean-bare",
        "counter-at-most-no-value",
        "counter-at-most-option",
        "counter-unknown-option",
        "counter-one-of-value",
        "item-not-in-version",
        "item-unknown",
    ],
)
def test_an_invalid_response_gets_422(answer: ItemResponse, field: str) -> None:
    n = published_all_kinds()
    assert [i.key for i in n.s.versions[0].items] == ["audit-rights", "retention-days", "data-location"]
    refusal = n.refuse(n.command(RespondToDemand, VENDOR, demand_version=1, items=(answer,)))
    assert (refusal.status, refusal.field) == (422, field)


def test_answering_the_same_item_twice_in_one_response_gets_422() -> None:
    n = published_all_kinds()
    refusal = n.refuse(
        n.command(RespondToDemand, VENDOR, demand_version=1, items=(accept("audit-rights"), reject("audit-rights")))
    )
    assert refusal.status == 422


def test_a_response_to_an_older_version_gets_409() -> None:
    n = published_all_kinds().publish()
    refusal = n.refuse(n.command(RespondToDemand, VENDOR, demand_version=1, items=(accept("audit-rights"),)))
    assert refusal.status == 409
    refusal = n.refuse(n.command(RespondToDemand, VENDOR, demand_version=3, items=(accept("audit-rights"),)))
    assert refusal.status == 409
    n.respond(accept("audit-rights"), version=2)
    assert n.s.round == 1


# -- idempotency, sequences, event ids, evolve ----------------------------------------------------


def test_a_command_decided_twice_adds_nothing_and_answers_with_the_first_sequences() -> None:
    # Given an endorsement that reaches the agreement (two events)
    n = endorsing(1)
    command = n.command(Endorse, "m1", decision="accept")
    first = n.run(command)
    assert [e.sequence for e in first.events] == [n.s.sequence - 1, n.s.sequence]
    sequence = n.s.sequence
    # When the same command id is decided again
    again = decide(n.state, command, Context(NOW))
    # Then nothing new happens and the first sequences are returned
    assert again.events == ()
    assert (again.result.duplicate, again.result.first_sequence, again.result.last_sequence) == (
        True,
        sequence - 1,
        sequence,
    )
    assert first.result.duplicate is False
    assert n.s.sequence == sequence


def test_a_retried_command_is_a_duplicate_even_if_the_phase_moved_on() -> None:
    # Given a position stated in collecting
    n = collecting()
    command = n.command(StatePosition, "m1", item_key="uptime", position=Position(priority="should", value=90))
    decision = n.run(command)
    n.publish().respond(accept("audit-rights")).propose()
    # When the retry arrives while endorsing (where a new position would be 409)
    again = decide(n.state, command, Context(NOW))
    # Then it is answered as the duplicate it is
    assert again.result.duplicate is True
    assert again.result.first_sequence == decision.events[0].sequence


def full_negotiation() -> Negotiation:
    n = negotiation(2, 1)
    n.position("m1", "audit-rights", "must").position("m2", "retention-days", "should", 30)
    n.withdraw("m2", "retention-days").position("m2", "retention-days", "must", 40)
    n.policy(coverage="1/2").publish().ask("audit-rights", "Annual?").answer(1, "Yes")
    n.respond(accept("audit-rights"), counter("retention-days", value=40)).propose()
    n.endorse("m2", "reject").endorse("m1", "reject")
    n.propose().endorse("m1", "accept")
    return n


def test_sequences_are_gapless_from_one() -> None:
    n = full_negotiation()
    assert [e.sequence for e in n.events] == list(range(1, len(n.events) + 1))
    assert n.s.sequence == len(n.events)
    assert n.s.phase == "agreed"


def test_event_ids_are_derived_from_the_command_id() -> None:
    # Given the same negotiation built twice
    one, two = full_negotiation(), full_negotiation()
    # Then the events are identical, ids included
    assert [e.event_id for e in one.events] == [e.event_id for e in two.events]
    assert one.events == two.events
    # And each id is the uuid of (negotiation, command, index within the command)
    reached = one.events[-1]
    assert isinstance(reached, AgreementReached)
    assert isinstance(one.events[-2], EndorsementGiven)
    assert one.events[-2].command_id == reached.command_id
    assert one.events[-2].event_id == event_id("neg-1", reached.command_id, 0)
    assert reached.event_id == event_id("neg-1", reached.command_id, 1)
    assert len({e.event_id for e in one.events}) == len(one.events)


def test_the_decider_builds_events_that_are_validated_like_any_other() -> None:
    # Given the events of a whole negotiation, as the decider built them
    n = full_negotiation()
    # Then each reads back from its JSON as the same event
    for event in n.events:
        assert EVENT_ADAPTER.validate_json(event.model_dump_json()) == event
    # And the constructor the handlers build them with validates each field, as the class does
    command = n.command(InviteMember, COORDINATOR, organisation_id="m9", name="M9", weight=1)
    stamp = Stamp(command, Context(NOW), n.s.sequence)
    invited = _new(MemberInvited.model_construct)(**stamp(0), organisation_id="m9", name="M9", weight=1)
    assert type(invited) is MemberInvited
    assert invited.sequence == n.s.sequence + 1
    with pytest.raises(ValidationError):
        _new(MemberInvited.model_construct)(**stamp(0), organisation_id="m9", name="M9", weight=0)


def test_deciding_the_same_command_on_the_same_state_gives_the_same_events() -> None:
    n = negotiating()
    command = n.command(StatePosition, "m1", item_key="uptime", position=Position(priority="must", value=99))
    assert decide(copy.deepcopy(n.state), command, Context(NOW)) == decide(n.state, command, Context(NOW))


def test_evolve_ignores_an_event_already_applied() -> None:
    n = full_negotiation()
    facts = copy.deepcopy(n.s.facts())
    for event in (n.events[0], n.events[5], n.events[-1]):
        assert evolve(n.state, event) is n.state
    assert n.s.facts() == facts


def test_evolve_refuses_a_gap() -> None:
    n = negotiating()
    decision = decide(n.state, n.command(PublishDemand, COORDINATOR), Context(NOW))
    skipped = decision.events[0].model_copy(update={"sequence": n.s.sequence + 2})
    with pytest.raises(SequenceGap):
        evolve(n.state, skipped)
    assert n.s.sequence == len(n.events)


def test_evolve_needs_the_opening_event_first() -> None:
    n = negotiating()
    with pytest.raises(SequenceGap):
        evolve(None, n.events[1])
    with pytest.raises(SequenceGap):
        replay(n.events[1:])
