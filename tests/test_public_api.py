"""The public API: its names are pinned (growth is deliberate), each public function and class
says how stable it is, ``import cellcensus`` stays light, and no private API of another library
is imported by cellcensus."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cellcensus import _extras
from cellcensus.errors import CellCensusError, MissingExtraError

SRC = Path(__file__).resolve().parents[1] / "src" / "cellcensus"

# Change these lists on purpose: every name here is a promise to users.
PUBLIC = {
    "cellcensus": [
        "AccessDeniedError",
        "BadInputError",
        "CellCensusError",
        "CensusNotFoundError",
        "CollectionNotFoundError",
        "ConfigError",
        "DatasetNotFoundError",
        "FilterError",
        "IntegrityError",
        "MemoryEstimateWarning",
        "NotFoundError",
        "PermissionDeniedError",
        "QueryArgumentError",
        "QueryTooLargeError",
        "ReleaseRootUnreachableError",
        "StorageError",
        "__version__",
        "configure",
        "download_source_h5ad",
        "experimental",
        "get_anndata",
        "get_census_mirror_directory",
        "get_census_version_description",
        "get_census_version_directory",
        "get_default_soma_context",
        "get_obs",
        "get_presence_matrix",
        "get_source_h5ad_uri",
        "get_var",
        "open_soma",
    ],
    "cellcensus.experimental": [
        "ExportPlan",
        "ExportResult",
        "NeighborObs",
        "QueryEstimate",
        "SpatialDataExportResult",
        "estimate",
        "export",
        "export_spatialdata",
        "find_nearest_obs",
        "get_all_available_embeddings",
        "get_all_census_versions_with_embedding",
        "get_embedding",
        "get_embedding_metadata",
        "get_embedding_metadata_by_name",
        "multi_value_filter",
        "ontology_filter",
        "ontology_terms",
        "plan_export",
        "pp",
        "predict_obs_metadata",
        "read_export",
        "summarize",
        "util",
    ],
    "cellcensus.release": [
        "CleanupPlan",
        "Manifest",
        "Mirror",
        "MirrorDirectory",
        "Problem",
        "PublishResult",
        "ReleaseDetails",
        "ReleaseDirectory",
        "ReleaseEntry",
        "ReleaseRoot",
        "SyncResult",
        "VerifyReport",
        "add_mirror",
        "cleanup",
        "open_root",
        "pin",
        "plan_cleanup",
        "promote",
        "publish",
        "read_directory",
        "read_manifest",
        "read_mirrors",
        "remove_alias",
        "remove_mirror",
        "retract",
        "set_alias",
        "set_default_mirror",
        "show_release",
        "sync",
        "unpin",
        "verify",
    ],
    "cellcensus.errors": [
        "AccessDeniedError",
        "BadInputError",
        "CellCensusError",
        "CensusNotFoundError",
        "CollectionNotFoundError",
        "ConfigError",
        "DatasetNotFoundError",
        "EmbeddingNotFoundError",
        "FilterError",
        "IntegrityError",
        "MemoryEstimateWarning",
        "MissingExtraError",
        "NotFoundError",
        "PermissionDeniedError",
        "PreconditionFailedError",
        "QueryArgumentError",
        "QueryArgumentTypeError",
        "QueryTooLargeError",
        "ReleaseRootUnreachableError",
        "StorageError",
        "UnsupportedFormatError",
    ],
    "cellcensus.settings": [
        "ClientConfig",
        "DEFAULT_CACHE_TTL",
        "DEFAULT_OBS_CACHE_BYTES",
        "DEFAULT_REGION",
        "ENV_CACHE_TTL",
        "ENV_OBS_CACHE_BYTES",
        "ENV_PREFIX",
        "ENV_RELEASE_ROOT",
        "Settings",
        "client_config",
        "configure",
        "reset_configuration",
    ],
    "cellcensus.client": [
        "AccessDeniedError",
        "CensusNotFoundError",
        "CollectionNotFoundError",
        "DatasetNotFoundError",
        "ENV_RELEASE_ROOT",
        "ExportPlan",
        "ExportResult",
        "FilterError",
        "MemoryEstimateWarning",
        "QueryArgumentError",
        "QueryArgumentTypeError",
        "QueryEstimate",
        "QueryTooLargeError",
        "ReleaseRootUnreachableError",
        "ReleaseSource",
        "ResolvedRelease",
        "SpatialDataExportResult",
        "check_value_filter",
        "clear_cache",
        "configure",
        "download_source_h5ad",
        "estimate",
        "export",
        "export_spatialdata",
        "format_bytes",
        "get_anndata",
        "get_census_mirror_directory",
        "get_census_version_description",
        "get_census_version_directory",
        "get_default_soma_context",
        "get_obs",
        "get_presence_matrix",
        "get_source_h5ad_uri",
        "get_var",
        "multi_value_filter",
        "ontology_filter",
        "ontology_terms",
        "open_soma",
        "parse_bytes",
        "plan_export",
        "read_export",
        "release_source",
        "resolve_release",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_are_pinned(module: str) -> None:
    mod = importlib.import_module(module)
    assert sorted(mod.__all__) == PUBLIC[module]
    for name in mod.__all__:
        assert getattr(mod, name) is not None


@pytest.mark.parametrize("module", ["cellcensus", "cellcensus.experimental"])
def test_every_public_symbol_has_a_lifecycle(module: str) -> None:
    mod = importlib.import_module(module)
    missing = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if not getattr(obj, "__name__", "cellcensus").startswith("cellcensus") and not str(
            getattr(obj, "__module__", "cellcensus")
        ).startswith("cellcensus"):
            continue  # an official object re-exported as is (NeighborObs): its docs are upstream
        if inspect.ismodule(obj):
            obj_doc = obj.__doc__ or ""
        elif isinstance(obj, type) and issubclass(obj, BaseException | Warning):
            obj_doc = sys.modules["cellcensus.errors"].__doc__ or ""  # the module's note
        elif callable(obj) or isinstance(obj, type):
            obj_doc = obj.__doc__ or ""
        else:
            continue
        if "Lifecycle:" not in obj_doc:
            missing.append(name)
    assert not missing, f"no 'Lifecycle:' note in the docstring of {missing}"


def test_moved_names_still_resolve_at_the_top_level() -> None:
    import cellcensus
    import cellcensus.experimental

    for name in cellcensus._MOVED_TO_EXPERIMENTAL:
        assert getattr(cellcensus, name) is getattr(cellcensus.experimental, name)
        assert name not in cellcensus.__all__


def test_import_is_light() -> None:
    """``import cellcensus`` (and its errors and settings) loads neither TileDB nor anndata."""
    code = (
        "import json, sys, cellcensus, cellcensus.errors, cellcensus.experimental;"
        "print(json.dumps(sorted(m for m in ('tiledbsoma', 'tiledb', 'anndata', 'dask', 'numba',"
        " 'pandas', 'cellxgene_census') if m in sys.modules)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(run.stdout) == []


def test_no_private_api_of_another_library_is_imported() -> None:
    """Private imports only in the version-guarded ``_compat`` modules (the builder's write path,
    the client's error classification)."""
    private = ("cellxgene_census._", "tiledbsoma._", "somacore._", "anndata._")
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found += [f"{path.relative_to(SRC)}: {n}" for n in names if n.startswith(private)]
    assert not found


# ---------------------------------------------------------------------------- extras
@pytest.mark.parametrize("extra", sorted(_extras.EXTRAS))
def test_every_extra_is_installed_in_the_test_environment(extra: str) -> None:
    _extras.require_extra(extra, "this test")  # the test environment has [all]


def test_a_missing_extra_names_the_install_command() -> None:
    modules = ("cellcensus_no_such_module", "json")
    assert _extras.missing_modules(modules) == ["cellcensus_no_such_module"]
    _extras.EXTRAS["_probe"] = modules
    try:
        with pytest.raises(MissingExtraError, match=r"pip install 'cellcensus\[_probe\]'") as e:
            _extras.require_extra("_probe", "the probe feature")
    finally:
        del _extras.EXTRAS["_probe"]
    assert isinstance(e.value, CellCensusError)
    assert isinstance(e.value, ImportError)
    assert "cellcensus_no_such_module" in str(e.value)
