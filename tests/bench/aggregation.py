"""Micro-benchmark: the cost of one PositionStated as an item's supporters grow (not a test).

Run: ``python -m tests.bench.aggregation`` (or ``make bench-aggregation``). For 10, 100, 1,000 and
10,000 supporters of one ``at_most`` item, each with a distinct value, it times a member replacing
its position (``evolve``) and then reading the item's new joint-demand line, against a naive
recomputation of that line from all positions (the baseline). Prints a table; ``--json FILE``
writes the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from datetime import UTC, datetime
from fractions import Fraction

from schemas.events import MemberInvited, NegotiationOpened, PositionStated
from schemas.negotiation import Policy, Position, RequirementItem
from streams.core.state import NegotiationState, evolve

NOW = datetime(2026, 1, 1, tzinfo=UTC)
ITEM = RequirementItem(key="retention-days", title="Retention", kind="at_most", unit="days", category="privacy")


def _envelope(sequence: int, actor: str) -> dict[str, object]:
    return {
        "event_id": f"e{sequence}",
        "negotiation_id": "n",
        "sequence": sequence,
        "occurred_at": NOW,
        "actor_id": actor,
        "command_id": f"c{sequence}",
    }


def build(supporters: int, rng: random.Random) -> NegotiationState:
    state = evolve(
        None,
        NegotiationOpened(
            **_envelope(1, "coop"),
            title="bench",
            coordinator_name="Coop",
            vendor_id="vendor",
            vendor_name="Vendor",
            items=(ITEM,),
            policy=Policy(coverage=Fraction(9, 10)),
        ),
    )
    seq = 2
    for i in range(supporters):
        state = evolve(
            state,
            MemberInvited(**_envelope(seq, "coop"), organisation_id=f"m{i}", name=f"M{i}", weight=rng.randint(1, 50)),
        )
        seq += 1
    for i in range(supporters):
        position = Position(priority=rng.choice(["must", "should"]), value=Fraction(i * 7 + 1, 2))
        state = evolve(state, PositionStated(**_envelope(seq, f"m{i}"), item_key=ITEM.key, position=position))
        seq += 1
    return state


def naive_target(state: NegotiationState) -> Fraction:
    """Recompute the target from scratch over every member's positions: no index kept."""
    considered = sorted(
        (
            (p.value, state.members[m].weight)
            for m, ps in state.positions.items()
            for k, p in ps.items()
            if k == ITEM.key and p.priority in ("must", "should") and p.value is not None
        ),
        reverse=True,
    )
    threshold = state.policy.coverage * sum(w for _, w in considered)
    reached, best = 0, considered[-1][0]
    for value, weight in considered:  # descending: weight of values >= this one so far
        reached += weight
        if reached >= threshold:
            best = value
            break
    return best


def measure(supporters: int, repeats: int, rng: random.Random) -> dict[str, float]:
    state = build(supporters, rng)
    seq = state.sequence + 1
    events = []
    for r in range(repeats):
        member = f"m{rng.randrange(supporters)}"
        position = Position(priority="must", value=Fraction(rng.randrange(1, 20 * supporters), 3))
        events.append(PositionStated(**_envelope(seq + r, member), item_key=ITEM.key, position=position))
    aggregate = state.aggregates[ITEM.key]
    samples = []
    for event in events:
        start = time.perf_counter_ns()
        evolve(state, event)
        aggregate.demand_item(state.total_weight, state.policy)
        samples.append(time.perf_counter_ns() - start)
    naive_samples = []
    for _ in range(max(3, repeats // 200)):
        start = time.perf_counter_ns()
        expected = naive_target(state)
        naive_samples.append(time.perf_counter_ns() - start)
    assert aggregate.target(state.policy)[0] == expected, "incremental and naive targets differ"
    return {
        "supporters": supporters,
        "position_stated_us_median": statistics.median(samples) / 1000,
        "position_stated_us_p90": statistics.quantiles(samples, n=10)[-1] / 1000,
        "naive_recompute_us_median": statistics.median(naive_samples) / 1000,
        "tree_depth": aggregate.strong.depth(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()
    rng = random.Random(7)
    rows = [measure(n, args.repeats, rng) for n in (10, 100, 1_000, 10_000)]
    print(f"{'supporters':>10} {'PositionStated µs (median)':>27} {'p90 µs':>8} {'naive µs':>10} {'depth':>6}")
    for row in rows:
        print(
            f"{row['supporters']:>10} {row['position_stated_us_median']:>27.1f} {row['position_stated_us_p90']:>8.1f} "
            f"{row['naive_recompute_us_median']:>10.1f} {row['tree_depth']:>6}"
        )
    ratio = rows[-1]["position_stated_us_median"] / rows[0]["position_stated_us_median"]
    print(f"10,000 vs 10 supporters: {ratio:.2f}x (goal: within 2x)")
    if args.json_path:
        with open(args.json_path, "w") as out:
            json.dump({"rows": rows, "ratio_10000_vs_10": ratio}, out, indent=2)


if __name__ == "__main__":
    main()
