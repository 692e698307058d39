"""Streaming: values independent of chunk_size, memory independent of n_cells."""

from __future__ import annotations

import gc
import tracemalloc
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pytest

from cellcensus.synth import DatasetSpec, write_dataset

if TYPE_CHECKING:
    from pathlib import Path

HUMAN = "NCBITaxon:9606"


def _arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of the file, as arrays (obs/var columns, matrices, embeddings)."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: h5py.Dataset | h5py.Group) -> None:
            if isinstance(obj, h5py.Dataset):
                out[name] = np.asarray(obj[()])  # scalars (uns strings) too

        f.visititems(visit)
    return out


@pytest.mark.parametrize(
    ("x_format", "raw_location"), [("csr", "raw"), ("csc", "X"), ("dense", "raw")]
)
@pytest.mark.slow  # 9-10 s per format: datasets written twice
def test_values_do_not_depend_on_chunk_size(
    tmp_path: Path, x_format: str, raw_location: str
) -> None:
    spec = DatasetSpec(
        dataset_id="chunks",
        organism_ontology_term_id=HUMAN,
        n_cells=2_600,  # 2 full blocks of 1,024 cells and a partial one
        n_genes=5_000,  # 2 tiles of 4,096 genes
        n_spike_ins=7,
        assays=("EFO:0009922", "EFO:0008931"),
        x_format=x_format,  # type: ignore[arg-type]
        raw_location=raw_location,  # type: ignore[arg-type]
    )
    sizes = (97, 1_024, 1_500, 10_000)
    files = [write_dataset(spec, tmp_path / f"{c}.h5ad", seed=21, chunk_size=c) for c in sizes]
    reference = _arrays(files[0])
    matrix = "raw/X" if raw_location == "raw" else "X"
    assert any(name.startswith(matrix) for name in reference)
    for other in files[1:]:
        arrays = _arrays(other)
        assert arrays.keys() == reference.keys()
        for name, values in reference.items():
            assert values.dtype == arrays[name].dtype, name
            if values.dtype == object:  # variable-length strings
                assert values.tolist() == arrays[name].tolist(), (other.name, name)
            else:
                assert values.tobytes() == arrays[name].tobytes(), (other.name, name)


def test_chunk_progress_is_reported(tmp_path: Path) -> None:
    calls: list[int] = []
    spec = DatasetSpec(dataset_id="p", organism_ontology_term_id=HUMAN, n_cells=1_050, n_genes=50)
    write_dataset(spec, tmp_path / "p.h5ad", seed=0, chunk_size=400, progress=calls.append)
    assert calls == [400, 400, 250]


def _peak_bytes(path: Path, n_cells: int) -> int:
    spec = DatasetSpec(dataset_id="mem", organism_ontology_term_id=HUMAN, n_cells=n_cells)
    gc.collect()
    tracemalloc.start()
    try:
        write_dataset(spec, path, seed=0, chunk_size=5_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with h5py.File(path, "r") as f:
        assert f["X/indptr"][-1] > 0.05 * n_cells * 2_000  # really written
    return peak


@pytest.mark.slow  # 23 s: two corpora in measured subprocesses
def test_peak_memory_does_not_grow_with_cells(tmp_path: Path) -> None:
    """Python-heap peak (numpy arrays included) for 80k cells stays near that of 20k cells.

    A writer holding the whole matrix would need ~4x more for 80k cells (the counts alone are
    ~90 MB there); obs grows with n_cells but is small (a few MB).
    """
    _peak_bytes(tmp_path / "warm.h5ad", 2_000)  # load the cached gene tables and ontologies
    small = _peak_bytes(tmp_path / "small.h5ad", 20_000)
    large = _peak_bytes(tmp_path / "large.h5ad", 80_000)
    assert large < 1.3 * small + 16 * 2**20, (small, large)
    assert large < 160 * 2**20
