"""Attach embeddings to published releases, list, show and remove them.

Layout under a release root (the official ``<base>/<census_version>/<id>`` form, in its own
prefix so a build's ``<tag>/`` stays exactly what its manifest lists)::

    contributions.json                     embeddings by id (the official directory format)
    embeddings/<tag>/<id>/                 the embedding: float32 SparseNDArray
    embeddings/<tag>/<id>.index/           its IVFFlat vector index (optional)
    embeddings/<tag>/<id>.manifest.json    size and sha256 of every object above

Attaching follows publish's order: validate everything (input, keys against the release,
duplicate names) before writing; stage the array and index locally; claim the manifest with a
create-only write; upload; verify what landed against the manifest; and only then add the entry
to ``contributions.json`` by compare-and-swap (the commit point). A failure before the commit
deletes what was uploaded (best effort); anything left is invisible to readers and is removed by
``remove_embedding(root, id)``. Removing rewrites ``contributions.json`` first, then deletes data.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cellcensus._formats.manifest import ManifestObject
from cellcensus._storage.hashing import FileDigest, hash_file, hash_stream
from cellcensus.embeddings._census import (
    KeyedMatrix,
    experiment_name,
    open_census,
    resolve_keys,
)
from cellcensus.embeddings._input import EmbeddingInput, read_input
from cellcensus.embeddings._models import (
    CONTRIBUTIONS_JSON,
    DATA_TYPES,
    ContributionsDirectory,
    EmbeddingEntry,
    IndexInfo,
)
from cellcensus.embeddings._write import (
    INDEX_TYPE,
    build_ivf_flat_index,
    write_embedding_array,
)
from cellcensus.errors import BadInputError, IntegrityError, NotFoundError, PermissionDeniedError
from cellcensus.release import Manifest, open_root, read_directory
from cellcensus.release._cas import cas_update
from cellcensus.release._root import MULTIPART_CHUNKSIZE, PreconditionFailedError, ReleaseRoot
from cellcensus.release._s3 import S3Root
from cellcensus.release._transfer import DEFAULT_JOBS, Stage, run_parallel
from cellcensus.release._validate import validate_name, validate_tag
from cellcensus.release.mirrors import ensure_origin_mirror

if TYPE_CHECKING:
    from collections.abc import Callable

    from cellcensus._progress import Progress
    from cellcensus.settings import Settings

__all__ = [
    "EMBEDDINGS_PREFIX",
    "AttachResult",
    "EmbeddingDetails",
    "EmbeddingMetadata",
    "add_embedding",
    "find_orphans",
    "list_embeddings",
    "read_contributions",
    "remove_embedding",
    "show_embedding",
]

logger = logging.getLogger(__name__)

EMBEDDINGS_PREFIX = "embeddings/"
INDEX_SUFFIX = ".index"
MANIFEST_SUFFIX = ".manifest.json"


@dataclass(frozen=True, kw_only=True)
class EmbeddingMetadata:
    """Descriptive fields of an embedding (the official metadata schema's free-text fields)."""

    title: str = ""
    description: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_affiliation: str = ""
    DOI: str = ""
    additional_information: str = ""
    model_link: str = ""


@dataclass(frozen=True, kw_only=True)
class AttachResult:
    """What :func:`add_embedding` stored."""

    entry: EmbeddingEntry
    uri: str
    index_uri: str | None
    total_objects: int
    total_bytes: int
    seconds: float
    seconds_index: float


@dataclass(frozen=True, kw_only=True)
class EmbeddingDetails:
    """An embedding entry with its manifest summary."""

    entry: EmbeddingEntry
    uri: str
    objects: int
    total_bytes: int


# ---------------------------------------------------------------------------- directory
def read_contributions(
    root: str | Path | ReleaseRoot, settings: Settings | None = None
) -> ContributionsDirectory:
    """Read the root's ``contributions.json`` (empty when the root has none).

    Parameters
    ----------
    root
        Release root (path, ``file://``, ``s3://`` or a :class:`ReleaseRoot`).
    settings
        Storage settings for S3 roots.

    Returns
    -------
    ContributionsDirectory
        Embeddings by id.
    """
    r = open_root(root, settings)
    got = r.read_versioned(CONTRIBUTIONS_JSON)
    if got is None:
        return ContributionsDirectory()
    return ContributionsDirectory.from_json(got[0], where=r.object_uri(CONTRIBUTIONS_JSON))


def _update(
    r: ReleaseRoot, change: Callable[[ContributionsDirectory], ContributionsDirectory]
) -> ContributionsDirectory:
    where = r.object_uri(CONTRIBUTIONS_JSON)
    result, _ = cas_update(
        r,
        CONTRIBUTIONS_JSON,
        parse=lambda b: ContributionsDirectory.from_json(b, where=where),
        dump=ContributionsDirectory.to_json,
        empty=ContributionsDirectory,
        change=change,
    )
    return result


def _keys(tag: str, embedding_id: str) -> tuple[str, str, str]:
    """Array prefix, index prefix and manifest key of an embedding."""
    base = f"{EMBEDDINGS_PREFIX}{tag}/{embedding_id}"
    return base + "/", base + INDEX_SUFFIX + "/", base + MANIFEST_SUFFIX


def _resolve_tag(r: ReleaseRoot, tag: str) -> str:
    d = read_directory(r)
    try:
        build = d.resolve(tag)
    except LookupError as e:
        msg = f"{e}; attach embeddings to a published build (`cellcensus publish` first)"
        raise NotFoundError(msg) from e
    if d.builds[build].retracted:
        msg = f"{build!r} is retracted at {r.uri}; attach embeddings to a current build"
        raise BadInputError(msg, field="tag")
    return build


# ---------------------------------------------------------------------------- add
def _stage(
    workdir: Path,
    entry: EmbeddingEntry,
    km: KeyedMatrix,
    *,
    index: bool,
    partitions: int | None,
) -> tuple[list[tuple[str, Path]], float]:
    """Write the array (and index) under ``workdir``; returns the (path relative to
    ``embeddings/<tag>/``, local file) pairs and the seconds the index took."""
    write_embedding_array((workdir / entry.id).as_posix(), km, info_json=entry.to_json())
    seconds_index = 0.0
    if index:
        t0 = time.monotonic()
        build_ivf_flat_index(workdir / (entry.id + INDEX_SUFFIX), km, partitions=partitions)
        seconds_index = time.monotonic() - t0
    files: list[tuple[str, Path]] = []
    for dirpath, _dirs, names in os.walk(workdir):
        for name in names:
            full = Path(dirpath) / name
            files.append((full.relative_to(workdir).as_posix(), full))
    return sorted(files), seconds_index


def _verify(
    r: ReleaseRoot, tag: str, embedding_id: str, manifest: Manifest, digests: dict[str, FileDigest]
) -> list[str]:
    """Problems of what is stored for an embedding against its manifest (empty when intact)."""
    arr_prefix, index_prefix, _ = _keys(tag, embedding_id)
    base = f"{EMBEDDINGS_PREFIX}{tag}/"
    listed = {
        o.key[len(base) :]: o
        for prefix in (arr_prefix, index_prefix)
        for o in r.list_objects(prefix)
    }
    problems: list[str] = []
    to_hash: list[ManifestObject] = []
    for obj in manifest.objects:
        info = listed.get(obj.path)
        if info is None:
            problems.append(f"{obj.path}: missing")
        elif info.size != obj.size:
            problems.append(f"{obj.path}: size {info.size}, expected {obj.size}")
        elif info.etag is None or info.etag != digests[obj.path].s3_etag:
            to_hash.append(obj)
    problems += [f"{p}: not in the manifest" for p in sorted(set(listed) - set(digests))]

    def sha(obj: ManifestObject) -> str:
        with r.open_read(base + obj.path) as f:
            return hash_stream(f, chunksize=MULTIPART_CHUNKSIZE).sha256

    for obj, got in zip(to_hash, run_parallel(sha, to_hash), strict=True):
        if got != obj.sha256:
            problems.append(f"{obj.path}: sha256 differs")
    return problems


def _delete_embedding_data(r: ReleaseRoot, tag: str, embedding_id: str) -> int:
    arr_prefix, index_prefix, manifest_key = _keys(tag, embedding_id)
    n = r.delete_prefix(arr_prefix) + r.delete_prefix(index_prefix)
    r.delete_keys([manifest_key])
    return n + 1


def _check_can_write(r: ReleaseRoot) -> None:
    if isinstance(r, S3Root) and r.settings.anonymous:
        msg = (
            f"attaching embeddings to {r.uri} needs credentials, but requests are unsigned "
            "(--no-sign-request / CELLCENSUS_S3_NO_SIGN_REQUEST): drop that and set "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
        raise PermissionDeniedError(msg)


def add_embedding(
    root: str | Path | ReleaseRoot,
    tag: str,
    source: str | Path | EmbeddingInput,
    *,
    name: str,
    organism: str,
    data_type: str = "obs_embedding",
    measurement_name: str = "RNA",
    index: bool = False,
    partitions: int | None = None,
    metadata: EmbeddingMetadata | None = None,
    obsm_key: str | None = None,
    column: str | None = None,
    joinids: str | Path | None = None,
    dataset_id: str | None = None,
    settings: Settings | None = None,
    jobs: int = DEFAULT_JOBS,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
    today: dt.date | None = None,
) -> AttachResult:
    """Attach an embedding to a published release: validate, write, verify, then commit.

    Parameters
    ----------
    root
        Release root (directory, ``file://``, ``s3://bucket/prefix/``).
    tag
        The release (build tag or alias) the embedding was computed on.
    source
        The embedding file (``.npy``, ``.parquet``, ``.zarr``, ``.h5ad``; see
        :func:`cellcensus.embeddings.read_input`) or an already read :class:`EmbeddingInput`.
    name
        Embedding name (``scvi``, ``geneformer``, ...): unique per release, organism and type.
    organism
        ``homo_sapiens`` / ``"Homo sapiens"``, ...: the experiment the cells belong to.
    data_type
        ``obs_embedding`` (cells) or ``var_embedding`` (genes).
    measurement_name
        Measurement of the experiment (``RNA``).
    index
        Also build an IVFFlat vector index (for ``find_nearest_obs``).
    partitions
        Index partitions (default ``ceil(sqrt(n))``).
    metadata
        Title, description, contact, DOI, links.
    obsm_key, column, joinids, dataset_id
        How to read ``source`` (see :func:`cellcensus.embeddings.read_input`).
    settings
        Storage settings for S3 roots.
    jobs
        Parallel uploads.
    progress
        Progress reporting.
    workdir
        Local staging directory (default: a temporary directory, removed afterwards).
    today
        The submission date (tests).

    Returns
    -------
    AttachResult
        The committed entry, its URIs, sizes and timings.

    Raises
    ------
    BadInputError
        Bad input (shape, dtype, NaN, unknown or duplicate keys), a bad or taken name.
    NotFoundError
        Unknown release or organism.
    IntegrityError
        What landed does not match the manifest (nothing is committed).
    """
    t0 = time.monotonic()
    r = open_root(root, settings)
    _check_can_write(r)
    validate_name(name, what="name")
    if data_type not in DATA_TYPES:
        msg = f"data_type must be one of {DATA_TYPES}, got {data_type!r}"
        raise BadInputError(msg, field="data_type")
    build = _resolve_tag(r, tag)
    _check_name_free(r, name, experiment_name(organism), data_type, build)
    inp = (
        source
        if isinstance(source, EmbeddingInput)
        else read_input(
            source, obsm_key=obsm_key, column=column, joinids=joinids, dataset_id=dataset_id
        )
    )
    with open_census(r, build) as census:
        km = resolve_keys(
            census, organism, inp, data_type=data_type, measurement_name=measurement_name
        )
    logger.info("%d vectors of %d components match cells of %s", *km.matrix.shape, build)
    entry = _make_entry(
        r,
        build,
        km,
        name=name,
        exp_name=experiment_name(organism),
        data_type=data_type,
        measurement_name=measurement_name,
        index=index,
        metadata=metadata or EmbeddingMetadata(),
        today=today or dt.datetime.now(dt.UTC).date(),
    )
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cellcensus-emb-", dir=workdir))
    try:
        files, seconds_index = _stage(staging, entry, km, index=index, partitions=partitions)
        digests = _hash(files, jobs, progress)
        manifest = Manifest(
            tag=build,
            created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            objects=tuple(
                ManifestObject(path=rel, size=d.size, sha256=d.sha256) for rel, d in digests.items()
            ),
        )
        _claim_upload_commit(r, entry, files, digests, manifest, jobs=jobs, progress=progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    seconds = time.monotonic() - t0
    logger.info("attached %s (%d objects) in %.1f s", entry.id, len(files), seconds)
    return AttachResult(
        entry=entry,
        uri=entry.uri,
        index_uri=r.object_uri(_keys(build, entry.id)[1]) if index else None,
        total_objects=len(files),
        total_bytes=manifest.total_size,
        seconds=seconds,
        seconds_index=seconds_index,
    )


def _check_name_free(r: ReleaseRoot, name: str, exp_name: str, data_type: str, build: str) -> None:
    existing = read_contributions(r).find(
        embedding_name=name, experiment_name=exp_name, data_type=data_type, census_version=build
    )
    if existing:
        msg = (
            f"an {data_type} named {name!r} already exists for {exp_name} in release {build} "
            f"(id {existing[0].id}); choose another --name, or remove the old one first "
            "(`cellcensus embeddings remove`)"
        )
        raise BadInputError(msg, field="name")


def _make_entry(
    r: ReleaseRoot,
    build: str,
    km: KeyedMatrix,
    *,
    name: str,
    exp_name: str,
    data_type: str,
    measurement_name: str,
    index: bool,
    metadata: EmbeddingMetadata,
    today: dt.date,
) -> EmbeddingEntry:
    embedding_id = f"{exp_name}-{name}-{secrets.token_hex(4)}"
    arr_key, index_key, manifest_key = _keys(build, embedding_id)
    md = metadata
    return EmbeddingEntry(
        id=embedding_id,
        embedding_name=name,
        data_type=data_type,  # type: ignore[arg-type]
        census_version=build,
        experiment_name=exp_name,
        measurement_name=measurement_name,
        n_embeddings=int(km.matrix.shape[0]),
        n_features=int(km.matrix.shape[1]),
        submission_date=today.isoformat(),
        title=md.title or f"{name} ({exp_name}, {build})",
        description=md.description,
        contact_name=md.contact_name,
        contact_email=md.contact_email,
        contact_affiliation=md.contact_affiliation,
        DOI=md.DOI,
        additional_information=md.additional_information,
        model_link=md.model_link,
        indexes=(IndexInfo(type=INDEX_TYPE, relative_uri=r.relative_uri(index_key)),)
        if index
        else (),
        relative_uri=r.relative_uri(arr_key),
        uri=r.object_uri(arr_key),
        s3_region=r.settings.region if r.is_s3 else None,
        manifest=manifest_key,
    )


def _hash(
    files: list[tuple[str, Path]], jobs: int, progress: Progress | None
) -> dict[str, FileDigest]:
    with Stage(progress, "hashing", sum(p.stat().st_size for _, p in files)) as stage:

        def digest(item: tuple[str, Path]) -> FileDigest:
            d = hash_file(item[1], chunksize=MULTIPART_CHUNKSIZE)
            stage.advance(d.size)
            return d

        results = run_parallel(digest, files, jobs=jobs)
    return dict(zip([rel for rel, _ in files], results, strict=True))


def _claim_upload_commit(
    r: ReleaseRoot,
    entry: EmbeddingEntry,
    files: list[tuple[str, Path]],
    digests: dict[str, FileDigest],
    manifest: Manifest,
    *,
    jobs: int,
    progress: Progress | None,
) -> None:
    """Claim the manifest (create-only), upload, verify and commit; on any failure after the
    claim, delete what was written (best effort) and re-raise."""
    build = entry.census_version
    manifest_key = _keys(build, entry.id)[2]
    try:
        r.write_bytes(manifest_key, manifest.to_json(), if_none_match=True)
    except PreconditionFailedError:
        msg = f"{r.object_uri(manifest_key)} exists already (an id collision); retry"
        raise IntegrityError(msg) from None
    try:
        _upload_verify_commit(r, entry, files, digests, manifest, jobs=jobs, progress=progress)
    except BaseException:
        logger.warning("attaching %s failed; deleting what was uploaded", entry.id)
        try:
            _delete_embedding_data(r, build, entry.id)
        except Exception:  # best effort: the data is invisible without an entry
            logger.exception(
                "could not delete the partial upload of %s; remove it with "
                "`cellcensus embeddings remove %s %s/%s`",
                entry.id,
                r.uri,
                build,
                entry.id,
            )
        raise


def _upload_verify_commit(
    r: ReleaseRoot,
    entry: EmbeddingEntry,
    files: list[tuple[str, Path]],
    digests: dict[str, FileDigest],
    manifest: Manifest,
    *,
    jobs: int,
    progress: Progress | None,
) -> None:
    build, embedding_id = entry.census_version, entry.id
    base = f"{EMBEDDINGS_PREFIX}{build}/"
    with Stage(progress, "uploading", manifest.total_size) as stage:

        def upload(item: tuple[str, Path]) -> None:
            rel, path = item
            r.upload_file(path, base + rel, sha256=digests[rel].sha256, callback=stage.advance)

        run_parallel(upload, files, jobs=jobs)
    problems = _verify(r, build, embedding_id, manifest, digests)
    if problems:
        msg = (
            f"after upload, {len(problems)} objects of embedding {embedding_id} at {r.uri} do not "
            f"match its manifest ({'; '.join(problems[:5])}); {CONTRIBUTIONS_JSON} was not "
            "changed: re-run the command"
        )
        raise IntegrityError(msg)
    ensure_origin_mirror(r)
    _update(r, lambda d: d.with_entry(entry))


# ---------------------------------------------------------------------------- list / show / remove
def list_embeddings(
    root: str | Path | ReleaseRoot,
    *,
    tag: str | None = None,
    organism: str | None = None,
    settings: Settings | None = None,
) -> list[EmbeddingEntry]:
    """Embeddings of a root, optionally of one release (tag or alias) and organism.

    Returns
    -------
    list[EmbeddingEntry]
        Sorted by release, organism, name.
    """
    r = open_root(root, settings)
    build = read_directory(r).resolve(tag) if tag is not None else None
    exp = experiment_name(organism) if organism is not None else None
    found = read_contributions(r).find(census_version=build, experiment_name=exp)
    return sorted(found, key=lambda e: (e.census_version, e.experiment_name, e.embedding_name))


def _entry_by_ref(
    d: ContributionsDirectory, ref: str, tag: str | None, organism: str | None
) -> EmbeddingEntry:
    if ref in d.entries:
        return d.entries[ref]
    found = d.find(
        embedding_name=ref,
        census_version=tag,
        experiment_name=experiment_name(organism) if organism else None,
    )
    if len(found) == 1:
        return found[0]
    if not found:
        msg = f"no embedding with id or name {ref!r} in {CONTRIBUTIONS_JSON}"
        raise NotFoundError(msg)
    ids = ", ".join(e.id for e in found)
    msg = f"{len(found)} embeddings are named {ref!r} ({ids}): give the id, or --tag / --organism"
    raise BadInputError(msg, field="name")


def show_embedding(
    root: str | Path | ReleaseRoot,
    ref: str,
    *,
    tag: str | None = None,
    organism: str | None = None,
    settings: Settings | None = None,
) -> EmbeddingDetails:
    """One embedding (by id, or by name with ``tag`` / ``organism`` when ambiguous).

    Raises
    ------
    NotFoundError
        No such embedding.
    """
    r = open_root(root, settings)
    build = read_directory(r).resolve(tag) if tag is not None else None
    entry = _entry_by_ref(read_contributions(r), ref, build, organism)
    objects, size = 0, 0
    if entry.manifest:
        got = r.read_versioned(entry.manifest)
        if got is not None:
            m = Manifest.from_json(got[0], where=r.object_uri(entry.manifest))
            objects, size = len(m.objects), m.total_size
    return EmbeddingDetails(entry=entry, uri=entry.uri, objects=objects, total_bytes=size)


def find_orphans(root: str | Path | ReleaseRoot, settings: Settings | None = None) -> list[str]:
    """Ids of embeddings whose data is stored but that ``contributions.json`` does not list
    (left by an attach that failed and could not clean up)."""
    r = open_root(root, settings)
    listed = set(read_contributions(r).entries)
    found = set()
    for o in r.list_objects(EMBEDDINGS_PREFIX):
        rest = o.key[len(EMBEDDINGS_PREFIX) :].split("/")
        if len(rest) >= 2:
            name = rest[1]
            for suffix in (MANIFEST_SUFFIX, INDEX_SUFFIX):
                name = name.removesuffix(suffix)
            found.add((rest[0], name))
    return sorted(f"{t}/{i}" for t, i in found if i not in listed)


def remove_embedding(
    root: str | Path | ReleaseRoot,
    ref: str,
    *,
    tag: str | None = None,
    organism: str | None = None,
    settings: Settings | None = None,
) -> int:
    """Remove an embedding: drop it from ``contributions.json`` (compare-and-swap), then delete
    its data. ``ref`` may also be ``<tag>/<id>`` of an orphan (see :func:`find_orphans`).

    Returns
    -------
    int
        Objects deleted.

    Raises
    ------
    NotFoundError
        No such embedding.
    """
    r = open_root(root, settings)
    _check_can_write(r)
    if "/" in ref:
        orphan_tag, orphan_id = ref.split("/", 1)
        validate_tag(orphan_tag, allow_custom=True)
        validate_name(orphan_id, what="id")
        if orphan_id in read_contributions(r).entries:
            msg = f"{orphan_id!r} is listed in {CONTRIBUTIONS_JSON}; remove it by id"
            raise BadInputError(msg, field="id")
        if not r.exists(_keys(orphan_tag, orphan_id)[2]) and not any(
            True for _ in r.list_objects(_keys(orphan_tag, orphan_id)[0])
        ):
            msg = f"no embedding data for {ref!r} under {r.object_uri(EMBEDDINGS_PREFIX)}"
            raise NotFoundError(msg)
        return _delete_embedding_data(r, orphan_tag, orphan_id)
    build = read_directory(r).resolve(tag) if tag is not None else None
    entry = _entry_by_ref(read_contributions(r), ref, build, organism)
    _update(r, lambda d: d.without(entry.id))
    n = _delete_embedding_data(r, entry.census_version, entry.id)
    logger.info("removed %s (%d objects)", entry.id, n)
    return n
