"""Embedding commands: ``embeddings add|add-obsm|list|show|remove``. Thin wrappers over
:mod:`cellcensus.embeddings`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

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
from cellcensus._cli._progress import RichProgress

embeddings_app = typer.Typer(
    help="Attach cell embeddings to releases, list, show and remove them.", no_args_is_help=True
)
app.add_typer(embeddings_app, name="embeddings")

RootArg = Annotated[str, typer.Argument(help="Release root: directory or s3://bucket/prefix/.")]
NameOpt = Annotated[str, typer.Option("--name", help="Embedding name, e.g. scvi.")]
OrganismOpt = Annotated[
    str, typer.Option("--organism", help="Organism, e.g. homo_sapiens or 'Homo sapiens'.")
]
FromObsmOpt = Annotated[
    str | None,
    typer.Option("--from-obsm", help="Read obsm[KEY] of an AnnData file (.h5ad or AnnData .zarr)."),
]
ColumnOpt = Annotated[
    str | None,
    typer.Option("--column", help="The vector column of a parquet table (array of a zarr group)."),
]
JoinidsOpt = Annotated[
    Path | None,
    typer.Option(
        "--joinids",
        help="Keys of a .npy / zarr-array matrix's rows: a .npy of soma_joinids, or a "
        ".parquet/.csv with soma_joinid or dataset_id + observation_joinid columns "
        "(default: row i is soma_joinid i).",
    ),
]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset-id",
        help="Dataset of an AnnData file whose obs has no dataset_id column "
        "(default: the file name).",
    ),
]


@embeddings_app.command("add")
def add(
    *,
    root: RootArg,
    tag: Annotated[str, typer.Argument(help="Release (tag or alias) the embedding belongs to.")],
    file: Annotated[Path, typer.Argument(help="Embedding: .npy, .parquet, .zarr or .h5ad.")],
    name: NameOpt,
    organism: OrganismOpt,
    var: Annotated[
        bool, typer.Option("--var", help="A gene (var) embedding instead of a cell one.")
    ] = False,
    index: Annotated[
        bool, typer.Option("--index", help="Build an IVFFlat vector index (find_nearest_obs).")
    ] = False,
    partitions: Annotated[
        int | None, typer.Option("--partitions", min=1, help="Index partitions (default sqrt(n)).")
    ] = None,
    obsm: Annotated[
        bool,
        typer.Option(
            "--obsm",
            help="Also add it as an obsm layer of the census experiment: needs --build-dir, a "
            "build not yet published, which is then published as TAG.",
        ),
    ] = False,
    build_dir: Annotated[
        Path | None,
        typer.Option("--build-dir", help="With --obsm: the unpublished build to publish as TAG."),
    ] = None,
    lts: Annotated[bool, typer.Option("--lts", help="With --obsm: publish as LTS.")] = False,
    from_obsm: FromObsmOpt = None,
    column: ColumnOpt = None,
    joinids: JoinidsOpt = None,
    dataset_id: DatasetOpt = None,
    title: Annotated[str, typer.Option("--title", help="Short title.")] = "",
    description: Annotated[str, typer.Option("--description", help="Method, model.")] = "",
    contact: Annotated[str, typer.Option("--contact", help="Contact name.")] = "",
    contact_email: Annotated[str, typer.Option("--contact-email", help="Contact email.")] = "",
    model_link: Annotated[str, typer.Option("--model-link", help="Link to the model.")] = "",
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel uploads.")] = 8,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Attach an embedding to a published release: validate, write, verify, commit."""
    from cellcensus.embeddings import EmbeddingMetadata, add_embedding, read_input
    from cellcensus.errors import BadInputError
    from cellcensus.release import open_root

    r = open_root(root, s3_settings(endpoint_url, region, no_sign_request, path_style))
    source = read_input(
        file, obsm_key=from_obsm, column=column, joinids=joinids, dataset_id=dataset_id
    )
    if build_dir is not None and not obsm:
        msg = "--build-dir is only used with --obsm"
        raise BadInputError(msg, field="build_dir")
    if obsm:
        from cellcensus.embeddings import add_obsm_layer
        from cellcensus.release import publish, read_directory

        if build_dir is None:
            msg = (
                "--obsm adds the layer to a build before it is published (published builds are "
                "immutable): give --build-dir with the unpublished build of TAG"
            )
            raise BadInputError(msg, field="obsm")
        if tag in read_directory(r).builds:
            msg = (
                f"{tag!r} is already published at {r.uri}; its census cannot change, so --obsm "
                "needs a new build (attach without --obsm to add the embedding beside it)"
            )
            raise BadInputError(msg, field="obsm")
        if var:
            msg = "--obsm takes a cell embedding, not --var"
            raise BadInputError(msg, field="obsm")
        layer = add_obsm_layer(build_dir, source, name=name, organism=organism)
        out.print(f"added obsm layer {layer.uri}", highlight=False)
        with RichProgress() as progress:
            res = publish(build_dir, r, tag=tag, lts=lts, jobs=jobs, progress=progress)
        out.print(f"published {res.tag}: {res.soma_uri}", highlight=False)
    with RichProgress() as progress:
        result = add_embedding(
            r,
            tag,
            source,
            name=name,
            organism=organism,
            data_type="var_embedding" if var else "obs_embedding",
            index=index,
            partitions=partitions,
            metadata=EmbeddingMetadata(
                title=title,
                description=description,
                contact_name=contact,
                contact_email=contact_email,
                model_link=model_link,
            ),
            jobs=jobs,
            progress=progress,
        )
    e = result.entry
    out.print(
        f"attached {e.id}: {e.n_embeddings} x {e.n_features} {e.data_type} of "
        f"{e.experiment_name} in {e.census_version} ({result.total_objects} objects, "
        f"{result.total_bytes / 1e6:.1f} MB, {result.seconds:.1f} s)\nuri: {result.uri}"
        + (f"\nindex: {result.index_uri}" if result.index_uri else ""),
        highlight=False,
    )


