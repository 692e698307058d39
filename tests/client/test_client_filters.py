"""Value filters: clear errors for bad ones, and ontology-aware selection."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import tiledbsoma
from cellxgene_ontology_guide.ontology_parser import OntologyParser

import cellcensus
from cellcensus import client
from cellcensus.errors import BadInputError

from .conftest import HUMAN

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pandas as pd

T_CELL = "CL:0000084"
COVID = "MONDO:0100096"


@pytest.fixture(scope="module")
def census(release_root: Path) -> Iterator[tiledbsoma.Collection[Any]]:
    """Our census (LTS build of the local release root)."""
    with cellcensus.open_soma(release_root=release_root) as c:
        yield c


@pytest.fixture(scope="module")
def obs_all(census: tiledbsoma.Collection[Any]) -> pd.DataFrame:
    """Every human obs row (the corpus is small)."""
    return cellcensus.get_obs(census, HUMAN)


@pytest.mark.parametrize(
    ("flt", "message"),
    [
        ("sex = 'female'", r"does not parse \(invalid syntax\)"),
        ("sex ==", "does not parse"),
        ("cell_type in 'B cell'", "in .*syntax must be written as"),
        (
            "sexx == 'female'",
            "Column sexx does not exist.*the columns are: soma_joinid, dataset_id",
        ),
        ("sex == 3", "does not match its column's type"),
        ("raw_sum > 'lots'", "does not match its column's type"),
        ("", "must be a non-empty string"),
    ],
)
def test_bad_filters_are_clear_errors(
    census: tiledbsoma.Collection[Any], flt: str, message: str
) -> None:
    calls = (
        lambda: cellcensus.get_obs(census, HUMAN, value_filter=flt),
        lambda: cellcensus.get_anndata(census, HUMAN, obs_value_filter=flt),
        lambda: cellcensus.estimate(census, HUMAN, obs_value_filter=flt),
        lambda: cellcensus.export(census, HUMAN, to="never.h5ad", obs_value_filter=flt),
    )
    for call in calls:
        with pytest.raises(client.FilterError, match=message) as e:
            call()
        # compatible with the official client's error type, and ours
        assert isinstance(e.value, tiledbsoma.SOMAError)
        assert isinstance(e.value, BadInputError)
        assert isinstance(e.value, ValueError)
        assert flt in str(e.value)
    assert not Path("never.h5ad").exists()


def test_bad_var_filter(census: tiledbsoma.Collection[Any]) -> None:
    with pytest.raises(client.FilterError, match=r"var_value_filter.*feature_nam does not exist"):
        cellcensus.get_anndata(census, HUMAN, var_value_filter="feature_nam == 'CD4'")
    with pytest.raises(client.FilterError, match="feature_nam"):
        cellcensus.get_var(census, HUMAN, value_filter="feature_nam == 'CD4'")


def test_value_never_present_is_logged(
    census: tiledbsoma.Collection[Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cellcensus.client._filters"):
        obs = cellcensus.get_obs(census, HUMAN, value_filter="sex == 'Female'")
    assert len(obs) == 0
    assert "column 'sex' never holds 'Female'" in caplog.text
    assert "'female'" in caplog.text


def test_grammar_examples_from_the_docs(
    census: tiledbsoma.Collection[Any], obs_all: pd.DataFrame
) -> None:
    """Each documented form selects what pandas selects on the same rows."""
    cases = {
        "sex == 'female'": obs_all.sex == "female",
        "cell_type in ['B cell', 'platelet']": obs_all.cell_type.isin(["B cell", "platelet"]),
        "tissue_general == 'lung' and sex != 'male'": (obs_all.tissue_general == "lung")
        & (obs_all.sex != "male"),
        "tissue_general == 'lung' or tissue_general == 'liver'": obs_all.tissue_general.isin(
            ["lung", "liver"]
        ),
        "(nnz > 100 and raw_sum <= 2000) or is_primary_data == False": (
            (obs_all.nnz > 100) & (obs_all.raw_sum <= 2000)
        )
        | ~obs_all.is_primary_data,
        "cell_type not in ['B cell']": obs_all.cell_type != "B cell",
        "not (sex == 'male')": obs_all.sex != "male",
    }
    for flt, expected in cases.items():
        got = cellcensus.get_obs(census, HUMAN, value_filter=flt, column_names=["soma_joinid"])
        assert sorted(got.soma_joinid) == sorted(obs_all.soma_joinid[expected]), flt
        assert expected.any(), flt


def test_ontology_filter_all_t_cells(
    census: tiledbsoma.Collection[Any], obs_all: pd.DataFrame
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 7.0.0 is "deprecated" upstream
        parser = OntologyParser("v7.0.0")
    # independent truth: a cell is a T cell when CL:0000084 is among its type's ancestors
    is_t = obs_all.cell_type_ontology_term_id.astype(str).map(
        lambda t: T_CELL in parser.get_term_ancestors(t, include_self=True)
    )
    assert is_t.sum() > 0
    assert (~is_t).sum() > 0
    for terms in ([T_CELL], ["T cell"]):
        for obs_df in (None, census["census_data"][HUMAN].obs):
            flt = cellcensus.ontology_filter(cell_type_descendants_of=terms, obs=obs_df)
            got = cellcensus.get_obs(census, HUMAN, value_filter=flt, column_names=["soma_joinid"])
            assert sorted(got.soma_joinid) == sorted(obs_all.soma_joinid[is_t])
    # with obs= the term list is cut to the values the census holds
    short = cellcensus.ontology_filter(
        cell_type_descendants_of=[T_CELL], obs=census["census_data"][HUMAN].obs
    )
    assert len(short) < len(cellcensus.ontology_filter(cell_type_descendants_of=[T_CELL]))


def test_ontology_filter_tissue_and_combination(
    census: tiledbsoma.Collection[Any], obs_all: pd.DataFrame
) -> None:
    brain = "UBERON:0000955"
    flt = cellcensus.ontology_filter(
        tissue_descendants_of=[brain],
        cell_type_descendants_of=["CL:0000540"],  # neuron
    )
    got = cellcensus.get_obs(census, HUMAN, value_filter=flt)
    assert len(got) > 0
    assert set(got.tissue_general.astype(str)) == {"brain"}
    assert set(got.tissue.astype(str)) >= {"cerebral cortex"}  # a part of the brain
    assert set(got.cell_type.astype(str)) <= {"GABAergic neuron", "glutamatergic neuron"}


def test_disease_descendants_match_multi_valued_cells(
    census: tiledbsoma.Collection[Any], obs_all: pd.DataFrame
) -> None:
    obs_df = census["census_data"][HUMAN].obs
    flt = cellcensus.ontology_filter(disease_descendants_of=[COVID], obs=obs_df)
    got = cellcensus.get_obs(census, HUMAN, value_filter=flt, column_names=["soma_joinid"])
    has_covid = obs_all.disease_ontology_term_id.astype(str).map(lambda v: COVID in v.split(" || "))
    assert has_covid.sum() > 0
    assert sorted(got.soma_joinid) == sorted(obs_all.soma_joinid[has_covid])
    # a plain equality misses the multi-valued cells: the reason for the helper
    plain = cellcensus.get_obs(census, HUMAN, value_filter=f"disease_ontology_term_id == '{COVID}'")
    assert len(plain) < has_covid.sum()
    with pytest.raises(BadInputError, match="needs obs="):
        cellcensus.ontology_filter(disease_descendants_of=[COVID])


def test_multi_value_filter() -> None:
    present = ["normal", "asthma || COVID-19", "COVID-19", "COVID-19 || flu"]
    assert (
        cellcensus.multi_value_filter("disease", ["COVID-19"], present)
        == "disease in ['COVID-19', 'COVID-19 || flu', 'asthma || COVID-19']"
    )
    assert cellcensus.multi_value_filter("disease", ["measles"], present) == "soma_joinid < 0"


def test_ontology_filter_errors() -> None:
    with pytest.raises(BadInputError, match="not a known CL term id"):
        cellcensus.ontology_filter(cell_type_descendants_of=["CL:9999999"])
    with pytest.raises(BadInputError, match="neither a term id nor the exact label"):
        cellcensus.ontology_filter(cell_type_descendants_of=["T-cells (all)"])
    with pytest.raises(BadInputError, match="at least one"):
        cellcensus.ontology_filter()
    assert "CL:0000625" in cellcensus.ontology_terms(["T cell"], "CL")
