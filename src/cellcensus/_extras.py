"""The optional parts of cellcensus (``pip install 'cellcensus[EXTRA]'``) and the check that
names the missing one.

The core install reads censuses (``open_soma``, ``get_anndata``, ``export`` to ``.h5ad`` and
``.parquet``) and manages releases. Each feature with heavy dependencies has its extra:

=========  ====================================================  =============================
Extra      For                                                   Modules checked
=========  ====================================================  =============================
build      ``cellcensus build`` / ``validate`` / ``demo``        dask, distributed, numba
synth      ``cellcensus synth`` / ``demo``                       cellxgene_schema, xxhash
export     ``export`` to ``.zarr``                               zarr
pp         ``experimental.pp.highly_variable_genes``             skmisc
embeddings ``embeddings add --index``, ``find_nearest_obs``          tiledb.vector_search
all        all of the above
=========  ====================================================  =============================
"""

from __future__ import annotations

import importlib.util

from cellcensus.errors import MissingExtraError

__all__ = ["EXTRAS", "missing_modules", "require_extra"]

#: Extra name → the top-level modules it installs that cellcensus imports.
EXTRAS: dict[str, tuple[str, ...]] = {
    "build": ("dask", "distributed", "numba"),
    "synth": ("cellxgene_schema", "xxhash"),
    "export": ("zarr",),
    "pp": ("skmisc",),
    "embeddings": ("tiledb.vector_search",),
}


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported (looked up, not imported)."""
    missing = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a broken or half-removed installation
            found = False
        if not found:
            missing.append(name)
    return missing


def require_extra(extra: str, feature: str) -> None:
    """Fail clearly when ``feature`` needs an extra that is not installed.

    Parameters
    ----------
    extra
        A key of :data:`EXTRAS`.
    feature
        What needs it, for the message (e.g. ``"cellcensus build"``).

    Raises
    ------
    MissingExtraError
        (an ``ImportError``) naming the extra and the command that installs it.
    """
    missing = missing_modules(EXTRAS[extra])
    if missing:
        msg = (
            f"{feature} needs the optional [{extra}] dependencies, which are not installed "
            f"(missing: {', '.join(missing)}); install them with: pip install 'cellcensus[{extra}]'"
        )
        raise MissingExtraError(msg)
