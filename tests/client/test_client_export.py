"""Export equals get_anndata in every format; estimates are exact; memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings
from collections import namedtuple
from typing import TYPE_CHECKING, Any, TypedDict

import anndata
import numpy as np
import pandas as pd
import psutil
import pytest

import cellcensus
from cellcensus import client
from cellcensus.client import _query
from cellcensus.errors import BadInputError

from ._bigcensus import write_big_census
from .conftest import HUMAN

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import tiledbsoma

MiB = 1024 * 1024


@pytest.fixture(scope="module")
def census(release_root: Path) -> Iterator[tiledbsoma.Collection[Any]]:
    """Our census (the LTS build of the local release root)."""
    with cellcensus.open_soma(release_root=release_root) as c:
        yield c


class _Query(TypedDict):
    """The filters of ``QUERY`` (keywords of ``get_anndata`` and ``export``)."""

    obs_value_filter: str
    var_value_filter: str


class _Subset(TypedDict):
    """Coordinates, layer and filter of one export (keywords of ``get_anndata`` and ``export``)."""

    obs_coords: slice
    var_coords: slice
    X_name: str
    obs_value_filter: str


QUERY: _Query = {
    "obs_value_filter": "tissue_general in ['lung', 'blood'] and sex == 'female'",
    "var_value_filter": "feature_type == 'protein_coding'",
}


def _assert_equal(got: anndata.AnnData, ref: anndata.AnnData, *, categorical: bool) -> None:
    assert got.shape == ref.shape
    assert ref.n_obs > 0
    assert ref.X.nnz > 0
    pd.testing.assert_frame_equal(got.obs, ref.obs, check_categorical=categorical)
    pd.testing.assert_frame_equal(got.var, ref.var, check_categorical=categorical)
    assert got.X.dtype == np.float32
    assert got.X.nnz == ref.X.nnz
    assert (got.X != ref.X).nnz == 0


@pytest.mark.parametrize("fmt", ["h5ad", "zarr", "parquet"])
def test_export_equals_get_anndata(
    census: tiledbsoma.Collection[Any], tmp_path: Path, fmt: str
) -> None:
    ref = cellcensus.get_anndata(census, HUMAN, **QUERY)
    res = cellcensus.export(
        census, HUMAN, to=tmp_path / f"out.{fmt}", memory_budget="32MiB", **QUERY
    )
    assert res.n_obs == ref.n_obs
    assert res.n_vars == ref.n_vars
    assert res.nnz == ref.X.nnz
    assert res.estimate.n_obs == ref.n_obs
    assert all(p.exists() for p in res.outputs)
    got = cellcensus.read_export(res.path)
    # parquet keeps dictionary columns per row group: compare values, not category lists
    _assert_equal(got, ref, categorical=fmt != "parquet")
    if fmt == "h5ad":  # the plain anndata reader, not ours
        _assert_equal(anndata.read_h5ad(res.path), ref, categorical=True)
        assert anndata.read_h5ad(res.path).X.has_sorted_indices


def test_export_columns_coords_and_normalized(
    census: tiledbsoma.Collection[Any], tmp_path: Path
) -> None:
    kw: _Subset = {
        "obs_coords": slice(50, 900),
        "var_coords": slice(0, 1999),
        "X_name": "normalized",
        "obs_value_filter": "disease != 'normal'",
    }
    ref = cellcensus.get_anndata(
        census,
        HUMAN,
        obs_column_names=["cell_type", "disease"],
        var_column_names=["feature_name"],
        **kw,
    )
    res = cellcensus.export(
        census,
        HUMAN,
        to=tmp_path / "sub.h5ad",
        column_names={"obs": ["cell_type", "disease"], "var": ["feature_name"]},
        **kw,
    )
    _assert_equal(anndata.read_h5ad(res.path), ref, categorical=True)


def test_parquet_layout(census: tiledbsoma.Collection[Any], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    res = cellcensus.export(census, HUMAN, to=tmp_path / "q.parquet", **QUERY)
    x, obs, var, meta = res.outputs
    assert obs.name == "q.obs.parquet"
    assert var.name == "q.var.parquet"
    assert meta.name == "q.export.json"
    schema = pq.read_schema(x)
    assert schema.names == ["obs_soma_joinid", "var_soma_joinid", "value"]
    doc = json.loads(meta.read_text())
    assert doc["format_version"] == 1
    assert doc["nnz"] == res.nnz
    assert doc["query"]["obs_value_filter"] == QUERY["obs_value_filter"]
    table = pq.read_table(x)
    assert table.num_rows == res.nnz
    assert set(table["obs_soma_joinid"].to_numpy()) <= set(
        pq.read_table(obs)["soma_joinid"].to_numpy()
    )


def test_empty_result_exports(census: tiledbsoma.Collection[Any], tmp_path: Path) -> None:
    res = cellcensus.export(
        census, HUMAN, to=tmp_path / "e.h5ad", obs_value_filter="cell_type == 'no such type'"
    )
    got = anndata.read_h5ad(res.path)
    assert got.n_obs == 0
    assert res.nnz == 0
    assert got.n_vars == census["census_data"][HUMAN].ms["RNA"].var.count


def test_export_refuses_overwrite_and_bad_targets(
    census: tiledbsoma.Collection[Any], tmp_path: Path
) -> None:
    target = tmp_path / "o.h5ad"
    target.write_text("keep me")
    with pytest.raises(BadInputError, match="exists; pass overwrite=True"):
        cellcensus.export(census, HUMAN, to=target, obs_coords=slice(0, 9))
    assert target.read_text() == "keep me"
    cellcensus.export(census, HUMAN, to=target, obs_coords=slice(0, 9), overwrite=True)
    assert anndata.read_h5ad(target).n_obs == 10
    with pytest.raises(BadInputError, match=r"\*\.h5ad, \*\.zarr or \*\.parquet"):
        cellcensus.export(census, HUMAN, to=tmp_path / "o.csv")
    with pytest.raises(BadInputError, match="writes local files"):
        cellcensus.export(census, HUMAN, to="s3://bucket/out.h5ad")
    with pytest.raises(BadInputError, match="too small"):
        cellcensus.export(census, HUMAN, to=tmp_path / "t.h5ad", memory_budget="1MiB")
    with pytest.raises(BadInputError, match="cannot read 'lots' as a size"):
        cellcensus.export(census, HUMAN, to=tmp_path / "t.h5ad", memory_budget="lots")
    with pytest.raises(BadInputError, match="unknown column"):
        cellcensus.export(census, HUMAN, to=tmp_path / "t.h5ad", column_names={"obs": ["nope"]})
    assert not list(tmp_path.glob(".*partial"))  # nothing half-written left behind


def test_failed_export_leaves_nothing(
    census: tiledbsoma.Collection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: object, chunk: object) -> None:
        msg = "disk full"
        raise RuntimeError(msg)

    monkeypatch.setattr(client._writers.AnnDataWriter, "write_x", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        cellcensus.export(census, HUMAN, to=tmp_path / "f.h5ad")
    assert list(tmp_path.iterdir()) == []


def test_estimate_is_exact_without_gene_selection(census: tiledbsoma.Collection[Any]) -> None:
    flt = "tissue_general == 'spleen'"
    est = cellcensus.estimate(census, HUMAN, obs_value_filter=flt)
    ref = cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt)
    assert est.nnz_exact
    assert (est.n_obs, est.n_vars, est.nnz) == (ref.n_obs, ref.n_vars, ref.X.nnz)
    assert est.x_bytes == ref.X.data.nbytes + ref.X.indices.nbytes + ref.X.indptr.nbytes
    with_genes = cellcensus.estimate(
        census, HUMAN, obs_value_filter=flt, **{"var_coords": slice(0, 99)}
    )
    assert not with_genes.nnz_exact
    assert with_genes.n_vars == 100
    assert 0 < with_genes.nnz < est.nnz
    assert "cells" in est.describe()


Mem = namedtuple("Mem", "available")


def test_get_anndata_warns_or_refuses_by_estimate(
    census: tiledbsoma.Collection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest.warns re-emits other warnings from here, out of reach of the anndata ignore rule
    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    warnings.simplefilter("ignore", anndata.ImplicitModificationWarning)
    flt = "tissue_general == 'lung'"
    est = cellcensus.estimate(census, HUMAN, obs_value_filter=flt)
    # less available than the estimate: refused, unless told to only warn
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(est.peak_bytes // 2))
    with pytest.raises(client.QueryTooLargeError, match=r"cellcensus\.export") as e:
        cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt)
    assert isinstance(e.value, MemoryError)
    with pytest.warns(client.MemoryEstimateWarning, match="get_anndata will need"):
        a = cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt, memory_check="warn")
    assert a.n_obs == est.n_obs
    # between half and all of it: a warning
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(int(est.peak_bytes * 1.5)))
    with pytest.warns(client.MemoryEstimateWarning):
        cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt)
    # plenty: silent; "off" never checks
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(est.peak_bytes * 10))
    with warnings.catch_warnings():
        warnings.simplefilter("error", client.MemoryEstimateWarning)
        cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(1))
    cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt, memory_check="off")


def test_get_anndata_skips_the_estimate_when_the_whole_layer_fits(
    census: tiledbsoma.Collection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A metadata-only bound of the whole layer spares small releases the per-query estimate."""
    from cellcensus.client._estimate import layer_peak_bound

    monkeypatch.setattr(warnings, "filters", list(warnings.filters))
    warnings.simplefilter("ignore", anndata.ImplicitModificationWarning)

    exp = census["census_data"]["homo_sapiens"]
    bound = layer_peak_bound(exp, "RNA", "raw")
    everything = cellcensus.estimate(census, HUMAN)
    assert bound is not None
    assert bound >= everything.peak_bytes
    assert layer_peak_bound(exp, "RNA", "no-such-layer") is None
    calls: list[int] = []

    def counting(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return everything

    monkeypatch.setattr(_query, "estimate_query", counting)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(bound * 2))
    cellcensus.get_anndata(census, HUMAN, obs_value_filter="tissue_general == 'lung'")
    assert calls == []
    with pytest.raises(BadInputError, match="memory_check must be"):  # checked even then
        cellcensus.get_anndata(census, HUMAN, memory_check="sometimes")  # type: ignore[arg-type]
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Mem(bound))
    with pytest.warns(client.MemoryEstimateWarning):
        cellcensus.get_anndata(census, HUMAN, obs_value_filter="tissue_general == 'lung'")
    assert calls == [1]


