"""Element-wise equality of Arrow and numpy values, and Arrow type equality, as the comparison
defines them: NaN equals NaN, nulls equal nulls, floats equal within ``rtol``."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["describe_value", "plain", "same_type", "unequal_arrow", "unequal_numpy"]


def plain(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array, dictionary-decoded."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def value_type(t: pa.DataType) -> pa.DataType:
    """The value type of a dictionary type; any other type unchanged."""
    return t.value_type if pa.types.is_dictionary(t) else t


def same_type(a: pa.DataType, b: pa.DataType, *, dictionary_as_plain: bool) -> bool:
    """Whether two column types are equal (optionally looking through dictionary encoding)."""
    if dictionary_as_plain:
        return bool(value_type(a) == value_type(b))
    return bool(a == b)


def unequal_numpy(a: npt.NDArray[Any], b: npt.NDArray[Any], rtol: float) -> npt.NDArray[np.bool_]:
    """Mask of positions where two equally long numpy arrays differ."""
    if a.dtype.kind in "fc" or b.dtype.kind in "fc":
        fa = a.astype(np.float64, copy=False)
        fb = b.astype(np.float64, copy=False)
        both_nan = np.isnan(fa) & np.isnan(fb)
        if rtol > 0:
            close = np.isclose(fa, fb, rtol=rtol, atol=0.0, equal_nan=True)
            return np.asarray(~close, dtype=bool)
        return np.asarray(~((fa == fb) | both_nan), dtype=bool)
    if a.dtype != b.dtype and (a.dtype.kind in "biu" and b.dtype.kind in "biu"):
        return np.asarray(a.astype(np.int64) != b.astype(np.int64))
    return np.asarray(a != b)


def unequal_arrow(a: pa.Array, b: pa.Array, rtol: float) -> npt.NDArray[np.bool_]:
    """Mask of positions where two equally long Arrow arrays differ (dictionaries decoded)."""
    a, b = plain(a), plain(b)
    if len(a) == 0:
        return np.zeros(0, dtype=bool)
    numeric = (pa.types.is_floating(a.type) or pa.types.is_integer(a.type)) and (
        pa.types.is_floating(b.type) or pa.types.is_integer(b.type)
    )
    if numeric and a.null_count == 0 and b.null_count == 0:
        return unequal_numpy(a.to_numpy(), b.to_numpy(), rtol)
    if a.type != b.type:
        try:
            b = b.cast(a.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return np.array(
                [x != y for x, y in zip(a.to_pylist(), b.to_pylist(), strict=True)], dtype=bool
            )
    eq = pc.equal(a, b)
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    same = pc.or_(pc.fill_null(eq, fill_value=False), both_null)
    if pa.types.is_floating(a.type):
        same = pc.or_(same, pc.and_(pc.is_nan(a), pc.is_nan(b)))
        same = pc.fill_null(same, fill_value=False)
    return np.asarray(pc.invert(same).to_numpy(zero_copy_only=False), dtype=bool)


def describe_value(v: object) -> str:
    """Short printable form of a value (long strings cut)."""
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."
