"""Properties of the what-if and the suggestions, over random negotiations (hypothesis).

The what-if is checked against the real thing: the same changes made as commands (positions
stated or withdrawn, the policy changed, a vendor's counter) must give the state the what-if
promised. So are the suggestions: each one, applied for real, gives the cohesion it promised.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.insight import Concession, WhatIfRequest
from schemas.negotiation import ItemResponse, Policy
from streams.core import insight
from streams.core.views import Audience, cohesion, live_demand
from tests.unit.builders import COORDINATOR, Negotiation
from tests.unit.test_properties import KIND, OPTIONS, build, coalitions, position_on, shares, values

COORD = Audience("coordinator", COORDINATOR)
PROPERTIES = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def answer_on(key: str) -> st.SearchStrategy[ItemResponse]:
    kind = KIND[key]
    verdicts = ["accept", "reject"] if kind == "boolean" else ["accept", "reject", "counter"]

    def response(verdict: str) -> st.SearchStrategy[ItemResponse]:
        if verdict != "counter":
            return st.just(ItemResponse(key=key, verdict=verdict))  # type: ignore[arg-type]
        if kind == "one_of":
            return st.sampled_from(OPTIONS).map(lambda o: ItemResponse(key=key, verdict="counter", option=o))
        return values.map(lambda v: ItemResponse(key=key, verdict="counter", value=v))

    return st.sampled_from(verdicts).flatmap(response)


@st.composite
def negotiations(draw: st.DrawFn) -> Negotiation:
    """A random coalition; half the time version 1 is published and the vendor answers some items."""
    weights, stated = draw(coalitions())
    n = build(weights, stated, Policy(coverage=draw(shares), inclusion_share=draw(shares)))
    if any(line.included for line in live_demand(n.s).items) and draw(st.booleans()):
        n.publish()
        published = [i.key for i in n.s.versions[-1].items]
        answered = [key for key in published if draw(st.booleans())]
        if answered:
            n.respond(*(draw(answer_on(key)) for key in answered))
    return n


@st.composite
def concessions(draw: st.DrawFn, n: Negotiation) -> list[Concession]:
    members = list(n.s.members)
    chosen = draw(st.lists(st.tuples(st.sampled_from(members), st.sampled_from(list(KIND))), max_size=4, unique=True))
    result = []
    for member, key in chosen:
        position = draw(st.none() | position_on(key))
        if position is None and key not in n.s.positions[member]:
            continue  # nothing to withdraw
        result.append(Concession(member_id=member, item_key=key, position=position))
    return result


def apply(n: Negotiation, made: list[Concession]) -> Negotiation:
    """The concessions as the members' real commands, on a copy of the negotiation."""
    real = copy.deepcopy(n)
    for c in made:
        assert c.member_id is not None
        if c.position is None:
            real.withdraw(c.member_id, c.item_key)
        else:
            real.position(c.member_id, c.item_key, c.position.priority, c.position.value, c.position.accepted)
    return real


@PROPERTIES
@given(n=negotiations())
def test_a_what_if_with_todays_policy_and_no_changes_is_todays_demand_and_cohesion(n: Negotiation) -> None:
    # Given any negotiation; When the coordinator tries today's policy and changes nothing
    policy = n.s.policy
    request = WhatIfRequest(inclusion_share=policy.inclusion_share, coverage=policy.coverage)
    answer = insight.what_if(n.s, COORD, request)
    # Then the would-be demand is the live demand, cohesion is today's, and nobody moves
    assert answer.demand == live_demand(n.s).items
    assert answer.changes == ()
    assert answer.cohesion == answer.cohesion_today == cohesion(n.s)
    assert answer.served_share == answer.served_share_today
    for shift in (answer.became_satisfied, answer.became_unsatisfied, answer.now_served, answer.left_behind):
        assert shift.members == 0


@PROPERTIES
@given(data=st.data(), n=negotiations(), coverage=shares, inclusion=shares)
def test_a_what_if_equals_making_its_changes_for_real(
    data: st.DataObject, n: Negotiation, coverage: Any, inclusion: Any
) -> None:
    # Given any negotiation in which positions may still change, and random concessions and policy
    made = data.draw(concessions(n))
    request = WhatIfRequest(inclusion_share=inclusion, coverage=coverage, concessions=tuple(made))
    # When the what-if is asked, and the same changes are made as commands
    answer = insight.what_if(n.s, COORD, request)
    real = apply(n, made)
    real.policy(inclusion_share=inclusion, coverage=coverage)
    # Then the what-if answered the state those commands give
    assert answer.demand == live_demand(real.s).items
    assert answer.cohesion == cohesion(real.s)
    satisfied = {m for m, open_items in real.s.unsatisfied.items() if not open_items}
    satisfied_before = {m for m, open_items in n.s.unsatisfied.items() if not open_items}
    assert answer.became_satisfied.names is not None and answer.became_unsatisfied.names is not None
    assert {m.organisation_id for m in answer.became_satisfied.names} == satisfied - satisfied_before
    assert {m.organisation_id for m in answer.became_unsatisfied.names} == satisfied_before - satisfied


@PROPERTIES
@given(n=negotiations())
def test_every_suggestion_applied_for_real_gives_the_cohesion_it_promised(n: Negotiation) -> None:
    found = insight.suggestions(n.s, COORD)
    for suggestion in found.coalition:
        # a coalition suggestion: its member's concessions, stated for real
        real = apply(n, list(insight.as_concessions(suggestion.concessions)))
        assert cohesion(real.s) == suggestion.cohesion_after > suggestion.cohesion_before
        # ... and through the what-if
        request = WhatIfRequest(concessions=insight.as_concessions(suggestion.concessions))
        assert insight.what_if(n.s, COORD, request).cohesion == suggestion.cohesion_after
    for conflict in found.conflicts:
        if not conflict.concessions:
            continue
        real = apply(n, list(insight.as_concessions(conflict.concessions)))
        line = {d.key: d for d in live_demand(real.s).items}[conflict.item_key]
        assert (line.conflict, line.target) == (False, conflict.target_after)
        assert cohesion(real.s) == conflict.cohesion_after
    for vendor in found.vendor:
        # a vendor suggestion: the vendor's answer, given for real
        real = copy.deepcopy(n)
        real.respond(
            ItemResponse(key=vendor.item_key, verdict=vendor.verdict, value=vendor.value, option=vendor.option)
        )
        assert cohesion(real.s) == vendor.cohesion_after > vendor.cohesion_before


@PROPERTIES
@given(n=negotiations(), data=st.data())
def test_no_single_vendor_answer_raises_cohesion_more_than_the_suggested_one(
    n: Negotiation, data: st.DataObject
) -> None:
    # Given a published version, and any one answer of the vendor on one of its items
    if not n.s.versions:
        return
    key = data.draw(st.sampled_from([i.key for i in n.s.versions[-1].items] or ["none"]))
    if key == "none":
        return
    response = data.draw(answer_on(key))
    tried = copy.deepcopy(n)
    tried.respond(response)
    # Then it raises cohesion no more than the item's suggestion promises (or than nothing, without one)
    suggested = {v.item_key: v for v in insight.suggestions(n.s, COORD).vendor}.get(key)
    best = suggested.cohesion_after if suggested else cohesion(n.s)
    assert cohesion(tried.s) <= best
