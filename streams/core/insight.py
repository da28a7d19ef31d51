"""What-if and suggestions: the coordinator's questions before publishing, answered by the core.

**What-if.** Given a policy (inclusion share, coverage), items dropped from or added to the
demand, and members' concessions (hypothetical positions), :func:`what_if` answers the would-be
joint demand, cohesion against the vendor's current offers, and whom the would-be demand serves.
Every rule is the one the live state uses: an item's line is :meth:`ItemAggregate.demand_item`
(under the tried policy), an offer satisfies a position by :func:`streams.core.offers.satisfies`
(SPEC 5), and "served" asks the same function about an accept of the would-be target. Nothing is
written and the state is only read: an item a concession touches gets an aggregate of its own,
built from its positions; every other item's line is read off the live aggregate.

Cost, for m members, n items and c concessions: the demand is O(n) lines (an untouched item's in
O(log k)), each touched item O(m log m) to rebuild; satisfaction is O(c) from the state's indexes;
"served" walks the must positions once for today and once for the lines that differ, O(m·n) at
worst.

**Suggestions.** :func:`suggestions` is deterministic, bounded and explained in words:

- *conflicts*: for each one_of item in conflict, the option that the fewest considered members do
  not accept (ties: least weight, then the option's name); those members' concession is to
  accept it too. Listed when at most ``CONFLICT_MEMBERS`` would have to concede.
- *coalition*: each unsatisfied member with at most ``CONCESSIONS_PER_MEMBER`` unmet must items,
  and the concessions that satisfy it: take the vendor's current offer as its value or options
  (it keeps its must), or, where there is nothing to take (no answer, a reject, a yes/no item),
  make the must a should. Ranked by weight gained per concession (then fewer concessions, then
  invitation order); the first ``COALITION_SUGGESTIONS``. None before the vendor's first answer.
- *vendor*: per item of the latest published version, the one accept or counter (a value stated
  in a must position on it, or an option) that raises cohesion the most: a sweep over the sorted
  values counts, for each candidate, the members it would satisfy whose only unmet must item this
  is, less the satisfied members it would no longer satisfy. Of equal gains the least generous
  counter is named.

Each suggestion's promised cohesion is computed by the what-if's own satisfaction function (the
coalition's) or by the sweep (the vendor's); the property tests apply them as real commands and
find that cohesion. The whole costs O(m·n + Σ k log k) and stays well under a second at 1,000
members x 50 items (``tests/bench/suggestions.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Literal

from schemas.common import number_to_json
from schemas.documents import DemandItem, Offer
from schemas.insight import (
    CohesionSuggestion,
    Concession,
    ConflictSuggestion,
    DemandChange,
    MemberRef,
    MemberShift,
    SuggestedConcession,
    SuggestionLimits,
    Suggestions,
    TriedPolicy,
    VendorSuggestion,
    WhatIf,
    WhatIfRequest,
)
from schemas.negotiation import Policy, Position, RequirementItem
from streams.core.aggregation import CONSIDERED_PRIORITIES, ItemAggregate, share
from streams.core.decider import Rejection, check_position
from streams.core.offers import CurrentOffer, satisfies
from streams.core.state import NegotiationState
from streams.core.views import Audience

CONFLICT_MEMBERS = 10
"""A conflict's suggestion lists the conceding members when there are at most this many."""
CONCESSIONS_PER_MEMBER = 2
"""A coalition suggestion satisfies one member with at most this many concessions."""
COALITION_SUGGESTIONS = 5
"""How many coalition suggestions are made, best first."""

Overlay = dict[str, dict[str, Position | None]]
"""item key -> member id -> the position after the concessions (None: withdrawn)."""


# -- the what-if ---------------------------------------------------------------------------------


