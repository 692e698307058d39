"""The core install (no extras) reads a census, and every feature that needs an extra says which
one: a real environment made from ``uv.lock`` with the core dependencies only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_READ = textwrap.dedent(
    """
    import json, sys, warnings
    import cellcensus
    from cellcensus.errors import MissingExtraError

    soma, tmp = sys.argv[1], sys.argv[2]
    out = {}
    with cellcensus.open_soma(uri=soma) as census:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a = cellcensus.get_anndata(census, "Homo sapiens", obs_coords=slice(0, 49))
        out["shape"] = list(a.shape)
        res = cellcensus.experimental.export(census, "homo_sapiens", to=tmp + "/x.h5ad",
                                             obs_coords=slice(0, 49))
        out["h5ad_nnz"] = res.nnz
        try:
            cellcensus.experimental.export(census, "homo_sapiens", to=tmp + "/x.zarr",
                                           obs_coords=slice(0, 49))
        except MissingExtraError as e:
            out["zarr"] = str(e)
        try:
            cellcensus.experimental.pp.get_highly_variable_genes(census, "homo_sapiens")
        except MissingExtraError as e:
            out["pp"] = str(e)
    print(json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def core_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment with cellcensus and its core dependencies only, from uv.lock."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run scripts/setup.sh", pytrace=False)
    venv = tmp_path_factory.mktemp("core") / "venv"
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_PYTHON_DOWNLOADS": "never",
    }
    subprocess.run(
        [uv, "sync", "--quiet", "--locked", "--no-dev", "--python", sys.executable],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=900,
    )
    return venv


@pytest.mark.slow
def test_core_install_reads_and_names_missing_extras(
    core_env: Path, census_build: Path, tmp_path: Path
) -> None:
    python = core_env / "bin" / "python"
    installed = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; print([m for m in ('dask', 'distributed', "
            "'cellxgene_schema', 'zarr', 'skmisc') if u.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert installed.stdout.strip() == "[]"  # no extra got in through the core dependencies

    run = subprocess.run(
        [python, "-c", _READ, str(census_build / "soma"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert got["shape"][0] == 50
    assert got["h5ad_nnz"] > 0
    assert "pip install 'cellcensus[export]'" in got["zarr"]
    assert "pip install 'cellcensus[pp]'" in got["pp"]

    cli = core_env / "bin" / "cellcensus"
    for argv, extra in (
        (["build", str(tmp_path / "m.csv"), str(tmp_path / "out")], "build"),
        (["synth", str(tmp_path / "corpus")], "synth"),
        (["demo", str(tmp_path / "demo")], "synth"),
    ):
        res = subprocess.run([cli, *argv], capture_output=True, text=True, timeout=300, check=False)
        assert res.returncode == 1, (argv, res.stdout, res.stderr)
        assert f"pip install 'cellcensus[{extra}]'" in " ".join(res.stderr.split())
        assert "Traceback" not in res.stderr
