"""CLI subprocesses run the code under test, not another installed copy of cellcensus."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cellcensus
from tests._cli import CODE_ROOT, cli_env, python_path_env


def _imported_from(env: dict[str, str]) -> Path:
    proc = subprocess.run(
        [sys.executable, "-c", "import cellcensus; print(cellcensus.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return Path(proc.stdout.strip()).resolve()


def test_the_cli_environment_imports_the_code_under_test() -> None:
    here = Path(cellcensus.__file__).resolve()
    assert here.is_relative_to(CODE_ROOT)
    assert _imported_from(cli_env()) == here
    # even when the caller passes a bare environment (PATH only), as some tests do
    assert _imported_from(python_path_env({"PATH": "/usr/bin:/bin"})) == here
