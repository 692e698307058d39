"""Creating and filling the census SOMA objects (collections, dataframes, arrays)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import tiledbsoma as soma

from cellcensus import __version__
from cellcensus._leftovers import remove_object_dir
from cellcensus.builder import _schema as S
from cellcensus.builder._band import soma_context

if TYPE_CHECKING:
    from cellcensus.builder._plan import OrganismPlan

logger = logging.getLogger(__name__)

_Group = soma.Collection[Any] | soma.Experiment | soma.Measurement


def create_dataframe(
    parent: _Group,
    key: str,
    schema: pa.Schema,
    *,
    domain: tuple[int, int] | None,
    platform_config: dict[str, Any] | None = None,
) -> str:
    """Create a DataFrame as a member (relative URI) of ``parent``; returns its URI.

    Created with ``DataFrame.create`` and closed before any write: writing through the handle of
    ``add_new_dataframe`` loses dictionary values in tiledbsoma 2.3.
    """
    uri = f"{parent.uri.rstrip('/')}/{key}"
    soma.DataFrame.create(
        uri,
        schema=schema,
        index_column_names=["soma_joinid"],
        # an empty table gets (0, 0), what tiledbsoma gives for the deprecated domain=None
        domain=[domain if domain is not None else (0, 0)],
        platform_config=platform_config,
        context=soma_context(),
    ).close()
    with soma.DataFrame.open(uri, "r", context=soma_context()) as df:
        parent.set(key, df, use_relative_uri=True)
    return uri


def _drop_orphan(parent_uri: str, key: str) -> None:
    """Remove what a killed build left at ``parent_uri/key`` without making it a member.

    Creating a member is two steps (create the object, then add it to its collection); a build
    killed between them leaves an object that the resumed build cannot create again. The caller
    holds the parent open for writing, so only the (local, staged) directory is removed.
    """
    remove_object_dir(f"{parent_uri.rstrip('/')}/{key}")


def write_table(uri: str, table: pa.Table) -> None:
    """Append rows to an existing DataFrame."""
    with soma.DataFrame.open(uri, "w", context=soma_context()) as df:
        df.write(table)


def _n_categories(plan: OrganismPlan) -> dict[str, int]:
    return {k: len(v) for k, v in plan.dictionaries.items()}


def obs_schema(plan: OrganismPlan) -> pa.Schema:
    """Arrow schema of an experiment's obs (dictionary index types sized to the vocabularies)."""
    return S.arrow_schema(S.obs_fields(spatial=plan.spatial), _n_categories(plan))


def create_root(uri: str, build_tag: str) -> soma.Collection[Any]:
    """Create the root collection with its metadata and the three top-level collections."""
    root: soma.Collection[Any] = soma.Collection.create(uri, context=soma_context())
    root.metadata["created_on"] = datetime.now(tz=UTC).isoformat(timespec="seconds")
    root.metadata["git_commit_sha"] = f"cellcensus-{__version__}"
    root.metadata["cellcensus_version"] = __version__
    root.metadata["census_build_date"] = build_tag
    for name in (S.CENSUS_INFO, S.CENSUS_DATA, S.CENSUS_SPATIAL):
        root.add_new_collection(name)
    return root


def create_experiment(
    parent: soma.Collection[Any], plan: OrganismPlan, *, compression: str = "fast"
) -> str:
    """Create an experiment with obs, ms/RNA/var, X layers (when it has cells); returns its URI.

    A spatial plan's experiment (census_spatial_sequencing) has the spatial obs columns, X ``raw``
    only, and an (empty) ``spatial`` collection for its scenes.
    """
    spatial = plan.spatial
    exp = parent.add_new_collection(plan.organism.name, soma.Experiment)
    uri = exp.uri
    domain = (0, plan.n_obs - 1) if plan.n_obs else None
    schema = obs_schema(plan)
    obs_uri = create_dataframe(
        exp,
        "obs",
        schema,
        domain=domain,
        platform_config=S.obs_platform_config(spatial=spatial, compression=compression),
    )
    if plan.n_obs:
        # every dictionary value is known from the plan: the enumerations get them all now, in
        # dictionary order, so that band tasks writing obs in parallel never change the schema
        with soma.DataFrame.open(obs_uri, "w", context=soma_context()) as df:
            df.extend_enumeration_values(
                {
                    name: pa.array(plan.dictionaries[name], type=schema.field(name).type.value_type)
                    for name in schema.names
                    if pa.types.is_dictionary(schema.field(name).type)
                }
            )
    ms = exp.add_new_collection("ms")
    rna = ms.add_new_collection(S.MEASUREMENT, soma.Measurement)
    var_domain = (0, plan.n_var - 1) if plan.n_var else None
    create_dataframe(
        rna,
        "var",
        S.arrow_schema(S.VAR_FIELDS),
        domain=var_domain,
        platform_config=S.var_platform_config(compression),
    )
    x = rna.add_new_collection("X")
    if plan.n_obs > 0:
        for layer in plan.x_layers:
            x.add_new_sparse_ndarray(
                layer,
                type=pa.float32(),
                shape=(plan.n_obs, plan.n_var),
                platform_config=S.x_platform_config(layer, compression),
            ).close()
    if spatial:
        exp.add_new_collection("spatial")
    for obj in (x, rna, ms, exp):
        obj.close()
    return str(uri)


