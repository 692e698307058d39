"""The shapes of the release directory as the official client reads them (``release.json``,
``mirrors.json``): the dictionaries ``get_census_version_directory`` & co. return.

The same keys and types as ``cellxgene_census`` 1.18's (private) TypedDicts, declared here so
that nothing in cellcensus imports that client's private modules.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

__all__ = [
    "CensusLocator",
    "CensusMirror",
    "CensusVersionDescription",
    "CensusVersionRetraction",
    "Provider",
]

#: Storage of a mirror (``"unknown"``: decided from the URI).
Provider = Literal["S3", "file", "unknown"]


class CensusLocator(TypedDict):
    """Where a part of a build (``soma`` or ``h5ads``) lives."""

    uri: str
    relative_uri: str
    s3_region: str | None


class CensusVersionRetraction(TypedDict):
    """Why and when a build was retracted."""

    date: str
    reason: str | None
    info_url: str | None
    replaced_by: str | None


class CensusVersionDescription(TypedDict):
    """One entry of ``release.json`` (aliases resolved)."""

    release_date: str | None
    release_build: str
    soma: CensusLocator
    h5ads: CensusLocator
    flags: NotRequired[dict[Literal["lts", "retracted"], bool]]
    retraction: NotRequired[CensusVersionRetraction]


class CensusMirror(TypedDict):
    """One mirror of ``mirrors.json``."""

    provider: Provider
    base_uri: str
    region: str | None
    embeddings_base_uri: str
