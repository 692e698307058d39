"""Run the cellcensus command line and SIGKILL it at a chosen point (crash-consistency tests).

``CELLCENSUS_TEST_KILLPOINT`` selects the point:

``count:FILE``
    Run to the end and write the number of *mutating events* to ``FILE``.
``event:N``
    SIGKILL the process at the N-th mutating event, before it takes effect.
``time:SECONDS``
    SIGKILL the process after that many seconds (points inside native code: TileDB writes).
``match:N:TEXT``
    SIGKILL the process at the N-th mutating event whose path contains ``TEXT``, before it
    takes effect (a named step, whatever the number of events before it).

Mutating events are Python audit events (``sys.addaudithook``) that change state: opening a
file for writing, rename/replace, link, unlink, mkdir, rmdir, ``shutil.rmtree``, and every HTTP
request sent (``http.client.send``, how boto3 talks to S3). Counting them in an uninterrupted
run and choosing N at random over that range spreads the kill points over every step of a
command, deterministically for a given seed. The hook is test machinery: the product has none.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

_EVENTS = frozenset(
    {
        "os.rename",
        "os.remove",
        "os.rmdir",
        "os.mkdir",
        "os.link",
        "os.symlink",
        "os.truncate",
        "shutil.rmtree",
        "http.client.send",
    }
)
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _mutating(event: str, args: tuple[object, ...]) -> bool:
    if event == "open":
        mode, flags = args[1], args[2]
        if isinstance(mode, str):
            return any(c in mode for c in "wax+")
        return isinstance(flags, int) and bool(flags & _WRITE)
    return event in _EVENTS


def _install(spec: str) -> None:
    kind, _, value = spec.partition(":")
    lock = threading.Lock()
    count = 0
    text = ""
    if kind == "match":
        value, _, text = value.partition(":")
    limit = int(value) if kind in ("event", "match") else None

    def hook(event: str, args: tuple[object, ...]) -> None:
        nonlocal count
        if not _mutating(event, args):
            return
        if text and text not in str(args[0] if args else ""):
            return
        with lock:
            count += 1
            if limit is not None and count >= limit:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    if kind == "count":

        def report() -> None:
            total = count  # before this very write is counted
            with open(value, "w") as f:  # noqa: PTH123 - plain open: no cellcensus import
                f.write(str(total))

        atexit.register(report)
    elif kind == "time":
        timer = threading.Timer(float(value), lambda: os.kill(os.getpid(), signal.SIGKILL))
        timer.daemon = True
        timer.start()


def main() -> None:
    """Install the kill point, then run ``cellcensus`` with this process's arguments."""
    spec = os.environ.get("CELLCENSUS_TEST_KILLPOINT", "")
    if spec:
        _install(spec)
    from cellcensus._cli import main as cli

    sys.argv = ["cellcensus", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
