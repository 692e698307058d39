"""Our functions return what the official client returns, for the same release (local root)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import cellxgene_census
import pytest

import cellcensus

from ._parity import CASES, assert_same, run_case

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import tiledbsoma


@pytest.fixture(scope="module")
def both(
    release_root: Path, soma_path: Path
) -> Iterator[tuple[tiledbsoma.Collection[Any], tiledbsoma.Collection[Any]]]:
    """(our census via the release root, the official client's census via its uri)."""
    ours = cellcensus.open_soma(census_version="stable", release_root=release_root)
    theirs = cellxgene_census.open_soma(uri=str(soma_path))
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_result_as_official_client(
    both: tuple[tiledbsoma.Collection[Any], tiledbsoma.Collection[Any]], case: str
) -> None:
    ours, theirs = both
    assert ours.uri.rstrip("/") == theirs.uri.rstrip("/").replace(
        "file://", ""
    ) or ours.uri.endswith("soma/")
    assert_same(run_case(cellcensus, ours, case), run_case(cellxgene_census, theirs, case))


def test_signatures_match_the_official_client() -> None:
    """Same parameter names, kinds and defaults; ours may only add keyword-only extras."""
    import inspect

    names = [
        "open_soma",
        "get_default_soma_context",
        "get_census_version_directory",
        "get_census_version_description",
        "get_census_mirror_directory",
        "get_anndata",
        "get_obs",
        "get_var",
        "get_presence_matrix",
        "get_source_h5ad_uri",
        "download_source_h5ad",
    ]
    for name in names:
        theirs = inspect.signature(getattr(cellxgene_census, name)).parameters
        ours = inspect.signature(getattr(cellcensus, name)).parameters
        for pname, p in theirs.items():
            assert pname in ours, (name, pname)
            q = ours[pname]
            assert q.kind == p.kind, (name, pname)
            assert q.default == p.default, (name, pname)
        extras = [q for n, q in ours.items() if n not in theirs]
        assert all(q.kind is inspect.Parameter.KEYWORD_ONLY for q in extras), name
        assert list(ours)[: len(theirs)] == list(theirs), name

    from cellxgene_census.experimental import pp as official_pp

    from cellcensus.experimental import pp

    assert pp.mean_variance is official_pp.mean_variance
    assert pp.highly_variable_genes is official_pp.highly_variable_genes
    assert list(inspect.signature(pp.get_highly_variable_genes).parameters) == list(
        inspect.signature(official_pp.get_highly_variable_genes).parameters
    )
