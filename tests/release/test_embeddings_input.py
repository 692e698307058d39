"""Reading embedding files: every accepted form gives the same float32 matrix and keys, and
malformed files are refused with a message naming the file."""

from __future__ import annotations

from pathlib import Path  # noqa: TC003 - fixture annotations are resolved by pytest

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from cellcensus.embeddings import read_input
from cellcensus.errors import BadInputError

M = np.arange(12, dtype=np.float64).reshape(4, 3) / 7


def test_npy_rows_are_joinids_unless_keys_are_given(tmp_path: Path) -> None:
    np.save(tmp_path / "m.npy", M)
    got = read_input(tmp_path / "m.npy")
    assert got.matrix.dtype == np.float32
    np.testing.assert_array_equal(got.matrix, M.astype(np.float32))
    np.testing.assert_array_equal(got.soma_joinids, np.arange(4))
    pd.DataFrame({"dataset_id": ["d"] * 4, "observation_joinid": list("abcd")}).to_csv(
        tmp_path / "keys.csv", index=False
    )
    keyed = read_input(tmp_path / "m.npy", joinids=tmp_path / "keys.csv")
    assert keyed.soma_joinids is None
    assert keyed.observation_joinids is not None
    assert list(keyed.observation_joinids) == list("abcd")


def test_parquet_list_column_and_component_columns(tmp_path: Path) -> None:
    pd.DataFrame({"soma_joinid": [5, 1, 9, 2], "v": list(M)}).to_parquet(tmp_path / "a.parquet")
    a = read_input(tmp_path / "a.parquet")
    np.testing.assert_array_equal(a.soma_joinids, [5, 1, 9, 2])
    np.testing.assert_array_equal(a.matrix, M.astype(np.float32))
    wide = pd.DataFrame(M, columns=["c0", "c1", "c2"]).assign(soma_joinid=[5, 1, 9, 2])
    wide.to_parquet(tmp_path / "b.parquet")
    b = read_input(tmp_path / "b.parquet")
    np.testing.assert_array_equal(b.matrix, a.matrix)
    with pytest.raises(BadInputError, match="no column 'nope'"):
        read_input(tmp_path / "b.parquet", column="nope")
    pd.DataFrame({"v": list(M)}).to_parquet(tmp_path / "c.parquet")
    with pytest.raises(BadInputError, match="no cell keys"):
        read_input(tmp_path / "c.parquet")


def test_zarr_array_and_group(tmp_path: Path) -> None:
    zarr.save_array(str(tmp_path / "a.zarr"), M)
    np.testing.assert_array_equal(read_input(tmp_path / "a.zarr").soma_joinids, np.arange(4))
    # save_group: the same call in zarr 2 and 3 (zarr 3 deprecates Group.create_dataset)
    zarr.save_group(str(tmp_path / "g.zarr"), embedding=M, soma_joinid=np.array([3, 2, 1, 0]))
    got = read_input(tmp_path / "g.zarr")
    np.testing.assert_array_equal(got.soma_joinids, [3, 2, 1, 0])
    with pytest.raises(BadInputError, match="no array 'x'"):
        read_input(tmp_path / "g.zarr", column="x")


def test_anndata_by_observation_joinid_and_file_name(tmp_path: Path) -> None:
    obs = pd.DataFrame({"observation_joinid": list("wxyz")}, index=list("abcd"))
    a = ad.AnnData(obs=obs)
    a.obsm["X_scvi"] = M
    a.write_h5ad(tmp_path / "dataset-7.h5ad")
    got = read_input(tmp_path / "dataset-7.h5ad", obsm_key="X_scvi")
    assert got.dataset_ids is not None
    assert got.observation_joinids is not None
    assert set(got.dataset_ids) == {"dataset-7"}
    assert list(got.observation_joinids) == list("wxyz")
    other = read_input(tmp_path / "dataset-7.h5ad", obsm_key="X_scvi", dataset_id="other")
    assert other.dataset_ids is not None
    assert set(other.dataset_ids) == {"other"}
    with pytest.raises(BadInputError, match=r"no obsm\['nope'\] \(obsm keys: X_scvi\)"):
        read_input(tmp_path / "dataset-7.h5ad", obsm_key="nope")
    (tmp_path / "bad.h5ad").write_bytes(b"not hdf5")
    with pytest.raises(BadInputError, match="not a readable AnnData"):
        read_input(tmp_path / "bad.h5ad", obsm_key="X_scvi")


def test_unsupported_and_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "m.txt").write_text("1 2 3")
    with pytest.raises(BadInputError, match="unsupported embedding file type"):
        read_input(tmp_path / "m.txt")
    (tmp_path / "m.npy").write_bytes(b"junk")
    with pytest.raises(BadInputError, match=r"not a readable \.npy"):
        read_input(tmp_path / "m.npy")
    np.save(tmp_path / "big.npy", np.array([[1e39, 0.0]]))
    with pytest.raises(BadInputError, match="too large"):
        read_input(tmp_path / "big.npy")
