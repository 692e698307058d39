"""Bad input gets a clear CellCensusError naming dataset and field, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import pyarrow as pa
import pytest

from cellcensus.builder import BuildOptions, build_census
from cellcensus.errors import BadInputError, CellCensusError
from cellcensus.synth import DatasetSpec, write_dataset

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

GOOD = "good-ds"


def _write_manifest(path: Path, rows: list[tuple[str, str]]) -> Path:
    lines = ["dataset_id,dataset_asset_h5ad_uri"] + [f"{i},{u}" for i, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def good_h5ad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("good") / "good.h5ad"
    spec = DatasetSpec(
        dataset_id=GOOD, organism_ontology_term_id="NCBITaxon:9606", n_cells=200, n_genes=300
    )
    return write_dataset(spec, path, seed=1)


def _replace_strings(group: h5py.Group, name: str, fn: Callable[[list[str]], list[str]]) -> None:
    node = group[name]
    attrs = dict(node.attrs)
    values = [v.decode() if isinstance(v, bytes) else str(v) for v in node[()]]
    del group[name]
    new = group.create_dataset(
        name, data=np.array(fn(values), dtype=object), dtype=h5py.string_dtype()
    )
    for k, v in attrs.items():
        new.attrs[k] = v


def _drop_obs_column(f: h5py.File, column: str) -> None:
    del f["obs"][column]
    order = [c.decode() if isinstance(c, bytes) else str(c) for c in f["obs"].attrs["column-order"]]
    f["obs"].attrs["column-order"] = np.array([c for c in order if c != column], dtype=object)


def _counts(f: h5py.File) -> h5py.Dataset:
    x = f["raw/X"] if "raw" in f else f["X"]
    return x["data"] if isinstance(x, h5py.Group) else x


def _set_count(value: float) -> Callable[[h5py.File], None]:
    def mutate(f: h5py.File) -> None:
        data = _counts(f)
        data[0] = value

    return mutate


def _unknown_cell_type(f: h5py.File) -> None:
    _replace_strings(
        f["obs"]["cell_type_ontology_term_id"], "categories", lambda v: ["CL:9999999", *v[1:]]
    )


def _schema_version(f: h5py.File) -> None:
    del f["uns"]["schema_version"]
    f["uns"].create_dataset("schema_version", data="5.0.0", dtype=h5py.string_dtype())


def _var_index(f: h5py.File) -> h5py.Group:
    return f["raw/var"] if "raw" in f else f["var"]


def _unknown_gene(f: h5py.File) -> None:
    var = _var_index(f)
    _replace_strings(var, var.attrs.get("_index", "_index"), lambda v: ["ENSG99999999999", *v[1:]])


def _duplicate_cell_name(f: h5py.File) -> None:
    obs = f["obs"]
    _replace_strings(obs, obs.attrs.get("_index", "_index"), lambda v: [*v[:-1], v[3]])


MUTATIONS: dict[str, tuple[Callable[[h5py.File], None], str]] = {
    "unknown gene id": (_unknown_gene, "ENSG99999999999"),
    "duplicate cell name": (_duplicate_cell_name, "appears twice"),
    "missing obs column": (lambda f: _drop_obs_column(f, "cell_type"), "cell_type"),
    "unknown ontology id": (_unknown_cell_type, "CL:9999999"),
    "non-integer counts": (_set_count(0.5), "whole numbers"),
    "negative counts": (_set_count(-3.0), "non-negative"),
    "schema version": (_schema_version, "5.0.0"),
}


@pytest.mark.parametrize("scan_rows", [262_144, 64], ids=["one-scan-part", "four-scan-parts"])
@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_bad_h5ad_content_stops_the_build_and_names_dataset_and_field(
    case: str, scan_rows: int, good_h5ad: Path, tmp_path: Path
) -> None:
    # with four scan parts, the duplicate cell names (rows 3 and 199) are in different parts
    mutate, needle = MUTATIONS[case]
    bad = tmp_path / "bad.h5ad"
    shutil.copy(good_h5ad, bad)
    with h5py.File(bad, "r+") as f:
        mutate(f)
    manifest = _write_manifest(tmp_path / "m.csv", [("bad-ds", str(bad))])
    out = tmp_path / "out"
    with pytest.raises(BadInputError) as err:
        build_census(manifest, out, options=BuildOptions(tag="2026-01-01", scan_rows=scan_rows))
    assert "bad-ds" in str(err.value)
    assert needle in str(err.value)
    assert err.value.dataset_id == "bad-ds"
    assert not out.exists()
    assert not (tmp_path / ".out.staging").exists()


@pytest.mark.parametrize(
    ("case", "needle"),
    [("not hdf5", "not a readable HDF5"), ("truncated", "not a readable HDF5")],
)
def test_unreadable_files_are_reported(
    case: str, needle: str, good_h5ad: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.h5ad"
    if case == "not hdf5":
        bad.write_text("dataset_id,uri\nthis is a CSV, not an H5AD\n")
    else:
        data = good_h5ad.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    manifest = _write_manifest(tmp_path / "m.csv", [("bad-ds", str(bad))])
    with pytest.raises(BadInputError, match=needle) as err:
        build_census(manifest, tmp_path / "out", options=BuildOptions(tag="2026-01-01"))
    assert err.value.dataset_id == "bad-ds"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        ([("a", "{good}"), ("a", "{good}")], "duplicate dataset_id"),
        ([("a", "/nonexistent/x.h5ad")], "does not exist"),
        ([("../evil", "{good}")], "dataset_id must be"),
        ([("a/b", "{good}")], "dataset_id must be"),
        ([("a", "http://example.org/x.h5ad")], "unsupported URI scheme"),
    ],
)
def test_bad_manifests(
    rows: list[tuple[str, str]], needle: str, good_h5ad: Path, tmp_path: Path
) -> None:
    manifest = _write_manifest(tmp_path / "m.csv", [(i, u.format(good=good_h5ad)) for i, u in rows])
    with pytest.raises(BadInputError, match=needle):
        build_census(manifest, tmp_path / "out", options=BuildOptions(tag="2026-01-01"))
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_manifest_without_uri_column(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("dataset_id,path\na,b\n")
    with pytest.raises(BadInputError, match="dataset_asset_h5ad_uri"):
        build_census(manifest, tmp_path / "out")


def test_existing_output_is_never_overwritten(good_h5ad: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    manifest = _write_manifest(tmp_path / "m.csv", [(GOOD, str(good_h5ad))])
    with pytest.raises(CellCensusError, match="exists"):
        build_census(manifest, out)
    assert (out / "keep.txt").read_text() == "precious"


def test_on_error_skip_records_the_bad_dataset(good_h5ad: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.h5ad"
    shutil.copy(good_h5ad, bad)
    with h5py.File(bad, "r+") as f:
        _set_count(0.5)(f)
    missing = tmp_path / "gone.h5ad"
    manifest = _write_manifest(
        tmp_path / "m.csv", [(GOOD, str(good_h5ad)), ("bad-ds", str(bad)), ("gone", str(missing))]
    )
    result = build_census(
        manifest, tmp_path / "out", options=BuildOptions(tag="2026-01-01", on_error="skip")
    )
    doc = json.loads((tmp_path / "out" / "build.json").read_text())
    status = {i["dataset_id"]: (i["status"], i["reason"]) for i in doc["inputs"]}
    assert status[GOOD][0] == "included"
    assert status["bad-ds"][0] == "skipped"
    assert "whole numbers" in status["bad-ds"][1]
    assert status["gone"][0] == "skipped"
    assert "does not exist" in status["gone"][1]
    assert doc["summary"]["datasets_skipped"] == ["bad-ds", "gone"]
    assert result.total_cell_count > 0
    assert sorted(p.name for p in (tmp_path / "out" / "h5ads").iterdir()) == [f"{GOOD}.h5ad"]


@pytest.mark.slow  # 52 s CPU measured (2026-12-02)
def test_killed_build_leaves_nothing_that_looks_finished(good_h5ad: Path, tmp_path: Path) -> None:
    rows = [(f"ds{i}", str(good_h5ad)) for i in range(20)]
    manifest = _write_manifest(tmp_path / "m.csv", rows)
    out = tmp_path / "out"
    staging = tmp_path / ".out.staging"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cellcensus",
            "--quiet",
            "build",
            str(manifest),
            str(out),
            "--tag",
            "2026-01-01",
            "--chunk-nnz",
            "100",
            "--band-nnz",
            "3000",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        # wait until bands are being written, then kill without warning
        while time.monotonic() < deadline:
            if list(staging.glob("_work/done/band.*")):
                break
            if proc.poll() is not None:
                pytest.fail("build finished before it could be interrupted")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert staging.exists()  # the hidden staging directory is all that remains
    assert not (staging / "build.json").exists()
    # a new build cleans the leftovers and completes
    result = build_census(manifest, out, options=BuildOptions(tag="2026-01-01", validate=False))
    assert result.total_cell_count > 0
    assert not staging.exists()
    assert (out / "build.json").exists()


def test_manifest_filesize_orders_datasets_and_is_checked(good_h5ad: Path, tmp_path: Path) -> None:
    from cellcensus.builder import load_manifest
    from cellcensus.errors import IntegrityError

    size = good_h5ad.stat().st_size
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "dataset_id,dataset_asset_h5ad_uri,asset_h5ad_filesize\n"
        f"big,{good_h5ad},{size + 10}\nsmall,{good_h5ad},{size}\n"
    )
    assert [e.dataset_id for e in load_manifest(manifest)] == ["small", "big"]
    with pytest.raises(IntegrityError, match="asset_h5ad_filesize"):
        build_census(manifest, tmp_path / "out", options=BuildOptions(tag="2026-01-01"))
    assert not (tmp_path / "out").exists()


def test_manifest_forms_official_alias_directory_and_file_uris(
    good_h5ad: Path, tmp_path: Path
) -> None:
    from cellcensus.builder import load_manifest

    rel = tmp_path / "data"
    rel.mkdir()
    shutil.copy(good_h5ad, rel / "x.h5ad")
    shutil.copy(good_h5ad, rel / "y.h5ad")
    official = tmp_path / "official.csv"
    official.write_text(
        "dataset_id,dataset_asset_h5ad_uri,dataset_version_id,dataset_title,collection_id,"
        "collection_name,collection_doi,collection_doi_label,citation\n"
        f"x,data/x.h5ad,v1,Title X,c1,Coll,10.1/abc,Doe 2024,Cite me\n"
        f"y,file://{rel / 'y.h5ad'},v2,Title Y,c1,Coll,,,\n"
    )
    entries = load_manifest(official)
    assert [e.dataset_id for e in entries] == ["x", "y"]
    assert entries[0].local_path() == rel / "x.h5ad"  # relative to the manifest's directory
    assert entries[1].local_path() == rel / "y.h5ad"
    assert entries[0].collection_doi == "10.1/abc"
    assert entries[0].citation == "Cite me"
    alias = tmp_path / "alias.csv"
    alias.write_text(f"dataset_id,h5ad_uri\nx,{rel / 'x.h5ad'}\n")
    assert load_manifest(alias)[0].uri == str(rel / "x.h5ad")
    from_dir = load_manifest(rel)
    assert [e.dataset_id for e in from_dir] == ["x", "y"]
    result = build_census(official, tmp_path / "out", options=BuildOptions(tag="2026-01-01"))
    assert [d["status"] for d in result.datasets] == ["included", "included"]
    import tiledbsoma

    with tiledbsoma.Collection[Any].open(str(tmp_path / "out" / "soma")) as census:
        ds = census["census_info"]["datasets"].read().concat().to_pandas()
    assert list(ds["dataset_title"]) == ["Title X", "Title Y"]
    assert list(ds["collection_doi_label"]) == ["Doe 2024", ""]
    assert list(ds["dataset_h5ad_path"]) == ["x.h5ad", "y.h5ad"]


def test_unknown_genes_can_be_dropped_with_a_recorded_warning(
    good_h5ad: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.h5ad"
    shutil.copy(good_h5ad, bad)
    with h5py.File(bad, "r+") as f:
        _unknown_gene(f)
    manifest = _write_manifest(tmp_path / "m.csv", [("bad-ds", str(bad))])
    out = tmp_path / "out"
    build_census(manifest, out, options=BuildOptions(tag="2026-01-01", unknown_genes="drop"))
    doc = json.loads((out / "build.json").read_text())
    (entry,) = doc["inputs"]
    assert entry["status"] == "included"
    assert any("ENSG99999999999" in w for w in entry["warnings"])
    import tiledbsoma as soma

    with soma.Collection[Any].open(str(out / "soma")) as census:
        var = census["census_data"]["homo_sapiens"].ms["RNA"].var.read().concat().to_pandas()
    assert "ENSG99999999999" not in set(var["feature_id"])
    assert len(var) > 0


def test_blocklisted_datasets_are_left_out_and_recorded(good_h5ad: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.h5ad"
    shutil.copy(good_h5ad, other)
    manifest = _write_manifest(
        tmp_path / "m.csv", [(GOOD, str(good_h5ad)), ("blocked-ds", str(other))]
    )
    out = tmp_path / "out"
    build_census(
        manifest,
        out,
        options=BuildOptions(tag="2026-01-01", blocklist=frozenset({"blocked-ds"})),
    )
    doc = json.loads((out / "build.json").read_text())
    status = {i["dataset_id"]: i["status"] for i in doc["inputs"]}
    assert status == {GOOD: "included", "blocked-ds": "blocked"}
    assert not (out / "h5ads" / "blocked-ds.h5ad").exists()


def _largest_file(root: Path) -> Path:
    return max((p for p in root.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("damage", ["flipped X byte", "deleted obs fragment", "corrupt source"])
def test_validate_reports_a_damaged_build_instead_of_crashing(
    damage: str, good_h5ad: Path, tmp_path: Path
) -> None:
    from cellcensus.builder import validate_build
    from cellcensus.errors import IntegrityError

    manifest = _write_manifest(tmp_path / "m.csv", [(GOOD, str(good_h5ad))])
    out = tmp_path / "out"
    build_census(manifest, out, options=BuildOptions(tag="2026-01-01"))
    exp = out / "soma" / "census_data" / "homo_sapiens"
    if damage == "flipped X byte":
        target = _largest_file(exp / "ms" / "RNA" / "X" / "raw" / "__fragments")
        data = bytearray(target.read_bytes())
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "deleted obs fragment":
        shutil.rmtree(next((exp / "obs" / "__fragments").iterdir()))
    else:
        source = out / "h5ads" / f"{GOOD}.h5ad"
        source.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    with pytest.raises(IntegrityError) as err:
        validate_build(out)
    text = str(err.value)
    assert "validation of" in text
    assert "problems" in text
    assert "Traceback" not in text


def test_validate_finds_a_wrong_x_value_of_a_cell(build_copy: Path) -> None:
    """A raw count and a normalized value rewritten (valid TileDB, wrong numbers) are each
    named by the cell comparison."""
    import tiledbsoma as soma

    from cellcensus.builder import validate_build
    from cellcensus.errors import IntegrityError

    x = build_copy / "soma" / "census_data" / "homo_sapiens" / "ms" / "RNA" / "X"
    for layer, joinid in (("raw", 0), ("normalized", 1)):
        with soma.SparseNDArray.open(str(x / layer)) as arr:
            row = arr.read(coords=([joinid],)).tables().concat()
        col, value = row["soma_dim_1"][0].as_py(), row["soma_data"][0].as_py()
        with soma.SparseNDArray.open(str(x / layer), "w") as arr:
            arr.write(
                pa.Table.from_pydict(
                    {
                        "soma_dim_0": pa.array([joinid], pa.int64()),
                        "soma_dim_1": pa.array([col], pa.int64()),
                        "soma_data": pa.array([value * 2 + 1], pa.float32()),
                    }
                )
            )
    with pytest.raises(IntegrityError) as err:
        validate_build(build_copy, sample_cells=10**6)  # every cell
    text = str(err.value)
    assert "homo_sapiens cell 0 " in text
    assert "X/raw differs from the source counts" in text
    assert "homo_sapiens cell 1 " in text
    assert "X/normalized does not follow its definition" in text