def what_if(state: NegotiationState, viewer: Audience, request: WhatIfRequest) -> WhatIf:
    """The would-be demand, cohesion and standing of the members under ``request`` (see the module).

    The vendor never sees the live demand (403); a member may try only its own concessions, and
    sees counts where the coordinator sees names."""
    if viewer.role == "vendor":
        raise Rejection(403, "Forbidden", "a vendor never sees the live demand: a what-if is the coalition's")
    overlay = _overlay(state, viewer, request)
    drop, add = _item_changes(state, request)
    policy = Policy(
        inclusion_share=state.policy.inclusion_share if request.inclusion_share is None else request.inclusion_share,
        coverage=state.policy.coverage if request.coverage is None else request.coverage,
    )
    today, by_item_today = _today(state)
    after = would_be_demand(state, policy, overlay, drop, add)
    changes = tuple(_changes(state, today, after))

    unsatisfied_after = unsatisfied_after_concessions(state, overlay)
    behind_today = _everyone(by_item_today)
    behind_after = _everyone(left_behind(state, after, overlay, today=today, behind_today=by_item_today))

    def satisfied_today(member_id: str) -> bool:
        return not state.unsatisfied[member_id]

    def satisfied_after(member_id: str) -> bool:
        return not unsatisfied_after.get(member_id, state.unsatisfied[member_id])

    members = list(state.members)
    touched = [m for m in members if m in unsatisfied_after]
    names = viewer.role == "coordinator"
    satisfied_weight = state.satisfied_weight + sum(
        (satisfied_after(m) - satisfied_today(m)) * state.members[m].weight for m in touched
    )
    return WhatIf(
        negotiation_id=state.negotiation_id,
        sequence=state.sequence,
        policy=TriedPolicy(inclusion_share=policy.inclusion_share, coverage=policy.coverage),
        demand=tuple(after[key] for key in state.items),
        changes=changes,
        cohesion_today=float(share(state.satisfied_weight, state.total_weight)),
        cohesion=float(share(satisfied_weight, state.total_weight)),
        served_share_today=float(share(_weight_outside(state, behind_today), state.total_weight)),
        served_share=float(share(_weight_outside(state, behind_after), state.total_weight)),
        became_satisfied=_shift(state, [m for m in touched if satisfied_after(m) and not satisfied_today(m)], names),
        became_unsatisfied=_shift(state, [m for m in touched if satisfied_today(m) and not satisfied_after(m)], names),
        now_served=_shift(state, [m for m in members if m in behind_today and m not in behind_after], names),
        left_behind=_shift(state, [m for m in members if m not in behind_today and m in behind_after], names),
        not_served=_shift(state, [m for m in members if m in behind_after], names),
    )


TODAY_CACHE = 32
"""How many negotiations' today (demand lines, who the live demand leaves behind) are remembered."""
_today_cache: OrderedDict[tuple[int, str, int, str], tuple[dict[str, DemandItem], dict[str, set[str]]]] = OrderedDict()
_today_lock = threading.Lock()


def _today(state: NegotiationState) -> tuple[dict[str, DemandItem], dict[str, set[str]]]:
    """Today's demand lines and, per item, whom they leave behind: the base of every what-if.

    Judging every must position costs O(positions) (half a second at 500 members x 500 items, all
    must), while a what-if re-judges only what it changes; so today's answer is remembered for the
    state it was computed from: the same object at the same sequence and head of the hash chain (a
    state without a chain is computed afresh). The values are never changed by their readers."""
    key = (id(state), state.negotiation_id, state.sequence, state.head_hash or "")
    if state.head_hash is not None:
        with _today_lock:
            found = _today_cache.get(key)
            if found is not None:
                _today_cache.move_to_end(key)
                return found
    lines = {k: state.aggregates[k].demand_item(state.total_weight, state.policy) for k in state.items}
    answer = (lines, left_behind(state, lines, {}))
    if state.head_hash is not None:
        with _today_lock:
            _today_cache[key] = answer
            while len(_today_cache) > TODAY_CACHE:
                _today_cache.popitem(last=False)
    return answer


def _invalid(field: str, detail: str) -> Rejection:
    return Rejection(422, "Invalid input", f"{field}: {detail}", field)


