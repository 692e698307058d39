"""Units of the report: histograms, JSON models, totals head, baseline choice, pure diff,
SVG and HTML rendering (escaping, determinism)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from cellcensus._formats.directory import Locator, ReleaseDirectory, ReleaseEntry
from cellcensus.errors import IntegrityError
from cellcensus.report import (
    BuildReport,
    BuildSummary,
    CategoryCount,
    DatasetInfo,
    OrganismSummary,
    diff_summaries,
    make_report,
    previous_build,
    render_html,
)
from cellcensus.report._collect import _HistogramAcc
from cellcensus.report._model import BINS_PER_DECADE, read_totals
from cellcensus.report._svg import Bar, bar_chart, histogram_chart

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence


# ---------------------------------------------------------------------------- histograms
def test_histogram_matches_numpy_on_log_bins() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [rng.lognormal(7, 1.5, 5000), [0.0, 0.0, 0.5, 1.0, 10.0, 100.0, 1000.0, 1e6], [2e12]]
    )
    acc = _HistogramAcc()
    for part in np.array_split(values, 7):  # fed in batches
        acc.add(part)
    h = acc.result()
    assert h.count == len(values)
    assert h.below_one == 3
    assert h.min == 0.0
    assert h.max == 2e12
    assert h.mean == pytest.approx(values.mean())
    edges = [h.edge(i) for i in range(len(h.counts) + 1)]
    inside = values[(values >= 1) & (values < edges[-1])]
    want, _ = np.histogram(inside, bins=edges)
    got = np.array(h.counts)
    got[-1] -= 1  # 2e12 is clipped into the last bin (values above 1e9)
    assert got.tolist() == want.tolist()
    # exact powers of ten start their own bin
    for p in (1.0, 10.0, 100.0, 1000.0):
        i = round(math.log10(p) * BINS_PER_DECADE) - h.first_bin
        assert h.edge(i) == pytest.approx(p)
    median = h.quantile(0.5)
    assert median == pytest.approx(np.median(values), rel=0.13)  # within one bin


def test_empty_histogram() -> None:
    h = _HistogramAcc().result()
    assert (h.count, h.counts, h.min, h.quantile(0.5)) == (0, (), None, None)
    assert "no values" in histogram_chart(h, title="t", xlabel="x")


# ---------------------------------------------------------------------------- models
def _summary(
    tag: str,
    *,
    datasets: Iterable[DatasetInfo] = (),
    organisms: Sequence[OrganismSummary] = (),
    census_schema_version: str = "2.4.0",
    inputs: Mapping[str, int] | None = None,
    notes: tuple[str, ...] = (),
) -> BuildSummary:
    return BuildSummary(
        tag=tag,
        census_schema_version=census_schema_version,
        dataset_schema_version="7.0.0",
        total_cells=sum(o.total_cells for o in organisms),
        unique_cells=sum(o.unique_cells or 0 for o in organisms),
        soma_bytes=1000,
        h5ads_bytes=500,
        datasets=tuple(datasets),
        organisms=tuple(organisms),
        inputs={} if inputs is None else inputs,
        notes=notes,
    )


def _org(name: str, cells: int, cats: dict[str, list[tuple[str, str, int]]]) -> OrganismSummary:
    return OrganismSummary(
        name=name,
        label=name.replace("_", " ").capitalize(),
        total_cells=cells,
        unique_cells=cells,
        genes=100,
        nnz=cells * 10,
        datasets=1,
        categories={
            c: tuple(
                CategoryCount(label=a, ontology_term_id=b, total_cells=n, unique_cells=n)
                for a, b, n in rows
            )
            for c, rows in cats.items()
        },
    )


def test_report_json_round_trips_and_is_deterministic() -> None:
    acc = _HistogramAcc()
    acc.add(np.array([1.0, 5.0, 50.0, 5000.0]))
    org = OrganismSummary(
        name="homo_sapiens",
        label="Homo sapiens",
        total_cells=4,
        unique_cells=3,
        genes=10,
        nnz=40,
        datasets=1,
        categories={
            "assay": (
                CategoryCount(label="10x", ontology_term_id="EFO:1", total_cells=4, unique_cells=3),
            )
        },
        histograms={"nnz": acc.result()},
    )
    a = _summary(
        "2026-01-01",
        organisms=[org],
        datasets=[DatasetInfo(dataset_id="d1", cells=4, sha256="a" * 64)],
        notes=("a note",),
        inputs={"total": 2, "included": 1, "excluded": 1},
    )
    b = _summary("2026-01-08", organisms=[org], datasets=[DatasetInfo(dataset_id="d2", cells=4)])
    rep = make_report(b, a)
    data = rep.to_json()
    again = BuildReport.from_json(data)
    assert again == rep
    assert again.to_json() == data
    assert list(json.loads(data))[:2] == ["format_version", "totals"]
    totals = read_totals(data[:400])
    assert totals == b.totals()
    assert read_totals(data[:40]) is None  # head too short: the caller reads the whole file


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format_version=99), "format_version 99"),
        (lambda d: d["summary"].update(total_cells="many"), "'total_cells' must be an integer"),
        (lambda d: d["summary"].update(organisms={}), "'organisms' must be a list"),
        (lambda d: d["diff"].update(total_cells=[1]), "'total_cells' must be \\[old, new\\]"),
        (lambda d: d["summary"]["organisms"][0].update(name=None), "'name' must be a string"),
    ],
)
def test_malformed_report_json_is_refused_with_the_key(
    mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    org = _org("homo_sapiens", 5, {"assay": [("10x", "EFO:1", 5)]})
    rep = make_report(_summary("b", organisms=[org]), _summary("a", organisms=[org]))
    doc = json.loads(rep.to_json())
    mutate(doc)
    with pytest.raises(IntegrityError, match=message):
        BuildReport.from_json(json.dumps(doc).encode(), where="x/report.json")
    with pytest.raises(IntegrityError, match="not valid JSON"):
        BuildReport.from_json(b"{not json", where="x/report.json")


@pytest.mark.parametrize("data", [b"{not json", b"\xff\xfe"])
def test_report_json_that_is_not_json_fails_as_other_formats_do(data: bytes) -> None:
    """The shared parser's message (``where: not valid JSON (...); advice``), as IntegrityError."""
    want = r"^x/report\.json: not valid JSON \(.+\); regenerate it with `cellcensus report`$"
    with pytest.raises(IntegrityError, match=want):
        BuildReport.from_json(data, where="x/report.json")


