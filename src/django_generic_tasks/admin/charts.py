"""Server-rendered SVG charts for the admin dashboard, each with a table that says the same.

Drawn on the server rather than by a JavaScript chart library: nothing to vendor or load from
a CDN, the charts show with JavaScript off, the auto-refresh swaps one HTML fragment, and
every chart's numbers are also given as a table (its text alternative).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 720, 180
LEFT, BOTTOM, TOP = 44, 22, 8
COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "discarded": "#8d6e63",
    "retried": "#ef6c00",
    "cancelled": "#757575",
}
PALETTE = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#c62828", "#5d4037")


@dataclass(frozen=True)
class Series:
    """One named series of a chart: a value per label."""

    name: str
    values: Sequence[float]
    colour: str


def colour(name: str, index: int) -> str:
    """The colour of series ``name`` (an outcome's own, else from the palette)."""
    return COLOURS.get(name) or PALETTE[index % len(PALETTE)]


def _scale(peak: float) -> float:
    """A round axis maximum at or above ``peak``."""
    if peak <= 0:
        return 1.0
    step = 1.0
    while step * 10 < peak:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= peak:
            return step * factor
    return step * 10  # pragma: no cover - the loop always returns


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _frame(chart_id: str, title: str, top: float, labels: Sequence[str], body: str) -> str:
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    ticks = "".join(
        f'<text x="{LEFT - 4}" y="{TOP + plot_h * (1 - f) + 4:.1f}" text-anchor="end">'
        f"{escape(_number(top * f))}</text>"
        f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{TOP + plot_h * (1 - f):.1f}" '
        f'y2="{TOP + plot_h * (1 - f):.1f}" stroke="#ddd"/>'
        for f in (0, 0.5, 1)
    )
    n = len(labels)
    every = max(1, n // 6)
    xlabels = "".join(
        f'<text x="{LEFT + plot_w * (i + 0.5) / n:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(label)}</text>'
        for i, label in enumerate(labels)
        if i % every == 0
    )
    return (
        f'<svg class="dgt-chart" id="{chart_id}" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'font-size="10" font-family="sans-serif">'
        f'<title id="{chart_id}-title">{escape(title)}</title>{ticks}{body}{xlabels}</svg>'
    )


def stacked_bars(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """A stacked bar chart: one bar per label, one coloured segment per series."""
    n = max(1, len(labels))
    totals = [sum(s.values[i] for s in series) for i in range(len(labels))]
    top = _scale(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    slot = plot_w / n
    bars = []
    for i, label in enumerate(labels):
        base = 0.0
        for s in series:
            value = s.values[i]
            if not value:
                continue
            height = plot_h * value / top
            y = TOP + plot_h - base - height
            bars.append(
                f'<rect x="{LEFT + slot * i + slot * 0.1:.1f}" y="{y:.1f}" '
                f'width="{max(slot * 0.8, 1):.1f}" height="{height:.1f}" fill="{s.colour}">'
                f"<title>{escape(label)}: {escape(_number(value))} {escape(s.name)}</title></rect>"
            )
            base += height
    return _frame(chart_id, title, top, labels, "".join(bars))


def lines(chart_id: str, title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """A line chart: one polyline per series."""
    n = max(1, len(labels))
    top = _scale(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    paths = []
    for s in series:
        points = " ".join(
            f"{LEFT + plot_w * (i + 0.5) / n:.1f},{TOP + plot_h * (1 - v / top):.1f}"
            for i, v in enumerate(s.values)
        )
        paths.append(
            f'<polyline fill="none" stroke="{s.colour}" stroke-width="2" points="{points}">'
            f"<title>{escape(s.name)}</title></polyline>"
        )
    return _frame(chart_id, title, top, labels, "".join(paths))


def legend(series: Sequence[Series]) -> str:
    """The series' names beside their colours."""
    return "".join(
        format_html(
            '<span class="dgt-key"><i style="background:{}"></i>{}</span>', s.colour, s.name
        )
        for s in series
    )


def table(caption: str, head: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    """The chart's numbers as a table: a row per label, a column per series."""
    header = "".join(format_html("<th scope='col'>{}</th>", s.name) for s in series)
    rows = "".join(
        format_html("<tr><th scope='row'>{}</th>", label)
        + "".join(format_html("<td>{}</td>", _number(s.values[i])) for s in series)
        + "</tr>"
        for i, label in enumerate(labels)
    )
    return (
        format_html("<table class='dgt-alt'><caption>{}</caption><thead><tr>", caption)
        + format_html("<th scope='col'>{}</th>", head)
        + header
        + f"</tr></thead><tbody>{rows}</tbody></table>"
    )


def figure(
    chart_id: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    head: str = "time",
    kind: str = "bars",
) -> SafeString:
    """A chart, its legend, and its table alternative (collapsed), as one safe fragment."""
    draw = stacked_bars if kind == "bars" else lines
    # Every value above is escaped or a number.
    return mark_safe(
        f'<figure class="dgt-figure"><figcaption>{escape(title)}</figcaption>'
        f"{draw(chart_id, title, labels, series)}"
        f'<div class="dgt-legend">{legend(series)}</div>'
        f"<details><summary>Table: {escape(title)}</summary>"
        f"{table(title, head, labels, series)}</details></figure>"
    )
