"""The acting person in the pure core (SPEC section 10): a contributor acts for nobody, every
event names who sent its command, and only the acting organisation's people see who that was;
everybody else sees a salted digest that the hash chain still verifies with, and the vendor not
even that."""

from __future__ import annotations

import json
import typing
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.commands import (
    Abandon,
    AcceptPlan,
    ActingPerson,
    AnswerClarification,
    ChangePolicy,
    CheckCommitment,
    Command,
    DeliverCommitment,
    Endorse,
    GiveVerdict,
    InviteMember,
    OpenNegotiation,
    PlanCommitments,
    ProposeAgreement,
    PublishDemand,
    RejectPlan,
    Reopen,
    ReportRegression,
    RequestClarification,
    RespondToDemand,
    StatePosition,
    Tick,
    WithdrawPosition,
)
from schemas.events import Event
from schemas.negotiation import PlannedCommitment, Policy, Position
from streams.core.chain import json_hash, person_digest, sealed
from streams.core.decider import Rejection, decide
from streams.core.state import NegotiationState
from streams.core.views import Audience, chain_hashes, event_view
from tests.unit.builders import COORDINATOR, HUB, NOW, OUTSIDER, VENDOR, Negotiation, accept, item
from tests.unit.test_properties import FAST

M1, M2 = "m1", "m2"
COORDINATOR_SEES = Audience("coordinator", COORDINATOR)
VENDOR_SEES = Audience("vendor", VENDOR)
M1_SEES, M2_SEES = Audience("member", M1), Audience("member", M2)
EVERYBODY = (COORDINATOR_SEES, VENDOR_SEES, M1_SEES, M2_SEES)
ENVELOPE = {"event_id", "negotiation_id", "sequence", "occurred_at", "type", "previous_hash"}
"""What the change feed carries beside an event's data (``FeedEntry``)."""


def person(role: str = "approver", name: str = "Ada Lovelace", salt: str = "0" * 32, of: str = "p1") -> ActingPerson:
    return ActingPerson(id=f"person_{of}", name=name, role=role, salt=salt)  # type: ignore[arg-type]


def sent_by(command: Any, by: ActingPerson | None) -> Any:
    """The command, sent by ``by`` inside its organisation (None: by its integration key)."""
    return command.model_copy(update={"actor": command.actor.model_copy(update={"person": by})})


def negotiating() -> Negotiation:
    """Two members with positions, version 1 published, a clarification asked, round 1 answered."""
    n = Negotiation(item("no-ads"), item("retention-days", "at_most"))
    n.invite(M1, 2).invite(M2)
    n.position(M1, "no-ads").position(M2, "no-ads")
    n.publish().ask("no-ads", "Which ads?").respond(accept("no-ads"))
    return n


def endorsing() -> Negotiation:
    return negotiating().propose()


def agreed() -> Negotiation:
    """m1 (2 of 3) accepts: no-ads is the agreement's one commitment."""
    return endorsing().endorse(M1, "accept")


def implementing() -> Negotiation:
    """no-ads due in 30 days."""
    return agreed().plan({"no-ads": 30}).accept_plan()


def delivered() -> Negotiation:
    return implementing().deliver("no-ads")


def met() -> Negotiation:
    return delivered().verdict("no-ads")


