"""``cellcensus_genes``: gene-major copies of X and the expression summary, as the builder writes
them; checked against X and obs read back independently (and by the validator)."""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import tiledb
import tiledbsoma as soma
from pyarrow import ipc

from cellcensus._obscopy import OBS_COPY, compare_obs_copy, read_obs_copy, write_obs_copy
from cellcensus.builder import BuildOptions, build_census, validate_build
from cellcensus.builder._genemajor import CAPACITY
from cellcensus.builder._summary import SUMMARY_CAPACITY
from cellcensus.errors import BadInputError, IntegrityError

from .expected_census import gene_tables

if TYPE_CHECKING:
    from pathlib import Path

    from cellcensus.builder import BuildResult
    from cellcensus.synth import SynthCorpus

ORGANISMS = ("homo_sapiens", "mus_musculus")
GROUP_COLUMNS = [
    "dataset_id",
    "tissue_general_ontology_term_id",
    "tissue_general",
    "cell_type_ontology_term_id",
    "cell_type",
    "assay_ontology_term_id",
    "assay",
    "disease_ontology_term_id",
    "disease",
    "sex_ontology_term_id",
    "sex",
]


def _sorted_x(arr: soma.SparseNDArray) -> pa.Table:
    return (
        arr.read()
        .tables()
        .concat()
        .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
    )


@pytest.mark.parametrize("organism", ORGANISMS)
def test_gene_major_copies_hold_exactly_x(census_build: Path, organism: str) -> None:
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        x = census["census_data"][organism].ms["RNA"].X
        copies = census["cellcensus_genes"][organism]["X"]
        assert set(copies) == {"raw", "normalized"}
        for layer in ("raw", "normalized"):
            copy = copies[layer]
            assert copy.shape == x[layer].shape
            assert copy.schema == x[layer].schema
            want = _sorted_x(x[layer])
            assert want.num_rows > 0
            assert _sorted_x(copy).equals(want), layer
            assert copy.metadata["cellcensus_gene_major_copy_of"] == (
                f"census_data/{organism}/ms/RNA/X/{layer}"
            )


def test_copies_are_gene_major_and_outside_the_experiments(census_build: Path) -> None:
    soma_dir = census_build / "soma"
    with soma.Collection[Any].open(str(soma_dir)) as census:
        for organism in ORGANISMS:
            exp = census["census_data"][organism]
            # the experiment is exactly the Census schema's: nothing added to it
            assert set(exp.ms) == {"RNA"}
            assert set(exp.ms["RNA"].X) == {"raw", "normalized"}
            copy = census["cellcensus_genes"][organism]["X"]["raw"]
            schema = tiledb.ArraySchema.load(copy.uri)
            assert (schema.cell_order, schema.tile_order) == ("col-major", "col-major")
            assert int(schema.domain.dim(1).tile) == 1
            # one fragment per band, like X
            x_uri = exp.ms["RNA"].X["raw"].uri
            assert len(tiledb.array_fragments(copy.uri)) == len(tiledb.array_fragments(x_uri))
            # small data tiles: a read of a few genes decodes little of other genes
            assert schema.capacity == CAPACITY < tiledb.ArraySchema.load(x_uri).capacity


def test_summary_layout_serves_reads_of_a_few_genes(census_build: Path) -> None:
    """(gene, group) order in small data tiles, no validity tiles, one fragment."""
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        for organism in ORGANISMS:
            summary = census["cellcensus_genes"][organism]["expression_summary"]
            assert summary.index_column_names == ("var_joinid", "group_joinid")
            assert not any(f.nullable for f in summary.schema)
            schema = tiledb.ArraySchema.load(summary.uri)
            assert schema.capacity == SUMMARY_CAPACITY
            assert (schema.cell_order, schema.tile_order) == ("row-major", "row-major")
            assert len(tiledb.array_fragments(summary.uri)) == 1  # consolidated by the build


