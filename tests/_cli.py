"""Run the command line in a subprocess: ``python -m cellcensus._cli`` with this interpreter.

The subprocess inherits the test's environment (isolated from the machine's AWS settings by the
root ``isolated_aws_env`` fixture) and this interpreter, and ``PYTHONPATH`` starts with the
directory this process imported ``cellcensus`` from: the subprocess runs the code under test, not
another installed copy (an environment replaced wholesale would lose that).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import cellcensus

if TYPE_CHECKING:
    from tests._s3server import S3Server

__all__ = ["CODE_ROOT", "cli_env", "publisher_env", "python_path_env", "run_cli", "s3_cli_args"]

#: The directory holding the ``cellcensus`` package this process imported (``src/`` of the
#: checkout under test, with the usual editable install).
CODE_ROOT = Path(cellcensus.__file__).resolve().parents[1]


def python_path_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with :data:`CODE_ROOT` first on ``PYTHONPATH``."""
    rest = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**env, "PYTHONPATH": os.pathsep.join([str(CODE_ROOT), *rest])}


def cli_env(**extra: str) -> dict[str, str]:
    """The current (isolated) environment plus ``extra``, for CLI subprocesses."""
    env = python_path_env(dict(os.environ))
    env.update(extra)
    env["COLUMNS"] = "200"
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cellcensus._cli ARGS`` and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "cellcensus._cli", *args],
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        msg = (
            f"cellcensus {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        raise AssertionError(msg)
    return proc


def s3_cli_args(server: S3Server) -> list[str]:
    """Endpoint options for the CLI against the test server."""
    return ["--endpoint-url", server.endpoint_url, "--path-style"]


def publisher_env(server: S3Server) -> dict[str, str]:
    """Environment with the publisher's keys in the standard AWS variables."""
    return cli_env(
        AWS_ACCESS_KEY_ID=server.publisher.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.publisher.secret_access_key,
    )