def _overlay(state: NegotiationState, viewer: Audience, request: WhatIfRequest) -> Overlay:
    """The concessions by item and member, checked as the decider checks a position."""
    overlay: Overlay = {}
    for index, concession in enumerate(request.concessions):
        field = f"concessions[{index}]"
        member_id = concession.member_id
        if viewer.role == "member":
            if member_id not in (None, viewer.organisation_id):
                raise Rejection(403, "Forbidden", f"{field}.member_id: a member may try only its own concessions")
            member_id = viewer.organisation_id
        if member_id is None:
            raise _invalid(f"{field}.member_id", "name the member whose concession this is")
        if member_id not in state.members:
            raise _invalid(f"{field}.member_id", f"{member_id!r} is not a member of this negotiation")
        item = state.items.get(concession.item_key)
        if item is None:
            raise _invalid(
                f"{field}.item_key", f"negotiation {state.negotiation_id} has no item {concession.item_key!r}"
            )
        if concession.position is not None:
            try:
                check_position(item, concession.position)
            except Rejection as rejection:
                raise _invalid(f"{field}.position.{rejection.field}", rejection.detail.split(": ", 1)[-1]) from None
        changed = overlay.setdefault(item.key, {})
        if member_id in changed:
            raise _invalid(field, f"a second concession of {member_id} on {item.key}: try one position per item")
        changed[member_id] = concession.position
    return overlay


def _item_changes(state: NegotiationState, request: WhatIfRequest) -> tuple[frozenset[str], frozenset[str]]:
    for name, keys in (("drop", request.drop), ("add", request.add)):
        for index, key in enumerate(keys):
            if key not in state.items:
                raise _invalid(f"{name}[{index}]", f"negotiation {state.negotiation_id} has no item {key!r}")
    both = sorted(set(request.drop) & set(request.add), key=state.item_rank.__getitem__)
    if both:
        raise _invalid("add", f"{both[0]!r} is both dropped and added")
    return frozenset(request.drop), frozenset(request.add)


def positions_after(state: NegotiationState, key: str, changed: Mapping[str, Position | None]) -> dict[str, Position]:
    """Every member's position on the item after the concessions on it, in invitation order."""
    result: dict[str, Position] = {}
    for member_id, stated in state.positions.items():
        position = changed[member_id] if member_id in changed else stated.get(key)
        if position is not None:
            result[member_id] = position
    return result


def aggregate_after(state: NegotiationState, key: str, changed: Mapping[str, Position | None]) -> ItemAggregate:
    """The item's aggregate with the concessions on it: built anew, the live one is only read."""
    aggregate = ItemAggregate(state.items[key])
    for member_id, position in positions_after(state, key, changed).items():
        aggregate.add(position, state.members[member_id].weight)
    return aggregate


def would_be_demand(
    state: NegotiationState,
    policy: Policy,
    overlay: Overlay,
    drop: Iterable[str] = (),
    add: Iterable[str] = (),
) -> dict[str, DemandItem]:
    """Each item's line of the joint demand under ``policy`` and the concessions, ``drop`` left
    out and ``add`` included (an item added without supporters has nothing to ask: left out)."""
    dropped, added = set(drop), set(add)
    lines = {}
    for key in state.items:
        aggregate = aggregate_after(state, key, overlay[key]) if key in overlay else state.aggregates[key]
        line = aggregate.demand_item(state.total_weight, policy)
        if key in dropped and line.included:
            line = line.model_copy(update={"included": False})
        elif key in added and not line.included and aggregate.supporters:
            line = line.model_copy(update={"included": True})
        lines[key] = line
    return lines


def _changes(
    state: NegotiationState, today: Mapping[str, DemandItem], after: Mapping[str, DemandItem]
) -> Iterable[DemandChange]:
    for key in state.items:
        before, now = today[key], after[key]
        if before.included and not now.included:
            change: Literal["enters", "leaves", "retargeted"] = "leaves"
        elif now.included and not before.included:
            change = "enters"
        elif now.included and before.target != now.target:
            change = "retargeted"
        else:
            continue
        yield DemandChange(key=key, change=change, target_before=before.target, target_after=now.target)


