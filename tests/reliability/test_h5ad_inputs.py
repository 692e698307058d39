"""Bad H5AD structure, property-based, at the public API (``build_census``): missing groups,
wrong dtypes, negative / fractional / NaN counts, obs/var length mismatch, duplicate indexes,
unknown genes, empty datasets, truncated and foreign files. Every case builds (and validates)
or ends in one ``CellCensusError`` of bounded size, never a library traceback and never an
output directory that is not a complete build. Only the error's class and shape are checked:
the builder's internals are being rewritten."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from cellcensus.builder import BuildOptions, build_census
from cellcensus.builder.manifest import load_manifest
from cellcensus.errors import CellCensusError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow


def _x(h: h5py.File) -> h5py.Group:
    return h["raw/X"] if "raw" in h else h["X"]


def _set_first(name: str, value: float) -> Callable[[h5py.File], None]:
    def mutate(h: h5py.File) -> None:
        _x(h)["data"][0] = value

    mutate.__name__ = name
    return mutate


def _delete(path: str) -> Callable[[h5py.File], None]:
    def mutate(h: h5py.File) -> None:
        if path in h:
            del h[path]

    mutate.__name__ = f"delete {path}"
    return mutate


def _dup_index(axis: str) -> Callable[[h5py.File], None]:
    def mutate(h: h5py.File) -> None:
        idx = h[f"{axis}/_index"]
        v = idx[...]
        v[1] = v[0]
        idx[...] = v

    mutate.__name__ = f"duplicate {axis} index"
    return mutate


def _shorten(axis: str) -> Callable[[h5py.File], None]:
    def mutate(h: h5py.File) -> None:
        g = h[axis]
        v = g["_index"][...]
        del g["_index"]
        g["_index"] = v[:-1]

    mutate.__name__ = f"{axis} index one short"
    return mutate


def _unknown_genes(h: h5py.File) -> None:
    idx = h["var/_index"]
    v = idx[...]
    v[:3] = [b"ENSG99999999991", b"ENSG99999999992", b"NOT_A_GENE"]
    idx[...] = v


def _string_counts(h: h5py.File) -> None:
    x = _x(h)
    n = x["data"].shape[0]
    del x["data"]
    x["data"] = np.array([b"1"] * n)


def _float_dtype(h: h5py.File) -> None:
    x = _x(h)
    data = x["data"][...].astype(np.float64) + 0.25
    del x["data"]
    x["data"] = data


def _empty(h: h5py.File) -> None:
    x = _x(h)
    for key in ("data", "indices"):
        dt = x[key].dtype
        del x[key]
        x[key] = np.zeros(0, dtype=dt)
    ip = x["indptr"]
    ip[...] = np.zeros(ip.shape, dtype=ip.dtype)


def _bad_schema_version(h: h5py.File) -> None:
    h["uns"].attrs.pop("schema_version", None)
    if "schema_version" in h["uns"]:
        del h["uns/schema_version"]
    h["uns"]["schema_version"] = "3.0.0"


def _codes_out_of_range(h: h5py.File) -> None:
    for name in ("cell_type", "tissue", "assay"):
        node = h.get(f"obs/{name}")
        if isinstance(node, h5py.Group) and "codes" in node:
            node["codes"][0] = 120
            return


#: Mutations whose library exception once escaped the builder (found by this suite; a clear
#: CellCensusError since the builder's rewrite).
ONCE_LEAKED: list[Callable[[h5py.File], None]] = [
    _delete("obs/cell_type_ontology_term_id"),  # h5py KeyError from _source.column_info
    _string_counts,  # scipy ValueError from _xtask.process_x_chunk
]

MUTATIONS: list[Callable[[h5py.File], None]] = [
    _set_first("negative count", -3.0),
    _set_first("fractional count", 2.5),
    _set_first("NaN count", float("nan")),
    _delete("obs"),
    _delete("var"),
    _delete("uns"),
    _delete("X"),
    _dup_index("obs"),
    _dup_index("var"),
    _shorten("obs"),
    _shorten("var"),
    _unknown_genes,
    _float_dtype,
    _empty,
    _bad_schema_version,
    _codes_out_of_range,
    *ONCE_LEAKED,
]


@pytest.fixture(scope="module")
def source(tiny_corpus: Path) -> Path:
    return load_manifest(tiny_corpus)[0].local_path()


def _attempt(source: Path, work: Path, mutate: Callable[[Path], None]) -> str:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    f = work / "ds.h5ad"
    shutil.copy(source, f)
    mutate(f)
    (work / "manifest.csv").write_text(f"dataset_id,dataset_asset_h5ad_uri\nds-1,{f}\n")
    out = work / "out"
    try:
        build_census(work / "manifest.csv", out, options=BuildOptions(tag="2026-11-01"))
    except CellCensusError as e:
        text = str(e)
        assert text, "an empty error message"
        assert len(text) < 2000, text[:300]
        assert not out.exists(), "a failed build left its output directory"
        return f"{type(e).__name__}: {text[:120]}"
    assert (out / "build.json").is_file()
    return "built"


@settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=2, unique=True))
def test_mutated_h5ads_build_or_fail_clearly(
    source: Path, tmp_path: Path, mutations: list[Callable[[h5py.File], None]]
) -> None:
    def mutate(f: Path) -> None:
        with h5py.File(f, "r+") as h:
            for m in mutations:
                try:
                    m(h)
                except (KeyError, IndexError, ValueError):
                    reject()  # an earlier mutation removed what this one changes

    _attempt(source, tmp_path / "w", mutate)


@pytest.mark.parametrize("mutation", ONCE_LEAKED, ids=lambda m: m.__name__)
def test_inputs_that_once_leaked_library_errors_fail_clearly(
    source: Path, tmp_path: Path, mutation: Callable[[h5py.File], None]
) -> None:
    def mutate(f: Path) -> None:
        with h5py.File(f, "r+") as h:
            mutation(h)

    assert _attempt(source, tmp_path / "w", mutate) != "built"


@pytest.mark.parametrize("name", ["truncated", "not hdf5", "empty file", "directory"])
def test_unreadable_files_fail_clearly(source: Path, tmp_path: Path, name: str) -> None:
    def mutate(f: Path) -> None:
        if name == "truncated":
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        elif name == "not hdf5":
            f.write_bytes(b"PK\x03\x04 this is a zip file, not an h5ad" * 100)
        elif name == "empty file":
            f.write_bytes(b"")
        else:
            f.unlink()
            f.mkdir()

    assert _attempt(source, tmp_path / "w", mutate) != "built"


def test_errors_name_the_source_not_its_staged_copy(source: Path, tmp_path: Path) -> None:
    def truncate(f: Path) -> None:
        f.write_bytes(f.read_bytes()[:1000])

    message = _attempt(source, tmp_path / "w", truncate)
    assert ".staging" not in message
