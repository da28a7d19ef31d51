"""What-if and suggestions (streams.core.insight): examples a coordinator would recognise."""

from __future__ import annotations

from fractions import Fraction

import pytest

from schemas.insight import Concession, WhatIfRequest
from schemas.negotiation import Position
from streams.core import insight
from streams.core.decider import Rejection
from streams.core.views import Audience, cohesion, live_demand
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, counter, item

COORD = Audience("coordinator", COORDINATOR)


def retention_negotiation() -> Negotiation:
    """Members a (5), b (3), c (2): retention at most 7 / 14 / 30 days (all must), data location
    in conflict (a: NL, b: EU, c: NL or EU), audit rights (a must); version 1 answered with a
    counter of 30 days on retention and an accept on audit rights."""
    n = Negotiation(item("retention-days", "at_most"), item("data-location", "one_of"), item("audit-rights"))
    n.invite("a", 5, "Universiteit A").invite("b", 3, "Hogeschool B").invite("c", 2, "School C")
    n.position("a", "retention-days", "must", 7).position("b", "retention-days", "must", 14)
    n.position("c", "retention-days", "must", 30)
    n.position("a", "data-location", "must", accepted=("NL",)).position("b", "data-location", "must", accepted=("EU",))
    n.position("c", "data-location", "could", accepted=("NL", "EU"))
    n.position("a", "audit-rights", "must")
    n.publish()
    n.respond(counter("retention-days", 30), accept("audit-rights"))
    return n


def test_a_what_if_without_changes_is_today() -> None:
    # Given a negotiation with a conflict and a counter
    n = retention_negotiation()
    # When the coordinator asks a what-if that changes nothing
    answer = insight.what_if(n.s, COORD, WhatIfRequest())
    # Then the would-be demand is today's, and so is cohesion; nobody moves
    assert answer.demand == live_demand(n.s).items
    assert answer.changes == ()
    assert answer.cohesion == answer.cohesion_today == cohesion(n.s)
    assert answer.became_satisfied.members == answer.left_behind.members == 0


def test_a_lower_coverage_asks_less_and_says_whom_it_leaves_behind() -> None:
    # Given retention targets of 7 / 14 / 30 days with weights 5 / 3 / 2 (today's target: 7)
    n = retention_negotiation()
    # When the coordinator tries a coverage of 0.5
    answer = insight.what_if(n.s, COORD, WhatIfRequest(coverage=Fraction(1, 2)))
    # Then retention would ask 14 days (b and c hold half the considered weight), which leaves
    # Universiteit A (7 days, half the coalition's weight) behind
    change = {c.key: c for c in answer.changes}["retention-days"]
    assert (change.change, change.target_before, change.target_after) == ("retargeted", 7, 14)
    assert answer.left_behind.names is not None
    assert [m.name for m in answer.left_behind.names] == ["Universiteit A"]
    assert answer.left_behind.weight_share == 0.5
    # And with a coverage of 0.2, 30 days: Hogeschool B would not be served either (nor is it
    # today: data location asks NL, and it accepts only EU)
    answer = insight.what_if(n.s, COORD, WhatIfRequest(coverage=Fraction(1, 5)))
    assert {d.key: d for d in answer.demand}["retention-days"].target == 30
    assert answer.not_served.names is not None
    assert [m.name for m in answer.not_served.names] == ["Universiteit A", "Hogeschool B"]
    assert answer.served_share_today == 0.7 and answer.served_share == 0.2


def test_dropping_an_item_leaves_its_must_members_behind_and_a_member_sees_counts_only() -> None:
    n = retention_negotiation()
    # When a member asks what dropping audit rights would do
    answer = insight.what_if(n.s, Audience("member", "b"), WhatIfRequest(drop=("audit-rights",)))
    # Then the item leaves the demand, one member (weight 5 of 10) is left behind, and no name is given
    assert [(c.key, c.change) for c in answer.changes] == [("audit-rights", "leaves")]
    assert answer.left_behind.members == 1
    assert answer.left_behind.weight_share == 0.5
    assert answer.left_behind.names is None and answer.not_served.names is None


