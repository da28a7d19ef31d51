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

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from markupsafe import Markup, escape

from schemas.common import number_to_json
from schemas.documents import CommitmentsDocument, CommitmentView, ItemExplanation

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
            parts.append(
                f'<text class="undated" x="{plot_right - 6}" y="{y + 4}" text-anchor="end" font-size="12" '
                'font-style="italic" '
                f'fill="#545b64">{escape(t("no due date yet"))}</text>'
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
