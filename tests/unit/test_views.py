"""Confidentiality (SPEC section 1): what the vendor and each member may see of a negotiation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from schemas.documents import SUPPORT_FIGURES, PublishedItem, SharedState
from schemas.events import EVENT_TYPES, Event
from schemas.negotiation import Policy
from streams.codec import encode_state
from streams.core.decider import version_hash
from streams.core.state import evolve
from streams.core.views import (
    Audience,
    StateDocumentCache,
    commitments,
    event_view,
    positions,
    shared_state,
    summary,
    version_view,
)
from tests.unit.builders import COORDINATOR, NOW, VENDOR, Negotiation, accept, counter, item

ZWANENBURG, KRAAIENVELD = "uni-zwanenburg", "hs-kraaienveld"
NAMES = {ZWANENBURG: "Universiteit Zwanenburg", KRAAIENVELD: "Hogeschool Kraaienveld"}
WEIGHTS = {ZWANENBURG: 7919, KRAAIENVELD: 104729}  # W = 112648
RATIONALES = {ZWANENBURG: "Zwanenburg board fears US subpoenas", KRAAIENVELD: "Kraaienveld budget cut in 2026"}
ENDORSEMENT_COMMENT = "Kraaienveld legal signs off reluctantly"
CHECK_COMMENTS = {
    ZWANENBURG: "Zwanenburg's auditors were let in",
    KRAAIENVELD: "Kraaienveld's auditors were turned away",
}
REGRESSION_COMMENT = "Zwanenburg's audit was refused again"
SECRETS = [*NAMES, *NAMES.values(), *RATIONALES.values(), ENDORSEMENT_COMMENT, *CHECK_COMMENTS.values(),
           REGRESSION_COMMENT]  # fmt: skip

VENDOR_SEES = Audience("vendor", VENDOR)
ZWANENBURG_SEES = Audience("member", ZWANENBURG)
KRAAIENVELD_SEES = Audience("member", KRAAIENVELD)

ITEMS = (
    item("audit-rights"),
    item("retention-days", "at_most"),
    item("uptime", "at_least"),
    item("data-location", "one_of"),
)


def full_negotiation(policy: Policy | None = None) -> Negotiation:
    """Every event type but NegotiationAbandoned: a rejected proposal, then an agreement."""
    n = Negotiation(*ITEMS, policy=policy)
    for member, name in NAMES.items():
        n.invite(member, WEIGHTS[member], name)
    n.position(ZWANENBURG, "audit-rights", "must", rationale=RATIONALES[ZWANENBURG])
    n.position(ZWANENBURG, "data-location", "should", accepted=("NL", "EU"), rationale=RATIONALES[ZWANENBURG])
    n.position(KRAAIENVELD, "retention-days", "must", 30, rationale=RATIONALES[KRAAIENVELD])
    n.position(KRAAIENVELD, "data-location", "must", accepted=("EU",), rationale=RATIONALES[KRAAIENVELD])
    n.position(KRAAIENVELD, "uptime", "could", 99.5, rationale=RATIONALES[KRAAIENVELD])
    n.withdraw(KRAAIENVELD, "uptime")
    n.policy(**{**(policy.model_dump() if policy else {}), "coverage": "9/10"})
    n.publish().ask("retention-days", "Does backup retention count?").answer(1, "Yes, it does.")
    n.respond(accept("audit-rights"), counter("retention-days", value=30), accept("data-location")).propose()
    n.endorse(ZWANENBURG, "reject", comment=ENDORSEMENT_COMMENT)
    n.endorse(KRAAIENVELD, "reject", comment=ENDORSEMENT_COMMENT)
    n.propose().endorse(KRAAIENVELD, "accept", comment=ENDORSEMENT_COMMENT)
    assert n.s.phase == "agreed"
    return n


def implemented_negotiation(policy: Policy | None = None) -> Negotiation:
    """The agreement carried out (SPEC 9): every event type after it, from a rejected plan to a reopening."""
    n = full_negotiation(policy)
    due = {"audit-rights": 10, "retention-days": 20, "data-location": 30}
    n.plan(due).reject_plan("Audit rights within five days").plan({**due, "audit-rights": 5}).accept_plan()
    n.deliver("audit-rights", "Audit clause in the contract")
    for member in (ZWANENBURG, KRAAIENVELD):
        n.check(member, "audit-rights", "met" if member == ZWANENBURG else "not_met", CHECK_COMMENTS[member])
    n.verdict("audit-rights", "not_met", "Auditors must be let in everywhere")
    n.at(NOW + timedelta(days=6)).tick(NOW + timedelta(days=6))
    n.deliver("audit-rights", "Auditors welcome on every site").check(KRAAIENVELD, "audit-rights", "met")
    n.verdict("audit-rights").deliver("retention-days").verdict("retention-days")
    n.deliver("data-location").verdict("data-location")
    assert n.s.phase == "fulfilled"
    n.regress(ZWANENBURG, "audit-rights", REGRESSION_COMMENT).reopen("audit-rights", reason="Audits refused again")
    return n


def abandoned_negotiation() -> Negotiation:
    n = Negotiation(*ITEMS, negotiation_id="neg-2")
    n.invite(ZWANENBURG, WEIGHTS[ZWANENBURG], NAMES[ZWANENBURG])
    n.position(ZWANENBURG, "audit-rights", "must", rationale=RATIONALES[ZWANENBURG])
    return n.abandon("The vendor would not move")


@pytest.fixture(scope="module")
def negotiations() -> tuple[Negotiation, Negotiation]:
    return full_negotiation(), abandoned_negotiation()


@pytest.fixture(scope="module")
def implemented() -> Negotiation:
    return implemented_negotiation()


def numbers(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


def assert_no_member_secrets(document: Any) -> None:
    """No member id, name, rationale or endorsement comment in the text; no weight among the numbers."""
    data = json.loads(document.model_dump_json()) if hasattr(document, "model_dump_json") else document
    text = json.dumps(data, ensure_ascii=False)
    leaked = [secret for secret in SECRETS if secret in text]
    assert leaked == [], f"leaked {leaked} in {text}"
    assert '"weight"' not in text
    assert not set(WEIGHTS.values()) & set(numbers(data)), text


# -- the vendor ----------------------------------------------------------------------------------


def test_the_scenario_covers_every_event_type(
    negotiations: tuple[Negotiation, Negotiation], implemented: Negotiation
) -> None:
    assert {e.type for n in (*negotiations, implemented) for e in n.events} == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_the_vendor_never_sees_member_identities_weights_or_rationales_in_events(
    negotiations: tuple[Negotiation, Negotiation], implemented: Negotiation, event_type: str
) -> None:
    for n in (*negotiations, implemented):
        for event in n.events:
            if event.type != event_type:
                continue
            view = event_view(n.s, event, VENDOR_SEES)
            if view is not None:
                assert_no_member_secrets(view)


@pytest.mark.parametrize(
    "event_type", ["MemberInvited", "PolicyChanged", "PositionStated", "PositionWithdrawn", "EndorsementGiven"]
)
def test_member_conduct_and_the_policy_are_not_in_the_vendor_feed(
    negotiations: tuple[Negotiation, Negotiation], event_type: str
) -> None:
    n, _ = negotiations
    events = [e for e in n.events if e.type == event_type]
    assert events
    assert [event_view(n.s, e, VENDOR_SEES) for e in events] == [None] * len(events)


def test_the_vendor_sees_the_opening_without_the_policy_and_the_outcome_without_shares(
    negotiations: tuple[Negotiation, Negotiation],
) -> None:
    n, _ = negotiations
    opened = event_view(n.s, n.events[0], VENDOR_SEES)
    assert opened is not None
    assert "policy" not in opened
    assert opened["title"] == "Cloud suite privacy terms"
    reached = event_view(n.s, n.events[-1], VENDOR_SEES)
    assert reached is not None
    assert "accepting_share" not in reached
    assert "rejecting_share" not in reached


def test_the_vendors_documents_hold_no_member_secrets(negotiations: tuple[Negotiation, Negotiation]) -> None:
    n, _ = negotiations
    state = shared_state(n.s, VENDOR_SEES)
    assert (state.cohesion, state.satisfaction) == (None, None)
    assert_no_member_secrets(state)
    overview = summary(n.s, VENDOR_SEES)
    assert (overview.members, overview.policy) == (None, None)
    assert_no_member_secrets(overview)
    for version in n.s.versions:
        view = version_view(n.s, version, VENDOR_SEES)
        assert [(i.support_share, i.must_share) for i in view.items] == [(None, None)] * len(view.items)
        assert_no_member_secrets(view)
    assert positions(n.s, VENDOR_SEES) == []


def test_the_vendor_can_check_each_version_hash_from_what_it_sees(
    negotiations: tuple[Negotiation, Negotiation],
) -> None:
    # Given the published versions as the vendor sees them, support figures hidden
    n, _ = negotiations
    for version in n.s.versions:
        view = version_view(n.s, version, VENDOR_SEES)
        hidden = {name for name in PublishedItem.model_fields if getattr(view.items[0], name) is None}
        assert hidden >= SUPPORT_FIGURES
        # Then the hash over what it sees is the version's hash: exactly the hidden figures are left out
        assert version_hash(n.s.negotiation_id, version.version, view.items) == version.hash


def test_the_vendor_sees_support_shares_when_the_policy_discloses_them() -> None:
    # Given the coalition discloses support to the vendor
    n = full_negotiation(Policy(disclose_support_to_vendor=True))
    version = n.s.versions[0]
    # Then the vendor's copy of version 1 carries the shares: audit-rights 7919/112648, all must
    audit = next(i for i in version_view(n.s, version, VENDOR_SEES).items if i.key == "audit-rights")
    assert (audit.support_share, audit.must_share) == (7919 / 112648, 7919 / 112648)
    published = next(e for e in n.events if e.type == "DemandPublished")
    view = event_view(n.s, published, VENDOR_SEES)
    assert view is not None
    location = next(i for i in view["items"] if i["key"] == "data-location")
    assert (location["support_share"], location["must_share"]) == (1.0, 104729 / 112648)
    # and still no identities or weights
    assert_no_member_secrets(version_view(n.s, version, VENDOR_SEES))


# -- members -----------------------------------------------------------------------------------


def position_owners(n: Negotiation, viewer: Audience) -> set[tuple[str, str]]:
    return {(p.member_id, p.item_key) for p in positions(n.s, viewer)}


def test_a_member_sees_only_its_own_positions_by_default(negotiations: tuple[Negotiation, Negotiation]) -> None:
    n, _ = negotiations
    seen = positions(n.s, ZWANENBURG_SEES)
    assert {(p.member_id, p.item_key) for p in seen} == {(ZWANENBURG, "audit-rights"), (ZWANENBURG, "data-location")}
    assert {p.rationale for p in seen} == {RATIONALES[ZWANENBURG]}
    # and the coordinator sees all, rationales included
    everything = positions(n.s, Audience("coordinator", COORDINATOR))
    assert len(everything) == 4
    assert {p.rationale for p in everything} == set(RATIONALES.values())


def test_with_transparent_positions_members_see_others_but_not_their_rationales() -> None:
    n = full_negotiation(Policy(transparent_positions=True))
    seen = positions(n.s, ZWANENBURG_SEES)
    assert {(p.member_id, p.item_key) for p in seen} == {
        (ZWANENBURG, "audit-rights"),
        (ZWANENBURG, "data-location"),
        (KRAAIENVELD, "retention-days"),
        (KRAAIENVELD, "data-location"),
    }
    rationales = {p.member_id: p.rationale for p in seen}
    assert rationales == {ZWANENBURG: RATIONALES[ZWANENBURG], KRAAIENVELD: None}


def member_feed(n: Negotiation, viewer: Audience) -> list[dict[str, Any]]:
    return [view for e in n.events if (view := event_view(n.s, e, viewer)) is not None]


def conduct_of(feed: list[dict[str, Any]], member: str) -> list[dict[str, Any]]:
    return [v for v in feed if v.get("actor_id") == member and ("position" in v or "item_key" in v or "decision" in v)]


def test_a_members_feed_hides_other_members_conduct_unless_transparent(
    negotiations: tuple[Negotiation, Negotiation],
) -> None:
    # Given default policy: Zwanenburg's feed has none of Kraaienveld's positions or endorsements
    n, _ = negotiations
    feed = member_feed(n, ZWANENBURG_SEES)
    assert conduct_of(feed, KRAAIENVELD) == []
    assert len(conduct_of(feed, ZWANENBURG)) == 3  # two positions and one endorsement
    assert RATIONALES[KRAAIENVELD] not in json.dumps(feed)
    assert RATIONALES[ZWANENBURG] in json.dumps(feed)


def test_the_outcome_in_a_members_feed_does_not_reveal_who_tipped_it(
    negotiations: tuple[Negotiation, Negotiation],
) -> None:
    # Given default policy, Zwanenburg may not see how Kraaienveld endorsed (its EndorsementGiven is hidden)
    n, _ = negotiations
    outcomes = [e for e in n.events if e.type in ("AgreementRejected", "AgreementReached")]
    assert [e.actor_id for e in outcomes] == [KRAAIENVELD, KRAAIENVELD]  # Kraaienveld's endorsements decided both
    # Then the outcome events in Zwanenburg's feed must not name Kraaienveld either: an AgreementRejected
    # "acted" by Kraaienveld tells that Kraaienveld rejected, an AgreementReached that it accepted
    views = [event_view(n.s, e, ZWANENBURG_SEES) for e in outcomes]
    assert all(view is not None for view in views)
    assert KRAAIENVELD not in json.dumps(views)


def test_a_members_feed_with_transparent_positions_shows_others_without_rationale_or_comment() -> None:
    n = full_negotiation(Policy(transparent_positions=True))
    feed = member_feed(n, ZWANENBURG_SEES)
    theirs = conduct_of(feed, KRAAIENVELD)
    # three positions, one withdrawal, two endorsements
    assert len(theirs) == 6
    text = json.dumps(theirs)
    assert RATIONALES[KRAAIENVELD] not in text
    assert ENDORSEMENT_COMMENT not in text
    assert {v["position"]["priority"] for v in theirs if "position" in v} == {"must", "could"}


def test_a_member_never_sees_another_members_rationale_anywhere() -> None:
    for policy in (Policy(), Policy(transparent_positions=True, disclose_support_to_vendor=True)):
        n = full_negotiation(policy)
        documents = [
            *member_feed(n, ZWANENBURG_SEES),
            [p.model_dump(mode="json") for p in positions(n.s, ZWANENBURG_SEES)],
            shared_state(n.s, ZWANENBURG_SEES).model_dump(mode="json"),
            summary(n.s, ZWANENBURG_SEES).model_dump(mode="json"),
            *(version_view(n.s, v, ZWANENBURG_SEES).model_dump(mode="json") for v in n.s.versions),
        ]
        assert RATIONALES[KRAAIENVELD] not in json.dumps(documents)


def test_a_members_shared_state_holds_only_its_own_satisfaction(
    negotiations: tuple[Negotiation, Negotiation],
) -> None:
    n, _ = negotiations
    # Kraaienveld's musts (retention 30 countered at 30, data-location accepted at {EU}) are met;
    # Zwanenburg's must on audit-rights was accepted: cohesion 1
    mine = shared_state(n.s, KRAAIENVELD_SEES)
    assert mine.satisfaction is not None
    assert [(s.organisation_id, s.satisfied, s.must_items) for s in mine.satisfaction] == [(KRAAIENVELD, True, 2)]
    assert mine.cohesion == 1.0
    everyone = shared_state(n.s, Audience("coordinator", COORDINATOR))
    assert everyone.satisfaction is not None
    assert {s.organisation_id for s in everyone.satisfaction} == {ZWANENBURG, KRAAIENVELD}


def test_events_in_the_feed_keep_their_data(negotiations: tuple[Negotiation, Negotiation]) -> None:
    # the coordinator's view of an event is the whole event minus its envelope
    n, _ = negotiations
    stated: Event = next(e for e in n.events if e.type == "PositionStated")
    view = event_view(n.s, stated, Audience("coordinator", COORDINATOR))
    assert view is not None
    assert view["position"]["rationale"] == RATIONALES[ZWANENBURG]
    assert {"event_id", "sequence", "occurred_at", "type"}.isdisjoint(view)


# -- after the agreement (SPEC 9) ---------------------------------------------------------------------

MEMBERS_OWN = {"CommitmentChecked", "RegressionReported"}


def after_agreement(n: Negotiation) -> list[Event]:
    agreed_at = next(e.sequence for e in n.events if e.type == "AgreementReached")
    return [e for e in n.events if e.sequence > agreed_at]


def test_the_vendor_sees_plans_deliveries_verdicts_overdue_items_the_reopening_and_fulfilment(
    implemented: Negotiation,
) -> None:
    n = implemented
    events = after_agreement(n)
    assert {e.type for e in events} == {t for t in EVENT_TYPES[EVENT_TYPES.index("CommitmentsPlanned") :]}
    for event in events:
        seen = event_view(n.s, event, VENDOR_SEES)
        # Then members' checks and regression reports are not in the vendor's feed at all
        if event.type in MEMBERS_OWN:
            assert seen is None, event.type
            continue
        # And everything else is, whole, without a trace of the members
        assert seen is not None, event.type
        assert seen == event_view(n.s, event, Audience("coordinator", COORDINATOR)), event.type
        assert_no_member_secrets(seen)
    rejected = next(e for e in events if e.type == "PlanRejected")
    assert (event_view(n.s, rejected, VENDOR_SEES) or {})["comment"] == "Audit rights within five days"
    overdue = next(e for e in events if e.type == "CommitmentOverdue")
    assert (event_view(n.s, overdue, VENDOR_SEES) or {})["item_key"] == "audit-rights"
    # And its counter numbers exactly the events it sees
    assert n.s.vendor_sequence == sum(1 for e in n.events if event_view(n.s, e, VENDOR_SEES) is not None)


@pytest.mark.parametrize("transparent", [False, True])
def test_a_member_sees_its_own_checks_and_reports_and_of_anothers_report_only_the_item(transparent: bool) -> None:
    # Given the agreement carried out, positions transparent or not
    n = implemented_negotiation(Policy(transparent_positions=transparent))
    coordinator = Audience("coordinator", COORDINATOR)
    for event in after_agreement(n):
        whole = event_view(n.s, event, coordinator)
        assert whole is not None  # the coordinator sees every event whole
        for viewer in (ZWANENBURG_SEES, KRAAIENVELD_SEES):
            seen = event_view(n.s, event, viewer)
            if event.type not in MEMBERS_OWN or event.actor_id == viewer.organisation_id:
                # Then its own checks and reports, and all the coordinator's, vendor's and hub's events, whole
                assert seen == whole, (event.type, viewer)
            elif event.type == "CommitmentChecked":
                # Another member's check: nothing, transparency or not
                assert seen is None, (event.type, viewer)
            else:
                # Another member's regression report: which commitment, no who, no comment
                assert seen == {"item_key": event.item_key}, (event.type, viewer)  # type: ignore[union-attr]
    # So Kraaienveld's feed holds no word of Zwanenburg's check or report
    feed = json.dumps(member_feed(n, KRAAIENVELD_SEES))
    assert CHECK_COMMENTS[KRAAIENVELD] in feed
    assert CHECK_COMMENTS[ZWANENBURG] not in feed and REGRESSION_COMMENT not in feed


def test_at_every_step_after_the_agreement_the_documents_keep_each_partys_secrets(implemented: Negotiation) -> None:
    # Given the states the carried-out agreement passed through
    n = Negotiation(*ITEMS)
    n.state = None
    others = {ZWANENBURG: KRAAIENVELD, KRAAIENVELD: ZWANENBURG}
    for event in implemented.events:
        n.state = evolve(n.state, event)
        if not n.s.commitments:
            continue
        # Then the vendor's documents never hold a member's name, weight, check or report
        assert_no_member_secrets(shared_state(n.s, VENDOR_SEES))
        assert_no_member_secrets(commitments(n.s, VENDOR_SEES))
        # And a member's never another member's check or report
        for member, other in others.items():
            viewer = Audience("member", member)
            text = shared_state(n.s, viewer).model_dump_json() + commitments(n.s, viewer).model_dump_json()
            assert CHECK_COMMENTS[other] not in text
            assert NAMES[other] not in text
            if member == KRAAIENVELD:
                assert REGRESSION_COMMENT not in text


# -- the state topic's document --------------------------------------------------------------------


def test_a_document_drawn_long_after_the_last_still_shows_every_change() -> None:
    # Given a negotiation whose state document was drawn once, early, through a cache
    n = Negotiation(*ITEMS)
    n.invite(ZWANENBURG, WEIGHTS[ZWANENBURG], NAMES[ZWANENBURG])
    documents = StateDocumentCache()
    early = SharedState.model_validate_json(encode_state(n.s, documents))
    drawn_at = n.s.touches.end
    # When more changes follow than the state's touch log keeps
    for days in range(30, 50):
        n.position(ZWANENBURG, "retention-days", "must", days)
    n.position(ZWANENBURG, "audit-rights", "must").publish().respond(counter("retention-days", value=49))
    assert n.s.touches.since(drawn_at) is None
    # Then the document drawn through the cache is the whole document, every change in it
    again = SharedState.model_validate_json(encode_state(n.s, documents))
    assert again == shared_state(n.s)
    assert again != early
    assert again.satisfaction is not None
    assert [(s.must_items, s.satisfied_must_items) for s in again.satisfaction] == [(2, 1)]
    assert next(i for i in again.items if i.key == "retention-days").status == "countered"