@embeddings_app.command("add-obsm")
def add_obsm(
    *,
    build_dir: Annotated[Path, typer.Argument(help="Unpublished build directory.")],
    file: Annotated[Path, typer.Argument(help="Embedding: .npy, .parquet, .zarr or .h5ad.")],
    name: NameOpt,
    organism: OrganismOpt,
    from_obsm: FromObsmOpt = None,
    column: ColumnOpt = None,
    joinids: JoinidsOpt = None,
    dataset_id: DatasetOpt = None,
) -> None:
    """Post-build step: add an embedding to a build as obsm/<name> of the experiment."""
    from cellcensus.embeddings import add_obsm_layer

    res = add_obsm_layer(
        build_dir,
        file,
        name=name,
        organism=organism,
        obsm_key=from_obsm,
        column=column,
        joinids=joinids,
        dataset_id=dataset_id,
    )
    out.print(
        f"added obsm layer {res.uri} ({res.n_embeddings} x {res.n_features})", highlight=False
    )


@embeddings_app.command("list")
def list_(
    *,
    root: RootArg,
    tag: Annotated[str | None, typer.Option("--tag", help="Only this release.")] = None,
    organism: Annotated[str | None, typer.Option("--organism", help="Only this organism.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    orphans: Annotated[
        bool, typer.Option("--orphans", help="List stored data no entry refers to.")
    ] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """List the embeddings of a root (by release, organism, name)."""
    from cellcensus.embeddings import find_orphans, list_embeddings
    from cellcensus.release import open_root

    r = open_root(root, s3_settings(endpoint_url, region, no_sign_request, path_style))
    if orphans:
        for ref in find_orphans(r):
            out.print(ref, highlight=False)
        return
    entries = list_embeddings(r, tag=tag, organism=organism)
    if as_json:
        out.print_json(json.dumps([e.to_dict() for e in entries]))
        return
    table = Table(title=f"embeddings in {r.uri}")
    for col in ("id", "release", "organism", "name", "type", "cells x dims", "index", "submitted"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            e.id,
            e.census_version,
            e.experiment_name,
            e.embedding_name,
            e.data_type,
            f"{e.n_embeddings} x {e.n_features}",
            ",".join(i.type for i in e.indexes),
            e.submission_date,
        )
    out.print(table)


@embeddings_app.command("show")
def show(
    *,
    root: RootArg,
    ref: Annotated[str, typer.Argument(help="Embedding id (or name).")],
    tag: Annotated[
        str | None, typer.Option("--tag", help="Release, when a name is ambiguous.")
    ] = None,
    organism: Annotated[
        str | None, typer.Option("--organism", help="Organism, when a name is ambiguous.")
    ] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Show one embedding's entry and stored size as JSON."""
    from cellcensus.embeddings import show_embedding
    from cellcensus.release import open_root

    r = open_root(root, s3_settings(endpoint_url, region, no_sign_request, path_style))
    det = show_embedding(r, ref, tag=tag, organism=organism)
    doc = {"entry": det.entry.to_dict(), "objects": det.objects, "total_bytes": det.total_bytes}
    out.print_json(json.dumps(doc))


@embeddings_app.command("remove")
def remove(
    *,
    root: RootArg,
    ref: Annotated[str, typer.Argument(help="Embedding id (or name), or TAG/ID of an orphan.")],
    tag: Annotated[
        str | None, typer.Option("--tag", help="Release, when a name is ambiguous.")
    ] = None,
    organism: Annotated[
        str | None, typer.Option("--organism", help="Organism, when a name is ambiguous.")
    ] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Remove an embedding: drop its entry (compare-and-swap), then delete its data."""
    from cellcensus.embeddings import remove_embedding
    from cellcensus.release import open_root

    r = open_root(root, s3_settings(endpoint_url, region, False, path_style))
    n = remove_embedding(r, ref, tag=tag, organism=organism)
    out.print(f"removed {ref} ({n} objects)", highlight=False)