# For every command: a state in which its organisation may send it, and the command. A command
# class missing here fails ``test_every_command_type_has_a_sample``: a new command gets its check.
SAMPLES: dict[type[Any], Callable[[], tuple[NegotiationState | None, Any]]] = {
    OpenNegotiation: lambda: (
        None,
        negotiating().command(
            OpenNegotiation,
            COORDINATOR,
            title="Another",
            vendor_id=VENDOR,
            vendor_name="Contoso Cloud",
            items=(item("no-ads"),),
        ),
    ),
    InviteMember: lambda: (
        (n := negotiating()).s,
        n.command(InviteMember, COORDINATOR, organisation_id="m3", name="Member m3", weight=1),
    ),
    ChangePolicy: lambda: (
        (n := negotiating()).s,
        n.command(ChangePolicy, COORDINATOR, policy=Policy(transparent_positions=True)),
    ),
    StatePosition: lambda: (
        (n := negotiating()).s,
        n.command(StatePosition, M1, item_key="retention-days", position=Position(priority="must", value=Fraction(30))),
    ),
    WithdrawPosition: lambda: ((n := negotiating()).s, n.command(WithdrawPosition, M1, item_key="no-ads")),
    PublishDemand: lambda: ((n := negotiating()).s, n.command(PublishDemand, COORDINATOR)),
    RespondToDemand: lambda: (
        (n := negotiating()).s,
        n.command(RespondToDemand, VENDOR, demand_version=1, items=(accept("no-ads"),)),
    ),
    RequestClarification: lambda: (
        (n := negotiating()).s,
        n.command(RequestClarification, VENDOR, item_key="retention-days", question="How long?"),
    ),
    AnswerClarification: lambda: (
        (n := negotiating()).s,
        n.command(AnswerClarification, COORDINATOR, clarification_id=1, answer="All of them."),
    ),
    ProposeAgreement: lambda: ((n := negotiating()).s, n.command(ProposeAgreement, COORDINATOR)),
    Endorse: lambda: ((n := endorsing()).s, n.command(Endorse, M1, decision="accept")),
    Abandon: lambda: ((n := negotiating()).s, n.command(Abandon, COORDINATOR, reason="budget")),
    PlanCommitments: lambda: (
        (n := agreed()).s,
        n.command(PlanCommitments, VENDOR, items=(PlannedCommitment(key="no-ads", due=NOW + timedelta(days=9)),)),
    ),
    AcceptPlan: lambda: ((n := agreed().plan()).s, n.command(AcceptPlan, COORDINATOR)),
    RejectPlan: lambda: ((n := agreed().plan()).s, n.command(RejectPlan, COORDINATOR, comment="Sooner")),
    DeliverCommitment: lambda: (
        (n := implementing()).s,
        n.command(DeliverCommitment, VENDOR, item_key="no-ads", evidence="Ads are off"),
    ),
    CheckCommitment: lambda: ((n := delivered()).s, n.command(CheckCommitment, M2, item_key="no-ads", verdict="met")),
    GiveVerdict: lambda: ((n := delivered()).s, n.command(GiveVerdict, COORDINATOR, item_key="no-ads", verdict="met")),
    ReportRegression: lambda: ((n := met()).s, n.command(ReportRegression, M1, item_key="no-ads", comment="Back")),
    Reopen: lambda: ((n := implementing()).s, n.command(Reopen, COORDINATOR, items=("no-ads",))),
    # Sent by the hub's scheduler, as the admin: no organisation's person sends it (see below).
    Tick: lambda: ((n := implementing()).s, n.command(Tick, HUB, now=NOW + timedelta(days=31))),
}

ACTED_FOR_AN_ORGANISATION = sorted(set(SAMPLES) - {Tick}, key=lambda c: c.__name__)
"""The commands a party's people send. A tick is the hub's, sent by no person of any organisation:
the contributor rule has nothing to apply to (``test_only_the_hubs_scheduler_ticks`` is its check)."""


def command_classes() -> set[type[Any]]:
    """Every command class the worker accepts: the members of the ``Command`` union."""
    (union, *_) = typing.get_args(Command)
    return set(typing.get_args(union))


def test_every_command_type_has_a_sample() -> None:
    assert command_classes() == set(SAMPLES)


@pytest.mark.parametrize("command_type", ACTED_FOR_AN_ORGANISATION, ids=lambda c: c.__name__)
def test_a_contributor_may_send_no_command_while_its_approver_owner_and_integration_key_may(
    command_type: type[Any],
) -> None:
    # Given a state in which the command's organisation may send it
    state, command = SAMPLES[command_type]()
    # When a contributor of that organisation sends it
    with pytest.raises(Rejection) as refused:
        decide(state, sent_by(command, person("contributor")), negotiating().context)
    # Then it is refused as a role that may not act, saying who may
    assert refused.value.status == 403
    assert "a contributor may not" in refused.value.detail
    assert "an approver or owner" in refused.value.detail
    # While an approver, an owner and the organisation's integration key (no person) act, and
    # each event names who sent the command
    for by in (person("approver"), person("owner"), None):
        fresh_state, same = SAMPLES[command_type]()
        decision = decide(fresh_state, sent_by(same, by), negotiating().context)
        assert decision.events, f"{command_type.__name__} by {by} decided nothing"
        assert all(event.acting_person == by for event in decision.events)


@pytest.mark.parametrize("role", ["coordinator", "member", "vendor"])
@pytest.mark.parametrize("by", [COORDINATOR, M1, VENDOR, OUTSIDER, HUB])
def test_only_the_hubs_scheduler_ticks(by: str, role: str) -> None:
    # Given a state in which a commitment is overdue, and the hub's own tick decided there
    state, tick = SAMPLES[Tick]()
    context = replace(negotiating().context, now=tick.now)  # a worker whose clock reads the tick's time
    hubs = decide(state, tick, context)
    assert [e.type for e in hubs.events] == ["CommitmentOverdue"]
    assert hubs.events[0].acting_person is None
    # When the same tick comes from any actor that is not the admin, by whichever person or key
    for sender in (None, person("owner"), person("approver"), person("contributor")):
        forged = tick.model_copy(
            update={"actor": tick.actor.model_copy(update={"organisation_id": by, "role": role, "person": sender})}
        )
        # Then it is refused as a role that may not act, whoever's party the actor is
        with pytest.raises(Rejection) as refused:
            decide(state, forged, context)
        assert (refused.value.status, refused.value.detail) == (403, "only the hub's scheduler sends ticks")


