"""What a routed gene query keeps per release between calls: cells, ``var.nnz``, obs frames.

A gene query across every cell spends most of its time on what does not depend on the genes:
the count and joinids of the cells, ``var.nnz`` for the cost rule, and obs of every cell made
into the AnnData's frame (``benchmarks/RESULTS.md``, "Fifth pass"). Releases are immutable, so
the routed path (:mod:`cellcensus.client._genemajor`) reads these once per release and process:

- :func:`release_static`: the cells of obs (their number, and their joinid range when obs has
  no gaps, so that a query of every cell reads no joinids) and ``var.nnz``. A few KB a release.
- :func:`remember`: other answers that only depend on the release, such as a value filter
  found valid for its schema, the peak bound of a layer (``get_anndata``'s checks), the rows
  of var a filter selects, or where the gene-major copies are.
- :func:`kept_array`: the gene-major copies stay open, so their fragments' metadata is read once.
- :class:`FrameCache`: the frame of every cell's obs, made from the obs copy, within a byte
  budget (``ClientConfig.obs_cache_bytes``, ``CELLCENSUS_OBS_CACHE_BYTES``; 0 turns it off),
  least recently used first out. Each query gets its own copy (:func:`detached`): changing a
  returned AnnData never changes the next one.

A release is known by :func:`release_key`: the experiment's URI and the build's ``created_on``
stamp, and for a local release the experiment directory's inode and modification time, so a
release rebuilt at the same path (even within the same second) is a new key. A census without
``created_on`` (not a cellcensus build) is never cached.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np

from cellcensus._storage.uri import is_local, local_path
from cellcensus.settings import client_config

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    import numpy.typing as npt
    import pandas as pd
    import tiledbsoma as soma

__all__ = [
    "FRAMES",
    "FrameCache",
    "ReleaseStatic",
    "clear",
    "detached",
    "frame_bytes",
    "kept_array",
    "release_key",
    "release_static",
    "remember",
]

#: Values :func:`remember` keeps (small: the largest are var selections of at most 256 genes,
#: tens of KB each).
MEMO_SIZE = 256

T = TypeVar("T")


def release_key(census: soma.Collection[Any], exp: soma.Experiment) -> Hashable | None:
    """The identity of ``exp`` of this build (module docstring), or None: do not cache."""
    created = census.metadata.get("created_on")
    if not isinstance(created, str) or not created:
        return None
    uri = str(exp.uri)
    if not is_local(uri):
        return (uri, created)
    try:
        st = local_path(uri).stat()
    except OSError:
        return None
    return (uri, created, st.st_ino, st.st_mtime_ns)


@dataclass(frozen=True)
class ReleaseStatic:
    """An experiment's cells and ``var.nnz``."""

    n_obs: int
    #: ``(first, last)`` joinid when the cells are exactly ``first .. last``; else None.
    obs_range: tuple[int, int] | None
    #: ``var.nnz`` of every gene, indexed by ``soma_joinid``.
    var_nnz: npt.NDArray[np.int64]

    def every_obs_id(self) -> npt.NDArray[np.int64]:
        """The joinids of every cell (only when :attr:`obs_range` is known)."""
        if self.obs_range is None:
            msg = "the cells are not one range of joinids"
            raise ValueError(msg)
        first, last = self.obs_range
        return np.arange(first, last + 1, dtype=np.int64)


_MEMO: OrderedDict[tuple[Hashable, Hashable], Any] = OrderedDict()
_LOCK = threading.Lock()


def remember(
    key: Hashable | None,
    what: Hashable,
    compute: Callable[[], T],
    *,
    keep: Callable[[T], bool] | None = None,
) -> T:
    """``compute()``, kept for release ``key`` under ``what`` (computed every call when ``key``
    is None; an exception is raised, not kept; a value for which ``keep`` is false is returned,
    not kept). At most :data:`MEMO_SIZE` values are kept, the least recently used leave first."""
    if key is None:
        return compute()
    with _LOCK:
        if (key, what) in _MEMO:
            _MEMO.move_to_end((key, what))
            return cast("T", _MEMO[key, what])
    value = compute()
    if keep is not None and not keep(value):
        return value
    with _LOCK:
        _MEMO[key, what] = value
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return value


