"""The numbers of a release report equal an independent recomputation from the census itself
(obs, var and X read with tiledbsoma; datasets from census_info and the H5AD files)."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pytest
import tiledbsoma

from cellcensus.release import read_manifest, sync, verify
from cellcensus.release._local import LocalRoot
from cellcensus.report import BuildReport, OrganismSummary, summarize_build_dir
from cellcensus.report._collect import SUMMARY_CATEGORIES
from cellcensus.report._model import BINS_PER_DECADE, CENSUS_DATA, CENSUS_SPATIAL

from .conftest import TAG

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


def _obs(exp: tiledbsoma.Experiment) -> pd.DataFrame:
    names = exp.obs.schema.names
    cols = ["dataset_id", "is_primary_data", "nnz", "raw_sum"]
    for cat in SUMMARY_CATEGORIES:
        cols += [c for c in (cat, f"{cat}_ontology_term_id") if c in names]
    # pyarrow has no type hints: Table.to_pandas() is untyped
    return cast("pd.DataFrame", exp.obs.read(column_names=cols).concat().to_pandas())


@pytest.fixture(scope="module")
def report(published_root: Path) -> BuildReport:
    return BuildReport.from_json((published_root / TAG / "report.json").read_bytes())


def test_published_build_lists_its_report_and_still_verifies(
    published_root: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(LocalRoot(published_root), TAG).by_path()
    html = published_root / TAG / "report.html"
    data = published_root / TAG / "report.json"
    for path in (html, data):
        assert manifest[path.name].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert verify(published_root, TAG).ok
    res = sync(published_root, TAG, tmp_path / "copy")
    assert (tmp_path / "copy" / "report.html").read_bytes() == html.read_bytes()
    assert res.total_objects == len(manifest)
    doc = json.loads(data.read_bytes())
    assert doc["format_version"] == 2
    assert list(doc)[:2] == ["format_version", "totals"]
    assert doc["diff"] is None  # the first build of the root has nothing to compare with


def _check_experiment(org: OrganismSummary, exp: tiledbsoma.Experiment, obs: pd.DataFrame) -> None:
    """``org``'s numbers against ``exp`` and its obs, recomputed here with pandas."""
    assert org.total_cells == len(obs)
    assert org.unique_cells == int(obs["is_primary_data"].sum())
    assert org.datasets == obs["dataset_id"].nunique()
    assert org.genes == exp.ms["RNA"].var.count
    x_nnz = sum(t.num_rows for t in exp.ms["RNA"].X["raw"].read().tables())
    assert org.nnz == x_nnz == int(obs["nnz"].sum())
    # every category of census_info/summary_cell_counts, for both collections
    assert set(org.categories) == set(SUMMARY_CATEGORIES)
    for cat in SUMMARY_CATEGORIES:
        term = f"{cat}_ontology_term_id"
        keys = [cat, term] if term in obs else [cat]
        expect = obs.groupby(keys, observed=True)["is_primary_data"].agg(["size", "sum"])
        want = {
            (str(k[0]), str(k[1]) if len(keys) == 2 else "na"): (int(r["size"]), int(r["sum"]))
            for k, r in ((k if isinstance(k, tuple) else (k,), r) for k, r in expect.iterrows())
        }
        got = {
            (c.label, c.ontology_term_id): (c.total_cells, c.unique_cells)
            for c in org.categories[cat]
        }
        if cat == "suspension_type" and len(want) > 1:
            # no term ids: summary_cell_counts has one "na" row whatever the labels
            got_sums = [sum(v[i] for v in got.values()) for i in (0, 1)]
            assert got_sums == [sum(v[i] for v in want.values()) for i in (0, 1)]
        else:
            assert got == want, (org.name, cat)
        totals = [c.total_cells for c in org.categories[cat]]
        assert totals == sorted(totals, reverse=True)
    for col in ("nnz", "raw_sum"):
        h = org.histograms[col]
        values = obs[col].to_numpy(dtype=np.float64)
        assert h.count == len(values)
        assert h.min == values.min()
        assert h.max == values.max()
        assert h.mean == pytest.approx(values.mean(), rel=1e-12)
        pos = values[values >= 1]
        assert h.below_one == len(values) - len(pos)
        idx = np.floor(np.log10(pos) * BINS_PER_DECADE + 1e-9).astype(int)
        want_counts = np.bincount(idx - idx.min())
        assert h.first_bin == idx.min()
        assert list(h.counts) == want_counts.tolist()


