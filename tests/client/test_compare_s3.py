"""``cellcensus compare`` reads builds on S3 (the SeaweedFS test server) with storage settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from cellcensus._cli import app
from cellcensus.compare import compare_builds
from cellcensus.errors import NotFoundError

from .conftest import LTS_TAG, S3Release

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.s3
@pytest.mark.slow  # 12 s: a build written to S3 (and the 19 s S3 release fixture)
def test_a_build_on_s3_equals_its_local_source(s3_release: S3Release, census_build: Path) -> None:
    uri = f"{s3_release.root_uri}{LTS_TAG}/"
    report = compare_builds(census_build, uri, settings=s3_release.anon)
    assert report.equal
    assert report.b == f"{s3_release.root_uri}{LTS_TAG}/soma"
    assert sum(o.compared for o in report.objects) > 0
    res = CliRunner().invoke(
        app,
        [
            "compare",
            f"{uri}soma/",
            str(census_build),
            "--endpoint-url",
            s3_release.server.endpoint_url,
            "--no-sign-request",
            "--path-style",
        ],
    )
    assert res.exit_code == 0, res.output
    with pytest.raises(NotFoundError, match="neither a census build"):
        compare_builds(census_build, f"{s3_release.root_uri}no-such-tag/", settings=s3_release.anon)
