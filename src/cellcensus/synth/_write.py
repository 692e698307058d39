"""Write one synthetic dataset as an H5AD file: :func:`write_dataset`."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata.io import read_elem, write_elem

from cellcensus.errors import BadInputError
from cellcensus.synth._catalog import organism_info, term_label
from cellcensus.synth._counts import CountsSource, build_model, normalize
from cellcensus.synth._genes import FeatureSet, features_from_ids, select_features, var_frame
from cellcensus.synth._h5 import (
    COMPRESSION,
    CscWriter,
    CsrWriter,
    DenseWriter,
    EmbeddingWriter,
    MatrixWriter,
    write_element,
    write_empty_dict,
    write_file_header,
)
from cellcensus.synth._obs import SUBMISSION_COLUMNS, CellTable, add_labels, make_cells
from cellcensus.synth._provenance import provenance
from cellcensus.synth._random import Stream, check_seed, generator, text_key
from cellcensus.synth._spatial import SpatialLayout, image_rows, make_layout

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy.typing as npt

    from cellcensus.synth._spec import DatasetSpec

__all__ = ["SCHEMA_REFERENCE", "write_dataset"]

logger = logging.getLogger(__name__)

SCHEMA_REFERENCE = (
    "https://github.com/chanzuckerberg/single-cell-curation/blob/main/schema/{version}/schema.md"
)
EMBEDDING_KEY = "X_umap"


class RowSource(Protocol):
    """Gives counts (CSR float32) and embedding rows of a dataset for any row range."""

    n_rows: int

    def rows(self, start: int, stop: int) -> tuple[sp.csr_matrix, npt.NDArray[np.float32]]:
        """Counts and embedding of rows ``[start, stop)``."""
        ...


@dataclass
class _Plan:
    obs: pd.DataFrame  # submission columns
    features: FeatureSet
    source: RowSource
    title: str
    spatial: SpatialLayout | None = None


class _DuplicateSource:
    """Rows of a source H5AD (written by this package), picked by sorted row numbers."""

    def __init__(self, f: h5py.File, picked: npt.NDArray[np.int64], n_features: int) -> None:
        self.picked = picked
        self.n_rows = len(picked)
        self.n_features = n_features
        x = f["raw/X"] if "raw" in f else f["X"]
        self.x = x
        self.sparse = isinstance(x, h5py.Group)
        if self.sparse and x.attrs.get("encoding-type") != "csr_matrix":
            msg = (
                f"the source's counts matrix is encoded as {x.attrs.get('encoding-type')!r}; "
                "duplicates can be made of CSR or dense sources only"
            )
            raise BadInputError(
                msg,
                field="duplicate_of",
            )
        if EMBEDDING_KEY not in f.get("obsm", {}):
            msg = f"the source has no obsm[{EMBEDDING_KEY!r}]"
            raise BadInputError(msg, field="duplicate_of")
        self.embedding = f["obsm"][EMBEDDING_KEY]

    def _span(self, lo: int, hi: int) -> sp.csr_matrix:
        if self.sparse:
            indptr = self.x["indptr"][lo : hi + 1].astype(np.int64)
            data = self.x["data"][indptr[0] : indptr[-1]]
            indices = self.x["indices"][indptr[0] : indptr[-1]]
            return sp.csr_matrix(
                (data.astype(np.float32), indices, indptr - indptr[0]),
                shape=(hi - lo, self.n_features),
            )
        return sp.csr_matrix(self.x[lo:hi].astype(np.float32))

    def rows(self, start: int, stop: int) -> tuple[sp.csr_matrix, npt.NDArray[np.float32]]:
        """Counts and embedding of duplicate rows ``[start, stop)``."""
        picked = self.picked[start:stop]
        parts = []
        step = 1 << 20 if self.sparse else 1024  # dense spans are read 1,024 rows at a time
        lo = int(picked[0])
        while lo <= picked[-1]:
            hi = min(lo + step, int(picked[-1]) + 1)
            inside = picked[(picked >= lo) & (picked < hi)]
            if inside.size:
                parts.append(self._span(lo, hi)[inside - lo])
            lo = hi
        counts = sp.csr_matrix(parts[0] if len(parts) == 1 else sp.vstack(parts, format="csr"))
        counts.sort_indices()
        first, last = int(picked[0]), int(picked[-1]) + 1
        emb = np.asarray(self.embedding[first:last], dtype=np.float32)[picked - first]
        return counts, emb


def _title(spec: DatasetSpec, obs: pd.DataFrame) -> str:
    if spec.title:
        return spec.title
    version = spec.schema_version
    tissues = [term_label(str(t), version) for t in obs["tissue_ontology_term_id"].cat.categories]
    assays = [term_label(str(a), version) for a in obs["assay_ontology_term_id"].cat.categories]
    organism = organism_info(spec.organism_ontology_term_id).label
    return f"{organism} {', '.join(tissues)} profiled with {', '.join(assays)} (synthetic)"


_OUT_OF_TISSUE_DEPTH = 0.1  # relative sequencing depth of Visium spots outside the tissue


def _spatial_cells(cells: CellTable, layout: SpatialLayout) -> CellTable:
    """Cells of a spatial dataset: Visium obs columns, ``unknown`` cell type and shallow counts
    for spots outside the tissue."""
    frame = cells.frame.copy()
    for name, values in layout.obs_columns.items():
        frame[name] = values
    inside = layout.in_tissue
    cell_type = frame["cell_type_ontology_term_id"].astype(object).to_numpy()
    cell_type[~inside] = "unknown"
    frame["cell_type_ontology_term_id"] = pd.Categorical(cell_type)
    depth = np.where(inside, 1.0, _OUT_OF_TISSUE_DEPTH).astype(np.float32)
    return dataclasses.replace(cells, frame=frame, size_factor=cells.size_factor * depth)


def _generated_plan(spec: DatasetSpec, seed: int) -> _Plan:
    key = text_key(spec.dataset_id)
    features = select_features(
        spec.organism_ontology_term_id, spec.n_genes, spec.n_spike_ins, seed=seed, dataset_key=key
    )
    cells = make_cells(spec, seed=seed, dataset_key=key)
    layout = make_layout(spec, seed=seed, dataset_key=key)
    if layout is not None:
        cells = _spatial_cells(cells, layout)
    model = build_model(features, cells, seed=seed, dataset_key=key)
    source = CountsSource(model, cells, seed=seed, dataset_key=key)
    return _Plan(
        obs=cells.frame,
        features=features,
        source=source,
        title=_title(spec, cells.frame),
        spatial=layout,
    )


def _write_spatial(f: h5py.File, spec: DatasetSpec, layout: SpatialLayout) -> None:
    """``obsm["spatial"]`` and the Visium images (``uns["spatial"]`` itself is in uns)."""
    write_elem(f["obsm"], "spatial", layout.positions, dataset_kwargs=COMPRESSION)
    if layout.library_id is None:
        return
    images = f["uns"]["spatial"][layout.library_id]["images"]
    rows = layout.hires_shape[0]  # at most 2,000 x 2,000 x 3 bytes: written whole
    write_elem(images, "hires", image_rows(layout, "hires", 0, rows), dataset_kwargs=COMPRESSION)
    if spec.spatial_fullres:
        write_elem(images, "fullres", _fullres(layout), dataset_kwargs=COMPRESSION)


def _fullres(layout: SpatialLayout) -> Any:  # noqa: ANN401 - a dask array
    """The full-resolution image as a lazy dask array of row blocks (~64 MB each)."""
    import dask.array as da

    n_rows, n_cols = layout.fullres_shape
    step = max(1, (64 << 20) // (n_cols * 3))
    chunks = (tuple(min(step, n_rows - r) for r in range(0, n_rows, step)), (n_cols,), (3,))

    def block(block_info: dict[Any, Any] | None = None) -> npt.NDArray[np.uint8]:
        if block_info is None:  # dask probing the function's output type
            return np.zeros((0, n_cols, 3), dtype=np.uint8)
        start, stop = block_info[None]["array-location"][0]
        return image_rows(layout, "fullres", start, stop)

    meta = np.empty((0, 0, 0), np.uint8)
    return da.map_blocks(block, dtype=np.uint8, chunks=chunks, meta=meta)  # type: ignore[attr-defined,no-untyped-call]


def _duplicate_plan(spec: DatasetSpec, seed: int, source_path: Path, f: h5py.File) -> _Plan:
    organism = read_elem(f["uns/organism_ontology_term_id"])
    if organism != spec.organism_ontology_term_id:
        msg = f"source {source_path} is {organism}, not {spec.organism_ontology_term_id}"
        raise BadInputError(
            msg,
            dataset_id=spec.dataset_id,
            field="duplicate_of",
        )
    var_group = f["raw/var"] if "raw" in f else f["var"]
    feature_ids = np.asarray(read_elem(var_group[var_group.attrs["_index"]]), dtype=object)
    features = features_from_ids(spec.organism_ontology_term_id, feature_ids)
    source_obs = read_elem(f["obs"])
    n_source = len(source_obs)
    if spec.n_cells > n_source:
        msg = f"n_cells={spec.n_cells} exceeds the {n_source} cells of source {source_path}"
        raise BadInputError(
            msg,
            dataset_id=spec.dataset_id,
            field="n_cells",
        )
    rng = generator(seed, text_key(spec.dataset_id), Stream.DUPLICATE)
    picked = np.sort(rng.choice(n_source, size=spec.n_cells, replace=False)).astype(np.int64)
    obs = source_obs.iloc[picked][list(SUBMISSION_COLUMNS)].copy()
    for column in obs.columns:
        if isinstance(obs[column].dtype, pd.CategoricalDtype):
            obs[column] = obs[column].cat.remove_unused_categories()
    obs["is_primary_data"] = np.zeros(len(obs), dtype=bool)
    source_title = str(read_elem(f["uns/title"]))
    title = spec.title or f"{source_title} - re-used subset"
    return _Plan(
        obs=obs,
        features=features,
        source=_DuplicateSource(f, picked, features.n_features),
        title=title,
    )


def _uns(spec: DatasetSpec, plan: _Plan, seed: int, published: bool) -> dict[str, Any]:
    uns: dict[str, Any] = {
        "organism_ontology_term_id": spec.organism_ontology_term_id,
        "title": plan.title,
        "default_embedding": EMBEDDING_KEY,
    }
    if published:
        uns["organism"] = organism_info(spec.organism_ontology_term_id).label
        uns["schema_version"] = spec.schema_version
        uns["schema_reference"] = SCHEMA_REFERENCE.format(version=spec.schema_version)
        uns["citation"] = provenance(spec, seed).citation
        if spec.schema_version != "7.0.0":  # added by the 7.1 label writer
            uns["is_pre_analysis"] = False
    if plan.spatial is not None:
        uns["spatial"] = plan.spatial.uns()
    return uns


def _chunks(n_rows: int, chunk_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n_rows, chunk_size):
        yield start, min(start + chunk_size, n_rows)


def _writers(
    f: h5py.File, spec: DatasetSpec, shape: tuple[int, int], col_nnz: npt.NDArray[np.int64] | None
) -> tuple[MatrixWriter, MatrixWriter | None]:
    def make(parent: h5py.Group, name: str) -> MatrixWriter:
        if spec.x_format == "csr":
            return CsrWriter(parent, name, shape)
        if spec.x_format == "dense":
            return DenseWriter(parent, name, shape)
        if col_nnz is None:
            msg = "CSC needs the column counts of a first pass"
            raise RuntimeError(msg)
        return CscWriter(parent, name, shape, col_nnz)

    x = make(f, "X")
    raw = make(f["raw"], "X") if spec.raw_location == "raw" else None
    return x, raw


def _write_contents(
    f: h5py.File,
    spec: DatasetSpec,
    plan: _Plan,
    *,
    seed: int,
    chunk_size: int,
    published: bool,
    progress: Callable[[int], None] | None,
) -> None:
    write_file_header(f)
    obs = add_labels(plan.obs, spec.schema_version) if published else plan.obs
    write_element(f, "obs", obs)
    has_raw = spec.raw_location == "raw"
    write_element(f, "var", var_frame(plan.features, labels=published, filtered_column=True))
    if has_raw:
        raw = f.create_group("raw")
        raw.attrs["encoding-type"] = "raw"
        raw.attrs["encoding-version"] = "0.1.0"
        write_element(raw, "var", var_frame(plan.features, labels=published, filtered_column=False))
        write_empty_dict(raw, "varm")
    write_element(f, "uns", _uns(spec, plan, seed, published), compress=False)
    for name in ("layers", "obsp", "varm", "varp"):
        write_empty_dict(f, name)
    write_empty_dict(f, "obsm")

    n_rows, n_features = plan.source.n_rows, plan.features.n_features
    col_nnz: npt.NDArray[np.int64] | None = None
    if spec.x_format == "csc":  # first pass: entries per column
        col_nnz = np.zeros(n_features, dtype=np.int64)
        for start, stop in _chunks(n_rows, chunk_size):
            counts, _ = plan.source.rows(start, stop)
            col_nnz += np.bincount(counts.indices, minlength=n_features)
    x_writer, raw_writer = _writers(f, spec, (n_rows, n_features), col_nnz)
    embedding = EmbeddingWriter(f["obsm"], EMBEDDING_KEY, (n_rows, 2))
    for start, stop in _chunks(n_rows, chunk_size):
        counts, emb = plan.source.rows(start, stop)
        embedding.append(emb)
        if raw_writer is not None:
            raw_writer.append(counts)
            x_writer.append(normalize(counts))
        else:
            x_writer.append(counts)
        if progress is not None:
            progress(stop - start)
    x_writer.close()
    if raw_writer is not None:
        raw_writer.close()
    if plan.spatial is not None:
        _write_spatial(f, spec, plan.spatial)


def write_dataset(
    spec: DatasetSpec,
    path: str | Path,
    *,
    seed: int,
    chunk_size: int = 10_000,
    form: Literal["published", "submission"] = "published",
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Write one synthetic CELLxGENE dataset as an H5AD file, streaming the matrices in chunks.

    The file is written next to ``path`` under a temporary name and renamed when complete.

    Parameters
    ----------
    spec
        What to write. A dataset with ``duplicate_of`` reads its source from
        ``<directory of path>/<duplicate_of>.h5ad``, which must exist (CSR or dense).
    path
        The H5AD file to write (replaced if it exists).
    seed
        Corpus seed; the same seed and spec give the same obs, var and matrix values.
    chunk_size
        Cells generated and written per step; bounds memory, does not change the values.
    form
        ``"published"``: as CELLxGENE Discover distributes it (labels, ``observation_joinid``,
        ``schema_version``, ``citation`` ...), the form the Census builder reads;
        ``"submission"``: as a curator submits it, before those portal-added fields.
    progress
        Called after each chunk with the number of cells written.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    BadInputError
        Bad arguments, an unsupported organism, or a missing or unusable duplicate source.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from cellcensus.synth import DatasetSpec, write_dataset
    >>> spec = DatasetSpec(dataset_id="tiny", organism_ontology_term_id="NCBITaxon:9606",
    ...                    n_cells=50, n_genes=100)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     write_dataset(spec, Path(d) / "tiny.h5ad", seed=0).name
    'tiny.h5ad'
    """
    seed = check_seed(seed)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        msg = f"must be a positive integer, got {chunk_size!r}"
        raise BadInputError(msg, field="chunk_size")
    if form not in ("published", "submission"):
        msg = f"must be 'published' or 'submission', got {form!r}"
        raise BadInputError(msg, field="form")
    if not spec.dataset_id:
        msg = "the spec needs a dataset_id to write it"
        raise BadInputError(msg, field="dataset_id")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    started = time.perf_counter()
    source_path = path.parent / f"{spec.duplicate_of}.h5ad"
    if spec.duplicate_of is not None and not source_path.is_file():
        msg = (
            f"source {source_path} does not exist; write dataset {spec.duplicate_of!r} into the "
            "same directory first"
        )
        raise BadInputError(msg, dataset_id=spec.dataset_id, field="duplicate_of")
    source_file: h5py.File | None = None
    try:
        if spec.duplicate_of is not None:
            source_file = h5py.File(source_path, "r")
            plan = _duplicate_plan(spec, seed, source_path, source_file)
        else:
            plan = _generated_plan(spec, seed)
        with h5py.File(partial, "w") as f:
            _write_contents(
                f,
                spec,
                plan,
                seed=seed,
                chunk_size=chunk_size,
                published=form == "published",
                progress=progress,
            )
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        if source_file is not None:
            source_file.close()
    logger.info(
        "wrote %s: %d cells x %d features (%s, %s form) in %.1f s",
        path,
        plan.source.n_rows,
        plan.features.n_features,
        spec.x_format,
        form,
        time.perf_counter() - started,
    )
    return path
