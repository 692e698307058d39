"""``cellcensus compare A B``: every difference between two census builds, and a summary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from cellcensus._cli._app import app, console, out
from cellcensus._cli._options import EndpointOpt, NoSignOpt, PathStyleOpt, RegionOpt, s3_settings

if TYPE_CHECKING:
    from cellcensus.compare import CompareReport


def _print_differences(report: CompareReport) -> None:
    for obj in report.objects:
        if obj.equal:
            continue
        out.print(
            f"[bold]{escape(obj.path)}[/] ({obj.soma_type}): {obj.n_differences:,} difference(s)"
        )
        for d in obj.differences:
            out.print(f"  {d.kind}: {escape(d.detail)}", highlight=False)
        more = obj.n_differences - len(obj.differences)
        if more > 0:
            out.print(f"  ... and {more:,} more")


def _summary(report: CompareReport) -> Table:
    table = Table(title=f"A {report.a}\nB {report.b}", title_justify="left")
    table.add_column("object", overflow="fold")  # whole paths, wrapped rather than cut
    table.add_column("type", no_wrap=True)
    table.add_column("compared", justify="right", no_wrap=True)
    table.add_column("differences", justify="right", no_wrap=True)
    table.add_column("kinds")
    for obj in report.objects:
        compared = f"{obj.compared:,} {obj.unit}".strip() if obj.unit else ""
        kinds = ", ".join(f"{k} {n:,}" for k, n in obj.kinds.items())
        table.add_row(
            escape(obj.path),
            obj.soma_type.removeprefix("SOMA"),
            compared,
            "[green]0[/]" if obj.equal else f"[red]{obj.n_differences:,}[/]",
            kinds,
        )
    return table


@app.command()
def compare(
    a: Annotated[str, typer.Argument(help="Build A: a build directory, its soma/, or s3://...")],
    b: Annotated[str, typer.Argument(help="Build B: a build directory, its soma/, or s3://...")],
    max_differences: Annotated[
        int, typer.Option(help="Differences printed per object; the rest are counted.")
    ] = 10,
    rtol: Annotated[
        float, typer.Option(help="Relative tolerance for floats (0: bit-identical).")
    ] = 0.0,
    dictionary_as_plain: Annotated[
        bool,
        typer.Option(
            help="Count a dictionary-encoded column and a plain one of the same value type (or "
            "two dictionary index widths) as the same type. Values are compared decoded anyway."
        ),
    ] = False,
    ignore_metadata: Annotated[
        list[str] | None,
        typer.Option(
            help="Metadata key not compared (repeatable; added to created_on, git_commit_sha, "
            "cellcensus_version, census_build_date)."
        ),
    ] = None,
    all_metadata: Annotated[
        bool, typer.Option(help="Compare every metadata key, including build time and version.")
    ] = False,
    all_members: Annotated[
        bool,
        typer.Option(
            help="Also compare what only cellcensus writes (cellcensus_genes: gene-major copies "
            "and the expression summary), which an official build does not have."
        ),
    ] = False,
    block_values: Annotated[
        int, typer.Option(help="Stored values per block read from each build (bounds memory).")
    ] = 4_000_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
    no_sign_request: NoSignOpt = False,
    path_style: PathStyleOpt = False,
) -> None:
    """Compare two census builds table by table; exit 1 when anything differs.

    Compares every object of both builds: census_info tables, obs and var (values, Arrow types,
    dictionary categories), X layers and presence matrices (every coordinate and value, read in
    blocks), and spatial scenes when present.
    """
    from cellcensus.compare import (
        DEFAULT_IGNORED_MEMBERS,
        DEFAULT_IGNORED_METADATA,
        CompareOptions,
        compare_builds,
    )

    ignored = frozenset() if all_metadata else DEFAULT_IGNORED_METADATA
    options = CompareOptions(
        max_differences=max_differences,
        rtol=rtol,
        dictionary_as_plain=dictionary_as_plain,
        ignore_metadata=ignored | frozenset(ignore_metadata or ()),
        ignore_members=frozenset() if all_members else DEFAULT_IGNORED_MEMBERS,
        block_values=block_values,
    )
    settings = s3_settings(endpoint_url, region, no_sign_request, path_style)
    with console.status("comparing ...", spinner="dots"):
        report = compare_builds(a, b, options=options, settings=settings)
    if as_json:
        print(json.dumps(report.to_dict(), indent=1))
    else:
        _print_differences(report)
        out.print(_summary(report))
        verdict = "equal" if report.equal else f"{report.n_differences:,} difference(s)"
        out.print(f"{verdict} ({len(report.objects)} objects compared in {report.seconds:.1f} s)")
    if not report.equal:
        raise typer.Exit(1)