def unsatisfied_after_concessions(state: NegotiationState, overlay: Overlay) -> dict[str, set[str]]:
    """The unmet must items of each member a concession touches, against the current offers (SPEC
    5, by ``satisfies``, the rule the state's indexes are kept with); others are as the state has them."""
    result: dict[str, set[str]] = {}
    for key, changed in overlay.items():
        kind, offer = state.items[key].kind, state.offers.get(key)
        for member_id, position in changed.items():
            open_items = result.setdefault(member_id, set(state.unsatisfied[member_id]))
            open_items.discard(key)
            if position is not None and position.priority == "must" and not satisfies(offer, kind, position):
                open_items.add(key)
    return result


def cohesion_after(state: NegotiationState, overlay: Overlay) -> Fraction:
    """SPEC 5's cohesion with the concessions of ``overlay``, exactly."""
    weight = state.satisfied_weight
    for member_id, open_items in unsatisfied_after_concessions(state, overlay).items():
        weight += (int(not open_items) - int(not state.unsatisfied[member_id])) * state.members[member_id].weight
    return share(weight, state.total_weight)


def accepted_in_full(line: DemandItem) -> CurrentOffer | None:
    """The vendor's accept of an included line (its target as the answered one); None when the
    line is not asked for, which satisfies no position."""
    if not line.included or line.target is None:
        return None
    return CurrentOffer(offer=Offer(verdict="accept", round=0, demand_version=0), answered_target=line.target)


def left_behind(
    state: NegotiationState,
    lines: Mapping[str, DemandItem],
    overlay: Overlay,
    today: Mapping[str, DemandItem] | None = None,
    behind_today: Mapping[str, set[str]] | None = None,
) -> dict[str, set[str]]:
    """Per item, the members with a must position on it that its line, accepted in full, would not
    satisfy (a must on an item left out is never satisfied).

    With ``today``'s lines and their answer ``behind_today``, an item whose line and positions did
    not change keeps today's answer instead of being judged again."""
    behind: dict[str, set[str]] = {}
    for key, line in lines.items():
        changed = overlay.get(key, {})
        if today is not None and behind_today is not None and not changed and _same_line(today[key], line):
            behind[key] = behind_today[key]
            continue
        kind, offer = state.items[key].kind, accepted_in_full(line)
        positions = state.positions
        if changed:
            after = {
                m: changed[m] if m in changed else positions[m].get(key) for m in state.must_members[key] | set(changed)
            }
            musts = [(m, p) for m, p in after.items() if p is not None and p.priority == "must"]
        else:
            musts = [(m, positions[m][key]) for m in state.must_members[key]]
        behind[key] = {m for m, position in musts if not satisfies(offer, kind, position)}
    return behind


def _everyone(behind: Mapping[str, set[str]]) -> set[str]:
    return set().union(*behind.values())


def _same_line(a: DemandItem, b: DemandItem) -> bool:
    return a.included == b.included and a.target == b.target


def _weight_outside(state: NegotiationState, members: set[str]) -> int:
    return state.total_weight - sum(state.members[m].weight for m in members)


def _shift(state: NegotiationState, member_ids: list[str], names: bool) -> MemberShift:
    weight = sum(state.members[m].weight for m in member_ids)
    return MemberShift(
        members=len(member_ids),
        weight_share=float(share(weight, state.total_weight)),
        names=tuple(_ref(state, m) for m in member_ids) if names else None,
    )


def _ref(state: NegotiationState, member_id: str) -> MemberRef:
    member = state.members[member_id]
    # built from the state's own facts, validated when they were events: no second validation
    return MemberRef.model_construct(organisation_id=member_id, name=member.name, weight=member.weight)


# -- suggestions ---------------------------------------------------------------------------------


