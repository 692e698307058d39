"""Crash consistency: ``build``, ``publish``, ``sync``, ``cleanup`` and ``retract`` killed with
SIGKILL at seeded random points, then re-run.

Each command is run once uninterrupted while its *mutating events* are counted (file writes,
renames, deletions, HTTP requests: see ``_killpoint.py``); kill points are drawn at random over
that range (seeded, so a failure reproduces), plus, for ``build``, at random times (its TileDB
writes happen in native code). Each kill starts from the same initial state. After every kill
and every re-run:

- ``release.json`` parses, and every build it lists verifies against its manifest (it never
  names an incomplete or deleted build); its aliases resolve;
- a sync destination either says "incomplete" (and has no ``manifest.json``) or holds exactly
  the release; a build's output directory either does not exist or is complete;
- the re-run completes (exit 0), and the final state equals the uninterrupted run's (sha256 of
  every file; ``manifest.json``'s creation time aside); no temporary object remains.

The default run tries a few points per command; ``-m slow`` runs 20 or more per command.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from cellcensus.release import publish, read_directory, verify
from cellcensus.release._local import LocalRoot
from cellcensus.release.sync import SYNC_MARKER, read_sync_state
from tests._cli import cli_env

if TYPE_CHECKING:
    from collections.abc import Callable

KILLPOINT = Path(__file__).with_name("_killpoint.py")
QUICK_POINTS = 1
SLOW_POINTS = 20
TEMPORARY_MARKS = (".cellcensus-tmp-", ".cellcensus-part", ".cellcensus-cleanup", ".staging")


def _killable_env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment with ``TMPDIR`` under ``tmp_path``: a killed process cannot remove
    its temporary directories (a publish's staged report), so they go where pytest cleans up."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    return cli_env(TMPDIR=str(tmp))


def run_killable(args: list[str], env: dict[str, str], spec: str = "") -> int:
    """Run the CLI through the kill-point wrapper; returns the exit code (-9 when killed)."""
    e = dict(env)
    if spec:
        e["CELLCENSUS_TEST_KILLPOINT"] = spec
    proc = subprocess.run(
        [sys.executable, str(KILLPOINT), *args],
        env=e,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode not in (0, -9):
        msg = f"cellcensus {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
        raise AssertionError(msg)
    return proc.returncode


def state_digest(path: Path, work: Path | None = None) -> dict[str, str]:
    """sha256 of every file under ``path``; manifest.json and release.json without the dates
    of the day they were written (a run may cross midnight), the lock file aside, and the
    working directory ``work`` (in absolute URIs) made neutral."""
    out: dict[str, str] = {}
    if not path.exists():
        return out
    for dirpath, _dirs, names in os.walk(path):
        for n in names:
            p = Path(dirpath) / n
            rel = p.relative_to(path).as_posix()
            if n == ".cellcensus.lock":
                continue
            data = p.read_bytes()
            if work is not None:
                data = data.replace(str(work).encode(), b"<work>")
            if n == "manifest.json":
                doc = json.loads(data)
                doc.pop("created_at", None)
                data = json.dumps(doc, sort_keys=True).encode()
            elif n == "release.json" and rel == n:  # dates of the day a run happened
                doc = json.loads(data)
                for entry in doc.values():
                    if isinstance(entry, dict):
                        entry.pop("release_date", None)
                        (entry.get("retraction") or {}).pop("date", None)
                data = json.dumps(doc, sort_keys=True).encode()
            out[rel] = hashlib.sha256(data).hexdigest()
    return out


def temporaries(path: Path) -> list[str]:
    """Temporary objects left anywhere under ``path``."""
    if not path.exists():
        return []
    return sorted(
        str(p.relative_to(path))
        for p in path.rglob("*")
        if any(m in p.name for m in TEMPORARY_MARKS)
    )


def check_release_root(root: Path) -> None:
    """release.json parses, every listed build verifies, every alias resolves."""
    if not (root / "release.json").exists():
        return
    d = read_directory(root)
    for tag in d.builds:
        report = verify(root, tag)
        assert report.ok, f"release.json lists {tag}, which does not verify: {report.summary()}"
    for alias in d.aliases:
        d.resolve(alias)


@dataclass
class Scenario:
    """One command under test: how to set up its initial state, run it, and check it."""

    name: str
    setup: Callable[[Path], None]
    argv: Callable[[Path], list[str]]
    after_kill: Callable[[Path], None]
    rerun_argv: Callable[[Path], list[str] | None] = lambda _w: None
    observed: Callable[[Path], Path] = lambda w: w
    times: list[float] = field(default_factory=list)


def exercise(scenario: Scenario, tmp_path: Path, n_points: int, seed: int) -> list[str]:
    """Run the scenario's kill points; returns a description of each (for the report)."""
    env = _killable_env(tmp_path)
    base = tmp_path / "baseline"
    scenario.setup(base)
    counter = tmp_path / "count.txt"
    assert run_killable(scenario.argv(base), env, f"count:{counter}") == 0
    total = int(counter.read_text())
    expected = state_digest(scenario.observed(base), base)
    assert total > 0
    rng = random.Random(seed)
    points = [f"event:{rng.randint(1, total)}" for _ in range(n_points)]
    points += [f"time:{t:.2f}" for t in scenario.times]
    tried = []
    for i, spec in enumerate(points):
        work = tmp_path / f"kill{i}"
        scenario.setup(work)
        rc = run_killable(scenario.argv(work), env, spec)
        scenario.after_kill(work)
        if rc == -9:
            rerun = scenario.rerun_argv(work) or scenario.argv(work)
            assert run_killable(rerun, env) == 0, f"re-run after {spec} failed"
            scenario.after_kill(work)
        got = state_digest(scenario.observed(work), work)
        assert got == expected, f"after a kill at {spec} and a re-run the state differs"
        assert temporaries(scenario.observed(work)) == [], spec
        tried.append(f"{scenario.name} {spec}/{total}: {'killed' if rc == -9 else 'finished'}")
        shutil.rmtree(work, ignore_errors=True)
    return tried


