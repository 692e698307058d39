"""The typer application object, logging set-up and error handling shared by every command."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from cellcensus.errors import CellCensusError

app = typer.Typer(
    name="cellcensus",
    help="Build, publish, mirror and query Census-schema TileDB-SOMA releases.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(stderr=True)
out = Console()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)],
        force=True,
    )
    # third-party chatter stays at WARNING unless --verbose
    for name in ("distributed", "tiledbsoma", "botocore", "urllib3", "numba"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


def main() -> None:
    """Entry point: run the app and turn a CellCensusError into a clear message and exit code 1."""
    try:
        app()
    except CellCensusError as e:
        # escaped: a message may hold brackets ("cellcensus[build]") that rich reads as markup
        console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        sys.exit(1)
