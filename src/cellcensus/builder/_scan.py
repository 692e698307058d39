"""First pass over one dataset: checks, inclusion masks, vocabularies and summary counts.

Runs per dataset (in parallel on Dask when configured) and reads obs in row chunks; X is only read
here when values must be checked up front (``--on-error skip``).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from cellcensus.builder import _schema as S
from cellcensus.builder._source import OBS_CHUNK_ROWS, ColumnInfo, H5ADSource, row_chunks
from cellcensus.builder._xmath import is_nonnegative_integral
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger(__name__)

#: obs columns whose values are ontology term ids, checked against the ontologies.
_TERM_COLUMNS = (
    "assay_ontology_term_id",
    "cell_type_ontology_term_id",
    "development_stage_ontology_term_id",
    "disease_ontology_term_id",
    "self_reported_ethnicity_ontology_term_id",
    "sex_ontology_term_id",
    "tissue_ontology_term_id",
)
_SPECIAL_TERMS = frozenset({"unknown", "na"})
_DICT_COLUMNS = tuple(f.name for f in S.OBS_TERM_FIELDS if f.dictionary)


@cache
def _ontology() -> object:
    from cellxgene_ontology_guide.ontology_parser import OntologyParser

    with warnings.catch_warnings():
        # the guide marks the 7.0.0 ontology release deprecated; it is still the census's
        warnings.simplefilter("ignore", DeprecationWarning)
        return OntologyParser(f"v{S.CXG_SCHEMA_VERSION}")


@cache
def _tissue_general_terms() -> list[str]:
    from cellxgene_ontology_guide import curated_ontology_term_lists
    from cellxgene_ontology_guide.entities import CuratedOntologyTermList

    return list(
        curated_ontology_term_lists.get_curated_ontology_term_list(
            CuratedOntologyTermList.TISSUE_GENERAL
        )
    )


@cache
def tissue_general(tissue_id: str) -> tuple[str, str]:
    """(tissue_general_ontology_term_id, tissue_general) for a tissue term.

    The first curated high-level tissue above the term; the term itself when there is none or the
    term is unknown to the ontology.
    """
    parser = _ontology()
    try:
        general = parser.get_high_level_terms(tissue_id, _tissue_general_terms())[0]  # type: ignore[attr-defined]
    except (IndexError, KeyError, ValueError):
        general = tissue_id
    try:
        label = str(parser.get_term_label(general))  # type: ignore[attr-defined]
    except (KeyError, ValueError):
        label = general
    return str(general), label


def _map_terms(ids: pd.Series, fn: Callable[[str], str]) -> pd.Series:
    """Map each distinct value through ``fn``; a categorical result, without per-cell strings."""
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(str).astype("category")
    mapped = np.array([fn(str(t)) for t in ids.cat.categories], dtype=object)
    uniques, inverse = np.unique(mapped, return_inverse=True) if len(mapped) else (mapped, mapped)
    codes = ids.cat.codes.to_numpy()
    new_codes = np.where(codes >= 0, np.asarray(inverse, dtype=np.int64)[codes], -1)
    return pd.Series(
        pd.Categorical.from_codes(new_codes, categories=pd.Index(uniques)), index=ids.index
    )


def tissue_general_columns(tissue_ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``tissue_general_ontology_term_id`` and ``tissue_general`` of each cell (mapped per term)."""
    general_id = _map_terms(tissue_ids, lambda t: tissue_general(t)[0])
    general_label = _map_terms(tissue_ids, lambda t: tissue_general(t)[1])
    return general_id, general_label


def _valid_term(term: str) -> bool:
    if term in _SPECIAL_TERMS:
        return True
    try:
        return bool(_ontology().is_valid_term_id(term))  # type: ignore[attr-defined]
    except (KeyError, ValueError):
        return False


def check_terms(dataset_id: str, column: str, values: set[str]) -> None:
    """Raise BadInputError naming the first value of ``column`` that is not a known term id."""
    for value in sorted(values):
        parts = [p.strip() for chunk in value.split(" || ") for p in chunk.split(",")]
        bad = [p for p in parts if not _valid_term(p)]
        if bad:
            msg = (
                f"unknown ontology term id {bad[0]!r} (value {value!r}); use a term of the "
                f"ontology releases of dataset schema {S.CXG_SCHEMA_VERSION}"
            )
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
                field=column,
            )


