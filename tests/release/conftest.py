"""Fixtures of the release tests.

The S3 server (``s3_server``, ``s3``, ``*_settings``), the AWS isolation and ``build_copy`` are
the root's (``tests/conftest.py``). ``census_build`` here is the root's ``tiny_build``: a small
but real Census-shaped TileDB-SOMA collection written directly with tiledbsoma (seconds to make),
plus H5ADs and a ``build.json``; it keeps the contract of the builder's fixture (a ``Path`` to a
build directory with ``soma/``, ``h5ads/``, ``build.json``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="session")
def census_build(tiny_build: Path) -> Path:
    """Path of a finished build directory (``soma/``, ``h5ads/``, ``build.json``)."""
    return tiny_build
