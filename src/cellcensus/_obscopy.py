"""A columnar copy of each organism's obs, for queries that return every cell.

A gene query across all cells of an organism (``get_anndata`` with a ``var_value_filter`` and no
obs filter) returns obs of every cell; read from the census's TileDB DataFrame, that read (all
columns, zstd) costs more than the genes' values from the gene-major copy. With the copies the
builder writes ``cellcensus_genes/<organism>/obs.arrow``: the same rows and columns in an Arrow
IPC file (LZ4-compressed record batches, rows in ``soma_joinid`` order), which a local reader
maps into memory and decompresses several times faster (``benchmarks/RESULTS.md``, "obs copy").

The client uses it only for a query without obs filter or coordinates, and after checking its
``soma_joinid`` column against the census's obs; anything else reads obs as before. A local
release's copy is mapped into memory; a copy in object storage is fetched whole (one object, read
with the census's own TileDB configuration: endpoint, credentials, anonymous access).

The file sits inside the ``cellcensus_genes/<organism>`` collection's directory without being a
member of it: TileDB and the official client never see it; publish, sync and the checksums of
``manifest.json`` carry it as every other file of a build.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING

import pyarrow as pa
from pyarrow import ipc

from cellcensus.errors import IntegrityError

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator, Sequence
    from pathlib import Path

    import tiledbsoma as soma

__all__ = ["OBS_COPY", "compare_obs_copy", "obs_chunks", "read_obs_copy", "write_obs_copy"]

#: The file's name in ``cellcensus_genes/<organism>/``.
OBS_COPY = "obs.arrow"
#: Buffer compression of the record batches (LZ4 frame: decompresses at memory speed).
COMPRESSION = "lz4"
#: Rows of obs read at a time (a few MiB with the Census's ~30 columns).
CHUNK_ROWS = 1 << 16


def obs_chunks(
    obs: soma.DataFrame, column_names: Sequence[str] | None = None, rows: int = CHUNK_ROWS
) -> Iterator[pa.Table]:
    """``obs`` in ``soma_joinid`` order, ``rows`` joinids at a time (memory: one chunk).

    A plain ``obs.read()`` returns batches as large as TileDB-SOMA's result buffers hold (one
    buffer per column: at 16 MiB each, ~1 M rows of the Census's obs), so reading it whole held
    more memory the larger the census was; slices of the joinid range bound each read.
    """
    if obs.count == 0:
        return
    ((lo, hi),) = obs.non_empty_domain()[:1]
    names = None if column_names is None else list(column_names)
    for start in range(int(lo), int(hi) + 1, rows):
        stop = min(start + rows, int(hi) + 1) - 1  # SOMA slices include their end
        yield obs.read(
            coords=(slice(start, stop),), column_names=names, result_order="row-major"
        ).concat()


def write_obs_copy(obs: soma.DataFrame, path: Path, *, chunk_rows: int = CHUNK_ROWS) -> int:
    """Write the copy of ``obs`` (all columns, ``soma_joinid`` order) to ``path``; its rows.

    Streams obs chunk by chunk (memory: one :func:`obs_chunks` chunk). Written to
    ``<path>.part`` and renamed, so an interrupted write leaves no copy. Writes nothing for an
    empty obs (returns 0).
    """
    part = path.with_name(path.name + ".part")
    rows = 0
    writer: ipc.RecordBatchFileWriter | None = None
    try:
        with pa.OSFile(str(part), "wb") as sink:
            for table in obs_chunks(obs, rows=chunk_rows):
                for batch in table.to_batches():
                    if writer is None:
                        options = ipc.IpcWriteOptions(compression=COMPRESSION)
                        writer = ipc.new_file(sink, batch.schema, options=options)
                    writer.write_batch(batch)
                    rows += batch.num_rows
            if writer is not None:
                writer.close()
                writer = None
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    if rows:
        part.replace(path)
    else:
        part.unlink(missing_ok=True)
    return rows


def read_obs_copy(source: Path | pa.Buffer, columns: Sequence[str] | None) -> pa.Table:
    """The copy's ``columns``, in that order (all when None), reading only those columns.

    ``source`` is the copy's local path (mapped into memory) or its bytes (a copy fetched from
    object storage).

    Raises
    ------
    KeyError
        For a column the copy does not have.
    """
    from pyarrow import feather  # an IPC file is a Feather V2 file

    def table(names: list[str] | None) -> pa.Table:
        if isinstance(source, pa.Buffer):
            return feather.read_table(pa.BufferReader(source), columns=names)
        return feather.read_table(str(source), columns=names, memory_map=True)

    if columns is None:
        return table(None)
    names = set(_names(source))
    missing = [c for c in columns if c not in names]
    if missing:
        raise KeyError(missing[0])
    # as tiledbsoma's read: the columns in the order asked (feather keeps the file's)
    return table(list(columns)).select(list(columns))


def _names(source: Path | pa.Buffer) -> list[str]:
    if isinstance(source, pa.Buffer):
        return list(ipc.open_file(pa.BufferReader(source)).schema.names)
    with pa.memory_map(str(source)) as mapped:
        return list(ipc.open_file(mapped).schema.names)


def _copy_batches(path: Path) -> Generator[pa.RecordBatch, None, None]:
    # read, not mapped: the pages of a mapping stay in the process's RSS while it is open, so
    # comparing a mapped copy held the whole file by the end
    with pa.OSFile(str(path)) as source:
        reader = ipc.open_file(source)
        for i in range(reader.num_record_batches):
            yield reader.get_batch(i)


def compare_obs_copy(obs: soma.DataFrame, path: Path) -> int:
    """Check the copy holds exactly ``obs`` (schema, rows, values), batch by batch; its rows.

    Raises
    ------
    IntegrityError
        When they differ (the message says where).
    """
    with closing(_copy_batches(path)) as copy:
        return _compare(obs, path, copy)


def _compare(obs: soma.DataFrame, path: Path, copy: Iterator[pa.RecordBatch]) -> int:
    pending: list[pa.RecordBatch] = []
    have = 0
    row = 0
    for table in obs_chunks(obs):
        n = table.num_rows
        while have < n:
            batch = next(copy, None)
            if batch is None:
                msg = f"{path} ends at row {row + have}; obs has more rows"
                raise IntegrityError(msg)
            pending.append(batch)
            have += batch.num_rows
        got = pa.Table.from_batches(pending).combine_chunks()
        if got.schema != table.schema:
            msg = f"{path}: schema differs from obs:\n{got.schema}\n---\n{table.schema}"
            raise IntegrityError(msg)
        if not got.slice(0, n).equals(table.combine_chunks()):
            msg = f"{path}: rows {row}-{row + n - 1} differ from obs"
            raise IntegrityError(msg)
        rest = got.slice(n)
        pending = rest.to_batches()
        have = rest.num_rows
        row += n
    if have or next(copy, None) is not None:
        msg = f"{path} has rows beyond obs's {row}"
        raise IntegrityError(msg)
    return row
