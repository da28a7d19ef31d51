"""Small server-drawn SVG charts for the board: the "why?" of a target and the commitments' due
dates. Presentation only, no rule of the spec.

The cumulative-weight chart of an at_most / at_least item draws what the explanation document
(``streams.core.explanation``) already says: one column per distinct considered value, as high
as its cumulative weight, a dashed line at q·C, and the target's column marked. It is written
here rather than with a charting library because it is a handful of rectangles and lines, and
the page's Content-Security-Policy allows no script and no inline style: the SVG uses only
presentation attributes and classes from ``static/dashboard.css``. The values sit at equal
distances (an ordinal axis), so that close values stay apart and each column can be labelled.

The commitments' timeline (SPEC 9) puts every commitment's due date on one time axis with a dashed
line at today. Each status has a shape as well as a colour and is written out beside its row, so
the chart reads without colour; a legend names the shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from markupsafe import Markup, escape

from schemas.common import number_to_json
from schemas.documents import CommitmentsDocument, CommitmentView, ItemExplanation
from streams.core.figures import CohesionStep, OwnPosition, SatisfactionGrid

WIDTH, HEIGHT = 260, 130
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 10, 22
LABELLED = 8
"""With more distinct values than this, only the first, the last and the target are labelled."""


def number(value: object) -> str:
    """An exact number as people write it: ``14.5``, not ``29/2`` (a fraction only when it has
    no finite decimal form)."""
    if isinstance(value, Fraction):
        return str(number_to_json(value))
    return str(value)


def _fraction(text: str) -> Fraction:
    numerator, denominator = text.split("/")
    return Fraction(int(numerator), int(denominator))


def cumulative_chart(explained: ItemExplanation, t: Callable[[str], str], unit: str | None = None) -> Markup:
    """The cumulative-weight chart of an at_most / at_least item's explanation, as inline SVG."""
    derivation = explained.derivation
    if derivation is None or derivation.curve is None or derivation.threshold is None:
        return Markup("")
    curve, considered = derivation.curve, derivation.considered_weight
    threshold = _fraction(derivation.threshold.fraction)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(curve)
    top = max(considered, 1)

    def y(weight: Fraction | int) -> float:
        return round(TOP + plot_h * float(1 - Fraction(weight) / top), 1)

    key = escape(explained.key)
    title = t("Cumulative weight of the considered positions per stated value")
    at = t("at or above") if explained.kind == "at_most" else t("at or below")
    description = t("Each column: the weight of the considered positions {at} the value. Line: q·C = {qc}.").format(
        at=at, qc=number(threshold)
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="chart-title-{key} chart-desc-{key}">',
        f'<title id="chart-title-{key}">{escape(title)}</title>',
        f'<desc id="chart-desc-{key}">{escape(description)}</desc>',
        # the axes
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#545b64"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}" '
        'stroke="#545b64"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" font-size="9">{considered}</text>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end" font-size="9">0</text>',
    ]
    many = len(curve) > LABELLED
    for index, point in enumerate(curve):
        target = point.value == explained.target
        x = round(LEFT + index * slot + slot * 0.15, 1)
        width = round(slot * 0.7, 1)
        classes = "bar" + (" reaches" if point.reaches else "") + (" target" if target else "")
        fill = "#0b5cad" if target else "#9dbfe3" if point.reaches else "#d5d9df"
        label = f"{number(point.value)}{' ' + unit if unit else ''}: {point.cumulative}"
        parts.append(
            f'<rect class="{classes}" x="{x}" y="{y(point.cumulative)}" width="{width}" '
            f'height="{round(TOP + plot_h - y(point.cumulative), 1)}" fill="{fill}">'
            f"<title>{escape(label)}</title></rect>"
        )
        if not many or target or index in (0, len(curve) - 1):
            parts.append(
                f'<text class="tick{" target" if target else ""}" x="{round(LEFT + (index + 0.5) * slot, 1)}" '
                f'y="{HEIGHT - 8}" text-anchor="middle" font-size="9">{escape(number(point.value))}</text>'
            )
    line_y = y(threshold)
    parts += [
        f'<line class="threshold" x1="{LEFT}" y1="{line_y}" x2="{WIDTH - RIGHT}" y2="{line_y}" '
        'stroke="#a3161b" stroke-dasharray="4 3"/>',
        f'<text class="threshold-label" x="{WIDTH - RIGHT}" y="{round(line_y - 3, 1)}" text-anchor="end" '
        f'font-size="9" fill="#a3161b">q·C = {escape(number(threshold))}</text>',
        "</svg>",
    ]
    return Markup("".join(parts))


# -- the commitments' timeline (SPEC 9) ------------------------------------------------------------

TIMELINE_WIDTH = 920
LABEL_WIDTH, STATUS_WIDTH, ROW, HEAD, FOOT = 240, 150, 32, 36, 62
"""Left column: the commitment; right column: its status in words; the head holds "today", the
foot the date ticks and the legend."""
STATUSES = ("open", "delivered", "met", "not_met", "overdue")
COLOURS = {
    "open": "#545b64",
    "delivered": "#0b5cad",
    "met": "#136b2c",
    "not_met": "#a3161b",
    "overdue": "#8a5300",
    "proposed": "#545b64",
}
SYMBOLS = {"open": "○", "delivered": "◆", "met": "✓", "not_met": "✗", "overdue": "▲", "proposed": "◌"}
"""The shape of each status in words and badges: the chart draws the same shapes, so that no
status is told by its colour alone."""


