"""The file formats of :mod:`cellcensus._formats`: round trips, versions, malformed content.

Per format: a document round-trips through its model; an unknown (older or newer)
``format_version`` raises the one error type, :class:`UnsupportedFormatError`, naming the file,
the version and what to do; malformed content raises a clear error; documents in the layouts
that exist on disk today (written by earlier cellcensus versions) still load.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from cellcensus._formats import (
    BuildInfo,
    BuildInput,
    ExportInfo,
    Locator,
    Manifest,
    ManifestObject,
    Mirror,
    MirrorDirectory,
    PlanMarker,
    ReleaseDirectory,
    ReleaseEntry,
    ResumeState,
    SyncState,
)
from cellcensus.errors import (
    BadInputError,
    CellCensusError,
    IntegrityError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from collections.abc import Callable

BUILD = BuildInfo(
    build_tag="2026-11-01",
    created_on="2026-11-01T10:00:00+00:00",
    census_schema_version="2.4.0",
    dataset_schema_version="7.0.0",
    cellcensus_version="0.1.0",
    versions={"tiledbsoma": "2.3.0", "dask": None},
    settings={"chunk_nnz": 1000, "gene_major": True, "blocklist": []},
    inputs=(
        BuildInput(
            dataset_id="d1",
            uri="/data/d1.h5ad",
            status="included",
            sha256="ab" * 32,
            size=10,
            warnings=("w",),
            organism_ontology_term_id="NCBITaxon:9606",
            n_obs_source=5,
            n_obs_census=4,
            soma_joinid=0,
            collection="census_data",
        ),
        BuildInput(dataset_id="d2", uri="/data/d2.h5ad", status="skipped", reason="bad X"),
    ),
    summary={"total_cell_count": 4, "organisms": {"homo_sapiens": {"cells": 4}}},
    post_build_steps=({"step": "add_obsm_layer", "name": "emb"},),
)
MANIFEST = Manifest(
    tag="2026-11-01",
    created_at="2026-11-02T00:00:00+00:00",
    objects=(
        ManifestObject(path="build.json", size=3, sha256="cd" * 32),
        ManifestObject(path="soma/a", size=7, sha256="ab" * 32),
    ),
)
EXPORT = ExportInfo(
    organism="Homo sapiens",
    measurement_name="RNA",
    X_name="raw",
    n_obs=3,
    n_vars=2,
    nnz=5,
    query={"obs_value_filter": "tissue == 'lung'", "census_uri": "file:///c/soma"},
    estimate={"nnz": 5, "nnz_exact": True},
)
SYNC = SyncState(
    source="s3://b/census/2026-11-01/",
    tag="2026-11-01",
    manifest_sha256="ef" * 32,
    parts=frozenset({"soma"}),
    owned=frozenset({"soma", "h5ads", "build.json"}),
    complete=True,
)
STATE = ResumeState(fingerprint="f" * 64)

#: Each versioned format: a document, its reader, and its malformed-content error type.
VERSIONED: dict[str, tuple[Any, Callable[..., Any], type[CellCensusError]]] = {
    "build.json": (BUILD, BuildInfo.from_json, BadInputError),
    "manifest.json": (MANIFEST, Manifest.from_json, IntegrityError),
    "export.json": (EXPORT, ExportInfo.from_json, BadInputError),
    "sync marker": (SYNC, SyncState.from_json, BadInputError),
    "state.json": (STATE, ResumeState.from_json, BadInputError),
}


@pytest.mark.parametrize("name", VERSIONED)
def test_round_trip(name: str) -> None:
    doc, read, _ = VERSIONED[name]
    data = doc.to_json()
    assert read(data, where=name) == doc
    assert read(data, where=name).to_json() == data


@pytest.mark.parametrize("name", VERSIONED)
@pytest.mark.parametrize("version", [0, 99])
def test_unknown_version_is_the_one_error(name: str, version: int) -> None:
    doc, read, _ = VERSIONED[name]
    raw = json.loads(doc.to_json())
    raw["format_version"] = version
    with pytest.raises(UnsupportedFormatError) as info:
        read(json.dumps(raw).encode(), where=f"/x/{name}")
    msg = str(info.value)
    assert f"/x/{name} has format_version {version}" in msg
    assert "reads version(s)" in msg
    if version == 99:
        assert "upgrade cellcensus" in msg
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", VERSIONED)
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"format_version": "1"}', "'format_version' is '1', not an integer"),
        (b'{"format_version": true}', "not an integer"),
        (b"{}", "'format_version' is None"),
    ],
)
def test_malformed_is_a_clear_error(name: str, content: bytes, match: str) -> None:
    _, read, error = VERSIONED[name]
    with pytest.raises(error, match=match) as info:
        read(content, where=f"/x/{name}")
    assert str(info.value).startswith(f"/x/{name}: ")
    assert not isinstance(info.value, UnsupportedFormatError)


@pytest.mark.parametrize(
    ("name", "change", "match"),
    [
        ("build.json", {"inputs": {"d1": 1}}, "'inputs' must be a list"),
        ("build.json", {"inputs": [{"uri": "x"}]}, "no 'dataset_id'"),
        ("build.json", {"settings": [1]}, "'settings' must be an object"),
        ("build.json", {"inputs": [{"dataset_id": "d", "size": "10"}]}, "'size' must be a int"),
        ("export.json", {"format": "other"}, "'format' is 'other'"),
        ("export.json", {"nnz": -1}, "'nnz' must be a count"),
        ("export.json", {"organism": 3}, "'organism' must be a string"),
        ("sync marker", {"complete": "yes"}, "not a sync marker"),
        ("state.json", {"fingerprint": 1}, "'fingerprint' must be a string"),
        ("manifest.json", {"objects": {}}, "'objects' must be a list"),
    ],
)
def test_malformed_fields(name: str, change: dict[str, object], match: str) -> None:
    doc, read, error = VERSIONED[name]
    raw = json.loads(doc.to_json()) | change
    with pytest.raises(error, match=match):
        read(json.dumps(raw).encode(), where=name)


def test_build_json_of_the_first_builds_still_loads() -> None:
    """A version-1 build.json as the first builders wrote it: no per-input warnings or
    collection, no spatial/timing in the summary, no post_build_steps."""
    old = {
        "format_version": 1,
        "build_tag": "2026-05-01",
        "created_on": "2026-05-01T00:00:00+00:00",
        "census_schema_version": "2.4.0",
        "dataset_schema_version": "7.0.0",
        "cellcensus_version": "0.0.1",
        "versions": {"tiledbsoma": "2.1.0"},
        "settings": {"workers": 2},
        "inputs": [
            {
                "dataset_id": "d1",
                "uri": "/d1.h5ad",
                "sha256": None,
                "size": None,
                "status": "excluded",
                "reason": "no primary cells",
                "organism_ontology_term_id": None,
                "n_obs_source": None,
                "n_obs_census": 0,
                "soma_joinid": None,
            }
        ],
        "summary": {"total_cell_count": 0, "datasets_skipped": []},
    }
    info = BuildInfo.from_json(json.dumps(old).encode())
    assert info.build_tag == "2026-05-01"
    assert info.inputs[0].warnings == ()
    assert info.inputs[0].collection is None
    assert info.settings["workers"] == 2
    assert info.post_build_steps == ()
    # rewriting it adds the newer optional fields and loses nothing
    again = info.data
    for key, value in old.items():
        if key != "inputs":
            assert again[key] == value
    assert again["inputs"][0] | {"warnings": [], "collection": None} == again["inputs"][0]


def test_build_json_keeps_unknown_keys() -> None:
    raw = json.loads(BUILD.to_json())
    raw["future_key"] = {"a": 1}
    raw["inputs"][0]["future_field"] = 2
    info = BuildInfo.from_json(json.dumps(raw).encode())
    assert info.extra == {"future_key": {"a": 1}}
    assert json.loads(info.to_json()) == raw


def test_state_version_1_asks_for_a_fresh_build() -> None:
    """Version 1 (pickled steps) cannot resume: the message says to start again."""
    with pytest.raises(UnsupportedFormatError, match="without --resume"):
        ResumeState.from_json(b'{"format_version": 1, "fingerprint": "x"}', where="state.json")
    # version 2, as builds interrupted today left it, resumes
    assert ResumeState.from_json(b'{"format_version": 2, "fingerprint": "x"}').fingerprint == "x"


def test_plan_marker() -> None:
    assert PlanMarker.from_json(PlanMarker(plan="p").to_json()) == PlanMarker(plan="p")
    assert PlanMarker.from_json(b'{"plan": "abc"}').plan == "abc"
    with pytest.raises(BadInputError, match="'plan' must be a string"):
        PlanMarker.from_json(b'{"plan": 3}')


def test_export_json_as_written_by_earlier_exports_loads() -> None:
    """The layout ``export`` has written since parquet exports exist (keys in that order)."""
    old = (
        b'{"format": "cellcensus-parquet-export", "format_version": 1, "organism": "Mus musculus",'
        b' "measurement_name": "RNA", "X_name": "raw", "query": {"obs_value_filter": null},'
        b' "n_obs": 0, "n_vars": 0, "nnz": 0, "estimate": {}}'
    )
    info = ExportInfo.from_json(old)
    assert (info.organism, info.n_obs, info.query) == (
        "Mus musculus",
        0,
        {"obs_value_filter": None},
    )


def test_sync_marker_drops_unsafe_names() -> None:
    raw = json.loads(SYNC.to_json())
    raw["owned"] = ["soma", "../etc", "a/b", ""]
    raw["parts"] = ["soma", "../etc"]
    got = SyncState.from_json(json.dumps(raw).encode(), where="m")
    assert got.owned == frozenset({"soma"})
    assert got.parts == frozenset({"soma"})


def test_release_and_mirrors_round_trip_in_the_official_shape() -> None:
    entry = ReleaseEntry(
        release_build="2026-11-01",
        release_date="2026-11-01",
        soma=Locator(uri="s3://b/c/2026-11-01/soma/", relative_uri="c/2026-11-01/soma/"),
        h5ads=Locator(uri="s3://b/c/2026-11-01/h5ads/", relative_uri="c/2026-11-01/h5ads/"),
        lts=True,
    )
    directory = ReleaseDirectory().with_build(entry)
    data = directory.to_json()
    raw = json.loads(data)
    assert "format_version" not in raw  # the official client would list it as a release
    assert raw["stable"] == raw["latest"] == "2026-11-01"
    assert set(raw["2026-11-01"]) >= {"release_build", "soma", "h5ads", "flags"}
    assert ReleaseDirectory.from_json(data) == directory
    mirrors = MirrorDirectory(
        default="origin",
        mirrors={
            "origin": Mirror(
                name="origin", provider="S3", base_uri="s3://b/", embeddings_base_uri="s3://b/"
            )
        },
    )
    assert MirrorDirectory.from_json(mirrors.to_json()) == mirrors
    with pytest.raises(BadInputError, match="not valid JSON"):
        ReleaseDirectory.from_json(b"{")
    with pytest.raises(BadInputError, match="release_build"):
        ReleaseDirectory.from_json(b'{"x": {"soma": {}, "h5ads": {}}}')
