"""Gene-major routing of ``get_anndata`` and the expression summary, on the builder's census.

Routing must not change results: every case is read by the official client, and by ours with
each ``x_layout``; the AnnData must be identical (frames, X type, dtype, indices, values, layers).
The official client and ``tiledbsoma`` must read the release (with its ``cellcensus_genes``)
unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING, Any, TypedDict

import cellxgene_census
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp
import tiledbsoma
import tiledbsoma.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cellcensus
from cellcensus._obscopy import OBS_COPY, read_obs_copy
from cellcensus.builder import _summary as builder_summary
from cellcensus.client._genemajor import choose_layout
from cellcensus.errors import BadInputError, CensusNotFoundError
from cellcensus.experimental import _summary, summarize

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import anndata

    from cellcensus.client._genemajor import Layout

pytestmark = pytest.mark.filterwarnings("ignore::anndata.ImplicitModificationWarning")

LAYOUTS: tuple[Layout, ...] = ("auto", "cell-major", "gene-major")
GENES_2 = "feature_name in ['CD4', 'TSPAN6']"


@pytest.fixture(scope="module")
def census(soma_path: Path) -> Iterator[tiledbsoma.Collection[Any]]:
    with cellcensus.open_soma(uri=str(soma_path)) as c:
        yield c


def _same(a: anndata.AnnData, b: anndata.AnnData) -> None:
    assert a.shape == b.shape
    pd.testing.assert_frame_equal(a.obs, b.obs)
    pd.testing.assert_frame_equal(a.var, b.var)
    assert type(a.X) is type(b.X)
    assert a.X.dtype == b.X.dtype
    for x, y in [(a.X, b.X), *((a.layers[k], b.layers[k]) for k in b.layers)]:
        assert set(a.layers) == set(b.layers)
        assert x.indices.dtype == y.indices.dtype
        np.testing.assert_array_equal(x.indptr, y.indptr)
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.data, y.data)


#: get_anndata calls compared between the official client and each x_layout of ours
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "1 gene, all cells": ("Homo sapiens", {"var_value_filter": "feature_name == 'CD4'"}),
    "2 genes, female": (
        "Homo sapiens",
        {"var_value_filter": GENES_2, "obs_value_filter": "sex == 'female'"},
    ),
    "10 genes by coords, a cell range": (
        "homo_sapiens",
        {"var_coords": list(range(0, 100, 10)), "obs_coords": slice(100, 1500)},
    ),
    "scattered cells and genes, normalized layer": (
        "Homo sapiens",
        {
            "var_coords": [3, 1, 2000, 57],
            "obs_coords": [5, 900, 17, 2200, 1300],
            "X_layers": ["normalized"],
        },
    ),
    "X_name normalized, columns": (
        "Homo sapiens",
        {
            "var_value_filter": GENES_2,
            "X_name": "normalized",
            "obs_column_names": ["cell_type", "tissue_general"],
            "var_column_names": ["feature_id", "feature_name"],
        },
    ),
    "mouse, 3 genes, primary cells": (
        "Mus musculus",
        {"var_coords": [0, 5, 9], "obs_value_filter": "is_primary_data == True"},
    ),
    "X_layers repeating X_name, joinid column asked for": (
        "Homo sapiens",
        {
            "var_value_filter": GENES_2,
            "X_layers": ["raw", "normalized"],
            "obs_column_names": ["soma_joinid", "sex"],
            "var_column_names": ["feature_name", "soma_joinid"],
        },
    ),
    "one cell, one gene": ("Homo sapiens", {"var_coords": [7], "obs_coords": [1500]}),
    "genes and cells by numpy arrays": (
        "Homo sapiens",
        {"var_coords": np.array([9, 4, 1200]), "obs_coords": np.arange(0, 2400, 7)},
    ),
    "genes by numpy array, every cell": ("Homo sapiens", {"var_coords": np.array([9, 4])}),
    "no cells": (
        "Homo sapiens",
        {"var_value_filter": GENES_2, "obs_value_filter": "sex == 'no such sex'"},
    ),
    "all genes, few cells": ("Homo sapiens", {"obs_coords": slice(0, 20)}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_layout_returns_the_official_anndata(
    census: tiledbsoma.Collection[Any], soma_path: Path, case: str
) -> None:
    organism, kwargs = CASES[case]
    with cellxgene_census.open_soma(uri=str(soma_path)) as theirs:
        want = cellxgene_census.get_anndata(theirs, organism, **kwargs)
    for layout in LAYOUTS:
        got = cellcensus.get_anndata(census, organism, x_layout=layout, **kwargs)
        _same(got, want)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    genes=st.lists(st.integers(0, 3000), min_size=1, max_size=12, unique=True),
    obs_filter=st.sampled_from(
        [
            None,
            "sex == 'male'",
            "is_primary_data == True and tissue_general == 'lung'",
            "cell_type in ['T cell', 'B cell']",
        ]
    ),
    cells=st.one_of(st.none(), st.tuples(st.integers(0, 2000), st.integers(1, 2500))),
    layer=st.sampled_from(["raw", "normalized"]),
)
def test_routed_and_unrouted_queries_are_equal(
    census: tiledbsoma.Collection[Any],
    genes: list[int],
    obs_filter: str | None,
    cells: Any,
    layer: str,
) -> None:
    kwargs: dict[str, Any] = {"var_coords": genes, "obs_value_filter": obs_filter, "X_name": layer}
    if cells is not None:
        kwargs["obs_coords"] = slice(cells[0], cells[0] + cells[1])
    cell_major = cellcensus.get_anndata(census, "Homo sapiens", x_layout="cell-major", **kwargs)
    gene_major = cellcensus.get_anndata(census, "Homo sapiens", x_layout="gene-major", **kwargs)
    _same(gene_major, cell_major)


def test_default_names_are_the_strings_anndata_makes() -> None:
    from cellcensus._compat import str_index as _str_index

    for index in (pd.RangeIndex(0), pd.RangeIndex(1), pd.RangeIndex(123_457), pd.RangeIndex(5, 9)):
        got = _str_index(index)
        pd.testing.assert_index_equal(got, index.astype(str), exact=True)
        assert got.is_unique
    named = pd.RangeIndex(3, name="x")
    pd.testing.assert_index_equal(_str_index(named), named.astype(str), exact=True)


class _GetAnndataKw(TypedDict, total=False):
    """Keywords of ``get_anndata`` that the concurrent queries pass."""

    var_value_filter: str
    var_coords: list[int]
    obs_value_filter: str
    X_name: str
    X_layers: list[str]


def test_concurrent_routed_queries_return_the_same_anndata(
    census: tiledbsoma.Collection[Any],
) -> None:
    """Queries from several threads share the reader pool; each gets its own result."""
    from concurrent.futures import ThreadPoolExecutor

    kwargs: list[_GetAnndataKw] = [
        {"var_value_filter": GENES_2},
        {"var_coords": [3, 1, 2000], "obs_value_filter": "sex == 'female'"},
        {"var_coords": [10], "X_name": "normalized", "X_layers": ["raw"]},
    ] * 2
    want = [
        cellcensus.get_anndata(census, "Homo sapiens", x_layout="cell-major", **k) for k in kwargs
    ]
    with ThreadPoolExecutor(max_workers=len(kwargs)) as pool:
        got = list(
            pool.map(
                lambda k: cellcensus.get_anndata(
                    census, "Homo sapiens", x_layout="gene-major", **k
                ),
                kwargs,
            )
        )
    for g, w in zip(got, want, strict=True):
        _same(g, w)


def test_cost_rule_routes_few_genes_to_the_copy_and_many_to_x() -> None:
    n_obs, n_var = 100_000, 20_000
    var_nnz = np.full(n_var, 1_000, dtype=np.int64)
    cells = np.arange(n_obs, dtype=np.int64)
    few = choose_layout(cells, np.array([3, 4000]), n_obs=n_obs, n_var=n_var, var_nnz=var_nnz)
    assert few.layout == "gene-major"
    assert few.gene_major_values < few.cell_major_values / 100
    every = choose_layout(cells, np.arange(n_var), n_obs=n_obs, n_var=n_var, var_nnz=var_nnz)
    assert every.layout == "cell-major"
    # every gene of a few thousand cells: X's row tiles
    rows = choose_layout(
        np.arange(4096), np.arange(0, n_var, 2), n_obs=n_obs, n_var=n_var, var_nnz=var_nnz
    )
    assert rows.layout == "cell-major"
    nothing = choose_layout(cells[:0], np.array([3]), n_obs=n_obs, n_var=n_var, var_nnz=var_nnz)
    assert nothing.layout == "cell-major"


def test_bad_layouts_are_refused(census: tiledbsoma.Collection[Any]) -> None:
    with pytest.raises(BadInputError, match="x_layout must be one of"):
        cellcensus.get_anndata(census, "Homo sapiens", var_coords=[1], x_layout="rows")  # type: ignore[arg-type]
    with pytest.raises(BadInputError, match="obsm/obsp/varm/varp layers and embeddings"):
        cellcensus.get_anndata(
            census, "Homo sapiens", var_coords=[1], obsm_layers=["x"], x_layout="gene-major"
        )


@pytest.fixture(scope="module")
def without_copies(soma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release without its human gene-major copies (as a --no-gene-major build)."""
    out = tmp_path_factory.mktemp("no-copies") / "soma"
    shutil.copytree(soma_path, out)
    genes = str(out / "cellcensus_genes" / "homo_sapiens")
    with tiledbsoma.Collection[Any].open(genes, "d") as c:
        del c["X"]
    return out