# ---------------------------------------------------------------------------- scenarios
def _publish_scenario(census_build: Path, other_build: Path) -> Scenario:
    def setup(w: Path) -> None:
        publish(census_build, w / "root", tag="2026-11-01", lts=True)

    return Scenario(
        name="publish",
        setup=setup,
        argv=lambda w: ["publish", str(other_build), str(w / "root"), "--tag", "2026-11-08",
                        "--jobs", "3"],
        after_kill=lambda w: check_release_root(w / "root"),
        observed=lambda w: w / "root",
    )  # fmt: skip


def _sync_scenario(census_build: Path, other_build: Path, cache: Path) -> Scenario:
    src = cache / "sync-src"
    if not src.exists():
        publish(census_build, src, tag="2026-11-01")
        publish(other_build, src, tag="2026-11-08")

    def setup(w: Path) -> None:
        from cellcensus.release import sync

        w.mkdir(parents=True)
        sync(src, "2026-11-01", w / "dest")  # the destination holds another build

    def after_kill(w: Path) -> None:
        dest = w / "dest"
        state = read_sync_state(dest)
        assert state is not None
        if not state.complete:
            assert not (dest / "manifest.json").exists()
        else:
            want = {o.path for o in verify(src, state.tag).problems} or None
            assert want is None
            got = set(state_digest(dest)) - {SYNC_MARKER, "manifest.json"}
            from cellcensus.release import read_manifest

            assert got == {o.path for o in read_manifest(LocalRoot(src), state.tag).objects}

    return Scenario(
        name="sync",
        setup=setup,
        argv=lambda w: ["sync", str(src), "2026-11-08", str(w / "dest"), "--jobs", "3"],
        after_kill=after_kill,
        observed=lambda w: w / "dest",
    )


