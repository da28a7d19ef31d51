"""The board's charts (issue 20): the core's figures behind them, and the SVG drawn from them.

The figures are the pure core's (``streams.core.figures``), cut for the viewer; the charts
(``services.dashboard.charts``) draw them as SVG with a title, a description and a table of the
same figures as the text alternative. Drawn here without a running hub.
"""

from __future__ import annotations

import contextlib
import copy
import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.negotiation import ItemResponse, Policy
from services.dashboard.charts import (
    ACCENT,
    BAD,
    DASH,
    INK,
    MUTED,
    OK,
    WARN,
    cohesion_chart,
    own_positions_chart,
    percent,
    satisfaction_heatmap,
    support_chart,
    support_rows,
)
from services.dashboard.i18n import ItemWords, translator
from services.dashboard.routes import templates
from streams.core import reads
from streams.core.decider import Rejection
from streams.core.figures import cohesion_history, own_positions, satisfaction_grid
from streams.core.state import replay
from streams.core.views import Audience, live_demand
from tests.unit.builders import COORDINATOR, VENDOR, Negotiation, item

SVG = "{http://www.w3.org/2000/svg}"
EN, NL = translator("en"), translator("nl")
COORD = Audience("coordinator", COORDINATOR)
NAMES = ("Universiteit Leiden", "Hogeschool Rotterdam", "Erasmus MC")


def scripted(policy: Policy | None = None) -> Negotiation:
    """Three members (weights 3, 2, 1) over two versions and two rounds, then a change of position."""
    n = Negotiation(
        item("retention-days", "at_most"), item("no-ai-training"), item("data-location", "one_of"), policy=policy
    )
    n.invite("m1", 3, NAMES[0]).invite("m2", 2, NAMES[1]).invite("m3", 1, NAMES[2])
    n.position("m1", "retention-days", "must", 30).position("m2", "retention-days", "must", 14)
    n.position("m3", "retention-days", "should", 7).position("m1", "no-ai-training", "must")
    n.position("m3", "no-ai-training", "could").position("m2", "data-location", "must", accepted=("NL", "EU"))
    n.publish()  # version 1: nobody with a must position is satisfied yet, m3 (no must) is: 1/6
    n.respond(
        ItemResponse(key="retention-days", verdict="counter", value=Fraction(30)),
        ItemResponse(key="no-ai-training", verdict="accept"),
    )  # round 1: m1's two musts are met: (3 + 1)/6
    n.position("m2", "retention-days", "must", 30)  # m2 gives way; its data location is still open
    n.publish()  # version 2: still 4/6
    n.respond(ItemResponse(key="data-location", verdict="counter", option="EU"))  # round 2: everybody: 6/6
    n.position("m3", "data-location", "must", accepted=("NL",))  # m3 now insists on NL: 5/6
    return n


def svg_of(markup: str) -> ET.Element:
    match = re.search(r"<svg .*?</svg>", markup, re.S)
    assert match is not None, markup[:200]
    return ET.fromstring(match.group(0))


def table_of(markup: str) -> list[list[str]]:
    """The text alternative's rows (the <details> table), cell texts."""
    match = re.search(r"<table class=\"figures\">.*?</table>", markup, re.S)
    assert match is not None
    table = ET.fromstring(match.group(0))
    return [[(cell.text or "") for cell in row] for row in table.iter("tr")][1:]


def named_by_title_and_desc(svg: ET.Element) -> None:
    title, desc = svg.find(f"{SVG}title"), svg.find(f"{SVG}desc")
    assert title is not None and title.text and desc is not None and desc.text
    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == f"{title.get('id')} {desc.get('id')}"


# -- the core's figures ------------------------------------------------------------------------------


def test_cohesion_history_of_a_scripted_negotiation_is_exact() -> None:
    # Given the scripted negotiation (W = 6)
    n = scripted()
    # When the coordinator's history is read
    history = cohesion_history(n.s, COORD)
    # Then it has a step per published version and per response, and "now" after m3's change
    assert [(s.moment, s.version, s.round, s.cohesion) for s in history] == [
        ("published", 1, 0, Fraction(1, 6)),
        ("responded", 1, 1, Fraction(4, 6)),
        ("published", 2, 1, Fraction(4, 6)),
        ("responded", 2, 2, Fraction(1)),
        ("now", 2, 2, Fraction(5, 6)),
    ]
    assert [(s.satisfied_weight, s.total_weight) for s in history] == [(1, 6), (4, 6), (4, 6), (6, 6), (5, 6)]
    # and a member reads the same history, the vendor none (SPEC 1: it never sees cohesion)
    assert cohesion_history(n.s, Audience("member", "m2")) == history
    assert cohesion_history(n.s, Audience("vendor", VENDOR)) == ()


