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
    from cellcensus._redact import SecretFilter

    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    handler.addFilter(SecretFilter())  # botocore logs session tokens at DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    # third-party chatter stays at WARNING unless --verbose
    for name in ("distributed", "tiledbsoma", "botocore", "urllib3", "numba"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)


#: Longest error message printed; longer ones (a library's message embedded) are cut.
MAX_ERROR_CHARS = 2000


def one_line(message: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``message`` as one line, at most about ``limit`` characters: its lines joined by "; "
    (after a colon by a space), whitespace runs collapsed."""
    text = ""
    for line in (" ".join(ln.split()) for ln in message.splitlines()):
        if line:
            text += (" " if text.endswith(":") else "; ") + line if text else line
    if len(text) > limit:
        text = f"{text[:limit]}… ({len(text) - limit} more characters)"
    return text


def main() -> None:
    """Entry point: run the app and turn a CellCensusError into a clear message and exit code 1.

    A file-system error that reached here unmapped (an ``OSError``) is reported the same way,
    by :func:`cellcensus._fs.fs_error`, never as a traceback.
    """
    try:
        app()
    except CellCensusError as e:
        # escaped (a message may hold brackets, "cellcensus[build]", that rich reads as markup),
        # redacted and joined into one line by _print_error
        _print_error(str(e))
        sys.exit(1)
    except OSError as e:
        from cellcensus._fs import fs_error

        command = next((a for a in sys.argv[1:] if not a.startswith("-")), "cellcensus")
        _print_error(str(fs_error(e, action=f"cellcensus {command}")))
        sys.exit(1)


def _print_error(message: str) -> None:
    from cellcensus._redact import redact

    text = escape(one_line(redact(message)))
    console.print(f"[bold red]error:[/] {text}", highlight=False, soft_wrap=True)
