"""The vendor's view is made of published facts only (SPEC section 1).

Two coalitions that published the same demand but hold different unpublished positions must look
the same to the vendor, whatever the vendor does: otherwise the vendor can read the difference.
"""

from __future__ import annotations

from typing import Any

from schemas.commands import RespondToDemand
from streams.core.views import Audience, event_view, sequence_for, shared_state, summary, version_view
from tests.unit.builders import VENDOR, Negotiation, counter, item

RETENTION = item("retention-days", "at_most")


def coalition(strictest: int) -> Negotiation:
    """Coverage 1/2, two must positions: 30 and ``strictest`` (at most); the published target is 30."""
    n = Negotiation(RETENTION, negotiation_id="neg-vendor").policy(coverage="1/2")
    n.invite("m1").invite("m2")
    n.position("m1", "retention-days", value=30).position("m2", "retention-days", value=strictest)
    return n.publish()


def vendor_sees(n: Negotiation) -> dict[str, Any]:
    """Everything the vendor reads: its state document, summary and its whole feed, as JSON."""
    vendor = Audience("vendor", VENDOR)
    feed = []
    for event in n.events:
        data = event_view(n.s, event, vendor)
        if data is not None:
            feed.append(data)
    return {
        "state": shared_state(n.s, vendor).model_dump(mode="json"),
        "summary": summary(n.s, vendor).model_dump(mode="json"),
        "feed": feed,
        "sequence": sequence_for(n.s, vendor),
    }


def test_a_vendor_countering_to_find_the_strictest_must_value_learns_nothing() -> None:
    # Given two coalitions whose published version is the same (target 30) but whose strictest
    # unpublished must value differs (20 and 10)
    a, b = coalition(20), coalition(10)
    published = {i.key: i.target for i in a.s.versions[-1].items}
    assert published == {i.key: i.target for i in b.s.versions[-1].items} == {"retention-days": 30}
    assert vendor_sees(a) == vendor_sees(b)
    # When the vendor counters five times, closing in on the hidden value as a binary search would
    for value in (25, 22, 21, 20, 19):
        for n in (a, b):
            n.respond(counter("retention-days", value=value))
        # Then after every round the two coalitions look exactly alike to the vendor
        assert vendor_sees(a) == vendor_sees(b), value
        # And settled says only what the vendor knows itself: its counter meets the published 30
        (line,) = shared_state(a.s, Audience("vendor", VENDOR)).items
        assert line.settled is True
    # While the members see what differs: 19 meets the strictest must of the first (20), not of
    # the second (10) — what the vendor used to read from its settled flag (SPEC 5 for members)
    assert shared_state(a.s).items[0].settled is True
    assert shared_state(b.s).items[0].settled is False


def test_a_counter_looser_than_the_published_target_is_not_settled_for_the_vendor() -> None:
    n = coalition(20)
    n.respond(counter("retention-days", value=31))
    (line,) = shared_state(n.s, Audience("vendor", VENDOR)).items
    assert line.status == "countered"
    assert line.settled is False


def test_members_tightening_between_publications_changes_nothing_the_vendor_sees() -> None:
    # Given a published demand and a vendor counter that meets it
    n = coalition(30)
    n.respond(counter("retention-days", value=30))
    before = vendor_sees(n)
    assert shared_state(n.s).items[0].settled is True  # the members see it settled too
    # When a member tightens its must position and a new member states one, without a publication
    n.position("m2", "retention-days", value=5)
    n.invite("m3").position("m3", "retention-days", value=1)
    # Then the vendor's documents and feed are unchanged, its counter included
    assert vendor_sees(n) == before
    assert shared_state(n.s).items[0].settled is False  # while the members see the change


def test_the_vendor_document_has_no_figure_of_the_live_positions() -> None:
    n = coalition(20)
    n.respond(counter("retention-days", value=20))
    document = shared_state(n.s, Audience("vendor", VENDOR)).model_dump()
    assert document["cohesion"] is None
    assert document["satisfaction"] is None
    assert document["ready_to_endorse"] is None
    version = n.s.versions[-1]
    (published,) = version_view(n.s, version, Audience("vendor", VENDOR)).items
    assert published.conflict is None
    assert published.support_share is None


def test_the_vendor_counts_its_own_events_without_gaps() -> None:
    n = coalition(20)
    n.respond(counter("retention-days", value=25))
    n.position("m1", "retention-days", value=28)
    n.run(n.command(RespondToDemand, VENDOR, demand_version=1, items=(counter("retention-days", value=24),)))
    vendor = Audience("vendor", VENDOR)
    visible = [e for e in n.events if event_view(n.s, e, vendor) is not None]
    assert [e.type for e in visible] == ["NegotiationOpened", "DemandPublished", "VendorResponded", "VendorResponded"]
    assert sequence_for(n.s, vendor) == len(visible) == 4
    assert n.s.sequence > 4  # the internal sequence counts the members' actions too
    assert summary(n.s, vendor).updated_at == visible[-1].occurred_at