def _directory_scenario(census_build: Path, cache: Path, name: str, argv: list[str]) -> Scenario:
    src = cache / "three-builds"
    if not src.exists():
        for tag in ("2026-01-01", "2026-01-08", "2026-01-15", "2026-11-29"):
            publish(census_build, src, tag=tag)

    def setup(w: Path) -> None:
        w.mkdir(parents=True)
        shutil.copytree(src, w / "root")

    return Scenario(
        name=name,
        setup=setup,
        argv=lambda w: [*argv, "--root", str(w / "root")],
        after_kill=lambda w: check_release_root(w / "root"),
        observed=lambda w: w / "root",
    )


def _build_scenario(manifest: Path) -> Scenario:
    def after_kill(w: Path) -> None:
        out = w / "out"
        if out.exists():  # nothing appears at OUT_DIR until the build is complete
            assert (out / "build.json").is_file()
            assert (out / "soma" / "__tiledb_group.tdb").is_file()

    def rerun(w: Path) -> list[str] | None:
        if (w / "out").exists():
            return ["validate", str(w / "out")]
        return [*argv(w), "--resume"]

    def argv(w: Path) -> list[str]:
        return ["build", str(manifest), str(w / "out"), "--tag", "2026-11-01",
                "--chunk-nnz", "20000", "--no-validate"]  # fmt: skip

    return Scenario(
        name="build",
        setup=lambda w: w.mkdir(parents=True),
        argv=argv,
        after_kill=after_kill,
        rerun_argv=rerun,
        observed=lambda w: w,
        times=[],
    )


def build_content(out: Path) -> dict[str, object]:
    """What a build holds, independent of fragment names and timestamps."""
    import tiledbsoma

    doc = json.loads((out / "build.json").read_text())
    doc.pop("created_on", None)
    doc.get("settings", {}).pop("resume", None)  # how it was run, not what it built
    doc.get("summary", {}).pop("timing", None)  # how long it took
    content: dict[str, object] = {"build.json": doc}
    for p in sorted((out / "h5ads").iterdir()):
        content[f"h5ads/{p.name}"] = hashlib.sha256(p.read_bytes()).hexdigest()

    def frame(df: tiledbsoma.DataFrame) -> str:
        # values in soma_joinid order; dictionary columns as their values (the order of an
        # enumeration and of a read are not part of the content)
        table = df.read().concat()
        pdf = table.to_pandas().sort_values("soma_joinid").reset_index(drop=True)
        for col in pdf.columns:
            if str(pdf[col].dtype) == "category":
                pdf[col] = pdf[col].astype(str)
        return hashlib.sha256(pdf.to_csv().encode()).hexdigest()

    with tiledbsoma.Collection[Any].open(str(out / "soma")) as census:
        for name, exp in census["census_data"].items():
            content[f"{name}/obs"] = frame(exp.obs)
            ms = exp.ms["RNA"]
            content[f"{name}/var"] = frame(ms.var)
            if "X" in ms:
                for layer in ms.X:
                    t = (
                        ms.X[layer]
                        .read()
                        .tables()
                        .concat()
                        .sort_by([("soma_dim_0", "ascending"), ("soma_dim_1", "ascending")])
                    )
                    content[f"{name}/X/{layer}"] = hashlib.sha256(
                        b"".join(c.to_numpy().tobytes() for c in t.columns)
                    ).hexdigest()
    return content


# ---------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash-cache")


SCENARIOS = ("publish", "sync", "cleanup", "retract")


def _scenario(name: str, census_build: Path, other_build: Path, cache: Path) -> Scenario:
    if name == "publish":
        return _publish_scenario(census_build, other_build)
    if name == "sync":
        return _sync_scenario(census_build, other_build, cache)
    if name == "cleanup":
        return _directory_scenario(census_build, cache, "cleanup", ["cleanup", "--days", "32"])
    return _directory_scenario(
        census_build,
        cache,
        "retract",
        ["retract", "2026-11-29", "--reason", "wrong genes", "--replaced-by", "2026-01-15"],
    )