def _read_static(obs: soma.DataFrame, var: soma.DataFrame) -> ReleaseStatic:
    n_obs = int(obs.count)
    obs_range = None
    if n_obs:
        ((first, last),) = obs.non_empty_domain()[:1]
        if int(last) - int(first) + 1 == n_obs:  # joinids are unique: no gap
            obs_range = (int(first), int(last))
    table = var.read(column_names=["soma_joinid", "nnz"]).concat().sort_by("soma_joinid")
    var_nnz = np.asarray(table["nnz"].to_numpy(), dtype=np.int64)
    return ReleaseStatic(n_obs=n_obs, obs_range=obs_range, var_nnz=var_nnz)


def release_static(
    key: Hashable | None, exp: soma.Experiment, measurement_name: str
) -> ReleaseStatic:
    """The cells of ``exp.obs`` and ``var.nnz`` of the measurement (read once per release
    ``key``; every call if None; obs and var are not opened when kept)."""
    return remember(
        key,
        ("static", measurement_name),
        lambda: _read_static(exp.obs, exp.ms[measurement_name].var),
    )


#: Python objects of a column sized one by one to estimate its bytes (:func:`frame_bytes`).
SAMPLE = 1024


def _object_bytes(values: npt.NDArray[Any]) -> int:
    """Bytes of the Python objects an object array points to, from an even sample of them."""
    n = len(values)
    if n == 0:
        return 0
    step = max(n // SAMPLE, 1)
    sample = values[::step]
    return int(sum(sys.getsizeof(v) for v in sample) * n / len(sample))


def frame_bytes(frame: pd.DataFrame) -> int:
    """About the memory ``frame`` holds: its arrays, plus the strings of its object columns and
    index estimated from a sample (``memory_usage(deep=True)`` sizes every string: 120 ms for
    the obs of 489 k cells, longer than making the frame)."""
    total = int(frame.memory_usage(index=True, deep=False).sum())
    columns = [frame.index.to_numpy()] if frame.index.dtype == object else []
    columns += [frame[c].to_numpy() for c in frame.columns if frame[c].dtype == object]
    return total + sum(_object_bytes(values) for values in columns)


@dataclass(frozen=True)
class _Frame:
    frame: pd.DataFrame
    nbytes: int
    #: the index is the default one (names "0" .. "n-1", not a column of obs): any subset of
    #: the columns has the same index
    default_index: bool


class FrameCache:
    """Frames of every cell's obs by release, least recently used first out, within the byte
    budget of the client configuration (read at each call, so :func:`configure` applies at
    once)."""

    def __init__(self) -> None:
        self._frames: OrderedDict[Hashable, _Frame] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def budget() -> int:
        """Bytes the cache may hold (``ClientConfig.obs_cache_bytes``)."""
        return client_config().obs_cache_bytes

    def get(self, key: Hashable) -> _Frame | None:
        """The frame kept for ``key``, or None."""
        with self._lock:
            found = self._frames.get(key)
            if found is not None:
                self._frames.move_to_end(key)
            return found

    def put(
        self, key: Hashable, frame: pd.DataFrame, *, default_index: bool
    ) -> tuple[_Frame, bool]:
        """Keep ``frame`` for ``key`` if it fits the budget (evicting the oldest); the entry,
        and whether it was kept."""
        entry = _Frame(frame, frame_bytes(frame), default_index)
        budget = self.budget()
        if entry.nbytes > budget:
            return entry, False
        with self._lock:
            self._frames[key] = entry
            while sum(e.nbytes for e in self._frames.values()) > budget:
                self._frames.popitem(last=False)
        return entry, True

    def clear(self) -> None:
        """Forget every frame."""
        with self._lock:
            self._frames.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)