def _recomputed_summary(
    census: soma.Collection[Any], organism: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (gene, group) of primary cells: counts and sums from obs and X/normalized."""
    exp = census["census_data"][organism]
    obs = (
        exp.obs.read(column_names=["soma_joinid", "is_primary_data", *GROUP_COLUMNS])
        .concat()
        .to_pandas()
    )
    obs = obs[obs["is_primary_data"]]
    for c in GROUP_COLUMNS:
        obs[c] = obs[c].astype(str)
    x = exp.ms["RNA"].X["normalized"].read().tables().concat().to_pandas()
    x = x.merge(obs, left_on="soma_dim_0", right_on="soma_joinid")
    v = x["soma_data"].to_numpy(dtype=np.float64)
    lg = np.log1p(10_000.0 * v)
    x = x.assign(sum=v, sumsq=v * v, sum_log1p=lg, sumsq_log1p=lg * lg, n_expressing=1)
    return (
        x.rename(columns={"soma_dim_1": "var_joinid"})
        .groupby(["var_joinid", *GROUP_COLUMNS], observed=True)[
            ["n_expressing", "sum", "sumsq", "sum_log1p", "sumsq_log1p"]
        ]
        .sum()
        .reset_index()
        .sort_values(["var_joinid", *GROUP_COLUMNS], ignore_index=True)
    ), obs.groupby(GROUP_COLUMNS, observed=True).size().rename("n_cells").reset_index()


@pytest.mark.parametrize("organism", ORGANISMS)
def test_summary_equals_a_recomputation_from_x_and_obs(census_build: Path, organism: str) -> None:
    with soma.Collection[Any].open(str(census_build / "soma")) as census:
        want, want_groups = _recomputed_summary(census, organism)
        genes = census["cellcensus_genes"][organism]
        groups = genes["expression_summary_cell_groups"].read().concat().to_pandas()
        summary = genes["expression_summary"].read().concat().to_pandas()
    assert len(want) > 100
    # cell groups: every combination of the primary cells, with its cell count
    got_groups = groups.drop(columns="soma_joinid").sort_values(GROUP_COLUMNS, ignore_index=True)
    pd.testing.assert_frame_equal(
        got_groups,
        want_groups.sort_values(GROUP_COLUMNS, ignore_index=True),
        check_dtype=False,
    )
    stats = ["n_expressing", "sum", "sumsq", "sum_log1p", "sumsq_log1p"]
    got = (
        summary.merge(
            groups[["soma_joinid", *GROUP_COLUMNS]], left_on="group_joinid", right_on="soma_joinid"
        )
        .loc[:, ["var_joinid", *GROUP_COLUMNS, *stats]]
        .sort_values(["var_joinid", *GROUP_COLUMNS], ignore_index=True)
    )
    pd.testing.assert_frame_equal(
        got[["var_joinid", *GROUP_COLUMNS, "n_expressing"]],
        want[["var_joinid", *GROUP_COLUMNS, "n_expressing"]],
        check_dtype=False,
    )
    for stat in ("sum", "sumsq", "sum_log1p", "sumsq_log1p"):
        np.testing.assert_allclose(got[stat], want[stat], rtol=1e-9, atol=1e-300, err_msg=stat)


@pytest.fixture(scope="module")
def other_build(small_corpus: SynthCorpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``small_corpus`` built again without copies, cut into more bands and smaller chunks."""
    out = tmp_path_factory.mktemp("genes-other") / "2026-11-01"
    result = build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(
            tag="2026-11-01",
            chunk_nnz=20_000,
            band_nnz=60_000,
            gene_major=False,
            validation_sample_cells=16,
        ),
    )
    assert result.organisms["homo_sapiens"]["x_fragments"] > 1
    return out


@pytest.mark.slow  # 13 s: another build for it
def test_no_gene_major_writes_the_summary_only_and_it_does_not_depend_on_chunking(
    census_build: Path, other_build: Path
) -> None:
    with (
        soma.Collection[Any].open(str(census_build / "soma")) as a,
        soma.Collection[Any].open(str(other_build / "soma")) as b,
    ):
        for organism in ORGANISMS:
            assert "X" not in b["cellcensus_genes"][organism]
            want = gene_tables(a, organism)
            got = gene_tables(b, organism)
            assert set(got) == {k for k in want if "/genes/X/" not in k}
            for key, table in got.items():
                assert table.equals(want[key]), key


def _copy_build(src: Path, dst: Path) -> Path:
    out = dst / src.name
    shutil.copytree(src, out)
    return out


def test_validation_finds_a_damaged_gene_major_copy(census_build: Path, tmp_path: Path) -> None:
    build = _copy_build(census_build, tmp_path)
    uri = str(build / "soma" / "cellcensus_genes" / "mus_musculus" / "X" / "normalized")
    with soma.SparseNDArray.open(uri, "w") as arr:  # one value X does not hold
        n_var = arr.shape[1]
        x_uri = str(build / "soma" / "census_data" / "mus_musculus" / "ms" / "RNA" / "X" / "raw")
        with soma.SparseNDArray.open(x_uri) as x:
            stored = x.read(coords=([0],)).tables().concat()["soma_dim_1"].to_numpy()
        free = int(np.setdiff1d(np.arange(n_var), stored)[0])
        arr.write(
            pa.Table.from_pydict(
                {
                    "soma_dim_0": pa.array([0], pa.int64()),
                    "soma_dim_1": pa.array([free], pa.int64()),
                    "soma_data": pa.array([1.0], pa.float32()),
                }
            )
        )
    with pytest.raises(IntegrityError, match=r"cellcensus_genes/mus_musculus/X/normalized"):
        validate_build(build, sample_cells=8)


