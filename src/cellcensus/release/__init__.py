"""Release roots and releases: publish, the release directory, mirrors, verify and sync.

A *release root* is a local directory or ``s3://bucket/prefix/`` holding ``release.json``,
``mirrors.json`` and one ``<tag>/`` per published build (``soma/``, ``h5ads/``,
``manifest.json``, ``build.json``). See ``docs/releases.md``.

This package exports what users call: the operations (``publish``, ``sync``, ``verify``, the
directory and mirror edits), their results, and the models they return. Storage back-ends
(``open_root`` gives the right one for a path or URI), validators and the other records live in
the private modules.

Lifecycle: maturing.
"""

from __future__ import annotations

from cellcensus._formats.directory import Mirror, MirrorDirectory, ReleaseDirectory, ReleaseEntry
from cellcensus._formats.manifest import Manifest
from cellcensus.release._open import open_root
from cellcensus.release._root import ReleaseRoot
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
]
