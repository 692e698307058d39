"""Builds with spatial datasets (``census_spatial_sequencing``): the report counts each collection
apart, diffs compare them apart, the page has spatial sections, and version-1 reports (which
counted ``census_data`` only) still load, and are recomputed or bypassed where they would be wrong.

The shared test build (``census_build``) holds a human Visium V1 and a mouse Slide-seqV2 dataset.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import tiledbsoma

from cellcensus.release import publish
from cellcensus.release._local import LocalRoot
from cellcensus.report import (
    BuildReport,
    diff_builds,
    list_releases,
    render_html,
    summarize_published,
)
from cellcensus.report._model import CENSUS_DATA, CENSUS_SPATIAL, read_totals
from tests._cli import python_path_env, run_cli

from .conftest import TAG, TAG_A, DiffCase

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path


class _Headings(HTMLParser):
    """h2 / h3 texts, section ids and SVG count of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.sections: list[str] = []
        self.svg = 0
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.sections.append(dict(attrs).get("id") or "")
        if tag == "svg":
            self.svg += 1
        if tag in ("h2", "h3"):
            self._in, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self.headings.append((tag, " ".join("".join(self._text).split())))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text.append(data)


def _version_1(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (a version-2 report.json) as cellcensus wrote it before version 2: census_data
    organisms only, no collection per dataset, totals of census_data."""
    s = doc["summary"]
    data_cells = sum(o["total_cells"] for o in s["organisms"])
    data_unique = sum(o["unique_cells"] for o in s["organisms"])
    s.pop("spatial_organisms")
    for d in s["datasets"]:
        d.pop("collection")
    s["total_cells"], s["unique_cells"] = data_cells, data_unique
    totals = dict(doc["totals"], cells=data_cells, unique_cells=data_unique)
    totals.pop("spatial_cells")
    return {
        "format_version": 1,
        "totals": totals,
        **{k: doc[k] for k in ("generator", "summary", "diff")},
    }


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = python_path_env({"COLUMNS": "220", "PATH": "/usr/bin:/bin", "HOME": "/tmp"})
    return run_cli(*args, env=env, timeout=300)


def test_page_has_a_section_per_spatial_organism(published_root: Path) -> None:
    report = BuildReport.from_json((published_root / TAG / "report.json").read_bytes())
    page = (published_root / TAG / "report.html").read_text()
    assert page == render_html(report)
    parsed = _Headings()
    parsed.feed(page)
    h2 = [t for tag, t in parsed.headings if tag == "h2"]
    h3 = [t for tag, t in parsed.headings if tag == "h3"]
    assert h2 == [
        "Summary",
        "Changes",
        "Homo sapiens",
        "Mus musculus",
        "Homo sapiens · spatial",
        "Mus musculus · spatial",
        "Datasets (9)",
    ]
    assert "Spatial sequencing per organism" in h3
    assert "spatial-homo_sapiens" in parsed.sections
    assert "spatial-mus_musculus" in parsed.sections
    # 4 category charts and 2 histograms per experiment, census_data and spatial
    assert parsed.svg == 6 * 4
    s = report.summary
    assert f"{s.spatial_cells:,} spatial" in page  # the cells card
    visium = s.spatial_organism("homo_sapiens")
    assert visium is not None
    assert f"{visium.total_cells:,} cells" in page
    assert page.count("(spatial)") >= 2  # the two spatial datasets in the dataset table


def test_diff_compares_each_collection_apart(
    diff_case: DiffCase, census_build: Path, tmp_path: Path
) -> None:
    """The spatial build published before the two single-cell builds of ``diff_case``: from it
    to build A, the spatial experiments go away, and are reported as such (not as a drop in the
    census_data organisms' cells)."""
    root = tmp_path / "root"
    shutil.copytree(diff_case.root, root)
    publish(census_build, root, tag=TAG)
    d = diff_builds(root, TAG, TAG_A)
    old = summarize_published(LocalRoot(root), TAG, histograms=False)
    new = summarize_published(LocalRoot(root), TAG_A, histograms=False)
    assert new.spatial_organisms == ()
    assert d.spatial_cells == (old.spatial_cells, 0)
    assert d.total_cells == (old.total_cells, new.total_cells)
    assert [o.name for o in d.spatial_organisms] == ["homo_sapiens", "mus_musculus"]
    for o in d.spatial_organisms:
        sp = old.spatial_organism(o.name)
        assert sp is not None
        assert (o.total_cells, o.unique_cells, o.genes) == (
            (sp.total_cells, None),
            (sp.unique_cells, None),
            (sp.genes, None),
        )
        # every term of a vanished experiment goes from its count to nothing
        assert sum(-c.delta for c in o.categories["assay"]) == sp.total_cells
    human = next(o for o in d.organisms if o.name == "homo_sapiens")
    data = old.organism("homo_sapiens")
    new_data = new.organism("homo_sapiens")
    assert data is not None
    assert new_data is not None
    assert human.total_cells == (data.total_cells, new_data.total_cells)
    # census_data's assay terms do not count the Visium spots
    visium = "EFO:0022857"
    assert all(c.ontology_term_id != visium for c in human.categories.get("assay", ()))
    removed = {x.dataset_id: x for x in d.removed}
    assert {x.collection for x in removed.values()} == {CENSUS_DATA, CENSUS_SPATIAL}
    again = BuildReport.from_json(
        json.dumps({"format_version": 2, "totals": old.totals().to_dict(),
                    "summary": old.to_dict(), "diff": d.to_dict()}).encode()
    )  # fmt: skip
    assert again.diff == d

    proc = _cli("diff", str(root), TAG, TAG_A)
    assert proc.returncode == 0, proc.stderr
    assert "per organism (census_spatial_sequencing)" in proc.stdout
    assert "Homo sapiens (spatial): cells by assay" in proc.stdout
    assert "spatial cells" in proc.stdout
    doc = json.loads(_cli("diff", str(root), TAG, TAG_A, "--json").stdout)
    assert doc["format_version"] == 2
    assert doc["spatial_cells"] == [old.spatial_cells, 0]
    assert [o["name"] for o in doc["spatial_organisms"]] == ["homo_sapiens", "mus_musculus"]


def test_version_1_report_of_a_spatial_build(published_root: Path, tmp_path: Path) -> None:
    """A version-1 report.json (census_data numbers only) still loads; where the build has
    spatial cells, the numbers are recomputed and ``releases list`` takes build.json's totals."""
    root = tmp_path / "root"
    shutil.copytree(published_root, root)
    path = root / TAG / "report.json"
    current = BuildReport.from_json(path.read_bytes())
    v1 = json.dumps(_version_1(json.loads(path.read_bytes())), indent=1).encode()
    path.write_bytes(v1)

    old = BuildReport.from_json(v1)
    assert old.format_version == 1
    assert old.summary.spatial_organisms == ()
    assert old.summary.total_cells == current.summary.data_cells
    assert all(d.collection is None for d in old.summary.datasets)
    head = read_totals(v1[:2000])
    assert head is not None
    assert head.spatial_cells is None
    assert json.loads(old.to_json())["format_version"] == 2  # always written as the current one

    # numbers of the build: recomputed from the census (build.json says it has spatial cells)
    s = summarize_published(LocalRoot(root), TAG, histograms=False)
    assert s.totals() == current.summary.totals()
    assert s.spatial_organisms == tuple(
        dataclasses.replace(o, histograms={}) for o in current.summary.spatial_organisms
    )
    # the listing: build.json's totals (both collections) instead of the head's
    build = json.loads((root / TAG / "build.json").read_bytes())
    [row] = list_releases(root)
    assert row.cells == build["summary"]["total_cell_count"] == current.summary.total_cells
    assert row.spatial_cells == current.summary.spatial_cells

    # without spatial cells in build.json, a version-1 report is complete and used as it is
    build["summary"].pop("spatial")
    (root / TAG / "build.json").write_text(json.dumps(build))
    assert summarize_published(LocalRoot(root), TAG) == old.summary
    [row] = list_releases(root)
    assert row.cells == old.summary.total_cells
    assert row.spatial_cells is None


def test_spatial_experiments_are_counted_apart_from_census_data(published_root: Path) -> None:
    """summary_cell_counts mixes each organism's spatial cells into its rows; the report's
    census_data categories hold the census_data cells only (read back with tiledbsoma)."""
    report = BuildReport.from_json((published_root / TAG / "report.json").read_bytes())
    with tiledbsoma.Collection[Any].open(str(published_root / TAG / "soma")) as census:
        scc = census["census_info"]["summary_cell_counts"].read().concat().to_pandas()
        for name in ("homo_sapiens", "mus_musculus"):
            n_data = census[CENSUS_DATA][name].obs.count
            n_spatial = census[CENSUS_SPATIAL][name].obs.count
            mine = scc[(scc["organism"] == name) & (scc["category"] == "all")]
            assert int(mine["total_cell_count"].sum()) == n_data + n_spatial
            data, spatial = report.summary.organism(name), report.summary.spatial_organism(name)
            assert data is not None
            assert spatial is not None
            assert (data.total_cells, spatial.total_cells) == (n_data, n_spatial)
            for cat in ("assay", "tissue", "cell_type", "sex"):
                rows = scc[(scc["organism"] == name) & (scc["category"] == cat)]
                both = dict(zip(rows["ontology_term_id"], rows["total_cell_count"], strict=True))
                split: dict[str, int] = {}
                for c in (*data.categories[cat], *spatial.categories[cat]):
                    split[c.ontology_term_id] = split.get(c.ontology_term_id, 0) + c.total_cells
                assert split == both, (name, cat)