def test_validation_finds_a_missing_summary(census_build: Path, tmp_path: Path) -> None:
    build = _copy_build(census_build, tmp_path)
    uri = str(build / "soma" / "cellcensus_genes" / "homo_sapiens")
    with soma.Collection[Any].open(uri, "d") as coll:
        del coll["expression_summary"]
    with pytest.raises(
        IntegrityError, match=r"cellcensus_genes/homo_sapiens has no expression_summary"
    ):
        validate_build(build, sample_cells=8)


def test_validation_finds_missing_copies_of_a_gene_major_build(
    census_build: Path, tmp_path: Path
) -> None:
    build = _copy_build(census_build, tmp_path)
    uri = str(build / "soma" / "cellcensus_genes" / "homo_sapiens")
    with soma.Collection[Any].open(uri, "d") as coll:
        del coll["X"]
    with pytest.raises(IntegrityError, match=r"gene-major copies missing"):
        validate_build(build, sample_cells=8)


@pytest.mark.parametrize("organism", ORGANISMS)
def test_obs_copy_holds_exactly_obs(census_build: Path, organism: str) -> None:
    path = census_build / "soma" / "cellcensus_genes" / organism / OBS_COPY
    with soma.DataFrame.open(str(census_build / "soma" / "census_data" / organism / "obs")) as obs:
        want = obs.read().concat().sort_by("soma_joinid")
        assert compare_obs_copy(obs, path) == want.num_rows > 0
    assert read_obs_copy(path, None).equals(want)
    two = read_obs_copy(path, ["cell_type", "soma_joinid"])
    assert two.equals(want.select(["cell_type", "soma_joinid"]))
    with pytest.raises(KeyError, match="no_such_column"):
        read_obs_copy(path, ["no_such_column"])


def test_no_gene_major_build_has_no_obs_copy(other_build: Path) -> None:
    assert not list((other_build / "soma").rglob(OBS_COPY))


def _rewrite_copy(path: Path, table: pa.Table) -> None:
    from pyarrow import ipc

    with ipc.new_file(str(path), table.schema) as w:
        w.write_table(table)


@pytest.mark.parametrize("damage", ["a value", "a row short", "missing"])
def test_validation_finds_a_damaged_or_missing_obs_copy(
    census_build: Path, tmp_path: Path, damage: str
) -> None:
    build = _copy_build(census_build, tmp_path)
    path = build / "soma" / "cellcensus_genes" / "homo_sapiens" / OBS_COPY
    table = read_obs_copy(path, None)
    if damage == "a value":
        raw_sum = table["raw_sum"].to_numpy().copy()
        raw_sum[7] += 1.0
        table = table.set_column(table.schema.get_field_index("raw_sum"), "raw_sum", [raw_sum])
        _rewrite_copy(path, table)
        match = r"homo_sapiens/obs.arrow: rows 0-\d+ differ from obs"
    elif damage == "a row short":
        _rewrite_copy(path, table.slice(0, table.num_rows - 1))
        match = r"homo_sapiens/obs.arrow ends at row \d+; obs has more rows"
    else:
        path.unlink()
        match = r"homo_sapiens/obs.arrow is missing"
    with pytest.raises(IntegrityError, match=match):
        validate_build(build, sample_cells=8)


class _FailingObs:
    """Stands in for an obs DataFrame whose reads fail after the first one."""

    def __init__(self, obs: soma.DataFrame) -> None:
        self.obs = obs
        self.count = obs.count
        self.reads = 0

    def non_empty_domain(self) -> Any:
        return self.obs.non_empty_domain()

    def read(self, **kwargs: Any) -> Any:
        self.reads += 1
        if self.reads > 1:
            msg = "storage went away"
            raise OSError(msg)
        return self.obs.read(**kwargs)