def test_parse_bytes() -> None:
    assert client.parse_bytes("2GiB") == 2 * 1024**3
    assert client.parse_bytes("1.5 GB") == 1_500_000_000
    assert client.parse_bytes("64mib") == 64 * MiB
    assert client.parse_bytes(4096) == 4096
    for bad in ("", "-1GiB", "12 parsecs", 0, True):
        with pytest.raises(BadInputError):
            client.parse_bytes(bad)


# ---------------------------------------------------------------------------- bounded memory
_MEASURE = textwrap.dedent(
    """
    import json, sys, threading, time
    import psutil
    import cellcensus

    uri, out, budget = sys.argv[1], sys.argv[2], sys.argv[3]
    proc = psutil.Process()
    census = cellcensus.open_soma(uri=uri)
    # warm up every code path once (imports, TileDB pools) on a tiny slice
    cellcensus.export(census, "homo_sapiens", to=out + ".warm.h5ad", obs_coords=slice(0, 99),
                      memory_budget=budget)
    baseline = proc.memory_info().rss
    peak = baseline

    def hwm():  # the kernel's high-water mark of this process's RSS, in bytes
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))

    try:  # reset it to the current RSS (Linux >= 4.0); ru_maxrss would include the parent's
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        kernel = True
    except OSError:
        kernel = False
    running = True
    def sample():
        global peak
        while running:
            peak = max(peak, proc.memory_info().rss)
            time.sleep(0.002)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    res = cellcensus.export(census, "homo_sapiens", to=out, memory_budget=budget)
    running = False
    t.join()
    if kernel:  # a spike between two samples cannot hide from it
        peak = max(peak, hwm())
    print(json.dumps({"baseline": baseline, "peak": peak, "kernel": kernel,
                      "x_bytes": res.estimate.x_bytes,
                      "nnz": res.nnz, "seconds": res.seconds}))
    """
)


