"""The documentation site builds with no warning, and a built page renders in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` (warnings are errors) into a temporary dir."""
    out = tmp_path_factory.mktemp("site")
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        # mkdocs-material prints an end-of-life banner on every build unless this is set
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-5000:]
    assert "WARNING" not in res.stderr, res.stderr[-5000:]
    return out


@pytest.mark.slow
def test_site_builds_strict_with_every_page(site: Path) -> None:
    for page in (
        "index.html",
        "getting-started.html",
        "schema.html",
        "formats.html",
        "official-builder.html",
        "benchmarks.html",
        "api/compare.html",
        "api/client.html",
    ):
        assert (site / page).is_file(), page
    api = (site / "api" / "compare.html").read_text()
    assert "compare_builds" in api
    assert "max_differences" in api  # a parameter from the numpy docstring
    bench = (site / "benchmarks.html").read_text()
    assert "bench_build.py" in bench  # benchmarks/RESULTS.md was included
    # ... to its end (a fixed line range once cut off the sections appended last)
    results = (REPO / "benchmarks" / "RESULTS.md").read_text().splitlines()
    last_heading = next(line for line in reversed(results) if line.startswith("#"))
    assert last_heading.lstrip("# ").split(" (")[0] in bench


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: .ci/run installs it with scripts/install-chromium.sh")
        pytest.skip("chromium is not installed (bash scripts/install-chromium.sh)")
    return exe


@pytest.mark.slow
def test_built_page_renders_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    exe = _chromium()
    page = (site / "getting-started.html").as_uri()
    flags = [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [exe, *flags, "--dump-dom", page],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert dom.returncode == 0, dom.stderr[-3000:]
    headings = re.findall(r"<h([12])[^>]*>(.*?)</h\1>", dom.stdout, flags=re.S)
    texts = [re.sub(r"<[^>]+>", "", t).strip() for _, t in headings]
    assert any(t.startswith("Getting started") for t in texts), texts
    assert any(t.startswith("Your own data") for t in texts), texts
    shot = tmp_path / "page.png"
    res = subprocess.run(
        [exe, *flags, "--window-size=1200,900", f"--screenshot={shot}", page],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    with Image.open(shot) as img:
        gray = img.convert("L")
        assert gray.size == (1200, 900)
        stat = ImageStat.Stat(gray)
        assert stat.stddev[0] > 10, "the screenshot is blank"
        # text and the header bar: many distinct shades, not one flat colour
        assert len(gray.getcolors(maxcolors=256 * 256) or []) > 20
