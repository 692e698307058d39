"""``cellcensus compare``: equal builds compare equal; each change is reported exactly once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
import tiledbsoma as soma

from cellcensus.builder import BuildOptions, build_census
from cellcensus.compare import CompareOptions, compare_builds, resolve_soma_uri
from cellcensus.errors import BadInputError, NotFoundError

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.builder import BuildResult
    from cellcensus.compare import CompareReport
    from cellcensus.synth import SynthCorpus

OBS = "census_data/homo_sapiens/obs"
X_RAW = "census_data/homo_sapiens/ms/RNA/X/raw"
DATASETS = "census_info/datasets"
MOUSE_VAR = "census_data/mus_musculus/ms/RNA/var"


def _found(report: CompareReport) -> set[tuple[str, str, int]]:
    return {(o.path, k, n) for o in report.objects for k, n in o.kinds.items()}


@pytest.fixture(scope="module")
def second_build(
    small_corpus: SynthCorpus, small_build: BuildResult, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The shared test corpus built again, with the same tag but other chunking."""
    out = tmp_path_factory.mktemp("again") / small_build.tag
    build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(tag=small_build.tag, chunk_nnz=400_000, validate=False),
    )
    return out


def _recreate_with_type(collection_uri: str, key: str, column: str, new_type: pa.DataType) -> None:
    """Replace ``collection[key]`` by a copy whose ``column`` has another Arrow type."""
    with soma.Collection[Any].open(collection_uri) as coll:
        old = coll[key]
        table = old.read().concat()
        schema = old.schema
        domain = old.domain
        metadata = dict(old.metadata)
    with soma.Collection[Any].open(collection_uri, "d") as coll:
        del coll[key]
    fields = [
        pa.field(f.name, new_type if f.name == column else f.type)
        for f in schema
        if f.name != "soma_joinid"
    ]
    new_uri = f"{collection_uri}/{key}_retyped"
    with soma.DataFrame.create(
        new_uri, schema=pa.schema([pa.field("soma_joinid", pa.int64()), *fields]), domain=domain
    ) as df:
        df.write(table.cast(pa.schema([table.schema.field("soma_joinid"), *fields])))
        for k, v in metadata.items():
            if k not in df.metadata:
                df.metadata[k] = v
    with soma.Collection[Any].open(collection_uri, "w") as coll, soma.DataFrame.open(new_uri) as df:
        coll.set(key, df, use_relative_uri=True)