@pytest.fixture(scope="module")
def big_census(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """44,000 cells x 2,000 genes, 44 M values: 336 MiB of X as CSR in memory."""
    return write_big_census(
        tmp_path_factory.mktemp("big") / "soma", n_obs=44_000, n_var=2_000, nnz_per_cell=1_000
    )


#: RSS beyond the pre-export baseline that does not depend on the budget or the data: h5py and
#: TileDB allocations, allocator slack (measured 18-22 MiB over a 32 MiB budget).
FIXED_OVERHEAD = 48 * MiB


@pytest.mark.slow  # 52 s: a 42 s census written for it, then a measured export
def test_large_export_stays_within_budget(big_census: Path, tmp_path: Path) -> None:
    budget = 32 * MiB
    out = tmp_path / "big.h5ad"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(big_census), str(out), str(budget)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["nnz"] == 44_000_000
    assert m["x_bytes"] >= 10 * budget  # the data is 10x the budget
    assert m["kernel"] or not sys.platform.startswith("linux")  # VmHWM, not only sampling
    grew = m["peak"] - m["baseline"]
    assert grew < budget + FIXED_OVERHEAD, f"RSS grew {grew / MiB:.0f} MiB (budget 32 MiB)"
    # the file is a valid AnnData with every value, read back lazily
    backed = anndata.read_h5ad(out, backed="r")
    assert backed.shape == (44_000, 2_000)
    assert backed.X.shape == (44_000, 2_000)
    import h5py

    with h5py.File(out) as f:
        assert f["X/data"].shape == (44_000_000,)
        assert f["X/indptr"][-1] == 44_000_000
        row = slice(int(f["X/indptr"][12345]), int(f["X/indptr"][12346]))
        assert row.stop - row.start == 1_000
        cols = f["X/indices"][row]
        assert np.all(np.diff(cols) == 1)  # the generator's consecutive genes, sorted


def test_export_without_nnz_columns(tmp_path: Path) -> None:
    """A SOMA experiment without per-cell nnz (not a census): estimated from X, still exact."""
    import cellxgene_census

    uri = write_big_census(
        tmp_path / "plain", n_obs=3_000, n_var=400, nnz_per_cell=37, with_nnz=False, chunk=1000
    )
    with cellcensus.open_soma(uri=str(uri)) as c:
        est = cellcensus.estimate(c, HUMAN, obs_value_filter="cell_type == 'B cell'")
        assert not est.nnz_exact
        assert est.n_obs == 750
        assert abs(est.nnz - 750 * 37) <= 1  # X.nnz pro rata
        for fmt in ("h5ad", "parquet"):
            res = cellcensus.export(
                c,
                HUMAN,
                to=tmp_path / f"plain.{fmt}",
                obs_value_filter="cell_type == 'B cell'",
                var_coords=slice(100, 299),
            )
            ref = cellxgene_census.get_anndata(
                c, HUMAN, obs_value_filter="cell_type == 'B cell'", var_coords=slice(100, 299)
            )
            _assert_equal(cellcensus.read_export(res.path), ref, categorical=fmt != "parquet")


def test_estimate_branches() -> None:
    import pyarrow as pa

    from cellcensus.client._estimate import AxisSelection, QueryEstimate, estimate_from

    schema = pa.schema([("soma_joinid", pa.int64())])
    obs = AxisSelection(count=10, total=100, nnz_sum=500)
    obs_plain = AxisSelection(count=10, total=100, nnz_sum=None)
    var_all = AxisSelection(count=50, total=50, nnz_sum=5000, total_nnz=5000)
    var_part = AxisSelection(count=10, total=50, nnz_sum=2500, total_nnz=5000)
    var_part_plain = AxisSelection(count=10, total=50, nnz_sum=None)

    def est(o: AxisSelection, v: AxisSelection, x_total: int | None = None) -> QueryEstimate:
        return estimate_from(
            "x",
            o,
            v,
            x_nnz_total=x_total,
            obs_schema=schema,
            var_schema=schema,
            obs_columns=None,
            var_columns=None,
        )

    assert (est(obs, var_all).nnz, est(obs, var_all).nnz_exact) == (500, True)
    assert (est(obs, var_part).nnz, est(obs, var_part).nnz_exact) == (250, False)  # by var nnz
    assert est(obs, var_part_plain).nnz == 100  # by gene count
    assert est(obs_plain, var_part, x_total=10_000).nnz == 200  # X.nnz x 10% x 20%
    assert est(AxisSelection(count=0, total=100, nnz_sum=0), var_all).nnz == 0