def test_a_concession_moves_cohesion_and_names_the_member_for_the_coordinator() -> None:
    n = retention_negotiation()
    # Given b is unsatisfied by retention (it wants 14, the vendor counters 30) and data location
    # (no answer yet)
    # When b would accept 30 days and make data location a should
    concessions = (
        Concession(member_id="b", item_key="retention-days", position=Position(priority="must", value=30)),
        Concession(member_id="b", item_key="data-location", position=Position(priority="should", accepted=("EU",))),
    )
    answer = insight.what_if(n.s, COORD, WhatIfRequest(concessions=concessions))
    # Then b becomes satisfied (cohesion from 20 % to 50 %) and the data-location conflict is gone:
    # only a's must is considered
    assert answer.cohesion_today == 0.2 and answer.cohesion == 0.5
    assert answer.became_satisfied.names is not None
    assert [m.organisation_id for m in answer.became_satisfied.names] == ["b"]
    line = {d.key: d for d in answer.demand}["data-location"]
    assert (line.conflict, line.target) == (False, ("NL",))


def test_a_what_if_refuses_the_vendor_and_bad_input() -> None:
    n = retention_negotiation()
    with pytest.raises(Rejection) as vendor:
        insight.what_if(n.s, Audience("vendor", VENDOR), WhatIfRequest())
    assert vendor.value.status == 403
    with pytest.raises(Rejection) as unknown:
        insight.what_if(n.s, COORD, WhatIfRequest(drop=("no-such-item",)))
    assert unknown.value.status == 422 and unknown.value.field == "drop[0]"
    with pytest.raises(Rejection) as both:
        insight.what_if(n.s, COORD, WhatIfRequest(drop=("audit-rights",), add=("audit-rights",)))
    assert both.value.status == 422
    bad = Concession(member_id="a", item_key="retention-days", position=Position(priority="must"))
    with pytest.raises(Rejection) as misfit:
        insight.what_if(n.s, COORD, WhatIfRequest(concessions=(bad,)))
    assert misfit.value.status == 422 and misfit.value.field == "concessions[0].position.value"
    theirs = Concession(member_id="a", item_key="audit-rights", position=None)
    with pytest.raises(Rejection) as others:
        insight.what_if(n.s, Audience("member", "b"), WhatIfRequest(concessions=(theirs,)))
    assert others.value.status == 403


def test_suggestions_resolve_the_conflict_satisfy_members_and_name_the_vendor_counter() -> None:
    n = retention_negotiation()
    found = insight.suggestions(n.s, COORD)
    # The conflict on data location: one of the two must members accepting the other's option
    # ends it; NL and EU each need one member, Hogeschool B weighs least: it accepts NL.
    (conflict,) = found.conflicts
    assert (conflict.item_key, conflict.option, conflict.members) == ("data-location", "NL", 1)
    assert [c.member_id for c in conflict.concessions] == ["b"]
    assert conflict.concessions[0].position.accepted == ("NL", "EU")
    # The coalition: a (weight 5) and b (weight 3) each miss two must items; a first, it weighs more
    assert [c.member_id for c in found.coalition] == ["a", "b"]
    first = found.coalition[0]
    assert [(c.item_key, c.kind) for c in first.concessions] == [
        ("retention-days", "relax"),
        ("data-location", "lower"),
    ]
    assert first.text == (
        "Universiteit A would be satisfied if it would accept 30 on retention-days and make data-location a should: "
        "cohesion +50 %."
    )
    # The vendor: no member misses only one published item, so no single answer satisfies anybody more
    assert found.vendor == ()
    # And a's concessions, stated for real, give the cohesion promised
    for c in first.concessions:
        n.position("a", c.item_key, c.position.priority, c.position.value, c.position.accepted)
    assert cohesion(n.s) == first.cohesion_after == 0.7
    with pytest.raises(Rejection) as member:
        insight.suggestions(n.s, Audience("member", "a"))
    assert member.value.status == 403


def test_the_vendor_counter_that_raises_cohesion_most_is_the_least_generous_of_equals() -> None:
    # Given four members whose only must is retention: 7, 14, 14 and 30 days; the vendor countered 60
    n = Negotiation(item("retention-days", "at_most"))
    for member, days in (("a", 7), ("b", 14), ("c", 14), ("d", 30)):
        n.invite(member, 1).position(member, "retention-days", "must", days)
    n.publish().respond(counter("retention-days", 60))
    # When the suggestions are asked
    (suggestion,) = insight.suggestions(n.s, COORD).vendor
    # Then a counter of 7 days satisfies all four: that is the most, and no laxer value does it
    assert (suggestion.verdict, suggestion.value, suggestion.members_gained) == ("counter", 7, 4)
    assert suggestion.cohesion_after == 1.0
    assert "a counter of 7 on retention-days would satisfy 4 more members" in suggestion.text
    # And applied as a real counter, the cohesion is the one promised
    n.respond(counter("retention-days", suggestion.value))
    assert cohesion(n.s) == suggestion.cohesion_after
