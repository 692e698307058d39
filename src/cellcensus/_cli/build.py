"""``cellcensus build``, ``validate`` and ``demo``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from cellcensus._cli._app import app, console, out
from cellcensus._cli._options import EndpointOpt, NoSignOpt, PathStyleOpt, RegionOpt, s3_settings
from cellcensus._cli._progress import RichProgress
from cellcensus._extras import require_extra


def _summary_table(result_datasets: list[dict[str, object]]) -> Table:
    table = Table(title="datasets")
    for col in ("dataset_id", "status", "organism", "source cells", "census cells", "reason"):
        table.add_column(col)
    for d in result_datasets:
        table.add_row(
            str(d["dataset_id"]),
            str(d["status"]),
            str(d.get("organism_ontology_term_id") or ""),
            str(d.get("n_obs_source") or ""),
            str(d.get("n_obs_census") or 0),
            str(d.get("reason") or "")[:80],
        )
    return table


@app.command()
def build(
    manifest: Annotated[
        Path, typer.Argument(help="Manifest CSV (official format) or a directory of .h5ad files.")
    ],
    out_dir: Annotated[
        Path, typer.Argument(help="New directory to write soma/, h5ads/ and build.json into.")
    ],
    tag: Annotated[
        str | None, typer.Option(help="Build tag / census_build_date (default: today, UTC).")
    ] = None,
    on_error: Annotated[
        str,
        typer.Option(
            "--on-error", help="'stop' at the first bad dataset, or 'skip' it and record why."
        ),
    ] = "stop",
    chunk_nnz: Annotated[
        int, typer.Option(help="Stored values a task holds at once (bounds memory, ~40 B each).")
    ] = 8_000_000,
    band_nnz: Annotated[
        int | None,
        typer.Option(
            help="Work per band task (stored values + 16 per cell); each band is one fragment "
            "of X and obs. Default: about 1/64 of the census, at least --chunk-nnz."
        ),
    ] = None,
    unknown_genes: Annotated[
        str,
        typer.Option(
            "--unknown-genes",
            help="Gene ids missing from the organism's gene reference: 'error' (refuse the "
            "dataset) or 'drop' (leave those features out, with a warning in build.json).",
        ),
    ] = "error",
    workers: Annotated[
        int, typer.Option(help="Worker processes (1: run in this process; >1: Dask LocalCluster).")
    ] = 1,
    threads: Annotated[
        int,
        typer.Option(
            help="With --workers 1: band tasks written at once on threads of this process, "
            "sharing the --chunk-nnz budget. Faster on dense data (~170+ values a cell); "
            "experimental (docs/building.md)."
        ),
    ] = 1,
    processes: Annotated[
        int | None,
        typer.Option(
            help="With --workers 1: band tasks run on this many worker processes of this "
            "machine, sharing the --chunk-nnz budget. Default: 2 (at most the CPUs) when the "
            "sources hold at least 64 MiB, else 1 (docs/building.md).",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Existing Dask scheduler address, e.g. tcp://host:8786.")
    ] = None,
    memory_per_worker: Annotated[
        str | None, typer.Option(help="Memory limit per LocalCluster worker, e.g. 4GiB.")
    ] = None,
    validate: Annotated[bool, typer.Option(help="Validate the output against the sources.")] = True,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue an interrupted build of the same inputs, reusing finished work."
        ),
    ] = False,
    compression: Annotated[
        str,
        typer.Option(
            help="zstd levels: 'fast' (lower, faster) or 'official' (the official builder's)."
        ),
    ] = "fast",
    blocklist: Annotated[
        Path | None,
        typer.Option(
            help="Dataset blocklist: one dataset id a line, blank lines and '#' comments "
            "ignored (the official builder's format); listed datasets are left out."
        ),
    ] = None,
    gene_major: Annotated[
        bool,
        typer.Option(
            help="Also write gene-major copies of X (cellcensus_genes/<organism>/X: fast "
            "queries of a few genes across many cells)."
        ),
    ] = True,
    gene_major_layers: Annotated[
        str,
        typer.Option(
            help="X layers to copy gene-major, comma-separated: 'raw' (about 0.6x of X/raw's "
            "storage) or 'raw,normalized' (the normalized copy adds about 1.4x of "
            "X/normalized's storage)."
        ),
    ] = "raw",
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Build a Census-schema release tag from H5AD files."""
    require_extra("build", "cellcensus build")
    from cellcensus.builder import BuildOptions, build_census
    from cellcensus.builder.manifest import load_blocklist
    from cellcensus.errors import BadInputError

    if compression not in ("fast", "official"):
        msg = "--compression must be 'fast' or 'official'"
        raise BadInputError(msg, field="compression")
    if on_error not in ("stop", "skip"):
        msg = "--on-error must be 'stop' or 'skip'"
        raise BadInputError(msg, field="on_error")
    mode: Literal["stop", "skip"] = "skip" if on_error == "skip" else "stop"
    if unknown_genes not in ("error", "drop"):
        msg = "--unknown-genes must be 'error' or 'drop'"
        raise BadInputError(msg, field="unknown_genes")
    layers = tuple(x.strip() for x in gene_major_layers.split(",") if x.strip())
    options = BuildOptions(
        tag=tag,
        on_error=mode,
        unknown_genes="drop" if unknown_genes == "drop" else "error",
        chunk_nnz=chunk_nnz,
        band_nnz=band_nnz,
        workers=workers,
        threads=threads,
        processes=processes,
        scheduler=scheduler,
        memory_per_worker=memory_per_worker,
        validate=validate,
        resume=resume,
        compression="official" if compression == "official" else "fast",
        blocklist=load_blocklist(blocklist) if blocklist is not None else frozenset(),
        gene_major=gene_major,
        gene_major_layers=layers,
    )
    with RichProgress() as progress:
        result = build_census(
            manifest,
            out_dir,
            options=options,
            progress=progress,
            settings=s3_settings(endpoint_url, region, no_sign_request, path_style),
        )
    console.print(_summary_table(result.datasets))
    out.print(
        f"built {result.tag} in {result.seconds:.1f} s: {result.total_cell_count} cells "
        f"({result.unique_cell_count} unique) → {result.out_dir}"
    )


