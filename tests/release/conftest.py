"""Fixtures of the release tests: the SeaweedFS S3 server, settings per identity, a tiny build.

``census_build`` here is a small but real Census-shaped TileDB-SOMA collection written directly
with tiledbsoma (seconds to make), plus one H5AD and a ``build.json``; it keeps the contract of the
builder's fixture (a ``Path`` to a build directory with ``soma/``, ``h5ads/``, ``build.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator  # noqa: TC003 - pytest resolves fixture annotations
from dataclasses import dataclass
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import scipy.sparse as sp
import tiledbsoma

from cellcensus.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _s3server import S3Server, WeedNotFoundError

N_OBS = 60
N_VAR = 25
DATASET_IDS = ("0a1b2c3d-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-000000000002")


# ---------------------------------------------------------------------------- environment
@pytest.fixture(autouse=True)
def _isolated_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Every release test runs without the machine's AWS/CELLCENSUS settings or credentials
    (no ~/.aws files, no instance-metadata look-ups)."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "CELLCENSUS_")):
            monkeypatch.delenv(key)
    empty = tmp_path_factory.getbasetemp() / "no-aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# ---------------------------------------------------------------------------- S3 server
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on a free 127.0.0.1 port for the whole session.

    Buckets ``public`` (anonymous Read/List) and ``private``; identities ``reader`` (Read, List)
    and ``publisher`` (Admin, Read, List, Tagging, Write). Stopped with SIGTERM at the end.
    A missing ``weed`` binary fails the tests (it is a test dependency), it does not skip them.
    """
    server = S3Server(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
    except WeedNotFoundError as e:
        pytest.fail(str(e), pytrace=False)
    yield server
    server.stop()


def make_settings(server: S3Server, who: str) -> Settings:
    """Settings for ``who`` in {"anonymous", "reader", "publisher"} against ``server``."""
    if who == "anonymous":
        return Settings(endpoint_url=server.endpoint_url, path_style=True, anonymous=True)
    ident = {"reader": server.reader, "publisher": server.publisher}[who]
    return Settings(
        endpoint_url=server.endpoint_url,
        path_style=True,
        access_key_id=ident.access_key_id,
        secret_access_key=ident.secret_access_key,
    )


@pytest.fixture
def anon_settings(s3_server: S3Server) -> Settings:
    """Unsigned requests against the test server."""
    return make_settings(s3_server, "anonymous")


@pytest.fixture
def reader_settings(s3_server: S3Server) -> Settings:
    """The read-only identity."""
    return make_settings(s3_server, "reader")


@pytest.fixture
def publisher_settings(s3_server: S3Server) -> Settings:
    """The identity allowed to write."""
    return make_settings(s3_server, "publisher")


@pytest.fixture
def unique_prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to the test (the server is shared by the session)."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"t-{name[:60]}-{os.urandom(3).hex()}"


@dataclass(frozen=True)
class S3Env:
    """The test server, settings for each identity, and a key prefix unique to the test."""

    server: S3Server
    anon: Settings
    reader: Settings
    publisher: Settings
    prefix: str

    def root_uri(self, bucket: str = "public") -> str:
        """``s3://<bucket>/<prefix>/``."""
        return f"s3://{bucket}/{self.prefix}/"


@pytest.fixture
def s3(s3_server: S3Server, unique_prefix: str) -> S3Env:
    """Everything an S3 test needs, in one fixture."""
    return S3Env(
        server=s3_server,
        anon=make_settings(s3_server, "anonymous"),
        reader=make_settings(s3_server, "reader"),
        publisher=make_settings(s3_server, "publisher"),
        prefix=unique_prefix,
    )


# ---------------------------------------------------------------------------- a tiny build
def _write_tiny_soma(soma: Path) -> None:
    rng = np.random.default_rng(0)
    ctx = tiledbsoma.SOMATileDBContext()
    tiledbsoma.Collection.create(str(soma), context=ctx).close()

    # census_info
    info_uri = soma / "census_info"
    tiledbsoma.Collection.create(str(info_uri), context=ctx).close()
    summary = pa.table(
        {
            "soma_joinid": pa.array([0, 1, 2], pa.int64()),
            "label": ["census_schema_version", "census_build_date", "total_cell_count"],
            "value": ["2.1.0", "2026-11-01", str(N_OBS)],
        }
    )
    datasets = pa.table(
        {
            "soma_joinid": pa.array([0, 1], pa.int64()),
            "dataset_id": list(DATASET_IDS),
            "dataset_title": ["tiny one", "tiny two"],
            "dataset_h5ad_path": [f"{d}.h5ad" for d in DATASET_IDS],
            "dataset_total_cell_count": pa.array([N_OBS // 2, N_OBS // 2], pa.int64()),
        }
    )
    for name, table in (("summary", summary), ("datasets", datasets)):
        uri = str(info_uri / name)
        with tiledbsoma.DataFrame.create(
            uri,
            schema=table.schema,
            index_column_names=["soma_joinid"],
            domain=[(0, table.num_rows - 1)],
            context=ctx,
        ) as df:
            df.write(table)
    with tiledbsoma.Collection.open(str(info_uri), "w", context=ctx) as c:
        for name in ("summary", "datasets"):
            c.set(
                name,
                tiledbsoma.DataFrame.open(str(info_uri / name), context=ctx),
                use_relative_uri=True,
            )

    # census_data/homo_sapiens
    data_uri = soma / "census_data"
    tiledbsoma.Collection.create(str(data_uri), context=ctx).close()
    exp_uri = data_uri / "homo_sapiens"
    tiledbsoma.Experiment.create(str(exp_uri), context=ctx).close()
    cat = pa.dictionary(pa.int8(), pa.large_string())
    obs = pa.table(
        {
            "soma_joinid": pa.array(np.arange(N_OBS), pa.int64()),
            "dataset_id": pa.array([DATASET_IDS[i % 2] for i in range(N_OBS)]).cast(cat),
            "cell_type": pa.array(
                [("T cell", "B cell", "monocyte")[i % 3] for i in range(N_OBS)]
            ).cast(cat),
            "cell_type_ontology_term_id": pa.array(
                [("CL:0000084", "CL:0000236", "CL:0000576")[i % 3] for i in range(N_OBS)]
            ).cast(cat),
            "assay": pa.array(["10x 3' v3"] * N_OBS).cast(cat),
            "tissue_general": pa.array(["blood"] * N_OBS).cast(cat),
            "is_primary_data": pa.array([True] * N_OBS),
            "observation_joinid": pa.array(
                [f"obs{i:04d}" for i in range(N_OBS)], pa.large_string()
            ),
        }
    )
    with tiledbsoma.DataFrame.create(
        str(exp_uri / "obs"),
        schema=obs.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, N_OBS - 1)],
        context=ctx,
    ) as df:
        df.write(obs)
    ms_uri = exp_uri / "ms"
    tiledbsoma.Collection.create(str(ms_uri), context=ctx).close()
    rna_uri = ms_uri / "RNA"
    tiledbsoma.Measurement.create(str(rna_uri), context=ctx).close()
    var = pa.table(
        {
            "soma_joinid": pa.array(np.arange(N_VAR), pa.int64()),
            "feature_id": pa.array([f"ENSG{i:011d}" for i in range(N_VAR)], pa.large_string()),
            "feature_name": pa.array([f"GENE{i}" for i in range(N_VAR)], pa.large_string()),
            "feature_length": pa.array(rng.integers(100, 5000, N_VAR), pa.int64()),
        }
    )
    with tiledbsoma.DataFrame.create(
        str(rna_uri / "var"),
        schema=var.schema,
        index_column_names=["soma_joinid"],
        domain=[(0, N_VAR - 1)],
        context=ctx,
    ) as df:
        df.write(var)
    x_uri = rna_uri / "X"
    tiledbsoma.Collection.create(str(x_uri), context=ctx).close()
    m = sp.random(N_OBS, N_VAR, density=0.3, format="coo", random_state=1, dtype=np.float32)
    m.data = np.ceil(m.data * 10).astype(np.float32)
    with tiledbsoma.SparseNDArray.create(
        str(x_uri / "raw"), type=pa.float32(), shape=(N_OBS, N_VAR), context=ctx
    ) as arr:
        arr.write(
            pa.table(
                {
                    "soma_dim_0": pa.array(m.row.astype(np.int64)),
                    "soma_dim_1": pa.array(m.col.astype(np.int64)),
                    "soma_data": pa.array(m.data),
                }
            )
        )

    # group membership, relative URIs only (the copy must open after upload)
    with tiledbsoma.Collection.open(str(x_uri), "w", context=ctx) as c:
        c.set(
            "raw",
            tiledbsoma.SparseNDArray.open(str(x_uri / "raw"), context=ctx),
            use_relative_uri=True,
        )
    with tiledbsoma.Measurement.open(str(rna_uri), "w", context=ctx) as c:
        c.set(
            "var",
            tiledbsoma.DataFrame.open(str(rna_uri / "var"), context=ctx),
            use_relative_uri=True,
        )
        c.set("X", tiledbsoma.Collection.open(str(x_uri), context=ctx), use_relative_uri=True)
    with tiledbsoma.Collection.open(str(ms_uri), "w", context=ctx) as c:
        c.set("RNA", tiledbsoma.Measurement.open(str(rna_uri), context=ctx), use_relative_uri=True)
    with tiledbsoma.Experiment.open(str(exp_uri), "w", context=ctx) as c:
        c.set(
            "obs",
            tiledbsoma.DataFrame.open(str(exp_uri / "obs"), context=ctx),
            use_relative_uri=True,
        )
        c.set("ms", tiledbsoma.Collection.open(str(ms_uri), context=ctx), use_relative_uri=True)
    with tiledbsoma.Collection.open(str(data_uri), "w", context=ctx) as c:
        c.set(
            "homo_sapiens",
            tiledbsoma.Experiment.open(str(exp_uri), context=ctx),
            use_relative_uri=True,
        )
    with tiledbsoma.Collection.open(str(soma), "w", context=ctx) as c:
        c.set(
            "census_info",
            tiledbsoma.Collection.open(str(info_uri), context=ctx),
            use_relative_uri=True,
        )
        c.set(
            "census_data",
            tiledbsoma.Collection.open(str(data_uri), context=ctx),
            use_relative_uri=True,
        )
        c.metadata["cxg_schema_version"] = "2.1.0"


def _write_h5ads(h5ads: Path) -> None:
    h5ads.mkdir(parents=True)
    for i, dataset_id in enumerate(DATASET_IDS):
        x = sp.random(
            N_OBS // 2, N_VAR, density=0.3, format="csr", random_state=i, dtype=np.float32
        )
        obs = pd.DataFrame(index=[f"cell{j}" for j in range(N_OBS // 2)])
        var = pd.DataFrame(index=[f"ENSG{j:011d}" for j in range(N_VAR)])
        ad.AnnData(X=x, obs=obs, var=var).write_h5ad(h5ads / f"{dataset_id}.h5ad")


def write_tiny_build(out: Path, *, note: str = "tiny") -> Path:
    """Write a build directory (``soma/``, ``h5ads/``, ``build.json``) at ``out``."""
    out.mkdir(parents=True)
    _write_tiny_soma(out / "soma")
    _write_h5ads(out / "h5ads")
    (out / "build.json").write_text(
        json.dumps(
            {
                "format_version": 1,
                "tag": "2026-11-01",
                "note": note,
                "inputs": [{"dataset_id": d, "sha256": "0" * 64} for d in DATASET_IDS],
            },
            indent=2,
        )
    )
    return out


@pytest.fixture(scope="session")
def census_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a finished build directory (``soma/``, ``h5ads/``, ``build.json``)."""
    return write_tiny_build(tmp_path_factory.mktemp("tinybuild") / "build")


@pytest.fixture
def build_copy(census_build: Path, tmp_path: Path) -> Path:
    """A private copy of ``census_build`` that a test may modify."""
    dest = tmp_path / "build-copy"
    shutil.copytree(census_build, dest)
    return dest


# ---------------------------------------------------------------------------- CLI in a subprocess
def cli_env(**extra: str) -> dict[str, str]:
    """The current (isolated) environment plus ``extra``, for CLI subprocesses."""
    env = dict(os.environ)
    env.update(extra)
    env["COLUMNS"] = "200"
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, check: bool = False, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cellcensus._cli ARGS`` and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "cellcensus._cli", *args],
        env=env if env is not None else cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and proc.returncode != 0:
        msg = (
            f"cellcensus {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
        raise AssertionError(msg)
    return proc


def s3_cli_args(server: S3Server) -> list[str]:
    """Endpoint options for the CLI against the test server."""
    return ["--endpoint-url", server.endpoint_url, "--path-style"]


def publisher_env(server: S3Server) -> dict[str, str]:
    """Environment with the publisher's keys in the standard AWS variables."""
    return cli_env(
        AWS_ACCESS_KEY_ID=server.publisher.access_key_id,
        AWS_SECRET_ACCESS_KEY=server.publisher.secret_access_key,
    )