#: The process's cache of obs frames (one: the budget is per process).
FRAMES = FrameCache()

#: Arrays :func:`kept_array` keeps open.
ARRAYS_SIZE = 16
#: Read settings of the kept arrays over the census's: ranges of a file less than 16 KiB apart
#: fetched in one request (TileDB's default joins ranges up to 500 KB apart, fetching bytes of
#: genes not asked for), 64 MiB result buffers (the official client's context asks 1 GiB). 10
#: genes of every cell of the 200 k-cell demo release read in 16 ms instead of 19 ms, 100 genes
#: in 87 ms instead of 97 ms (``benchmarks/RESULTS.md``, "Fifth pass").
COPY_READ_CONFIG = {
    "vfs.min_batch_gap": str(16 << 10),
    "vfs.min_batch_size": "0",
    "soma.init_buffer_bytes": str(64 << 20),
}
_ARRAYS: OrderedDict[Hashable, soma.SparseNDArray] = OrderedDict()


def kept_array(
    key: Hashable | None, uri: str, context: soma.SOMATileDBContext
) -> soma.SparseNDArray | None:
    """The SparseNDArray at ``uri`` of release ``key``, opened for reading with ``context``'s
    TileDB configuration (and :data:`COPY_READ_CONFIG`) and kept open for the next queries
    (None when ``key`` is None).

    A handle that stays open reads its fragments' metadata once, not at every query; it serves
    concurrent reads. Kept per release and configuration (a census opened with other storage
    settings gets its own), at most :data:`ARRAYS_SIZE`; evicted handles are not closed (a
    query may still read through one) but left to the garbage collector; the rest are closed
    at exit.
    """
    import tiledbsoma as soma

    if key is None:
        return None
    config = tuple(sorted((k, str(v)) for k, v in context.tiledb_config.items()))
    hkey = (key, uri, config)
    with _LOCK:
        found = _ARRAYS.get(hkey)
        if found is not None:
            _ARRAYS.move_to_end(hkey)
            return found
    own = soma.SOMATileDBContext(tiledb_config={**dict(config), **COPY_READ_CONFIG})
    opened = soma.SparseNDArray.open(uri, context=own)
    with _LOCK:
        handle = _ARRAYS.setdefault(hkey, opened)
        while len(_ARRAYS) > ARRAYS_SIZE:
            _ARRAYS.popitem(last=False)
    if handle is not opened:  # another thread opened it meanwhile
        opened.close()
    return handle


@atexit.register
def _close_arrays() -> None:
    with _LOCK:
        while _ARRAYS:
            _, handle = _ARRAYS.popitem()
            handle.close()


def detached(
    entry: _Frame, columns: Sequence[str] | None, *, copy: bool = True
) -> pd.DataFrame | None:
    """The frame with ``columns`` (all when None) for one query, or None when that subset
    cannot be served from it (an index taken from a column; unknown or repeated names: the
    query reads obs, which reports them as usual).

    With ``copy`` (a kept frame) the result owns its arrays (strings, immutable, are shared), so
    changing it leaves the kept frame as it was; its index keeps what pandas knows of it
    (unique), which ``anndata`` would otherwise check by hashing every name.
    """
    frame = entry.frame
    if columns is not None:
        names = list(columns)
        if not entry.default_index or len(set(names)) != len(names):
            return None
        if not set(names) <= set(frame.columns):
            return None
        frame = frame[names]
    return frame.copy(deep=True) if copy else frame


def clear() -> None:
    """Forget everything kept (values, frames, open arrays; an array still read by a query is
    closed when that query drops it)."""
    with _LOCK:
        _MEMO.clear()
        _ARRAYS.clear()
    FRAMES.clear()