def test_a_contributor_is_refused_even_for_a_command_id_already_decided() -> None:
    # Given a position an approver of m1 stated
    n = negotiating()
    stated = sent_by(n.command(StatePosition, M1, item_key="no-ads", position=Position(priority="should")), person())
    n.run(stated)
    # When a contributor sends a command with the same id (a retry of it, as the core sees it)
    retry = sent_by(stated, person("contributor", of="p2"))
    # Then the core refuses it rather than answering as if the contributor had acted
    with pytest.raises(Rejection) as refused:
        decide(n.s, retry, n.context)
    assert refused.value.status == 403
    # While the approver's own retry is recognised as the duplicate it is
    assert decide(n.s, stated, n.context).duplicate_of is not None


# -- who sees the acting person --------------------------------------------------------------


def acted_negotiation() -> tuple[Negotiation, dict[str, ActingPerson]]:
    """Transparent positions (so m2 sees m1's), each party's commands sent by a person of its own."""
    by = {
        COORDINATOR: person("owner", "Carla Coordinator", "c" * 32, of="coordinator"),
        M1: person("approver", "Ada Approver", "a" * 32, of="ada"),
        M2: person("owner", "Bram Owner", "b" * 32, of="bram"),
        VENDOR: person("approver", "Victor Vendor", "d" * 32, of="victor"),
    }
    n = Negotiation(item("no-ads"))
    n.state, n.events = None, []  # opened again below, by a person

    def run(command: Any) -> None:
        n.run(sent_by(command, by[command.actor.organisation_id]))

    run(
        n.command(
            OpenNegotiation,
            COORDINATOR,
            title="Cloud suite privacy terms",
            vendor_id=VENDOR,
            vendor_name="Contoso Cloud",
            items=(item("no-ads"),),
            policy=Policy(transparent_positions=True),
        )
    )
    run(n.command(InviteMember, COORDINATOR, organisation_id=M1, name="Member m1", weight=2))
    n.names[M1] = "Member m1"
    run(n.command(InviteMember, COORDINATOR, organisation_id=M2, name="Member m2", weight=1))
    n.names[M2] = "Member m2"
    run(n.command(StatePosition, M1, item_key="no-ads", position=Position(priority="must", rationale="ours")))
    run(n.command(StatePosition, M2, item_key="no-ads", position=Position(priority="should")))
    run(n.command(PublishDemand, COORDINATOR))
    run(n.command(RespondToDemand, VENDOR, demand_version=1, items=(accept("no-ads"),)))
    run(n.command(ProposeAgreement, COORDINATOR))
    run(n.command(Endorse, M1, decision="accept"))
    return n, by


def whole(event: Event, data: dict[str, Any]) -> dict[str, Any]:
    """The event's JSON as a reader rebuilds it from what it was shown: the data plus the envelope
    (the change feed carries the envelope beside the data)."""
    envelope = event.model_dump(mode="json", include=ENVELOPE)
    return {**data, **envelope}


def test_only_the_acting_organisation_sees_its_person_the_others_a_digest_and_the_vendor_nothing() -> None:
    n, by = acted_negotiation()
    names = [p.name for p in by.values()]
    for event in n.events:
        acting = by[event.actor_id]
        assert event.acting_person == acting
        for viewer in EVERYBODY:
            data = event_view(n.s, event, viewer)
            if data is None:
                continue
            shown = data.get("acting_person")
            if viewer.organisation_id == event.actor_id:
                # Then its own people see who acted, salt and all
                assert shown == acting.model_dump(mode="json"), (event.type, viewer)
            elif viewer.role == "vendor":
                # The vendor, which gets no hashes, does not even see the digest
                assert "acting_person" not in data, (event.type, viewer)
            elif shown is not None:
                # Everybody else: the salted digest the chain covers, nothing more
                assert shown == {"digest": person_digest(acting.model_dump(mode="json"))}, (event.type, viewer)
            if viewer.organisation_id != event.actor_id:
                text = json.dumps(data)
                assert not [name for name in names if name in text], (event.type, viewer)
                assert acting.id not in text and acting.salt not in text, (event.type, viewer)
    # The coordinator and the other member see the digest on m1's position (transparent positions)
    stated = next(e for e in n.events if e.type == "PositionStated" and e.actor_id == M1)
    for viewer in (COORDINATOR_SEES, M2_SEES):
        view = event_view(n.s, stated, viewer)
        assert view is not None and set(view["acting_person"]) == {"digest"}
    # And the vendor sees its own person on its response, and nobody's on the coordinator's events
    responded = next(e for e in n.events if e.type == "VendorResponded")
    assert (event_view(n.s, responded, VENDOR_SEES) or {})["acting_person"]["name"] == "Victor Vendor"
    published = next(e for e in n.events if e.type == "DemandPublished")
    assert "acting_person" not in (event_view(n.s, published, VENDOR_SEES) or {})


