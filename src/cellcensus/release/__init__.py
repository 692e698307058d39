"""Release roots and releases: publish, the release directory, mirrors, verify and sync.

A *release root* is a local directory or ``s3://bucket/prefix/`` holding ``release.json``,
``mirrors.json`` and one ``<tag>/`` per published build (``soma/``, ``h5ads/``,
``manifest.json``, ``build.json``). See ``docs/releases.md``.
"""

from __future__ import annotations

from cellcensus.release._local import LocalRoot
from cellcensus.release._manifest import BuildInfo, Manifest, ManifestObject
from cellcensus.release._models import (
    Locator,
    Mirror,
    MirrorDirectory,
    ReleaseDirectory,
    ReleaseEntry,
    Retraction,
)
from cellcensus.release._open import open_root
from cellcensus.release._root import ObjectInfo, ReleaseRoot
from cellcensus.release._s3 import S3Root
from cellcensus.release._validate import tag_date, validate_name, validate_tag
from cellcensus.release.directory import (
    CleanupPlan,
    ReleaseDetails,
    cleanup,
    pin,
    plan_cleanup,
    promote,
    read_directory,
    read_manifest,
    remove_alias,
    retract,
    set_alias,
    show_release,
    unpin,
)
from cellcensus.release.mirrors import (
    add_mirror,
    read_mirrors,
    remove_mirror,
    set_default_mirror,
)
from cellcensus.release.publish import PublishResult, publish
from cellcensus.release.sync import SyncResult, sync
from cellcensus.release.verify import Problem, VerifyReport, verify

__all__ = [
    "BuildInfo",
    "CleanupPlan",
    "LocalRoot",
    "Locator",
    "Manifest",
    "ManifestObject",
    "Mirror",
    "MirrorDirectory",
    "ObjectInfo",
    "Problem",
    "PublishResult",
    "ReleaseDetails",
    "ReleaseDirectory",
    "ReleaseEntry",
    "ReleaseRoot",
    "Retraction",
    "S3Root",
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
    "tag_date",
    "unpin",
    "validate_name",
    "validate_tag",
    "verify",
]
