"""Small server-drawn SVG charts for the board's "why?": presentation only, no rule of the spec.

The cumulative-weight chart of an at_most / at_least item draws what the explanation document
(``streams.core.explanation``) already says: one column per distinct considered value, as high
as its cumulative weight, a dashed line at q·C, and the target's column marked. It is written
here rather than with a charting library because it is a handful of rectangles and lines, and
the page's Content-Security-Policy allows no script and no inline style: the SVG uses only
presentation attributes and classes from ``static/dashboard.css``. The values sit at equal
distances (an ordinal axis), so that close values stay apart and each column can be labelled.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from markupsafe import Markup, escape

from schemas.common import number_to_json
from schemas.documents import ItemExplanation

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
