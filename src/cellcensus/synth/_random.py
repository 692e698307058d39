"""Deterministic random streams.

Every random quantity comes from its own :class:`numpy.random.SeedSequence`, keyed by the corpus
seed, an integer key of what it belongs to (dataset id, organism, cell type) and a stream name, plus
fixed block and tile indices for counts. Nothing depends on how the work is chunked, so the same
seed and spec give the same values whatever ``chunk_size`` is.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Final

import numpy as np

from cellcensus.errors import BadInputError

__all__ = ["BLOCK_CELLS", "TILE_GENES", "Stream", "check_seed", "generator", "text_key", "uuid4"]

#: Cells per counts block: the unit of random generation (fixed, independent of chunk_size).
BLOCK_CELLS: Final = 1024
#: Genes per counts tile: bounds the dense scratch arrays of one block (1024 x 4096 float32).
TILE_GENES: Final = 4096


class Stream(enum.IntEnum):
    """Names of the independent random streams."""

    GENES = 1
    OBS = 2
    COUNTS = 3
    EMBEDDING = 4
    CELL_TYPE = 5
    DUPLICATE = 6
    TISSUES = 7
    BATCH = 8
    SPATIAL = 9


def check_seed(seed: int) -> int:
    """Return ``seed`` if it is a non-negative integer, else raise BadInputError.

    Parameters
    ----------
    seed
        Corpus seed.

    Returns
    -------
    int
        The seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        msg = f"seed must be a non-negative integer, got {seed!r}"
        raise BadInputError(msg, field="seed")
    return int(seed)


def text_key(text: str) -> int:
    """Return a stable 63-bit integer key of a string (first 8 bytes of its SHA-256).

    Parameters
    ----------
    text
        Any string, e.g. a dataset id or a term id.

    Returns
    -------
    int
        Non-negative integer below 2**63.
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") >> 1


def generator(seed: int, key: int, stream: Stream, *indices: int) -> np.random.Generator:
    """Return the random generator of one stream.

    Parameters
    ----------
    seed
        Corpus seed.
    key
        Integer key of the owner (see :func:`text_key`).
    stream
        Which quantity is drawn.
    *indices
        Further fixed indices (block, tile).

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator, independent of every other (seed, key, stream, indices).
    """
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, key, int(stream), *indices]))
    )


def uuid4(*parts: object) -> str:
    """Return a version-4-formatted UUID string derived deterministically from ``parts``.

    Parameters
    ----------
    *parts
        Values whose ``str`` forms identify the object (e.g. seed, index, kind).

    Returns
    -------
    str
        Such as ``"0f8e2c1a-6b7d-4c3e-9a1b-2d3c4e5f6a7b"``.
    """
    digest = bytearray(hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x40  # version 4
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
