"""SPEC section 9: after the agreement — commitments, the vendor's plan, deliveries, members'
checks, the coordinator's verdicts, overdue items, regressions, reopening and fulfilment.

Worked examples, one per rule: what each command does, and every refusal with the status and the
field or words a caller acts on. The coalition is m1 (weight 2), m2 and m3 (weight 1 each), W = 4.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.commands import (
    AcceptPlan,
    ActingPerson,
    CheckCommitment,
    DeliverCommitment,
    GiveVerdict,
    PlanCommitments,
    ProposeAgreement,
    RejectPlan,
    Reopen,
    ReportRegression,
    RespondToDemand,
    Tick,
)
from schemas.negotiation import PlannedCommitment, Policy
from streams.core.decider import Context, Limits, Rejection, decide
from streams.core.notices import Figures, notices
from streams.core.ocds import release
from streams.core.state import replay
from streams.core.views import Audience, check_tally, commitment_view, commitments, event_view
from tests.unit.builders import (
    COORDINATOR,
    HUB,
    NOW,
    OUTSIDER,
    VENDOR,
    Negotiation,
    accept,
    counter,
    item,
    reject,
)
from tests.unit.test_notices import narrate

M1, M2, M3 = "m1", "m2", "m3"
NAMES = {M1: "University One", M2: "College Two", M3: "Academy Three"}
COORDINATOR_SEES = Audience("coordinator", COORDINATOR)
VENDOR_SEES = Audience("vendor", VENDOR)
M1_SEES, M2_SEES, M3_SEES = (Audience("member", m) for m in (M1, M2, M3))
DAY = timedelta(days=1)


def day(n: float) -> datetime:
    return NOW + n * DAY


def agreed(policy: Policy | None = None) -> Negotiation:
    """Given an agreement on five items: the vendor accepted no-ads, countered retention-days
    with 28 days and data-location with EU, rejected dpia and left exit-help unanswered."""
    retention = item("retention-days", "at_most").model_copy(update={"unit": "days"})
    n = Negotiation(item("no-ads"), retention, item("data-location", "one_of"), item("dpia"), item("exit-help"),
                    policy=policy)  # fmt: skip
    for member, weight in ((M1, 2), (M2, 1), (M3, 1)):
        n.invite(member, weight, NAMES[member])
    n.position(M1, "no-ads").position(M2, "no-ads").position(M1, "retention-days", value=Fraction(30))
    n.position(M3, "data-location", accepted=("NL", "EU")).position(M2, "dpia").position(M3, "exit-help")
    n.publish()
    n.respond(accept("no-ads"), counter("retention-days", Fraction(28)), counter("data-location", option="EU"),
              reject("dpia"))  # fmt: skip
    n.propose().endorse(M1, "accept").endorse(M2, "accept")  # 3 of 4
    assert n.s.phase == "agreed"
    return n


def implementing(policy: Policy | None = None) -> Negotiation:
    """Given the plan accepted: no-ads due in 10 days, retention-days in 20, data-location in 30."""
    return agreed(policy).plan({"no-ads": 10, "retention-days": 20, "data-location": 30}).accept_plan()


def refusal(n: Negotiation, command_type: type[Any], by: str, **fields: Any) -> Rejection:
    """The refusal of the command (``refuse`` also checks that it changed nothing)."""
    return n.refuse(n.command(command_type, by, **fields))


def plan_of(**due: datetime) -> tuple[PlannedCommitment, ...]:
    return tuple(PlannedCommitment(key=key, due=when) for key, when in due.items())


def statuses(n: Negotiation) -> dict[str, str]:
    return {key: c.status for key, c in n.s.commitments.items()}


def view(n: Negotiation, key: str, viewer: Audience) -> dict[str, Any]:
    return commitment_view(n.s, n.s.commitments[key], viewer).model_dump(mode="json")


# -- the agreement makes the commitments ----------------------------------------------------------


def test_each_accepted_or_countered_item_of_the_agreement_becomes_an_open_commitment_without_due_date() -> None:
    # Given the agreement (accepted, countered twice, rejected, unanswered)
    n = agreed()
    # Then the accepted and countered items are commitments, in the negotiation's order, open and undated
    assert list(n.s.commitments) == ["no-ads", "retention-days", "data-location"]
    assert statuses(n) == dict.fromkeys(n.s.commitments, "open")
    assert [c.due for c in n.s.commitments.values()] == [None, None, None]
    # With the agreed terms: the version's target and the vendor's offer on it
    retention = n.s.commitments["retention-days"]
    assert (retention.target, retention.offer.verdict, retention.offer.value) == (30, "counter", 28)
    location = n.s.commitments["data-location"]
    assert (location.target, location.offer.option) == (("EU", "NL"), "EU")
    # And what the vendor rejected or left unanswered promises nothing
    assert "dpia" not in n.s.commitments and "exit-help" not in n.s.commitments


# -- the plan ----------------------------------------------------------------------------------


def test_the_vendor_plans_and_the_coordinator_accepts_so_implementation_starts() -> None:
    # Given the agreement
    n = agreed()
    # When the vendor plans every commitment with a note on one, and the coordinator accepts
    lines = (
        PlannedCommitment(key="no-ads", due=day(10), note="Switch off the ad tracker"),
        PlannedCommitment(key="retention-days", due=day(20)),
        PlannedCommitment(key="data-location", due=day(30)),
    )
    n.run(n.command(PlanCommitments, VENDOR, items=lines))
    plan = commitments(n.s, COORDINATOR_SEES).plan
    assert plan is not None and (plan.plan, plan.items) == (1, lines)
    assert n.s.phase == "agreed"  # nothing holds before the coordinator decides
    n.accept_plan()
    # Then each commitment is due as planned, the phase is implementing and no plan awaits
    assert n.s.phase == "implementing"
    assert {k: c.due for k, c in n.s.commitments.items()} == {
        "no-ads": day(10),
        "retention-days": day(20),
        "data-location": day(30),
    }
    assert n.s.commitments["no-ads"].note == "Switch off the ad tracker"
    assert commitments(n.s, VENDOR_SEES).plan is None
    assert statuses(n) == dict.fromkeys(n.s.commitments, "open")


def test_a_rejected_plan_tells_the_vendor_why_and_the_next_plan_is_numbered_on() -> None:
    # Given the vendor's first plan
    n = agreed().plan({"no-ads": 90, "retention-days": 90, "data-location": 90})
    # When the coordinator rejects it with a comment
    n.reject_plan("Ninety days is too late for no-ads")
    # Then no plan awaits, nothing is dated, and every party reads the comment
    for viewer in (VENDOR_SEES, M1_SEES, COORDINATOR_SEES):
        document = commitments(n.s, viewer)
        assert (document.plan, document.plan_rejection) == (None, "Ninety days is too late for no-ads")
    assert n.s.phase == "agreed" and all(c.due is None for c in n.s.commitments.values())
    # And the next plan is plan 2, which clears the comment
    n.plan({"no-ads": 14, "retention-days": 90, "data-location": 90})
    document = commitments(n.s, VENDOR_SEES)
    assert document.plan is not None and document.plan.plan == 2
    assert document.plan_rejection is None


def test_a_new_plan_replaces_the_one_not_yet_decided_on() -> None:
    # Given plan 1 awaiting the coordinator
    n = agreed().plan({"no-ads": 90, "retention-days": 90, "data-location": 90})
    # When the vendor sends another before the coordinator decides
    n.plan({"no-ads": 5, "retention-days": 6, "data-location": 7})
    # Then plan 2 is the one awaiting, and accepting it dates the commitments by plan 2
    assert n.s.plan is not None and n.s.plan.number == 2
    n.accept_plan()
    assert [c.due for c in n.s.commitments.values()] == [day(5), day(6), day(7)]


def test_a_due_date_written_as_a_day_means_the_end_of_that_day_in_utc() -> None:
    line = PlannedCommitment.model_validate({"key": "no-ads", "due": "2027-03-31"})
    assert line.due.isoformat() == "2027-03-31T23:59:59+00:00"


@pytest.mark.parametrize(("by", "status"), [(COORDINATOR, 403), (M1, 403), (OUTSIDER, 404)])
def test_only_the_vendor_plans(by: str, status: int) -> None:
    n = agreed()
    refused = refusal(n, PlanCommitments, by, items=plan_of(**{"no-ads": day(1)}))
    assert refused.status == status
    if status == 403:
        assert "may not plan the commitments; this needs the vendor" in refused.detail


def test_a_plan_is_made_only_while_the_negotiation_is_agreed() -> None:
    # Before the agreement there is nothing to plan
    before = agreed()
    before.state = replay(before.events[:-3])  # up to the proposal, before its endorsements
    assert before.s.phase == "endorsing"
    refused = refusal(before, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(1)}))
    assert refused.status == 409
    assert "cannot plan the commitments while the negotiation is endorsing (allowed when agreed)" in refused.detail
    # And once a plan is accepted, implementation follows it: no second plan
    n = implementing()
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(1)}))
    assert refused.status == 409
    assert "while the negotiation is implementing" in refused.detail


def test_a_plan_names_commitments_of_the_agreement_each_once_in_the_future() -> None:
    n = agreed()
    # A rejected item is no commitment
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(1), "dpia": day(2)}))
    assert (refused.status, refused.field) == (422, "items[1].key")
    assert "'dpia' is not a commitment of the agreement" in refused.detail
    # An item the negotiation does not have is none either
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"free-lunch": day(2)}))
    assert (refused.status, refused.field) == (422, "items[0].key")
    # A commitment planned twice
    twice = (PlannedCommitment(key="no-ads", due=day(1)), PlannedCommitment(key="no-ads", due=day(2)))
    refused = refusal(n, PlanCommitments, VENDOR, items=twice)
    assert (refused.status, refused.field) == (422, "items[1].key")
    assert "'no-ads' is planned more than once" in refused.detail
    # A due date that is not after the decision: now, or the past
    for when in (NOW, day(-1)):
        refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(1), "retention-days": when}))
        assert (refused.status, refused.field) == (422, "items[1].due")
        assert "the due date of retention-days must be in the future" in refused.detail


def test_a_plan_must_date_every_commitment_that_has_no_due_date_and_says_which_are_missing() -> None:
    n = agreed()
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"retention-days": day(3)}))
    assert (refused.status, refused.field) == (422, "items")
    assert refused.detail == "items: the plan must give every commitment a due date; missing: no-ads, data-location"


def test_a_vendor_proposes_no_more_plans_than_the_hubs_limit_of_rounds() -> None:
    # Given a hub that allows two rounds, and two plans proposed (the first rejected)
    n = agreed()
    n.context = Context(NOW, Limits(rounds=2))
    n.plan().reject_plan().plan()
    # When the vendor proposes a third
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**dict.fromkeys(n.s.commitments, day(9))))
    # Then it is refused: the limit, not the plan, is at fault
    assert refused.status == 409
    assert "limit of 2 plans" in refused.detail


@pytest.mark.parametrize("command_type", [AcceptPlan, RejectPlan])
def test_only_the_coordinator_decides_on_a_plan_and_only_on_one_awaiting(command_type: type[Any]) -> None:
    fields = {"comment": "No"} if command_type is RejectPlan else {}
    verb = "accept the plan" if command_type is AcceptPlan else "reject the plan"
    # Given a plan awaiting the decision: the vendor and a member may not decide it
    n = agreed().plan()
    for by in (VENDOR, M1):
        refused = refusal(n, command_type, by, **fields)
        assert refused.status == 403
        assert f"may not {verb}; this needs the coordinator" in refused.detail
    # Given no plan awaiting (none yet, or the last one decided)
    for waiting in (agreed(), agreed().plan().reject_plan()):
        refused = refusal(waiting, command_type, COORDINATOR, **fields)
        assert refused.status == 409
        assert refused.detail == "the vendor has proposed no plan to decide on"
    # And after the acceptance the phase is implementing: no decision on plans
    refused = refusal(implementing(), command_type, COORDINATOR, **fields)
    assert refused.status == 409
    assert "while the negotiation is implementing" in refused.detail


def test_a_rejection_of_a_plan_must_say_why() -> None:
    n = agreed().plan()
    with pytest.raises(ValidationError):
        n.command(RejectPlan, COORDINATOR, comment="")


# -- deliveries ----------------------------------------------------------------------------


def test_the_vendor_delivers_with_evidence_and_each_delivery_is_numbered() -> None:
    # Given implementation under way
    n = implementing()
    # When the vendor reports no-ads done
    n.deliver("no-ads", "Ads are off since release 4.2")
    # Then it is delivered, with the evidence, awaiting checks and a verdict
    no_ads = n.s.commitments["no-ads"]
    assert (no_ads.status, no_ads.deliveries, no_ads.evidence) == ("delivered", 1, "Ads are off since release 4.2")
    assert no_ads.delivered_at == NOW
    # And after a not_met verdict the next delivery is the second, its checks starting afresh
    n.check(M1, "no-ads", "not_met").verdict("no-ads", "not_met")
    n.at(day(1)).deliver("no-ads", "Ads are off in the mobile app too")
    no_ads = n.s.commitments["no-ads"]
    assert (no_ads.status, no_ads.deliveries, no_ads.delivered_at) == ("delivered", 2, day(1))
    assert no_ads.checks == {}
    assert check_tally(n.s, no_ads).delivery == 2


@pytest.mark.parametrize(("by", "status"), [(COORDINATOR, 403), (M1, 403), (OUTSIDER, 404)])
def test_only_the_vendor_delivers(by: str, status: int) -> None:
    refused = refusal(implementing(), DeliverCommitment, by, item_key="no-ads", evidence="Done")
    assert refused.status == status
    if status == 403:
        assert "may not deliver commitments; this needs the vendor" in refused.detail


def test_a_delivery_is_of_a_planned_commitment() -> None:
    # A rejected item and an unknown item are no commitments: not found
    n = implementing()
    for key in ("dpia", "free-lunch"):
        refused = refusal(n, DeliverCommitment, VENDOR, item_key=key, evidence="Done")
        assert refused.status == 404
        assert f"has no commitment on {key!r}" in refused.detail
    # Before the coordinator accepted a plan, nothing is delivered
    refused = refusal(agreed().plan(), DeliverCommitment, VENDOR, item_key="no-ads", evidence="Done")
    assert refused.status == 409
    assert refused.detail == "no-ads has no accepted plan yet: the vendor plans, the coordinator accepts"


def test_a_delivery_awaiting_its_verdict_or_met_is_not_delivered_again() -> None:
    n = implementing().deliver("no-ads")
    refused = refusal(n, DeliverCommitment, VENDOR, item_key="no-ads", evidence="Again")
    assert refused.status == 409
    assert refused.detail == "no-ads is delivered; it can be delivered again after a not_met verdict"
    n.verdict("no-ads", "met")
    refused = refusal(n, DeliverCommitment, VENDOR, item_key="no-ads", evidence="Again")
    assert (refused.status, refused.detail[:14]) == (409, "no-ads is met;")


def test_no_delivery_once_the_negotiation_is_abandoned() -> None:
    # Given a reopened negotiation that the coordinator abandons: the standing commitments remain
    n = implementing().reopen("data-location").abandon("The vendor left the market")
    assert "no-ads" in n.s.commitments
    # Then there is no more work on them
    refused = refusal(n, DeliverCommitment, VENDOR, item_key="no-ads", evidence="Done")
    assert refused.status == 409
    assert "cannot deliver commitments while the negotiation is abandoned" in refused.detail


# -- checks --------------------------------------------------------------------------------


def test_the_coordinator_sees_the_checks_weighted_by_the_coalitions_whole_weight() -> None:
    # Given no-ads delivered
    n = implementing().deliver("no-ads")
    no_ads = n.s.commitments["no-ads"]
    # When m1 (2) finds it met and m2 (1) not met, m3 (1) has not checked
    n.check(M1, "no-ads", "met").check(M2, "no-ads", "not_met", comment="Ads in the mobile app")
    # Then met is 2/4, not met 1/4, and 3/4 of the coalition has checked
    tally = check_tally(n.s, no_ads)
    assert (tally.met_share, tally.not_met_share, tally.checked_share) == (0.5, 0.25, 0.75)
    assert [(c.organisation_id, c.name, c.weight, c.verdict, c.comment) for c in tally.checks] == [
        (M1, "University One", 2, "met", None),
        (M2, "College Two", 1, "not_met", "Ads in the mobile app"),
    ]
    # When m2 checks again: its check of this delivery is replaced, not added
    n.check(M2, "no-ads", "met")
    tally = check_tally(n.s, no_ads)
    assert (tally.met_share, tally.not_met_share, tally.checked_share) == (0.75, 0.0, 0.75)
    assert len(tally.checks) == 2
    # And the coordinator's view of the commitment carries that tally
    assert view(n, "no-ads", COORDINATOR_SEES)["tally"]["met_share"] == 0.75


def test_a_member_sees_only_its_own_check_and_the_vendor_no_check_at_all() -> None:
    # Given no-ads delivered, checked by m1 and m2
    n = implementing().deliver("no-ads").check(M1, "no-ads", "met").check(M2, "no-ads", "not_met", comment="Ads")
    # Then m2 sees its own check, and neither the tally nor m1's check
    mine = view(n, "no-ads", M2_SEES)
    assert mine["tally"] is None
    assert (mine["your_check"]["organisation_id"], mine["your_check"]["verdict"]) == (M2, "not_met")
    assert "University One" not in json.dumps(mine)
    # m3, which has not checked, sees no check
    assert view(n, "no-ads", M3_SEES)["your_check"] is None
    # And the vendor sees its delivery, no checks
    vendors = view(n, "no-ads", VENDOR_SEES)
    assert (vendors["status"], vendors["tally"], vendors["your_check"]) == ("delivered", None, None)
    assert not [name for name in NAMES.values() if name in json.dumps(vendors)]


@pytest.mark.parametrize("transparent", [False, True])
def test_a_check_event_is_the_coordinators_and_the_checking_members_whatever_the_transparency(
    transparent: bool,
) -> None:
    # Given positions transparent or not, and m1's check with a comment
    n = implementing(Policy(transparent_positions=transparent)).deliver("no-ads")
    n.check(M1, "no-ads", "not_met", comment="Our tenant still shows ads")
    checked = n.events[-1]
    assert checked.type == "CommitmentChecked"
    # Then the coordinator and m1 see it whole; m2, m3 and the vendor not at all
    for viewer in (COORDINATOR_SEES, M1_SEES):
        data = event_view(n.s, checked, viewer)
        assert data is not None
        assert (data["verdict"], data["comment"]) == ("not_met", "Our tenant still shows ads")
    for viewer in (M2_SEES, M3_SEES, VENDOR_SEES):
        assert event_view(n.s, checked, viewer) is None


@pytest.mark.parametrize(("by", "status"), [(COORDINATOR, 403), (VENDOR, 403), (OUTSIDER, 404)])
def test_only_a_member_checks(by: str, status: int) -> None:
    refused = refusal(implementing().deliver("no-ads"), CheckCommitment, by, item_key="no-ads", verdict="met")
    assert refused.status == status
    if status == 403:
        assert "may not check deliveries; this needs the member" in refused.detail


def test_only_a_delivery_awaiting_its_verdict_is_checked() -> None:
    # Not before it is delivered
    n = implementing()
    refused = refusal(n, CheckCommitment, M1, item_key="no-ads", verdict="met")
    assert refused.status == 409
    assert refused.detail == "no-ads is open: only a delivery awaiting a verdict is checked"
    # Nor once it is met: a member reports a regression instead
    n.deliver("no-ads").verdict("no-ads")
    refused = refusal(n, CheckCommitment, M1, item_key="no-ads", verdict="not_met")
    assert refused.status == 409
    assert refused.detail.endswith("; report a regression if it no longer holds")
    # And no commitment, no check
    assert refusal(n, CheckCommitment, M1, item_key="dpia", verdict="met").status == 404


# -- verdicts and fulfilment ---------------------------------------------------------------------


def test_the_coordinators_verdicts_lead_to_the_agreement_fulfilled() -> None:
    # Given implementation with every commitment delivered
    n = implementing()
    for key in n.s.commitments:
        n.deliver(key)
    # When the coordinator finds two met: nothing is fulfilled yet
    n.at(day(2)).verdict("no-ads", "met", "Verified in every tenant").verdict("retention-days")
    assert n.s.phase == "implementing"
    no_ads = view(n, "no-ads", VENDOR_SEES)
    assert (no_ads["status"], no_ads["met_at"]) == ("met", "2025-03-03T12:00:00Z")
    assert no_ads["verdict"] == {"verdict": "met", "comment": "Verified in every tenant", "given_at": no_ads["met_at"]}
    # When the last is met
    decision = n.run(n.command(GiveVerdict, COORDINATOR, item_key="data-location", verdict="met"))
    # Then the verdict and the fulfilment are two events of the one command, and the phase is fulfilled
    assert [e.type for e in decision.events] == ["CommitmentVerdictGiven", "AgreementFulfilled"]
    assert decision.events[1].commitments == 3  # type: ignore[union-attr]
    assert n.s.phase == "fulfilled"
    assert set(statuses(n).values()) == {"met"}


def test_a_not_met_verdict_opens_the_commitment_for_a_new_delivery() -> None:
    n = implementing().deliver("no-ads")
    n.verdict("no-ads", "not_met", "Ads are still in the mobile app")
    no_ads = view(n, "no-ads", VENDOR_SEES)
    assert (no_ads["status"], no_ads["met_at"], no_ads["deliveries"]) == ("open", None, 1)
    assert no_ads["verdict"]["comment"] == "Ads are still in the mobile app"
    n.deliver("no-ads")
    assert n.s.commitments["no-ads"].deliveries == 2


@pytest.mark.parametrize(("by", "status"), [(M1, 403), (VENDOR, 403), (OUTSIDER, 404)])
def test_only_the_coordinator_gives_verdicts(by: str, status: int) -> None:
    refused = refusal(implementing().deliver("no-ads"), GiveVerdict, by, item_key="no-ads", verdict="met")
    assert refused.status == status
    if status == 403:
        assert "may not give verdicts on deliveries; this needs the coordinator" in refused.detail


def test_a_verdict_is_given_on_a_delivery_or_a_reported_regression() -> None:
    n = implementing()
    # Not on an open commitment
    refused = refusal(n, GiveVerdict, COORDINATOR, item_key="no-ads", verdict="met")
    assert refused.status == 409
    assert refused.detail == (
        "no-ads is open: a verdict is given on a delivery, or on a met commitment whose regression a member reported"
    )
    # Not again on a met one that nobody reported
    n.deliver("no-ads").verdict("no-ads")
    for verdict in ("met", "not_met"):
        refused = refusal(n, GiveVerdict, COORDINATOR, item_key="no-ads", verdict=verdict)
        assert (refused.status, refused.detail[:24]) == (409, "no-ads is met: a verdict")
    # With a regression reported: met finds the report unfounded (it stays met, since when it was)
    met_at = n.s.commitments["no-ads"].met_at
    n.regress(M2, "no-ads").verdict("no-ads", "met")
    assert (n.s.commitments["no-ads"].status, n.s.commitments["no-ads"].regressions) == ("met", [])
    assert n.s.commitments["no-ads"].met_at == met_at
    # or not_met finds it real: open for a new delivery
    n.regress(M2, "no-ads").verdict("no-ads", "not_met")
    assert n.s.commitments["no-ads"].status == "open"


def test_a_regression_found_real_takes_a_fulfilled_agreement_back_to_implementation() -> None:
    # Given the agreement fulfilled
    n = implementing()
    for key in list(n.s.commitments):
        n.deliver(key).verdict(key)
    assert n.s.phase == "fulfilled"
    # When m2 reports that no-ads no longer holds and the coordinator finds it not met
    n.at(day(40)).regress(M2, "no-ads", "Ads are back since release 5")
    assert n.s.phase == "fulfilled"  # a report alone changes nothing
    n.verdict("no-ads", "not_met")
    # Then implementation goes on: no-ads is open (and overdue, its date long passed, at the next tick)
    assert (n.s.phase, n.s.commitments["no-ads"].status) == ("implementing", "open")
    n.tick(day(40))
    assert n.s.commitments["no-ads"].status == "overdue"
    # And a new delivery found met fulfils the agreement again, the reports cleared
    n.deliver("no-ads", "Ads removed again").verdict("no-ads")
    assert n.s.phase == "fulfilled"
    assert n.events[-1].type == "AgreementFulfilled"
    assert n.s.commitments["no-ads"].regressions == []
    assert n.s.commitments["no-ads"].deliveries == 2


def test_nothing_is_fulfilled_while_the_agreement_is_being_renegotiated() -> None:
    # Given a reopening on data-location, the other two delivered
    n = implementing().deliver("no-ads").deliver("retention-days").reopen("data-location")
    # When both are found met while the negotiation is negotiating again
    n.verdict("no-ads").verdict("retention-days")
    # Then every standing commitment is met, but the agreement is not fulfilled
    assert set(statuses(n).values()) == {"met"}
    assert n.s.phase == "negotiating"
    assert "AgreementFulfilled" not in [e.type for e in n.events]


# -- overdue, by tick ------------------------------------------------------------------------


def test_a_tick_marks_overdue_what_passed_its_due_date_undelivered_and_unmet() -> None:
    # Given no-ads (due day 10) met, retention-days (due 20) delivered, data-location (due 30) open
    n = implementing().deliver("no-ads").verdict("no-ads").deliver("retention-days")
    # When the hub ticks on day 31
    decision = n.at(day(31)).run(n.command(Tick, HUB, now=day(31)))
    # Then only data-location is overdue, with its due date and the tick's time
    assert [(e.type, e.item_key, e.due, e.checked_at) for e in decision.events] == [  # type: ignore[union-attr]
        ("CommitmentOverdue", "data-location", day(30), day(31))
    ]
    assert statuses(n) == {"no-ads": "met", "retention-days": "delivered", "data-location": "overdue"}
    assert view(n, "data-location", VENDOR_SEES)["overdue_since"] == "2025-04-01T12:00:00Z"


def test_a_tick_marks_every_overdue_commitment_at_once_and_a_second_tick_finds_nothing_new() -> None:
    n = implementing().at(day(10))
    # Exactly at a due date nothing has passed it yet
    refused = refusal(n, Tick, HUB, now=day(10))
    assert refused.status == 409
    assert refused.detail == "nothing is overdue at 2025-03-11T12:00:00+00:00"
    # A moment after the last due date, all three
    n.tick(day(30) + timedelta(seconds=1))
    assert set(statuses(n).values()) == {"overdue"}
    assert [e.type for e in n.events[-3:]] == ["CommitmentOverdue"] * 3
    # An overdue commitment is not overdue again
    assert refusal(n.at(day(31)), Tick, HUB, now=day(31)).status == 409
    # And it can still be delivered
    n.deliver("no-ads")
    assert n.s.commitments["no-ads"].status == "delivered"


def test_a_not_met_verdict_past_the_due_date_is_overdue_at_the_next_tick() -> None:
    n = implementing().deliver("no-ads").at(day(12)).verdict("no-ads", "not_met")
    assert n.s.commitments["no-ads"].status == "open"
    n.tick(day(12))
    assert n.s.commitments["no-ads"].status == "overdue"


def test_a_tick_decides_by_its_own_time_only_and_the_same_every_time() -> None:
    # Given implementation, and a tick for day 25
    n = implementing()
    tick = n.command(Tick, HUB, now=day(25))
    # When it is decided at two different moments of the worker's clock, and once more
    first = decide(n.s, tick, Context(day(26)))
    later = decide(n.s, tick, Context(day(300)))
    again = decide(n.s, tick, Context(day(26)))
    # Then what is overdue is the same: what passed its date by day 25
    assert [(e.item_key, e.checked_at) for e in first.events] == [  # type: ignore[union-attr]
        ("no-ads", day(25)),
        ("retention-days", day(25)),
    ]
    assert [(e.item_key, e.checked_at) for e in later.events] == [  # type: ignore[union-attr]
        (e.item_key, e.checked_at)  # type: ignore[union-attr]
        for e in first.events
    ]
    # And the same tick against the same state gives the same events, ids and hashes included
    assert again.events == first.events


def test_a_tick_sent_again_is_answered_as_the_duplicate_it_is() -> None:
    # Given a tick that marked two commitments overdue
    n = implementing().at(day(25))
    tick = n.command(Tick, HUB, now=day(25))
    first = n.run(tick)
    # When the scheduler's tick is delivered again (at least once), with the same command id
    again = decide(n.s, tick, n.context)
    # Then it causes nothing new and says which events it caused the first time
    assert again.events == ()
    assert again.result.duplicate
    assert (again.result.first_sequence, again.result.last_sequence) == (
        first.result.first_sequence,
        first.result.last_sequence,
    )


@pytest.mark.parametrize(("by", "role"), [(COORDINATOR, "coordinator"), (VENDOR, "vendor"), (M1, "member"),
                                          (HUB, "coordinator"), (OUTSIDER, "member")])  # fmt: skip
def test_only_the_hubs_scheduler_sends_ticks(by: str, role: str) -> None:
    n = implementing()
    tick = n.command(Tick, by, now=day(31))
    tick = tick.model_copy(update={"actor": tick.actor.model_copy(update={"role": role})})
    refused = n.refuse(tick)
    assert refused.status == 403
    assert refused.detail == "only the hub's scheduler sends ticks"


def test_a_tick_before_the_agreement_is_out_of_phase() -> None:
    n = Negotiation(item("no-ads"))
    refused = refusal(n, Tick, HUB, now=day(1))
    assert refused.status == 409
    assert "cannot send ticks while the negotiation is collecting" in refused.detail


def test_an_overdue_commitment_given_a_new_date_in_an_accepted_plan_is_open_again() -> None:
    # Given retention-days overdue, and a reopening on data-location agreed again
    n = implementing().at(day(21)).tick(day(21))
    assert n.s.commitments["retention-days"].status == "overdue"
    renegotiate(n, "data-location")
    assert n.s.phase == "agreed"
    # When the vendor plans the new commitment and gives the overdue one a new date, accepted
    n.plan({"data-location": 30, "retention-days": 10}).accept_plan()
    # Then it is open again, due on its new date, no longer overdue
    retention = n.s.commitments["retention-days"]
    assert (retention.status, retention.due, retention.overdue_since) == ("open", day(31), None)
    assert n.s.phase == "implementing"


# -- regressions ---------------------------------------------------------------------------------


def test_regression_reports_are_the_coordinators_and_the_reporting_members() -> None:
    # Given no-ads met, and m2 and m3 reporting that it no longer holds
    n = implementing().deliver("no-ads").verdict("no-ads")
    n.regress(M2, "no-ads", "College Two's tenant shows ads").regress(M3, "no-ads", "Ads in the Academy's app")
    m2_report, m3_report = n.events[-2], n.events[-1]
    # Then the commitment stays met until the coordinator decides
    assert n.s.commitments["no-ads"].status == "met"
    # The coordinator sees every report with names and comments
    reports = view(n, "no-ads", COORDINATOR_SEES)
    assert reports["regressions_reported"] == 2
    assert [(r["organisation_id"], r["name"], r["comment"]) for r in reports["regressions"]] == [
        (M2, "College Two", "College Two's tenant shows ads"),
        (M3, "Academy Three", "Ads in the Academy's app"),
    ]
    # m2 its own report, and how many there are
    mine = view(n, "no-ads", M2_SEES)
    assert mine["regressions_reported"] == 2
    assert [r["comment"] for r in mine["regressions"]] == ["College Two's tenant shows ads"]
    # Of m3's report m2 learns only which commitment it is about
    assert event_view(n.s, m3_report, M2_SEES) == {"item_key": "no-ads"}
    assert event_view(n.s, m2_report, M2_SEES)["comment"] == "College Two's tenant shows ads"  # type: ignore[index]
    # And the vendor nothing at all
    vendors = view(n, "no-ads", VENDOR_SEES)
    assert (vendors["regressions"], vendors["regressions_reported"]) == (None, None)
    assert [event_view(n.s, e, VENDOR_SEES) for e in (m2_report, m3_report)] == [None, None]


@pytest.mark.parametrize(("by", "status"), [(COORDINATOR, 403), (VENDOR, 403), (OUTSIDER, 404)])
def test_only_a_member_reports_a_regression(by: str, status: int) -> None:
    n = implementing().deliver("no-ads").verdict("no-ads")
    refused = refusal(n, ReportRegression, by, item_key="no-ads", comment="Back")
    assert refused.status == status
    if status == 403:
        assert "may not report regressions; this needs the member" in refused.detail


def test_only_a_met_commitment_regresses() -> None:
    n = implementing()
    refused = refusal(n, ReportRegression, M1, item_key="no-ads", comment="Back")
    assert refused.status == 409
    assert refused.detail == "no-ads is open: only a met commitment can regress"
    n.deliver("no-ads")
    refused = refusal(n, ReportRegression, M1, item_key="no-ads", comment="Back")
    assert (refused.status, refused.detail) == (409, "no-ads is delivered: only a met commitment can regress")
    with pytest.raises(ValidationError):
        n.command(ReportRegression, M1, item_key="no-ads", comment="")


# -- reopening -----------------------------------------------------------------------------------


def renegotiate(n: Negotiation, *keys: str) -> Negotiation:
    """Reopen on ``keys``, publish the next version, the vendor accepts it all, m1 and m2 endorse."""
    n.reopen(*keys, reason="The vendor moved the data centre").publish()
    latest = n.s.latest_version
    assert latest is not None
    return n.respond(*(accept(line.key) for line in latest.items)).propose().endorse(M1, "accept").endorse(M2, "accept")


def test_a_reopening_renegotiates_the_chosen_commitments_and_continues_the_numbering() -> None:
    # Given implementation: no-ads met, retention-days delivered, data-location open, version 1, round 1
    n = implementing().deliver("no-ads").verdict("no-ads").deliver("retention-days")
    assert (n.s.latest_version.version, n.s.round) == (1, 1)  # type: ignore[union-attr]
    # When the coordinator reopens on data-location and no-ads (named in any order)
    n.reopen("data-location", "no-ads", reason="Ads came back and the data moved")
    # Then the phase is negotiating, those two are no longer commitments, retention-days stands
    assert n.s.phase == "negotiating"
    assert n.s.reopened == ("no-ads", "data-location")
    assert statuses(n) == {"retention-days": "delivered"}
    # An agreement needs a version published after the reopening
    refused = refusal(n, ProposeAgreement, COORDINATOR)
    assert refused.status == 409
    assert refused.detail == (
        "the negotiation was reopened: publish a demand version of the reopened items before proposing"
    )
    # The next version is version 2 and holds only the reopened items
    n.publish()
    version = n.s.latest_version
    assert version is not None
    assert (version.version, [line.key for line in version.items]) == (2, ["no-ads", "data-location"])
    # The vendor's answer is round 2
    n.respond(accept("no-ads"), counter("data-location", option="NL"))
    assert n.events[-1].round == 2  # type: ignore[union-attr]
    # When the coalition agrees again
    n.propose().endorse(M1, "accept").endorse(M2, "accept")
    # Then the reopened items are commitments anew, on the new terms, and the standing one is as it was
    assert n.s.phase == "agreed"
    assert list(n.s.commitments) == ["no-ads", "retention-days", "data-location"]
    location = n.s.commitments["data-location"]
    assert (location.status, location.due, location.deliveries, location.offer.option) == ("open", None, 0, "NL")
    assert (location.offer.round, location.offer.demand_version) == (2, 2)
    assert (n.s.commitments["no-ads"].status, n.s.commitments["no-ads"].met_at) == ("open", None)
    retention = n.s.commitments["retention-days"]
    assert (retention.status, retention.due, retention.deliveries) == ("delivered", day(20), 1)
    assert n.s.reopened == ()
    # And the plan needs dates for the new commitments only; a delivered or met one is not planned
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(5), "data-location": day(5),
                                                                    "retention-days": day(5)}))  # fmt: skip
    assert (refused.status, refused.field) == (422, "items[2].key")
    assert refused.detail == "items[2].key: retention-days is delivered: only open work is planned"
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"no-ads": day(5)}))
    assert (refused.field, refused.detail[-22:]) == ("items", "missing: data-location")


def test_a_met_commitment_is_not_planned_again() -> None:
    n = implementing().deliver("no-ads").verdict("no-ads")
    renegotiate(n, "data-location")
    refused = refusal(n, PlanCommitments, VENDOR, items=plan_of(**{"data-location": day(5), "no-ads": day(5)}))
    assert (refused.status, refused.field) == (422, "items[1].key")
    assert "no-ads is met: only open work is planned" in refused.detail


def test_work_on_the_standing_commitments_goes_on_during_a_reopening() -> None:
    # Given a reopening on data-location
    n = implementing().reopen("data-location")
    # Then the vendor delivers no-ads, members check it, the coordinator finds it met, the hub ticks
    n.deliver("no-ads").check(M1, "no-ads", "met").verdict("no-ads").tick(day(21))
    assert statuses(n) == {"no-ads": "met", "retention-days": "overdue"}
    # Also while the coalition endorses the new version
    n.publish().respond(accept("data-location")).propose()
    assert n.s.phase == "endorsing"
    n.deliver("retention-days")
    assert n.s.commitments["retention-days"].status == "delivered"


def test_a_pending_plan_is_dropped_by_a_reopening() -> None:
    n = agreed().plan().reopen("no-ads")
    assert (n.s.plan, n.s.phase) == (None, "negotiating")
    assert refusal(n, AcceptPlan, COORDINATOR).status == 409


@pytest.mark.parametrize(("by", "status"), [(M1, 403), (VENDOR, 403), (OUTSIDER, 404)])
def test_only_the_coordinator_reopens(by: str, status: int) -> None:
    refused = refusal(implementing(), Reopen, by, items=("no-ads",))
    assert refused.status == status
    if status == 403:
        assert "may not reopen the negotiation; this needs the coordinator" in refused.detail


def test_a_reopening_names_commitments_once_while_the_agreement_stands() -> None:
    n = implementing()
    refused = refusal(n, Reopen, COORDINATOR, items=("no-ads", "dpia"))
    assert (refused.status, refused.field) == (422, "items[1]")
    assert "'dpia' is not a commitment of the agreement" in refused.detail
    refused = refusal(n, Reopen, COORDINATOR, items=("no-ads", "no-ads"))
    assert (refused.status, refused.field) == (422, "items[1]")
    assert "'no-ads' is named more than once" in refused.detail
    # Not while it is being renegotiated already
    n.reopen("no-ads")
    refused = refusal(n, Reopen, COORDINATOR, items=("retention-days",))
    assert refused.status == 409
    assert "cannot reopen the negotiation while the negotiation is negotiating" in refused.detail
    # But from each phase of a standing agreement: agreed, implementing, fulfilled
    fulfilled = implementing()
    for key in list(fulfilled.s.commitments):
        fulfilled.deliver(key).verdict(key)
    for standing in (agreed(), implementing(), fulfilled):
        assert standing.reopen("retention-days").s.phase == "negotiating"


def test_a_reopened_item_the_vendor_now_rejects_is_no_commitment() -> None:
    n = implementing().reopen("data-location", "no-ads").publish()
    n.respond(reject("data-location"), accept("no-ads")).propose().endorse(M1, "accept").endorse(M2, "accept")
    assert list(n.s.commitments) == ["no-ads", "retention-days"]


# -- the whole lifecycle, and what each party is told ------------------------------------------------


def lifecycle() -> Negotiation:
    """Plan rejected, plan accepted, a delivery checked and found not met, overdue, delivered again,
    every commitment met (fulfilled), a regression, and a reopening."""
    n = agreed()
    n.plan({"no-ads": 30, "retention-days": 30, "data-location": 30}).reject_plan("No-ads within ten days")
    n.plan({"no-ads": 10, "retention-days": 20, "data-location": 30}).accept_plan()
    n.deliver("no-ads", "Ads are off").check(M1, "no-ads", "met").check(M2, "no-ads", "not_met", "Mobile ads")
    n.verdict("no-ads", "not_met", "The mobile app still shows ads")
    n.at(day(11)).tick(day(11))
    n.deliver("no-ads", "Mobile ads are off too").check(M2, "no-ads", "met").verdict("no-ads")
    n.deliver("retention-days").verdict("retention-days").deliver("data-location").verdict("data-location")
    n.at(day(40)).regress(M2, "no-ads", "Ads are back").reopen("no-ads", reason="Ads came back")
    return n


def test_a_lifecycle_from_agreement_to_fulfilment_and_reopening() -> None:
    n = lifecycle()
    assert [e.type for e in n.events if e.sequence > agreed().s.sequence] == [
        "CommitmentsPlanned", "PlanRejected", "CommitmentsPlanned", "PlanAccepted",
        "CommitmentDelivered", "CommitmentChecked", "CommitmentChecked", "CommitmentVerdictGiven",
        "CommitmentOverdue",
        "CommitmentDelivered", "CommitmentChecked", "CommitmentVerdictGiven",
        "CommitmentDelivered", "CommitmentVerdictGiven", "CommitmentDelivered", "CommitmentVerdictGiven",
        "AgreementFulfilled",
        "RegressionReported", "NegotiationReopened",
    ]  # fmt: skip
    assert n.s.phase == "negotiating"
    assert statuses(n) == {"retention-days": "met", "data-location": "met"}


def told_after_agreement(viewer: Audience) -> list[tuple[str, list[str]]]:
    n = lifecycle()
    return narrate(n, viewer)[len(narrate(agreed(), viewer)) :]


def test_the_coordinator_is_told_every_step_with_names_and_figures() -> None:
    assert told_after_agreement(COORDINATOR_SEES) == [
        ("CommitmentsPlanned", ["The vendor proposed plan 1 for 3 commitments, first due 2025-03-31 12:00 UTC: "
                                "decide on it."]),
        ("PlanRejected", ["The vendor's plan 1 was rejected."]),
        ("CommitmentsPlanned", ["The vendor proposed plan 2 for 3 commitments, first due 2025-03-11 12:00 UTC: "
                                "decide on it."]),
        ("PlanAccepted", ["The vendor's plan 2 is accepted: implementation has started."]),
        ("CommitmentDelivered", ["The vendor delivered no-ads: weigh the checks and give a verdict."]),
        ("CommitmentChecked", ["University One checked no-ads: met (50% met, 0% not met)."]),
        ("CommitmentChecked", ["College Two checked no-ads: not met (50% met, 25% not met)."]),
        ("CommitmentVerdictGiven", ["no-ads is not met: a new delivery is needed."]),
        ("CommitmentOverdue", ["no-ads is overdue: it was due 2025-03-11 12:00 UTC."]),
        ("CommitmentDelivered", ["The vendor delivered no-ads: weigh the checks and give a verdict."]),
        ("CommitmentChecked", ["College Two checked no-ads: met (25% met, 0% not met)."]),
        ("CommitmentVerdictGiven", ["no-ads is met."]),
        ("CommitmentDelivered", ["The vendor delivered retention-days: weigh the checks and give a verdict."]),
        ("CommitmentVerdictGiven", ["retention-days is met."]),
        ("CommitmentDelivered", ["The vendor delivered data-location: weigh the checks and give a verdict."]),
        ("CommitmentVerdictGiven", ["data-location is met."]),
        ("AgreementFulfilled", ["All 3 commitments are met: the agreement is fulfilled."]),
        ("RegressionReported", ['College Two reports that no-ads no longer holds: "Ads are back"']),
        ("NegotiationReopened", ["The negotiation is reopened on no-ads."]),
    ]  # fmt: skip


def test_a_member_is_told_of_plans_deliveries_verdicts_overdue_items_and_only_its_own_checks() -> None:
    assert told_after_agreement(M1_SEES) == [
        ("CommitmentsPlanned", ["The vendor proposed an action plan for 3 commitments."]),
        ("PlanRejected", ["The vendor's plan 1 was rejected."]),
        ("CommitmentsPlanned", ["The vendor proposed an action plan for 3 commitments."]),
        ("PlanAccepted", ["The vendor's plan 2 is accepted: implementation has started."]),
        ("CommitmentDelivered", ["The vendor delivered no-ads: check it in your own environment."]),
        ("CommitmentChecked", ["Your check of no-ads is recorded: met."]),
        ("CommitmentVerdictGiven", ["no-ads is not met: a new delivery is needed."]),
        ("CommitmentOverdue", ["no-ads is overdue: it was due 2025-03-11 12:00 UTC."]),
        ("CommitmentDelivered", ["The vendor delivered no-ads: check it in your own environment."]),
        ("CommitmentVerdictGiven", ["no-ads is met."]),
        ("CommitmentDelivered", ["The vendor delivered retention-days: check it in your own environment."]),
        ("CommitmentVerdictGiven", ["retention-days is met."]),
        ("CommitmentDelivered", ["The vendor delivered data-location: check it in your own environment."]),
        ("CommitmentVerdictGiven", ["data-location is met."]),
        ("AgreementFulfilled", ["All 3 commitments are met: the agreement is fulfilled."]),
        ("RegressionReported", ["A member reports that no-ads no longer holds."]),
        ("NegotiationReopened", ["The negotiation is reopened on no-ads."]),
    ]
    # And the reporting member is told its report is recorded
    assert ("RegressionReported", ["Your report that no-ads no longer holds is recorded."]) in told_after_agreement(
        M2_SEES
    )


def test_the_vendor_is_told_of_its_plans_and_deliveries_the_verdicts_and_overdue_items_not_of_checks() -> None:
    told = told_after_agreement(VENDOR_SEES)
    assert told == [
        ("CommitmentsPlanned", ["Your plan 1 is recorded (3 commitments)."]),
        ("PlanRejected", ['Your plan 1 was rejected: "No-ads within ten days". Plan again.']),
        ("CommitmentsPlanned", ["Your plan 2 is recorded (3 commitments)."]),
        ("PlanAccepted", ["Your plan 2 is accepted: implementation has started."]),
        ("CommitmentDelivered", ["Your delivery of no-ads is recorded."]),
        ("CommitmentVerdictGiven", ["no-ads is not met: a new delivery is needed."]),
        ("CommitmentOverdue", ["no-ads is overdue: it was due 2025-03-11 12:00 UTC."]),
        ("CommitmentDelivered", ["Your delivery of no-ads is recorded."]),
        ("CommitmentVerdictGiven", ["no-ads is met."]),
        ("CommitmentDelivered", ["Your delivery of retention-days is recorded."]),
        ("CommitmentVerdictGiven", ["retention-days is met."]),
        ("CommitmentDelivered", ["Your delivery of data-location is recorded."]),
        ("CommitmentVerdictGiven", ["data-location is met."]),
        ("AgreementFulfilled", ["All 3 commitments are met: the agreement is fulfilled."]),
        ("NegotiationReopened", ["The negotiation is reopened on no-ads."]),
    ]
    # Even asked directly, the vendor's notices of a check or a regression are empty
    n = lifecycle()
    for event in n.events:
        if event.type in ("CommitmentChecked", "RegressionReported"):
            assert notices(Figures(0.0, {}), n.s, event, VENDOR_SEES) == ()


def test_the_commitments_document_for_each_party() -> None:
    # Given the lifecycle's end: reopened on no-ads, the other two met
    n = lifecycle()
    for viewer in (COORDINATOR_SEES, M1_SEES, M2_SEES, VENDOR_SEES):
        document = commitments(n.s, viewer)
        assert (document.phase, document.reopened, document.plan) == ("negotiating", ("no-ads",), None)
        assert [c.key for c in document.commitments] == ["retention-days", "data-location"]
    # The vendor's holds no member's name, check or comment
    vendors = commitments(n.s, VENDOR_SEES).model_dump_json()
    assert not [secret for secret in [*NAMES, *NAMES.values(), "Mobile ads", "Ads are back"] if secret in vendors]


# -- an agreement after a reopening that leaves nothing to plan --------------------------------------


def test_a_new_agreement_with_nothing_new_to_plan_goes_on_in_implementation() -> None:
    # Given implementation with no-ads met, and a reopening on data-location
    n = implementing().deliver("no-ads").verdict("no-ads").reopen("data-location").publish()
    # When the vendor now rejects data-location and the coalition agrees all the same
    n.respond(reject("data-location")).propose().endorse(M1, "accept").endorse(M2, "accept")
    # Then nothing new is promised and the planned work goes on: implementing, not stuck in agreed
    assert n.s.phase == "implementing"
    assert statuses(n) == {"no-ads": "met", "retention-days": "open"}
    n.deliver("retention-days").verdict("retention-days")
    assert n.s.phase == "fulfilled"


def test_a_new_agreement_that_leaves_only_met_commitments_fulfils_the_agreement() -> None:
    # Given every commitment but data-location met, and data-location reopened
    n = implementing().deliver("no-ads").verdict("no-ads").deliver("retention-days").verdict("retention-days")
    n.reopen("data-location").publish()
    # When the vendor rejects it and the coalition agrees all the same
    n.respond(reject("data-location")).propose().endorse(M1, "accept").endorse(M2, "accept")
    # Then the agreement is fulfilled at once, as one more event of the endorsement that decided it
    assert [e.type for e in n.events[-3:]] == ["EndorsementGiven", "AgreementReached", "AgreementFulfilled"]
    assert n.s.phase == "fulfilled"
    assert replay(n.events) is not None and replay(n.events).phase == "fulfilled"  # type: ignore[union-attr]


def test_a_tick_that_names_a_person_is_no_tick_of_the_scheduler() -> None:
    n = implementing()
    tick = n.command(Tick, HUB, now=day(31))
    person = ActingPerson(id="person_x", name="Somebody", role="owner", salt="0" * 32)
    tick = tick.model_copy(update={"actor": tick.actor.model_copy(update={"person": person})})
    assert n.refuse(tick).status == 403


def test_the_ocds_release_after_a_reopening_describes_the_whole_agreement() -> None:
    # Given a reopening of data-location, agreed again with the vendor's EU counter accepted now
    n = implementing().reopen("data-location").publish()
    n.respond(accept("data-location")).propose().endorse(M1, "accept").endorse(M2, "accept")
    document = release(n.s, "ocds-test")
    # Then the award holds every item of the agreement (the reopened one as agreed last), and the
    # tender names both agreed versions
    awarded = [i["koopkracht"]["key"] for i in document["awards"][0]["items"]]
    assert awarded == ["no-ads", "retention-days", "data-location", "dpia"]
    assert [i["koopkracht"]["verdict"] for i in document["awards"][0]["items"]][2] == "accept"
    assert "version 1" in document["tender"]["description"] and "version 2" in document["tender"]["description"]
    assert [m["koopkracht"]["key"] for m in document["contracts"][0]["implementation"]["milestones"]] == [
        "no-ads",
        "retention-days",
        "data-location",
    ]


def test_after_a_reopening_the_vendor_answers_only_the_version_of_the_reopened_items() -> None:
    # Given a reopening on data-location, before the coordinator publishes the next version
    n = implementing().reopen("data-location")
    assert n.s.awaiting_reopened_version
    # When the vendor answers version 1 again (which the agreement settled)
    refused = refusal(n, RespondToDemand, VENDOR, demand_version=1, items=(counter("no-ads"),))
    # Then it is refused, and once version 2 is out it answers that one
    assert (refused.status, refused.detail.startswith("the negotiation was reopened: answer the next")) == (409, True)
    n.publish().respond(accept("data-location"))
    assert not n.s.awaiting_reopened_version and n.s.round == 2


def test_a_tick_from_a_clock_ahead_of_the_hubs_is_refused_and_changes_nothing() -> None:
    # Given implementation with no-ads due in 10 days, and a worker whose clock reads day 0
    n = implementing()
    # When a scheduler whose clock jumped a year ahead ticks
    refused = refusal(n, Tick, HUB, now=day(365))
    # Then it is refused as invalid, naming both clocks, and nothing is overdue
    assert (refused.status, refused.field) == (422, "now")
    assert "ahead of the hub's clock" in refused.detail
    assert set(statuses(n).values()) == {"open"}
    # (a few minutes of skew between the scheduler's host and the worker's is fine)
    assert refusal(n, Tick, HUB, now=day(0) + timedelta(minutes=4)).status == 409  # nothing overdue yet


def test_an_agreement_waits_for_fulfilment_while_a_regression_report_awaits_a_verdict() -> None:
    # Given no-ads met and a regression reported on it, and the other commitments met after
    n = implementing().deliver("no-ads").verdict("no-ads").regress(M1, "no-ads")
    n.deliver("retention-days").verdict("retention-days").deliver("data-location").verdict("data-location")
    # Then the agreement is not fulfilled while the report awaits the coordinator's verdict
    assert n.s.phase == "implementing"
    # When the coordinator finds it unfounded, the agreement is fulfilled
    n.verdict("no-ads", "met")
    assert n.s.phase == "fulfilled"


def test_a_plan_dates_commitments_within_a_century() -> None:
    n = agreed()
    far = plan_of(**{"no-ads": day(101 * 365), "retention-days": day(10), "data-location": day(10)})
    refused = refusal(n, PlanCommitments, VENDOR, items=far)
    assert (refused.status, refused.field) == (422, "items[0].due")
    assert refused.detail.endswith("must be within 100 years")


def test_after_a_reopening_an_agreement_needs_the_vendors_answer_to_the_reopened_items() -> None:
    # Given a reopening on data-location, and the version of the reopened items published
    n = implementing().reopen("data-location").publish()
    # When the coordinator proposes before the vendor answered that version
    refused = refusal(n, ProposeAgreement, COORDINATOR)
    # Then it is refused: the agreement would take the vendor's old offer on the reopened item
    assert (refused.status, refused.detail) == (
        409,
        "the negotiation was reopened: the vendor has not answered the demand version of the reopened items yet",
    )
    n.respond(accept("data-location")).propose()
    assert n.s.phase == "endorsing"


@pytest.mark.parametrize(
    "text",
    ["4102444800", "20270101", "2027-W01-1", "2027-02-30", "2027-03-31T17:00:00", "9999-12-31T23:59:59-05:00"],
)
def test_a_due_date_is_a_date_or_a_date_time_with_its_zone_within_the_calendar(text: str) -> None:
    # A number is not read as a Unix time, nor a compact or week date as a day, nor a time without zone
    value: Any = int(text) if text.isdigit() and len(text) > 8 else text
    with pytest.raises(ValidationError):
        PlannedCommitment(key="no-ads", due=value)


def test_a_hidden_events_hash_cannot_confirm_a_guess_without_the_commands_salt() -> None:
    # Given the same check sent twice by m2's integration key, with the same (guessable) command id,
    # once with a salt and once with another
    n = implementing().deliver("no-ads")
    hashes = []
    for salt in ("a" * 32, "b" * 32):
        command = n.command(CheckCommitment, M2, command_id="check-1", item_key="no-ads", verdict="not_met")
        command = command.model_copy(update={"actor": command.actor.model_copy(update={"salt": salt})})
        (event,) = decide(n.s, command, n.context).events
        assert event.salt == salt
        hashes.append(event.hash)
    # Then the hashes differ: whoever knows all but the salt (128 random bits) cannot confirm the event
    assert hashes[0] != hashes[1]


def test_a_command_with_a_nul_character_in_a_text_is_refused() -> None:
    # PostgreSQL keeps no NUL in a text: such a command would stop the read model once in the log
    n = implementing()
    with pytest.raises(ValidationError, match="NUL"):
        n.command(DeliverCommitment, VENDOR, item_key="no-ads", evidence="done\x00")


def test_a_reopening_of_every_commitment_that_the_vendor_then_rejects_leaves_the_agreement_fulfilled() -> None:
    # Given every commitment reopened, and the vendor rejecting every one in the next version
    n = implementing().reopen("no-ads", "retention-days", "data-location").publish()
    n.respond(reject("no-ads"), reject("retention-days"), reject("data-location"))
    n.propose().endorse(M1, "accept").endorse(M2, "accept")
    # Then nothing is promised and nothing stands: the agreement has nothing left to do
    assert (n.s.commitments, n.s.phase) == ({}, "fulfilled")


def test_an_event_cut_for_a_member_carries_no_salt() -> None:
    # Given m2's endorsement that reaches the agreement, without transparency
    n = agreed()
    reached = next(e for e in n.events if e.type == "AgreementReached")
    salted = reached.model_copy(update={"salt": "c" * 32})
    # Then m1, which sees it without who tipped it, sees no salt either; the coordinator does
    assert "salt" not in (event_view(n.s, salted, M1_SEES) or {})
    assert "salt" not in (event_view(n.s, salted, VENDOR_SEES) or {})
    assert (event_view(n.s, salted, COORDINATOR_SEES) or {})["salt"] == "c" * 32