# ---------------------------------------------------------------------------- baseline
def _entry(tag: str, *, retracted: bool = False, date: str | None = None) -> ReleaseEntry:
    loc = Locator(uri=f"file:///r/{tag}/soma/", relative_uri=f"r/{tag}/soma/")
    return ReleaseEntry(
        release_build=tag, soma=loc, h5ads=loc, release_date=date, retracted=retracted
    )


def test_previous_build_is_the_newest_non_retracted_one_before() -> None:
    d = ReleaseDirectory(
        builds={
            e.tag: e
            for e in (
                _entry("2026-01-01"),
                _entry("2026-01-08"),
                _entry("2026-01-15", retracted=True),
                _entry("2026-01-22"),
                _entry("nightly", date="2026-01-10"),
            )
        }
    )
    assert previous_build(d, "2026-01-29") == "2026-01-22"
    assert previous_build(d, "2026-01-22") == "nightly"  # ordered by its release date
    assert previous_build(d, "2026-01-20") == "nightly"  # skips the retracted 01-15
    assert previous_build(d, "2026-01-08") == "2026-01-01"
    assert previous_build(d, "2026-01-01") is None
    assert previous_build(d, "custom", release_date=dt.date(2026, 1, 9)) == "2026-01-08"
    assert previous_build(ReleaseDirectory(), "2026-01-01") is None


# ---------------------------------------------------------------------------- pure diff
def test_diff_of_hand_made_summaries() -> None:
    old = _summary(
        "a",
        census_schema_version="2.3.0",
        datasets=[
            DatasetInfo(dataset_id="same", dataset_version_id="v1", sha256="1" * 64),
            DatasetInfo(dataset_id="newversion", dataset_version_id="v1"),
            DatasetInfo(dataset_id="newfile", sha256="2" * 64),
            DatasetInfo(dataset_id="unknown"),  # nothing to compare by: not changed
            DatasetInfo(dataset_id="gone"),
        ],
        organisms=[
            _org("homo_sapiens", 10, {"assay": [("10x", "EFO:1", 6), ("ss2", "EFO:2", 4)]}),
            _org("mus_musculus", 3, {"assay": [("10x", "EFO:1", 3)]}),
        ],
    )
    new = _summary(
        "b",
        datasets=[
            DatasetInfo(dataset_id="same", dataset_version_id="v1", sha256="1" * 64),
            DatasetInfo(dataset_id="newversion", dataset_version_id="v2"),
            DatasetInfo(dataset_id="newfile", sha256="3" * 64),
            DatasetInfo(dataset_id="unknown", sha256="4" * 64),
            DatasetInfo(dataset_id="fresh"),
        ],
        organisms=[
            _org("homo_sapiens", 13, {"assay": [("10x", "EFO:1", 6), ("v3", "EFO:3", 7)]}),
            _org("macaca_mulatta", 2, {"assay": [("10x", "EFO:1", 2)]}),
        ],
    )
    d = diff_summaries(old, new)
    assert [c.field for c in d.schema_changes] == ["census_schema_version"]
    assert [x.dataset_id for x in d.added] == ["fresh"]
    assert [x.dataset_id for x in d.removed] == ["gone"]
    assert {c.dataset_id: c.reasons for c in d.changed} == {
        "newfile": ("sha256",),
        "newversion": ("dataset_version_id",),
    }
    assert d.total_cells == (13, 15)
    orgs = {o.name: o for o in d.organisms}
    assert [o.name for o in d.organisms] == ["homo_sapiens", "macaca_mulatta", "mus_musculus"]
    human = orgs["homo_sapiens"]
    assert human.total_cells == (10, 13)
    assert [(c.label, c.total_cells) for c in human.categories["assay"]] == [
        ("v3", (None, 7)),  # largest change first; unchanged 10x is not listed
        ("ss2", (4, None)),
    ]
    assert orgs["mus_musculus"].total_cells == (3, None)
    assert orgs["macaca_mulatta"].genes == (None, 100)
    assert diff_summaries(new, new).identical_datasets


