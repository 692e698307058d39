"""A Census-shaped SOMA collection with a large X, written directly with tiledbsoma in seconds.

Only what the export reads: ``census_data/homo_sapiens`` with ``obs`` (``soma_joinid``,
``cell_type`` (dictionary), ``nnz``), ``ms/RNA/var`` (``soma_joinid``, ``feature_id``,
``feature_name``, ``nnz``) and ``ms/RNA/X/raw`` (float32, ``nnz_per_cell`` values per cell).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import tiledbsoma as soma

if TYPE_CHECKING:
    from pathlib import Path


def write_big_census(
    root: Path,
    *,
    n_obs: int,
    n_var: int,
    nnz_per_cell: int,
    seed: int = 0,
    chunk: int = 4000,
    with_nnz: bool = True,
) -> Path:
    """Write the collection at ``root`` and return it (``with_nnz=False``: no ``nnz`` columns,
    like a SOMA experiment that is not a census)."""
    rng = np.random.default_rng(seed)
    ctx = soma.SOMATileDBContext()
    soma.Collection.create(str(root), context=ctx).close()
    data_uri = root / "census_data"
    exp_uri = data_uri / "homo_sapiens"
    soma.Collection.create(str(data_uri), context=ctx).close()
    soma.Experiment.create(str(exp_uri), context=ctx).close()

    cat = pa.dictionary(pa.int8(), pa.large_string())
    cell_types = ["T cell", "B cell", "monocyte", "neuron"]
    obs = pa.table(
        {
            "soma_joinid": pa.array(np.arange(n_obs, dtype=np.int64)),
            "cell_type": pa.DictionaryArray.from_arrays(
                pa.array(np.arange(n_obs) % len(cell_types), pa.int8()),
                pa.array(cell_types, pa.large_string()),
            ),
            "nnz": pa.array(np.full(n_obs, nnz_per_cell, dtype=np.int64)),
        }
    )
    schema = pa.schema(
        [
            pa.field("soma_joinid", pa.int64(), nullable=False),
            pa.field("cell_type", cat),
            pa.field("nnz", pa.int64()),
        ]
    )
    if not with_nnz:
        obs = obs.drop_columns(["nnz"])
        schema = schema.remove(schema.get_field_index("nnz"))
    with soma.DataFrame.create(
        str(exp_uri / "obs"),
        schema=schema,
        index_column_names=["soma_joinid"],
        domain=[(0, n_obs - 1)],
        context=ctx,
    ) as df:
        df.write(obs.cast(schema))

    soma.Collection.create(str(exp_uri / "ms"), context=ctx).close()
    rna = exp_uri / "ms" / "RNA"
    soma.Measurement.create(str(rna), context=ctx).close()
    var = pa.table(
        {
            "soma_joinid": pa.array(np.arange(n_var, dtype=np.int64)),
            "feature_id": pa.array([f"ENSG{i:011d}" for i in range(n_var)], pa.large_string()),
            "feature_name": pa.array([f"GENE{i}" for i in range(n_var)], pa.large_string()),
            "nnz": pa.array(np.full(n_var, n_obs * nnz_per_cell // n_var, dtype=np.int64)),
        }
    )
    if not with_nnz:
        var = var.drop_columns(["nnz"])
    with soma.DataFrame.create(
        str(rna / "var"),
        schema=var.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, n_var - 1)],
        context=ctx,
    ) as df:
        df.write(var)
    soma.Collection.create(str(rna / "X"), context=ctx).close()
    with soma.SparseNDArray.create(
        str(rna / "X" / "raw"), type=pa.float32(), shape=(n_obs, n_var), context=ctx
    ) as arr:
        cols_template = np.arange(n_var, dtype=np.int64)
        for start in range(0, n_obs, chunk):
            n = min(chunk, n_obs - start)
            rows = np.repeat(np.arange(start, start + n, dtype=np.int64), nnz_per_cell)
            # nnz_per_cell distinct, sorted genes per cell: a random offset into a stride
            offsets = rng.integers(0, n_var - nnz_per_cell + 1, size=n)
            cols = (offsets[:, None] + cols_template[None, :nnz_per_cell]).ravel()
            data = rng.integers(1, 50, size=rows.size).astype(np.float32)
            arr.write(pa.table({"soma_dim_0": rows, "soma_dim_1": cols, "soma_data": data}))
    # group members
    with soma.Collection[soma.SparseNDArray].open(str(rna / "X"), "w", context=ctx) as c:
        c.set(
            "raw",
            soma.SparseNDArray.open(str(rna / "X" / "raw"), context=ctx),
            use_relative_uri=True,
        )
    with soma.Measurement.open(str(rna), "w", context=ctx) as c:
        c.set("var", soma.DataFrame.open(str(rna / "var"), context=ctx), use_relative_uri=True)
        c.set("X", soma.Collection.open(str(rna / "X"), context=ctx), use_relative_uri=True)
    with soma.Collection[soma.Measurement].open(str(exp_uri / "ms"), "w", context=ctx) as c:
        c.set("RNA", soma.Measurement.open(str(rna), context=ctx), use_relative_uri=True)
    with soma.Experiment.open(str(exp_uri), "w", context=ctx) as c:
        c.set("obs", soma.DataFrame.open(str(exp_uri / "obs"), context=ctx), use_relative_uri=True)
        c.set("ms", soma.Collection.open(str(exp_uri / "ms"), context=ctx), use_relative_uri=True)
    with soma.Collection[soma.Experiment].open(str(data_uri), "w", context=ctx) as c:
        c.set(
            "homo_sapiens", soma.Experiment.open(str(exp_uri), context=ctx), use_relative_uri=True
        )
    with soma.Collection[soma.Collection[soma.Experiment]].open(str(root), "w", context=ctx) as c:
        c.set(
            "census_data", soma.Collection.open(str(data_uri), context=ctx), use_relative_uri=True
        )
    return root