@pytest.fixture(scope="module")
def modified_copy(census_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shared build with one obs value, one X value and one column type changed,
    and one var row added."""
    copy = tmp_path_factory.mktemp("modified") / "build"
    shutil.copytree(census_build, copy)
    soma_uri = str(copy / "soma")
    # one obs value: raw_sum of cell 5
    with soma.DataFrame.open(f"{soma_uri}/{OBS}") as obs:
        row = obs.read(coords=[5]).concat()
    i = row.schema.get_field_index("raw_sum")
    row = row.set_column(i, "raw_sum", pa.array([row["raw_sum"][0].as_py() + 1.0]))
    with soma.DataFrame.open(f"{soma_uri}/{OBS}", "w") as obs:
        obs.write(row)
    # one X value: the first stored value of cell 7
    with soma.SparseNDArray.open(f"{soma_uri}/{X_RAW}") as x:
        cell = x.read(coords=(7,)).tables().concat()
    first = cell.slice(0, 1)
    changed = first.set_column(
        2, "soma_data", pa.array([first["soma_data"][0].as_py() + 1.0], pa.float32())
    )
    with soma.SparseNDArray.open(f"{soma_uri}/{X_RAW}", "w") as x:
        x.write(changed)
    # one type: datasets.dataset_total_cell_count int64 -> int32 (same values)
    _recreate_with_type(
        f"{soma_uri}/census_info", "datasets", "dataset_total_cell_count", pa.int32()
    )
    # one extra row in the mouse var
    with soma.DataFrame.open(f"{soma_uri}/{MOUSE_VAR}") as var:
        n = var.count
        last = var.read(coords=[n - 1]).concat()
    extra = last.set_column(0, "soma_joinid", pa.array([n], pa.int64()))
    with soma.DataFrame.open(f"{soma_uri}/{MOUSE_VAR}", "w") as var:
        var.change_domain(((0, n),))
    with soma.DataFrame.open(f"{soma_uri}/{MOUSE_VAR}", "w") as var:
        var.write(extra)
    return copy


@pytest.mark.slow  # 42 s CPU measured (2026-12-02)
def test_two_builds_of_the_same_corpus_compare_equal(
    census_build: Path, second_build: Path
) -> None:
    report = compare_builds(census_build, second_build)
    assert report.equal, [d for o in report.objects for d in o.differences]
    paths = {o.path for o in report.objects}
    assert {OBS, X_RAW, "census_data/homo_sapiens/ms/RNA/X/normalized"} <= paths
    assert {
        "census_info/summary",
        "census_info/datasets",
        "census_info/summary_cell_counts",
    } <= paths
    assert "census_data/homo_sapiens/ms/RNA/feature_dataset_presence_matrix" in paths
    by_path = {o.path: o for o in report.objects}
    with soma.SparseNDArray.open(str(census_build / "soma" / X_RAW)) as x:
        assert by_path[X_RAW].compared == x.nnz > 0
    with soma.DataFrame.open(str(census_build / "soma" / OBS)) as obs:
        assert by_path[OBS].compared == obs.count


@pytest.mark.slow  # 59 s CPU measured (2026-12-02)
def test_each_change_is_reported_exactly(census_build: Path, modified_copy: Path) -> None:
    report = compare_builds(census_build, modified_copy)
    assert not report.equal
    assert _found(report) == {
        (OBS, "value", 1),
        (X_RAW, "data", 1),
        (DATASETS, "arrow-type", 1),
        (MOUSE_VAR, "rows", 1),
    }
    details = {d.path: d.detail for o in report.objects for d in o.differences}
    assert details[OBS].startswith("row soma_joinid=5, column 'raw_sum'")
    assert details[X_RAW].startswith("(7, ")
    assert details[DATASETS] == "column 'dataset_total_cell_count': A int64, B int32"
    assert "only in B" in details[MOUSE_VAR]
    # the same, read in tiny blocks (many block boundaries)
    tiny = compare_builds(
        census_build, modified_copy, options=CompareOptions(block_values=20_000, block_rows=997)
    )
    assert _found(tiny) == _found(report)
    assert [o.compared for o in tiny.objects] == [o.compared for o in report.objects]


def test_dictionary_encoding_is_a_type_difference_unless_asked(
    census_build: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "plain"
    shutil.copytree(census_build, copy)
    _recreate_with_type(
        str(copy / "soma" / "census_info"), "summary_cell_counts", "category", pa.string()
    )
    strict = compare_builds(census_build, copy)
    assert _found(strict) == {("census_info/summary_cell_counts", "arrow-type", 1)}
    assert (
        "dictionary<values=large_string"
        in strict.objects[[o.path for o in strict.objects].index("census_info/summary_cell_counts")]
        .differences[0]
        .detail
    )
    relaxed = compare_builds(census_build, copy, options=CompareOptions(dictionary_as_plain=True))
    assert relaxed.equal


def test_difference_listing_is_bounded(census_build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "scaled"
    shutil.copytree(census_build, copy)
    uri = str(copy / "soma" / X_RAW)
    with soma.SparseNDArray.open(uri) as x:
        table = x.read(coords=(slice(0, 9),)).tables().concat()
    doubled = table.set_column(
        2, "soma_data", pa.array(table["soma_data"].to_numpy() * 2, pa.float32())
    )
    with soma.SparseNDArray.open(uri, "w") as x:
        x.write(doubled)
    report = compare_builds(census_build, copy, options=CompareOptions(max_differences=3))
    (raw,) = [o for o in report.objects if o.path == X_RAW]
    assert raw.n_differences == table.num_rows > 3
    assert len(raw.differences) == 3
    assert compare_builds(census_build, copy, options=CompareOptions(rtol=1.0)).equal


def test_what_only_cellcensus_writes_is_left_out_unless_asked(
    census_build: Path, tmp_path: Path
) -> None:
    """A build without ``cellcensus_genes`` (as an official build is) compares equal by default;
    with ``ignore_members=()`` the missing member is the one difference."""
    copy = tmp_path / "official-like"
    shutil.copytree(census_build, copy)
    with soma.Collection[Any].open(str(copy / "soma"), "d") as root:
        assert "cellcensus_genes" in root
        del root["cellcensus_genes"]
    assert compare_builds(census_build, copy).equal
    report = compare_builds(census_build, copy, options=CompareOptions(ignore_members=frozenset()))
    assert not report.equal
    assert [(o.path, d.kind) for o in report.objects for d in o.differences] == [
        ("cellcensus_genes", "member")
    ]


@pytest.mark.filterwarnings("ignore:Support for spatial types is experimental:UserWarning")
@pytest.mark.slow  # 24 s CPU measured (2026-12-02)
def test_spatial_scenes_are_compared(census_build: Path, tmp_path: Path) -> None:
    """Scenes with a point cloud and a multiscale image: equal copies, then one point moved and
    one pixel changed."""
    copies = []
    for name, dx, pixel in (("a", 0.0, 0), ("b", 0.5, 7)):
        copy = tmp_path / name
        shutil.copytree(census_build, copy)
        spatial = f"{copy}/soma/census_spatial_sequencing/homo_sapiens/spatial"
        with soma.Collection[Any].open(spatial, "w") as coll:
            scene = coll.add_new_collection("ds1", soma.Scene)
            scene.coordinate_space = soma.CoordinateSpace.from_axis_names(["x", "y"])
            scene.add_new_collection("obsl")
            scene.add_new_collection("img")
            loc = scene.add_new_point_cloud_dataframe(
                "loc",
                "obsl",
                transform=None,
                schema=pa.schema([("x", pa.float64()), ("y", pa.float64())]),
                domain=[(0.0, 100.0), (0.0, 100.0), (0, 9)],
            )
            loc.write(
                pa.table(
                    {
                        "x": np.arange(10, dtype=np.float64) + np.where(np.arange(10) == 3, dx, 0),
                        "y": np.arange(10, dtype=np.float64) * 2,
                        "soma_joinid": np.arange(10, dtype=np.int64),
                    }
                )
            )
            image = scene.add_new_multiscale_image(
                "tissue",
                "img",
                transform=None,
                type=pa.uint8(),
                level_shape=(3, 16, 16),
                level_key="hires",
            )
            data = np.zeros((3, 16, 16), dtype=np.uint8)
            data[1, 2, 3] = pixel
            image["hires"].write(
                (slice(None), slice(None), slice(None)), pa.Tensor.from_numpy(data)
            )
        copies.append(copy)
    assert compare_builds(copies[0], copies[0]).equal
    report = compare_builds(copies[0], copies[1])
    ds1 = "census_spatial_sequencing/homo_sapiens/spatial/ds1"
    assert _found(report) == {
        (f"{ds1}/obsl/loc", "rows", 2),
        (f"{ds1}/img/tissue/hires", "data", 1),
    }
    # a scene present in one build only
    only = compare_builds(census_build, copies[0])
    assert _found(only) == {(ds1, "member", 1)}


def test_resolve_accepts_a_build_or_its_soma(census_build: Path, tmp_path: Path) -> None:
    assert resolve_soma_uri(census_build) == str(census_build / "soma")
    assert resolve_soma_uri(census_build / "soma") == str(census_build / "soma")
    assert resolve_soma_uri(f"file://{census_build}") == str(census_build / "soma")
    with pytest.raises(NotFoundError, match="neither a census build"):
        resolve_soma_uri(tmp_path)
    with pytest.raises(BadInputError, match="block_values"):
        CompareOptions(block_values=0)


@pytest.mark.slow  # 37 s CPU measured with the modified copy it makes (2026-12-02)
def test_command_prints_differences_and_exits_non_zero(
    census_build: Path, modified_copy: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from cellcensus._cli import app

    runner = CliRunner()
    same = runner.invoke(app, ["compare", str(census_build), str(census_build / "soma")])
    assert same.exit_code == 0, same.output
    assert "equal (" in same.output
    diff = runner.invoke(
        app, ["compare", str(census_build), str(modified_copy)], terminal_width=200
    )
    assert diff.exit_code == 1
    assert "raw_sum" in diff.output
    assert "4 difference(s)" in diff.output
    as_json = runner.invoke(app, ["compare", str(census_build), str(modified_copy), "--json"])
    assert as_json.exit_code == 1
    doc = json.loads(as_json.stdout)
    assert doc["equal"] is False
    assert doc["n_differences"] == 4
    # an error is one line on stderr, no traceback, exit 1 (the real entry point)
    bad = subprocess.run(
        [sys.executable, "-m", "cellcensus", "compare", str(census_build), str(tmp_path / "no")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert bad.returncode == 1
    assert "neither a census build" in " ".join(bad.stderr.split())  # rich wraps at 80
    assert "Traceback" not in bad.stderr
