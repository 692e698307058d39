"""Read commands: ``query`` (counts, a table) and ``export`` (stream to h5ad/zarr/parquet, or a
spatial query to a SpatialData zarr store).

Thin wrappers over :mod:`cellcensus.client`; every option has a library equivalent.
"""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer evaluates annotations at runtime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from cellcensus._cli._app import app, console, out
from cellcensus._cli._options import (
    EndpointOpt,
    NoSignOpt,
    PathStyleOpt,
    RegionOpt,
    s3_settings,
)
from cellcensus._cli._progress import RichProgress

if TYPE_CHECKING:
    import tiledbsoma as soma

    from cellcensus.client import QueryEstimate
    from cellcensus.settings import Settings

# ---------------------------------------------------------------------------- common options
OrganismArg = Annotated[
    str, typer.Argument(help="Organism: 'Homo sapiens', homo_sapiens, 'Mus musculus', ...")
]
RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root",
        "-r",
        envvar="CELLCENSUS_RELEASE_ROOT",
        help="Release root: directory, file://, s3://bucket/prefix/, http(s)://..., or a "
        "release.json URL (env CELLCENSUS_RELEASE_ROOT; default: the official CZI directory).",
        show_default=False,
    ),
]
VersionOpt = Annotated[
    str, typer.Option("--census-version", "-V", help="Census version: tag or alias.")
]
MirrorOpt = Annotated[
    str | None, typer.Option("--mirror", help="Mirror name (default: the default mirror).")
]
UriOpt = Annotated[
    str | None,
    typer.Option(
        "--uri",
        help="Open this SOMA collection directly (path, file:// or s3://) instead of a version.",
        show_default=False,
    ),
]
ObsFilterOpt = Annotated[
    str | None,
    typer.Option(
        "--obs-filter",
        "-f",
        help="obs value filter, e.g. \"tissue_general == 'lung' and sex == 'female'\".",
        show_default=False,
    ),
]
VarFilterOpt = Annotated[
    str | None,
    typer.Option(
        "--var-filter",
        help="var value filter, e.g. \"feature_name in ['CD4', 'CD8A']\".",
        show_default=False,
    ),
]
CellTypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--cell-type-under",
        help="Cells of this Cell Ontology term or any term under it (id or exact label; "
        "repeatable), e.g. CL:0000084 for all T cells.",
        show_default=False,
    ),
]
TissueOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--tissue-under",
        help="Cells of this UBERON tissue or any part/subtype of it (repeatable).",
        show_default=False,
    ),
]
DiseaseOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--disease-under",
        help="Cells with this MONDO disease or any subtype among their diseases (repeatable).",
        show_default=False,
    ),
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--obs-columns",
        help="Comma-separated obs columns to return (default: all).",
        show_default=False,
    ),
]


def _settings(
    endpoint_url: str | None, region: str | None, no_sign_request: bool, path_style: bool
) -> Settings | None:
    """Explicit S3 options as settings; None lets the client resolve them from the environment."""
    if not (endpoint_url or region or no_sign_request or path_style):
        return None
    return s3_settings(endpoint_url, region, no_sign_request, path_style)


def _open(
    root: str | None,
    census_version: str,
    mirror: str | None,
    uri: str | None,
    settings: Settings | None,
) -> soma.Collection[Any]:
    from cellcensus.client import open_soma

    if uri is not None:
        return open_soma(uri=uri, settings=settings)
    return open_soma(
        census_version=census_version, mirror=mirror, release_root=root, settings=settings
    )


def _obs_filter(
    census: soma.Collection[Any],
    organism: str,
    obs_filter: str | None,
    cell_types: list[str] | None,
    tissues: list[str] | None,
    diseases: list[str] | None,
) -> str | None:
    """The user's filter and-ed with the ontology selection."""
    if not (cell_types or tissues or diseases):
        return obs_filter
    from cellcensus.client import ontology_filter
    from cellcensus.client._query import experiment

    flt = ontology_filter(
        cell_type_descendants_of=cell_types or None,
        tissue_descendants_of=tissues or None,
        disease_descendants_of=diseases or None,
        obs=experiment(census, organism).obs,
    )
    return flt if obs_filter is None else f"({obs_filter}) and ({flt})"