def commitment_status(commitment: CommitmentView) -> str:
    """The status a party reads: the core's, except that an open commitment whose latest verdict
    is ``not_met`` reads "not met" (it waits for a new delivery; the tick may still find it overdue)."""
    if commitment.status == "open" and commitment.verdict is not None and commitment.verdict.verdict == "not_met":
        return "not_met"
    return commitment.status


def status_words(t: Callable[[str], str]) -> dict[str, str]:
    """Each status (and verdict: ``met``, ``not_met``) in the reader's words."""
    return {
        "open": t("open"),
        "delivered": t("delivered"),
        "met": t("met"),
        "not_met": t("not met"),
        "overdue": t("overdue"),
        "proposed": t("proposed"),
    }


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def _marker(status: str, x: float, y: float) -> str:
    """The status's shape at (x, y), in its colour: a hollow circle (open), a diamond (delivered),
    a disc with a tick (met), a cross (not met), a triangle (overdue), a dashed circle (proposed)."""
    colour = COLOURS[status]
    if status == "open":
        return f'<circle cx="{x}" cy="{y}" r="6" fill="#ffffff" stroke="{colour}" stroke-width="2"/>'
    if status == "proposed":
        return (
            f'<circle cx="{x}" cy="{y}" r="6" fill="#ffffff" stroke="{colour}" stroke-width="1.5" '
            'stroke-dasharray="2 2"/>'
        )
    if status == "delivered":
        return f'<path d="M{x} {y - 7} L{x + 7} {y} L{x} {y + 7} L{x - 7} {y} Z" fill="{colour}"/>'
    if status == "met":
        return (
            f'<circle cx="{x}" cy="{y}" r="7" fill="{colour}"/>'
            f'<path d="M{x - 3.5} {y} L{x - 1} {y + 3} L{x + 4} {y - 3}" fill="none" stroke="#ffffff" '
            'stroke-width="2"/>'
        )
    if status == "not_met":
        return (
            f'<path d="M{x - 5} {y - 5} L{x + 5} {y + 5} M{x - 5} {y + 5} L{x + 5} {y - 5}" '
            f'stroke="{colour}" stroke-width="3"/>'
        )
    return f'<path d="M{x} {y - 7} L{x + 7} {y + 6} L{x - 7} {y + 6} Z" fill="{colour}"/>'  # overdue


def _short(text: str, length: int = 30) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


_EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()


