"""The global plan of a build, made from the per-dataset scans: order, joinids, var, bands.

Everything here is a pure function of the scans in build order (and the settings), which is what
makes the build deterministic whatever order parallel work finishes in. The plan reads each
dataset's scan files once, in build order, and keeps per organism only what is as large as the
census's vocabularies and features, plus one small record per block of 32,768 source rows (the
planner's only census-size state: about 40 bytes per 32,768 cells).
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cellcensus.builder import _schema as S
from cellcensus.builder._band import BandDataset, BandTask, Segment
from cellcensus.builder._scan import ScanDetail, ScanSummary, features_path, load_detail
from cellcensus.builder._terms import DICT_COLUMNS, tissue_general
from cellcensus.errors import BadInputError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

#: Work of one cell (writing its obs row, reading its obs) in units of one stored X value, for
#: sizing bands: a band's cost is its stored values plus this many per cell.
CELL_COST = 16
#: With automatic band sizing, a census is cut into about this many bands (at least one chunk of
#: work each): enough for a 64-worker cluster, few enough fragments per array.
TARGET_BANDS = 64


@dataclass
class DatasetPlan:
    """One contributing dataset within its organism's experiment."""

    scan: ScanSummary
    soma_joinid: int  # row of census_info/datasets and of the presence matrix
    obs_joinid_start: int
    features: str = ""  # .npz of positions, census var joinids and lengths
    spatial_columns: tuple[str, ...] = ()  # in_tissue, array_row, array_col it has (spatial)

    @property
    def dataset_id(self) -> str:
        """The dataset's id."""
        return self.scan.dataset_id


@dataclass
class _Summary:
    """summary_cell_counts accumulators of one organism (sizes of its vocabularies)."""

    totals: Counter[tuple[str, str]] = field(default_factory=Counter)
    uniques: Counter[tuple[str, str]] = field(default_factory=Counter)
    labels: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def add(self, dataset_id: str, rows: list[tuple[str, str, str, bool, int]]) -> None:
        """Add a dataset's counts; a (category, term)'s label comes from the first dataset by id."""
        for category, term, label, primary, n in rows:
            keys = [((category, term), label)]
            if category == "cell_type":  # every cell has one cell type: also the "all" row
                keys.append((("all", "na"), "na"))
            for key, lab in keys:
                known = self.labels.get(key)
                if known is None or dataset_id < known[0]:
                    self.labels[key] = (dataset_id, lab)
                self.totals[key] += n
                if primary:
                    self.uniques[key] += n


_BLOCK_DTYPE = np.dtype(
    [
        ("dataset", np.int32),
        ("start", np.int64),
        ("stop", np.int64),
        ("n", np.int64),
        ("n_values", np.int64),
    ]
)


@dataclass
class OrganismPlan:
    """One experiment: its datasets, var table, obs vocabularies and bands.

    ``spatial`` plans are the experiments of census_spatial_sequencing: the same machinery with
    X ``raw`` only, three more obs columns and one scene per dataset.
    """

    organism: S.Organism
    datasets: list[DatasetPlan]
    var: pd.DataFrame  # feature_id, feature_name, feature_length, feature_type (census order)
    dictionaries: dict[str, list[str]]
    n_obs: int
    n_primary: int
    summary: _Summary = field(default_factory=_Summary)
    blocks: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=_BLOCK_DTYPE))
    dictionaries_path: str = ""
    spatial: bool = False
    spatial_columns: tuple[str, ...] = ()  # spatial obs columns some dataset has

    @property
    def key(self) -> str:
        """Names the experiment in work files and markers: ``homo_sapiens`` (census_data) or
        ``spatial.homo_sapiens`` (census_spatial_sequencing)."""
        return f"spatial.{self.organism.name}" if self.spatial else self.organism.name

    @property
    def collection(self) -> str:
        """The experiment's top-level collection."""
        return S.CENSUS_SPATIAL if self.spatial else S.CENSUS_DATA

    @property
    def x_layers(self) -> tuple[str, ...]:
        """Its X layers."""
        return S.x_layers(spatial=self.spatial)

    @property
    def n_var(self) -> int:
        """Number of census features of this organism."""
        return len(self.var)

    @property
    def n_values(self) -> int:
        """Estimated stored values of the experiment's X."""
        return int(self.blocks["n_values"].sum())


