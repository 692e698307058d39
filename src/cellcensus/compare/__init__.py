"""Compare two census builds object by object: what differs, where, and how much.

Two builds are walked together from their root collections: every collection member present in
either build is compared — census_info tables, each experiment's ``obs``, ``var``, X layers and
presence matrix, spatial scenes (point clouds, images) — by SOMA type, metadata, Arrow schema,
dictionary categories, shape, and every row, coordinate and value. Large arrays are streamed in
blocks of matching ``soma_joinid`` rows, so memory does not grow with the size of the builds.

Examples
--------
>>> from cellcensus.compare import CompareOptions
>>> CompareOptions(rtol=1e-6).max_differences
10
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellcensus._progress import NoProgress
from cellcensus.compare._arrays import compare_dense, compare_sparse
from cellcensus.compare._report import (
    DEFAULT_IGNORED_MEMBERS,
    DEFAULT_IGNORED_METADATA,
    CompareOptions,
    CompareReport,
    Difference,
    ObjectResult,
)
from cellcensus.compare._tables import compare_dataframes
from cellcensus.compare._values import describe_value
from cellcensus.errors import NotFoundError

if TYPE_CHECKING:
    from cellcensus._progress import Progress
    from cellcensus.settings import Settings

__all__ = [
    "DEFAULT_IGNORED_MEMBERS",
    "DEFAULT_IGNORED_METADATA",
    "CompareOptions",
    "CompareReport",
    "Difference",
    "ObjectResult",
    "compare_builds",
    "resolve_soma_uri",
]

_GROUPS = frozenset(
    {"SOMACollection", "SOMAExperiment", "SOMAMeasurement", "SOMAScene", "SOMAMultiscaleImage"}
)
_DATAFRAMES = frozenset({"SOMADataFrame", "SOMAPointCloudDataFrame", "SOMAGeometryDataFrame"})


def _is_remote(location: str) -> bool:
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme != "file" and len(scheme) > 1


def resolve_soma_uri(location: str | Path, *, context: Any = None) -> str:  # noqa: ANN401
    """The URI of the SOMA collection of a build.

    Parameters
    ----------
    location
        A build directory (holding ``soma/``), a ``soma/`` collection itself, a ``file://`` URI,
        or an ``s3://`` URI of either.
    context
        The ``tiledbsoma.SOMATileDBContext`` used to look at remote locations.

    Returns
    -------
    str
        A local path or URI that opens as a SOMA collection.

    Raises
    ------
    NotFoundError
        When neither the location nor its ``soma/`` is a SOMA collection.
    """
    import tiledbsoma

    s = str(location)
    if _is_remote(s):
        base = s.rstrip("/")
        for candidate in (f"{base}/soma", base):
            if tiledbsoma.Collection.exists(candidate, context=context):
                return candidate
    else:
        path = Path(s.removeprefix("file://")).expanduser().resolve()
        for candidate_path in (path / "soma", path):
            if candidate_path.is_dir() and tiledbsoma.Collection.exists(
                str(candidate_path), context=context
            ):
                return str(candidate_path)
    msg = (
        f"{s}: neither a census build (a directory with soma/) nor a SOMA collection; give the "
        "path of a build directory or of its soma/ collection"
    )
    raise NotFoundError(msg)


class _Walker:
    """Walks two open SOMA trees together, filling a report."""

    def __init__(self, report: CompareReport, progress: Progress) -> None:
        self.report = report
        self.opts = report.options
        self.progress = progress

    def _metadata(self, a: Any, b: Any, res: ObjectResult) -> None:  # noqa: ANN401
        ignored = self.opts.ignore_metadata
        ma = {k: v for k, v in a.metadata.items() if k not in ignored}
        mb = {k: v for k, v in b.metadata.items() if k not in ignored}
        for key in sorted(set(ma) | set(mb)):
            if key not in mb:
                res.add("metadata", f"key {key!r} only in A", limit=self.opts.max_differences)
            elif key not in ma:
                res.add("metadata", f"key {key!r} only in B", limit=self.opts.max_differences)
            elif str(ma[key]) != str(mb[key]):
                res.add(
                    "metadata",
                    f"key {key!r}: A {describe_value(ma[key])}, B {describe_value(mb[key])}",
                    limit=self.opts.max_differences,
                )

    def walk(self, path: str, a: Any, b: Any) -> None:  # noqa: ANN401 - tiledbsoma objects
        """Compare ``a`` and ``b`` (either may be None: the member exists in one build only)."""
        lim = self.opts.max_differences
        name = path or "(root)"
        if path in self.opts.ignore_members:
            return
        if a is None or b is None:
            present = a if a is not None else b
            res = ObjectResult(path=name, soma_type=present.soma_type)
            res.add("member", f"only in {'A' if b is None else 'B'}", limit=lim)
            self.report.objects.append(res)
            return
        res = ObjectResult(path=name, soma_type=a.soma_type)
        self.report.objects.append(res)
        if a.soma_type != b.soma_type:
            res.add("type", f"A {a.soma_type}, B {b.soma_type}", limit=lim)
            return
        self._metadata(a, b, res)
        kind = a.soma_type
        if kind in _GROUPS:
            for key in sorted(set(a) | set(b)):
                child = f"{path}/{key}" if path else key
                self.walk(child, a.get(key), b.get(key))
            return
        self.progress.start(name, None, "")
        if kind in _DATAFRAMES:
            compare_dataframes(a, b, res, self.opts)
        elif kind == "SOMASparseNDArray":
            compare_sparse(a, b, res, self.opts)
        elif kind == "SOMADenseNDArray":
            compare_dense(a, b, res, self.opts)
        else:
            res.add("type", f"cannot compare objects of type {kind}", limit=lim)
        self.progress.advance(name, res.compared)
        self.progress.finish(name)


def compare_builds(
    a: str | Path,
    b: str | Path,
    *,
    options: CompareOptions | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> CompareReport:
    """Compare two census builds, every object, row, coordinate and value.

    Parameters
    ----------
    a, b
        Build directories (with ``soma/``) or SOMA collections: local paths, ``file://`` or
        ``s3://`` URIs.
    options
        Limits, blocks, tolerance and what to ignore (see :class:`CompareOptions`).
    settings
        Storage settings for ``s3://`` locations (resolved from the environment when omitted).
    progress
        Receives one stage per compared dataframe or array.

    Returns
    -------
    CompareReport
        Per-object results; ``report.equal`` is True when nothing differs.

    Raises
    ------
    NotFoundError
        When a location is not a build or a SOMA collection.
    """
    import tiledbsoma

    opts = options or CompareOptions()
    context = None
    if _is_remote(str(a)) or _is_remote(str(b)):
        from cellcensus.client import get_default_soma_context
        from cellcensus.settings import Settings

        cfg: dict[str, Any] = dict((settings or Settings.resolve()).tiledb_config())
        context = get_default_soma_context(tiledb_config=cfg)
    uri_a = resolve_soma_uri(a, context=context)
    uri_b = resolve_soma_uri(b, context=context)
    report = CompareReport(a=uri_a, b=uri_b, options=opts)
    t0 = time.monotonic()
    with (
        tiledbsoma.open(uri_a, context=context) as root_a,
        tiledbsoma.open(uri_b, context=context) as root_b,
    ):
        _Walker(report, progress or NoProgress()).walk("", root_a, root_b)
    report.seconds = time.monotonic() - t0
    return report
