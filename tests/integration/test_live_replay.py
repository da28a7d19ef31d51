"""A live stream catches up on a long history a page at a time, off the event loop."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace
from typing import Any, cast

from services.application.hub import Hub
from services.application.watch import ProjectionWatch
from services.readmodel.projector import Projection
from services.readmodel.store import create_db_engine, upgrade
from services.settings import Settings
from services.subscriptions.live import REPLAY_PAGE, live_messages
from streams.core.views import Audience
from tests.unit.builders import Negotiation, item


async def test_a_long_history_is_replayed_in_pages_while_the_event_loop_keeps_serving(database: str) -> None:
    # Given a negotiation whose log is several replay pages long, in the read model
    upgrade(database)
    engine = create_db_engine(database)
    negotiation = Negotiation(item("no-ai-training")).invite("m1")
    for i in range(2 * REPLAY_PAGE + 100):
        negotiation.position("m1", "no-ai-training", priority="must" if i % 2 else "should")
    Projection(engine).apply(negotiation.events)
    last = negotiation.s.sequence
    watch = ProjectionWatch(engine)
    watch.start()
    hub = cast(
        Hub, SimpleNamespace(engine=engine, watch=watch, states=watch.states, settings=Settings(sse_heartbeat_s=1))
    )

    # When member m1 opens its stream from the start, while another task wants the event loop
    ticks = 0

    async def other_requests() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    others = asyncio.create_task(other_requests())
    received: list[dict[str, Any]] = []
    ticks_at: list[int] = []
    try:
        async with asyncio.timeout(120):
            async for message in live_messages(hub, negotiation.negotiation_id, Audience("member", "m1"), cursor=0):
                received.append(message)
                ticks_at.append(ticks)
                if int(message["id"]) == last:
                    break
    finally:
        others.cancel()
        await watch.stop()

    # Then it receives every event once, in order
    assert [int(m["id"]) for m in received] == list(range(1, last + 1))
    # And the other task ran between the pages: the catch-up never held the loop for the whole log
    pages = -(-last // REPLAY_PAGE)
    assert pages >= 3
    turns = sum(1 for before, after in itertools.pairwise(ticks_at) if after > before)
    assert turns >= pages - 1, f"the loop was free {turns} times while {pages} pages were replayed"
