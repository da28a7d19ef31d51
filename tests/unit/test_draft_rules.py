"""The core's rule for a draft (SPEC section 10): a draft is refused for exactly the reasons a stated
position would be, besides who states it, so adopting it can fail only for what changed since."""

from __future__ import annotations

import pytest

from schemas.commands import ActingPerson, Actor, StatePosition
from schemas.negotiation import Position
from streams.core.decider import Rejection, decide, may_state_positions, position_fits
from tests.unit.builders import Negotiation, item

CASES = [
    ("data-location", Position(priority="must", accepted=("NL",))),
    ("data-location", Position(priority="must", value=3)),  # a value on one_of
    ("data-location", Position(priority="must")),  # no options
    ("data-location", Position(priority="must", accepted=("Mars",))),  # not an option
    ("retention-days", Position(priority="should", value=30)),
    ("retention-days", Position(priority="should")),  # no number
    ("audit-rights", Position(priority="could", value=1)),  # a value on a yes/no guarantee
    ("no-such-item", Position(priority="must")),
]


def status_of(rule: object) -> int:
    try:
        rule()  # type: ignore[operator]
    except Rejection as rejection:
        return rejection.status
    return 200


@pytest.mark.parametrize("abandoned", [False, True])
@pytest.mark.parametrize(("key", "position"), CASES)
def test_a_draft_is_refused_as_the_stated_position_would_be(key: str, position: Position, abandoned: bool) -> None:
    # Given a negotiation with items of three kinds and a member, collecting or abandoned
    n = Negotiation(item("audit-rights"), item("data-location", "one_of"), item("retention-days", "at_most"))
    n.invite("uni")
    if abandoned:
        n.abandon()
    command = n.command(StatePosition, "uni", item_key=key, position=position)
    # When the draft is checked, and the same position is stated
    drafted = status_of(lambda: position_fits(n.s, key, position))
    stated = status_of(lambda: decide(n.state, command, n.context))
    # Then both answer alike
    assert drafted == stated


def test_a_contributor_drafts_but_does_not_state_positions() -> None:
    n = Negotiation(item("audit-rights"))
    n.invite("uni")
    person = ActingPerson(id="person_1", name="Joris", role="contributor", salt="0" * 32)
    contributor = Actor(organisation_id="uni", role="member", name="Member uni", person=person)
    approver = contributor.model_copy(update={"person": person.model_copy(update={"role": "approver"})})
    # A contributor's draft fits; its adoption is refused, an approver's is not
    position_fits(n.s, "audit-rights", Position(priority="must"))
    with pytest.raises(Rejection) as refused:
        may_state_positions(n.s, contributor)
    assert refused.value.status == 403
    may_state_positions(n.s, approver)
    # And nobody who is not a member states positions
    with pytest.raises(Rejection) as outsider:
        may_state_positions(n.s, Actor(organisation_id="elsewhere", role="member", name="Elsewhere"))
    assert outsider.value.status == 404
