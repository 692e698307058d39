"""Report commands: ``report`` (HTML + JSON of one build) and ``diff`` (two builds compared).
Thin wrappers over :mod:`cellcensus.report`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from cellcensus._cli._app import app, out
from cellcensus._cli._options import (
    EndpointOpt,
    NoSignOpt,
    PathStyleOpt,
    RegionOpt,
    s3_settings,
)

if TYPE_CHECKING:
    from cellcensus.report import OrganismDelta, ReleaseDiff
    from cellcensus.report._model import Pair

#: Terms listed per category in the terminal diff (the JSON has them all).
CATEGORY_ROWS = 10


@app.command()
def report(
    *,
    root: Annotated[str, typer.Argument(help="Release root: directory or s3://bucket/prefix/.")],
    tag: Annotated[str, typer.Argument(help="Tag or alias of the build.")],
    against: Annotated[
        str | None,
        typer.Option(
            "--against", help="Compare with this build (default: the previous one).", metavar="TAG"
        ),
    ] = None,
    no_diff: Annotated[bool, typer.Option("--no-diff", help="Do not compare.")] = False,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write; report.json goes beside it.")
    ] = Path("report.html"),
    recompute: Annotated[
        bool,
        typer.Option("--recompute", help="Read the census even when the build has a report.json."),
    ] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Write the report of a build: one static HTML page with charts, plus the numbers as JSON."""
    from cellcensus.errors import BadInputError

    if no_diff and against is not None:
        msg = "--against and --no-diff contradict each other; give one"
        raise BadInputError(msg, field="against")
    if out_path.suffix.lower() not in (".html", ".htm"):
        msg = f"--out {out_path} must name an .html file (report.json is written beside it)"
        raise BadInputError(msg, field="out")
    from cellcensus.report import build_report, write_report

    rep = build_report(
        root,
        tag,
        against=against,
        compare=not no_diff,
        recompute=recompute,
        settings=s3_settings(endpoint_url, region, no_sign_request, path_style),
    )
    json_path = out_path.with_suffix(".json")
    write_report(rep, out_path, json_path)
    s = rep.summary
    vs = f"; compared with {rep.diff.old_tag}" if rep.diff else ""
    spatial = f" ({s.spatial_cells:,} spatial)" if s.spatial_organisms else ""
    out.print(
        f"report of {s.tag}: {s.total_cells:,} cells{spatial}, {len(s.datasets):,} datasets, "
        f"{len(s.organism_names)} organisms{vs}\nwrote {out_path} and {json_path}",
        highlight=False,
    )


def _num(n: int | None) -> str:
    from cellcensus.report._fmt import count

    return count(n)


def _delta(p: Pair) -> str:
    from cellcensus.report._fmt import signed

    if p[0] is None or p[1] is None:
        return "—"
    d = p[1] - p[0]
    text = signed(d)
    return f"[green]{text}[/]" if d > 0 else f"[red]{text}[/]" if d < 0 else text


def _table(title: str, columns: tuple[str, ...], right: int = 0) -> Table:
    """A table titled ``title`` whose last ``right`` columns are right-aligned (numbers)."""
    t = Table(title=title, title_justify="left")
    for i, col in enumerate(columns):
        t.add_column(col, justify="right" if i >= len(columns) - right else "left")
    return t


def _print_totals(d: ReleaseDiff) -> None:
    from cellcensus.report._fmt import nbytes, nbytes_change

    t = _table(f"{d.old_tag} → {d.new_tag}", ("", d.old_tag, d.new_tag, "Δ"), right=3)
    rows = [("cells", d.total_cells), ("unique cells", d.unique_cells)]
    if d.spatial_organisms:
        rows.append(("spatial cells", d.spatial_cells))
    rows.append(("datasets", d.datasets))
    for label, p in rows:
        t.add_row(label, _num(p[0]), _num(p[1]), _delta(p))
    b0, b1 = d.store_bytes
    t.add_row("store size", nbytes(b0), nbytes(b1), nbytes_change(b0, b1))
    out.print(t)
    if d.schema_changes:
        t = _table("schema versions changed", ("schema", d.old_tag, d.new_tag))
        for c in d.schema_changes:
            t.add_row(c.field, c.old or "—", c.new or "—")
        out.print(t)


def _print_datasets(d: ReleaseDiff) -> None:
    labels = {o.name: o.label for o in (*d.organisms, *d.spatial_organisms)}
    for title, items in (("datasets added", d.added), ("datasets removed", d.removed)):
        t = _table(f"{title}: {len(items)}", ("dataset", "title", "organism", "cells"), right=1)
        for x in items:
            organism = labels.get(x.organism, x.organism) if x.organism else ""
            organism += " (spatial)" if x.spatial else ""
            t.add_row(x.dataset_id, x.title or "", organism, _num(x.cells))
        out.print(t)
    t = _table(
        f"datasets changed: {len(d.changed)}",
        ("dataset", "title", "changed", "cells before", "cells now", "Δ"),
        right=3,
    )
    for c in d.changed:
        t.add_row(
            c.dataset_id,
            c.new.title or c.old.title or "",
            ", ".join(c.reasons),
            _num(c.old.cells),
            _num(c.new.cells),
            _delta((c.old.cells, c.new.cells)),
        )
    out.print(t)


def _print_organisms(orgs: tuple[OrganismDelta, ...], *, spatial: bool) -> None:
    what = " (census_spatial_sequencing)" if spatial else ""
    t = _table(
        f"per organism{what}",
        ("organism", "cells", "Δ cells", "Δ unique", "genes", "Δ genes", "Δ datasets"),
        right=6,
    )
    for o in orgs:
        t.add_row(
            o.label,
            _num(o.total_cells[1]),
            _delta(o.total_cells),
            _delta(o.unique_cells),
            _num(o.genes[1]),
            _delta(o.genes),
            _delta(o.datasets),
        )
    out.print(t)
    from cellcensus.report._html import CATEGORY_TITLES

    for o in orgs:
        label = f"{o.label} (spatial)" if spatial else o.label
        for cat, rows in sorted(o.categories.items()):
            more = f" (largest {CATEGORY_ROWS} of {len(rows)})" if len(rows) > CATEGORY_ROWS else ""
            name = CATEGORY_TITLES.get(cat, cat).lower()
            t = _table(
                f"{label}: cells by {name}{more}", ("term", "id", "before", "now", "Δ"), right=3
            )
            for c in rows[:CATEGORY_ROWS]:
                t.add_row(
                    c.label,
                    c.ontology_term_id,
                    _num(c.total_cells[0]),
                    _num(c.total_cells[1]),
                    _delta((c.total_cells[0] or 0, c.total_cells[1] or 0)),  # absent: 0 cells
                )
            out.print(t)


def _print_diff(d: ReleaseDiff) -> None:
    _print_totals(d)
    _print_datasets(d)
    _print_organisms(d.organisms, spatial=False)
    if d.spatial_organisms:
        _print_organisms(d.spatial_organisms, spatial=True)


@app.command()
def diff(
    *,
    root: Annotated[str, typer.Argument(help="Release root: directory or s3://bucket/prefix/.")],
    tag_a: Annotated[str, typer.Argument(help="The older build (tag or alias).")],
    tag_b: Annotated[str, typer.Argument(help="The newer build (tag or alias).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Compare two builds: datasets added, removed and changed; cell and gene counts."""
    from cellcensus.report import diff_builds

    d = diff_builds(
        root,
        tag_a,
        tag_b,
        settings=s3_settings(endpoint_url, region, no_sign_request, path_style),
    )
    if as_json:
        out.print_json(d.to_json().decode())
        return
    _print_diff(d)
