"""The command line: demo (the README's main command), build, validate, clear errors."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.synth import SynthCorpus


def _cellcensus(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cellcensus", *args],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
        check=False,
    )


@pytest.mark.slow  # 112 s CPU measured (2026-12-02)
def test_demo_builds_publishes_and_queries(tmp_path: Path) -> None:
    res = _cellcensus("demo", str(tmp_path / "demo"), "--cells", "3000")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "built and validated" in res.stdout
    assert "stable →" in res.stdout
    assert "Homo sapiens, lung, primary cells by cell type" in res.stdout
    assert "get_anndata(Mus musculus" in res.stdout
    root = tmp_path / "demo" / "cell-census"
    assert (root / "release.json").exists()
    # a second run refuses to delete the first run's build and release root, and says what
    refused = _cellcensus("demo", str(tmp_path / "demo"), "--cells", "3000")
    assert refused.returncode != 0
    assert "--force" in refused.stderr
    assert str(tmp_path / "demo" / "build") in refused.stderr.replace("\n", "")
    assert (root / "release.json").exists()
    # ... unless asked: then it names what it removes, reuses the corpus and works again
    again = _cellcensus("demo", str(tmp_path / "demo"), "--cells", "3000", "--force")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "removing" in again.stderr
    assert "reusing the corpus" in again.stderr


@pytest.mark.slow  # 67 s CPU measured (2026-12-02)
def test_build_and_validate_commands(small_corpus: SynthCorpus, tmp_path: Path) -> None:
    out = tmp_path / "b"
    res = _cellcensus(
        "--quiet", "build", str(small_corpus.manifest_path), str(out), "--tag", "2026-05-05"
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert "built 2026-05-05" in res.stdout
    val = _cellcensus("validate", str(out))
    assert val.returncode == 0
    assert "valid:" in val.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("build", "/nonexistent/manifest.csv", "OUT"), "does not exist"),
        (("build", "MANIFEST", "OUT", "--on-error", "ignore"), "--on-error must be"),
        (
            ("build", "MANIFEST", "OUT", "--gene-major-layers", "raw,counts"),
            "gene_major_layers must name X layers",
        ),
        (("validate", "/nonexistent"), "not a cellcensus build"),
    ],
)
def test_errors_are_one_clear_line_and_exit_non_zero(
    args: tuple[str, ...], needle: str, small_corpus: SynthCorpus, tmp_path: Path
) -> None:
    real = [
        str(small_corpus.manifest_path)
        if a == "MANIFEST"
        else str(tmp_path / "o")
        if a == "OUT"
        else a
        for a in args
    ]
    res = _cellcensus(*real)
    assert res.returncode == 1
    assert needle in res.stderr
    assert "Traceback" not in res.stderr