class _VarUnion:
    """Census features of one organism in first-seen order; conflicting definitions refused."""

    def __init__(self, organism: S.Organism) -> None:
        self.organism = organism
        self.index: dict[str, int] = {}
        self.rows: list[tuple[str, str, int, str]] = []
        self.owner: list[str] = []

    def add(self, dataset_id: str, features: pd.DataFrame) -> np.ndarray:
        joinids = np.empty(len(features), dtype=np.int64)
        for i, row in enumerate(
            zip(
                features["feature_id"].tolist(),
                features["feature_name"].tolist(),
                features["feature_length"].tolist(),
                features["feature_type"].tolist(),
                strict=True,
            )
        ):
            j = self.index.get(row[0])
            if j is None:
                j = self.index[row[0]] = len(self.rows)
                self.rows.append(row)
                self.owner.append(dataset_id)
            elif self.rows[j] != row:
                msg = (
                    f"feature {row[0]!r} of {self.organism.label} has different name, length or "
                    f"type in datasets {self.owner[j]}, {dataset_id}; all datasets must use the "
                    "same gene reference"
                )
                raise BadInputError(msg, field="var")
            joinids[i] = j
        return joinids

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            self.rows, columns=["feature_id", "feature_name", "feature_length", "feature_type"]
        ).astype({"feature_length": np.int64})