def _estimate_table(est: QueryEstimate) -> Table:
    from cellcensus.client import format_bytes

    t = Table(title=f"query estimate ({est.organism})", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("cells", f"{est.n_obs:,}")
    t.add_row("genes", f"{est.n_vars:,}")
    t.add_row("stored values" + ("" if est.nnz_exact else " (estimated)"), f"{est.nnz:,}")
    t.add_row("AnnData in memory", format_bytes(est.anndata_bytes))
    t.add_row("  of which X (CSR)", format_bytes(est.x_bytes))
    t.add_row("get_anndata peak (est.)", format_bytes(est.peak_bytes))
    return t


@app.command("query")
def query_cmd(
    organism: OrganismArg,
    obs_filter: ObsFilterOpt = None,
    var_filter: VarFilterOpt = None,
    cell_type_under: CellTypeOpt = None,
    tissue_under: TissueOpt = None,
    disease_under: DiseaseOpt = None,
    count_by: Annotated[
        list[str] | None,
        typer.Option("--count-by", "-c", help="Count cells per value of this obs column."),
    ] = None,
    show: Annotated[
        int, typer.Option("--show", "-n", min=0, help="Print the first N matching obs rows.")
    ] = 0,
    obs_columns: ColumnsOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    root: RootOpt = None,
    census_version: VersionOpt = "stable",
    mirror: MirrorOpt = None,
    uri: UriOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Count (and list) the cells and genes a filter selects, without reading X."""
    import dataclasses

    from cellcensus.client import estimate, get_obs

    settings = _settings(endpoint_url, region, no_sign_request, path_style)
    with _open(root, census_version, mirror, uri, settings) as census:
        flt = _obs_filter(
            census, organism, obs_filter, cell_type_under, tissue_under, disease_under
        )
        est = estimate(census, organism, obs_value_filter=flt, var_value_filter=var_filter)
        counts: dict[str, dict[str, int]] = {}
        for column in count_by or []:
            obs = get_obs(census, organism, value_filter=flt, column_names=[column])
            vc = obs[column].astype(str).value_counts()
            counts[column] = {str(k): int(v) for k, v in vc.items()}
        rows = None
        if show:
            cols = [c.strip() for c in obs_columns.split(",")] if obs_columns else None
            rows = get_obs(census, organism, value_filter=flt, column_names=cols).head(show)
    if as_json:
        doc = {
            "obs_value_filter": flt,
            "var_value_filter": var_filter,
            "estimate": dataclasses.asdict(est),
            "counts": counts,
            "rows": None if rows is None else json.loads(rows.to_json(orient="records")),
        }
        out.print_json(json.dumps(doc))
        return
    out.print(_estimate_table(est))
    for column, vc_map in counts.items():
        t = Table(title=f"cells by {column}")
        t.add_column(column)
        t.add_column("cells", justify="right")
        for k, v in vc_map.items():
            t.add_row(k, f"{v:,}")
        out.print(t)
    if rows is not None:
        t = Table(title=f"first {len(rows)} cells")
        for c in rows.columns:
            t.add_column(str(c))
        for rec in rows.itertuples(index=False):
            t.add_row(*(str(v) for v in rec))
        out.print(t)


@app.command("export")
def export_cmd(
    organism: OrganismArg,
    to: Annotated[
        Path,
        typer.Option(
            "--to",
            "-o",
            help="Output: *.h5ad, *.zarr or *.parquet (+ .obs/.var side files); with "
            "--format spatialdata a SpatialData *.zarr store.",
        ),
    ],
    obs_filter: ObsFilterOpt = None,
    var_filter: VarFilterOpt = None,
    cell_type_under: CellTypeOpt = None,
    tissue_under: TissueOpt = None,
    disease_under: DiseaseOpt = None,
    obs_columns: ColumnsOpt = None,
    x_name: Annotated[str, typer.Option("--x-name", help="X layer.")] = "raw",
    memory_budget: Annotated[
        str, typer.Option("--memory-budget", "-m", help="Most memory to use, e.g. 2GiB, 512MiB.")
    ] = "2GiB",
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="h5ad, zarr or parquet (default: from the suffix), or spatialdata: the cells "
            "with their scenes (spots, images) as a SpatialData zarr store (needs the [spatial] "
            "extra; spatial experiments only).",
        ),
    ] = None,
    modality: Annotated[
        str | None,
        typer.Option(
            "--modality",
            help="Top-level collection: census_data (default; with --format spatialdata "
            "census_spatial_sequencing).",
            show_default=False,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the output.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the estimate only; write nothing.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show progress bars.")
    ] = True,
    root: RootOpt = None,
    census_version: VersionOpt = "stable",
    mirror: MirrorOpt = None,
    uri: UriOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Stream a query to disk within a memory budget; prints the estimate first.

    With --format spatialdata, the query of a spatial experiment (one dataset: --obs-filter
    "dataset_id == '...'") with its scenes is written as a SpatialData zarr store.
    """
    from cellcensus.client import format_bytes, plan_export

    settings = _settings(endpoint_url, region, no_sign_request, path_style)
    columns = (
        {"obs": [c.strip() for c in obs_columns.split(",") if c.strip()]} if obs_columns else None
    )
    spatial = fmt == "spatialdata"
    collection = modality or ("census_spatial_sequencing" if spatial else "census_data")
    with _open(root, census_version, mirror, uri, settings) as census:
        flt = _obs_filter(
            census, organism, obs_filter, cell_type_under, tissue_under, disease_under
        )
        if spatial and not dry_run:
            _export_spatialdata(
                census, organism, to, flt, var_filter, x_name, collection, overwrite=overwrite
            )
            return
        with plan_export(
            census,
            organism,
            obs_value_filter=flt,
            var_value_filter=var_filter,
            column_names=columns,  # type: ignore[arg-type]
            X_name=x_name,
            modality=collection,
            memory_budget=memory_budget,
        ) as plan:
            console.print(_estimate_table(plan.estimate))
            if dry_run:
                return
            with RichProgress(enabled=progress) as bars:
                result = plan.run(to, format=fmt, progress=bars, overwrite=overwrite)
    rate = result.values_per_second
    out.print(
        f"wrote {', '.join(str(p) for p in result.outputs)}: {result.n_obs:,} cells x "
        f"{result.n_vars:,} genes, {result.nnz:,} values in {result.seconds:.1f} s "
        f"({rate / 1e6:.1f} M values/s; budget {format_bytes(result.memory_budget)})",
        highlight=False,
    )


@app.command("summarize")
def summarize_cmd(
    organism: OrganismArg,
    genes: Annotated[
        list[str], typer.Argument(help="Genes: feature ids (ENSG...) or names (CD4).")
    ],
    by: Annotated[
        list[str] | None,
        typer.Option(
            "--by",
            "-b",
            help="Break down by tissue_general, cell_type, assay, disease, sex or dataset_id "
            "(repeatable; default: tissue_general and cell_type).",
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-n", min=0, help="Rows shown per gene (0: all).")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every row).")] = False,
    root: RootOpt = None,
    census_version: VersionOpt = "stable",
    mirror: MirrorOpt = None,
    uri: UriOpt = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Where genes are expressed (primary cells), from a cellcensus build's expression summary."""
    from cellcensus.experimental import summarize

    settings = _settings(endpoint_url, region, no_sign_request, path_style)
    columns = list(by) if by else ["tissue_general", "cell_type"]
    with _open(root, census_version, mirror, uri, settings) as census:
        frame = summarize(census, organism, list(genes), by=columns)
    if as_json:
        out.print_json(frame.to_json(orient="records"))
        return
    for (feature_id, name), rows in frame.groupby(
        ["feature_id", "feature_name"], sort=False, observed=True
    ):
        shown = rows.sort_values("mean_log1p", ascending=False, kind="stable")
        if top:
            shown = shown.head(top)
        t = Table(
            title=f"{name} ({feature_id}): {len(rows)} groups, top {len(shown)} by mean log1p"
        )
        for c in columns:
            t.add_column(c)
        for c in ("cells", "expressing", "fraction", "mean", "mean log1p (expr.)"):
            t.add_column(c, justify="right")
        for rec in shown.itertuples(index=False):
            t.add_row(
                *(str(getattr(rec, c)) for c in columns),
                f"{rec.n_cells:,}",
                f"{rec.n_expressing:,}",
                f"{rec.fraction_expressing:.3f}",
                f"{rec.mean:.3g}",
                f"{rec.mean_log1p_expressing:.3f}",
            )
        out.print(t)


def _export_spatialdata(
    census: soma.Collection[Any],
    organism: str,
    to: Path,
    obs_filter: str | None,
    var_filter: str | None,
    x_name: str,
    modality: str,
    *,
    overwrite: bool,
) -> None:
    from cellcensus.client import export_spatialdata

    result = export_spatialdata(
        census,
        organism,
        to=to,
        obs_value_filter=obs_filter,
        var_value_filter=var_filter,
        X_name=x_name,
        modality=modality,
        overwrite=overwrite,
    )
    out.print(
        f"wrote {result.path}: {result.n_obs:,} cells x {result.n_vars:,} genes, scenes "
        f"{', '.join(result.scenes) or 'none'} (shapes {', '.join(result.shapes) or 'none'}; "
        f"images {', '.join(result.images) or 'none'}) in {result.seconds:.1f} s",
        highlight=False,
    )
