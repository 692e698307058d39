"""Writing an embedding in the official layout: a float32 ``SparseNDArray`` (``soma_dim_0`` the
cell's ``soma_joinid``, ``soma_dim_1`` the component) whose metadata ``CxG_embedding_info`` holds
the embedding's JSON description, and optionally an IVFFlat vector index (TileDB-Vector-Search)
whose external ids are the ``soma_joinid`` values."""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from cellcensus.errors import BadInputError, ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    import tiledbsoma as soma

    from cellcensus.embeddings._census import KeyedMatrix

__all__ = [
    "EMBEDDING_INFO_KEY",
    "INDEX_TYPE",
    "MAX_VALUES_PER_WRITE",
    "build_ivf_flat_index",
    "write_embedding_array",
]

logger = logging.getLogger(__name__)

#: Metadata key of the embedding's JSON description (read by ``get_embedding_metadata``).
EMBEDDING_INFO_KEY = "CxG_embedding_info"
#: The only index type the official client queries.
INDEX_TYPE = "IVFFlat"
#: Values per write call (one TileDB fragment each); bounds the memory of a write.
MAX_VALUES_PER_WRITE = 8 * 1024 * 1024


def _platform_config(n_features: int) -> dict[str, Any]:
    # float vectors hardly compress (1 M x 50 random-like values: 177 MB at zstd 3, 178 MB at
    # zstd 1) while zstd 3 took a third longer to write: level 1
    zstd = {"_type": "ZstdFilter", "level": 1}
    return {
        "tiledb": {
            "create": {
                "capacity": 2**16,
                "dims": {
                    "soma_dim_0": {"tile": 2048, "filters": ["DoubleDeltaFilter", zstd]},
                    "soma_dim_1": {"tile": n_features, "filters": ["ByteShuffleFilter", zstd]},
                },
                "attrs": {"soma_data": {"filters": ["ByteShuffleFilter", zstd]}},
                "cell_order": "row-major",
                "tile_order": "row-major",
                "allows_duplicates": False,
            }
        }
    }


#: The vectors are written sorted by (joinid, component), which is the arrays' global order
#: (row-major tiles spanning every component), and their keys were checked unique and in bounds
#: before writing: TileDB's own per-cell checks would only repeat that, at most of the cost of a
#: write (the builder's X writer does the same).
_WRITE_CONFIG: dict[str, str | float | None] = {
    "sm.check_coord_dups": "false",
    "sm.check_coord_oob": "false",
    "sm.check_global_order": "false",
}
_GLOBAL_ORDER = {"tiledb": {"write": {"sort_coords": False}}}


def write_embedding_array(
    uri: str,
    km: KeyedMatrix,
    *,
    info_json: str,
    context: soma.SOMATileDBContext | None = None,
) -> None:
    """Create the embedding array at ``uri`` and write every vector (sorted by joinid).

    The shape is (axis length of the release, number of components), as the official layout
    has it; cells without a vector hold no values (readers return NaN for them). Each block of
    at most :data:`MAX_VALUES_PER_WRITE` values is one global-order write (one fragment).
    """
    import pyarrow as pa
    import tiledbsoma as soma

    n, d = km.matrix.shape
    if n > 1 and not bool(np.all(km.joinids[1:] > km.joinids[:-1])):
        msg = "embedding rows must be sorted by unique soma_joinid before writing"
        raise BadInputError(msg)
    if n and (int(km.joinids[0]) < 0 or int(km.joinids[-1]) >= km.axis_length):
        msg = f"soma_joinids must lie in [0, {km.axis_length}) before writing"
        raise BadInputError(msg)
    base = context or soma.SOMATileDBContext()
    ctx = base.replace(tiledb_config=_WRITE_CONFIG)
    rows_per_write = max(1, MAX_VALUES_PER_WRITE // d)
    components = np.arange(d, dtype=np.int64)
    with soma.SparseNDArray.create(
        uri,
        type=pa.float32(),
        shape=(max(km.axis_length, 1), d),
        platform_config=_platform_config(d),
        context=ctx,
    ) as arr:
        arr.metadata[EMBEDDING_INFO_KEY] = info_json
        for start in range(0, n, rows_per_write):
            stop = min(n, start + rows_per_write)
            ids = km.joinids[start:stop]
            arr.write(
                pa.Table.from_arrays(
                    [
                        pa.array(np.repeat(ids, d)),
                        pa.array(np.tile(components, stop - start)),
                        pa.array(km.matrix[start:stop].reshape(-1)),
                    ],
                    names=["soma_dim_0", "soma_dim_1", "soma_data"],
                ),
                platform_config=_GLOBAL_ORDER,
            )
    logger.debug("wrote %d x %d embedding to %s", n, d, uri)


def _vector_search() -> Any:  # noqa: ANN401 - an optional module
    try:
        import tiledb.vector_search as vs
    except ImportError as e:
        msg = (
            "building or querying a vector index needs tiledb-vector-search: "
            "pip install 'cellcensus[embeddings]' (or tiledb-vector-search)"
        )
        raise ConfigError(msg) from e
    return vs


def build_ivf_flat_index(
    path: Path, km: KeyedMatrix, *, partitions: int | None = None, seed: int = 0
) -> int:
    """Build an IVFFlat index of the vectors in the local directory ``path``.

    External ids are the cells' ``soma_joinid`` values, so a query answers joinids directly.
    Partitions default to ``ceil(sqrt(n))`` (as the official indexer), trained on all vectors
    (or a random sample of them for large inputs).

    Returns
    -------
    int
        The number of partitions.

    Raises
    ------
    ConfigError
        tiledb-vector-search is not installed.
    BadInputError
        Fewer vectors than partitions.
    """
    vs = _vector_search()
    n = int(km.matrix.shape[0])
    parts = partitions if partitions is not None else max(1, math.ceil(math.sqrt(n)))
    if parts > n:
        msg = f"an IVFFlat index of {n} vectors cannot have {parts} partitions"
        raise BadInputError(msg, field="partitions")
    # the index's k-means and training sample draw from numpy's global RNG: seed it for a
    # reproducible index, and give the caller's RNG state back afterwards
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        vs.ingest(
            index_type="IVF_FLAT",
            index_uri=str(path),
            input_vectors=km.matrix,
            external_ids=km.joinids.astype(np.uint64),
            partitions=parts,
            training_sampling_policy=vs.ingestion.TrainingSamplingPolicy.RANDOM,
            training_sample_size=min(n, max(parts * 64, 100_000)),
            verbose=False,
        )
    finally:
        np.random.set_state(state)
    return parts
