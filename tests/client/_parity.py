"""Representative calls, run against our client and the official one, and result comparison."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anndata
import numpy as np
import pandas as pd
import scipy.sparse as sp

if TYPE_CHECKING:
    from collections.abc import Callable

#: name -> (function name, positional args after census, keyword args)
CASES: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
    "obs_sex": ("get_obs", ("Homo sapiens",), {"value_filter": "sex == 'female'"}),
    "cell_type_list": (
        "get_anndata",
        ("Homo sapiens",),
        {
            "obs_value_filter": "cell_type in "
            "['B cell', 'naive B cell', 'memory B cell', 'platelet']"
        },
    ),
    "tissue_general_columns": (
        "get_anndata",
        ("homo_sapiens",),
        {
            "obs_value_filter": "tissue_general == 'lung' and is_primary_data == True",
            "obs_column_names": ["cell_type", "tissue", "disease", "raw_sum"],
            "var_column_names": ["feature_id", "feature_name"],
        },
    ),
    "multi_valued_disease": (
        "get_anndata",
        ("Homo sapiens",),
        {
            # every stored value holding COVID-19 among its ' || '-joined terms
            "obs_value_filter": "disease_ontology_term_id in "
            "['MONDO:0100096', 'MONDO:0005002 || MONDO:0100096']"
        },
    ),
    "var_feature_name": (
        "get_var",
        ("Homo sapiens",),
        {"value_filter": "feature_name in ['MXRA8', 'VWA1', 'SCNN1D']"},
    ),
    "mouse_obs_and_var_filters": (
        "get_anndata",
        ("Mus musculus",),
        {
            "obs_value_filter": "sex == 'male' or tissue_general == 'lung'",
            "var_value_filter": "feature_type == 'protein_coding' and feature_length > 1500",
        },
    ),
    "coords_slices": (
        "get_anndata",
        ("Homo sapiens",),
        {"obs_coords": slice(100, 399), "var_coords": slice(10, 209)},
    ),
    "normalized_comparisons": (
        "get_anndata",
        ("Homo sapiens",),
        {"X_name": "normalized", "obs_value_filter": "raw_sum > 1000 and nnz >= 100"},
    ),
    "presence_matrix": ("get_presence_matrix", ("Homo sapiens",), {}),
}


def run_case(api: Any, census: Any, name: str) -> Any:
    func, args, kwargs = CASES[name]
    fn: Callable[..., Any] = getattr(api, func)
    return fn(census, *args, **kwargs)


def assert_same(ours: Any, theirs: Any) -> None:
    """Same type, same frames (dtypes, categories, index), same matrix values."""
    assert type(ours) is type(theirs)
    if isinstance(theirs, pd.DataFrame):
        assert len(theirs) > 0
        pd.testing.assert_frame_equal(ours, theirs)
    elif isinstance(theirs, anndata.AnnData):
        assert theirs.n_obs > 0
        assert theirs.n_vars > 0
        assert ours.shape == theirs.shape
        pd.testing.assert_frame_equal(ours.obs, theirs.obs)
        pd.testing.assert_frame_equal(ours.var, theirs.var)
        assert ours.X.dtype == theirs.X.dtype
        assert type(ours.X) is type(theirs.X)
        assert (ours.X != theirs.X).nnz == 0
        assert theirs.X.nnz > 0
    elif sp.issparse(theirs):
        assert ours.shape == theirs.shape
        assert (ours != theirs).nnz == 0
        assert theirs.nnz > 0
    else:
        np.testing.assert_equal(ours, theirs)
