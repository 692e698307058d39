"""Reports of builds in a release root: make, read, diff, list, and the publish step.

A published build ``<tag>/`` holds ``report.html`` and ``report.json`` (listed in its
``manifest.json`` like every other object). Numbers of a published build are read from its
``report.json`` when it has one (a few kB to a few MB), else computed from its ``soma/``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellcensus._formats.build import BuildInfo
from cellcensus.errors import BadInputError, CellCensusError, IntegrityError, NotFoundError
from cellcensus.release._local import LocalRoot
from cellcensus.release._open import open_root
from cellcensus.release._validate import tag_date
from cellcensus.release.directory import read_directory, read_manifest
from cellcensus.release.verify import resolve_build
from cellcensus.report._collect import Sizes, read_buffer_config, summarize_census
from cellcensus.report._diff import diff_summaries
from cellcensus.report._html import render_html
from cellcensus.report._model import BuildReport, BuildSummary, ReleaseDiff

if TYPE_CHECKING:
    from collections.abc import Mapping

    import tiledbsoma as soma

    from cellcensus._formats.directory import ReleaseDirectory
    from cellcensus._formats.manifest import Manifest
    from cellcensus.release._root import ReleaseRoot
    from cellcensus.settings import Settings

__all__ = [
    "REPORT_HTML",
    "REPORT_JSON",
    "StagedReport",
    "build_report",
    "diff_builds",
    "make_report",
    "previous_build",
    "read_published_report",
    "stage_publish_report",
    "summarize_build_dir",
    "summarize_published",
    "write_report",
]

logger = logging.getLogger(__name__)

#: The first ``report.json`` version with per-collection numbers (``census_spatial_sequencing``).
SPATIAL_SINCE = 2
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
BUILD_JSON = "build.json"


def _generator() -> str:
    from cellcensus import __version__

    return f"cellcensus {__version__}"


def _context(root: ReleaseRoot | None) -> soma.SOMATileDBContext:
    import tiledbsoma as soma

    cfg = read_buffer_config()
    if root is not None and root.is_s3:
        cfg.update(root.settings.tiledb_config())
    return soma.SOMATileDBContext(tiledb_config=cfg)


def _soma_uri(root: ReleaseRoot, tag: str) -> str:
    if isinstance(root, LocalRoot):
        return str(root.path / tag / "soma")
    return root.object_uri(f"{tag}/soma")


def _summarize(
    uri: str,
    *,
    tag: str,
    context: soma.SOMATileDBContext,
    build_info: Mapping[str, Any] | None,
    sizes: Sizes,
    histograms: bool,
) -> BuildSummary:
    """:func:`summarize_census` with storage errors turned into one clear error."""
    import pyarrow as pa
    import tiledb
    import tiledbsoma as soma

    try:
        return summarize_census(
            uri,
            tag=tag,
            context=context,
            build_info=build_info,
            sizes=sizes,
            histograms=histograms,
        )
    except CellCensusError:
        raise
    except (soma.SOMAError, tiledb.TileDBError, pa.ArrowException, OSError) as e:
        msg = (
            f"cannot read the census at {uri} to compute its release report ({type(e).__name__}: "
            f"{e}); check the build with `cellcensus verify` (or `validate` before publishing)"
        )
        raise IntegrityError(msg) from e


# ---------------------------------------------------------------------------- summaries
def summarize_build_dir(
    build_dir: str | Path, *, tag: str, histograms: bool = True
) -> BuildSummary:
    """Numbers of a local build directory (``soma/``, ``h5ads/``, ``build.json``).

    Parameters
    ----------
    build_dir
        The builder's output directory.
    tag
        The tag the build is (or will be) published under.
    histograms
        Compute the per-cell histograms (one pass over obs).

    Returns
    -------
    BuildSummary
        The build's numbers.
    """
    bdir = Path(build_dir)
    soma_dir = bdir / "soma"
    if not soma_dir.is_dir():
        msg = f"{soma_dir} does not exist: give a build directory (soma/, h5ads/, build.json)"
        raise BadInputError(msg)
    info: Mapping[str, Any] | None = None
    bj = bdir / BUILD_JSON
    if bj.is_file():
        info = BuildInfo.from_json(bj.read_bytes(), where=str(bj)).data
    h5ads: dict[str, int] = {}
    h5ad_dir = bdir / "h5ads"
    if h5ad_dir.is_dir():
        for p in sorted(h5ad_dir.iterdir()):
            if p.is_file() and p.suffix == ".h5ad":
                h5ads[p.stem] = p.stat().st_size
    soma_bytes = 0
    for dirpath, _dirs, names in os.walk(soma_dir):
        for name in names:
            soma_bytes += (Path(dirpath) / name).stat().st_size
    sizes = Sizes(soma_bytes=soma_bytes, h5ads_bytes=sum(h5ads.values()), h5ad_files=h5ads)
    return _summarize(
        str(soma_dir.resolve()),
        tag=tag,
        context=_context(None),
        build_info=info,
        sizes=sizes,
        histograms=histograms,
    )


def _manifest_sizes(m: Manifest) -> Sizes:
    soma_bytes = sum(o.size for o in m.objects if o.path.startswith("soma/"))
    h5ads = {
        o.path[len("h5ads/") : -len(".h5ad")]: o.size
        for o in m.objects
        if o.path.startswith("h5ads/") and o.path.endswith(".h5ad") and o.path.count("/") == 1
    }
    return Sizes(soma_bytes=soma_bytes, h5ads_bytes=sum(h5ads.values()), h5ad_files=h5ads)


def read_published_report(root: ReleaseRoot, tag: str) -> BuildReport | None:
    """``<tag>/report.json`` of a published build, or ``None`` when it has none.

    Raises
    ------
    IntegrityError
        When the file is malformed or of an unknown format version.
    """
    got = root.read_versioned(f"{tag}/{REPORT_JSON}")
    if got is None:
        return None
    return BuildReport.from_json(got[0], where=root.object_uri(f"{tag}/{REPORT_JSON}"))


def _build_info(root: ReleaseRoot, tag: str) -> Mapping[str, Any] | None:
    got = root.read_versioned(f"{tag}/{BUILD_JSON}")
    if got is None:
        return None
    return BuildInfo.from_json(got[0], where=root.object_uri(f"{tag}/{BUILD_JSON}")).data


def _spatial_cells(info: Mapping[str, Any] | None) -> int:
    """Cells of ``census_spatial_sequencing`` according to ``build.json`` (0: none, or unknown)."""
    summary = (info or {}).get("summary")
    spatial = summary.get("spatial") if isinstance(summary, dict) else None
    if not isinstance(spatial, dict):
        return 0
    return sum(
        v["cells"]
        for v in spatial.values()
        if isinstance(v, dict) and isinstance(v.get("cells"), int)
    )


def summarize_published(
    root: ReleaseRoot, tag: str, *, histograms: bool = True, recompute: bool = False
) -> BuildSummary:
    """Numbers of a published build: from its ``report.json``, else computed from ``soma/``.

    A ``report.json`` of format version 1 counts ``census_data`` only: when ``build.json``
    says the build has spatial cells, the numbers are computed from the census instead.

    Parameters
    ----------
    root
        The release root.
    tag
        A build tag (resolved already).
    histograms
        When computing, include the per-cell histograms (a full pass over obs).
    recompute
        Ignore ``report.json`` and compute from the census.

    Returns
    -------
    BuildSummary
        The build's numbers.
    """
    info: Mapping[str, Any] | None = None
    if not recompute:
        try:
            stored = read_published_report(root, tag)
        except IntegrityError as e:
            logger.warning("%s; computing the numbers from the census instead", e)
            stored = None
        if stored is not None and stored.format_version >= SPATIAL_SINCE:
            return stored.summary
        if stored is not None:
            info = _build_info(root, tag)
            if not _spatial_cells(info):
                return stored.summary
            logger.info(
                "%s is of format version %d (census_data only) and the build has spatial "
                "datasets: computing its numbers from the census",
                root.object_uri(f"{tag}/{REPORT_JSON}"),
                stored.format_version,
            )
    try:
        sizes = _manifest_sizes(read_manifest(root, tag))
    except NotFoundError:
        sizes = Sizes()
    if info is None:
        info = _build_info(root, tag)
    logger.info("computing the numbers of %s from its census", root.object_uri(f"{tag}/"))
    return _summarize(
        _soma_uri(root, tag),
        tag=tag,
        context=_context(root),
        build_info=info,
        sizes=sizes,
        histograms=histograms,
    )


# ---------------------------------------------------------------------------- reports
def previous_build(
    directory: ReleaseDirectory, tag: str, *, release_date: str | dt.date | None = None
) -> str | None:
    """The build a new build is compared with: the newest non-retracted build before it.

    Builds are ordered as in ``release.json`` (by the tag's date, else the release date, then
    by tag); ``tag`` itself need not be published yet.

    Parameters
    ----------
    directory
        The release directory.
    tag
        The build described.
    release_date
        Its release date, used for ordering when the tag is not a date.

    Returns
    -------
    str | None
        The baseline's tag, or ``None`` when there is no earlier build.
    """
    if tag in directory.builds:
        key = directory.builds[tag].sort_key()
    else:
        day = tag_date(tag)
        if day is None and release_date is not None:
            day = release_date if isinstance(release_date, dt.date) else tag_date(str(release_date))
        key = (day or dt.date.min, tag)
    for e in directory.ordered_builds():
        if e.tag != tag and not e.retracted and e.sort_key() < key:
            return e.tag
    return None


def make_report(summary: BuildSummary, baseline: BuildSummary | None = None) -> BuildReport:
    """A report of ``summary``, with its diff against ``baseline`` when given."""
    return BuildReport(
        summary=summary,
        diff=None if baseline is None else diff_summaries(baseline, summary),
        generator=_generator(),
    )


def write_report(report: BuildReport, html: str | Path, json_path: str | Path | None) -> None:
    """Write ``report.html`` (and ``report.json``), each atomically (temporary file, rename)."""
    outputs: list[tuple[Path, bytes]] = [(Path(html), render_html(report).encode())]
    if json_path is not None:
        outputs.append((Path(json_path), report.to_json()))
    for path, data in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)


def build_report(
    root: str | Path | ReleaseRoot,
    name: str,
    *,
    against: str | None = None,
    compare: bool = True,
    recompute: bool = False,
    settings: Settings | None = None,
) -> BuildReport:
    """The report of a published build, with its diff against ``against`` (default: the
    newest non-retracted build before it).

    Parameters
    ----------
    root
        Release root.
    name
        Tag or alias of the build.
    against
        Tag or alias of the baseline; default: the previous build.
    compare
        ``False``: no diff.
    recompute
        Compute the numbers from the census even when the build has a ``report.json``.
    settings
        Storage settings for S3 roots.

    Returns
    -------
    BuildReport
        The report.

    Raises
    ------
    NotFoundError
        When a build is not in the root.
    """
    r = open_root(root, settings)
    tag = resolve_build(r, name)
    summary = summarize_published(r, tag, recompute=recompute)
    base_tag: str | None = None
    if compare:
        if against is not None:
            base_tag = resolve_build(r, against)
        else:
            base_tag = previous_build(read_directory(r), tag)
    if base_tag == tag:
        msg = f"{name!r} and {against!r} are the same build; compare with another one"
        raise BadInputError(msg, field="against")
    base = None if base_tag is None else summarize_published(r, base_tag, histograms=False)
    return make_report(summary, base)


def diff_builds(
    root: str | Path | ReleaseRoot,
    old: str,
    new: str,
    *,
    settings: Settings | None = None,
) -> ReleaseDiff:
    """What changed from build ``old`` to build ``new`` (tags or aliases) of one release root.

    Raises
    ------
    NotFoundError
        When a build is not in the root.
    """
    r = open_root(root, settings)
    a, b = resolve_build(r, old), resolve_build(r, new)
    return diff_summaries(
        summarize_published(r, a, histograms=False), summarize_published(r, b, histograms=False)
    )


# ---------------------------------------------------------------------------- publish step
@dataclass
class StagedReport:
    """Report files written for a publish, in a temporary directory removed by :meth:`cleanup`
    (or when the object is collected)."""

    report: BuildReport
    files: list[tuple[str, Path]]
    _tmp: tempfile.TemporaryDirectory[str] = field(repr=False)

    def cleanup(self) -> None:
        """Remove the temporary files."""
        self._tmp.cleanup()


def _claimed_baseline(
    root: ReleaseRoot, tag: str, directory: ReleaseDirectory
) -> tuple[bool, str | None]:
    """The baseline of a report an interrupted publish of ``tag`` already uploaded.

    Re-using it keeps a resumed publish byte-identical (its manifest was claimed with that
    report) even if builds were published or retracted meanwhile.
    """
    try:
        stored = read_published_report(root, tag)
    except IntegrityError:
        return False, None
    if stored is None:
        return False, None
    base = stored.diff.old_tag if stored.diff is not None else None
    if base is not None and base not in directory.builds:
        return False, None
    return True, base


def stage_publish_report(
    root: ReleaseRoot, tag: str, build_dir: str | Path, *, release_date: dt.date
) -> StagedReport:
    """Write ``report.html`` / ``report.json`` of a build about to be published.

    The baseline is the newest non-retracted build before ``tag`` in the root (or the one an
    interrupted publish of the same build already used). The files are deterministic: the same
    build and baseline give the same bytes, so an interrupted publish resumes cleanly.

    Parameters
    ----------
    root
        The release root published to.
    tag
        The tag being published.
    build_dir
        The build directory.
    release_date
        The release date (orders a tag that is not a date).

    Returns
    -------
    StagedReport
        The report and its files as ``(path in the build, local file)``.
    """
    directory = read_directory(root)
    found, base_tag = _claimed_baseline(root, tag, directory)
    if not found:
        base_tag = previous_build(directory, tag, release_date=release_date)
    logger.info(
        "computing the release report of %s%s", tag, f" (against {base_tag})" if base_tag else ""
    )
    summary = summarize_build_dir(build_dir, tag=tag)
    base = None
    if base_tag is not None:
        try:
            base = summarize_published(root, base_tag, histograms=False)
        except CellCensusError as e:
            msg = (
                f"cannot compare with the previous build {base_tag!r} for the release report: "
                f"{e}. Repair that build, or retract it (`cellcensus retract`) so the report "
                "compares with the one before"
            )
            raise IntegrityError(msg) from e
    report = make_report(summary, base)
    tmp = tempfile.TemporaryDirectory(prefix="cellcensus-report-")
    out = Path(tmp.name)
    write_report(report, out / REPORT_HTML, out / REPORT_JSON)
    return StagedReport(
        report=report,
        files=[(REPORT_HTML, out / REPORT_HTML), (REPORT_JSON, out / REPORT_JSON)],
        _tmp=tmp,
    )
