"""Property tests of the pure helpers: URI joining, multi-valued filters, sizes, directories."""

from __future__ import annotations

import functools
import json
import string
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellcensus import client
from cellcensus._formats.directory import ReleaseDirectory
from cellcensus._storage import uri_join
from cellcensus.client._directory import _versions

from .conftest import _QuietHandler, serve_http

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

segment = st.text(string.ascii_lowercase + string.digits + "-_", min_size=1, max_size=8)
path = st.lists(segment, min_size=1, max_size=4).map("/".join)


@given(base=path, rel=path, scheme=st.sampled_from(["s3://", "file:///", "https://h/"]))
def test_uri_join_never_drops_the_base(base: str, rel: str, scheme: str) -> None:
    expected = f"{scheme}{base}/{rel}"
    for b in (f"{scheme}{base}", f"{scheme}{base}/"):
        for r in (rel, "/" + rel):
            assert uri_join(b, r) == expected


values = st.text(string.ascii_letters + " -", min_size=1, max_size=6).map(str.strip).filter(bool)


@given(
    stored=st.lists(st.lists(values, min_size=1, max_size=3), min_size=1, max_size=8),
    wanted=st.lists(values, min_size=1, max_size=3),
)
def test_multi_value_filter_selects_exactly_the_combinations_holding_a_wanted_value(
    stored: list[list[str]], wanted: list[str]
) -> None:
    present = [" || ".join(v) for v in stored]
    flt = client.multi_value_filter("disease", wanted, present)
    hits = sorted({p for p, parts in zip(present, stored, strict=True) if set(parts) & set(wanted)})
    if hits:
        assert flt == "disease in [" + ", ".join(repr(h) for h in hits) + "]"
    else:
        assert flt == "soma_joinid < 0"


@given(
    n=st.integers(min_value=1, max_value=2**50),
    unit=st.sampled_from(["", "B", "KiB", "MiB", "GiB"]),
)
def test_parse_bytes_units(n: int, unit: str) -> None:
    factor = {"": 1, "B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
    assert client.parse_bytes(f"{n}{unit}") == n * factor


names = st.text(string.ascii_lowercase, min_size=1, max_size=4)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1, and its URL."""
    root = tmp_path_factory.mktemp("served")
    handler = type("Handler", (_QuietHandler,), {"hits": [], "ranges": True})
    with serve_http(functools.partial(handler, directory=str(root))) as url:
        yield root, url


# real HTTP reads on a shared machine: no per-example time limit (it failed once at 306 ms of 200)
@settings(deadline=None)
@given(
    builds=st.dictionaries(names, st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=5),
    aliases=st.dictionaries(names, names, max_size=5),
    lts=st.sampled_from([None, True, False]),
    retracted=st.sampled_from([None, True, False]),
)
def test_directory_view_matches_the_official_algorithm(
    served: tuple[Path, str],
    builds: dict[str, tuple[bool, bool]],
    aliases: dict[str, str],
    lts: bool | None,
    retracted: bool | None,
) -> None:
    """Our reading of release.json equals the official client's on arbitrary directories
    (aliases may dangle; loops are excluded here because the official client would hang)."""
    import cellxgene_census._release_directory as rd

    raw: dict[str, object] = {
        name: {
            "release_build": name,
            "release_date": None,
            # locators in the full shape (the client reads release.json through its model,
            # which gives every locator its s3_region, null when absent)
            "soma": {
                "uri": f"s3://b/{name}/soma/",
                "relative_uri": f"{name}/soma/",
                "s3_region": None,
            },
            "h5ads": {
                "uri": f"s3://b/{name}/h5ads/",
                "relative_uri": f"{name}/h5ads/",
                "s3_region": None,
            },
            "flags": {"lts": is_lts, "retracted": is_retracted},
            "do_not_delete": False,
        }
        for name, (is_lts, is_retracted) in builds.items()
    }
    for alias, target in aliases.items():
        if alias not in raw:
            raw[alias] = target

    # drop alias cycles (the official implementation loops forever on them)
    def resolves(name: str) -> bool:
        seen = set()
        while isinstance(raw.get(name), str):
            if name in seen:
                return False
            seen.add(name)
            name = raw[name]  # type: ignore[assignment]
        return True

    raw = {k: v for k, v in raw.items() if resolves(k)}

    # the official client fetches its directory from a module constant (it has no other
    # setting): point it at a real HTTP server on 127.0.0.1 serving this release.json
    (served[0] / "release.json").write_text(json.dumps(raw))
    saved = rd.CELL_CENSUS_RELEASE_DIRECTORY_URL
    rd.CELL_CENSUS_RELEASE_DIRECTORY_URL = f"{served[1]}/release.json"
    try:
        official = rd.get_census_version_directory(lts=lts, retracted=retracted)
    finally:
        rd.CELL_CENSUS_RELEASE_DIRECTORY_URL = saved
    ours = _versions(ReleaseDirectory.from_dict(raw), lts=lts, retracted=retracted)
    assert list(ours) == list(official)
    assert ours == official