def commitments_timeline(
    document: CommitmentsDocument,
    t: Callable[[str], str],
    now: datetime,
    title_of: Callable[[CommitmentView], str] = lambda commitment: commitment.title,
) -> Markup:
    """The commitments' due dates on one time axis, as inline SVG: a row per commitment with its
    title, a shape at its due date (or the date a plan awaiting the coordinator proposes) and its
    status in words, and a dashed line at ``now`` ("today"). Each row has a title to hover, and the
    whole chart a description that says the same in words."""
    commitments = document.commitments
    if not commitments:
        return Markup("")
    proposed = {line.key: line.due for line in document.plan.items} if document.plan else {}
    words = status_words(t)
    rows: list[tuple[CommitmentView, str, datetime | None]] = []
    for commitment in commitments:
        if commitment.due is None and commitment.key in proposed:
            rows.append((commitment, "proposed", proposed[commitment.key]))
        else:
            rows.append((commitment, commitment_status(commitment), commitment.due))
    dates = [due for _, _, due in rows if due is not None]
    if not dates:  # nothing is planned yet: there is nothing to put on a time axis
        return Markup("")
    dates.append(now)
    # In seconds (floats), so that a date near the end of the calendar cannot overflow the axis.
    first, last = min(dates).timestamp(), max(dates).timestamp()
    span = max(last - first, timedelta(days=14).total_seconds())
    start, end = first - span * 0.06, first + span * 1.06
    plot_left, plot_right = LABEL_WIDTH, TIMELINE_WIDTH - STATUS_WIDTH
    height = HEAD + ROW * len(rows) + FOOT

    def x(moment: datetime) -> float:
        return round(plot_left + (plot_right - plot_left) * ((moment.timestamp() - start) / (end - start)), 1)

    counts = {status: sum(1 for _, s, _ in rows if s == status) for status in (*STATUSES, "proposed")}
    summary = ", ".join(f"{n} {words[status]}" for status, n in counts.items() if n)
    title = t("Due dates of the commitments")
    today_word, due_word = t("today"), t("due")
    description = t("{n} commitments: {summary}. Today is {today}.").format(
        n=len(rows), summary=summary, today=_day(now)
    )
    bottom = HEAD + ROW * len(rows)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart commitments-timeline" '
        f'viewBox="0 0 {TIMELINE_WIDTH} {height}" width="{TIMELINE_WIDTH}" height="{height}" role="img" '
        'aria-labelledby="commitments-chart-title commitments-chart-desc">',
        f'<title id="commitments-chart-title">{escape(title)}</title>',
        f'<desc id="commitments-chart-desc">{escape(description)}</desc>',
        f'<line class="axis" x1="{plot_left}" y1="{bottom}" x2="{plot_right}" y2="{bottom}" stroke="#545b64"/>',
    ]
    for index in range(5):  # five dates along the axis, the first and the last at its ends
        seconds = min(max(start + (end - start) * (index / 4), _EARLIEST), _LATEST)
        moment = datetime.fromtimestamp(seconds, UTC)
        tick = x(moment)
        parts.append(
            f'<line class="tick" x1="{tick}" y1="{bottom}" x2="{tick}" y2="{bottom + 4}" stroke="#545b64"/>'
            f'<text class="tick" x="{tick}" y="{bottom + 16}" text-anchor="middle" font-size="12" '
            f'fill="#545b64">{_day(moment)}</text>'
        )
    for index, (commitment, status, due) in enumerate(rows):
        y = HEAD + ROW * index + ROW / 2
        words_for = words[status]
        when = _day(due) if due is not None else t("no due date yet")
        label = f"{title_of(commitment)} ({commitment.key}): {due_word} {when}, {words_for}"
        parts.append(
            f'<g class="row {status}" id="timeline-{escape(commitment.key)}"><title>{escape(label)}</title>'
            f'<line class="guide" x1="{plot_left}" y1="{y}" x2="{plot_right}" y2="{y}" stroke="#c9ced6" '
            'stroke-dasharray="1 3"/>'
            f'<text class="name" x="{plot_left - 10}" y="{y + 4}" text-anchor="end" font-size="13" '
            f'fill="#1b1f24">{escape(_short(title_of(commitment)))}</text>'
        )
        if due is None:
            undated = t("no due date yet")
            parts.append(
                f'<text class="undated" x="{plot_right - 6}" y="{y + 4}" text-anchor="end" font-size="12" '
                'font-style="italic" '
                f'fill="#545b64">{escape(undated)}</text>'
            )
        else:
            parts.append(_marker(status, x(due), y))
        parts.append(
            f'<text class="status" x="{plot_right + 12}" y="{y + 4}" font-size="13" font-weight="700" '
            f'fill="{COLOURS[status]}">{escape(SYMBOLS[status] + " " + words_for)}</text></g>'
        )
    today = x(now)
    parts += [
        f'<line class="today" x1="{today}" y1="{HEAD - 10}" x2="{today}" y2="{bottom}" stroke="#1b1f24" '
        'stroke-width="1.5" stroke-dasharray="5 3"/>',
        f'<text class="today" x="{today}" y="{HEAD - 14}" text-anchor="middle" font-size="12" font-weight="700" '
        f'fill="#1b1f24">{escape(today_word)} {_day(now)}</text>',
    ]
    # the legend: every shape with its word, so that the chart reads without colour
    legend_y, step = height - 14, (TIMELINE_WIDTH - 20) / 6
    for index, status in enumerate((*STATUSES, "proposed")):
        left = 16 + index * step
        parts.append(
            f'<g class="legend {status}">{_marker(status, left, legend_y - 4)}'
            f'<text x="{left + 12}" y="{legend_y}" font-size="12" fill="#1b1f24">{escape(words[status])}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- the board's charts (issue 20): cohesion over time, support, satisfaction, a member's positions ---
#
# Each is a <figure>: the SVG (role="img", named by its <title> and <desc> through
# aria-labelledby), a caption, and a <details> with the figures as a table, the chart's text
# alternative. Marks carry a shape or a word as well as a colour; every colour used for text or
# for a mark that carries meaning has at least 4.5:1 against white (tests/unit/test_board_charts.py
# computes it), and the pale fills only back marks that are outlined or labelled.

INK, MUTED, LINE = "#1b1f24", "#545b64", "#c9ced6"
ACCENT, OK, BAD, WARN = "#0b5cad", "#136b2c", "#a3161b", "#8a5300"
PALE, PALE_ACCENT = "#eef0f3", "#dce8f6"
DASH = "\u2013"
"""An en dash: nothing (no must position, no value)."""


def percent(share: Fraction | float) -> str:
    """A share as the board writes it: ``75%`` (rounded half to even, as ``"%.0f"`` does)."""
    return "%.0f%%" % (float(share) * 100)


def weights(step: CohesionStep) -> str:
    """A cohesion step's exact share as its weights, ``satisfied/W`` (``9/12``, not ``3/4``)."""
    return f"{step.satisfied_weight}/{step.total_weight}"


def _svg_open(css: str, width: float, height: float, name: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-labelledby="{name}-title {name}-desc">'
    )


def _figure(
    name: str, caption: str, svg: str, headers: list[str], rows: list[list[str]], t: Callable[[str], str]
) -> Markup:
    """The chart with its caption and its figures as a table (the text alternative)."""
    summary = t("The figures")
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + f'<th scope="row">{escape(row[0])}</th>' + "".join(f"<td>{escape(c)}</td>" for c in row[1:]) + "</tr>"
        for row in rows
    )
    return Markup(
        f'<figure class="board-chart" id="{name}">{svg}'
        f"<figcaption>{escape(caption)}</figcaption>"
        f'<details class="chart-figures" id="{name}-figures"><summary>{escape(summary)}</summary>'
        f'<table class="figures"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></details>'
        "</figure>"
    )


def _text(
    x: float, y: float, text: str, size: int = 12, anchor: str = "start", fill: str = INK, extra: str = ""
) -> str:
    return (
        f'<text x="{round(x, 1)}" y="{round(y, 1)}" font-size="{size}" text-anchor="{anchor}" fill="{fill}"{extra}>'
        f"{escape(text)}</text>"
    )