class _Vocabularies:
    """Dictionary values per obs column, as the official builder's pandas would make them.

    A column whose categories are identical in every contributing dataset keeps those categories
    in file order (unused ones included); otherwise the values present, sorted.
    """

    def __init__(self) -> None:
        self.dataset_ids: list[str] = []
        self.values: dict[str, set[str]] = {c: set() for c in DICT_COLUMNS}
        self.categories: dict[str, tuple[str, ...] | None] = {}
        self.same: dict[str, bool] = dict.fromkeys(DICT_COLUMNS, True)

    def add(self, dataset_id: str, detail: ScanDetail) -> None:
        self.dataset_ids.append(dataset_id)
        for c in DICT_COLUMNS:
            self.values[c].update(detail.values[c])
            info = detail.column_info[c]
            cats = info.categories if info.categorical else None
            if cats is None or (c in self.categories and self.categories[c] != cats):
                self.same[c] = False
            self.categories.setdefault(c, cats)

    def result(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {"dataset_id": sorted(self.dataset_ids)}
        kept_categorical = set()
        for c in DICT_COLUMNS:
            cats = self.categories.get(c)
            if self.same[c] and cats is not None:
                out[c] = list(cats)
                kept_categorical.add(c)
            else:
                out[c] = sorted(self.values[c])
        tissues = out["tissue_ontology_term_id"]
        present = self.values["tissue_ontology_term_id"]
        general_ids = [tissue_general(t)[0] for t in tissues]
        if (
            "tissue_ontology_term_id" in kept_categorical
            and present.issuperset(tissues)
            and len(set(general_ids)) == len(general_ids)
        ):
            out["tissue_general_ontology_term_id"] = general_ids
            labels = [tissue_general(t)[1] for t in tissues]
            out["tissue_general"] = (
                labels if len(set(labels)) == len(labels) else sorted(set(labels))
            )
        else:
            pairs = {tissue_general(t) for t in present}
            out["tissue_general_ontology_term_id"] = sorted({p[0] for p in pairs})
            out["tissue_general"] = sorted({p[1] for p in pairs})
        return out


def _plan_organism(
    organism: S.Organism,
    scans: list[ScanSummary],
    joinid_of: dict[str, int],
    plan_dir: Path,
    *,
    spatial: bool,
) -> OrganismPlan:
    var = _VarUnion(organism)
    vocab = _Vocabularies()
    summary = _Summary()
    datasets: list[DatasetPlan] = []
    blocks: list[tuple[int, int, int, int, int]] = []
    start = n_primary = 0
    key = OrganismPlan(organism, [], pd.DataFrame(), {}, 0, 0, spatial=spatial).key
    out_dir = plan_dir / key
    spatial_columns: set[str] = set()
    out_dir.mkdir(parents=True, exist_ok=True)
    work_dir = plan_dir.parent
    for i, s in enumerate(scans):
        detail = load_detail(work_dir, s.key)
        features = pd.read_parquet(features_path(work_dir, s.key))
        joinids = var.add(s.dataset_id, features)
        vocab.add(s.dataset_id, detail)
        summary.add(s.dataset_id, detail.summary)
        path = out_dir / f"{s.key}.npz"
        np.savez(
            path,
            positions=features["position"].to_numpy(dtype=np.int64),
            joinids=joinids,
            lengths=features["feature_length"].to_numpy(dtype=np.int64),
        )
        datasets.append(
            DatasetPlan(
                scan=s,
                soma_joinid=joinid_of[s.dataset_id],
                obs_joinid_start=start,
                features=str(path),
                spatial_columns=tuple(detail.spatial_columns),
            )
        )
        spatial_columns.update(detail.spatial_columns)
        blocks.extend(
            (i, b.start, b.stop, b.n_included, b.n_values) for b in detail.blocks if b.n_included
        )
        start += s.n_included
        n_primary += s.n_primary
    dictionaries = vocab.result()
    dict_path = out_dir / "dictionaries.json"
    dict_path.write_text(json.dumps(dictionaries))
    return OrganismPlan(
        organism=organism,
        datasets=datasets,
        var=var.frame(),
        dictionaries=dictionaries,
        n_obs=start,
        n_primary=n_primary,
        summary=summary,
        blocks=np.array(blocks, dtype=_BLOCK_DTYPE),
        dictionaries_path=str(dict_path),
        spatial=spatial,
        spatial_columns=tuple(c for c in S.SPATIAL_OBS_NUMERIC if c in spatial_columns),
    )


def make_plans(scans: Sequence[ScanSummary], plan_dir: Path) -> list[OrganismPlan]:
    """Plan every census experiment from the scans (in build order).

    The census_data experiments (one per organism of ``S.ORGANISMS``) come first, then the
    census_spatial_sequencing ones (``S.SPATIAL_ORGANISMS``); every organism gets a plan, empty
    when no dataset contributes to it.
    """
    contributing = [s for s in scans if s.contributes]
    # dataset soma_joinids count contributing datasets in build order, across organisms and
    # collections
    joinid_of = {s.dataset_id: k for k, s in enumerate(contributing)}
    plans = []
    for spatial, organisms in ((False, S.ORGANISMS), (True, S.SPATIAL_ORGANISMS)):
        for organism in organisms:
            mine = [
                s
                for s in contributing
                if s.organism_term == organism.ontology_term_id and s.spatial == spatial
            ]
            if mine:
                plans.append(_plan_organism(organism, mine, joinid_of, plan_dir, spatial=spatial))
            else:
                plans.append(OrganismPlan(organism, [], pd.DataFrame(), {}, 0, 0, spatial=spatial))
    return plans


def band_cost(plans: list[OrganismPlan], chunk_nnz: int, band_nnz: int | None) -> int:
    """The work per band: ``band_nnz``, or about 1/TARGET_BANDS of the census (>= one chunk)."""
    if band_nnz:
        return band_nnz
    total = sum(p.n_values + CELL_COST * p.n_obs for p in plans)
    return max(chunk_nnz, math.ceil(total / TARGET_BANDS))


def _boundaries(plan: OrganismPlan, cost: int) -> list[int]:
    """Joinids where bands start (multiples of X_TILE), and the end (n_obs).

    The experiment is cut into ``ceil(work / cost)`` bands of equal work, a cut falling anywhere
    in a plan block (whose work is taken as even across its cells), then moved to the nearest
    X_TILE boundary. Cutting only at block ends made bands as uneven as the blocks (a few
    thousand to 32,768 rows of a dataset): the longest band task took twice the mean.
    """
    n = plan.blocks["n"].astype(np.int64)
    work = plan.blocks["n_values"].astype(np.float64) + CELL_COST * n
    cum_cells = np.concatenate([[0], np.cumsum(n)])
    cum_work = np.concatenate([[0.0], np.cumsum(work)])
    total = float(cum_work[-1])
    n_cut = math.ceil(total / cost) if total > 0 else 1
    targets = total * np.arange(1, n_cut) / n_cut
    at = np.interp(targets, cum_work, cum_cells)
    cuts = np.unique(np.rint(at / S.X_TILE).astype(np.int64) * S.X_TILE)
    inner = [int(c) for c in cuts if 0 < c < plan.n_obs]
    return [0, *inner, plan.n_obs]


def band_cuts(plans: list[OrganismPlan], cost: int) -> dict[str, list[int]]:
    """Where each experiment's bands start and end (soma_joinids), by experiment key: a resumed
    build reuses finished bands only when these are the same (bands are known by index)."""
    return {p.key: _boundaries(p, cost) for p in plans if p.n_obs}


def make_bands(
    plan: OrganismPlan,
    *,
    exp_uri: str,
    bounds: list[int],
    chunk_nnz: int,
    check_values: bool,
    first_timestamp: int,
    work_dir: Path,
) -> list[BandTask]:
    """Cut an experiment into band tasks (see ``_band``) at ``bounds`` (its entry of
    :func:`band_cuts`); timestamps count up from the first."""
    if plan.n_obs == 0:
        return []
    datasets = tuple(
        BandDataset(
            dataset_id=d.dataset_id,
            path=d.scan.path,
            features=d.features,
            n_measured_vars=d.scan.n_features,
            spatial_columns=d.spatial_columns,
        )
        for d in plan.datasets
    )
    ends = np.cumsum(plan.blocks["n"])
    starts = ends - plan.blocks["n"]
    tasks = []
    for index, (b0, b1) in enumerate(itertools.pairwise(bounds)):
        k0 = int(np.searchsorted(ends, b0, side="right"))
        k1 = int(np.searchsorted(starts, b1, side="left"))
        segments: list[Segment] = []
        n_values = 0.0
        for k in range(k0, k1):
            block = plan.blocks[k]
            skip = max(b0 - int(starts[k]), 0)
            take = min(b1, int(ends[k])) - max(b0, int(starts[k]))
            n_values += float(block["n_values"]) * take / int(block["n"])
            prev = segments[-1] if segments else None
            if (
                prev is not None
                and prev.dataset == int(block["dataset"])
                and prev.row_stop == int(block["start"])
            ):
                segments[-1] = Segment(
                    dataset=prev.dataset,
                    row_start=prev.row_start,
                    row_stop=int(block["stop"]),
                    skip=prev.skip,
                    take=prev.take + take,
                )
            else:
                segments.append(
                    Segment(
                        dataset=int(block["dataset"]),
                        row_start=int(block["start"]),
                        row_stop=int(block["stop"]),
                        skip=skip,
                        take=take,
                    )
                )
        used = sorted({s.dataset for s in segments})
        remap = {old: new for new, old in enumerate(used)}
        tasks.append(
            BandTask(
                organism=plan.key,
                index=index,
                exp_uri=exp_uri,
                joinid_start=b0,
                joinid_stop=b1,
                shape=(plan.n_obs, plan.n_var),
                datasets=tuple(datasets[i] for i in used),
                segments=tuple(
                    Segment(
                        dataset=remap[s.dataset],
                        row_start=s.row_start,
                        row_stop=s.row_stop,
                        skip=s.skip,
                        take=s.take,
                    )
                    for s in segments
                ),
                dictionaries=plan.dictionaries_path,
                timestamp=first_timestamp + index,
                chunk_nnz=chunk_nnz,
                check_values=check_values,
                var_nnz_path=str(work_dir / "bands" / plan.key / f"{index}.npy"),
                n_values=round(n_values),
                x_layers=plan.x_layers,
                spatial_columns=plan.spatial_columns if plan.spatial else None,
            )
        )
    return tasks


def _merged_summaries(plans: list[OrganismPlan]) -> dict[str, _Summary]:
    """One summary per organism name: census_data and spatial experiments added together.

    As the official builder (which concatenates its experiments' counts, census_data first, and
    groups them), a (category, term)'s label comes from the first experiment that has it.
    """
    out: dict[str, _Summary] = {}
    for plan in plans:  # census_data plans come before spatial ones
        merged = out.setdefault(plan.organism.name, _Summary())
        for key, label in plan.summary.labels.items():
            merged.labels.setdefault(key, label)
        merged.totals.update(plan.summary.totals)
        merged.uniques.update(plan.summary.uniques)
    return out


def summary_cell_counts(plans: list[OrganismPlan]) -> pd.DataFrame:
    """census_info/summary_cell_counts rows, in census order (organism, category, term id).

    Spatial spots count into their organism's rows, as the official builder counts them.
    """
    by_org = _merged_summaries(plans)
    keys = sorted((name, c, t) for name, summary in by_org.items() for c, t in summary.labels)
    return pd.DataFrame(
        {
            "soma_joinid": np.arange(len(keys), dtype=np.int64),
            "organism": [k[0] for k in keys],
            "category": [k[1] for k in keys],
            "label": [by_org[k[0]].labels[(k[1], k[2])][1] for k in keys],
            "ontology_term_id": [k[2] for k in keys],
            "total_cell_count": np.array(
                [by_org[k[0]].totals[(k[1], k[2])] for k in keys], dtype=np.int64
            ),
            "unique_cell_count": np.array(
                [by_org[k[0]].uniques[(k[1], k[2])] for k in keys], dtype=np.int64
            ),
        }
    )