def test_an_interrupted_obs_copy_leaves_no_file(census_build: Path, tmp_path: Path) -> None:
    path = tmp_path / OBS_COPY
    with soma.DataFrame.open(
        str(census_build / "soma" / "census_data" / "mus_musculus" / "obs")
    ) as o:
        failing = _FailingObs(o)
        with pytest.raises(OSError, match="storage went away"):
            write_obs_copy(failing, path, chunk_rows=max(1, o.count // 3))  # type: ignore[arg-type]
    assert failing.reads == 2  # the first chunk was written
    assert list(tmp_path.iterdir()) == []


def test_obs_copy_in_chunks_equals_obs(census_build: Path, tmp_path: Path) -> None:
    """Written and compared a few rows at a time, the copy is obs; a changed row is found."""
    path = tmp_path / OBS_COPY
    with soma.DataFrame.open(
        str(census_build / "soma" / "census_data" / "mus_musculus" / "obs")
    ) as o:
        rows = o.count
        assert write_obs_copy(o, path, chunk_rows=7) == rows
        assert read_obs_copy(path, None).equals(o.read().concat())
        assert compare_obs_copy(o, path) == rows
        table = o.read().concat()
    changed = table.set_column(
        table.schema.get_field_index("nnz"),
        "nnz",
        pa.array([*table["nnz"].to_pylist()[:-1], -1], table.schema.field("nnz").type),
    )
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, changed.schema) as writer:
        writer.write_table(changed, max_chunksize=5)
    with (
        soma.DataFrame.open(
            str(census_build / "soma" / "census_data" / "mus_musculus" / "obs")
        ) as o,
        pytest.raises(IntegrityError, match=f"rows .*{rows - 1} differ"),
    ):
        compare_obs_copy(o, path)


def test_small_build_result_is_validated(small_build: BuildResult) -> None:
    """The shared build ran with copies and passed its validation (which covers them)."""
    import json

    settings = json.loads((small_build.out_dir / "build.json").read_text())["settings"]
    assert settings["gene_major"] is True


@pytest.mark.slow  # 12 s: another build for it
def test_default_build_copies_raw_only_and_validation_holds_it_to_its_settings(
    small_corpus: SynthCorpus, census_build: Path, tmp_path: Path
) -> None:
    """Default settings copy X/raw only; validation checks the copies against the build's
    ``gene_major_layers`` (a copy missing or one too many is damage)."""
    out = tmp_path / "2026-11-01"
    build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(tag="2026-11-01", validation_sample_cells=8),
    )
    settings = json.loads((out / "build.json").read_text())["settings"]
    assert settings["gene_major_layers"] == ["raw"]
    with soma.Collection[Any].open(str(out / "soma")) as census:
        for organism in ORGANISMS:
            assert set(census["cellcensus_genes"][organism]["X"]) == {"raw"}
    # claimed both layers: the normalized copy is missing
    bj = json.loads((out / "build.json").read_text())
    bj["settings"]["gene_major_layers"] = ["raw", "normalized"]
    (out / "build.json").write_text(json.dumps(bj))
    with pytest.raises(IntegrityError, match=r"X has no copy of layer normalized"):
        validate_build(out, sample_cells=8)
    # a build of both layers that claims raw only: one copy too many
    both = _copy_build(census_build, tmp_path / "both")
    bj = json.loads((both / "build.json").read_text())
    bj["settings"]["gene_major_layers"] = ["raw"]
    (both / "build.json").write_text(json.dumps(bj))
    with pytest.raises(IntegrityError, match=r"copies of \['normalized'\]"):
        validate_build(both, sample_cells=8)


@pytest.mark.slow  # 10 s: another build for it
def test_a_copy_of_normalized_only_holds_the_normalized_values(
    small_corpus: SynthCorpus, tmp_path: Path
) -> None:
    """``gene_major_layers=("normalized",)``: the one copy holds X/normalized (the spill once
    paired the build's first copy with the raw values, whatever its layer)."""
    out = tmp_path / "2026-11-01"
    build_census(
        small_corpus.manifest_path,
        out,
        options=BuildOptions(
            tag="2026-11-01", validation_sample_cells=8, gene_major_layers=("normalized",)
        ),
    )
    with soma.Collection[Any].open(str(out / "soma")) as census:
        for organism in ORGANISMS:
            x = census["census_data"][organism].ms["RNA"].X
            copies = census["cellcensus_genes"][organism]["X"]
            assert set(copies) == {"normalized"}
            want = _sorted_x(x["normalized"])
            assert want.num_rows > 0
            assert _sorted_x(copies["normalized"]).equals(want), organism


@pytest.mark.parametrize("layers", [(), ("raw", "raw"), ("counts",)])
def test_gene_major_layers_must_name_x_layers_once(
    small_corpus: SynthCorpus, tmp_path: Path, layers: tuple[str, ...]
) -> None:
    with pytest.raises(BadInputError, match="gene_major_layers must name X layers"):
        build_census(
            small_corpus.manifest_path,
            tmp_path / "out",
            options=BuildOptions(tag="2026-11-01", gene_major_layers=layers),
        )
