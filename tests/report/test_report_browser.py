"""The HTML report renders in a real headless browser (Debian's chromium): expected headings,
inline SVG charts with bars, a non-blank screenshot, no network needed.

chromium is installed by ``.ci/run`` (``scripts/install-chromium.sh``); outside CI the test is
skipped when it is missing, under ``CI=true`` it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from typing import TYPE_CHECKING

import numpy as np
import pytest

from .conftest import TAG, TAG_A, TAG_B, DiffCase

if TYPE_CHECKING:
    from pathlib import Path

WINDOW = (1200, 2000)
BAR_RGB = (0x34, 0x67, 0xB0)  # the bar colour of the category charts
HIST_RGB = (0x2F, 0x8F, 0x83)  # the bar colour of the histograms


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of the chromium executable (skip without it, fail under CI=true)."""
    exe = next(
        (p for n in ("chromium", "chromium-browser") if (p := shutil.which(n)) is not None), None
    )
    if exe is None:
        if os.environ.get("CI") == "true":
            pytest.fail(
                "chromium is not installed but CI=true: .ci/run installs it with "
                "scripts/install-chromium.sh (apt-get install chromium)",
                pytrace=False,
            )
        pytest.skip(
            "chromium is not installed (run scripts/install-chromium.sh as root, or "
            "apt-get install chromium); under CI=true this test fails instead"
        )
    return exe


def _chromium(exe: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


class _Outline(HTMLParser):
    """Headings, and SVG / rect / img counts of a DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.counts: dict[str, int] = {}
        self._in: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.counts[tag] = self.counts.get(tag, 0) + 1
        if tag in ("h1", "h2", "h3"):
            self._in, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in:
            self.headings.append((tag, " ".join("".join(self._text).split())))
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text.append(data)


def _screenshot(exe: str, tmp_path: Path, url: str, name: str) -> np.ndarray:
    from PIL import Image

    shot = tmp_path / name
    _chromium(
        exe,
        tmp_path / f"profile-{name}",
        f"--screenshot={shot}",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        url,
    )
    with Image.open(shot) as img:
        assert img.size == WINDOW
        return np.asarray(img.convert("RGB"))


@pytest.mark.slow  # two chromium runs: ~25-45 s on 2 busy cores
def test_report_renders_in_headless_chromium(
    diff_case: DiffCase, chromium: str, tmp_path: Path
) -> None:
    page = diff_case.root / TAG_B / "report.html"
    html = page.read_text()
    # self-contained: no scripts, no external resources (the SVG namespace is not a fetch)
    assert "<script" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html)
    assert "@import" not in html
    assert "url(" not in html

    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri()).stdout
    outline = _Outline()
    outline.feed(dom)
    h1 = [t for tag, t in outline.headings if tag == "h1"]
    h2 = [t for tag, t in outline.headings if tag == "h2"]
    h3 = [t for tag, t in outline.headings if tag == "h3"]
    assert h1 == [f"Release {TAG_B}"]
    assert h2[:2] == ["Summary", f"Changes since {TAG_A}"]
    assert "Homo sapiens" in h2
    assert "Datasets (3)" in h2
    for title in (
        "Cells by tissue (general)",
        "Cells by assay",
        "Cells by disease",
        "Cells by cell type",
        "Genes detected per cell",
        "Counts per cell",
        "Datasets added (1)",
        "Datasets removed (1)",
        "Datasets changed (1)",
    ):
        assert title in h3, title
    # 4 category charts and 2 histograms for the one organism, each an SVG with bars
    assert outline.counts.get("svg", 0) == 6
    assert outline.counts.get("rect", 0) > 20

    # a screenshot of the first build's page (no diff: its charts are within the first 2000 px)
    first = diff_case.root / TAG_A / "report.html"
    charts = _screenshot(chromium, tmp_path, first.as_uri(), "charts.png")
    assert charts.std() > 15  # text, cards, tables and charts: not a blank page
    assert len(np.unique(charts.reshape(-1, 3), axis=0)) > 50
    bar_pixels = np.all(np.abs(charts.astype(int) - BAR_RGB) <= 6, axis=-1).sum()
    assert bar_pixels > 5_000, bar_pixels  # the bar charts are drawn
    hist_pixels = np.all(np.abs(charts.astype(int) - HIST_RGB) <= 6, axis=-1).sum()
    assert hist_pixels > 5_000, hist_pixels  # and the histograms


@pytest.mark.slow  # one chromium run: ~15-25 s on 2 busy cores
def test_spatial_sections_render_in_headless_chromium(
    published_root: Path, chromium: str, tmp_path: Path
) -> None:
    """The page of a build with spatial datasets: a section per spatial organism, with its
    charts, after the census_data ones (the DOM as chromium built it)."""
    page = published_root / TAG / "report.html"
    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.as_uri()).stdout
    outline = _Outline()
    outline.feed(dom)
    h2 = [t for tag, t in outline.headings if tag == "h2"]
    h3 = [t for tag, t in outline.headings if tag == "h3"]
    assert h2[2:6] == [
        "Homo sapiens",
        "Mus musculus",
        "Homo sapiens · spatial",
        "Mus musculus · spatial",
    ]
    assert "Spatial sequencing per organism" in h3
    # 4 category charts and 2 histograms for each of 2 organisms x 2 collections
    assert outline.counts.get("svg", 0) == 24
