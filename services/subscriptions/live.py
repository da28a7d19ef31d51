"""The live stream of a negotiation: the viewer's messages after a cursor, then each new one as
the read model receives it. The API's ``/stream`` and the dashboard's live board both serve it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from anyio import to_thread
from sqlmodel import Session

from schemas.events import Event
from schemas.negotiation import Policy
from services.application.errors import Refusal
from services.application.hub import Hub
from services.readmodel.store import load_events
from services.subscriptions.messages import figures_before, message
from streams.core.state import NegotiationState, evolve
from streams.core.views import Audience, sequence_for

Message = dict[str, str]
REPLAY_PAGE = 500
"""Events read and applied per step of a stream's catch-up, in a worker thread."""
RECENT_ON_LOOP = 16
"""At most this many new events are applied on the event loop itself (from the API's cache)."""


class LiveSlots:
    """The live streams each organisation holds open in this API process. Beyond the limit a new
    stream is refused with 429 (several API processes: the limit holds in each)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def take(self, organisation_id: str) -> Callable[[], None]:
        """A slot for one stream, or 429; the answer gives it back (once, however often it is called)."""
        if self.open[organisation_id] >= self.limit:
            raise Refusal(
                429,
                f"you have {self.limit} live streams open, the hub's limit: close one, or read the change feed",
                title="Too many live streams",
                headers={"Retry-After": "30"},
            )
        self.open[organisation_id] += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self.open[organisation_id] -= 1
                if self.open[organisation_id] <= 0:
                    del self.open[organisation_id]

        return give_back


async def live_messages(
    hub: Hub,
    negotiation_id: str,
    viewer: Audience,
    cursor: int,
    announce_hidden: bool = False,
    alive: Callable[[], Awaitable[bool]] | None = None,
) -> AsyncIterator[Message]:
    """The viewer's messages after ``cursor``, then each new one as the read model receives it.

    The stream keeps its own copy of the state, rebuilt from the event log, so each message is
    cut and explained with the state right after its event, the same on every connection. With
    ``announce_hidden`` an event the viewer may not see still yields a bare ``changed`` message
    (its sequence only): the dashboard of a coordinator or member redraws the joint demand, which
    another member's position changes. ``alive`` is asked between messages and at every heartbeat;
    the stream ends when it says no.
    """
    members = [viewer.organisation_id] if viewer.role == "member" else []

    def messages(
        state: NegotiationState | None, events: list[Event], policy: Policy | None
    ) -> tuple[NegotiationState | None, list[Message]]:
        said: list[Message] = []
        for event in events:
            before = figures_before(state, members)
            state = evolve(state, event)
            number = sequence_for(state, viewer)  # the vendor's own counter for the vendor
            body = message(state, before, event, viewer, policy) if number > cursor else None
            if body is not None:
                said.append({"id": str(number), "event": event.type, "data": json.dumps(body)})
            elif announce_hidden and event.sequence > cursor:
                said.append(
                    {"id": str(event.sequence), "event": "changed", "data": json.dumps({"sequence": event.sequence})}
                )
        return state, said

    def page(state: NegotiationState | None) -> tuple[NegotiationState | None, list[Message], bool]:
        """The next page of the log after ``state``, applied: (state, messages, whether the page was full)."""
        after = state.sequence if state is not None else 0
        with Session(hub.engine) as session:
            events = load_events(session, negotiation_id, after=after, until=after + REPLAY_PAGE)
        with hub.states.use(negotiation_id) as current:  # the past, as the current policy shows it
            policy = current.policy if current is not None else None
        state, said = messages(state, events, policy)
        return state, said, len(events) == REPLAY_PAGE

    state: NegotiationState | None = None
    behind = True
    while True:
        # The log since the last message, a page at a time, in a worker thread: a long history
        # (or many connections at once) never holds the event loop.
        while behind:
            state, said, behind = await to_thread.run_sync(page, state)
            for item in said:
                yield item
        seen = state.sequence if state is not None else 0
        if viewer.role != "vendor":  # a cursor beyond the log: wait for the log to reach it
            seen = max(cursor, seen)
        reached = await hub.watch.reached(negotiation_id, seen + 1, timeout=hub.settings.sse_heartbeat_s)
        if alive is not None and not await alive():
            return
        if reached is None:
            continue  # a heartbeat's timeout: nothing new
        after = state.sequence if state is not None else 0
        # The watch has usually just read the new events into the API's state cache: a few events,
        # taken from there and applied here; otherwise the pages above read them.
        done, recent = hub.states.peek(negotiation_id, after + 1, reached, lambda now, events: (now.policy, events))
        if done and recent is not None and len(recent[1]) <= RECENT_ON_LOOP:
            state, said = messages(state, recent[1], recent[0])
            for item in said:
                yield item
        else:
            behind = True