def _legend(marks: Sequence[tuple[str, str]], x: float, y: float) -> str:
    """A legend's entries side by side from ``x`` on the baseline ``y``: each ``(mark, words)``, the
    mark an SVG fragment drawn with its left edge at 0 and centred on y = -4 (moved into place with
    a translation), the words after it. The space a word takes is estimated (0.62 em a character
    at 11 px), so that Dutch, which runs longer, does not run into the next entry."""
    parts = []
    for mark, words in marks:
        parts.append(f'<g transform="translate({round(x, 1)} {y})">{mark}</g>' + _text(x + 18, y, words, 11))
        x += 18 + len(words) * 11 * 0.62 + 22
    return "".join(parts)


def _moment_words(step: CohesionStep, t: Callable[[str], str]) -> tuple[str, str]:
    """(the short label on the axis, the words in the table) of a cohesion step."""
    if step.moment == "published":
        return t("V{n}").format(n=step.version), t("version {n} published").format(n=step.version)
    if step.moment == "responded":
        return t("R{n}").format(n=step.round), t("round {n}: the vendor answered version {v}").format(
            n=step.round, v=step.version
        )
    return t("now"), t("now, after changed positions")


COHESION_WIDTH, COHESION_HEIGHT = 640, 220


def cohesion_chart(history: Sequence[CohesionStep], t: Callable[[str], str], width: int = COHESION_WIDTH) -> Markup:
    """Cohesion after each published version (V1, V2 …: hollow squares) and each vendor response
    (R1, R2 …: discs), and ``now`` (a ring) when positions moved it since: a line over an ordinal
    axis, 0 to 100 %, each point labelled with its percentage. ``history``: the core's
    ``streams.core.figures.cohesion_history``. A narrower ``width`` (the report's half page)
    keeps the text's size on paper."""
    if not history:
        return Markup("")
    left, right, top, bottom = 46, 16, 22, 40
    plot_w, plot_h = width - left - right, COHESION_HEIGHT - top - bottom
    slot = plot_w / len(history)
    many = len(history) > 16

    def y(share: Fraction) -> float:
        return round(top + plot_h * float(1 - share), 1)

    labels = [_moment_words(step, t) for step in history]
    points = [(round(left + (i + 0.5) * slot, 1), y(step.cohesion)) for i, step in enumerate(history)]
    summary = ", ".join(f"{short} {percent(step.cohesion)}" for (short, _), step in zip(labels, history, strict=True))
    title = t("Cohesion over demand versions and rounds")
    description = t(
        "Share of the coalition's weight that the current offers satisfy, after each step: {steps}."
    ).format(steps=summary)
    parts = [
        _svg_open("cohesion-history", width, COHESION_HEIGHT, "cohesion-chart"),
        f'<title id="cohesion-chart-title">{escape(title)}</title>',
        f'<desc id="cohesion-chart-desc">{escape(description)}</desc>',
    ]
    for share in (Fraction(0), Fraction(1, 2), Fraction(1)):
        parts.append(
            f'<line class="grid" x1="{left}" y1="{y(share)}" x2="{width - right}" y2="{y(share)}" '
            f'stroke="{LINE}" stroke-dasharray="{"none" if share == 0 else "2 3"}"/>'
            + _text(left - 6, y(share) + 4, percent(share), 11, "end", MUTED)
        )
    parts.append(
        f'<polyline class="cohesion-line" points="{" ".join(f"{x},{py}" for x, py in points)}" fill="none" '
        f'stroke="{ACCENT}" stroke-width="2"/>'
    )
    for index, (step, (x, py), (short, words)) in enumerate(zip(history, points, labels, strict=True)):
        label = f"{words}: {percent(step.cohesion)} ({weights(step)})"
        if step.moment == "published":
            mark = (
                f'<rect x="{x - 5}" y="{py - 5}" width="10" height="10" fill="#ffffff" '
                f'stroke="{ACCENT}" stroke-width="2"/>'
            )
        elif step.moment == "responded":
            mark = f'<circle cx="{x}" cy="{py}" r="5.5" fill="{ACCENT}"/>'
        else:
            mark = (
                f'<circle cx="{x}" cy="{py}" r="6" fill="#ffffff" stroke="{INK}" stroke-width="2" '
                'stroke-dasharray="3 2"/>'
            )
        parts.append(f'<g class="point {step.moment}"><title>{escape(label)}</title>{mark}</g>')
        if not many or index in (0, len(history) - 1) or index % 4 == 0:
            parts.append(
                _text(
                    x,
                    py - 10 if py > top + 14 else py + 20,
                    percent(step.cohesion),
                    11,
                    "middle",
                    INK,
                    ' font-weight="700"',
                )
            )
            parts.append(_text(x, COHESION_HEIGHT - bottom + 19, short, 11, "middle", MUTED))
    parts += [
        _legend(
            [
                (
                    f'<rect x="0" y="-9" width="9" height="9" fill="#ffffff" stroke="{ACCENT}" stroke-width="2"/>',
                    t("V: version published"),
                ),
                (f'<circle cx="5" cy="-4" r="5" fill="{ACCENT}"/>', t("R: the vendor's answer (round)")),
            ],
            left,
            COHESION_HEIGHT - 8,
        ),
        "</svg>",
    ]
    rows = [
        [short, words, str(step.version), str(step.round), percent(step.cohesion), weights(step)]
        for step, (short, words) in zip(history, labels, strict=True)
    ]
    headers = [t("Step"), t("What happened"), t("Version"), t("Round"), t("Cohesion"), t("Satisfied weight / W")]
    caption = t("Cohesion after each published version and each answer of the vendor.")
    return _figure("cohesion-history", caption, "".join(parts), headers, rows, t)


@dataclass(frozen=True)
class SupportRow:
    key: str
    title: str
    support_share: float
    must_share: float
    included: bool