def _steps(n: Negotiation) -> list[tuple[str, int, int, Fraction]]:
    """The history recomputed from the events: replay each prefix that ends with a publication or
    a response, and read cohesion from the replayed state's satisfaction, member by member."""
    steps = []
    for index, event in enumerate(n.events):
        if event.type in ("DemandPublished", "VendorResponded"):
            state = replay(n.events[: index + 1])
            assert state is not None
            weight = sum(m.weight for m_id, m in state.members.items() if state.satisfied(m_id))
            moment = "published" if event.type == "DemandPublished" else "responded"
            version = event.version if event.type == "DemandPublished" else event.demand_version  # type: ignore[attr-defined]
            steps.append((moment, version, state.round, Fraction(weight, state.total_weight)))
    return steps


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["m1", "m2", "m3", "m4"]),
            st.sampled_from(["must", "should", "could"]),
            st.integers(min_value=1, max_value=60),
            st.sampled_from(["position", "publish", "respond"]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_the_history_kept_by_evolve_equals_replaying_the_events(steps: list[tuple[str, str, int, str]]) -> None:
    # Given any sequence of positions, publications and counters on one at_most item
    n = Negotiation(item("retention-days", "at_most"))
    for member, weight in (("m1", 3), ("m2", 2), ("m3", 1), ("m4", 5)):
        n.invite(member, weight)
    for member, priority, value, act in steps:
        with contextlib.suppress(Rejection):  # a step the core refuses (nothing included yet) adds nothing
            if act == "position":
                n.position(member, "retention-days", priority, value)
            elif act == "publish":
                n.publish()
            elif act == "respond" and n.s.versions:
                n.respond(ItemResponse(key="retention-days", verdict="counter", value=Fraction(value)))
    # Then the history the state kept equals the one recomputed by replaying the events
    kept = [(s.moment, s.version, s.round, s.cohesion) for s in cohesion_history(n.s, COORD) if s.moment != "now"]
    assert kept == _steps(n)


def test_the_history_travels_with_a_copied_state_and_costs_one_record_per_step() -> None:
    # Given the scripted negotiation's state (snapshots pickle it: it is plain data)
    n = scripted()
    # Then it keeps four records for two versions and two rounds, whatever the number of positions
    assert len(n.s.cohesion_points) == 4
    assert cohesion_history(copy.deepcopy(n.s), COORD) == cohesion_history(n.s, COORD)


def test_the_satisfaction_grid_names_members_only_to_whom_may_see_them() -> None:
    # Given the scripted negotiation: included must items retention-days, no-ai-training, data-location
    n = scripted()
    # When the coordinator reads the grid
    grid = satisfaction_grid(n.s, COORD)
    assert grid is not None
    assert [c.key for c in grid.columns] == ["retention-days", "no-ai-training", "data-location"]
    # Then every member has a row with a cell per item
    assert [(r.name, r.cells) for r in grid.rows] == [
        (NAMES[0], ("satisfied", "satisfied", "no_must")),
        (NAMES[1], ("satisfied", "no_must", "satisfied")),
        (NAMES[2], ("no_must", "no_must", "unsatisfied")),  # m3's must on NL meets the EU counter: no
    ]
    assert [(c.satisfied, c.unsatisfied, c.no_must) for c in grid.columns] == [(2, 0, 1), (1, 0, 2), (1, 1, 1)]
    # And a member sees the counts, not the rows; the vendor nothing
    member_grid = satisfaction_grid(n.s, Audience("member", "m1"))
    assert member_grid is not None and member_grid.rows == () and member_grid.columns == grid.columns
    assert satisfaction_grid(n.s, Audience("vendor", VENDOR)) is None
    # Unless positions are transparent: then a member sees the named rows too
    open_book = scripted(Policy(transparent_positions=True))
    transparent = satisfaction_grid(open_book.s, Audience("member", "m1"))
    assert transparent is not None and [r.name for r in transparent.rows] == list(NAMES)


def test_a_members_own_positions_sit_against_the_live_target_and_the_offer() -> None:
    n = scripted()
    # When member m2 reads its own positions
    mine = own_positions(n.s, Audience("member", "m2"))
    # Then each shows its value, the live target and what the offer amounts to, and whether it satisfies
    assert [(p.key, p.priority, p.value, p.accepted, p.target, p.offered, p.satisfied) for p in mine] == [
        ("retention-days", "must", Fraction(30), None, Fraction(7), Fraction(30), True),  # m3 should 7
        ("data-location", "must", None, ("NL", "EU"), ("NL",), ("EU",), True),
    ]
    # And nobody else gets a member's positions this way
    assert own_positions(n.s, COORD) == () and own_positions(n.s, Audience("vendor", VENDOR)) == ()


# -- the SVG -------------------------------------------------------------------------------------------


def test_the_cohesion_chart_is_well_formed_and_its_table_says_the_cores_figures() -> None:
    history = cohesion_history(scripted().s, COORD)
    markup = str(cohesion_chart(history, EN))
    svg = svg_of(markup)
    named_by_title_and_desc(svg)
    # a mark per step, each with a title naming the step and its exact share
    points = [g for g in svg.findall(f"{SVG}g") if (g.get("class") or "").startswith("point")]
    assert [p.get("class") for p in points] == [
        "point published",
        "point responded",
        "point published",
        "point responded",
        "point now",
    ]
    assert points[1].find(f"{SVG}title").text == "round 1: the vendor answered version 1: 67% (4/6)"  # type: ignore[union-attr]
    # the text alternative holds the very figures
    assert table_of(markup) == [
        ["V1", "version 1 published", "1", "0", "17%", "1/6"],
        ["R1", "round 1: the vendor answered version 1", "1", "1", "67%", "4/6"],
        ["V2", "version 2 published", "2", "1", "67%", "4/6"],
        ["R2", "round 2: the vendor answered version 2", "2", "2", "100%", "6/6"],
        ["now", "now, after changed positions", "2", "2", "83%", "5/6"],
    ]
    assert [row[4] for row in table_of(markup)] == [percent(s.cohesion) for s in history]
    # and in Dutch it speaks Dutch
    dutch = str(cohesion_chart(history, NL))
    assert "Cohesie over" in svg_of(dutch).find(f"{SVG}title").text  # type: ignore[union-attr]
    assert table_of(dutch)[0][:2] == ["V1", "versie 1 gepubliceerd"]
    # no history (nothing published yet): no chart
    assert str(cohesion_chart((), EN)) == ""


def test_the_support_chart_draws_the_live_shares() -> None:
    n = scripted()
    demand = {i.key: i for i in live_demand(n.s).items}
    rows = support_rows(list(n.s.items.values()), demand)
    markup = str(support_chart(rows, EN, n.s.policy.inclusion_share))
    svg = svg_of(markup)
    named_by_title_and_desc(svg)
    # each item's support and must bars, and the figures equal the demand's
    assert table_of(markup) == [
        [i.title, i.key, percent(demand[i.key].support_share), percent(demand[i.key].must_share), "yes"]
        for i in n.s.items.values()
    ]
    assert table_of(markup)[0][2:4] == ["100%", "83%"]  # retention-days: all 6, must 5
    assert svg.find(f".//{SVG}line[@class='inclusion']") is not None
    # The vendor's published figures, withheld unless disclosed, give no rows and so no chart
    vendor_board = reads.board(n.s, Audience("vendor", VENDOR))
    assert support_rows(list(n.s.items.values()), vendor_board["published"]) == []


def test_the_vendor_sees_support_only_when_the_policy_discloses_it() -> None:
    n = scripted(Policy(disclose_support_to_vendor=True))
    vendor_board = reads.board(n.s, Audience("vendor", VENDOR))
    rows = support_rows(list(n.s.items.values()), vendor_board["published"])
    assert [r.key for r in rows] == ["retention-days", "no-ai-training", "data-location"]
    assert vendor_board["inclusion_share"] is None  # no policy line on the vendor's chart


def test_the_heatmap_names_members_for_the_coordinator_and_counts_for_members() -> None:
    n = scripted()
    markup = str(satisfaction_heatmap(satisfaction_grid(n.s, COORD), EN))
    svg = svg_of(markup)
    named_by_title_and_desc(svg)
    cells = [g.get("class") for g in svg.iter(f"{SVG}g") if (g.get("class") or "").startswith("cell")]
    expected = ("satisfied", "satisfied", "no_must", "satisfied", "no_must", "satisfied", "no_must", "no_must")
    assert cells == [f"cell {c}" for c in (*expected, "unsatisfied")]
    rows = table_of(markup)
    assert rows[:3] == [
        [NAMES[0], "3", "✓ satisfied", "✓ satisfied", f"{DASH} no must position"],
        [NAMES[1], "2", "✓ satisfied", f"{DASH} no must position", "✓ satisfied"],
        [NAMES[2], "1", f"{DASH} no must position", f"{DASH} no must position", "✗ not satisfied"],
    ]
    assert rows[3:] == [
        ["✓ satisfied", "", "2", "1", "1"],
        ["✗ not satisfied", "", "0", "0", "1"],
        [f"{DASH} no must position", "", "1", "2", "1"],
    ]
    # a member's (not transparent) heat map holds the counts and no name
    member = str(satisfaction_heatmap(satisfaction_grid(n.s, Audience("member", "m1")), EN))
    svg_of(member)
    assert not any(name in member for name in NAMES)
    assert table_of(member) == rows[3:]


def test_a_members_positions_chart() -> None:
    n = scripted()
    markup = str(own_positions_chart(own_positions(n.s, Audience("member", "m2")), EN))
    svg = svg_of(markup)
    named_by_title_and_desc(svg)
    assert table_of(markup) == [
        ["retention days", "must", "≤ 30", "7", "30", "✓ satisfied"],
        ["data location", "must", "NL, EU", "NL", "EU", "✓ satisfied"],
    ]
    assert svg.find(f".//{SVG}circle[@class='mine']") is not None


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_charts_colours_have_aa_contrast() -> None:
    # Every colour that writes text or draws a mark on white, and white on the heat map's cells
    for colour in (INK, MUTED, ACCENT, OK, BAD, WARN):
        assert contrast(colour, "#ffffff") >= 4.5, colour
    assert contrast("#ffffff", OK) >= 4.5 and contrast("#ffffff", BAD) >= 4.5
    assert contrast(MUTED, "#eef0f3") >= 4.5  # the dash on a "no must position" cell


def test_the_board_template_draws_the_charts_for_each_audience() -> None:
    # Given the scripted negotiation, drawn as each party's board
    n = scripted()

    def board(viewer: Audience) -> str:
        data = reads.board(n.s, viewer)
        template = templates.env.get_template("_charts.html")
        return template.render(t=EN, lang="en", item_words=ItemWords(EN), **data)

    coordinator, member, vendor = board(COORD), board(Audience("member", "m1")), board(Audience("vendor", VENDOR))
    # Then the coordinator gets cohesion, support and the named heat map
    assert all(f'id="{c}"' in coordinator for c in ("cohesion-history", "support-shares", "satisfaction-heatmap"))
    assert all(name in coordinator for name in NAMES)
    # a member cohesion, support, the counts and its own positions, and no other member's name
    assert all(
        f'id="{c}"' in member for c in ("cohesion-history", "support-shares", "satisfaction-heatmap", "own-positions")
    )
    assert NAMES[1] not in member and NAMES[2] not in member and "m2" not in member and "m3" not in member
    # the vendor no chart at all (support is not disclosed): no cohesion, no member
    assert "cohesion" not in vendor.lower() and not any(name in vendor for name in NAMES)


def test_only_the_coordinator_reads_the_report() -> None:
    n = scripted()
    assert reads.report(n.s, COORD)["satisfaction_grid"] is not None
    for viewer in (Audience("member", "m1"), Audience("vendor", VENDOR)):
        with pytest.raises(Rejection) as refused:
            reads.report(n.s, viewer)
        assert refused.value.status == 403


def test_the_heat_map_stays_small_for_the_largest_negotiation() -> None:
    # Given a grid of 500 members by 500 included must items (the hub's largest negotiation)
    from streams.core.figures import GridColumn, GridRow, SatisfactionGrid

    columns = tuple(GridColumn(f"item-{i}", f"Item {i}", 250, 250, 0) for i in range(500))
    rows = tuple(
        GridRow(f"org-{m}", f"Member {m}", 1, tuple("satisfied" if (m + i) % 2 else "unsatisfied" for i in range(500)))
        for m in range(500)
    )
    # When the coordinator's heat map is drawn
    html = str(satisfaction_heatmap(SatisfactionGrid(columns, rows, 500), EN))
    # Then it draws and lists only the first 60 members and 40 items, and says how many more there are
    figure = ET.fromstring(html)
    assert len(figure.findall(".//{http://www.w3.org/2000/svg}g[@class='member']")) == 60
    assert "… and 440 more members" in html and "… and 460 more items" in html
    body = figure.findall(".//table/tbody/tr")
    assert len(body) == 60 + 1 + 3  # the members drawn, the "more" line, the three counts
    assert all(len(tr) == 2 + 40 + 1 for tr in body)
    assert len(html) < 1_000_000  # was 13.6 MB with every cell of every member
