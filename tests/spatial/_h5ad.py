"""Small spatial H5ADs in the published dataset-schema 7 layout, written with anndata, for the
scene-writer tests (each test can bend one part of them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from pathlib import Path

VISIUM = "EFO:0022857"
SLIDE_SEQ = "EFO:0030062"
LIBRARY = "lib_A1"


def hires_image(rows: int, cols: int, channels: int = 3) -> np.ndarray:
    """A deterministic uint8 image whose every pixel differs from its neighbours."""
    r = np.arange(rows, dtype=np.int64)[:, None, None]
    c = np.arange(cols, dtype=np.int64)[None, :, None]
    k = np.arange(channels, dtype=np.int64)[None, None, :]
    return ((r * 7 + c * 13 + k * 101) % 251).astype(np.uint8)


def spatial_adata(
    assay: str = VISIUM,
    *,
    n: int = 40,
    image: np.ndarray | None = None,
    coordinate_dtype: Any = np.float64,
    spatial_uns: dict[str, Any] | None = None,
    assays: list[str] | None = None,
) -> anndata.AnnData:
    """A spatial AnnData: ``n`` spots, 5 genes, locations, and for Visium one library."""
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {
            "assay_ontology_term_id": pd.Categorical(assays or [assay] * n),
            "is_primary_data": np.ones(n, dtype=bool),
        },
        index=[f"spot{i}" for i in range(n)],
    )
    if assay == VISIUM:
        obs["in_tissue"] = (np.arange(n) % 3 != 0).astype(np.int64)
        obs["array_row"] = np.arange(n, dtype=np.int64) // 8
        obs["array_col"] = np.arange(n, dtype=np.int64) % 8 * 2
    positions = rng.uniform(50, 950, size=(n, 2)).astype(coordinate_dtype)
    if spatial_uns is None:
        spatial_uns = {"is_single": np.bool_(True)}
        if assay == VISIUM:
            spatial_uns[LIBRARY] = {
                "images": {"hires": hires_image(60, 45) if image is None else image},
                "scalefactors": {"spot_diameter_fullres": 12.5, "tissue_hires_scalef": 0.05},
            }
    counts = sp.csr_matrix(rng.poisson(2.0, size=(n, 5)).astype(np.float32))
    return anndata.AnnData(
        X=counts,
        obs=obs,
        obsm={"spatial": positions},
        uns={"spatial": spatial_uns},
    )


def write(adata: anndata.AnnData, path: Path) -> Path:
    """Write ``adata`` as an H5AD."""
    adata.write_h5ad(path)
    return path
