"""A tiny but real Census-shaped build directory, written directly with tiledbsoma in seconds.

``write_tiny_build`` writes ``soma/`` (a Census-shaped TileDB-SOMA collection: ``census_info``
and ``census_data/homo_sapiens``), ``h5ads/`` (two H5ADs) and a ``build.json``: the contract of a
builder's output, for the release and reliability tests that need a build but not the builder.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp
import tiledbsoma

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["DATASET_IDS", "N_OBS", "N_VAR", "write_tiny_build"]

N_OBS = 60
N_VAR = 25
DATASET_IDS = ("0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002")


def _write_tiny_soma(soma: Path) -> None:
    rng = np.random.default_rng(0)
    ctx = tiledbsoma.SOMATileDBContext()
    tiledbsoma.Collection.create(str(soma), context=ctx).close()

    # census_info
    info_uri = soma / "census_info"
    tiledbsoma.Collection.create(str(info_uri), context=ctx).close()
    summary = pa.table(
        {
            "soma_joinid": pa.array([0, 1, 2], pa.int64()),
            "label": ["census_schema_version", "census_build_date", "total_cell_count"],
            "value": ["2.1.0", "2026-11-01", str(N_OBS)],
        }
    )
    datasets = pa.table(
        {
            "soma_joinid": pa.array([0, 1], pa.int64()),
            "dataset_id": list(DATASET_IDS),
            "dataset_title": ["tiny one", "tiny two"],
            "dataset_h5ad_path": [f"{d}.h5ad" for d in DATASET_IDS],
            "dataset_total_cell_count": pa.array([N_OBS // 2, N_OBS // 2], pa.int64()),
        }
    )
    for name, table in (("summary", summary), ("datasets", datasets)):
        uri = str(info_uri / name)
        with tiledbsoma.DataFrame.create(
            uri,
            schema=table.schema,
            index_column_names=["soma_joinid"],
            domain=[(0, table.num_rows - 1)],
            context=ctx,
        ) as df:
            df.write(table)
    with tiledbsoma.Collection[Any].open(str(info_uri), "w", context=ctx) as coll:
        for name in ("summary", "datasets"):
            coll.set(
                name,
                tiledbsoma.DataFrame.open(str(info_uri / name), context=ctx),
                use_relative_uri=True,
            )

    # census_data/homo_sapiens
    data_uri = soma / "census_data"
    tiledbsoma.Collection.create(str(data_uri), context=ctx).close()
    exp_uri = data_uri / "homo_sapiens"
    tiledbsoma.Experiment.create(str(exp_uri), context=ctx).close()
    cat = pa.dictionary(pa.int8(), pa.large_string())
    obs = pa.table(
        {
            "soma_joinid": pa.array(np.arange(N_OBS), pa.int64()),
            "dataset_id": pa.array([DATASET_IDS[i % 2] for i in range(N_OBS)]).cast(cat),
            "cell_type": pa.array(
                [("T cell", "B cell", "monocyte")[i % 3] for i in range(N_OBS)]
            ).cast(cat),
            "cell_type_ontology_term_id": pa.array(
                [("CL:0000084", "CL:0000236", "CL:0000576")[i % 3] for i in range(N_OBS)]
            ).cast(cat),
            "assay": pa.array(["10x 3' v3"] * N_OBS).cast(cat),
            "tissue_general": pa.array(["blood"] * N_OBS).cast(cat),
            "is_primary_data": pa.array([True] * N_OBS),
            "observation_joinid": pa.array(
                [f"obs{i:04d}" for i in range(N_OBS)], pa.large_string()
            ),
        }
    )
    with tiledbsoma.DataFrame.create(
        str(exp_uri / "obs"),
        schema=obs.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, N_OBS - 1)],
        context=ctx,
    ) as df:
        df.write(obs)
    ms_uri = exp_uri / "ms"
    tiledbsoma.Collection.create(str(ms_uri), context=ctx).close()
    rna_uri = ms_uri / "RNA"
    tiledbsoma.Measurement.create(str(rna_uri), context=ctx).close()
    var = pa.table(
        {
            "soma_joinid": pa.array(np.arange(N_VAR), pa.int64()),
            "feature_id": pa.array([f"ENSG{i:011d}" for i in range(N_VAR)], pa.large_string()),
            "feature_name": pa.array([f"GENE{i}" for i in range(N_VAR)], pa.large_string()),
            "feature_length": pa.array(rng.integers(100, 5000, N_VAR), pa.int64()),
        }
    )
    with tiledbsoma.DataFrame.create(
        str(rna_uri / "var"),
        schema=var.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, N_VAR - 1)],
        context=ctx,
    ) as df:
        df.write(var)
    x_uri = rna_uri / "X"
    tiledbsoma.Collection.create(str(x_uri), context=ctx).close()
    m = sp.random(N_OBS, N_VAR, density=0.3, format="coo", random_state=1, dtype=np.float32)
    m.data = np.ceil(m.data * 10).astype(np.float32)
    with tiledbsoma.SparseNDArray.create(
        str(x_uri / "raw"), type=pa.float32(), shape=(N_OBS, N_VAR), context=ctx
    ) as arr:
        arr.write(
            pa.table(
                {
                    "soma_dim_0": pa.array(m.row.astype(np.int64)),
                    "soma_dim_1": pa.array(m.col.astype(np.int64)),
                    "soma_data": pa.array(m.data),
                }
            )
        )

    # group membership, relative URIs only (the copy must open after upload)
    with tiledbsoma.Collection[Any].open(str(x_uri), "w", context=ctx) as coll:
        coll.set(
            "raw",
            tiledbsoma.SparseNDArray.open(str(x_uri / "raw"), context=ctx),
            use_relative_uri=True,
        )
    with tiledbsoma.Measurement.open(str(rna_uri), "w", context=ctx) as c:
        c.set(
            "var",
            tiledbsoma.DataFrame.open(str(rna_uri / "var"), context=ctx),
            use_relative_uri=True,
        )
        c.set("X", tiledbsoma.Collection[Any].open(str(x_uri), context=ctx), use_relative_uri=True)
    with tiledbsoma.Collection[Any].open(str(ms_uri), "w", context=ctx) as coll:
        coll.set(
            "RNA", tiledbsoma.Measurement.open(str(rna_uri), context=ctx), use_relative_uri=True
        )
    with tiledbsoma.Experiment.open(str(exp_uri), "w", context=ctx) as c:
        c.set(
            "obs",
            tiledbsoma.DataFrame.open(str(exp_uri / "obs"), context=ctx),
            use_relative_uri=True,
        )
        c.set(
            "ms", tiledbsoma.Collection[Any].open(str(ms_uri), context=ctx), use_relative_uri=True
        )
    with tiledbsoma.Collection[Any].open(str(data_uri), "w", context=ctx) as coll:
        coll.set(
            "homo_sapiens",
            tiledbsoma.Experiment.open(str(exp_uri), context=ctx),
            use_relative_uri=True,
        )
    with tiledbsoma.Collection[Any].open(str(soma), "w", context=ctx) as coll:
        coll.set(
            "census_info",
            tiledbsoma.Collection.open(str(info_uri), context=ctx),
            use_relative_uri=True,
        )
        coll.set(
            "census_data",
            tiledbsoma.Collection.open(str(data_uri), context=ctx),
            use_relative_uri=True,
        )
        coll.metadata["cxg_schema_version"] = "2.1.0"


def _write_h5ads(h5ads: Path) -> None:
    h5ads.mkdir(parents=True)
    for i, dataset_id in enumerate(DATASET_IDS):
        x = sp.random(
            N_OBS // 2, N_VAR, density=0.3, format="csr", random_state=i, dtype=np.float32
        )
        obs = pd.DataFrame(index=[f"cell{j}" for j in range(N_OBS // 2)])
        var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(N_VAR)])
        ad.AnnData(X=x, obs=obs, var=var).write_h5ad(h5ads / f"{dataset_id}.h5ad")


def write_tiny_build(out: Path, *, note: str = "tiny") -> Path:
    """Write a build directory (``soma/``, ``h5ads/``, ``build.json``) at ``out``."""
    out.mkdir(parents=True)
    _write_tiny_soma(out / "soma")
    _write_h5ads(out / "h5ads")
    (out / "build.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "tag": "2026-11-01",
                "note": note,
                "inputs": [{"dataset_id": d, "sha256": "0" * 64} for d in DATASET_IDS],
            },
            indent=2,
        )
    )
    return out
