"""Manifests and the dataset blocklist: rows with more fields than the header crashed, line
numbers were wrong after blank lines, errors could repeat unbounded input; the official
builder's ``--blocklist FILE`` was missing. Property-based: any manifest text ends in entries or
one ``BadInputError``, never another exception."""

from __future__ import annotations

import json
import string
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cellcensus.builder import BuildOptions, build_census
from cellcensus.builder.manifest import (
    apply_blocklist,
    load_blocklist,
    load_manifest,
    validate_dataset_id,
)
from cellcensus.errors import BadInputError
from tests._cli import cli_env, run_cli

if TYPE_CHECKING:
    from pathlib import Path

HEADER = "dataset_id,dataset_asset_h5ad_uri,dataset_title\n"


def _write(tmp_path: Path, text: str | bytes, name: str = "manifest.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (HEADER + "ds1,/a.h5ad,title,EXTRA\n", "line 2 has 4 fields but the header has 3"),
        (HEADER + "\n\nds1,/a.h5ad,t,x\n", "line 4 has 4 fields"),  # blank lines counted
        (HEADER + 'ds1,/a.h5ad,"multi\nline"\nds2,/b.h5ad,t,x\n', "line 4 has 4 fields"),
        (HEADER + "ds1,/a.h5ad\x00,t\n", "NUL byte"),
        ("dataset_id,dataset_id,h5ad_uri\nx,y,z\n", "more than once"),
        (",".join(f"col{i}" for i in range(5000)) + "\n", "and 4995 more"),
        (HEADER + "../etc,/a.h5ad,t\n", "line 2: dataset_id must be"),
        (HEADER + "ds1,/a.h5ad,t\nds1,/b.h5ad,t\n", "duplicate dataset_id"),
        (
            "dataset_id,dataset_asset_h5ad_uri,asset_h5ad_filesize\nds1,/a.h5ad,-7\n",
            "not a non-negative integer",
        ),
        (HEADER, "lists no datasets"),
        ("", "no 'dataset_id' column"),
    ],
)
def test_bad_manifests_are_one_clear_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(BadInputError, match=match) as e:
        load_manifest(_write(tmp_path, text))
    assert len(str(e.value)) < 1000


def test_bad_bytes_and_long_ids_stay_short(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not UTF-8"):
        load_manifest(_write(tmp_path, b"dataset_id,h5ad_uri\n\xff\xfe,x\n"))
    long_id = "a" * 100_000
    with pytest.raises(BadInputError, match="dataset_id must be") as e:
        load_manifest(_write(tmp_path, HEADER + f"{long_id}!,/a.h5ad,t\n"))
    assert len(str(e.value)) < 1000


def test_cli_manifest_errors_are_one_line(tmp_path: Path) -> None:
    m = _write(tmp_path, HEADER + "ds1,/a.h5ad,title,EXTRA,MORE\n")
    proc = run_cli("build", str(m), str(tmp_path / "out"), env=cli_env())
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error:")
    assert "has 5 fields but the header has 3" in proc.stderr


_cell = st.text(
    alphabet=st.sampled_from(list(string.ascii_letters + string.digits + ' ,"\n\r\t.-_/:#;é\x00')),
    max_size=12,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    header=st.lists(
        st.sampled_from(["dataset_id", "dataset_asset_h5ad_uri", "h5ad_uri", "dataset_title",
                         "asset_h5ad_filesize", "citation", "", "x", "dataset_id "]),
        max_size=6,
    ),
    rows=st.lists(st.lists(_cell, max_size=7), max_size=6),
    bom=st.booleans(),
)  # fmt: skip
def test_any_manifest_text_loads_or_is_a_bad_input_error(
    tmp_path: Path, header: list[str], rows: list[list[str]], bom: bool
) -> None:
    lines = [",".join(header)] + [",".join(r) for r in rows]
    text = ("\ufeff" if bom else "") + "\n".join(lines) + "\n"
    try:
        entries = load_manifest(_write(tmp_path, text))
    except BadInputError as e:
        assert len(str(e)) < 2000  # noqa: PT017 - an error is one allowed outcome
        return
    ids = [e.dataset_id for e in entries]
    assert len(ids) == len(set(ids))
    for i in ids:
        assert validate_dataset_id(i) == i


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=250))
def test_dataset_id_rule(value: str) -> None:
    ok = (
        0 < len(value) <= 200
        and value[0].isascii()
        and value[0].isalnum()
        and all(c.isascii() and (c.isalnum() or c in "._-") for c in value)
        and ".." not in value
    )
    if ok:
        assert validate_dataset_id(value) == value
    else:
        with pytest.raises(BadInputError):
            validate_dataset_id(value)


def test_blocklist_file_format(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        "# datasets retracted upstream\n\nds-1\n  ds-2  \nds-3 # duplicate of ds-4\n\t# indented\n",
        "blocklist.txt",
    )
    assert load_blocklist(p) == frozenset({"ds-1", "ds-2", "ds-3"})
    with pytest.raises(BadInputError, match="line 2"):
        load_blocklist(_write(tmp_path, "ok\n../../etc/passwd\n", "bad.txt"))
    with pytest.raises(BadInputError, match="cannot read"):
        load_blocklist(tmp_path / "missing.txt")
    with pytest.raises(BadInputError, match="is a directory"):
        load_blocklist(tmp_path)


def test_apply_blocklist_keeps_order_and_reports_unknown_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    m = _write(tmp_path, HEADER + "a,/a.h5ad,t\nb,/b.h5ad,t\nc,/c.h5ad,t\n")
    kept, blocked = apply_blocklist(load_manifest(m), frozenset({"b", "typo"}))
    assert [e.dataset_id for e in kept] == ["a", "c"]
    assert [e.dataset_id for e in blocked] == ["b"]
    assert "typo" in caplog.text


@pytest.mark.slow  # 20 s CPU measured (2026-12-02)
def test_a_blocklisted_dataset_is_left_out_and_recorded(tiny_corpus: Path, tmp_path: Path) -> None:
    dataset_id = load_manifest(tiny_corpus)[0].dataset_id
    with pytest.raises(BadInputError, match="every dataset"):
        build_census(
            tiny_corpus, tmp_path / "none", options=BuildOptions(blocklist=frozenset({dataset_id}))
        )
    # the blocked dataset next to a kept one: a manifest listing the corpus file twice
    src = load_manifest(tiny_corpus)[0]
    m = _write(
        tmp_path,
        f"dataset_id,dataset_asset_h5ad_uri\nkept,{src.uri}\nblocked-one,{src.uri}\n",
    )
    bl = _write(tmp_path, "# not this one\nblocked-one\n", "blocklist.txt")
    out = tmp_path / "out"
    proc = run_cli(
        "build", str(m), str(out), "--tag", "2026-11-01", "--blocklist", str(bl),
        "--no-validate", env=cli_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "build.json").read_text())
    status = {i["dataset_id"]: i["status"] for i in doc["inputs"]}
    assert status == {"kept": "included", "blocked-one": "blocked"}
    assert doc["settings"]["blocklist"] == ["blocked-one"]
    assert not (out / "h5ads" / "blocked-one.h5ad").exists()
