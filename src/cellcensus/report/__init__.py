"""Release reports: what is in a build, what changed since another one, as HTML and JSON.

Every published build carries ``report.html`` (one static page, charts as inline SVG) and
``report.json`` (the same numbers, with a ``format_version``). Numbers are given per collection
(``census_data``, and ``census_spatial_sequencing`` for builds with spatial datasets) and
organism; totals cover both. See ``docs/reports.md``.

>>> from cellcensus.report import build_report, render_html     # doctest: +SKIP
>>> report = build_report("s3://bucket/cell-census/", "latest")  # doctest: +SKIP
"""

from __future__ import annotations

from cellcensus.report._collect import CHART_CATEGORIES, Sizes, summarize_census
from cellcensus.report._diff import diff_summaries
from cellcensus.report._html import render_html
from cellcensus.report._listing import ReleaseRow, list_releases
from cellcensus.report._model import (
    CENSUS_DATA,
    CENSUS_SPATIAL,
    REPORT_FORMAT_VERSION,
    BuildReport,
    BuildSummary,
    CategoryCount,
    CategoryDelta,
    DatasetChange,
    DatasetInfo,
    Histogram,
    OrganismDelta,
    OrganismSummary,
    ReleaseDiff,
    SchemaChange,
    Totals,
)
from cellcensus.report._release import (
    REPORT_HTML,
    REPORT_JSON,
    StagedReport,
    build_report,
    diff_builds,
    make_report,
    previous_build,
    read_published_report,
    stage_publish_report,
    summarize_build_dir,
    summarize_published,
    write_report,
)

__all__ = [
    "CENSUS_DATA",
    "CENSUS_SPATIAL",
    "CHART_CATEGORIES",
    "REPORT_FORMAT_VERSION",
    "REPORT_HTML",
    "REPORT_JSON",
    "BuildReport",
    "BuildSummary",
    "CategoryCount",
    "CategoryDelta",
    "DatasetChange",
    "DatasetInfo",
    "Histogram",
    "OrganismDelta",
    "OrganismSummary",
    "ReleaseDiff",
    "ReleaseRow",
    "SchemaChange",
    "Sizes",
    "StagedReport",
    "Totals",
    "build_report",
    "diff_builds",
    "diff_summaries",
    "list_releases",
    "make_report",
    "previous_build",
    "read_published_report",
    "render_html",
    "stage_publish_report",
    "summarize_build_dir",
    "summarize_census",
    "summarize_published",
    "write_report",
]
