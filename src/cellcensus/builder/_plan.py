"""The global plan of a build, made from the per-dataset scans: order, joinids, var, vocabularies.

Everything here is a pure function of the scans in manifest order, which is what makes the build
deterministic whatever order parallel work finishes in.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from cellcensus.builder import _schema as S
from cellcensus.builder._scan import _DICT_COLUMNS, ScanResult, tissue_general
from cellcensus.errors import BadInputError


@dataclass
class DatasetPlan:
    """One contributing dataset within its organism's experiment."""

    scan: ScanResult
    soma_joinid: int  # row of census_info/datasets and of the presence matrix
    obs_joinid_start: int
    var_joinids: npt.NDArray[np.int64]  # census var joinid of each kept feature
    chunk_starts: list[int] = field(default_factory=list)  # obs joinid of each chunk's first cell


@dataclass
class OrganismPlan:
    """One experiment: its datasets, var table and obs vocabularies."""

    organism: S.Organism
    datasets: list[DatasetPlan]
    var: pd.DataFrame  # feature_id, feature_name, feature_length, feature_type (census order)
    dictionaries: dict[str, list[str]]
    n_obs: int
    n_primary: int

    @property
    def n_var(self) -> int:
        """Number of census features of this organism."""
        return len(self.var)


def _chunk_starts(scan: ScanResult, first: int, mask: npt.NDArray[np.bool_] | None) -> list[int]:
    starts = []
    pos = first
    for start, stop in scan.chunks:
        starts.append(pos)
        pos += (stop - start) if mask is None else int(mask[start:stop].sum())
    return starts


def _union_var(organism: S.Organism, scans: list[ScanResult]) -> pd.DataFrame:
    frames = [s.features for s in scans if s.features is not None]
    var = pd.concat(frames, ignore_index=True).drop_duplicates(ignore_index=True)
    dup = var["feature_id"].duplicated(keep=False)
    if dup.any():
        fid = var.loc[dup, "feature_id"].iloc[0]
        owners = [
            s.dataset_id
            for s in scans
            if s.features is not None and (s.features["feature_id"] == fid).any()
        ]
        msg = (
            f"feature {fid!r} of {organism.label} has different name, length or type in datasets "
            f"{', '.join(owners)}; all datasets must use the same gene reference"
        )
        raise BadInputError(
            msg,
            field="var",
        )
    return var


def _dictionaries(scans: list[ScanResult]) -> dict[str, list[str]]:
    """Dictionary values per obs column, as the official builder's pandas would make them.

    A column whose categories are identical in every contributing dataset keeps those categories in
    file order (unused ones included); otherwise the values present, sorted.
    """
    out: dict[str, list[str]] = {"dataset_id": sorted(s.dataset_id for s in scans)}
    kept_categorical: set[str] = set()
    for c in _DICT_COLUMNS:
        infos = [s.column_info[c] for s in scans]
        if all(i.categorical for i in infos) and len({i.categories for i in infos}) == 1:
            out[c] = list(infos[0].categories or ())
            kept_categorical.add(c)
        else:
            out[c] = sorted(set().union(*(s.values[c] for s in scans)))
    tissues = out["tissue_ontology_term_id"]
    present = set().union(*(s.values["tissue_ontology_term_id"] for s in scans))
    general_ids = [tissue_general(t)[0] for t in tissues]
    if (
        "tissue_ontology_term_id" in kept_categorical
        and present.issuperset(tissues)
        and len(set(general_ids)) == len(general_ids)
    ):
        out["tissue_general_ontology_term_id"] = general_ids
        labels = [tissue_general(t)[1] for t in tissues]
        out["tissue_general"] = labels if len(set(labels)) == len(labels) else sorted(set(labels))
    else:
        pairs = {tissue_general(t) for t in present}
        out["tissue_general_ontology_term_id"] = sorted({p[0] for p in pairs})
        out["tissue_general"] = sorted({p[1] for p in pairs})
    return out


def make_plans(scans: list[ScanResult]) -> list[OrganismPlan]:
    """Plan every census experiment from the scans (in manifest order)."""
    contributing = [s for s in scans if s.n_included > 0]
    joinid = {s.dataset_id: i for i, s in enumerate(contributing)}
    plans = []
    for organism in S.ORGANISMS:
        mine = [s for s in contributing if s.organism_term == organism.ontology_term_id]
        if not mine:
            plans.append(OrganismPlan(organism, [], pd.DataFrame(), {}, 0, 0))
            continue
        var = _union_var(organism, mine)
        index = pd.Index(var["feature_id"])
        datasets = []
        start = 0
        for s in mine:
            if s.features is None:  # pragma: no cover - contributing scans have features
                msg = f"internal error: dataset {s.dataset_id} contributes cells but no features"
                raise AssertionError(msg)
            var_joinids = index.get_indexer(s.features["feature_id"]).astype(np.int64)
            mask = np.load(s.mask_path) if s.mask_path else None
            datasets.append(
                DatasetPlan(
                    scan=s,
                    soma_joinid=joinid[s.dataset_id],
                    obs_joinid_start=start,
                    var_joinids=var_joinids,
                    chunk_starts=_chunk_starts(s, start, mask),
                )
            )
            start += s.n_included
        plans.append(
            OrganismPlan(
                organism=organism,
                datasets=datasets,
                var=var,
                dictionaries=_dictionaries(mine),
                n_obs=start,
                n_primary=sum(s.n_primary for s in mine),
            )
        )
    return plans


def summary_cell_counts(plans: list[OrganismPlan]) -> pd.DataFrame:
    """census_info/summary_cell_counts rows, in census order (organism, category, term id)."""
    totals: Counter[tuple[str, str, str]] = Counter()
    uniques: Counter[tuple[str, str, str]] = Counter()
    labels: dict[tuple[str, str, str], str] = {}
    for plan in plans:
        org = plan.organism.name
        for d in sorted(plan.datasets, key=lambda d: d.scan.dataset_id):
            counts = d.scan.summary
            all_key = (org, "all", "na")
            labels.setdefault(all_key, "na")
            for (cat, term, label, primary), n in sorted(counts.items()):
                key = (org, cat, term)
                labels.setdefault(key, label)
                totals[key] += n
                if primary:
                    uniques[key] += n
                if cat == "cell_type":
                    totals[all_key] += n
                    if primary:
                        uniques[all_key] += n
    keys = sorted(labels)
    return pd.DataFrame(
        {
            "soma_joinid": np.arange(len(keys), dtype=np.int64),
            "organism": [k[0] for k in keys],
            "category": [k[1] for k in keys],
            "label": [labels[k] for k in keys],
            "ontology_term_id": [k[2] for k in keys],
            "total_cell_count": np.array([totals[k] for k in keys], dtype=np.int64),
            "unique_cell_count": np.array([uniques[k] for k in keys], dtype=np.int64),
        }
    )
