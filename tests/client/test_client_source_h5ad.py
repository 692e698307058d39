"""Source H5ADs: resolved in the same root, downloads resumable and verified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import cellcensus
from cellcensus import client
from cellcensus._storage import downloads as storage_download
from cellcensus.errors import BadInputError, IntegrityError, NotFoundError

from .conftest import LTS_TAG, WEEKLY_TAG


@pytest.fixture(scope="module")
def dataset_ids(release_root: Path) -> list[str]:
    """Dataset ids the census lists (from census_info/datasets)."""
    with cellcensus.open_soma(release_root=release_root) as c:
        df = c["census_info"]["datasets"].read(column_names=["dataset_id"]).concat().to_pandas()
    return sorted(df.dataset_id)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_uri_is_in_the_same_root(release_root: Path, dataset_ids: list[str]) -> None:
    did = dataset_ids[0]
    for version, tag in (("stable", LTS_TAG), ("latest", WEEKLY_TAG)):
        loc = cellcensus.get_source_h5ad_uri(did, census_version=version, release_root=release_root)
        assert loc["uri"] == (release_root / tag / "h5ads" / f"{did}.h5ad").as_uri()
        assert loc["relative_uri"] == f"{release_root.name}/{tag}/h5ads/{did}.h5ad"
        assert Path(loc["uri"].removeprefix("file://")).is_file()


def test_unknown_dataset_is_a_key_error(release_root: Path) -> None:
    with pytest.raises(client.DatasetNotFoundError, match="Unknown dataset_id 'nope'") as e:
        cellcensus.get_source_h5ad_uri("nope", release_root=release_root)
    assert isinstance(e.value, KeyError)  # as the official client raises
    # the demo's 7 single-cell datasets and its Visium and Slide-seqV2 datasets
    assert "lists 9 datasets" in str(e.value)
    with pytest.raises(BadInputError, match="is not a dataset id"):
        cellcensus.get_source_h5ad_uri("x' or dataset_id != '", release_root=release_root)


def test_download_verified(
    release_root: Path, dataset_ids: list[str], census_build: Path, tmp_path: Path
) -> None:
    did = dataset_ids[1]
    dest = tmp_path / "d.h5ad"
    cellcensus.download_source_h5ad(did, str(dest), release_root=release_root, progress_bar=False)
    assert dest.read_bytes() == (census_build / "h5ads" / f"{did}.h5ad").read_bytes()
    assert not (tmp_path / "d.h5ad.part").exists()
    with pytest.raises(BadInputError, match="Path exists") as e:
        cellcensus.download_source_h5ad(did, str(dest), release_root=release_root)
    assert isinstance(e.value, ValueError)
    with pytest.raises(BadInputError, match="not a directory name"):
        cellcensus.download_source_h5ad(did, str(tmp_path) + "/sub/", release_root=release_root)


def test_download_resumes_from_part(
    release_root: Path,
    dataset_ids: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    did = dataset_ids[2]
    source = release_root / LTS_TAG / "h5ads" / f"{did}.h5ad"
    data = source.read_bytes()
    dest = tmp_path / "r.h5ad"
    Path(str(dest) + ".part").write_bytes(data[: len(data) // 3])
    starts: list[int] = []
    real = storage_download.iter_bytes

    def spy(uri: str, *, start: int = 0, **kw):
        starts.append(start)
        return real(uri, start=start, **kw)

    monkeypatch.setattr(storage_download, "iter_bytes", spy)
    cellcensus.download_source_h5ad(did, str(dest), release_root=release_root, progress_bar=False)
    assert starts == [len(data) // 3]  # only the rest was read
    assert dest.read_bytes() == data

    # resume=False starts over
    dest.unlink()
    Path(str(dest) + ".part").write_bytes(b"garbage")
    starts.clear()
    cellcensus.download_source_h5ad(
        did, str(dest), release_root=release_root, progress_bar=False, resume=False
    )
    assert starts == [0]
    assert dest.read_bytes() == data


def test_corrupt_partial_download_is_detected(
    release_root: Path, dataset_ids: list[str], tmp_path: Path
) -> None:
    did = dataset_ids[3]
    size = (release_root / LTS_TAG / "h5ads" / f"{did}.h5ad").stat().st_size
    dest = tmp_path / "c.h5ad"
    part = Path(str(dest) + ".part")
    part.write_bytes(b"\0" * (size // 2))  # wrong bytes: the resumed file cannot match
    with pytest.raises(IntegrityError, match="does not match the manifest"):
        cellcensus.download_source_h5ad(
            did, str(dest), release_root=release_root, progress_bar=False
        )
    assert not part.exists()
    assert not dest.exists()
    # and the next attempt starts clean and succeeds
    cellcensus.download_source_h5ad(did, str(dest), release_root=release_root, progress_bar=False)
    manifest = json.loads((release_root / LTS_TAG / "manifest.json").read_text())
    entry = next(o for o in manifest["objects"] if o["path"] == f"h5ads/{did}.h5ad")
    assert _sha(dest) == entry["sha256"]


def test_manifest_mismatch_in_the_release(
    root_copy: Path, dataset_ids: list[str], tmp_path: Path
) -> None:
    """A damaged object in the release itself is refused, not handed over."""
    did = dataset_ids[0]
    obj = root_copy / LTS_TAG / "h5ads" / f"{did}.h5ad"
    raw = bytearray(obj.read_bytes())
    raw[-1] ^= 0xFF
    obj.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="sha256"):
        cellcensus.download_source_h5ad(
            did, str(tmp_path / "x.h5ad"), release_root=root_copy, progress_bar=False
        )
    # verify=False is the explicit way to take it anyway
    cellcensus.download_source_h5ad(
        did, str(tmp_path / "x.h5ad"), release_root=root_copy, progress_bar=False, verify=False
    )
    assert (tmp_path / "x.h5ad").read_bytes() == bytes(raw)


def test_download_over_http_root(
    release_root: Path, dataset_ids: list[str], http_root, tmp_path: Path
) -> None:
    """The directory over HTTP, data from its (file) mirror."""
    did = dataset_ids[4]
    dest = tmp_path / "h.h5ad"
    cellcensus.download_source_h5ad(did, str(dest), release_root=http_root.url, progress_bar=False)
    assert dest.read_bytes() == (release_root / LTS_TAG / "h5ads" / f"{did}.h5ad").read_bytes()


def test_http_ranged_reads(release_root: Path, dataset_ids: list[str], http_root) -> None:
    """Resuming over HTTP uses a Range request; a server that ignores ranges is an error, not a
    silently corrupted file."""
    from cellcensus._storage import iter_bytes, size_of
    from cellcensus.errors import CellCensusError

    did = dataset_ids[5]
    url = f"{http_root.url}{LTS_TAG}/h5ads/{did}.h5ad"
    data = (release_root / LTS_TAG / "h5ads" / f"{did}.h5ad").read_bytes()
    assert size_of(url) == len(data)
    assert b"".join(iter_bytes(url)) == data
    assert b"".join(iter_bytes(url, start=1234)) == data[1234:]
    http_root.handler.ranges = False
    with pytest.raises(CellCensusError, match="ignored the byte range"):
        b"".join(iter_bytes(url, start=1234))
    with pytest.raises(NotFoundError):
        b"".join(iter_bytes(f"{http_root.url}nope.h5ad"))
