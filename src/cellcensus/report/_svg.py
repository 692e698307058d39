"""Small, dependency-free SVG charts: horizontal bar charts and log-scale histograms.

Output is deterministic text (same input, same bytes), styled by the page's CSS classes
(``.chart``, ``.lbl``, ``.val``, ``.axis``, ``.grid``) with inline fallbacks, so the charts also
render on their own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING

from cellcensus.report._fmt import compact, count

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cellcensus.report._model import Histogram

__all__ = ["Bar", "bar_chart", "histogram_chart"]

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"
_CHAR_W = 6.6  # average width of a 12 px sans-serif character, for truncating labels


def _e(s: str) -> str:
    return escape(s, quote=True)


def _n(x: float) -> str:
    """Coordinates with at most one decimal, no trailing zeros (deterministic, compact)."""
    s = f"{x:.1f}"
    return s[:-2] if s.endswith(".0") else s


def _truncate(text: str, width: float) -> str:
    max_chars = max(4, int(width / _CHAR_W))
    return text if len(text) <= max_chars else text[: max_chars - 1].rstrip() + "\u2026"


def _open(width: float, height: float, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {_n(width)} {_n(height)}" width="{_n(width)}" height="{_n(height)}" '
        f'font-family="{_e(FONT)}" font-size="12" aria-label="{_e(title)}">',
        f"<title>{_e(title)}</title>",
    ]


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, and an optional tooltip and colour."""

    label: str
    value: int
    tooltip: str | None = None
    muted: bool = False


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    width: int = 560,
    label_width: int = 220,
    color: str = "#3467b0",
    muted_color: str = "#a9b8cf",
) -> str:
    """A horizontal bar chart, one row per bar, value printed at the end of each bar.

    Parameters
    ----------
    bars
        Rows, top to bottom.
    title
        Accessible title (also the SVG's ``<title>``).
    width, label_width
        Chart width and the width kept for the labels on the left, in px.
    color, muted_color
        Fill of ordinary and of muted (e.g. "other") bars.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    bar_h, gap, top, value_w = 16, 6, 4, 78
    height = top * 2 + max(1, len(bars)) * (bar_h + gap) - gap
    out = _open(width, height, title)
    if not bars:
        out.append(f'<text x="0" y="{_n(top + 12)}" class="lbl" fill="#666">no cells</text>')
        out.append("</svg>")
        return "".join(out)
    plot_w = width - label_width - value_w
    vmax = max(b.value for b in bars) or 1
    for i, b in enumerate(bars):
        y = top + i * (bar_h + gap)
        mid = y + bar_h / 2
        w = max(1.0, plot_w * b.value / vmax) if b.value else 0.0
        tip = _e(b.tooltip or f"{b.label}: {count(b.value)} cells")
        label = _e(_truncate(b.label, label_width - 10))
        fill = muted_color if b.muted else color
        out.append(
            f'<g><title>{tip}</title><text x="{_n(label_width - 8)}" y="{_n(mid)}" '
            f'class="lbl" text-anchor="end" dominant-baseline="central" fill="#222">{label}</text>'
            f'<rect x="{label_width}" y="{_n(y)}" width="{_n(w)}" height="{bar_h}" rx="2" '
            f'fill="{fill}"/><text x="{_n(label_width + w + 6)}" y="{_n(mid)}" class="val" '
            f'dominant-baseline="central" fill="#555">{_e(count(b.value))}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_step(vmax: float, ticks: int = 4) -> float:
    raw = vmax / ticks
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _display_bins(h: Histogram, max_bars: int) -> list[tuple[float, float, int]]:
    """(lower edge, upper edge, count) with neighbouring bins merged to at most ``max_bars``."""
    n = len(h.counts)
    f = max(1, math.ceil(n / max_bars))
    out = []
    for i in range(0, n, f):
        j = min(n, i + f)
        out.append((h.edge(i), h.edge(j), sum(h.counts[i:j])))
    return out


def histogram_chart(
    h: Histogram,
    *,
    title: str,
    xlabel: str,
    width: int = 560,
    height: int = 230,
    color: str = "#2f8f83",
    max_bars: int = 60,
) -> str:
    """A histogram on a log-scaled x axis with a linear count axis and the median marked.

    Parameters
    ----------
    h
        The histogram (log bins).
    title
        Accessible title.
    xlabel
        Name of the value on the x axis.
    width, height
        Size in px.
    color
        Bar fill.
    max_bars
        Neighbouring bins are merged down to this many bars.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    left, right, top, bottom = 52, 14, 10, 42
    pw, ph = width - left - right, height - top - bottom
    out = _open(width, height, title)
    bins = _display_bins(h, max_bars)
    if not bins:
        out.append(f'<text x="{left}" y="{top + 14}" class="lbl" fill="#666">no values</text>')
        out.append("</svg>")
        return "".join(out)
    lo, hi = math.log10(bins[0][0]), math.log10(bins[-1][1])
    span = max(hi - lo, 1e-9)

    def x(v: float) -> float:
        return left + (math.log10(v) - lo) / span * pw

    vmax = max(c for _, _, c in bins) or 1
    step = _nice_step(vmax)
    ymax = step * math.ceil(vmax / step)

    def y(c: float) -> float:
        return top + ph - c / ymax * ph

    k = 0.0
    while k <= ymax + 1e-9:
        yy = y(k)
        out.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{_n(yy)}" y2="{_n(yy)}" class="grid" '
            f'stroke="#e4e7ec"/><text x="{left - 6}" y="{_n(yy)}" class="axis" '
            f'text-anchor="end" dominant-baseline="central" fill="#666">{_e(compact(k))}</text>'
        )
        k += step
    for a, b, c in bins:
        if not c:
            continue
        x0, x1 = x(a), x(b)
        out.append(
            f'<rect x="{_n(x0)}" y="{_n(y(c))}" width="{_n(max(0.8, x1 - x0 - 0.6))}" '
            f'height="{_n(y(0) - y(c))}" fill="{color}"><title>{_e(compact(a))}\u2013'
            f"{_e(compact(b))}: {_e(count(c))} cells</title></rect>"
        )
    out.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{_n(y(0))}" y2="{_n(y(0))}" stroke="#888"/>'
    )
    for d in range(math.floor(lo), math.ceil(hi) + 1):
        for m in (1, 2, 5) if span < 2.5 else (1,):
            v = m * 10.0**d
            if not lo - 1e-9 <= math.log10(v) <= hi + 1e-9:
                continue
            xx = x(v)
            out.append(
                f'<line x1="{_n(xx)}" x2="{_n(xx)}" y1="{_n(y(0))}" y2="{_n(y(0) + 4)}" '
                f'stroke="#888"/><text x="{_n(xx)}" y="{_n(y(0) + 16)}" class="axis" '
                f'text-anchor="middle" fill="#666">{_e(compact(v))}</text>'
            )
    median = h.quantile(0.5)
    if median and median >= bins[0][0]:
        xm = x(median)
        label = _e(compact(round(median)))
        out.append(
            f'<line x1="{_n(xm)}" x2="{_n(xm)}" y1="{top}" y2="{_n(y(0))}" stroke="#c2410c" '
            f'stroke-dasharray="4 3"/><text x="{_n(min(xm + 4, left + pw - 90))}" '
            f'y="{top + 10}" class="axis" fill="#c2410c">median \u2248 {label}</text>'
        )
    out.append(
        f'<text x="{_n(left + pw / 2)}" y="{height - 6}" class="axis" text-anchor="middle" '
        f'fill="#444">{_e(xlabel)} (log scale)</text>'
    )
    out.append("</svg>")
    return "".join(out)