def suggestions(state: NegotiationState, viewer: Audience) -> Suggestions:
    """The coordinator's suggestions (see the module): they name members and read every position."""
    if viewer.role != "coordinator":
        raise Rejection(403, "Forbidden", "suggestions name members and their positions: they are the coordinator's")
    before = share(state.satisfied_weight, state.total_weight)
    return Suggestions(
        negotiation_id=state.negotiation_id,
        sequence=state.sequence,
        cohesion=float(before),
        conflicts=tuple(s for key in state.items if (s := conflict_suggestion(state, key)) is not None),
        coalition=coalition_suggestions(state),
        vendor=tuple(s for s in (vendor_suggestion(state, key) for key in _latest_keys(state)) if s is not None),
        limits=SuggestionLimits(
            conflict_members=CONFLICT_MEMBERS,
            concessions_per_member=CONCESSIONS_PER_MEMBER,
            coalition_suggestions=COALITION_SUGGESTIONS,
        ),
    )


def as_concessions(suggested: Iterable[SuggestedConcession]) -> tuple[Concession, ...]:
    """A suggestion's concessions as a what-if takes them."""
    return tuple(Concession(member_id=s.member_id, item_key=s.item_key, position=s.position) for s in suggested)


def _overlay_of(suggested: Iterable[SuggestedConcession]) -> Overlay:
    overlay: Overlay = {}
    for s in suggested:
        overlay.setdefault(s.item_key, {})[s.member_id] = s.position
    return overlay


def _pct(value: Fraction) -> str:
    return f"{float(value) * 100:+.0f} %"


def _members(n: int) -> str:
    return "1 member" if n == 1 else f"{n} members"


def _options_in_order(item: RequirementItem, options: Iterable[str]) -> tuple[str, ...]:
    assert item.options is not None
    chosen = set(options)
    return tuple(o for o in item.options if o in chosen)


def conflict_suggestion(state: NegotiationState, key: str) -> ConflictSuggestion | None:
    """For a one_of item in conflict, the option the fewest considered members do not accept."""
    item, aggregate = state.items[key], state.aggregates[key]
    if item.kind != "one_of" or not aggregate.supporters:
        return None
    _, conflict = aggregate.target(state.policy)
    if not conflict:
        return None
    assert item.options is not None
    count, option_count, option_weight = aggregate.option_tally()
    weight = aggregate.considered_weight()
    option = min(item.options, key=lambda o: (count - option_count[o], weight - option_weight[o], o))
    counted = CONSIDERED_PRIORITIES[aggregate.considered()]
    conceding = [
        (member_id, stated[key])
        for member_id, stated in state.positions.items()
        if key in stated and stated[key].priority in counted and option not in (stated[key].accepted or ())
    ]
    listed = len(conceding) <= CONFLICT_MEMBERS
    concessions = tuple(
        SuggestedConcession(
            member_id=member_id,
            member_name=state.members[member_id].name,
            item_key=key,
            kind="widen",
            priority_before=position.priority,
            position=Position(
                priority=position.priority, accepted=_options_in_order(item, (*(position.accepted or ()), option))
            ),
        )
        for member_id, position in conceding
        if listed
    )
    before = share(state.satisfied_weight, state.total_weight)
    after = cohesion_after(state, _overlay_of(concessions)) if listed else None
    who = ", ".join(c.member_name for c in concessions) if listed else _members(len(conceding))
    text = f"{key}: if {who} also accepted {option}, every considered position would accept {option}: no conflict"
    if after is not None and after != before:
        text += f"; cohesion {_pct(after - before)}"
    return ConflictSuggestion(
        item_key=key,
        option=option,
        members=len(conceding),
        weight_share=float(share(sum(state.members[m].weight for m, _ in conceding), state.total_weight)),
        concessions=concessions,
        target_after=(option,),
        cohesion_before=float(before),
        cohesion_after=None if after is None else float(after),
        text=text + ".",
    )


