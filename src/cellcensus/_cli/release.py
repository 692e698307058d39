"""Release commands: ``publish``, ``releases list|show``, ``promote``, ``retract``, ``alias``,
``pin``/``unpin``, ``cleanup``, ``verify``, ``mirrors``, ``sync``. Thin wrappers over
:mod:`cellcensus.release`."""

from __future__ import annotations

import json
from pathlib import Path  # noqa: TC003 - typer evaluates annotations at runtime
from typing import TYPE_CHECKING, Annotated, Literal

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

if TYPE_CHECKING:
    from cellcensus.release import ReleaseRoot

# ---------------------------------------------------------------------------- common options
RootOpt = Annotated[
    str,
    typer.Option(
        "--root",
        "-r",
        envvar="CELLCENSUS_RELEASE_ROOT",
        help="Release root: a directory, file:///path or s3://bucket/prefix/ "
        "(env CELLCENSUS_RELEASE_ROOT).",
    ),
]
JobsOpt = Annotated[int, typer.Option("--jobs", "-j", min=1, help="Parallel transfers.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


_settings = s3_settings  # one resolution of S3 options for every command


def _open(
    root: str,
    endpoint_url: str | None,
    region: str | None,
    no_sign_request: bool,
    path_style: bool,
) -> ReleaseRoot:
    from cellcensus.release import open_root

    return open_root(root, _settings(endpoint_url, region, no_sign_request, path_style))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


# ---------------------------------------------------------------------------- publish
@app.command()
def publish(
    *,
    build_dir: Annotated[Path, typer.Argument(help="Build directory (soma/, h5ads/, build.json).")],
    root: Annotated[str, typer.Argument(help="Release root: directory or s3://bucket/prefix/.")],
    tag: Annotated[
        str | None, typer.Option(help="Build tag, YYYY-MM-DD (default: today, UTC).")
    ] = None,
    lts: Annotated[bool, typer.Option("--lts", help="Publish as long-term stable.")] = False,
    allow_custom_tag: Annotated[
        bool, typer.Option("--allow-custom-tag", help="Accept a tag that is not a date.")
    ] = False,
    discard_partial: Annotated[
        bool,
        typer.Option(
            "--discard-partial",
            help="Delete a different, unpublished build left under the tag by an interrupted "
            "publish.",
        ),
    ] = False,
    jobs: JobsOpt = 8,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Upload a build to ROOT/<tag>/, verify it, then add it to release.json."""
    from cellcensus.release import publish as do_publish

    r = _open(root, endpoint_url, region, no_sign_request, path_style)
    with RichProgress() as progress:
        res = do_publish(
            build_dir,
            r,
            tag=tag,
            lts=lts,
            allow_custom_tag=allow_custom_tag,
            discard_partial=discard_partial,
            jobs=jobs,
            progress=progress,
        )
    rate = res.bytes_uploaded / res.seconds / 1e6 if res.seconds > 0 else 0.0
    out.print(
        f"published {res.tag}: {res.total_objects} objects ({_mb(res.total_bytes)}); uploaded "
        f"{res.uploaded} ({_mb(res.bytes_uploaded)}, {rate:.1f} MB/s), {res.skipped} already "
        f"there, in {res.seconds:.1f} s\nsoma: {res.soma_uri}\n"
        f"report: {r.object_uri(f'{res.tag}/report.html')}",
        highlight=False,
    )


# ---------------------------------------------------------------------------- releases
releases_app = typer.Typer(help="List and show published releases.", no_args_is_help=True)
app.add_typer(releases_app, name="releases")


@releases_app.command("list")
def releases_list(
    *,
    root: RootOpt,
    as_json: JsonOpt = False,
    jobs: JobsOpt = 8,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """List builds (newest first): date, LTS/weekly, aliases, retracted, cells and size."""
    from cellcensus.report import list_releases
    from cellcensus.report._fmt import count, nbytes

    r = _open(root, endpoint_url, region, no_sign_request, path_style)
    rows = list_releases(r, jobs=jobs)
    if as_json:
        out.print_json(json.dumps({"root": r.uri, "releases": [x.to_dict() for x in rows]}))
        return
    table = Table(title=f"releases in {r.uri}")
    spatial = any(x.spatial_cells for x in rows)  # a column only when some build has spatial
    cols = ("tag", "date", "kind", "aliases", "retracted", "cells", "spatial", "size")
    for col in cols:
        if col != "spatial" or spatial:
            table.add_column(col, justify="right" if col in cols[5:] else "left")
    for x in rows:
        kind = x.kind + (", pinned" if x.pinned else "")
        table.add_row(
            x.tag,
            x.release_date or "",
            kind,
            ",".join(x.aliases),
            "[red]retracted[/]" if x.retracted else "",
            count(x.cells),
            *([count(x.spatial_cells)] if spatial else []),
            nbytes(x.store_bytes),
        )
    out.print(table)


@releases_app.command("show")
def releases_show(
    *,
    name: Annotated[str, typer.Argument(help="Tag or alias.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Show one release: its release.json entry, aliases and size."""
    from cellcensus.release import show_release

    r = _open(root, endpoint_url, region, no_sign_request, path_style)
    det = show_release(r, name)
    doc = {
        "name": det.name,
        "tag": det.tag,
        "aliases": det.aliases,
        "objects": det.object_count,
        "total_bytes": det.total_size,
        "entry": det.entry.to_dict(),
    }
    out.print_json(json.dumps(doc))


# ---------------------------------------------------------------------------- directory changes
@app.command()
def promote(
    *,
    tag: Annotated[str, typer.Argument(help="Build tag.")],
    root: RootOpt,
    lts: Annotated[bool, typer.Option("--lts/--no-lts", help="Set or clear the LTS flag.")] = True,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Mark a build long-term stable ('stable' follows the newest LTS build)."""
    from cellcensus.release import promote as do_promote

    d = do_promote(_open(root, endpoint_url, region, False, path_style), tag, lts=lts)
    out.print(f"{tag}: lts={lts}; stable -> {d.aliases.get('stable')}", highlight=False)


@app.command()
def retract(
    *,
    tag: Annotated[str, typer.Argument(help="Build tag.")],
    root: RootOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why it is retracted.")],
    replaced_by: Annotated[
        str | None, typer.Option("--replaced-by", help="Tag or alias that replaces it.")
    ] = None,
    info_url: Annotated[str | None, typer.Option("--info-url", help="Link to details.")] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Retract a build: data is kept, the flag and the reason are recorded."""
    from cellcensus.release import retract as do_retract

    r = _open(root, endpoint_url, region, False, path_style)
    d = do_retract(r, tag, reason=reason, replaced_by=replaced_by, info_url=info_url)
    out.print(
        f"retracted {tag}; latest -> {d.aliases.get('latest')}, stable -> "
        f"{d.aliases.get('stable')}",
        highlight=False,
    )


alias_app = typer.Typer(help="Set or remove aliases in release.json.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")


@alias_app.command("set")
def alias_set(
    *,
    name: Annotated[str, typer.Argument(help="Alias name, e.g. V2.")],
    tag: Annotated[str, typer.Argument(help="Target tag or alias.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Point an alias at a build."""
    from cellcensus.release import set_alias

    set_alias(_open(root, endpoint_url, region, False, path_style), name, tag)
    out.print(f"{name} -> {tag}", highlight=False)


@alias_app.command("remove")
def alias_remove(
    *,
    name: Annotated[str, typer.Argument(help="Alias name.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Remove an alias (not latest/stable)."""
    from cellcensus.release import remove_alias

    remove_alias(_open(root, endpoint_url, region, False, path_style), name)
    out.print(f"removed alias {name}", highlight=False)


@app.command()
def pin(
    *,
    tag: Annotated[str, typer.Argument(help="Build tag.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Protect a build from clean-up (do_not_delete)."""
    from cellcensus.release import pin as do_pin

    do_pin(_open(root, endpoint_url, region, False, path_style), tag)
    out.print(f"pinned {tag}", highlight=False)


@app.command()
def unpin(
    *,
    tag: Annotated[str, typer.Argument(help="Build tag.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Remove clean-up protection from a build."""
    from cellcensus.release import unpin as do_unpin

    do_unpin(_open(root, endpoint_url, region, False, path_style), tag)
    out.print(f"unpinned {tag}", highlight=False)


@app.command()
def cleanup(
    *,
    root: RootOpt,
    days: Annotated[int, typer.Option(min=0, help="Keep weekly builds younger than this.")] = 32,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Delete old weekly builds (never LTS, aliased, pinned or the newest ones)."""
    from cellcensus.release import cleanup as do_cleanup

    plan = do_cleanup(
        _open(root, endpoint_url, region, False, path_style), days=days, dry_run=dry_run
    )
    verb = "would delete" if dry_run else "deleted"
    for tag in plan.delete:
        out.print(f"{verb} {tag}", highlight=False)
    for tag, why in plan.keep.items():
        out.print(f"kept {tag}: {why}", highlight=False)
    if not plan.delete:
        out.print("nothing to delete", highlight=False)


# ---------------------------------------------------------------------------- verify / sync
@app.command()
def verify(
    *,
    root: Annotated[str, typer.Argument(help="Release root.")],
    tag: Annotated[str, typer.Argument(help="Tag or alias.")],
    jobs: JobsOpt = 8,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Check every object's size and sha256 against manifest.json; exit 1 on any mismatch."""
    from cellcensus.errors import IntegrityError
    from cellcensus.release import verify as do_verify

    r = _open(root, endpoint_url, region, no_sign_request, path_style)
    with RichProgress() as progress:
        report = do_verify(r, tag, jobs=jobs, progress=progress)
    for p in report.problems:
        out.print(f"MISMATCH {p}", highlight=False)
    if not report.ok:
        msg = f"{report.summary()} (listed above); republish the build or restore those objects"
        raise IntegrityError(msg)
    out.print(
        f"ok: {report.checked} objects ({_mb(report.total_bytes)}) of {report.uri} match "
        "manifest.json",
        highlight=False,
    )


@app.command()
def sync(
    *,
    root: Annotated[str, typer.Argument(help="Release root.")],
    tag: Annotated[str, typer.Argument(help="Tag or alias (latest, stable...).")],
    dest: Annotated[Path, typer.Argument(help="Local destination directory.")],
    only: Annotated[
        str | None, typer.Option("--only", help="Copy only 'soma' or only 'h5ads'.")
    ] = None,
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Remove files under DEST/soma and DEST/h5ads that were not put there by a "
            "sync (without it, such files make the sync refuse).",
        ),
    ] = False,
    jobs: JobsOpt = 8,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Download a build: parallel, resumable, every object verified against manifest.json."""
    from cellcensus.errors import BadInputError
    from cellcensus.release import sync as do_sync

    if only not in (None, "soma", "h5ads"):
        msg = f"--only must be 'soma' or 'h5ads', got {only!r}"
        raise BadInputError(msg, field="only")
    part: Literal["soma", "h5ads"] | None = (
        None if only is None else ("soma" if only == "soma" else "h5ads")
    )
    r = _open(root, endpoint_url, region, no_sign_request, path_style)
    with RichProgress() as progress:
        res = do_sync(r, tag, dest, only=part, delete=delete, jobs=jobs, progress=progress)
    rate = res.bytes_downloaded / res.seconds / 1e6 if res.seconds > 0 else 0.0
    out.print(
        f"synced {res.tag} to {res.dest}: {res.total_objects} objects "
        f"({_mb(res.total_bytes)}); downloaded {res.downloaded} ({_mb(res.bytes_downloaded)}, "
        f"{rate:.1f} MB/s), {res.skipped} already complete, {res.removed} of another build "
        f"removed, in {res.seconds:.1f} s",
        highlight=False,
    )


# ---------------------------------------------------------------------------- mirrors
mirrors_app = typer.Typer(help="Manage mirrors.json.", no_args_is_help=True)
app.add_typer(mirrors_app, name="mirrors")


@mirrors_app.command("add")
def mirrors_add(
    *,
    name: Annotated[str, typer.Argument(help="Mirror name.")],
    base_uri: Annotated[str, typer.Argument(help="s3://bucket/ or file:///dir/ (or /abs/dir).")],
    root: RootOpt,
    provider: Annotated[
        str | None, typer.Option(help="S3 or file (default: from the URI).")
    ] = None,
    mirror_region: Annotated[
        str | None, typer.Option("--mirror-region", help="Region of the mirror's bucket.")
    ] = None,
    embeddings_base_uri: Annotated[str | None, typer.Option(help="Embeddings base URI.")] = None,
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an existing one.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Add a mirror (the first one becomes the default)."""
    from cellcensus.release import add_mirror

    d = add_mirror(
        _open(root, endpoint_url, region, False, path_style),
        name,
        base_uri,
        provider=provider,
        region=mirror_region,
        embeddings_base_uri=embeddings_base_uri,
        make_default=default,
        replace=replace,
    )
    out.print(f"mirror {name}: {d.mirrors[name].base_uri}; default: {d.default}", highlight=False)


@mirrors_app.command("list")
def mirrors_list(
    *,
    root: RootOpt,
    as_json: JsonOpt = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """List mirrors."""
    from cellcensus.release import read_mirrors

    d = read_mirrors(_open(root, endpoint_url, region, no_sign_request, path_style))
    if as_json:
        out.print_json(json.dumps(d.to_dict()))
        return
    table = Table(title="mirrors")
    for col in ("name", "default", "provider", "base_uri", "region"):
        table.add_column(col)
    for m in d.mirrors.values():
        table.add_row(
            m.name, "*" if m.name == d.default else "", m.provider, m.base_uri, m.region or ""
        )
    out.print(table)


@mirrors_app.command("set-default")
def mirrors_set_default(
    *,
    name: Annotated[str, typer.Argument(help="Mirror name.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Make a mirror the default."""
    from cellcensus.release import set_default_mirror

    set_default_mirror(_open(root, endpoint_url, region, False, path_style), name)
    out.print(f"default mirror: {name}", highlight=False)


@mirrors_app.command("remove")
def mirrors_remove(
    *,
    name: Annotated[str, typer.Argument(help="Mirror name.")],
    root: RootOpt,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    path_style: PathStyleOpt = False,
) -> None:
    """Remove a mirror (not the default)."""
    from cellcensus.release import remove_mirror

    remove_mirror(_open(root, endpoint_url, region, False, path_style), name)
    out.print(f"removed mirror {name}", highlight=False)
