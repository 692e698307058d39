"""The census_info tables: datasets, summary_cell_counts, summary, organisms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from cellcensus.builder import _schema as S
from cellcensus.builder._band import dict_array
from cellcensus.builder._plan import OrganismPlan, summary_cell_counts

if TYPE_CHECKING:
    from cellcensus.builder.manifest import ManifestEntry


def datasets_table(entries: dict[str, ManifestEntry], plans: list[OrganismPlan]) -> pa.Table:
    """census_info/datasets: one row per contributing dataset, by dataset soma_joinid."""
    rows = sorted(((d.soma_joinid, d.scan) for p in plans for d in p.datasets), key=lambda r: r[0])
    cols: dict[str, list[Any]] = {f.name: [] for f in S.DATASETS_FIELDS}
    for joinid, scan in rows:
        e = entries[scan.dataset_id]
        cols["soma_joinid"].append(joinid)
        for name in (
            "citation",
            "collection_id",
            "collection_name",
            "collection_doi",
            "collection_doi_label",
            "dataset_id",
            "dataset_version_id",
            "dataset_title",
        ):
            cols[name].append(getattr(e, name))
        cols["dataset_h5ad_path"].append(f"{scan.dataset_id}.h5ad")
        cols["dataset_total_cell_count"].append(scan.n_included)
    return pa.Table.from_pydict(cols, schema=S.arrow_schema(S.DATASETS_FIELDS))


def info_tables(
    tag: str, entries: dict[str, ManifestEntry], plans: list[OrganismPlan]
) -> dict[str, pa.Table]:
    """Every census_info table, keyed by its name in the collection."""
    total = sum(p.n_obs for p in plans)
    unique = sum(p.n_primary for p in plans)
    summary = [
        ("census_schema_version", S.CENSUS_SCHEMA_VERSION),
        ("census_build_date", tag),
        ("dataset_schema_version", S.CXG_SCHEMA_VERSION),
        ("total_cell_count", str(total)),
        ("unique_cell_count", str(unique)),
    ]
    counts = summary_cell_counts(plans)
    organisms = S.ORGANISMS
    return {
        "datasets": datasets_table(entries, plans),
        "summary_cell_counts": pa.Table.from_pydict(
            {
                "soma_joinid": counts["soma_joinid"].to_numpy(),
                **{
                    c: dict_array(counts[c], sorted(set(counts[c])), c, pa.string())
                    for c in ("organism", "category")
                },
                "label": pa.array(counts["label"], type=pa.string()),
                "ontology_term_id": pa.array(counts["ontology_term_id"], type=pa.string()),
                "total_cell_count": counts["total_cell_count"].to_numpy(),
                "unique_cell_count": counts["unique_cell_count"].to_numpy(),
            }
        ),
        "summary": pa.Table.from_pydict(
            {
                "label": pa.array([s[0] for s in summary], type=pa.string()),
                "value": pa.array([s[1] for s in summary], type=pa.string()),
                "soma_joinid": pa.array(np.arange(len(summary), dtype=np.int64)),
            }
        ),
        "organisms": pa.Table.from_pydict(
            {
                "organism_ontology_term_id": [o.ontology_term_id for o in organisms],
                "organism_label": [o.label for o in organisms],
                "organism": [o.name for o in organisms],
                "soma_joinid": pa.array(np.arange(len(organisms), dtype=np.int64)),
            }
        ),
    }