def test_report_numbers_equal_the_census(report: BuildReport, published_root: Path) -> None:
    """Both collections, each organism apart; totals equal census_info/summary's."""
    s = report.summary
    soma_uri = str(published_root / TAG / "soma")
    per_dataset: dict[str, tuple[str, str, int]] = {}
    with tiledbsoma.Collection[Any].open(soma_uri) as census:
        summary = census["census_info"]["summary"].read().concat().to_pandas()
        versions = dict(zip(summary["label"], summary["value"], strict=True))
        assert s.census_schema_version == versions["census_schema_version"]
        assert s.dataset_schema_version == versions["dataset_schema_version"]
        # the totals cover census_data and census_spatial_sequencing, as census_info's do
        assert s.total_cells == int(versions["total_cell_count"])
        assert s.unique_cells == int(versions["unique_cell_count"])
        assert not s.notes
        cells = {}
        for collection, find in ((CENSUS_DATA, s.organism), (CENSUS_SPATIAL, s.spatial_organism)):
            seen = []
            for name in sorted(census[collection].keys()):
                exp = census[collection][name]
                obs = _obs(exp)
                cells[collection, name] = len(obs)
                if obs.empty:
                    assert find(name) is None
                    continue
                seen.append(name)
                org = find(name)
                assert org is not None
                _check_experiment(org, exp, obs)
                for did, n in obs["dataset_id"].value_counts().items():
                    per_dataset[str(did)] = (collection, name, int(n))
            listed = s.organisms if collection == CENSUS_DATA else s.spatial_organisms
            assert [o.name for o in listed] == sorted(seen, key=lambda n: -cells[collection, n])
        datasets = census["census_info"]["datasets"].read().concat().to_pandas()
    # the shared test corpus has a human Visium and a mouse Slide-seqV2 dataset
    assert [o.name for o in s.spatial_organisms] == ["homo_sapiens", "mus_musculus"]
    assert s.spatial_cells == sum(n for (c, _), n in cells.items() if c == CENSUS_SPATIAL) > 0
    assert s.total_cells == sum(cells.values())
    assert s.nnz == sum(o.nnz or 0 for o in (*s.organisms, *s.spatial_organisms))
    assert {d.dataset_id for d in s.datasets} == set(datasets["dataset_id"]) == set(per_dataset)
    for d in s.datasets:
        collection, organism, n = per_dataset[d.dataset_id]
        assert (d.collection, d.organism, d.cells) == (collection, organism, n)
        h5ad = published_root / TAG / "h5ads" / f"{d.dataset_id}.h5ad"
        assert d.sha256 == hashlib.sha256(h5ad.read_bytes()).hexdigest()
        assert d.h5ad_bytes == h5ad.stat().st_size
        row = datasets[datasets["dataset_id"] == d.dataset_id].iloc[0]
        assert d.dataset_version_id == row["dataset_version_id"]
        assert d.title == row["dataset_title"]
    manifest = read_manifest(LocalRoot(published_root), TAG)
    assert s.soma_bytes == sum(o.size for o in manifest.objects if o.path.startswith("soma/"))
    assert s.h5ads_bytes == sum(o.size for o in manifest.objects if o.path.startswith("h5ads/"))
    totals = json.loads((published_root / TAG / "report.json").read_bytes())["totals"]
    assert report.summary.totals().to_dict() == totals
    assert totals["spatial_cells"] == s.spatial_cells
    assert totals["organisms"] == 2


def test_summary_without_histograms_reads_only_what_the_diff_needs(
    census_build: Path, report: BuildReport
) -> None:
    light = summarize_build_dir(census_build, tag=TAG, histograms=False)
    assert all(not o.histograms for o in light.organisms)
    full = report.summary
    assert light.datasets == full.datasets
    assert light.totals() == full.totals()
    assert light.notes == full.notes == ()
    for a, b in zip(
        (*light.organisms, *light.spatial_organisms),
        (*full.organisms, *full.spatial_organisms),
        strict=True,
    ):
        assert (a.name, a.total_cells, a.unique_cells, a.genes, a.nnz, a.datasets) == (
            b.name,
            b.total_cells,
            b.unique_cells,
            b.genes,
            b.nnz,
            b.datasets,
        )
        assert a.categories == b.categories