def concession_to_meet(state: NegotiationState, member_id: str, key: str) -> SuggestedConcession:
    """The member's concession that makes the current offer satisfy its must on the item: take the
    offer's value or options (it keeps the must), or, with nothing to take, make it a should."""
    item, position, current = state.items[key], state.positions[member_id][key], state.offers.get(key)
    name = state.members[member_id].name
    taken: Position | None = None
    if current is not None and current.offer.verdict != "reject" and item.kind != "boolean":
        offer = current.offer
        if item.kind in ("at_most", "at_least"):
            value = offer.value if offer.verdict == "counter" else current.answered_target
            assert isinstance(value, Fraction)
            taken = Position(priority="must", value=value)
        else:
            wanted = (offer.option,) if offer.verdict == "counter" else current.answered_target
            assert isinstance(wanted, tuple)
            taken = Position(priority="must", accepted=_options_in_order(item, (*(position.accepted or ()), *wanted)))
    if taken is not None and satisfies(current, item.kind, taken):
        return SuggestedConcession(
            member_id=member_id,
            member_name=name,
            item_key=key,
            kind="relax",
            priority_before="must",
            position=taken,
        )
    return SuggestedConcession(
        member_id=member_id,
        member_name=name,
        item_key=key,
        kind="lower",
        priority_before="must",
        position=Position(priority="should", value=position.value, accepted=position.accepted),
    )


def _describe(state: NegotiationState, concession: SuggestedConcession) -> str:
    item, position = state.items[concession.item_key], concession.position
    if concession.kind == "lower":
        return f"make {concession.item_key} a should"
    if position.value is not None:
        unit = f" {item.unit}" if item.unit else ""
        return f"accept {number_to_json(position.value)}{unit} on {concession.item_key}"
    return f"accept {', '.join(position.accepted or ())} on {concession.item_key}"


def coalition_suggestions(state: NegotiationState) -> tuple[CohesionSuggestion, ...]:
    """The unsatisfied members that the fewest concessions would satisfy, most weight per concession
    first; none before the vendor's first answer (cohesion is judged against its offers: before
    them every must is unmet, and the only concession would be to give up every must)."""
    if not state.offers:
        return ()
    candidates = []
    for rank, (member_id, open_items) in enumerate(state.unsatisfied.items()):
        if open_items and len(open_items) <= CONCESSIONS_PER_MEMBER:
            weight = state.members[member_id].weight
            candidates.append((-Fraction(weight, len(open_items)), len(open_items), rank, member_id))
    candidates.sort()
    before = share(state.satisfied_weight, state.total_weight)
    result = []
    for _, _, _, member_id in candidates[:COALITION_SUGGESTIONS]:
        keys = sorted(state.unsatisfied[member_id], key=state.item_rank.__getitem__)
        concessions = tuple(concession_to_meet(state, member_id, key) for key in keys)
        after = cohesion_after(state, _overlay_of(concessions))
        name = state.members[member_id].name
        steps = " and ".join(_describe(state, c) for c in concessions)
        result.append(
            CohesionSuggestion(
                member_id=member_id,
                member_name=name,
                weight_share=float(share(state.members[member_id].weight, state.total_weight)),
                concessions=concessions,
                cohesion_before=float(before),
                cohesion_after=float(after),
                text=f"{name} would be satisfied if it would {steps}: cohesion {_pct(after - before)}.",
            )
        )
    return tuple(result)


def _latest_keys(state: NegotiationState) -> list[str]:
    latest = state.latest_version
    return [] if latest is None else [item.key for item in latest.items]


