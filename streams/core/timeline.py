"""The timeline in words: which sentence tells a viewer what an event did, and with what in it.

The core decides the audience (who is named, who is "you", who stays "a member"); the words are
the presentation's (the dashboard's ``SENTENCES``, translated with gettext). :func:`describe`
reads only the event's data *as the viewer may see it* (``views.event_view``): an actor whom the
view cut is never named, so the timeline can tell nobody more than the change feed does.

A line's ``sentence`` is ``<event type>.<subject>`` or ``<event type>.<subject>.<variant>``:
the subject is ``you`` (the viewer's organisation acted), ``named`` (a member the viewer may see,
its name in ``params["actor"]``), ``member`` (a member the viewer may not see), ``coordinator``
(for the coordinator's members), ``coalition`` (the coordinator, as the vendor hears of it),
``vendor`` or ``none`` (an event nobody in particular caused: an outcome, the hub's scheduler).
:data:`SENTENCES` lists every sentence each event type may give; a test checks that every event
type is in it and that the dashboard has words for each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.core.state import NegotiationState
from streams.core.views import Audience


@dataclass(frozen=True)
class Line:
    """One event in words: the sentence's name and what fills it (item keys, names, numbers)."""

    sentence: str
    params: dict[str, Any] = field(default_factory=dict)


_ORGANISERS = ("you", "coordinator", "coalition")
_MEMBERS = ("you", "named", "member")
_VENDORS = ("you", "vendor")
_VERDICTS = ("met", "not_met")

SENTENCES: dict[str, tuple[str, ...]] = {
    "NegotiationOpened": _ORGANISERS,
    "MemberInvited": ("you", "coordinator"),
    "PolicyChanged": ("you", "coordinator"),
    "PositionStated": _MEMBERS,
    "PositionWithdrawn": _MEMBERS,
    "DemandPublished": _ORGANISERS,
    "VendorResponded": _VENDORS,
    "ClarificationRequested": _VENDORS,
    "ClarificationAnswered": _ORGANISERS,
    "AgreementProposed": _ORGANISERS,
    "EndorsementGiven": tuple(f"{s}.{d}" for s in _MEMBERS for d in ("accept", "reject")),
    "AgreementReached": ("none",),
    "AgreementRejected": ("none",),
    "NegotiationAbandoned": _ORGANISERS,
    "CommitmentsPlanned": _VENDORS,
    "PlanAccepted": _ORGANISERS,
    "PlanRejected": _ORGANISERS,
    "CommitmentDelivered": _VENDORS,
    "CommitmentChecked": tuple(f"{s}.{v}" for s in ("you", "named") for v in _VERDICTS),
    "CommitmentVerdictGiven": tuple(f"{s}.{v}" for s in _ORGANISERS for v in _VERDICTS),
    "CommitmentOverdue": ("none",),
    "RegressionReported": _MEMBERS,
    "NegotiationReopened": _ORGANISERS,
    "AgreementFulfilled": ("none",),
}
"""Every event type with the subjects (and variants) its sentences may have."""


def _subject(state: NegotiationState, event_type: str, data: dict[str, Any], viewer: Audience) -> tuple[str, str]:
    """(subject, actor's name or "") of an event whose data the viewer sees as ``data``."""
    actor = data.get("actor_id")
    if actor is None:  # cut by the view: a member the viewer may not see (or nobody)
        return ("member" if "member" in SENTENCES[event_type] else "none"), ""
    if actor == viewer.organisation_id:
        return "you", ""
    if actor == state.coordinator_id:
        return ("coalition" if viewer.role == "vendor" else "coordinator"), ""
    if actor == state.vendor_id:
        return "vendor", ""
    member = state.members.get(actor)
    if member is not None:
        return "named", member.name
    return "none", ""


_PARAMS = {
    "item_key": "item",
    "version": "version",
    "round": "round",
    "plan": "plan",
    "delivery": "delivery",
    "name": "name",
    "weight": "weight",
    "title": "title",
    "clarification_id": "clarification",
}


def describe(state: NegotiationState, event_type: str, data: dict[str, Any], viewer: Audience) -> Line:
    """The line of an event of ``event_type`` whose data the viewer sees as ``data``
    (``views.event_view``); ``state`` gives names of whom the data names, nothing more."""
    subject, actor = _subject(state, event_type, data, viewer)
    if subject not in {s.split(".")[0] for s in SENTENCES[event_type]} and "none" in SENTENCES[event_type]:
        subject, actor = "none", ""  # an outcome (the agreement reached), whoever's act caused it
    params: dict[str, Any] = {name: data[key] for key, name in _PARAMS.items() if data.get(key) is not None}
    if actor:
        params["actor"] = actor
    variant = ""
    if event_type == "EndorsementGiven":
        variant = f".{data['decision']}"
    elif event_type in ("CommitmentChecked", "CommitmentVerdictGiven"):
        variant = f".{data['verdict']}"
    if event_type in ("DemandPublished", "VendorResponded", "CommitmentsPlanned"):
        params["count"] = len(data.get("items") or ())
    if event_type == "NegotiationReopened":
        params["items"] = list(data.get("items") or ())
    if event_type == "CommitmentOverdue" and data.get("due"):
        params["due"] = str(data["due"])[:10]
    if event_type == "ClarificationAnswered":
        asked = state.clarifications.get(data.get("clarification_id", 0))
        if asked is not None:
            params["item"] = asked.item_key
    return Line(f"{event_type}.{subject}{variant}", params)