def test_the_chain_verifies_for_every_viewer_that_gets_hashes() -> None:
    # Given events sent by people, shown with a person to some and a digest to others
    n, _ = acted_negotiation()
    checked = {viewer.organisation_id: 0 for viewer in EVERYBODY}
    for event in n.events:
        for viewer in EVERYBODY:
            data = event_view(n.s, event, viewer)
            if data is None:
                continue
            previous_hash, hash_ = chain_hashes(n.s, event, viewer, data)
            if hash_ is None:
                continue
            # Then what the viewer was shown, with the envelope, hashes to the hash it was given
            assert json_hash(whole(event, data)) == hash_ == event.hash, (event.type, viewer)
            assert previous_hash == event.previous_hash
            checked[viewer.organisation_id] += 1
    # The coordinator checks every event, the members those they see whole (their own with the
    # person, others' with the digest), the vendor none
    assert checked[COORDINATOR] == len(n.events)
    assert checked[M1] > 0 and checked[M2] > 0 and checked[VENDOR] == 0
    own = [e for e in n.events if e.actor_id == M1]
    others = [e for e in n.events if e.actor_id == COORDINATOR and e.type == "DemandPublished"]
    for event, viewer in [(own[0], M1_SEES), (others[0], M1_SEES)]:
        data = event_view(n.s, event, viewer)
        assert data is not None and chain_hashes(n.s, event, viewer, data)[1] == event.hash


def test_a_changed_person_breaks_the_chain_for_those_who_see_it_and_those_who_see_the_digest() -> None:
    n, _ = acted_negotiation()
    stated = next(e for e in n.events if e.type == "PositionStated" and e.actor_id == M1)
    data = event_view(n.s, stated, M1_SEES)
    assert data is not None
    forged = {**data, "acting_person": {**data["acting_person"], "name": "Somebody Else"}}
    assert json_hash(whole(stated, forged)) != stated.hash
    assert json_hash(sealed(whole(stated, forged))) != stated.hash


# -- the seal ----------------------------------------------------------------------------------

salts = st.text("0123456789abcdef", min_size=32, max_size=32)
people = st.builds(
    lambda id_, name, role, salt: {"id": id_, "name": name, "role": role, "salt": salt},
    st.from_regex(r"^person_[0-9a-f]{12}$", fullmatch=True),
    st.text(min_size=1, max_size=60),
    st.sampled_from(["owner", "approver", "contributor"]),
    salts,
)


@FAST
@given(acting=people, rest=st.dictionaries(st.sampled_from(["type", "actor_id", "sequence"]), st.text(max_size=8)))
def test_sealing_is_idempotent_and_keeps_the_hash(acting: dict[str, str], rest: dict[str, str]) -> None:
    data = {**rest, "acting_person": acting}
    once = sealed(data)
    # Sealing what is sealed changes nothing, and the hash is the same either way
    assert sealed(once) == once
    assert once["acting_person"] == {"digest": person_digest(acting)}
    assert json_hash(data) == json_hash(once)
    # And the person's fields are nowhere in the sealed JSON
    text = json.dumps(once, ensure_ascii=False)
    assert acting["salt"] not in text and acting["id"] not in text
    # Data without an acting person is left alone
    assert sealed(rest) == rest


@FAST
@given(acting=people, other_salt=salts)
def test_the_digest_depends_on_the_salt_so_a_guess_of_who_acted_cannot_be_confirmed(
    acting: dict[str, str], other_salt: str
) -> None:
    # Given the same person acting twice, with two different salts
    again = {**acting, "salt": other_salt}
    # Then the two digests differ (nobody can tell that it was the same person) unless the salts are the same
    assert (person_digest(acting) == person_digest(again)) == (acting["salt"] == other_salt)
    # And a digest of the person without the salt, or with another, is not the one the log holds
    assert person_digest({k: v for k, v in acting.items() if k != "salt"}) != person_digest(acting)
