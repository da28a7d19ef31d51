"""The board's "why?": the explanation in words and as a chart, drawn without a running hub."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from fractions import Fraction

import pytest

from schemas.negotiation import Policy
from services.dashboard.charts import BOTTOM, HEIGHT, TOP, cumulative_chart, number
from services.dashboard.i18n import ItemWords, translator
from services.dashboard.routes import templates
from streams.core.explanation import demand_explanation
from streams.core.views import Audience
from tests.unit.builders import COORDINATOR, Negotiation, item

SVG = "{http://www.w3.org/2000/svg}"


def negotiation(policy: Policy | None = None) -> Negotiation:
    n = Negotiation(
        item("retention-days", "at_most"), item("data-location", "one_of", ("NL", "EU", "EEA")), policy=policy
    )
    n.invite("m1", 3, name="Universiteit Leiden").invite("m2", 2, name="Hogeschool Rotterdam").invite("m3", 1)
    n.position("m1", "retention-days", "must", 30).position("m2", "retention-days", "should", 14.5)
    n.position("m3", "retention-days", "should", 7)
    n.position("m1", "data-location", "must", accepted=("NL",)).position(
        "m2", "data-location", "must", accepted=("EU",)
    )
    return n


def why(n: Negotiation, viewer: Audience, language: str = "en") -> str:
    explained = {e.key: e for e in demand_explanation(n.s, viewer).items}
    page = templates.env.from_string(
        '{% from "_why.html" import why with context %}'
        "{% for k, e in explained.items() %}{{ why(e, items[k]) }}{% endfor %}"
    )
    t = translator(language)
    return page.render(explained=explained, items=n.s.items, t=t, item_words=ItemWords(t))


def test_the_chart_marks_q_c_and_the_target() -> None:
    # Given values 7 (weight 1), 14.5 (2) and 30 (3) at coverage 1/2: C = 6, q·C = 3
    n = negotiation(Policy(coverage=Fraction(1, 2)))
    (explained, _) = demand_explanation(n.s, Audience("coordinator", COORDINATOR)).items
    assert explained.target == 30
    # When its chart is drawn
    svg = ET.fromstring(str(cumulative_chart(explained, translator("en"), "days")))
    # Then there is one column per distinct value, as high as its cumulative weight (at or above)
    bars = svg.findall(f"{SVG}rect")
    plot = HEIGHT - TOP - BOTTOM
    heights = [float(b.get("height")) for b in bars]  # type: ignore[arg-type]
    assert heights == pytest.approx([plot * 6 / 6, plot * 5 / 6, plot * 3 / 6], abs=0.1)
    # the target's column (30, where the weight at or above first reaches 3) is marked, and
    # the ones that reach q·C are told apart from the ones that do not
    assert [b.get("class") for b in bars] == ["bar reaches", "bar reaches", "bar reaches target"]
    assert [b.find(f"{SVG}title").text for b in bars] == ["7 days: 6", "14.5 days: 5", "30 days: 3"]  # type: ignore[union-attr]
    # and the dashed line is at q·C = 3, halfway up
    (line,) = svg.findall(f"{SVG}line[@class='threshold']")
    assert float(line.get("y1")) == pytest.approx(TOP + plot / 2, abs=0.1)  # type: ignore[arg-type]
    assert "q·C = 3" in "".join(svg.itertext())
    # And every coordinate is a plain number (no fraction text), and nothing is styled inline
    for element in svg.iter():
        for name in ("x", "y", "width", "height", "x1", "y1", "x2", "y2"):
            if element.get(name) is not None:
                float(element.get(name))  # type: ignore[arg-type]
        assert element.get("style") is None


def test_the_why_names_members_only_for_the_coordinator_and_speaks_dutch() -> None:
    n = negotiation()
    # When the coordinator opens the "why?" of the board
    coordinator = why(n, Audience("coordinator", COORDINATOR))
    # Then it says in words why, names the members, and draws the chart
    assert "Included: members with a must position hold 5/6 (83%) of the weight." in coordinator
    assert "Universiteit Leiden" in coordinator and "<svg" in coordinator
    assert re.search(r"largest stated value .* reaches q·C: 7\.", coordinator)
    assert "No option is accepted by every considered position (a conflict)" in coordinator
    # And a member without transparency reads the same figures without the others' names, in Dutch
    member = why(n, Audience("member", "m3"), "nl")
    assert "Universiteit Leiden" not in member and "Hogeschool Rotterdam" not in member
    assert "een lid" in member and "waarom?" in member
    assert "Opgenomen: leden met een moet-standpunt hebben 5/6 (83%) van het gewicht." in member
    assert "q·C bereikt: 7." in member


def test_numbers_are_written_as_people_write_them() -> None:
    assert [number(Fraction(29, 2)), number(Fraction(30)), number(Fraction(1, 3)), number("x")] == [
        "14.5",
        "30",
        "1/3",
        "x",
    ]