@dataclass
class ScanResult:
    """What the first pass learned about one dataset (small; X is summarized, never kept)."""

    dataset_id: str
    path: str
    organism_term: str
    n_obs: int
    n_included: int = 0
    excluded_reason: str | None = None
    mask_path: str | None = None  # .npy of the cell mask when not all rows are included
    features: pd.DataFrame | None = None  # kept features: feature_id, name, length, type
    var_keep: npt.NDArray[np.int64] | None = None  # local var positions of kept features
    n_primary: int = 0
    column_info: dict[str, ColumnInfo] = field(default_factory=dict)
    values: dict[str, set[str]] = field(default_factory=dict)  # included values per dict column
    summary: Counter[tuple[str, str, str, bool]] = field(default_factory=Counter)
    chunks: list[tuple[int, int]] = field(default_factory=list)
    has_full_gene_cells: bool = False


def _check_uns(src: H5ADSource) -> str:
    version = src.uns_str("schema_version")
    if version not in S.ACCEPTED_CXG_SCHEMA_VERSIONS:
        msg = (
            f"dataset schema version {version!r} is not accepted (accepted: "
            f"{', '.join(S.ACCEPTED_CXG_SCHEMA_VERSIONS)})"
        )
        raise BadInputError(
            msg,
            dataset_id=src.dataset_id,
            field="uns.schema_version",
        )
    organism = src.uns_str("organism_ontology_term_id")
    if not organism:
        msg = "missing uns['organism_ontology_term_id'] (required by dataset schema 7)"
        raise BadInputError(
            msg,
            dataset_id=src.dataset_id,
            field="uns.organism_ontology_term_id",
        )
    return organism


def _features(src: H5ADSource, organism: str) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    missing = [c for c in S.REQUIRED_VAR_COLUMNS if c not in src.var_columns()]
    if missing:
        where = "raw.var" if src.has_raw else "var"
        msg = (
            f"required {where} column is missing (published H5ADs carry "
            f"{', '.join(S.REQUIRED_VAR_COLUMNS)})"
        )
        raise BadInputError(
            msg,
            dataset_id=src.dataset_id,
            field=missing[0],
        )
    var = src.read_var(list(S.REQUIRED_VAR_COLUMNS))
    if not var.index.is_unique:
        dup = var.index[var.index.duplicated()][0]
        msg = f"feature id {dup!r} appears twice"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="var.index")
    keep = (var["feature_biotype"].astype(str) == "gene") & (
        var["feature_reference"].astype(str) == organism
    )
    kept = var[keep.to_numpy()]
    lengths = pd.to_numeric(kept["feature_length"], errors="coerce")
    if lengths.isna().any():
        msg = "feature_length must be an integer"
        raise BadInputError(msg, dataset_id=src.dataset_id, field="feature_length")
    features = pd.DataFrame(
        {
            "feature_id": kept.index.astype(str),
            "feature_name": kept["feature_name"].astype(str).to_numpy(),
            "feature_length": lengths.astype(np.int64).to_numpy(),
            "feature_type": kept["feature_type"].astype(str).to_numpy(),
        }
    )
    return features, np.flatnonzero(keep.to_numpy()).astype(np.int64)


def _count_summary(acc: Counter[tuple[str, str, str, bool]], obs: pd.DataFrame) -> None:
    primary = obs["is_primary_data"].to_numpy(dtype=bool)
    for category, term_col, label_col in S.SUMMARY_CATEGORIES:
        # grouping the (usually categorical) columns themselves: no per-cell string conversion
        terms = obs[term_col] if term_col else pd.Series("na", index=obs.index)
        frame = pd.DataFrame({"t": terms, "l": obs[label_col], "p": primary})
        counts = frame.groupby(["t", "l", "p"], observed=True, sort=False, dropna=False).size()
        for key, n in counts.items():
            t, lab, p = cast("tuple[str, str, bool]", key)
            if n:
                acc[(category, str(t), str(lab), bool(p))] += int(n)


