"""Small SVG charts rendered on the server, for the dashboard.

No script and no inline style (the pages' Content-Security-Policy forbids both): shapes carry
classes (``s0`` … ``s7`` for the series colours, defined in ``static/style.css``) and every bar
has a ``<title>`` (the browser shows it on hover) and ``data-`` attributes with its values, so
that the numbers can be read back by people and by the browser test. Each function returns
markup that Jinja2 inserts as it is: every text that comes from data is escaped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 720
SERIES_CLASSES = 8


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float]


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 < value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def _fmt(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}".replace(".", ",")


def _legend(labels: Sequence[str], y: float) -> str:
    parts, x = [], 0.0
    for i, label in enumerate(labels):
        parts.append(f'<rect class="legend s{i % SERIES_CLASSES}" x="{x:.0f}" y="{y:.0f}" '
                     f'width="12" height="12"/><text class="legend-label" x="{x + 16:.0f}" '
                     f'y="{y + 10:.0f}">{escape(label)}</text>')
        x += 24 + 7.5 * len(label)
    return "".join(parts)


def stacked_columns(name: str, title: str, columns: Sequence[str], series: Sequence[Series],
                    height: int = 240) -> Markup:
    """Columns (one per entry of ``columns``, e.g. a day) with one stacked block per series."""
    left, top, bottom = 36, 10, 40
    plot_h = height - top - bottom
    n = max(len(columns), 1)
    slot = (WIDTH - left - 4) / n
    totals = [sum(s.values[i] for s in series) for i in range(len(columns))]
    ymax = _nice_max(max(totals, default=0))
    out = [f'<svg class="chart" id="chart-{escape(name)}" role="img" '
           f'viewBox="0 0 {WIDTH} {height + 24}" width="{WIDTH}" height="{height + 24}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in (0, ymax / 2, ymax):
        y = top + plot_h - plot_h * tick / ymax
        out.append(f'<line class="grid" x1="{left}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}"/>'
                   f'<text class="axis" x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{_fmt(tick)}</text>')
    label_every = max(1, round(n / 10))
    for i, column in enumerate(columns):
        x = left + i * slot + slot * 0.15
        w = max(slot * 0.7, 1.0)
        base = float(top + plot_h)
        for k, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            h = plot_h * value / ymax
            base -= h
            out.append(f'<rect class="bar s{k % SERIES_CLASSES}" x="{x:.1f}" y="{base:.1f}" '
                       f'width="{w:.1f}" height="{h:.1f}" data-column="{escape(column)}" '
                       f'data-series="{escape(s.label)}" data-value="{_fmt(value)}">'
                       f'<title>{escape(column)} – {escape(s.label)} : {_fmt(value)}</title>'
                       f'</rect>')
        if i % label_every == 0:
            out.append(f'<text class="axis" x="{x + w / 2:.1f}" y="{top + plot_h + 14}" '
                       f'text-anchor="middle">{escape(column)}</text>')
    out.append(_legend([s.label for s in series], height))
    out.append("</svg>")
    return Markup("".join(out))


def share_bar(name: str, title: str, parts: Sequence[tuple[str, float]]) -> Markup:
    """One horizontal bar split by share (e.g. drafts approved as they were, edited, rejected)."""
    height, left = 44, 0.0
    total = sum(v for _l, v in parts)
    out = [f'<svg class="chart" id="chart-{escape(name)}" role="img" '
           f'viewBox="0 0 {WIDTH} {height + 24}" width="{WIDTH}" height="{height + 24}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    x = float(left)
    for k, (label, value) in enumerate(parts):
        share = value / total if total else 0.0
        w = (WIDTH - left) * share
        if w > 0:
            out.append(f'<rect class="bar s{k % SERIES_CLASSES}" x="{x:.1f}" y="4" '
                       f'width="{w:.1f}" height="30" data-series="{escape(label)}" '
                       f'data-value="{_fmt(value)}" data-share="{share:.3f}">'
                       f'<title>{escape(label)} : {_fmt(value)} ({share:.0%})</title></rect>')
            if w > 40:
                out.append(f'<text class="on-bar" x="{x + w / 2:.1f}" y="24" '
                           f'text-anchor="middle">{share:.0%}</text>')
        x += w
    legend = [f"{label} ({_fmt(value)})" for label, value in parts]
    out.append(_legend(legend, height))
    out.append("</svg>")
    return Markup("".join(out))


def horizontal_bars(name: str, title: str, rows: Sequence[str], series: Sequence[Series],
                    unit: str = "") -> Markup:
    """Grouped horizontal bars: one group per row (a department, a draft), one bar per series."""
    left, row_h, bar_h = 150, 14 + 14 * len(series), 12
    height = 10 + row_h * max(len(rows), 1)
    vmax = _nice_max(max((v for s in series for v in s.values), default=0))
    plot_w = WIDTH - left - 60
    out = [f'<svg class="chart" id="chart-{escape(name)}" role="img" '
           f'viewBox="0 0 {WIDTH} {height + 24}" width="{WIDTH}" height="{height + 24}" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, row in enumerate(rows):
        y0 = 6 + i * row_h
        out.append(f'<text class="axis" x="{left - 6}" y="{y0 + row_h / 2 + 2:.1f}" '
                   f'text-anchor="end">{escape(row[:24])}</text>')
        for k, s in enumerate(series):
            value = s.values[i]
            w = plot_w * value / vmax if vmax else 0
            y = y0 + k * (bar_h + 2)
            out.append(f'<rect class="bar s{k % SERIES_CLASSES}" x="{left}" y="{y:.1f}" '
                       f'width="{max(w, 1):.1f}" height="{bar_h}" data-row="{escape(row)}" '
                       f'data-series="{escape(s.label)}" data-value="{_fmt(value)}">'
                       f'<title>{escape(row)} – {escape(s.label)} : {_fmt(value)} {escape(unit)}'
                       f'</title></rect><text class="axis" x="{left + max(w, 1) + 4:.1f}" '
                       f'y="{y + bar_h - 2:.1f}">{_fmt(value)} {escape(unit)}</text>')
    out.append(_legend([s.label for s in series], height))
    out.append("</svg>")
    return Markup("".join(out))


__all__ = ["Series", "horizontal_bars", "share_bar", "stacked_columns"]
