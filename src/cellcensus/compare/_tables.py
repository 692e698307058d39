"""Compare two SOMA dataframes: schema, Arrow types, dictionaries, rows and values.

Dataframes indexed by ``soma_joinid`` alone (every census table) are read in blocks of joinids,
so memory is bounded by ``block_rows`` whatever the table's size. Dataframes with other index
columns (spatial point clouds) are read whole and matched on their index columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from cellcensus.compare._values import describe_value, plain, same_type, unequal_arrow, value_type

if TYPE_CHECKING:
    from collections.abc import Sequence

    from cellcensus.compare._report import CompareOptions, ObjectResult

__all__ = ["compare_dataframes"]

JOINID = "soma_joinid"


def _compare_schema(
    a: Any,  # noqa: ANN401 - tiledbsoma DataFrame-like
    b: Any,  # noqa: ANN401
    res: ObjectResult,
    opts: CompareOptions,
) -> list[str]:
    """Report column set/order and type differences; return the columns both have (A's order)."""
    sa, sb = a.schema, b.schema
    names_a, names_b = list(sa.names), list(sb.names)
    lim = opts.max_differences
    for name in names_a:
        if name not in names_b:
            res.add("schema", f"column {name!r} only in A ({sa.field(name).type})", limit=lim)
    for name in names_b:
        if name not in names_a:
            res.add("schema", f"column {name!r} only in B ({sb.field(name).type})", limit=lim)
    common = [n for n in names_a if n in names_b]
    if [n for n in names_b if n in names_a] != common:
        res.add(
            "schema",
            f"column order differs: A {common}, B {[n for n in names_b if n in names_a]}",
            limit=lim,
        )
    if tuple(a.index_column_names) != tuple(b.index_column_names):
        res.add(
            "schema",
            f"index columns differ: A {list(a.index_column_names)}, B {list(b.index_column_names)}",
            limit=lim,
        )
    for name in common:
        ta, tb = sa.field(name).type, sb.field(name).type
        if not same_type(ta, tb, dictionary_as_plain=opts.dictionary_as_plain):
            res.add("arrow-type", f"column {name!r}: A {ta}, B {tb}", limit=lim)
    return common


def _compare_dictionaries(
    a: Any,  # noqa: ANN401
    b: Any,  # noqa: ANN401
    common: list[str],
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    """Category values of columns dictionary-encoded in both builds: same values, same order."""
    both = [
        n
        for n in common
        if pa.types.is_dictionary(a.schema.field(n).type)
        and pa.types.is_dictionary(b.schema.field(n).type)
    ]
    if not both:
        return
    ea = a.get_enumeration_values(both)
    eb = b.get_enumeration_values(both)
    for name in both:
        va, vb = ea[name].to_pylist(), eb[name].to_pylist()
        if va == vb:
            continue
        set_a, set_b = set(va), set(vb)
        only_a = [v for v in va if v not in set_b]
        only_b = [v for v in vb if v not in set_a]
        if only_a or only_b:
            detail = (
                f"column {name!r}: categories differ ({len(va)} in A, {len(vb)} in B; "
                f"only in A: {describe_value(only_a[:5])}, only in B: {describe_value(only_b[:5])})"
            )
        else:
            detail = f"column {name!r}: same {len(va)} categories in a different order"
        res.add("dictionary", detail, limit=opts.max_differences)


def _joinid_range(df: Any) -> tuple[int, int] | None:  # noqa: ANN401
    """Smallest and largest stored soma_joinid, or None for an empty dataframe."""
    if df.count == 0:
        return None
    (lo, hi), *_ = df.non_empty_domain()
    return int(lo), int(hi)


def _read_block(df: Any, lo: int, hi: int, columns: list[str]) -> pa.Table:  # noqa: ANN401
    cols = columns if JOINID in columns else [JOINID, *columns]
    table: pa.Table = df.read(coords=[slice(lo, hi)], column_names=cols).concat()
    if table.num_rows > 1:
        table = table.take(pc.sort_indices(table[JOINID]))
    return table


def _compare_values(
    ta: pa.Table,
    tb: pa.Table,
    columns: list[str],
    *,
    label: str,
    row_ids: Sequence[Any] | npt.NDArray[Any],
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    """Compare aligned tables column by column; rows are named ``label=row_ids[i]`` in messages."""
    for name in columns:
        if name == JOINID:
            continue
        ca, cb = plain(ta[name]), plain(tb[name])
        mask = unequal_arrow(ca, cb, opts.rtol)
        bad = np.flatnonzero(mask)
        res.add_examples(
            "value",
            len(bad),
            (
                f"row {label}={row_ids[int(i)]}, column {name!r}: "
                f"A {describe_value(ca[int(i)].as_py())}, B {describe_value(cb[int(i)].as_py())}"
                for i in bad
            ),
            limit=opts.max_differences,
        )


def _report_rows(
    side: str, keys: list[Any], res: ObjectResult, opts: CompareOptions, label: str
) -> None:
    """Each row present in one build only is one difference; they are listed in one line."""
    if not keys:
        return
    shown = ", ".join(str(k) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
    res.add_examples(
        "rows",
        len(keys),
        iter([f"{len(keys)} row(s) only in {side}: {label} {shown}"]),
        limit=opts.max_differences,
    )


def _compare_by_joinid(
    a: Any,  # noqa: ANN401
    b: Any,  # noqa: ANN401
    common: list[str],
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    ra, rb = _joinid_range(a), _joinid_range(b)
    ranges = [r for r in (ra, rb) if r is not None]
    if not ranges:
        return
    lo = min(r[0] for r in ranges)
    hi = max(r[1] for r in ranges)
    start = lo
    while start <= hi:
        end = min(hi, start + opts.block_rows - 1)
        ta = _read_block(a, start, end, common) if ra else None
        tb = _read_block(b, start, end, common) if rb else None
        ja = ta[JOINID].to_numpy() if ta is not None else np.zeros(0, np.int64)
        jb = tb[JOINID].to_numpy() if tb is not None else np.zeros(0, np.int64)
        if ja.shape == jb.shape and np.array_equal(ja, jb):
            if ta is not None and tb is not None:
                _compare_values(ta, tb, common, label=JOINID, row_ids=ja, res=res, opts=opts)
            res.compared += len(ja)
        else:
            _report_rows("A", np.setdiff1d(ja, jb).tolist(), res, opts, "soma_joinid")
            _report_rows("B", np.setdiff1d(jb, ja).tolist(), res, opts, "soma_joinid")
            both, ia, ib = np.intersect1d(ja, jb, assume_unique=True, return_indices=True)
            if len(both) and ta is not None and tb is not None:
                _compare_values(
                    ta.take(pa.array(ia)),
                    tb.take(pa.array(ib)),
                    common,
                    label=JOINID,
                    row_ids=both,
                    res=res,
                    opts=opts,
                )
            res.compared += len(both)
        start = end + 1


def _compare_by_index(
    a: Any,  # noqa: ANN401
    b: Any,  # noqa: ANN401
    common: list[str],
    res: ObjectResult,
    opts: CompareOptions,
    *,
    index: list[str] | None = None,
) -> None:
    """Whole-table comparison matched on the index columns (small tables such as point clouds)."""
    if index is None:
        index = [c for c in a.index_column_names if c in common]
    ta: pa.Table = a.read(column_names=common).concat()
    tb: pa.Table = b.read(column_names=common).concat()
    keys_a = list(zip(*(plain(ta[c]).to_pylist() for c in index), strict=True))
    keys_b = list(zip(*(plain(tb[c]).to_pylist() for c in index), strict=True))
    pos_b = {k: i for i, k in enumerate(keys_b)}
    pos_a = {k: i for i, k in enumerate(keys_a)}
    label = "/".join(index)
    _report_rows("A", [k for k in keys_a if k not in pos_b], res, opts, label)
    _report_rows("B", [k for k in keys_b if k not in pos_a], res, opts, label)
    shared = [k for k in keys_a if k in pos_b]
    if shared:
        sub_a = ta.take(pa.array([pos_a[k] for k in shared], pa.int64()))
        sub_b = tb.take(pa.array([pos_b[k] for k in shared], pa.int64()))
        _compare_values(sub_a, sub_b, common, label=label, row_ids=shared, res=res, opts=opts)
    res.compared += len(shared)


def compare_dataframes(
    a: Any,  # noqa: ANN401 - tiledbsoma DataFrame or PointCloudDataFrame
    b: Any,  # noqa: ANN401
    res: ObjectResult,
    opts: CompareOptions,
) -> None:
    """Compare two open dataframes into ``res`` (schema, types, categories, rows, values)."""
    res.unit = "rows"
    common = _compare_schema(a, b, res, opts)
    _compare_dictionaries(a, b, common, res, opts)
    comparable = [
        n
        for n in common
        if value_type(a.schema.field(n).type) == value_type(b.schema.field(n).type)
        or _castable(a.schema.field(n).type, b.schema.field(n).type)
    ]
    if tuple(a.index_column_names) == (JOINID,) == tuple(b.index_column_names):
        _compare_by_joinid(a, b, comparable, res, opts)
    elif tuple(a.index_column_names) == tuple(b.index_column_names):
        _compare_by_index(a, b, comparable, res, opts)
    else:
        # different index columns (already reported; e.g. tiledbsoma >= 2 makes soma_joinid an
        # index column of every point cloud): when both tables have every index column of
        # either, their rows are still matched on all of them and compared
        index = list(dict.fromkeys((*a.index_column_names, *b.index_column_names)))
        if all(c in comparable for c in index):
            _compare_by_index(a, b, comparable, res, opts, index=index)


def _castable(ta: pa.DataType, tb: pa.DataType) -> bool:
    """Whether values of two different types can still be compared (strings, numbers)."""
    va, vb = value_type(ta), value_type(tb)
    kinds = (pa.types.is_string, pa.types.is_large_string)
    if any(k(va) for k in kinds) and any(k(vb) for k in kinds):
        return True
    num = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean)
    return any(k(va) for k in num) and any(k(vb) for k in num)