def support_rows(definitions: Sequence[Any], lines: dict[str, Any], words: Any = None) -> list[SupportRow]:
    """The support chart's rows: the items in the negotiation's order with the figures the viewer's
    demand document gives (the live demand; for the vendor the latest published version, whose
    figures are absent unless the policy discloses them: then there are no rows)."""
    rows = []
    for definition in definitions:
        line = lines.get(definition.key)
        if line is None or line.support_share is None or line.must_share is None:
            continue
        included = getattr(line, "included", True)  # a published item is included
        title = words.title(definition) if words is not None else definition.title
        rows.append(SupportRow(definition.key, title, line.support_share, line.must_share, included))
    return rows


SUPPORT_WIDTH, SUPPORT_LABEL, SUPPORT_ROW = 760, 250, 26
REPORT_SUPPORT_WIDTH = 540
"""The support chart in the report's half-page column."""
REPORT_COHESION_WIDTH = 480
"""The cohesion chart in the report's half-page column."""


def support_chart(
    rows: Sequence[SupportRow],
    t: Callable[[str], str],
    inclusion_share: Fraction | None = None,
    width: int = SUPPORT_WIDTH,
) -> Markup:
    """Support and must share per item: a horizontal bar per item, its outline as long as the
    support share and its solid part as long as the must share (the must supporters are among the
    supporters), both written out beside it; a dashed line at the policy's inclusion share when
    the viewer may see the policy's effect (not the vendor). A narrower ``width`` (the report's
    half page) shortens the bars and the titles, so that the text keeps its size on paper."""
    if not rows:
        return Markup("")
    head, foot = 24, 30
    label_width = SUPPORT_LABEL if width >= SUPPORT_WIDTH else 190
    bar_left, bar_right = label_width, width - 150
    height = head + SUPPORT_ROW * len(rows) + foot

    def x(share: float | Fraction) -> float:
        return round(bar_left + (bar_right - bar_left) * float(share), 1)

    title = t("Support and must share per item")
    description = t(
        "Per item, the share of the coalition's weight with a position on it, and with a must position: {items}."
    ).format(
        items="; ".join(
            t("{item}: support {support}, must {must}").format(
                item=row.key, support=percent(row.support_share), must=percent(row.must_share)
            )
            for row in rows
        )
    )
    parts = [
        _svg_open("support-shares", width, height, "support-chart"),
        f'<title id="support-chart-title">{escape(title)}</title>',
        f'<desc id="support-chart-desc">{escape(description)}</desc>',
    ]
    for share in (0, 0.5, 1):
        parts.append(
            f'<line class="grid" x1="{x(share)}" y1="{head - 4}" x2="{x(share)}" y2="{head + SUPPORT_ROW * len(rows)}" '
            f'stroke="{LINE}"/>' + _text(x(share), head - 8, percent(share), 11, "middle", MUTED)
        )
    for index, row in enumerate(rows):
        top = head + SUPPORT_ROW * index
        label = f"{row.title} ({row.key}): " + t("support {support}, must {must}").format(
            support=percent(row.support_share), must=percent(row.must_share)
        )
        if not row.included:
            label += " · " + t("not included")
        name = _short(row.title, 36 if label_width == SUPPORT_LABEL else 24) + ("" if row.included else " *")
        parts.append(
            f'<g class="item{"" if row.included else " excluded"}" id="support-{escape(row.key)}">'
            f"<title>{escape(label)}</title>"
            + _text(bar_left - 8, top + 17, name, 12, "end", INK if row.included else MUTED)
            + f'<rect class="support" x="{bar_left}" y="{top + 5}" width="{max(x(row.support_share) - bar_left, 0)}" '
            f'height="15" fill="{PALE_ACCENT}" stroke="{ACCENT}" stroke-width="1.5"/>'
            + f'<rect class="must" x="{bar_left}" y="{top + 5}" width="{max(x(row.must_share) - bar_left, 0)}" '
            f'height="15" fill="{ACCENT}"/>'
            + _text(
                bar_right + 10,
                top + 17,
                t("{support} · must {must}").format(support=percent(row.support_share), must=percent(row.must_share)),
                12,
            )
            + "</g>"
        )
    bottom = head + SUPPORT_ROW * len(rows)
    if inclusion_share is not None:
        parts.append(
            f'<line class="inclusion" x1="{x(inclusion_share)}" y1="{head - 2}" x2="{x(inclusion_share)}" '
            f'y2="{bottom + 4}" '
            f'stroke="{BAD}" stroke-width="1.5" stroke-dasharray="5 3"/>'
            + _text(
                x(inclusion_share),
                bottom + 16,
                t("inclusion share {share}").format(share=percent(inclusion_share)),
                11,
                "middle",
                BAD,
            )
        )
    legend_y = height - 6
    parts += [
        f'<rect x="16" y="{legend_y - 10}" width="16" height="10" fill="{PALE_ACCENT}" stroke="{ACCENT}" '
        'stroke-width="1.5"/>',
        _text(38, legend_y, t("support"), 11),
        f'<rect x="110" y="{legend_y - 10}" width="16" height="10" fill="{ACCENT}"/>',
        _text(132, legend_y, t("must"), 11),
    ]
    if any(not row.included for row in rows):
        parts.append(_text(190, legend_y, t("* not included in the joint demand"), 11, "start", MUTED))
    parts.append("</svg>")
    table = [
        [row.title, row.key, percent(row.support_share), percent(row.must_share), t("yes") if row.included else t("no")]
        for row in rows
    ]
    headers = [t("Item"), t("Key"), t("Support"), t("Must"), t("Included")]
    caption = t("Support: the share of the coalition's weight with a position on the item; must: with a must position.")
    return _figure("support-shares", caption, "".join(parts), headers, table, t)