def empty_var() -> pd.DataFrame:
    """The var frame of an experiment without cells."""
    return pd.DataFrame(
        {"feature_id": [], "feature_name": [], "feature_length": [], "feature_type": []}
    )


def var_table(
    plan: OrganismPlan, nnz: np.ndarray[Any, Any], n_measured_obs: np.ndarray[Any, Any]
) -> pa.Table:
    """The var table of an experiment in census column order."""
    v = plan.var
    return pa.Table.from_pydict(
        {
            "soma_joinid": pa.array(np.arange(len(v), dtype=np.int64)),
            "feature_id": pa.array(v["feature_id"].to_numpy(dtype=object), type=pa.large_string()),
            "feature_name": pa.array(
                v["feature_name"].to_numpy(dtype=object), type=pa.large_string()
            ),
            "feature_type": pa.array(
                v["feature_type"].to_numpy(dtype=object), type=pa.large_string()
            ),
            "feature_length": pa.array(v["feature_length"].to_numpy(dtype=np.int64)),
            "nnz": pa.array(nnz.astype(np.int64)),
            "n_measured_obs": pa.array(n_measured_obs.astype(np.int64)),
        },
        schema=S.arrow_schema(S.VAR_FIELDS),
    )


#: Presence-matrix cells written at once (one fragment each, consolidated with the rest).
_PRESENCE_BATCH = 8_000_000


def write_presence(rna_uri: str, plan: OrganismPlan, n_datasets: int) -> None:
    """The datasets x features presence matrix (only True values stored), in bounded batches."""
    uri = f"{rna_uri}/{S.PRESENCE_MATRIX}"
    with soma.Measurement.open(rna_uri, "w", context=soma_context()) as rna:
        if S.PRESENCE_MATRIX not in rna:  # absent unless a resumed build already made it
            _drop_orphan(rna.uri, S.PRESENCE_MATRIX)
            arr = rna.add_new_sparse_ndarray(
                S.PRESENCE_MATRIX, type=pa.bool_(), shape=(n_datasets, plan.n_var)
            )
            arr.close()
    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []

    def flush() -> None:
        if not rows:
            return
        r, c = np.concatenate(rows), np.concatenate(cols)
        order = np.lexsort((c, r))
        with soma.SparseNDArray.open(uri, "w", context=soma_context()) as arr:
            arr.write(
                pa.Table.from_pydict(
                    {
                        "soma_dim_0": pa.array(r[order]),
                        "soma_dim_1": pa.array(c[order]),
                        "soma_data": pa.array(np.ones(len(r), dtype=bool)),
                    }
                )
            )
        rows.clear()
        cols.clear()

    pending = 0
    for d in plan.datasets:
        with np.load(d.features) as f:
            joinids = f["joinids"]
        rows.append(np.full(len(joinids), d.soma_joinid, dtype=np.int64))
        cols.append(joinids)
        pending += len(joinids)
        if pending >= _PRESENCE_BATCH:
            flush()
            pending = 0
    flush()


def write_info_table(info: soma.Collection[Any], key: str, table: pa.Table) -> None:
    """Create and fill one census_info DataFrame."""
    n = table.num_rows
    if key in info:  # a resumed build: the write below is idempotent
        uri = f"{info.uri.rstrip('/')}/{key}"
    else:
        _drop_orphan(info.uri, key)
        uri = create_dataframe(info, key, table.schema, domain=(0, n - 1) if n else None)
    if n:
        write_table(uri, table)