# ---------------------------------------------------------------------------- rendering
EVIL = '<img src=x onerror="alert(1)">&'


def test_svg_escapes_truncates_and_is_deterministic() -> None:
    bars = [Bar(EVIL * 5, 1000), Bar("b", 10), Bar("other (3 terms)", 5, muted=True)]
    svg = bar_chart(bars, title=EVIL)
    assert "<img" not in svg
    assert "&lt;img" in svg
    assert "\u2026" in svg  # the long label is truncated (full text in the tooltip)
    assert svg == bar_chart(bars, title=EVIL)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert "no cells" in bar_chart([], title="t")


def test_html_escapes_data_and_is_deterministic() -> None:
    org = _org("homo_sapiens", 5, {"cell_type": [(EVIL, "CL:1", 5)]})
    s = _summary(
        "2026-01-01",
        organisms=[org],
        datasets=[DatasetInfo(dataset_id="d1", title=EVIL, collection_name=EVIL)],
    )
    rep = make_report(s, _summary("2025-12-25", datasets=[DatasetInfo(dataset_id="d0")]))
    page = render_html(rep)
    assert "<img" not in page
    assert page.count("&lt;img src=x") >= 2
    assert page == render_html(BuildReport.from_json(rep.to_json()))
    assert "Changes since 2025-12-25" in page
    assert "<script" not in page


# ---------------------------------------------------------------------------- spatial split
def _cc(label: str, term: str, total: int, unique: int | None = None) -> CategoryCount:
    return CategoryCount(
        label=label,
        ontology_term_id=term,
        total_cells=total,
        unique_cells=total if unique is None else unique,
    )


@pytest.mark.parametrize(
    ("rows", "minus", "want"),
    [
        # by label and term; a row left empty is dropped
        (
            [_cc("10x", "EFO:1", 10), _cc("Visium", "EFO:2", 5)],
            {("Visium", "EFO:2"): (5, 5)},
            [_cc("10x", "EFO:1", 10)],
        ),
        # no term ids (suspension_type): one "na" row, labelled by the experiment counted first
        ([_cc("cell", "na", 12, 9)], {("na", "na"): (4, 4)}, [_cc("cell", "na", 8, 5)]),
        # more spatial cells than the row holds, or a term it lacks: not the same cells
        ([_cc("10x", "EFO:1", 3)], {("10x", "EFO:1"): (4, 4)}, None),
        ([_cc("10x", "EFO:1", 3)], {("Visium", "EFO:2"): (1, 1)}, None),
        # an ambiguous label among several rows of one term
        ([_cc("cell", "na", 3), _cc("nucleus", "na", 3)], {("na", "na"): (1, 1)}, None),
    ],
)
def test_spatial_counts_are_taken_off_summary_cell_counts(
    rows: list[CategoryCount],
    minus: dict[tuple[str, str], tuple[int, int]],
    want: list[CategoryCount] | None,
) -> None:
    from cellcensus.report._collect import _subtract

    assert _subtract(rows, minus) == want


def test_version_1_report_reads_with_empty_spatial_parts() -> None:
    org = _org("homo_sapiens", 5, {"assay": [("10x", "EFO:1", 5)]})
    rep = make_report(_summary("b", organisms=[org]), _summary("a", organisms=[org]))
    doc = json.loads(rep.to_json())
    assert doc["format_version"] == 2
    doc["format_version"] = 1
    for part in (doc["totals"], doc["summary"], doc["diff"]):
        for key in ("spatial_cells", "spatial_organisms"):
            part.pop(key, None)
    old = BuildReport.from_json(json.dumps(doc).encode())
    assert old.format_version == 1
    assert old.summary.spatial_organisms == ()
    assert old.diff is not None
    assert (old.diff.spatial_cells, old.diff.spatial_organisms) == ((None, None), ())
    assert old.summary == rep.summary
    totals = read_totals(json.dumps(doc).encode())
    assert totals is not None
    assert totals.spatial_cells is None
    doc["format_version"] = True  # a JSON boolean is not version 1
    with pytest.raises(IntegrityError, match="format_version True"):
        BuildReport.from_json(json.dumps(doc).encode())
