"""The test command of scripts/test.sh survives one native crash and re-runs nothing else.

tiledbsoma 2.3 can abort or segfault the process in concurrent reads (upstream
TileDB-SOMA#4437). scripts/test.sh runs the suite in a pytest-xdist worker and lets
pytest-rerunfailures run a crashed test once more; these tests run that exact command on a small
suite with a test that kills its process with SIGABRT.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_SUITE = """
import os
from pathlib import Path

MARKER = Path(__file__).with_name("crashed-{tag}")


def test_crashes_{tag}():
    if {always} or not MARKER.exists():
        MARKER.write_text("x")
        os.abort()


def test_fails_{tag}():
    assert 1 == 2


def test_passes_{tag}():
    pass
"""


def _pytest_options() -> list[str]:
    """The options scripts/test.sh gives pytest (its ``exec ... -m pytest`` line)."""
    script = (ROOT / "scripts" / "test.sh").read_text()
    line = next(s for s in script.splitlines() if s.startswith("exec ") and "-m pytest" in s)
    words = shlex.split(line)
    return words[words.index("pytest") + 1 : words.index("$@")]


def _run(tmp_path: Path, *, always: bool) -> tuple[int, str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_suite.py").write_text(_SUITE.format(tag="x", always=always))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *_pytest_options(), "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return proc.returncode, proc.stdout.splitlines()[-1]


def test_options_are_read_from_the_script() -> None:
    assert _pytest_options() == ["-n", "1", "--reruns", "1", "--only-rerun", "(?!)"]


def test_a_crashed_test_runs_once_more_and_a_failed_one_does_not(tmp_path: Path) -> None:
    code, summary = _run(tmp_path, always=False)
    assert code == 1, summary
    assert "1 failed, 2 passed, 1 rerun" in summary, summary


def test_a_test_that_crashes_twice_fails_the_run(tmp_path: Path) -> None:
    code, summary = _run(tmp_path, always=True)
    assert code == 1, summary
    assert "2 failed, 1 passed, 1 rerun" in summary, summary
