"""The message a party receives about one event, on the live stream and in a webhook delivery.

``{type, negotiation_id, sequence, occurred_at, data, notices}``: ``data`` is the event as the
party may see it (``streams.core.views.event_view``), ``notices`` what it means for the party
(``streams.core.notices``). The state used is the negotiation's state right after the event.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from schemas.events import Event
from schemas.negotiation import Policy
from streams.core.notices import Figures, figures_before, notices
from streams.core.state import NegotiationState
from streams.core.views import Audience, event_view


def message(
    state: NegotiationState, before: Figures, event: Event, viewer: Audience, policy: Policy | None = None
) -> dict[str, Any] | None:
    """The viewer's message about ``event`` (applied to ``state``), or None if it may not see it;
    cut with ``policy`` when given (the current one, for a stream replaying the past)."""
    data = event_view(state, event, viewer, policy)
    if data is None:
        return None
    return {
        "type": event.type,
        "negotiation_id": event.negotiation_id,
        # the vendor's own counter: the internal sequence would tell it how much members did
        "sequence": state.vendor_sequence if viewer.role == "vendor" else event.sequence,
        "occurred_at": event.occurred_at.isoformat(),
        "data": data,
        # code and params for programs (stable), text for people (English; the board translates code and params)
        "notices": [
            {"code": n.code, "text": n.text, "params": dict(n.params)} for n in notices(before, state, event, viewer)
        ],
    }


def members_among(state: NegotiationState | None, organisation_ids: Iterable[str]) -> list[str]:
    return [] if state is None else [o for o in organisation_ids if o in state.members]


__all__ = ["Figures", "figures_before", "members_among", "message"]
