"""``cellcensus synth``: write a synthetic CELLxGENE corpus and its manifest."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cellcensus._cli._app import app, console, out

if TYPE_CHECKING:
    from cellcensus.synth import DatasetSpec

_ORGANISMS = {"NCBITaxon:9606": "human", "NCBITaxon:10090": "mouse", "NCBITaxon:10116": "rat"}


def _notes(spec: DatasetSpec) -> str:
    notes = []
    if spec.duplicate_of:
        notes.append(f"duplicate of {spec.duplicate_of[:8]}…")
    if spec.organism_ontology_term_id not in ("NCBITaxon:9606", "NCBITaxon:10090"):
        notes.append("organism not in Census")
    if len(spec.assays) > 1 or spec.assays != ("EFO:0009922",):
        notes.append("assays " + ", ".join(spec.assays))
    if spec.tissue_types != ("tissue",):
        notes.append("/".join(spec.canonical_tissue_types))
    if spec.n_spike_ins:
        notes.append(f"{spec.n_spike_ins} ERCC")
    if spec.multi_disease_fraction:
        notes.append(f"{spec.multi_disease_fraction:.0%} two diseases")
    if "EFO:0022857" in spec.assays:
        notes.append("spatial: Visium" + (" + fullres image" if spec.spatial_fullres else ""))
    elif "EFO:0030062" in spec.assays:
        notes.append("spatial: Slide-seqV2")
    return "; ".join(notes)


def _table(specs: list[DatasetSpec]) -> Table:
    table = Table(title="synthetic datasets")
    for column in ("dataset_id", "organism", "cells", "genes", "matrix", "counts in", "notes"):
        table.add_column(column)
    for s in specs:
        table.add_row(
            s.dataset_id,
            _ORGANISMS.get(s.organism_ontology_term_id, s.organism_ontology_term_id),
            f"{s.n_cells:,}",
            "(source)" if s.duplicate_of else str(s.n_genes + s.n_spike_ins),
            s.x_format,
            "raw.X" if s.raw_location == "raw" else "X",
            _notes(s),
        )
    return table


@app.command()
def synth(
    out_dir: Annotated[
        Path,
        typer.Argument(help="Directory to write <dataset_id>.h5ad files and manifest.csv into."),
    ],
    cells: Annotated[int, typer.Option("--cells", help="Total cells of the corpus.")] = 60_000,
    seed: Annotated[int, typer.Option("--seed", help="Seed: same seed, same files.")] = 0,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Cells per write step (bounds memory).")
    ] = 10_000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo/--no-demo",
            help="The demo corpus (8 datasets: human, mouse, rat, duplicates, excluded parts, and "
            "the spatial ones), or one human 10x dataset of --cells cells.",
        ),
    ] = True,
    spatial: Annotated[
        bool,
        typer.Option(
            "--spatial/--no-spatial",
            help="With --demo: add a human Visium V1 capture area (4,992 spots, on top of --cells) "
            "and a mouse Slide-seqV2 puck (census_spatial_sequencing datasets).",
        ),
    ] = True,
) -> None:
    """Write a realistic synthetic CELLxGENE (schema 7) corpus with a Census-builder manifest."""
    from cellcensus._extras import require_extra

    require_extra("synth", "cellcensus synth")
    from cellcensus.synth import DatasetSpec, demo_corpus_specs, synth_corpus
    from cellcensus.synth._random import uuid4

    if demo:
        specs = demo_corpus_specs(cells, seed=seed, spatial=spatial)
    else:
        specs = [
            DatasetSpec(
                dataset_id=uuid4("dataset", seed, 0),
                organism_ontology_term_id="NCBITaxon:9606",
                n_cells=cells,
            )
        ]
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cells"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bars:
        tasks: dict[str, TaskID] = {
            s.dataset_id: bars.add_task(
                f"{s.dataset_id[:8]} {_ORGANISMS.get(s.organism_ontology_term_id, '')}",
                total=s.n_cells,
            )
            for s in specs
        }

        def advance(dataset_id: str, n: int) -> None:
            bars.advance(tasks[dataset_id], n)

        corpus = synth_corpus(
            out_dir, seed=seed, specs=specs, chunk_size=chunk_size, progress=advance
        )
    out.print(_table(corpus.specs))
    out.print(f"manifest: {corpus.manifest_path}")