@app.command("validate")
def validate_cmd(
    build_dir: Annotated[
        Path, typer.Argument(help="A build directory (soma/, h5ads/, build.json).")
    ],
    sample_cells: Annotated[
        int, typer.Option(help="Cells per dataset compared with the source.")
    ] = 256,
) -> None:
    """Check a build against its source H5ADs; exits non-zero listing every problem."""
    require_extra("build", "cellcensus validate")
    from cellcensus.builder import validate_build

    report = validate_build(build_dir, sample_cells=sample_cells)
    out.print(f"valid: {report.checks} checks passed, {report.cells_sampled} cells compared")


def _demo_query(root: Path) -> None:
    import warnings

    import cellxgene_census
    from anndata import ImplicitModificationWarning

    # get_anndata's AnnData construction notes that it turns the index into strings: expected
    warnings.filterwarnings("ignore", category=ImplicitModificationWarning)
    from cellcensus import open_soma

    # the release is resolved like the official client does, through the root's release.json
    with open_soma(census_version="stable", release_root=str(root)) as census:
        human = census["census_data"]["homo_sapiens"]
        obs = (
            human.obs.read(
                value_filter="tissue_general == 'lung' and is_primary_data == True",
                column_names=["cell_type", "dataset_id"],
            )
            .concat()
            .to_pandas()
        )
        counts = obs.groupby("cell_type", observed=True).size().sort_values(ascending=False)
        table = Table(title="Homo sapiens, lung, primary cells by cell type")
        table.add_column("cell_type")
        table.add_column("cells", justify="right")
        for name, n in counts.head(10).items():
            table.add_row(str(name), str(n))
        out.print(table)
        adata = cellxgene_census.get_anndata(
            census,
            "Mus musculus",
            obs_value_filter="sex == 'female'",
            var_value_filter="feature_name in ['Actb', 'Gapdh', 'Malat1', 'Cd3e']",
        )
        out.print(
            f"get_anndata(Mus musculus, sex == 'female', 4 genes): {adata.n_obs} cells x "
            f"{adata.n_vars} genes, {adata.X.nnz} non-zero counts"
        )


@app.command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Working directory for the demo.")] = Path(
        "demo"
    ),
    cells: Annotated[int, typer.Option(help="Cells in the synthetic corpus.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic corpus.")] = 0,
    workers: Annotated[int, typer.Option(help="Build worker processes.")] = 1,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace DIR/build, DIR/cell-census (and DIR/corpus when --cells or --seed "
            "changed) left by an earlier demo.",
        ),
    ] = False,
) -> None:
    """Synthesize a corpus, build it, validate it, publish it to a local release root, and
    query the 'stable' release with the official client's functions.

    Writes DIR/corpus, DIR/build and DIR/cell-census. An earlier demo's DIR/build and
    DIR/cell-census are only replaced with --force; DIR/corpus is reused when --cells and --seed
    are unchanged.
    """
    require_extra("synth", "cellcensus demo")
    require_extra("build", "cellcensus demo")
    from cellcensus.builder import BuildOptions, build_census
    from cellcensus.errors import BadInputError
    from cellcensus.release import publish, read_directory
    from cellcensus.synth import synth_corpus

    directory = directory.expanduser().resolve()
    corpus_dir = directory / "corpus"
    stamp = corpus_dir / "synth.json"
    wanted = {"cells": cells, "seed": seed}
    build_dir = directory / "build"
    root = directory / "cell-census"
    new_corpus = not stamp.exists() or json.loads(stamp.read_text()) != wanted
    doomed = [p for p in (build_dir, root) if p.exists()]
    if new_corpus and corpus_dir.exists():
        doomed.insert(0, corpus_dir)
    if doomed and not force:
        names = ", ".join(str(p) for p in doomed)
        msg = (
            f"the demo would delete {names} (left by an earlier run?); move them away, choose "
            "another directory, or run again with --force to replace them"
        )
        raise BadInputError(msg)
    for p in doomed:
        console.print(f"removing {p}")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    t0 = time.monotonic()
    if new_corpus:
        console.print(f"synthesizing {cells} cells into {corpus_dir}")
        corpus = synth_corpus(corpus_dir, seed=seed, n_cells=cells)
        stamp.write_text(json.dumps(wanted))
        manifest = corpus.manifest_path
    else:
        manifest = corpus_dir / "manifest.csv"
        console.print(f"reusing the corpus in {corpus_dir}")
    with RichProgress() as progress:
        result = build_census(
            manifest, build_dir, options=BuildOptions(workers=workers), progress=progress
        )
        console.print(_summary_table(result.datasets))
        out.print(
            f"built and validated {result.tag}: {result.total_cell_count} cells "
            f"({result.unique_cell_count} unique) in {result.seconds:.1f} s → {build_dir}"
        )
        published = publish(build_dir, root, tag=result.tag, lts=True, progress=progress)
    directory_doc = read_directory(root)
    out.print(
        f"published {published.tag} to the local release root {root} "
        f"(latest → {directory_doc.resolve('latest')}, stable → {directory_doc.resolve('stable')})"
    )
    _demo_query(root)
    out.print(f"demo finished in {time.monotonic() - t0:.1f} s")
