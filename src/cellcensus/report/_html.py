"""Render a :class:`BuildReport` as one static, self-contained HTML page.

No scripts, no external fonts, images or style sheets: the charts are inline SVG and the styles
are in the page, so it reads offline, from a bucket or attached to an e-mail. Every string that
comes from the data (titles, labels, ids) is HTML-escaped.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import TYPE_CHECKING

from cellcensus.report._collect import CHART_CATEGORIES
from cellcensus.report._fmt import count, nbytes, nbytes_change, pct, signed
from cellcensus.report._svg import Bar, bar_chart, histogram_chart

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from cellcensus.report._model import (
        BuildReport,
        BuildSummary,
        CategoryCount,
        DatasetInfo,
        Histogram,
        OrganismDelta,
        OrganismSummary,
        Pair,
        ReleaseDiff,
    )

__all__ = ["CATEGORY_TITLES", "render_html"]

CATEGORY_TITLES = {
    "tissue_general": "Tissue (general)",
    "tissue": "Tissue",
    "assay": "Assay",
    "disease": "Disease",
    "cell_type": "Cell type",
    "sex": "Sex",
    "self_reported_ethnicity": "Self-reported ethnicity",
    "suspension_type": "Suspension type",
}
HISTOGRAM_TITLES = {
    "nnz": ("Genes detected per cell", "nnz (stored values per cell)"),
    "raw_sum": ("Counts per cell", "raw_sum (total raw counts per cell)"),
}
SPATIAL_NOTE = (
    "Spatial sequencing (census_spatial_sequencing: Visium spots, Slide-seqV2 beads), "
    "counted apart from the single-cell data of census_data; the totals include both."
)
#: Bars per category chart (the rest is summed into one "other" bar).
TOP_N = {"cell_type": 20}
DEFAULT_TOP_N = 15
#: Terms per category in the "largest changes" tables (report.json lists all).
CHANGE_ROWS = 8

_CSS = """
:root{--fg:#1d2430;--muted:#5b6576;--line:#e3e7ee;--bg:#f6f7f9;--card:#fff;--accent:#3467b0;
--up:#1a7f37;--down:#b42318}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1200px;margin:0 auto;padding:28px 28px 60px}
header{border-bottom:1px solid var(--line);margin-bottom:8px;padding-bottom:14px}
.eyebrow{text-transform:uppercase;letter-spacing:.08em;font-size:12px;color:var(--muted);margin:0}
h1{font-size:30px;margin:2px 0 4px;letter-spacing:-.01em}
h2{font-size:21px;margin:36px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--line)}
h3{font-size:16px;margin:22px 0 8px}
.sub{color:var(--muted);margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(170px,1fr));gap:12px;
margin:16px 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 14px}
.card .k{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.05em}
.card .v{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums;margin-top:2px}
.card .s{font-size:13px;color:var(--muted)}
table{border-collapse:collapse;background:var(--card);border:1px solid var(--line);
border-radius:8px;overflow:hidden;margin:8px 0 4px;font-size:14px}
th,td{padding:6px 12px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f6;font-weight:600;font-size:13px}
tr:last-child td{border-bottom:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.up{color:var(--up)}.down{color:var(--down)}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
background:#eef1f6;padding:1px 4px;border-radius:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:16px;
align-items:start}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:4px 20px;
align-items:start}
.grid2 table{width:100%}
.cap{font-weight:600;font-size:14px;margin:10px 0 0}
.more{font-size:12.5px;color:var(--muted)}
figure{margin:0;background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:12px 14px 10px}
figcaption{display:flex;justify-content:space-between;align-items:baseline;gap:8px;
margin-bottom:6px}
figcaption h3{margin:0;font-size:15px}
figcaption span,.stats{font-size:12.5px;color:var(--muted)}
svg.chart{display:block;max-width:100%;height:auto}
.note{background:#fff8e6;border:1px solid #f3d98b;border-radius:8px;padding:8px 12px;
font-size:13.5px;margin:12px 0}
.note ul{margin:4px 0;padding-left:20px}
details summary{cursor:pointer;color:var(--accent);margin:6px 0}
.empty{color:var(--muted);font-style:italic}
footer{margin-top:48px;color:var(--muted);font-size:13px;border-top:1px solid var(--line);
padding-top:12px}
@media print{body{background:#fff}main{padding:0}}
"""


def _e(s: object) -> str:
    return escape("" if s is None else str(s), quote=True)


def _card(key: str, value: str, sub: str = "") -> str:
    s = f'<div class="s">{_e(sub)}</div>' if sub else ""
    return (
        f'<div class="card"><div class="k">{_e(key)}</div><div class="v">{_e(value)}</div>{s}</div>'
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int]) -> str:
    """A table; ``rows`` hold already escaped HTML; columns in ``numeric`` align right."""
    th = "".join(
        f"<th{' class=n' if i in numeric else ''}>{_e(h)}</th>" for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _delta(p: Pair) -> str:
    if p[0] is None or p[1] is None:
        return "—"
    d = p[1] - p[0]
    cls = "up" if d > 0 else "down" if d < 0 else ""
    return f'<span class="{cls}">{_e(signed(d))}</span>' if cls else "0"


# ---------------------------------------------------------------------------- sections
def _when(stamp: str) -> str:
    """``2026-12-01 23:04 UTC`` for an ISO-8601 time stamp (other text unchanged)."""
    try:
        t = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if len(stamp) <= 10:
        return t.date().isoformat()
    if t.tzinfo is not None:
        t = t.astimezone(dt.UTC)
        return f"{t:%Y-%m-%d %H:%M} UTC"
    return f"{t:%Y-%m-%d %H:%M}"


def _header(s: BuildSummary, generator: str) -> str:
    bits = []
    if s.build_date:
        bits.append(f"built {_when(s.build_date)}")
    if s.census_schema_version:
        bits.append(f"census schema {s.census_schema_version}")
    if s.dataset_schema_version:
        bits.append(f"dataset schema {s.dataset_schema_version}")
    if s.cellcensus_version:
        bits.append(f"cellcensus {s.cellcensus_version}")
    elif generator:
        bits.append(f"report by {generator}")
    return (
        '<header><p class="eyebrow">Census release report</p>'
        f"<h1>Release {_e(s.tag)}</h1><p class=sub>{_e(' · '.join(bits))}</p></header>"
    )


def _summary(s: BuildSummary) -> str:
    genes = s.genes
    cells_sub = f"{count(s.unique_cells)} unique"
    if s.spatial_organisms:
        cells_sub += f" · {count(s.spatial_cells)} spatial"
    cards = [
        _card("Cells", count(s.total_cells), cells_sub),
        _card("Datasets", count(len(s.datasets)), _inputs_line(s)),
        _card("Organisms", count(len(s.organism_names))),
        _card(
            "Genes",
            count(genes),
            "census_data, summed over organisms"
            if s.spatial_organisms
            else "summed over organisms",
        ),
        _card("Stored values (nnz)", count(s.nnz), "X/raw"),
        _card(
            "Store size",
            nbytes(s.store_bytes),
            f"soma {nbytes(s.soma_bytes)} · h5ads {nbytes(s.h5ads_bytes)}",
        ),
    ]
    versions = _table(
        ("schema", "version"),
        [
            ("census schema", _e(s.census_schema_version or "—")),
            ("dataset schema", _e(s.dataset_schema_version or "—")),
            (
                "built with",
                _e((s.cellcensus_version and f"cellcensus {s.cellcensus_version}") or "—"),
            ),
        ],
        set(),
    )
    per_org = _organism_table(s.organisms, "org")
    if s.spatial_organisms:
        per_org += (
            f"<h3>Spatial sequencing per organism</h3><p class=sub>{_e(SPATIAL_NOTE)}</p>"
            + _organism_table(s.spatial_organisms, "spatial")
        )
    notes = ""
    if s.notes:
        items = "".join(f"<li>{_e(n)}</li>" for n in s.notes)
        notes = f'<div class="note"><strong>Notes</strong><ul>{items}</ul></div>'
    return (
        f'<section id="summary"><h2>Summary</h2><div class="cards">{"".join(cards)}</div>'
        f"<h3>Per organism</h3>{per_org}<h3>Schema versions</h3>{versions}{notes}</section>"
    )


def _organism_table(orgs: Sequence[OrganismSummary], anchor: str) -> str:
    rows = [
        (
            f'<a href="#{anchor}-{_e(o.name)}">{_e(o.label)}</a>',
            count(o.total_cells),
            count(o.unique_cells),
            _e(pct(o.unique_cells, o.total_cells)),
            count(o.genes),
            count(o.datasets),
            count(o.nnz),
        )
        for o in orgs
    ]
    return _table(
        ("organism", "cells", "unique cells", "unique %", "genes", "datasets", "nnz"),
        rows,
        {1, 2, 3, 4, 5, 6},
    )


def _inputs_line(s: BuildSummary) -> str:
    if not s.inputs:
        return ""
    other = {k: v for k, v in s.inputs.items() if k not in ("total", "included")}
    parts = [f"{count(s.inputs.get('total'))} inputs"]
    parts += [f"{v} {k}" for k, v in sorted(other.items())]
    return ", ".join(parts)


def _dataset_rows(ds: Iterable[DatasetInfo], labels: Mapping[str, str]) -> list[tuple[str, ...]]:
    return [
        (
            f"<code>{_e(d.dataset_id)}</code>",
            _e(d.title or ""),
            _e(
                (labels.get(d.organism, d.organism) if d.organism else "")
                + (" (spatial)" if d.spatial else "")
            ),
            count(d.cells),
            f"<code>{_e(d.dataset_version_id)}</code>" if d.dataset_version_id else "",
            f'<code title="{_e(d.sha256)}">{_e(d.sha256[:12])}…</code>' if d.sha256 else "",
            _e(nbytes(d.h5ad_bytes)),
        )
        for d in ds
    ]


_DATASET_HEAD = ("dataset", "title", "organism", "cells", "version", "sha256", "H5AD")


def _changes(d: ReleaseDiff | None, s: BuildSummary) -> str:
    if d is None:
        return (
            '<section id="changes"><h2>Changes</h2><p class="empty">No earlier build to compare '
            "with: this is the first build of the release directory (or none was given).</p>"
            "</section>"
        )
    cards = [
        _card("Cells", signed(_diff(d.total_cells)), f"{count(d.total_cells[0])} before"),
        _card("Unique cells", signed(_diff(d.unique_cells)), f"{count(d.unique_cells[0])} before"),
        *(
            [
                _card(
                    "Spatial cells",
                    signed(_diff(d.spatial_cells)),
                    f"{count(d.spatial_cells[0])} before",
                )
            ]
            if d.spatial_organisms
            else []
        ),
        _card("Datasets added", count(len(d.added))),
        _card("Datasets removed", count(len(d.removed))),
        _card("Datasets changed", count(len(d.changed))),
        _card("Store size", _signed_bytes(d.store_bytes), f"{nbytes(d.store_bytes[0])} before"),
    ]
    parts = [
        f'<section id="changes"><h2>Changes since {_e(d.old_tag)}</h2>',
        f'<div class="cards">{"".join(cards)}</div>',
    ]
    rows: list[tuple[str, ...]]
    if d.schema_changes:
        rows = [(_e(c.field), _e(c.old or "—"), _e(c.new or "—")) for c in d.schema_changes]
        parts.append("<h3>Schema versions changed</h3>")
        parts.append(_table(("schema", d.old_tag, s.tag), rows, set()))
    parts.append("<h3>Per organism</h3>")
    parts.append(_organism_delta_table(d.organisms))
    if d.spatial_organisms:
        parts.append("<h3>Spatial sequencing per organism</h3>")
        parts.append(_organism_delta_table(d.spatial_organisms))
    for title, items in (("Datasets added", d.added), ("Datasets removed", d.removed)):
        parts.append(f"<h3>{title} ({len(items)})</h3>")
        parts.append(
            _table(
                _DATASET_HEAD,
                _dataset_rows(
                    items, {o.name: o.label for o in (*d.organisms, *d.spatial_organisms)}
                ),
                {3, 6},
            )
            if items
            else '<p class="empty">none</p>'
        )
    parts.append(f"<h3>Datasets changed ({len(d.changed)})</h3>")
    if d.changed:
        rows = [
            (
                f"<code>{_e(c.dataset_id)}</code>",
                _e(c.new.title or c.old.title or ""),
                _e(", ".join(c.reasons)),
                count(c.old.cells),
                count(c.new.cells),
                _delta((c.old.cells, c.new.cells)),
            )
            for c in d.changed
        ]
        parts.append(
            _table(
                ("dataset", "title", "changed", "cells before", "cells now", "Δ"), rows, {3, 4, 5}
            )
        )
    else:
        parts.append('<p class="empty">none</p>')
    parts.append(_category_changes(d))
    parts.append("</section>")
    return "".join(parts)


def _organism_delta_table(orgs: Sequence[OrganismDelta]) -> str:
    rows: list[tuple[str, ...]] = [
        (
            _e(o.label),
            count(o.total_cells[0]),
            count(o.total_cells[1]),
            _delta(o.total_cells),
            _delta(o.unique_cells),
            count(o.genes[1]),
            _delta(o.genes),
            _delta(o.datasets),
        )
        for o in orgs
    ]
    return _table(
        (
            "organism",
            "cells before",
            "cells now",
            "Δ cells",
            "Δ unique",
            "genes",
            "Δ genes",
            "Δ datasets",
        ),
        rows,
        {1, 2, 3, 4, 5, 6, 7},
    )


def _delta0(p: Pair) -> str:
    """Change of a cell count, a term absent from a build counting as 0 cells."""
    return _delta((p[0] or 0, p[1] or 0))


def _category_changes(d: ReleaseDiff) -> str:
    parts = ["<h3>Largest changes by category</h3>"]
    shown = False
    for o, spatial in [(o, False) for o in d.organisms] + [(o, True) for o in d.spatial_organisms]:
        tables = []
        for cat in CHART_CATEGORIES:
            rows = o.categories.get(cat, ())
            if not rows:
                continue
            body = [
                (
                    _e(c.label),
                    count(c.total_cells[0]),
                    count(c.total_cells[1]),
                    _delta0(c.total_cells),
                )
                for c in rows[:CHANGE_ROWS]
            ]
            more = (
                f'<p class="more">{len(rows) - CHANGE_ROWS} more in report.json</p>'
                if len(rows) > CHANGE_ROWS
                else ""
            )
            title = _e(CATEGORY_TITLES.get(cat, cat))
            table = _table(("term", "before", "now", "Δ"), body, {1, 2, 3})
            tables.append(f'<div><p class="cap">{title}</p>{table}{more}</div>')
        if tables:
            shown = True
            who = f"{o.label} (spatial)" if spatial else o.label
            parts.append(f'<p><strong>{_e(who)}</strong></p><div class="grid2">')
            parts.extend(tables)
            parts.append("</div>")
    if not shown:
        parts.append('<p class="empty">no category counts changed</p>')
    return "".join(parts)


def _diff(p: Pair) -> int | None:
    return None if p[0] is None or p[1] is None else p[1] - p[0]


def _signed_bytes(p: Pair) -> str:
    return nbytes_change(p[0], p[1])


def _category_figure(o: OrganismSummary, cat: str) -> str:
    rows: tuple[CategoryCount, ...] = o.categories.get(cat, ())
    n = TOP_N.get(cat, DEFAULT_TOP_N)
    top, rest = rows[:n], rows[n:]
    bars = [
        Bar(
            c.label,
            c.total_cells,
            f"{c.label} ({c.ontology_term_id}): {count(c.total_cells)} cells, "
            f"{count(c.unique_cells)} unique",
        )
        for c in top
    ]
    if rest:
        bars.append(
            Bar(
                f"other ({len(rest)} terms)",
                sum(c.total_cells for c in rest),
                muted=True,
            )
        )
    title = CATEGORY_TITLES.get(cat, cat)
    shown = f"top {len(top)} of {len(rows)}" if rest else f"{len(rows)} terms"
    chart = bar_chart(bars, title=f"{o.label}: cells by {title.lower()}")
    return (
        f"<figure><figcaption><h3>Cells by {_e(title.lower())}</h3><span>{_e(shown)}</span>"
        f"</figcaption>{chart}</figure>"
    )


def _histogram_figure(o: OrganismSummary, key: str, h: Histogram) -> str:
    title, xlabel = HISTOGRAM_TITLES.get(key, (key, key))
    median = h.quantile(0.5)
    stats = (
        f"mean {h.mean:,.1f} · median ≈ {median:,.0f} · min {h.min:,.0f} · max {h.max:,.0f}"
        if h.mean is not None and median is not None and h.min is not None and h.max is not None
        else "no values"
    )
    if h.below_one:
        stats += f" · {count(h.below_one)} cells below 1 not drawn"
    chart = histogram_chart(h, title=f"{o.label}: {title.lower()}", xlabel=xlabel)
    return (
        f"<figure><figcaption><h3>{_e(title)}</h3><span>{_e(count(h.count))} cells</span>"
        f'</figcaption>{chart}<div class="stats">{_e(stats)}</div></figure>'
    )


def _organism(o: OrganismSummary, *, spatial: bool = False) -> str:
    facts = (
        f"{count(o.total_cells)} cells ({count(o.unique_cells)} unique) from "
        f"{count(o.datasets)} datasets; {count(o.genes)} genes; {count(o.nnz)} stored values."
    )
    if spatial:
        facts = f"{SPATIAL_NOTE} {facts}"
    figs = [_category_figure(o, cat) for cat in CHART_CATEGORIES if cat in o.categories]
    hists = [_histogram_figure(o, k, h) for k, h in sorted(o.histograms.items())]
    body = f'<div class="grid">{"".join(figs)}</div>' if figs else ""
    if hists:
        body += f'<h3>Per-cell distributions</h3><div class="grid">{"".join(hists)}</div>'
    if not figs and not hists:
        body = '<p class="empty">no category counts or per-cell statistics in this census</p>'
    anchor, title = (
        (f"spatial-{o.name}", f"{o.label} · spatial") if spatial else (f"org-{o.name}", o.label)
    )
    return f'<section id="{_e(anchor)}"><h2>{_e(title)}</h2><p>{_e(facts)}</p>{body}</section>'


def _datasets(s: BuildSummary) -> str:
    ds = sorted(s.datasets, key=lambda d: (-(d.cells or 0), d.dataset_id))
    labels = {o.name: o.label for o in (*s.organisms, *s.spatial_organisms)}
    table = _table(_DATASET_HEAD, _dataset_rows(ds, labels), {3, 6})
    inner = (
        table
        if len(ds) <= 50
        else f"<details><summary>Show all {len(ds):,} datasets</summary>{table}</details>"
    )
    return f'<section id="datasets"><h2>Datasets ({len(ds):,})</h2>{inner}</section>'


def render_html(report: BuildReport) -> str:
    """The report as one static HTML page (inline CSS and SVG, no scripts, no network).

    Parameters
    ----------
    report
        The report to render.

    Returns
    -------
    str
        The page; deterministic for a given report.
    """
    s = report.summary
    body = [
        _header(s, report.generator),
        _summary(s),
        _changes(report.diff, s),
        *(_organism(o) for o in s.organisms),
        *(_organism(o, spatial=True) for o in s.spatial_organisms),
        _datasets(s),
        f"<footer>Release {_e(s.tag)} · generated by {_e(report.generator or 'cellcensus')} · "
        "the same numbers, complete, are in <code>report.json</code> next to this page.</footer>",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Release {_e(s.tag)} · census report</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
