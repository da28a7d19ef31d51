"""Notices: what each event means for the party that receives it."""

from __future__ import annotations

from streams.core.notices import figures_before, notices
from streams.core.state import NegotiationState, evolve
from streams.core.views import Audience, event_view
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, accept, counter, item


def narrate(negotiation: Negotiation, viewer: Audience) -> list[tuple[str, list[str]]]:
    """Replay the negotiation's events, telling the viewer each event it may see."""
    state: NegotiationState | None = None
    told = []
    for event in negotiation.events:
        before = figures_before(state, [viewer.organisation_id] if viewer.role == "member" else [])
        state = evolve(state, event)
        if event_view(state, event, viewer) is not None:
            told.append((event.type, [n.text for n in notices(before, state, event, viewer)]))
    return told


def told(negotiation: Negotiation, viewer: Audience, event_type: str) -> list[list[str]]:
    return [texts for kind, texts in narrate(negotiation, viewer) if kind == event_type]


def example() -> Negotiation:
    retention = item("retention-days", "at_most").model_copy(update={"unit": "days"})
    n = Negotiation(retention, item("no-telemetry"), item("location", "one_of"))
    n.invite("m-a", weight=3, name="University A").invite("m-b", weight=1, name="College B")
    n.position("m-a", "retention-days", "must", value=14)
    n.position("m-a", "no-telemetry", "must")
    n.position("m-a", "location", "should", accepted=["NL"])
    n.position("m-b", "retention-days", "should", value=60)
    n.publish()
    n.respond(counter("retention-days", value=30), accept("no-telemetry"), counter("location", option="EU"))
    return n


MEMBER_A = Audience("member", "m-a")


def test_a_member_is_told_what_each_answer_means_for_its_own_positions() -> None:
    (round_one,) = told(example(), MEMBER_A, "VendorResponded")
    assert round_one == [
        "The vendor countered retention-days with 30 days; your limit is 14: not met.",
        "The vendor accepted no-telemetry; you need this guarantee: met.",
        "The vendor countered location with EU; you accept NL: not met.",
        "1 of your 2 must items are now satisfied.",
    ]


def test_the_coordinator_is_told_the_round_and_when_cohesion_moves() -> None:
    n = example()
    # m-a (3) is unsatisfied, m-b (1) has no must: cohesion 1/4 before and after round 1
    n.respond(counter("retention-days", value=14))
    rounds = told(n, Audience("coordinator", COORDINATOR), "VendorResponded")
    assert rounds[0] == ["Round 1: the vendor answered 3 items (1 accepted, 2 countered)."]
    assert rounds[1] == ["Round 2: the vendor answered 1 items (1 countered).", "Cohesion moved from 25% to 100%."]
    assert told(n, MEMBER_A, "VendorResponded")[1][-1] == "2 of your 2 must items are now satisfied."


def test_the_vendor_is_told_nothing_about_members() -> None:
    n = example()
    n.ask("retention-days", "Do backups count?").answer(1, "Yes.").propose()
    n.endorse("m-a", "accept")
    texts = " ".join(t for _, texts in narrate(n, Audience("vendor", VENDOR)) for t in texts)
    assert "Your round 1 is recorded (3 items)." in texts
    assert "Your question on retention-days is answered." in texts
    assert "Agreement reached." in texts
    for secret in ("m-a", "m-b", "University A", "College B", "14", "60", "weight"):
        assert secret not in texts


def test_invitations_positions_and_endorsements_are_told_to_whom_they_concern() -> None:
    n = example()
    n.propose().endorse("m-b", "reject")
    assert told(n, MEMBER_A, "MemberInvited")[0] == ['You were invited to "Cloud suite privacy terms" with weight 3.']
    assert told(n, MEMBER_A, "PositionStated")[0] == ["Your position on retention-days is recorded."]
    coordinator = Audience("coordinator", COORDINATOR)
    assert told(n, coordinator, "PositionStated")[0][0] == "University A stated a must position on retention-days."
    assert told(n, coordinator, "EndorsementGiven") == [["College B rejected the proposed agreement."]]
    # Without transparency a member does not see another member's endorsement at all
    assert told(n, MEMBER_A, "EndorsementGiven") == []
    assert told(n, MEMBER_A, "AgreementProposed") == [["An agreement on round 1 is proposed: accept or reject it."]]


def test_a_unit_with_braces_is_told_as_written() -> None:
    # Given an inline item whose unit, as the coordinator wrote it, holds braces
    price = item("price", "at_most").model_copy(update={"unit": "EUR per {user} per month"})
    n = Negotiation(price)
    n.invite("m-a", weight=1, name="University A")
    n.position("m-a", "price", "must", value=5)
    n.publish()
    # When the vendor counters
    n.respond(counter("price", value=6))
    # Then the member is told the offer with the unit as written (no placeholder is filled from it)
    (round_one,) = told(n, MEMBER_A, "VendorResponded")
    assert round_one[0] == "The vendor countered price with 6 EUR per {user} per month; your limit is 5: not met."
