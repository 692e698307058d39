"""`cellcensus query` / `cellcensus export`, and experimental.pp on our build."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypedDict

import anndata
import cellxgene_census
import numpy as np
import pandas as pd
import pytest
import tiledbsoma
from typer.testing import CliRunner

import cellcensus
from cellcensus import client
from cellcensus._cli import app
from cellcensus.experimental import pp
from tests._cli import python_path_env, run_cli

from .conftest import HUMAN

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()


def test_query_json_counts(release_root: Path) -> None:
    flt = "tissue_general == 'lung'"
    r = runner.invoke(
        app,
        [
            "query",
            "Homo sapiens",
            "-r",
            str(release_root),
            "-f",
            flt,
            "-c",
            "sex",
            "-n",
            "2",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    with cellcensus.open_soma(release_root=release_root) as c:
        obs = cellcensus.get_obs(c, HUMAN, value_filter=flt)
    assert doc["estimate"]["n_obs"] == len(obs)
    assert doc["counts"]["sex"] == obs.sex.astype(str).value_counts().to_dict()
    assert len(doc["rows"]) == 2


def test_query_ontology_options_and_table(release_root: Path) -> None:
    args = ["query", "homo_sapiens", "--root", str(release_root), "--cell-type-under", "T cell"]
    args += ["--disease-under", "COVID-19", "-c", "cell_type", "-c", "disease"]
    r = runner.invoke(app, [*args, "--json"])
    assert r.exit_code == 0, r.output
    counts = json.loads(r.stdout)["counts"]
    assert counts["cell_type"]
    assert all("T cell" in label for label in counts["cell_type"])  # all T-cell subtypes
    assert counts["disease"]
    assert all("COVID-19" in d.split(" || ") for d in counts["disease"])
    table = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "query estimate" in table.stdout
    assert "cells by cell_type" in table.stdout


def test_export_cli_prints_estimate_then_writes(release_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.zarr"
    flt = "sex == 'female'"
    r = runner.invoke(
        app,
        [
            "export",
            "homo_sapiens",
            "-r",
            str(release_root),
            "-f",
            flt,
            "--to",
            str(out),
            "-m",
            "64MiB",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "query estimate" in r.stderr
    assert "wrote" in r.stdout
    with cellcensus.open_soma(release_root=release_root) as c:
        ref = cellcensus.get_anndata(c, HUMAN, obs_value_filter=flt)
    got = anndata.read_zarr(out)
    assert got.shape == ref.shape
    assert (got.X != ref.X).nnz == 0
    # --dry-run writes nothing
    r = runner.invoke(
        app,
        [
            "export",
            "homo_sapiens",
            "-r",
            str(release_root),
            "--to",
            str(tmp_path / "d.h5ad"),
            "--dry-run",
        ],
    )
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "d.h5ad").exists()


def test_cli_errors_exit_nonzero_without_traceback(release_root: Path, tmp_path: Path) -> None:
    proc = run_cli(
        "query",
        "homo_sapiens",
        "-r",
        str(release_root),
        "-f",
        "sex = 'x'",
        env=python_path_env({"COLUMNS": "200", "PATH": "/usr/bin:/bin"}),
    )
    assert proc.returncode == 1
    assert "does not parse" in proc.stderr
    assert "Traceback" not in proc.stderr
    r = runner.invoke(
        app, ["export", "Danio rerio", "-r", str(release_root), "--to", str(tmp_path / "z.h5ad")]
    )
    assert isinstance(r.exception, client.CensusNotFoundError)


class _HvgQuery(TypedDict):
    """Keywords of ``get_highly_variable_genes`` (ours and the official one)."""

    obs_value_filter: str
    n_top_genes: int


def test_highly_variable_genes_match_official(release_root: Path, soma_path: Path) -> None:
    kw: _HvgQuery = {"obs_value_filter": "tissue_general in ['lung', 'blood']", "n_top_genes": 100}
    with cellcensus.open_soma(release_root=release_root) as c:
        ours = pp.get_highly_variable_genes(c, "Homo sapiens", **kw)
    with cellxgene_census.open_soma(uri=str(soma_path)) as c:
        theirs = cellxgene_census.experimental.pp.get_highly_variable_genes(c, "Homo sapiens", **kw)
    pd.testing.assert_frame_equal(ours, theirs)
    assert ours.highly_variable.sum() == 100
    with cellcensus.open_soma(release_root=release_root) as c, pytest.raises(client.FilterError):
        pp.get_highly_variable_genes(c, "Homo sapiens", obs_value_filter="tissue_general = 'lung'")


def test_mean_variance_on_our_build(release_root: Path) -> None:
    flt = "tissue_general == 'liver'"
    with cellcensus.open_soma(release_root=release_root) as c:
        exp = c["census_data"][HUMAN]
        with exp.axis_query("RNA", obs_query=tiledbsoma.AxisQuery(value_filter=flt)) as q:
            mv = pp.mean_variance(q, calculate_mean=True, calculate_variance=True, axis=0)
        ad = cellcensus.get_anndata(c, HUMAN, obs_value_filter=flt)
    dense = ad.X.toarray().astype(np.float64)
    np.testing.assert_allclose(mv["mean"].to_numpy(), dense.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        mv["variance"].to_numpy(), dense.var(axis=0, ddof=1), rtol=1e-5, atol=1e-9
    )