def test_a_release_without_copies_reads_x_as_the_official_client(
    census: tiledbsoma.Collection[Any], without_copies: Path
) -> None:
    kwargs: dict[str, Any] = {"var_value_filter": GENES_2}
    with cellcensus.open_soma(uri=str(without_copies)) as bare:
        got = cellcensus.get_anndata(bare, "Homo sapiens", **kwargs)
        with pytest.raises(BadInputError, match="no gene-major copy of X layer"):
            cellcensus.get_anndata(bare, "Homo sapiens", x_layout="gene-major", **kwargs)
    _same(got, cellcensus.get_anndata(census, "Homo sapiens", x_layout="gene-major", **kwargs))


# ---------------------------------------------------------------------------- the obs copy
def _release_copy(soma_path: Path, dst: Path) -> tuple[Path, Path, pa.Table]:
    out = dst / "soma"
    shutil.copytree(soma_path, out)
    path = out / "cellcensus_genes" / "homo_sapiens" / OBS_COPY
    return out, path, read_obs_copy(path, None)


def _write_copy(path: Path, table: pa.Table) -> None:
    from pyarrow import ipc

    with ipc.new_file(str(path), table.schema) as w:
        w.write_table(table)


def test_obs_of_every_cell_is_read_from_the_obs_copy(
    soma_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A query of every cell reads obs from the copy (an altered value there shows up), one
    with an obs filter reads obs itself; the true release answers as the official client."""
    out, path, table = _release_copy(soma_path, tmp_path)
    raw_sum = table["raw_sum"].to_numpy().copy()
    raw_sum[3] += 1000.0
    _write_copy(
        path, table.set_column(table.schema.get_field_index("raw_sum"), "raw_sum", [raw_sum])
    )
    kwargs: dict[str, Any] = {"var_value_filter": GENES_2, "x_layout": "gene-major"}
    with cellcensus.open_soma(uri=str(out)) as census, caplog.at_level("WARNING"):
        every = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
        filtered = cellcensus.get_anndata(
            census, "Homo sapiens", obs_value_filter="soma_joinid < 10", **kwargs
        )
    assert every.obs["raw_sum"].iloc[3] == raw_sum[3]
    assert filtered.obs["raw_sum"].iloc[3] == raw_sum[3] - 1000.0
    assert not [r for r in caplog.records if "obs copy" in r.getMessage()]


@pytest.mark.parametrize("damage", ["a row short", "missing", "not arrow"])
def test_a_stale_or_missing_obs_copy_is_not_used(
    census: tiledbsoma.Collection[Any],
    soma_path: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damage: str,
) -> None:
    out, path, table = _release_copy(soma_path, tmp_path)
    if damage == "a row short":
        _write_copy(path, table.slice(1))
    elif damage == "missing":
        path.unlink()
    else:
        path.write_bytes(b"not an arrow file")
    kwargs: dict[str, Any] = {"var_value_filter": GENES_2, "x_layout": "gene-major"}
    with cellcensus.open_soma(uri=str(out)) as damaged, caplog.at_level("WARNING"):
        got = cellcensus.get_anndata(damaged, "Homo sapiens", **kwargs)
    _same(got, cellcensus.get_anndata(census, "Homo sapiens", **kwargs))
    warned = [r.getMessage() for r in caplog.records if "obs copy" in r.getMessage()]
    assert len(warned) == (0 if damage == "missing" else 1), warned


# ---------------------------------------------------------------------------- kept per release
def _official(soma_path: Path, **kwargs: Any) -> anndata.AnnData:
    with cellxgene_census.open_soma(uri=str(soma_path)) as official:
        return cellxgene_census.get_anndata(official, "Homo sapiens", **kwargs)


def test_repeated_queries_reuse_what_the_release_keeps_and_results_stay_independent(
    soma_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The second query of every cell takes obs, cells, var and the open copy from the first
    (the obs copy and the static reads would fail now); changing a result changes nothing else."""
    from cellcensus.client import _genemajor, _routecache

    kwargs: dict[str, Any] = {"var_value_filter": GENES_2}
    with cellcensus.open_soma(uri=str(soma_path)) as census:
        first = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
    assert len(_routecache.FRAMES) == 1

    def fail(*args: object, **kw: object) -> None:
        msg = "read again"
        raise AssertionError(msg)

    monkeypatch.setattr(_genemajor, "read_obs_copy", fail)
    monkeypatch.setattr(_routecache, "_read_static", fail)
    first.obs.iloc[0, first.obs.columns.get_loc("raw_sum")] = -1.0
    first.obs["cell_type"] = first.obs["cell_type"].cat.add_categories(["changed"])
    first.obs.iloc[1, first.obs.columns.get_loc("cell_type")] = "changed"
    first.obs["added"] = 1
    first.var.iloc[0, first.var.columns.get_loc("feature_length")] = -5
    with cellcensus.open_soma(uri=str(soma_path)) as census, caplog.at_level("WARNING"):
        again = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
        columns = cellcensus.get_anndata(
            census, "Homo sapiens", obs_column_names=["tissue_general", "soma_joinid"], **kwargs
        )
    _same(again, _official(soma_path, **kwargs))
    _same(
        columns, _official(soma_path, obs_column_names=["tissue_general", "soma_joinid"], **kwargs)
    )
    assert not caplog.records
    assert not np.shares_memory(first.obs["raw_sum"].to_numpy(), again.obs["raw_sum"].to_numpy())


@pytest.mark.parametrize("budget", [0, 1000])
def test_no_obs_frame_is_kept_without_room(
    soma_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    from cellcensus.client import _routecache

    monkeypatch.setenv("CELLCENSUS_OBS_CACHE_BYTES", str(budget))
    with cellcensus.open_soma(uri=str(soma_path)) as census:
        got = [cellcensus.get_anndata(census, "Homo sapiens", var_value_filter=GENES_2)]
        got.append(cellcensus.get_anndata(census, "Homo sapiens", var_value_filter=GENES_2))
    assert len(_routecache.FRAMES) == 0
    want = _official(soma_path, var_value_filter=GENES_2)
    for g in got:
        _same(g, want)


def test_a_changed_obs_copy_or_a_rebuilt_release_is_read_again(
    soma_path: Path, tmp_path: Path
) -> None:
    """What a release keeps is known by its files: a rewritten obs copy is read again, and a
    release rebuilt at the same path (new experiment directory) is a new release."""
    from cellcensus.client import _routecache

    out, path, table = _release_copy(soma_path, tmp_path)
    kwargs: dict[str, Any] = {"var_value_filter": GENES_2, "x_layout": "gene-major"}
    with cellcensus.open_soma(uri=str(out)) as census:
        before = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
        exp = census["census_data"]["homo_sapiens"]
        key = _routecache.release_key(census, exp)
    raw_sum = table["raw_sum"].to_numpy().copy()
    raw_sum[3] += 1000.0
    _write_copy(
        path, table.set_column(table.schema.get_field_index("raw_sum"), "raw_sum", [raw_sum])
    )
    with cellcensus.open_soma(uri=str(out)) as census:
        after = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
    assert after.obs["raw_sum"].iloc[3] == before.obs["raw_sum"].iloc[3] + 1000.0
    shutil.rmtree(out)
    shutil.copytree(soma_path, out)  # the same files and times: the same release, and key
    with tiledbsoma.open(str(out), mode="w") as root:  # as a new build: a new stamp
        root.metadata["created_on"] = "2030-01-01T00:00:00+00:00"
    with cellcensus.open_soma(uri=str(out)) as census:
        rebuilt = cellcensus.get_anndata(census, "Homo sapiens", **kwargs)
        exp = census["census_data"]["homo_sapiens"]
        new_key = _routecache.release_key(census, exp)
        assert new_key != key
        os.utime(out / "census_data" / "homo_sapiens", ns=(1, 1))  # a new experiment directory
        assert _routecache.release_key(census, exp) not in (key, new_key)
    _same(rebuilt, before)


def test_clear_cache_forgets_what_releases_keep(soma_path: Path) -> None:
    from cellcensus.client import _routecache

    with cellcensus.open_soma(uri=str(soma_path)) as census:
        cellcensus.get_anndata(census, "Homo sapiens", var_value_filter=GENES_2)
    assert len(_routecache.FRAMES) == 1
    assert _routecache._MEMO
    assert _routecache._ARRAYS
    cellcensus.client.clear_cache()
    assert len(_routecache.FRAMES) == 0
    assert not _routecache._MEMO
    assert not _routecache._ARRAYS


def test_a_census_without_a_build_stamp_keeps_nothing(soma_path: Path, tmp_path: Path) -> None:
    """A census whose root has no ``created_on`` (not a cellcensus build) is read as before."""
    from cellcensus.client import _routecache

    out = tmp_path / "soma"
    shutil.copytree(soma_path, out)
    with tiledbsoma.open(str(out), mode="w") as root:
        del root.metadata["created_on"]
    with cellcensus.open_soma(uri=str(out)) as census:
        got = cellcensus.get_anndata(census, "Homo sapiens", var_value_filter=GENES_2)
        assert _routecache.release_key(census, census["census_data"]["homo_sapiens"]) is None
    assert len(_routecache.FRAMES) == 0
    assert not _routecache._MEMO
    _same(got, _official(soma_path, var_value_filter=GENES_2))


# ---------------------------------------------------------------------------- official readers
def test_official_client_and_tiledbsoma_read_the_release_unchanged(soma_path: Path) -> None:
    """Every object of the release opens with tiledbsoma; the experiments convert with
    tiledbsoma.io; the official client's functions work on it."""

    def walk(obj: Any, depth: int = 0) -> int:
        n = 1
        if isinstance(obj, tiledbsoma.Collection | tiledbsoma.Experiment | tiledbsoma.Measurement):
            for key in obj:
                n += walk(obj[key], depth + 1)
        return n

    with tiledbsoma.open(str(soma_path)) as root:
        assert isinstance(root, tiledbsoma.Collection)  # for the type checker
        assert "cellcensus_genes" in root
        assert walk(root) > 20
        for organism in ("homo_sapiens", "mus_musculus"):
            exp = root["census_data"][organism]
            adata = tiledbsoma.io.to_anndata(exp, measurement_name="RNA", X_layer_name="raw")
            assert adata.X.nnz > 0
    with cellxgene_census.open_soma(uri=str(soma_path)) as census:
        assert {"homo_sapiens", "mus_musculus"} <= set(census["census_data"])
        pm = cellxgene_census.get_presence_matrix(census, "Homo sapiens")
        assert sp.issparse(pm)
        assert len(cellxgene_census.get_var(census, "Mus musculus")) > 0
        ad = cellxgene_census.get_anndata(census, "Homo sapiens", var_value_filter=GENES_2)
        assert ad.n_vars == 2


def test_published_manifest_lists_the_gene_major_objects(release_root: Path) -> None:
    from .conftest import LTS_TAG

    manifest = json.loads((release_root / LTS_TAG / "manifest.json").read_text())
    text = json.dumps(manifest)
    assert "soma/cellcensus_genes/homo_sapiens/X/raw" in text
    assert "soma/cellcensus_genes/homo_sapiens/expression_summary" in text
    assert "soma/cellcensus_genes/homo_sapiens/obs.arrow" in text


# ---------------------------------------------------------------------------- summarize
def _recomputed(census: Any, organism: str, gene: str, by: list[str]) -> pd.DataFrame:
    """The summary of one gene from get_anndata: primary cells of the datasets measuring it."""
    ad = cellcensus.get_anndata(
        census,
        organism,
        obs_value_filter="is_primary_data == True",
        var_value_filter=f"feature_name == '{gene}'",
        X_name="normalized",
        x_layout="cell-major",
        obs_column_names=list(dict.fromkeys(["dataset_id", *by])),
    )
    pm = cellcensus.get_presence_matrix(census, organism)
    var_joinid = int(ad.var["soma_joinid"].iloc[0])
    datasets = census["census_info"]["datasets"].read().concat().to_pandas()
    measuring = set(datasets["dataset_id"][pm[:, var_joinid].toarray().ravel() > 0])
    obs = ad.obs.assign(x=np.asarray(ad.X.todense()).ravel().astype(np.float64))
    obs = obs[obs["dataset_id"].isin(measuring)]
    obs["lg"] = np.log1p(10_000.0 * obs["x"])
    for c in by:
        obs[c] = obs[c].astype(str)
    grouped = obs.groupby(by, observed=True)
    return pd.DataFrame(
        {
            "n_cells": grouped.size(),
            "n_expressing": grouped["x"].apply(lambda v: int((v != 0).sum())),
            "mean": grouped["x"].mean(),
            "mean_log1p": grouped["lg"].mean(),
        }
    ).reset_index()


@pytest.mark.parametrize(
    ("organism", "gene", "by"),
    [
        ("Homo sapiens", "CD4", ["tissue_general", "cell_type"]),
        ("Homo sapiens", "TSPAN6", ["assay"]),
        ("Homo sapiens", "CD4", ["disease", "sex"]),
        ("Homo sapiens", "CD4", ["dataset_id"]),
        ("Mus musculus", "Cd3e", ["cell_type"]),
    ],
)
def test_summarize_equals_a_recomputation_from_get_anndata(
    census: tiledbsoma.Collection[Any], organism: str, gene: str, by: list[str]
) -> None:
    got = summarize(census, organism, [gene], by=by)
    want = _recomputed(census, organism, gene, by)
    assert len(want) > 0
    assert (got["feature_name"] == gene).all()
    got = got.sort_values(by, ignore_index=True)
    want = want.sort_values(by, ignore_index=True)
    for c in by:
        assert got[c].astype(str).tolist() == want[c].tolist()
    np.testing.assert_array_equal(got["n_cells"], want["n_cells"])
    np.testing.assert_array_equal(got["n_expressing"], want["n_expressing"])
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-6)
    np.testing.assert_allclose(got["mean_log1p"], want["mean_log1p"], rtol=1e-6)
    np.testing.assert_allclose(
        got["fraction_expressing"], want["n_expressing"] / want["n_cells"], rtol=1e-12
    )


def test_summarize_of_many_genes_equals_each_gene_alone(census: tiledbsoma.Collection[Any]) -> None:
    """Many genes are read in parts at once; the rows equal those of one gene at a time."""
    with tiledbsoma.Collection[Any].open(census.uri) as root:
        var = root["census_data"]["homo_sapiens"].ms["RNA"].var
        names = var.read(column_names=["feature_id", "nnz"]).concat().to_pandas()
    genes = names[names["nnz"] > 0]["feature_id"].astype(str).tolist()[:20]
    assert len(genes) == 20
    together = summarize(census, "Homo sapiens", genes, by=["cell_type"])
    alone = pd.concat(
        [summarize(census, "Homo sapiens", [g], by=["cell_type"]) for g in genes],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(together, alone, check_categorical=False)


def test_summarize_orders_genes_as_asked_and_totals_without_by(
    census: tiledbsoma.Collection[Any],
) -> None:
    got = summarize(census, "Homo sapiens", ["TSPAN6", "CD4"], by=[])
    assert got["feature_name"].tolist() == ["TSPAN6", "CD4"]
    assert {"n_cells", "n_expressing", "mean", "fraction_expressing"} <= set(got.columns)


def test_summarize_reads_the_same_through_any_handle_and_context(
    census: tiledbsoma.Collection[Any], soma_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary handle is kept open per release and context: a second census, a closed
    one's successor and reads through the census's own settings give the same frame."""
    genes, by = ["CD4", "TSPAN6"], ["tissue_general", "cell_type"]
    want = summarize(census, "Homo sapiens", genes, by=by)
    assert _summary._HANDLES  # the summary stays open for the next call
    for _ in range(2):
        with cellcensus.open_soma(uri=str(soma_path)) as other:
            pd.testing.assert_frame_equal(summarize(other, "Homo sapiens", genes, by=by), want)
    monkeypatch.setattr(_summary, "_READ_CONFIG", {})
    monkeypatch.setattr(_summary, "_HANDLES", type(_summary._HANDLES)())
    pd.testing.assert_frame_equal(summarize(census, "Homo sapiens", genes, by=by), want)


def test_summarize_reads_a_summary_of_the_earlier_layout(
    census: tiledbsoma.Collection[Any], soma_path: Path, tmp_path: Path
) -> None:
    """Releases built before the summary's columns became non-nullable, its data tiles smaller
    (8,192 rows) and its space tiles as wide as all groups (2,048 then) read the same."""
    old = tmp_path / "soma"
    shutil.copytree(soma_path, old)
    org = old / "cellcensus_genes" / "homo_sapiens"
    with tiledbsoma.DataFrame.open(str(org / "expression_summary")) as df:
        table = df.read().concat()
    with tiledbsoma.Collection[Any].open(str(org), "d") as coll:
        del coll["expression_summary"]
    shutil.rmtree(org / "expression_summary")
    config = builder_summary._platform_config("fast", 2048)  # earlier layout: 2,048-group tiles
    config["tiledb"]["create"]["capacity"] = 8192
    nullable = pa.schema([f.with_nullable(True) for f in builder_summary.SUMMARY_SCHEMA])
    uri = str(org / "expression_summary")
    tiledbsoma.DataFrame.create(
        uri,
        schema=nullable,
        index_column_names=["var_joinid", "group_joinid"],
        domain=[(0, int(table["var_joinid"].to_numpy().max())), (0, 10**6)],
        platform_config=config,
    ).close()
    with tiledbsoma.DataFrame.open(uri, "w") as df:
        df.write(table.select(nullable.names).cast(nullable))
    with (
        tiledbsoma.Collection[Any].open(str(org), "w") as coll,
        tiledbsoma.DataFrame.open(uri) as df,
    ):
        coll.set("expression_summary", df, use_relative_uri=True)
    with cellcensus.open_soma(uri=str(old)) as before:
        summary = before["cellcensus_genes"]["homo_sapiens"]["expression_summary"]
        assert summary.schema.field("sum").nullable
        for by in (["tissue_general", "cell_type"], ["dataset_id"], []):
            pd.testing.assert_frame_equal(
                summarize(before, "Homo sapiens", ["CD4", "TSPAN6"], by=by),
                summarize(census, "Homo sapiens", ["CD4", "TSPAN6"], by=by),
            )


def test_summarize_refuses_bad_input(
    census: tiledbsoma.Collection[Any], without_copies: Path
) -> None:
    with pytest.raises(BadInputError, match="unknown gene"):
        summarize(census, "Homo sapiens", ["NO_SUCH_GENE"])
    with pytest.raises(BadInputError, match="cannot summarize by 'tissue'"):
        summarize(census, "Homo sapiens", ["CD4"], by=["tissue"])
    with pytest.raises(BadInputError, match="at least one gene"):
        summarize(census, "Homo sapiens", [])
    with pytest.raises(CensusNotFoundError):
        summarize(census, "Danio rerio", ["CD4"])
    bare = without_copies.parent / "no-summary"
    shutil.copytree(without_copies, bare)
    with tiledbsoma.Collection[Any].open(str(bare), "d") as root:
        del root["cellcensus_genes"]
    with (
        cellcensus.open_soma(uri=str(bare)) as official_like,
        pytest.raises(CensusNotFoundError, match="no expression summary"),
    ):
        summarize(official_like, "Homo sapiens", ["CD4"])


# ---------------------------------------------------------------------------- CLI
def test_cli_summarize_json_and_table(census: tiledbsoma.Collection[Any], soma_path: Path) -> None:
    from typer.testing import CliRunner

    from cellcensus._cli import app

    runner = CliRunner()
    r = runner.invoke(
        app,
        ["summarize", "Homo sapiens", "CD4", "--by", "assay", "--uri", str(soma_path), "--json"],
    )
    assert r.exit_code == 0, r.output
    rows = pd.DataFrame(json.loads(r.stdout))
    want = summarize(census, "Homo sapiens", ["CD4"], by=["assay"])
    assert rows["assay"].tolist() == want["assay"].tolist()
    assert rows["n_expressing"].tolist() == want["n_expressing"].tolist()
    table = runner.invoke(
        app, ["summarize", "Homo sapiens", "CD4", "--uri", str(soma_path), "-n", "3"],
        terminal_width=200,
    )  # fmt: skip
    assert table.exit_code == 0, table.output
    assert "CD4" in table.output
    assert "fraction" in table.output
    bad = runner.invoke(app, ["summarize", "Homo sapiens", "NO_SUCH", "--uri", str(soma_path)])
    assert bad.exit_code != 0
    # the error reaches the CLI's one-line handler (``cellcensus.__main__``) as a CellCensusError
    assert isinstance(bad.exception, BadInputError)
    assert "unknown gene(s) 'NO_SUCH'" in str(bad.exception)


def test_summarize_handles_are_closed_at_exit_and_reopened_after(
    census: tiledbsoma.Collection[Any],
) -> None:
    """The cached summary handles are closed by the exit hook; a later call opens them again."""
    from cellcensus.experimental import _summary

    before = summarize(census, "Homo sapiens", ["TSPAN6"], by=["cell_type"])
    handles = list(_summary._HANDLES.values())
    assert handles
    _summary._close_handles()
    assert not _summary._HANDLES
    assert all(h.closed for h in handles)
    again = summarize(census, "Homo sapiens", ["TSPAN6"], by=["cell_type"])
    pd.testing.assert_frame_equal(before, again)


def test_kept_frames_are_sized_like_pandas_deep_memory_usage() -> None:
    """The budget counts strings from a sample; on a frame like obs it is within 5 % of what
    pandas measures string by string."""
    from cellcensus.client._routecache import frame_bytes

    rng = np.random.default_rng(0)
    n = 50_000
    frame = pd.DataFrame(
        {
            "observation_joinid": [f"id-{i}-{'x' * int(rng.integers(0, 30))}" for i in range(n)],
            "cell_type": pd.Categorical(rng.choice(["T cell", "B cell", "neuron"], size=n)),
            "raw_sum": rng.random(n),
        },
        index=pd.Index([str(i) for i in range(n)], dtype=object),
    )
    deep = int(frame.memory_usage(deep=True).sum())
    assert abs(frame_bytes(frame) - deep) <= 0.05 * deep


def test_remember_keeps_values_not_errors_and_at_most_its_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cellcensus.client import _routecache

    monkeypatch.setattr(_routecache, "MEMO_SIZE", 3)
    calls: list[int] = []

    def compute(value: int) -> int:
        calls.append(value)
        if value < 0:
            msg = "bad"
            raise ValueError(msg)
        return value

    assert _routecache.remember("r", "a", lambda: compute(1)) == 1
    assert _routecache.remember("r", "a", lambda: compute(2)) == 1  # kept
    assert _routecache.remember(None, "a", lambda: compute(3)) == 3  # no release: not kept
    assert _routecache.remember("r", "big", lambda: compute(500), keep=lambda v: v < 100) == 500
    assert _routecache.remember("r", "big", lambda: compute(7), keep=lambda v: v < 100) == 7
    with pytest.raises(ValueError, match="bad"):
        _routecache.remember("r", "err", lambda: compute(-1))
    assert _routecache.remember("r", "err", lambda: compute(4)) == 4  # the error was not kept
    for name in ("x", "y", "z"):
        _routecache.remember("r", name, lambda: compute(0))
    assert len(_routecache._MEMO) == 3
    assert ("r", "a") not in _routecache._MEMO  # least recently used left first
    assert calls == [1, 3, 500, 7, -1, 4, 0, 0, 0]