GRID_LABEL, GRID_CELL, GRID_ROW, GRID_HEAD = 220, 34, 22, 128
GRID_ROWS = 60
GRID_COLUMNS = 40
"""At most this many items are drawn as the heat map's columns (and listed in its figures); the
rest are said in words, so that a board stays small at 500 members x 500 items."""
"""At most this many members are drawn (a coalition of a thousand would be a poster): the rest are
counted below the grid, and every member is in the board's members table."""
REPORT_GRID_ROWS = 24
"""The report's grid draws fewer, so that the page stays one A4 page."""
CELL_MARKS = {"satisfied": "✓", "unsatisfied": "✗", "no_must": DASH}


def cell_words(t: Callable[[str], str]) -> dict[str, str]:
    return {"satisfied": t("satisfied"), "unsatisfied": t("not satisfied"), "no_must": t("no must position")}


def satisfaction_heatmap(
    grid: SatisfactionGrid | None, t: Callable[[str], str], limit: int = GRID_ROWS, words: Any = None
) -> Markup:
    """Members by included must items: per cell, whether the current offer satisfies the member's
    must position (✓ on green), does not (✗ on red) or the member holds no must position there
    (a dash on grey); below, the counts per item. ``grid``: the core's ``satisfaction_grid``, whose rows
    name members only for whom may see them (the coordinator; members under transparent
    positions): without rows, only the counts are drawn."""
    if grid is None or not grid.columns:
        return Markup("")
    if words is not None:  # the items' titles in the reader's language (``i18n.ItemWords``)
        grid = replace(grid, columns=tuple(replace(c, title=words.title(c)) for c in grid.columns))
    words = cell_words(t)
    columns, shown = grid.columns[:GRID_COLUMNS], grid.rows[:limit]
    hidden, hidden_columns = len(grid.rows) - len(shown), len(grid.columns) - len(columns)
    counts = ("satisfied", "unsatisfied", "no_must")
    body_rows = len(shown) + (1 if hidden else 0) + len(counts)
    width = GRID_LABEL + GRID_CELL * len(columns) + 130
    height = GRID_HEAD + GRID_ROW * body_rows + 12 + 30
    title = t("Satisfaction per member and must item")
    unsatisfied = [row.name for row in grid.rows if "unsatisfied" in row.cells]
    description = t(
        "{n} members, {k} included must items. Per item, satisfied / not satisfied / no must position: {counts}."
    ).format(
        n=grid.members,
        k=len(grid.columns),
        counts="; ".join(f"{c.key} {c.satisfied}/{c.unsatisfied}/{c.no_must}" for c in columns),
    )
    if hidden_columns:
        description += " " + t("… and {n} more items").format(n=hidden_columns)
    if grid.rows:
        named = ", ".join(unsatisfied[:limit]) + (
            f", … (+{len(unsatisfied) - limit})" if len(unsatisfied) > limit else ""
        )
        description += " " + t("Not satisfied on some item: {names}.").format(names=named or DASH)
    parts = [
        _svg_open("satisfaction-heatmap", width, height, "heatmap-chart"),
        f'<title id="heatmap-chart-title">{escape(title)}</title>',
        f'<desc id="heatmap-chart-desc">{escape(description)}</desc>',
    ]
    for index, column in enumerate(columns):
        cx = GRID_LABEL + GRID_CELL * index + GRID_CELL / 2
        parts.append(
            f'<text class="column" x="{cx}" y="{GRID_HEAD - 6}" font-size="11" fill="{INK}" '
            f'transform="rotate(-45 {cx} {GRID_HEAD - 6})"><title>{escape(column.title)}</title>'
            f"{escape(_short(column.key, 26))}</text>"
        )

    def cell(x: float, y: float, state: str, label: str) -> str:
        fill, ink = {"satisfied": (OK, "#ffffff"), "unsatisfied": (BAD, "#ffffff"), "no_must": (PALE, MUTED)}[state]
        return (
            f'<g class="cell {state}"><title>{escape(label)}</title>'
            f'<rect x="{x + 1}" y="{y + 1}" width="{GRID_CELL - 2}" height="{GRID_ROW - 2}" fill="{fill}"/>'
            + _text(x + GRID_CELL / 2, y + GRID_ROW / 2 + 5, CELL_MARKS[state], 13, "middle", ink, ' font-weight="700"')
            + "</g>"
        )

    y = GRID_HEAD
    for row in shown:
        parts.append(f'<g class="member" data-member="{escape(row.organisation_id)}">')
        parts.append(_text(GRID_LABEL - 8, y + GRID_ROW / 2 + 4, _short(row.name, 32), 12, "end"))
        for index, (column, state) in enumerate(zip(columns, row.cells[: len(columns)], strict=True)):
            parts.append(cell(GRID_LABEL + GRID_CELL * index, y, state, f"{row.name} · {column.key}: {words[state]}"))
        parts.append("</g>")
        y += GRID_ROW
    if hidden:
        parts.append(
            _text(GRID_LABEL - 8, y + GRID_ROW / 2 + 4, t("… and {n} more members").format(n=hidden), 12, "end", MUTED)
        )
        y += GRID_ROW
    y += 6
    parts.append(
        f'<line x1="{GRID_LABEL - 200}" y1="{y - 3}" x2="{GRID_LABEL + GRID_CELL * len(columns)}" y2="{y - 3}" '
        f'stroke="{MUTED}"/>'
    )
    for tally in counts:
        parts.append(
            f'<g class="count {tally}">'
            + _text(GRID_LABEL - 8, y + GRID_ROW / 2 + 4, f"{CELL_MARKS[tally]} {words[tally]}", 12, "end", MUTED)
        )
        for index, column in enumerate(columns):
            n = getattr(column, tally)
            parts.append(
                f"<g><title>{escape(f'{column.key}: {n} {words[tally]}')}</title>"
                + _text(GRID_LABEL + GRID_CELL * index + GRID_CELL / 2, y + GRID_ROW / 2 + 4, str(n), 12, "middle")
                + "</g>"
            )
        parts.append("</g>")
        y += GRID_ROW
    legend_y = height - 10
    left = 16
    for tally in counts:
        parts.append(
            cell(left, legend_y - GRID_ROW + 6, tally, words[tally]).replace('<g class="cell', '<g class="legend')
        )
        parts.append(_text(left + GRID_CELL + 6, legend_y, words[tally], 11))
        left += GRID_CELL + 150
    parts.append("</svg>")
    headers = [t("Member"), t("Weight"), *[c.key for c in columns]]
    cells = len(columns)
    table = [[row.name, str(row.weight), *[f"{CELL_MARKS[s]} {words[s]}" for s in row.cells[:cells]]] for row in shown]
    if hidden:
        table.append([t("… and {n} more members").format(n=hidden), "", *[""] * cells])
    table += [[f"{CELL_MARKS[s]} {words[s]}", "", *[str(getattr(c, s)) for c in columns]] for s in counts]
    if hidden_columns:
        headers.append(t("… and {n} more items").format(n=hidden_columns))
        table = [[*row, ""] for row in table]
    caption = (
        t("Per member and included must item: whether the vendor's current offers satisfy the member's must position.")
        if grid.rows
        else t("Per included must item: how many members the current offers satisfy (members are counted, not named).")
    )
    return _figure("satisfaction-heatmap", caption, "".join(parts), headers, table, t)