@pytest.mark.parametrize(
    "name",
    # publish: 43 s CPU measured (2026-12-02); sync, cleanup, retract: 9 s each
    [pytest.param(n, marks=pytest.mark.slow) if n == "publish" else n for n in SCENARIOS],
)
def test_killed_commands_recover(
    name: str, census_build: Path, other_build: Path, cache: Path, tmp_path: Path
) -> None:
    tried = exercise(_scenario(name, census_build, other_build, cache), tmp_path, QUICK_POINTS, 1)
    assert len(tried) == QUICK_POINTS


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 20 kills and re-runs of a CLI subprocess: over 900 s on a busy machine
@pytest.mark.parametrize("name", SCENARIOS)
def test_killed_commands_recover_at_many_points(
    name: str, census_build: Path, other_build: Path, cache: Path, tmp_path: Path
) -> None:
    tried = exercise(_scenario(name, census_build, other_build, cache), tmp_path, SLOW_POINTS, 20)
    print("\n".join(tried))  # noqa: T201 - the kill points tried, for the report
    assert len(tried) == SLOW_POINTS


#: Named kill points of a build's last steps (``match:N:TEXT``, see ``_killpoint.py``): after
#: consolidation but before its marker (a resume then found the band fragments' commits
#: consolidated and deleted the fragments as uncommitted), after the work directory was set
#: aside, and in the middle of deleting it (deleted in place, a resume found some markers gone
#: and others not: a structure created again, empty, beside bands marked done).
FINISHING_POINTS = (
    "match:2:.consolidated.json.tmp",
    "match:1:_work.deleted",
    "match:3:structure.json",
)


def _kill_and_resume(manifest: Path, tmp_path: Path, points: list[str]) -> list[str]:
    """Build once uninterrupted, then once per kill point (resumed after the kill); every
    output equals the uninterrupted one and no staging is left. Returns what was tried."""
    import time

    scenario = _build_scenario(manifest)
    env = _killable_env(tmp_path)
    base = tmp_path / "baseline"
    base.mkdir()
    counter = tmp_path / "count.txt"
    t0 = time.monotonic()
    assert run_killable(scenario.argv(base), env, f"count:{counter}") == 0
    seconds = time.monotonic() - t0
    total = int(counter.read_text())
    expected = build_content(base / "out")
    rng = random.Random(20)
    points = [
        p.replace("event:?", f"event:{rng.randint(1, total)}").replace(
            "time:?", f"time:{rng.uniform(2.0, seconds):.1f}"
        )
        for p in points
    ]
    tried = []
    for i, spec in enumerate(points):
        work = tmp_path / f"kill{i}"
        work.mkdir()
        rc = run_killable(scenario.argv(work), env, spec)
        scenario.after_kill(work)
        if rc == -9:
            rerun = scenario.rerun_argv(work)
            assert rerun is not None
            assert run_killable(rerun, env) == 0, f"resume after {spec} failed"
        assert build_content(work / "out") == expected, spec
        assert temporaries(work) == [], spec
        tried.append(f"build {spec}/{total} events, {seconds:.0f} s: {'killed' if rc else 'done'}")
        shutil.rmtree(work, ignore_errors=True)
    return tried


@pytest.mark.slow
def test_builds_killed_while_finishing_resume_to_the_same_census(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    """``build`` killed in its last steps (consolidated, work directory deleted), then
    ``--resume``d: the output equals an uninterrupted build."""
    tried = _kill_and_resume(tiny_corpus, tmp_path, list(FINISHING_POINTS))
    assert all(t.endswith("killed") for t in tried), tried


@pytest.mark.slow
@pytest.mark.timeout(3600)  # 25 builds and resumes
def test_killed_builds_resume_to_the_same_census(tiny_corpus: Path, tmp_path: Path) -> None:
    """``build`` killed at 20 file-system events and 4 random times, then ``--resume``d: the
    output equals an uninterrupted build (tables, X, h5ads, build.json), no staging is left."""
    tried = _kill_and_resume(tiny_corpus, tmp_path, ["event:?"] * SLOW_POINTS + ["time:?"] * 4)
    print("\n".join(tried))  # noqa: T201 - the kill points tried, for the report
