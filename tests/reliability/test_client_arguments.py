"""Defect 7 and the client's argument space: unknown column names surfaced as tiledbsoma's
"internal coding error", a misspelled ``column_names`` key was ignored, ``get_anndata(c, None)``
raised AttributeError. Property-based over organisms, filters, column lists and coordinates:
every call returns a result or raises a ``CellCensusError`` (also the builtin or tiledbsoma
type the official client raises), never anything else."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import tiledbsoma
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cellcensus
from cellcensus.errors import CellCensusError, QueryArgumentError, QueryArgumentTypeError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import tiledbsoma as soma

OBS_COLUMNS = ["soma_joinid", "dataset_id", "cell_type", "assay", "tissue_general"]


@pytest.fixture(scope="module")
def census(census_build: Path) -> Iterator[soma.Collection[Any]]:
    with cellcensus.open_soma(uri=str(census_build / "soma")) as c:
        yield c


def test_unknown_columns_are_clear_and_compatible(census: soma.Collection[Any]) -> None:
    for call in (
        lambda: cellcensus.get_obs(census, "Homo sapiens", column_names=["cell_typ"]),
        lambda: cellcensus.get_var(census, "Homo sapiens", column_names=["gene"]),
        lambda: cellcensus.get_anndata(census, "Homo sapiens", obs_column_names=["cell_typ"]),
        lambda: cellcensus.get_anndata(census, "Homo sapiens", var_column_names=["gene"]),
        lambda: cellcensus.get_anndata(census, "Homo sapiens", column_names={"obs": ["cell_typ"]}),
    ):
        with pytest.raises(QueryArgumentError, match="no column named") as e:
            call()
        # what the official client raises for it, so existing handlers keep working
        assert isinstance(e.value, tiledbsoma.SOMAError)
        assert "cell_type" in str(e.value) or "feature_name" in str(e.value)  # lists columns


def test_misspelled_column_names_key_and_none_organism(census: soma.Collection[Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        with pytest.raises(QueryArgumentError, match="'ob'"):
            cellcensus.get_anndata(
                census,
                "Homo sapiens",
                column_names={"ob": ["cell_type"]},  # type: ignore[arg-type] # a bad key, on purpose
            )
    with pytest.raises(QueryArgumentTypeError, match="organism must be") as e:
        cellcensus.get_anndata(census, None)  # type: ignore[arg-type]
    assert isinstance(e.value, TypeError)  # as the official client
    with pytest.raises(QueryArgumentError, match=r"\['cell_type'\] for one column"):
        cellcensus.get_obs(census, "Homo sapiens", column_names="cell_type")


_names = st.one_of(st.sampled_from([*OBS_COLUMNS, "bogus", "Cell_Type", ""]), st.text(max_size=8))
_coords = st.one_of(
    st.none(),
    st.integers(-5, 80),
    st.builds(
        slice,
        st.one_of(st.none(), st.integers(-3, 80)),
        st.one_of(st.none(), st.integers(-3, 80)),
    ),
    st.lists(st.integers(-3, 80), max_size=5),
    st.lists(st.integers(0, 59), max_size=5).map(lambda v: np.array(v, dtype=np.int64)),
    st.text(max_size=4),
    st.floats(allow_nan=True),
    st.lists(st.floats(allow_nan=False, width=32), max_size=3),
)  # fmt: skip
_filters = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.builds(
        "{} {} {}".format,
        st.sampled_from([*OBS_COLUMNS, "bogus", "is_primary_data"]),
        st.sampled_from(["==", "!=", "<", "in", "and", "or", ""]),
        st.sampled_from(["'T cell'", "3", "True", "['a', 'b']", "", "(", "'", "nan"]),
    ),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    organism=st.one_of(
        st.sampled_from(["Homo sapiens", "homo_sapiens", "Mus musculus", "", " "]),
        st.text(max_size=10),
        st.none(),
        st.integers(),
    ),
    flt=_filters,
    columns=st.one_of(st.none(), st.lists(_names, max_size=4)),
    coords=_coords,
)
def test_get_obs_never_leaks_a_library_error(
    census: soma.Collection[Any],
    organism: Any,
    flt: Any,
    columns: list[str] | None,
    coords: Any,
) -> None:
    try:
        df = cellcensus.get_obs(
            census, organism, value_filter=flt, column_names=columns, coords=coords
        )
    except CellCensusError as e:
        assert str(e)  # noqa: PT017 - an error is one allowed outcome
        return
    if columns:
        assert list(df.columns) == list(dict.fromkeys(columns)) or set(df.columns) == set(columns)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    obs_cols=st.one_of(st.none(), st.lists(_names, max_size=3)),
    obs_coords=_coords,
    layer=st.sampled_from(["raw", "normalized", "bogus", ""]),
    axis_keys=st.one_of(st.none(), st.dictionaries(st.sampled_from(["obs", "var", "ob", "x"]),
                                                   st.lists(_names, max_size=2), max_size=2)),
)  # fmt: skip
def test_get_anndata_never_leaks_a_library_error(
    census: soma.Collection[Any],
    obs_cols: list[str] | None,
    obs_coords: Any,
    layer: str,
    axis_keys: dict[str, list[str]] | None,
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the official client's deprecation of column_names
        try:
            cellcensus.get_anndata(
                census,
                "Homo sapiens",
                X_name=layer,
                obs_column_names=obs_cols,
                obs_coords=obs_coords,
                column_names=axis_keys,  # type: ignore[arg-type] # any keys, on purpose
            )
        except CellCensusError as e:
            assert str(e)  # noqa: PT017 - an error is one allowed outcome
