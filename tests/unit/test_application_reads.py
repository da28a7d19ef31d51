"""The application service's reads (streams.core.reads): what both doors show, pure."""

from __future__ import annotations

import pytest

from streams.core.decider import Rejection
from streams.core.reads import board, demand, demand_version, ocds_release, positions, version_changes
from streams.core.views import Audience
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, item

MEMBER = "uni-zwanenburg"
VENDOR_SEES = Audience("vendor", VENDOR)
MEMBER_SEES = Audience("member", MEMBER)


def negotiation() -> Negotiation:
    n = Negotiation(item("audit-rights"), item("retention-days", "at_most"), item("uptime", "at_least"))
    return n.invite(MEMBER, 3)


def test_version_changes_name_what_each_version_added_dropped_and_retargeted() -> None:
    # Given a first version with two items, then one with a new target, one dropped and one added
    n = negotiation().position(MEMBER, "audit-rights").position(MEMBER, "retention-days", "must", 30).publish()
    n.withdraw(MEMBER, "audit-rights").position(MEMBER, "retention-days", "must", 14)
    n.position(MEMBER, "uptime", "must", 99.9).publish()
    # When the changes between versions are computed
    changes = version_changes(list(n.s.versions))
    # Then there is one change, for version 2, and it says exactly what changed
    assert len(changes) == 1
    change = changes[0]
    assert change.version == 2
    assert change.added == ["uptime"]
    assert change.dropped == ["audit-rights"]
    assert [key for key, _before, _after in change.retargeted] == ["retention-days"]
    _key, before, after = change.retargeted[0]
    assert before != after


def test_the_board_carries_the_version_changes() -> None:
    # Given two published versions
    n = negotiation().position(MEMBER, "audit-rights").publish().position(MEMBER, "uptime", "must", 99).publish()
    # When the member's board is drawn
    drawn = board(n.s, MEMBER_SEES)
    # Then its changes are the service's version changes, and its own position is listed
    assert [c.version for c in drawn["changes"]] == [2]
    assert drawn["changes"][0].added == ["uptime"]
    assert set(drawn["own"]) == {"audit-rights", "uptime"}


def test_a_vendor_never_reads_positions_nor_the_ocds_export() -> None:
    # Given a negotiation with a member's position
    n = negotiation().position(MEMBER, "audit-rights")
    # Then the vendor is refused both (403); the member reads its own position
    for read in (lambda: positions(n.s, VENDOR_SEES), lambda: ocds_release(n.s, VENDOR_SEES, "ocds-x")):
        with pytest.raises(Rejection) as refused:
            read()
        assert refused.value.status == 403
    assert [p.item_key for p in positions(n.s, MEMBER_SEES)] == ["audit-rights"]


def test_the_vendors_demand_is_the_latest_published_version_else_not_found() -> None:
    # Given nothing published yet
    n = negotiation().position(MEMBER, "audit-rights")
    # Then the vendor's demand is not found, while the member sees the live demand
    with pytest.raises(Rejection) as refused:
        demand(n.s, VENDOR_SEES)
    assert refused.value.status == 404
    assert [i.key for i in demand(n.s, MEMBER_SEES).items] == ["audit-rights", "retention-days", "uptime"]
    # When a version is published, the vendor's demand is that version; a later one is not found
    n.publish()
    assert getattr(demand(n.s, VENDOR_SEES), "version", None) == 1
    with pytest.raises(Rejection) as missing:
        demand_version(n.s, VENDOR_SEES, 2)
    assert missing.value.status == 404


def test_the_ocds_export_waits_for_the_agreement() -> None:
    # Given a negotiation that is not agreed
    n = negotiation()
    # Then the coordinator's export is refused as a conflict (409)
    with pytest.raises(Rejection) as refused:
        ocds_release(n.s, Audience("coordinator", COORDINATOR), "ocds-x")
    assert refused.value.status == 409
