"""The live stream of a negotiation: the viewer's messages after a cursor, then each new one as
the read model receives it. The API's ``/stream`` and the dashboard's live board both serve it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

from anyio import to_thread
from sqlmodel import Session

from schemas.events import Event
from services.application.hub import Hub
from services.readmodel.store import load_events
from services.subscriptions.messages import figures_before, message
from streams.core.state import NegotiationState, evolve
from streams.core.views import Audience


async def live_messages(
    hub: Hub,
    negotiation_id: str,
    viewer: Audience,
    cursor: int,
    announce_hidden: bool = False,
    alive: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[dict[str, str]]:
    """The viewer's messages after ``cursor``, then each new one as the read model receives it.

    The stream keeps its own copy of the state, rebuilt from the event log, so each message is
    cut and explained with the state right after its event, the same on every connection. With
    ``announce_hidden`` an event the viewer may not see still yields a bare ``changed`` message
    (its sequence only): the dashboard of a coordinator or member redraws the joint demand, which
    another member's position changes. ``alive`` is asked between messages and at every heartbeat;
    the stream ends when it says no.
    """
    members = [viewer.organisation_id] if viewer.role == "member" else []

    def events_after(sequence: int) -> list[Event]:
        with Session(hub.engine) as session:
            return load_events(session, negotiation_id, after=sequence)

    state: NegotiationState | None = None
    pending = await to_thread.run_sync(events_after, 0)
    while True:
        for event in pending:
            before = figures_before(state, members)
            state = evolve(state, event)
            body = message(state, before, event, viewer) if event.sequence > cursor else None
            if body is not None:
                yield {"id": str(event.sequence), "event": event.type, "data": json.dumps(body)}
            elif announce_hidden and event.sequence > cursor:
                yield {"id": str(event.sequence), "event": "changed", "data": json.dumps({"sequence": event.sequence})}
        seen = max(cursor, state.sequence if state is not None else 0)
        reached = await hub.watch.reached(negotiation_id, seen + 1, timeout=hub.settings.sse_heartbeat_s)
        if alive is not None and not await alive():
            return
        after = state.sequence if state is not None else 0
        # The watch has usually just read the new events into the API's state cache: take them
        # from there; otherwise (or with a heartbeat's timeout) read them.
        done, recent = (
            (False, None)
            if reached is None
            else hub.states.peek(negotiation_id, after + 1, reached, lambda _state, events: events)
        )
        pending = recent if done and recent is not None else await to_thread.run_sync(events_after, after)
