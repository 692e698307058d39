"""Large synthetic corpora for scale tests and benchmarks, fast to make at millions of cells.

:func:`synth_corpus` draws realistic counts cell by cell (a few thousand cells/s), too slow for
tens of millions of cells. :func:`bulk_corpus` takes one small synthetic dataset per organism as a
template (real ontology terms and labels, real gene ids) and writes large datasets from it quickly:

- obs rows are template rows drawn at random (so every label matches its term id), with new
  unique cell names and ``observation_joinid`` values;
- X holds a few counts per cell (``values_per_cell`` distinct genes, small integers), CSR,
  gzip level 1, streamed in chunks with anndata's ``sparse_dataset(...).append``.

The files are the published CELLxGENE form the builder reads (schema 7.0.0); they are not meant to
pass the submission validator (counts are not a biological model).
"""

from __future__ import annotations

import csv
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

import h5py
import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from pathlib import Path

HUMAN, MOUSE = "NCBITaxon:9606", "NCBITaxon:10090"
_CHUNK = 262_144
_X_KWARGS = {"compression": "gzip", "compression_opts": 1, "chunks": (65536,)}


@dataclass(frozen=True)
class Template:
    obs: pd.DataFrame
    var: pd.DataFrame
    uns: dict[str, object]


def template(workdir: Path, organism: str) -> Template:
    """A small synth dataset of ``organism`` (made once under ``workdir``), read whole."""
    import anndata as ad

    from cellcensus.synth._corpus import synth_corpus
    from cellcensus.synth._spec import DatasetSpec

    name = "human" if organism == HUMAN else "mouse"
    path = workdir / f"template-{name}" / f"template-{name}.h5ad"
    if not path.exists():
        shutil.rmtree(path.parent, ignore_errors=True)
        synth_corpus(
            path.parent,
            seed=11,
            specs=[
                DatasetSpec(
                    dataset_id=f"template-{name}",
                    organism_ontology_term_id=organism,
                    n_cells=4000,
                    n_genes=2000,
                    assays=("EFO:0009922", "EFO:0009899", "EFO:0030003"),
                )
            ],
        )
    a = ad.read_h5ad(path)
    uns = {k: a.uns[k] for k in ("schema_version", "organism_ontology_term_id", "title")}
    uns["organism"] = a.uns.get("organism", "")
    return Template(obs=a.obs, var=a.var, uns=uns)


def _counts(rng: np.random.Generator, n: int, n_genes: int, k: int) -> sparse.csr_matrix:
    """``k`` distinct genes per cell (one from each of k equal column strides), counts 1-8."""
    stride = n_genes // k
    cols = (np.arange(k) * stride)[None, :] + rng.integers(0, stride, size=(n, k))
    data = rng.integers(1, 9, size=n * k).astype(np.float32)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    return sparse.csr_matrix((data, cols.reshape(-1).astype(np.int32), indptr), (n, n_genes))


def write_dataset(
    path: Path, tpl: Template, *, dataset_id: str, n_cells: int, values_per_cell: int, seed: int
) -> None:
    """One large dataset from a template (see the module docstring)."""
    from anndata.io import sparse_dataset, write_elem

    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(tpl.obs), size=n_cells)
    obs = tpl.obs.iloc[pick].copy()
    obs.index = pd.Index([f"{dataset_id}-c{i}" for i in range(n_cells)], dtype=object)
    obs["observation_joinid"] = [f"{dataset_id[:6]}{i:x}" for i in range(n_cells)]
    tmp = path.with_suffix(".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["encoding-type"] = "anndata"
        f.attrs["encoding-version"] = "0.1.0"
        write_elem(f, "obs", obs)
        del obs
        write_elem(f, "var", tpl.var)
        write_elem(f, "uns", {**tpl.uns, "title": f"scale benchmark {dataset_id}"})
        for group in ("obsm", "varm", "obsp", "varp", "layers"):
            write_elem(f, group, {})
        n_genes = len(tpl.var)
        first = min(_CHUNK, n_cells)
        write_elem(f, "X", _counts(rng, first, n_genes, values_per_cell), dataset_kwargs=_X_KWARGS)
        x = sparse_dataset(f["X"])
        for start in range(first, n_cells, _CHUNK):
            x.append(_counts(rng, min(_CHUNK, n_cells - start), n_genes, values_per_cell))
    tmp.replace(path)


def bulk_corpus(
    workdir: Path, *, n_cells: int, n_datasets: int, values_per_cell: int = 20, seed: int = 0
) -> Path:
    """A corpus of ``n_datasets`` equal datasets (alternately human and mouse), made once.

    Parameters
    ----------
    workdir
        Where the corpus (``corpus-<cells>-<datasets>-<values>/``) and the templates go; an
        existing corpus with a manifest is reused.
    n_cells
        Cells of the whole corpus.
    n_datasets
        Number of datasets (equal sizes; the last takes the remainder).
    values_per_cell
        Stored values (distinct genes) per cell.
    seed
        Same seed, same files.

    Returns
    -------
    Path
        The corpus's ``manifest.csv``.
    """
    out = workdir / f"corpus-{n_cells}-{n_datasets}-{values_per_cell}"
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    templates = {o: template(workdir, o) for o in (HUMAN, MOUSE)}
    rows = []
    per = n_cells // n_datasets
    for i in range(n_datasets):
        organism = HUMAN if i % 2 == 0 else MOUSE
        dataset_id = f"scale-{i:03d}"
        n = per + (n_cells - per * n_datasets if i == n_datasets - 1 else 0)
        path = out / f"{dataset_id}.h5ad"
        write_dataset(
            path,
            templates[organism],
            dataset_id=dataset_id,
            n_cells=n,
            values_per_cell=values_per_cell,
            seed=seed * 1000 + i,
        )
        rows.append({"dataset_id": dataset_id, "dataset_asset_h5ad_uri": path.name})
    with (out / "manifest.tmp").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["dataset_id", "dataset_asset_h5ad_uri"])
        writer.writeheader()
        writer.writerows(rows)
    (out / "manifest.tmp").replace(manifest)
    return manifest