def _scan_obs(src: H5ADSource, result: ScanResult) -> npt.NDArray[np.bool_]:
    """Read obs in row chunks: the inclusion mask, vocabularies, summary counts, primary cells."""
    dataset_id = src.dataset_id
    values: dict[str, set[str]] = {c: set() for c in _DICT_COLUMNS}
    accepted = sorted(S.accepted_assays())
    full_gene = sorted(S.full_gene_assays())
    masks: list[npt.NDArray[np.bool_]] = []
    for start in range(0, src.n_obs, OBS_CHUNK_ROWS):
        stop = min(start + OBS_CHUNK_ROWS, src.n_obs)
        obs = src.read_obs(list(S.REQUIRED_OBS_COLUMNS), start, stop)
        mask = (
            obs["tissue_type"].isin(S.ACCEPTED_TISSUE_TYPES)
            & obs["assay_ontology_term_id"].isin(accepted)
        ).to_numpy()
        masks.append(mask)
        inc = obs[mask]
        if len(inc) == 0:
            continue
        if inc["observation_joinid"].isna().any():
            msg = "observation_joinid has missing values"
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
                field="observation_joinid",
            )
        for c in _DICT_COLUMNS:
            col = inc[c]
            if col.isna().any():
                msg = "column has missing values"
                raise BadInputError(msg, dataset_id=dataset_id, field=c)
            values[c].update(str(v) for v in pd.unique(col))
        general_id, general_label = tissue_general_columns(inc["tissue_ontology_term_id"])
        inc = inc.assign(tissue_general_ontology_term_id=general_id, tissue_general=general_label)
        _count_summary(result.summary, inc)
        result.n_primary += int(inc["is_primary_data"].to_numpy(dtype=bool).sum())
        result.has_full_gene_cells |= bool(inc["assay_ontology_term_id"].isin(full_gene).any())
    result.values = values
    return np.concatenate(masks) if masks else np.zeros(0, dtype=bool)


def scan_dataset(
    dataset_id: str,
    path: str,
    *,
    work_dir: str,
    chunk_nnz: int,
    check_values: bool,
) -> ScanResult:
    """Check one staged H5AD and summarize what the census takes from it.

    Raises
    ------
    BadInputError
        Not an H5AD, wrong schema version, missing columns, unknown ontology ids, or (when
        ``check_values``) raw counts that are negative or not whole numbers.
    """
    with H5ADSource(path, dataset_id) as src:
        organism = _check_uns(src)
        result = ScanResult(
            dataset_id=dataset_id, path=str(path), organism_term=organism, n_obs=src.n_obs
        )
        missing = [c for c in S.REQUIRED_OBS_COLUMNS if c not in src.obs_columns()]
        if missing:
            msg = (
                "required obs column is missing (the census needs every dataset-schema term "
                "column, its label and observation_joinid)"
            )
            raise BadInputError(
                msg,
                dataset_id=dataset_id,
                field=missing[0],
            )
        if organism not in S.ORGANISM_BY_TERM:
            result.excluded_reason = f"organism {organism} has no census experiment"
            return result
        features, var_keep = _features(src, organism)
        if len(features) == 0:
            result.excluded_reason = f"no gene features of {organism}"
            return result
        result.features, result.var_keep = features, var_keep
        result.column_info = {c: src.column_info(c) for c in _DICT_COLUMNS}
        mask_all = _scan_obs(src, result)
        result.n_included = int(mask_all.sum())
        if result.n_included == 0:
            result.excluded_reason = "no cells pass the census filters (assay, tissue_type)"
            return result
        for c in _TERM_COLUMNS:
            check_terms(dataset_id, c, result.values[c])
        if not mask_all.all():
            mask_path = Path(work_dir) / "masks" / f"{dataset_id}.npy"
            mask_path.parent.mkdir(parents=True, exist_ok=True)
            np.save(mask_path, mask_all)
            result.mask_path = str(mask_path)
        result.chunks = row_chunks(
            src.n_obs,
            chunk_nnz=chunk_nnz,
            indptr=src.indptr(),
            nnz_per_row=src.estimated_nnz_per_row(),
        )
        if check_values:
            for start, stop in result.chunks:
                x = src.read_x_rows(start, stop)[mask_all[start:stop]][:, var_keep]
                if not is_nonnegative_integral(x.data):
                    msg = "raw counts must be non-negative whole numbers"
                    raise BadInputError(
                        msg,
                        dataset_id=dataset_id,
                        field=src.x_name,
                    )
    return result
