"""``cellcensus._compat``: the TileDB error texts it matches, checked on real failures of the
installed versions, whichever TileDB error class is in effect."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from cellcensus import _compat

_OPEN = textwrap.dedent(
    """
    import json, sys
    # libtiledb's errors become the class of whichever binding was loaded last
    for name in sys.argv[2].split(","):
        __import__(name)
    import cellcensus
    from cellcensus.settings import Settings

    settings = Settings(endpoint_url=sys.argv[1], path_style=True, anonymous=True)
    try:
        cellcensus.open_soma(
            uri="s3://bucket/census/soma/",
            settings=settings,
            tiledb_config={"vfs.s3.connect_max_tries": "1"},
        )
    except Exception as e:
        print(json.dumps({"type": type(e).__name__, "cause": type(e.__cause__).__module__
                          + "." + type(e.__cause__).__name__, "message": str(e)}))
    """
)


def test_written_for_the_installed_versions() -> None:
    assert _compat.untested_versions() == {}, (
        "check the error texts of cellcensus._compat against these versions, then add them to "
        "WRITTEN_FOR"
    )


@pytest.mark.parametrize("order", ["tiledbsoma,tiledb", "tiledb,tiledbsoma"])
def test_unreachable_storage_is_classified(closed_port: int, order: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port}"
    run = subprocess.run(
        [sys.executable, "-c", _OPEN, endpoint, order],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["type"] == "ReleaseRootUnreachableError", got
    assert "cannot reach the storage holding s3://bucket/census/soma/" in got["message"]
    # either binding's class is recognised (tiledbsoma.open without soma_type was seen raising
    # tiledb.TileDBError once tiledb-py is loaded; open_soma's path raises SOMAError)
    assert got["cause"] in {"tiledbsoma._exception.SOMAError", "tiledb.libtiledb.TileDBError"}
