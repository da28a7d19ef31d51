"""Benchmark: the cost of a what-if and of the suggestions at 10, 100 and 1,000 members x 50 items.

Run: ``python -m tests.bench.suggestions`` (or ``make bench-suggestions``). Each member states a
position on about two thirds of the 50 items (20 at_most, 10 at_least, 10 one_of with four
options, 10 yes/no), a third of them must; version 1 is published and the vendor answers every
item (accept, counter or reject). It then times, on that state, what the coordinator asks: the
suggestions, a what-if that changes the policy and drops two items, and a what-if with ten
members' concessions. Prints a table of the median and the worst of ``--repeat`` runs (ms);
``--json FILE`` writes the figures. Not a test: it asserts nothing about time.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from schemas.commands import Actor, PublishDemand, RespondToDemand
from schemas.events import MemberInvited, NegotiationOpened, PositionStated
from schemas.insight import Concession, WhatIfRequest
from schemas.negotiation import ItemResponse, Policy, Position, RequirementItem
from streams.core import insight
from streams.core.decider import Context, decide
from streams.core.state import NegotiationState, evolve
from streams.core.views import Audience

NOW = datetime(2026, 1, 1, tzinfo=UTC)
OPTIONS = ("NL", "EU", "EEA", "US")
COORDINATOR = Audience("coordinator", "coop")
SIZES = (10, 100, 1000)
ITEMS = 50


def _items() -> tuple[RequirementItem, ...]:
    kinds = ["at_most"] * 20 + ["at_least"] * 10 + ["one_of"] * 10 + ["boolean"] * 10
    return tuple(
        RequirementItem(
            key=f"item-{i}",
            title=f"Item {i}",
            kind=kind,  # type: ignore[arg-type]
            category="privacy",
            options=OPTIONS if kind == "one_of" else None,
        )
        for i, kind in enumerate(kinds)
    )


def _envelope(sequence: int, actor: str) -> dict[str, Any]:
    return {
        "event_id": f"e{sequence}",
        "negotiation_id": "n",
        "sequence": sequence,
        "occurred_at": NOW,
        "actor_id": actor,
        "command_id": f"c{sequence}",
    }


def _position(item: RequirementItem, rng: random.Random) -> Position:
    priority = rng.choice(["must", "should", "could"])
    if item.kind in ("at_most", "at_least"):
        return Position(priority=priority, value=Fraction(rng.randint(1, 60)))  # type: ignore[arg-type]
    if item.kind == "one_of":
        return Position(priority=priority, accepted=tuple(rng.sample(OPTIONS, rng.randint(1, 2))))  # type: ignore[arg-type]
    return Position(priority=priority)  # type: ignore[arg-type]


def _run(state: NegotiationState, command: Any) -> NegotiationState:
    for event in decide(state, command, Context(NOW)).events:
        state = evolve(state, event)
    return state


def build(members: int, rng: random.Random) -> NegotiationState:
    """A negotiation of ``members`` members on 50 items, version 1 published and answered."""
    items = _items()
    opened = NegotiationOpened(
        **_envelope(1, "coop"),
        title="bench",
        coordinator_name="Coop",
        vendor_id="vendor",
        vendor_name="Vendor",
        items=items,
        policy=Policy(coverage=Fraction(9, 10)),
    )
    state = evolve(None, opened)
    sequence = 2
    for m in range(members):
        invited = MemberInvited(
            **_envelope(sequence, "coop"), organisation_id=f"m{m}", name=f"Member {m}", weight=rng.randint(1, 50)
        )
        state = evolve(state, invited)
        sequence += 1
    for m in range(members):
        for item in items:
            if rng.random() < 2 / 3:
                stated = PositionStated(
                    **_envelope(sequence, f"m{m}"), item_key=item.key, position=_position(item, rng)
                )
                state = evolve(state, stated)
                sequence += 1
    coordinator = Actor(organisation_id="coop", role="coordinator", name="Coop")
    state = _run(state, PublishDemand(command_id="publish", negotiation_id="n", actor=coordinator))
    assert state.latest_version is not None
    answers = []
    for published in state.latest_version.items:
        verdict = "accept" if published.kind == "boolean" else rng.choice(["accept", "counter", "reject"])
        value = Fraction(rng.randint(1, 60)) if verdict == "counter" and published.kind != "one_of" else None
        option = rng.choice(OPTIONS) if verdict == "counter" and published.kind == "one_of" else None
        answers.append(ItemResponse(key=published.key, verdict=verdict, value=value, option=option))  # type: ignore[arg-type]
    vendor = Actor(organisation_id="vendor", role="vendor", name="Vendor")
    return _run(
        state,
        RespondToDemand(command_id="respond", negotiation_id="n", actor=vendor, demand_version=1, items=tuple(answers)),
    )


def _concessions(state: NegotiationState, rng: random.Random, count: int = 10) -> tuple[Concession, ...]:
    chosen: dict[tuple[str, str], Concession] = {}
    members = list(state.members)
    while len(chosen) < min(count, len(members)):
        member = rng.choice(members)
        key = rng.choice(list(state.items))
        chosen[(member, key)] = Concession(member_id=member, item_key=key, position=_position(state.items[key], rng))
    return tuple(chosen.values())


def _time(run: Callable[[], object], repeat: int) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        runs.append((time.perf_counter() - start) * 1000)
    return statistics.median(runs), max(runs)


def measure(members: int, repeat: int, seed: int = 20) -> dict[str, Any]:
    rng = random.Random(seed)
    state = build(members, rng)
    keys = list(state.items)
    policy_change = WhatIfRequest(coverage=Fraction(3, 4), inclusion_share=Fraction(1, 3), drop=(keys[0], keys[20]))
    conceded = WhatIfRequest(concessions=_concessions(state, rng))
    found = insight.suggestions(state, COORDINATOR)
    figures: dict[str, Any] = {
        "members": members,
        "items": len(keys),
        "positions": sum(map(len, state.positions.values())),
    }
    for name, run in (
        ("suggestions", lambda: insight.suggestions(state, COORDINATOR)),
        ("what_if_policy", lambda: insight.what_if(state, COORDINATOR, policy_change)),
        ("what_if_concessions", lambda: insight.what_if(state, COORDINATOR, conceded)),
    ):
        median, worst = _time(run, repeat)
        figures[name] = {"median_ms": round(median, 2), "max_ms": round(worst, 2)}
    figures["found"] = {
        "conflicts": len(found.conflicts),
        "coalition": len(found.coalition),
        "vendor": len(found.vendor),
    }
    return figures


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    results = [measure(members, args.repeat) for members in args.sizes]
    header = (
        f"{'members':>8} {'positions':>9} | {'suggestions':>18} | {'what-if policy':>18} | {'what-if concessions':>19}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        cells = [
            f"{r[k]['median_ms']:>7.1f} (max {r[k]['max_ms']:>6.1f})"
            for k in ("suggestions", "what_if_policy", "what_if_concessions")
        ]
        print(f"{r['members']:>8} {r['positions']:>9} | {cells[0]:>18} | {cells[1]:>18} | {cells[2]:>19}")
    print("(milliseconds: median of the runs, and the slowest; 50 items)")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return results


if __name__ == "__main__":
    main()