OWN_WIDTH, OWN_LABEL, OWN_LINE, OWN_ROW = 900, 240, 300, 40


def _words_of(value: Any, unit: str | None = None) -> str:
    """A target, an offer or a value in words: ``14 days``, ``NL, EU``, ``✓``."""
    if value is None:
        return DASH
    if value is True:
        return "✓"
    if isinstance(value, tuple | list):
        return ", ".join(value)
    return number(value) + (f" {unit}" if unit else "")


def _option_boxes(p: OwnPosition, left: float, mid: float, label: Callable[[str], str] = str) -> str:
    """A one_of position's options side by side: shaded and outlined in green where the position
    accepts it, a diamond in the target's options, a triangle over the option the offer amounts to."""
    assert p.options is not None
    step = OWN_LINE / len(p.options)
    target = set(p.target) if isinstance(p.target, tuple) else set()
    offered = set(p.offered) if isinstance(p.offered, tuple) else set()
    accepted = set(p.accepted or ())
    parts = []
    for index, option in enumerate(p.options):
        x = round(left + step * index + 2, 1)
        width = round(step - 4, 1)
        fill, stroke = ("#e3f4e8", OK) if option in accepted else ("#ffffff", LINE)
        parts.append(
            f'<rect class="option{" accepted" if option in accepted else ""}" x="{x}" y="{mid - 9}" width="{width}" '
            f'height="18" fill="{fill}" stroke="{stroke}"/>'
            + _text(x + width / 2, mid + 4, _short(label(option), 12), 11, "middle")
        )
        if option in target:
            right = x + width - 8
            parts.append(
                f'<path class="target" d="M{right} {mid - 6} L{right + 5} {mid} L{right} {mid + 6} '
                f'L{right - 5} {mid} Z" fill="{INK}"/>'
            )
        if option in offered:
            centre = round(x + width / 2, 1)
            parts.append(
                f'<path class="offer" d="M{centre} {mid - 9} L{centre + 7} {mid - 20} L{centre - 7} {mid - 20} Z" '
                f'fill="{WARN}"/>'
            )
    return "".join(parts)


def _labels(p: OwnPosition, value: Any, words: Any) -> Any:
    """A one_of position's options (a tuple) in the reader's language; anything else as it is."""
    if words is None or not isinstance(value, tuple):
        return value
    return tuple(words.option(p.key, option) for option in value)


