"""The dashboard speaks English and Dutch: every text its templates and charts translate has a Dutch form."""

from __future__ import annotations

import re
from pathlib import Path

from services.dashboard.i18n import NL

DASHBOARD = Path(__file__).resolve().parents[2] / "services/dashboard"
LITERAL = re.compile(r"""\bt\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')\s*\)""")


def test_every_translated_text_has_a_dutch_form() -> None:
    # Given every literal text the templates and the chart code pass to t(...)
    texts = set()
    for path in [*DASHBOARD.glob("templates/*.html"), DASHBOARD / "charts.py"]:
        for match in LITERAL.finditer(path.read_text()):
            texts.add(match.group(1) if match.group(1) is not None else match.group(2))
    assert "why?" in texts  # the scan finds the texts at all
    # Then each has a Dutch form, with the same {placeholders}
    assert sorted(texts - NL.keys()) == []
    for text in texts:
        assert sorted(re.findall(r"\{\w+\}", NL[text])) == sorted(re.findall(r"\{\w+\}", text)), text