def vendor_suggestion(state: NegotiationState, key: str) -> VendorSuggestion | None:
    """The vendor's one answer on the item (accept, or a counter among the stated must values or
    the options) that raises cohesion the most, found by one sweep; None when none raises it.

    A counter replaces the current offer: it wins the members whose only unmet must item this is
    and whom it satisfies, and loses the satisfied members with a must on it whom it does not."""
    item = state.items[key]
    gain: list[tuple[str, Position]] = []  # unsatisfied only on this item
    keep: list[tuple[str, Position]] = []  # satisfied now
    for member_id in state.must_members[key]:
        open_items = state.unsatisfied[member_id]
        if not open_items:
            keep.append((member_id, state.positions[member_id][key]))
        elif open_items == {key}:
            gain.append((member_id, state.positions[member_id][key]))
    if not gain:
        return None
    weight = {m: state.members[m].weight for m, _ in (*gain, *keep)}
    best: tuple[int, int, int] | None = None  # (net weight, gained members, lost members)
    answer: dict[str, object] = {}
    if item.kind == "boolean":
        current = state.offers.get(key)
        if current is not None and current.offer.verdict == "accept":
            return None
        best, answer = (sum(weight[m] for m, _ in gain), len(gain), 0), {"verdict": "accept"}
    elif item.kind == "one_of":
        assert item.options is not None
        for option in item.options:
            won = [m for m, p in gain if option in (p.accepted or ())]
            lost = [m for m, p in keep if option not in (p.accepted or ())]
            net = sum(weight[m] for m in won) - sum(weight[m] for m in lost)
            if best is None or net > best[0]:
                best, answer = (net, len(won), len(lost)), {"verdict": "counter", "option": option}
    else:
        best, value = _sweep(item.kind, gain, keep, weight)
        answer = {"verdict": "counter", "value": value}
    assert best is not None
    net, won_count, lost_count = best
    if net <= 0:
        return None
    before = share(state.satisfied_weight, state.total_weight)
    after = share(state.satisfied_weight + net, state.total_weight)
    if answer["verdict"] == "accept":
        what = f"an accept on {key}"
    elif "option" in answer:
        what = f"a counter of {answer['option']} on {key}"
    else:
        assert isinstance(answer["value"], Fraction)
        unit = f" {item.unit}" if item.unit else ""
        what = f"a counter of {number_to_json(answer['value'])}{unit} on {key}"
    if lost_count:  # weight gained on balance, members perhaps not: say both sides
        text = f"{what} would satisfy {won_count} more {'member' if won_count == 1 else 'members'}"
        text += f" and {lost_count} {'member' if lost_count == 1 else 'members'} no longer"
    else:
        text = f"{what} would satisfy {won_count} more {'member' if won_count == 1 else 'members'}"
    return VendorSuggestion(
        item_key=key,
        members_gained=won_count,
        members_lost=lost_count,
        cohesion_before=float(before),
        cohesion_after=float(after),
        text=f"{text}, cohesion {_pct(after - before)}.",
        **answer,
    )


def _sweep(
    kind: str, gain: list[tuple[str, Position]], keep: list[tuple[str, Position]], weight: Mapping[str, int]
) -> tuple[tuple[int, int, int], Fraction]:
    """at_most / at_least: the counter value c among the stated must values with the largest net
    gain, the least generous of equals. One pass over the values from the least generous (largest
    for at_most) to the most: at each c, the members with a value at least as lax as c are met."""
    entries = sorted(
        ((p.value, m, True) for m, p in gain if p.value is not None),
        key=lambda e: e[0],
        reverse=kind == "at_most",
    )
    keeps = sorted(
        ((p.value, m) for m, p in keep if p.value is not None), key=lambda e: e[0], reverse=kind == "at_most"
    )
    lost_weight, lost_count = sum(weight[m] for _, m in keeps), len(keeps)
    won_weight = won_count = 0
    values = sorted({v for v, _, _ in entries} | {v for v, _ in keeps}, reverse=kind == "at_most")
    best: tuple[int, int, int] | None = None
    best_value = values[0]
    i = j = 0
    for c in values:
        # met at c: at_most v >= c, at_least v <= c (the lists run from the laxest value)
        while i < len(entries) and (entries[i][0] >= c if kind == "at_most" else entries[i][0] <= c):
            won_weight += weight[entries[i][1]]
            won_count += 1
            i += 1
        while j < len(keeps) and (keeps[j][0] >= c if kind == "at_most" else keeps[j][0] <= c):
            lost_weight -= weight[keeps[j][1]]
            lost_count -= 1
            j += 1
        net = won_weight - lost_weight
        if best is None or net > best[0]:
            best, best_value = (net, won_count, lost_count), c
    assert best is not None
    return best, best_value
