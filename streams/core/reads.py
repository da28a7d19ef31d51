"""The reads of a negotiation, each a function of its state and the viewer: what both doors show.

The views (``streams.core.views``) cut every document to what the viewer may see; the refusals of
reads are here, once: a vendor never reads members' positions, the explanation of the live demand
nor the OCDS export (403), a
vendor's demand is the latest published version (404 before the first), a version not published
is not found (404), and the export waits for the agreement (409). They raise the decider's
:class:`~streams.core.decider.Rejection`, which the application service turns into a refusal like
any other. The board uses these same reads, so it never shows what a read would refuse.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from schemas.documents import CommitmentsDocument, DemandExplanation, DemandVersion, JointDemand, PositionView
from streams.core import explanation, figures, ocds, views
from streams.core.actions import allowed_actions, commitment_actions
from streams.core.decider import Limits, Rejection
from streams.core.state import NegotiationState
from streams.core.views import Audience


def positions(state: NegotiationState, viewer: Audience) -> list[PositionView]:
    """All positions (coordinator; members when positions are transparent), else the viewer's own."""
    if viewer.role == "vendor":
        raise Rejection(403, "Forbidden", "a vendor never sees members' positions")
    return views.positions(state, viewer)


def demand(state: NegotiationState, viewer: Audience) -> JointDemand | DemandVersion:
    """The live joint demand (coordinator, members); for the vendor the latest published version."""
    if viewer.role != "vendor":
        return views.live_demand(state)
    if state.latest_version is None:
        raise Rejection(404, "Not found", "no demand version has been published yet")
    return views.version_view(state, state.latest_version, viewer)


def explain(state: NegotiationState, viewer: Audience) -> DemandExplanation:
    """Why the live demand is what it is (SPEC 4.1): coordinator and members; the vendor reads no
    live demand and no positions."""
    if viewer.role == "vendor":
        raise Rejection(403, "Forbidden", "a vendor never sees the live demand nor members' positions")
    return explanation.demand_explanation(state, viewer)


def demand_version(state: NegotiationState, viewer: Audience, version: int) -> DemandVersion:
    if version > len(state.versions):
        raise Rejection(404, "Not found", f"demand version {version} has not been published")
    return views.version_view(state, state.versions[version - 1], viewer)


def ocds_release(state: NegotiationState, viewer: Audience, ocid_prefix: str) -> dict[str, Any]:
    """The agreement as an OCDS release; it names the members, so not for the vendor."""
    if viewer.role == "vendor":
        detail = "the OCDS export names the members: it is for the coordinator and the members"
        raise Rejection(403, "Forbidden", detail)
    try:
        return ocds.release(state, ocid_prefix)
    except ocds.NoAgreement as exc:
        raise Rejection(409, "Conflict", str(exc)) from None


def commitments(state: NegotiationState, viewer: Audience) -> CommitmentsDocument:
    """SPEC 9: the agreement's commitments as the viewer may see them (none before the agreement)."""
    return views.commitments(state, viewer)


@dataclass(frozen=True)
class VersionChange:
    """How a published demand version differs from the one before it."""

    version: int
    added: list[str]
    dropped: list[str]
    retargeted: list[tuple[str, Any, Any]]
    """(item key, target before, target now)."""


def version_changes(versions: list[DemandVersion]) -> list[VersionChange]:
    """What each published version added, dropped and retargeted, from the second on."""
    changes = []
    for before, after in itertools.pairwise(versions):
        old = {i.key: i for i in before.items}
        new = {i.key: i for i in after.items}
        changes.append(
            VersionChange(
                version=after.version,
                added=[k for k in new if k not in old],
                dropped=[k for k in old if k not in new],
                retargeted=[
                    (k, old[k].target, new[k].target) for k in new if k in old and old[k].target != new[k].target
                ],
            )
        )
    return changes


def board(state: NegotiationState, viewer: Audience, limits: Limits = Limits()) -> dict[str, Any]:
    """Everything a negotiation's board shows the viewer, cut by the core's views; ``limits``: the
    hub's, as the worker decides with them (so the board offers no form the decider would refuse)."""
    versions = [views.version_view(state, version, viewer) for version in state.versions]
    try:
        listed = positions(state, viewer)
    except Rejection:  # the vendor reads no positions
        listed = []
    try:
        live: JointDemand | DemandVersion | None = demand(state, viewer)
    except Rejection:  # the vendor before the first version
        live = None
    try:
        explained = {e.key: e for e in explain(state, viewer).items}
    except Rejection:  # the vendor reads no explanation
        explained = {}
    return {
        "state": views.shared_state(state, viewer),
        "summary": views.summary(state, viewer),
        "versions": versions,
        "changes": version_changes(versions),
        # The live demand only: the vendor's demand is a published version, shown as "published".
        "demand": {i.key: i for i in live.items} if isinstance(live, JointDemand) else {},
        "published": {i.key: i for i in versions[-1].items} if versions else {},
        "explained": explained,
        "positions": listed,
        "own": {p.item_key: p for p in listed if p.member_id == viewer.organisation_id},
        "role": viewer.role,
        "endorsed": state.proposal.endorsements.get(viewer.organisation_id) if state.proposal else None,
        "commitments": views.commitments(state, viewer),
        "awaiting_reopened_version": state.awaiting_reopened_version,
        # the actions the viewer's role may take now (the board's forms; a contributor's are none)
        "allowed": allowed_actions(state, viewer, limits=limits),
        "commitment_actions": commitment_actions(state, viewer, limits=limits),
        # The charts' figures (``streams.core.figures``), each already cut for the viewer.
        "cohesion_history": figures.cohesion_history(state, viewer),
        "satisfaction_grid": figures.satisfaction_grid(state, viewer),
        "own_positions": figures.own_positions(state, viewer),
        "inclusion_share": state.policy.inclusion_share if viewer.role != "vendor" else None,
    }


def report(state: NegotiationState, viewer: Audience) -> dict[str, Any]:
    """The coordinator's one-page report for the member council: the board's figures, charts and
    joint demand. It names the members and their satisfaction, so it is the coordinator's alone."""
    if viewer.role != "coordinator":
        raise Rejection(403, "Forbidden", "the report names the members: it is the coordinator's")
    return board(state, viewer)
