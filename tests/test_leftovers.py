"""Removing what an interrupted SOMA write left (cellcensus._leftovers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
import tiledbsoma as soma

from cellcensus._leftovers import drop_members, remove_object_dir

if TYPE_CHECKING:
    from pathlib import Path

SCHEMA = pa.schema([("x", pa.int64())])


def _frame(uri: str) -> None:
    soma.DataFrame.create(uri, schema=SCHEMA, domain=[(0, 9)]).close()


def _collection(tmp_path: Path) -> str:
    uri = str(tmp_path / "coll")
    soma.Collection.create(uri).close()
    return uri


def test_drop_members_removes_members_and_their_directories(tmp_path: Path) -> None:
    uri = _collection(tmp_path)
    coll: soma.Collection[Any]
    with soma.Collection.open(uri, "w") as coll:
        coll.add_new_dataframe("a", schema=SCHEMA, domain=[(0, 9)]).close()
        coll.add_new_dataframe("b", schema=SCHEMA, domain=[(0, 9)]).close()
    assert drop_members(uri, ("a", "missing"), None)
    with soma.Collection.open(uri) as coll:
        assert sorted(coll.keys()) == ["b"]
    assert not (tmp_path / "coll" / "a").exists()
    assert (tmp_path / "coll" / "b").exists()


def test_drop_members_removes_an_object_that_never_became_a_member(tmp_path: Path) -> None:
    uri = _collection(tmp_path)
    _frame(f"{uri}/orphan")  # created, then killed before Collection.set
    assert drop_members(f"file://{uri}/", ("orphan",), None)
    assert not (tmp_path / "coll" / "orphan").exists()
    assert not drop_members(uri, ("orphan",), None)  # nothing left: says so


def test_drop_members_refuses_a_parent_that_is_not_a_collection(tmp_path: Path) -> None:
    uri = str(tmp_path / "frame")
    _frame(uri)
    with pytest.raises(ValueError, match="not a collection"):
        drop_members(uri, ("x",), None)


def test_remove_object_dir_touches_only_local_paths(tmp_path: Path) -> None:
    target = tmp_path / "obj"
    target.mkdir()
    (target / "f").write_text("x")
    assert not remove_object_dir("s3://bucket/obj")
    assert remove_object_dir(target.as_uri())
    assert not target.exists()
    assert not remove_object_dir(str(target))