def own_positions_chart(positions: Sequence[OwnPosition], t: Callable[[str], str], item_words: Any = None) -> Markup:
    """A member's own positions against the live joint target and the vendor's current offer, a
    row per item. A number item gets a scale through its value (a disc), the target (a diamond)
    and the offer (a triangle), with the values the position accepts shaded; every row says the
    same in words and whether the offer satisfies the position. ``positions``: the core's
    ``streams.core.figures.own_positions``; ``item_words``: the items' titles, units and options in the
    reader's language (``i18n.ItemWords``)."""
    if not positions:
        return Markup("")
    if item_words is not None:
        positions = [replace(p, title=item_words.title(p), unit=item_words.unit(p) or None) for p in positions]
    head, foot = 8, 30
    height = head + OWN_ROW * len(positions) + foot
    line_left, line_right = OWN_LABEL + 10, OWN_LABEL + 10 + OWN_LINE
    text_x = line_right + 24
    satisfied_words = sum(1 for p in positions if p.satisfied)
    title = t("Your positions against the joint targets and the vendor's offers")
    description = t("{n} positions; the current offers satisfy {k} of them.").format(
        n=len(positions), k=satisfied_words
    )
    parts = [
        _svg_open("own-positions", OWN_WIDTH, height, "own-chart"),
        f'<title id="own-chart-title">{escape(title)}</title>',
        f'<desc id="own-chart-desc">{escape(description)}</desc>',
    ]
    table = []
    for index, p in enumerate(positions):
        top = head + OWN_ROW * index
        mid = top + OWN_ROW / 2
        verdict = (
            ("✓ " + t("satisfied"), OK)
            if p.satisfied
            else ("✗ " + t("not satisfied"), BAD)
            if p.offer is not None
            else ("… " + t("no offer yet"), MUTED)
        )
        comparison = "≤" if p.kind == "at_most" else "≥" if p.kind == "at_least" else ""
        if p.kind == "boolean":  # a guarantee: needed, asked, given
            mine, target = t("guarantee needed"), t("asked") if p.target is True else DASH
            offered = t("given") if p.offered is True else DASH
        else:
            mine = (
                f"{comparison} {_words_of(p.value, p.unit)}".strip()
                if p.value is not None
                else _words_of(_labels(p, p.accepted, item_words))
            )
            target = _words_of(_labels(p, p.target, item_words), p.unit)
            offered = _words_of(_labels(p, p.offered, item_words), p.unit)
        words = t("you {mine} · target {target} · offer {offer}").format(mine=mine, target=target, offer=offered)
        parts.append(
            f'<g class="position {"satisfied" if p.satisfied else "unsatisfied"}" id="own-{escape(p.key)}">'
            f"<title>{escape(p.title + ': ' + words + ' · ' + verdict[0])}</title>"
            + _text(OWN_LABEL - 6, mid - 2, _short(p.title, 34), 12, "end")
            + _text(OWN_LABEL - 6, mid + 12, f"{p.key} · {t(p.priority)}", 10, "end", MUTED)
        )
        numbers = [v for v in (p.value, p.target, p.offered) if v is not None and not isinstance(v, bool | tuple)]
        if p.kind in ("at_most", "at_least") and p.value is not None:
            lo, hi = min(numbers), max(numbers)
            pad = (hi - lo) * Fraction(1, 10) if hi != lo else max(abs(lo) / 10, Fraction(1))
            lo, hi = lo - pad, hi + pad

            def x(value: Any, lo: Any = lo, hi: Any = hi) -> float:
                return round(line_left + OWN_LINE * float((Fraction(value) - lo) / (hi - lo)), 1)

            accepted_from, accepted_to = (line_left, x(p.value)) if p.kind == "at_most" else (x(p.value), line_right)
            parts.append(
                f'<rect class="accepted" x="{accepted_from}" y="{mid - 9}" '
                f'width="{round(accepted_to - accepted_from, 1)}" '
                f'height="18" fill="#e3f4e8"/>'
                f'<line x1="{line_left}" y1="{mid}" x2="{line_right}" y2="{mid}" stroke="{MUTED}"/>'
            )
            if p.target is not None and not isinstance(p.target, bool | tuple):
                tx = x(p.target)
                parts.append(
                    f'<path class="target" d="M{tx} {mid - 8} L{tx + 7} {mid} L{tx} {mid + 8} L{tx - 7} {mid} Z" '
                    f'fill="{INK}"/>'
                )
            parts.append(
                f'<circle class="mine" cx="{x(p.value)}" cy="{mid}" r="6" fill="{ACCENT}" stroke="#ffffff" '
                'stroke-width="1.5"/>'
            )
            if p.offered is not None and not isinstance(p.offered, bool | tuple):
                ox = x(p.offered)
                parts.append(
                    f'<path class="offer" d="M{ox} {mid - 3} L{ox + 7} {mid - 15} L{ox - 7} {mid - 15} Z" '
                    f'fill="{WARN}"/>'
                )
        if p.kind == "one_of" and p.options:
            option_label = (lambda o, key=p.key: item_words.option(key, o)) if item_words is not None else str
            parts.append(_option_boxes(p, line_left, mid, option_label))
        parts.append(
            _text(text_x, mid - 2, words, 12)
            + _text(text_x, mid + 13, verdict[0], 12, "start", verdict[1], ' font-weight="700"')
        )
        parts.append("</g>")
        table.append([p.title, t(p.priority), mine, target, offered, verdict[0]])
    parts += [
        _legend(
            [
                (f'<circle cx="6" cy="-4" r="6" fill="{ACCENT}"/>', t("your value")),
                (f'<path d="M7 -12 L14 -4 L7 4 L0 -4 Z" fill="{INK}"/>', t("joint target")),
                (f'<path d="M7 2 L14 -10 L0 -10 Z" fill="{WARN}"/>', t("vendor's offer")),
                (
                    f'<rect x="0" y="-10" width="14" height="12" fill="#e3f4e8" stroke="{OK}"/>',
                    t("values your position accepts"),
                ),
            ],
            16,
            height - 8,
        ),
        "</svg>",
    ]
    headers = [t("Item"), t("Priority"), t("Your position"), t("Target"), t("Vendor's offer"), t("Satisfied")]
    caption = t("Where your positions sit against the live joint targets and the vendor's current offers.")
    return _figure("own-positions", caption, "".join(parts), headers, table, t)
