"""HTTP(S) reads through one ``requests.Session``: connection reuse and urllib3 retries.

Every request has a connect and a read timeout. Refused or reset connections, timeouts and
HTTP 500/502/503/504 answers are retried with exponential back-off (urllib3 ``Retry``) for
``GET`` and ``HEAD``; after the last attempt, or on another status, the failure is mapped to
:mod:`cellcensus.errors` with the URL in the message.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from cellcensus.errors import CellCensusError, NotFoundError, PermissionDeniedError

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "RETRIES", "http_request", "session"]

logger = logging.getLogger(__name__)

#: Seconds to wait for a TCP connection to an HTTP server.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for data once connected.
READ_TIMEOUT = 30.0
#: Attempts per request (the first try included).
RETRIES = 3
#: Back-off factor between attempts (seconds; doubled each time).
BACKOFF = 0.25
_RETRY_STATUS = frozenset({500, 502, 503, 504})

_lock = threading.Lock()
_sessions: dict[int, requests.Session] = {}


def _user_agent() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        v = version("cellcensus")
    except PackageNotFoundError:  # pragma: no cover - source tree
        v = "0"
    return f"cellcensus/{v}"


def session() -> requests.Session:
    """The process's HTTP session (pooled connections, retries on transient failures)."""
    pid = os.getpid()
    with _lock:
        s = _sessions.get(pid)
        if s is None:
            retry = Retry(
                total=RETRIES - 1,
                connect=RETRIES - 1,
                read=RETRIES - 1,
                status=RETRIES - 1,
                other=0,
                backoff_factor=BACKOFF,
                status_forcelist=_RETRY_STATUS,
                allowed_methods=frozenset({"GET", "HEAD"}),
                raise_on_status=False,
            )
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=16)
            s = requests.Session()
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = _user_agent()
            _sessions.clear()  # a forked child drops its parent's session
            _sessions[pid] = s
        return s


def http_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    stream: bool = False,
) -> requests.Response:
    """Send one ``GET`` or ``HEAD`` (retried as described above) and check its status.

    Raises
    ------
    NotFoundError
        HTTP 404.
    PermissionDeniedError
        HTTP 401 or 403.
    ReleaseRootUnreachableError
        The server could not be reached, timed out or kept failing, after :data:`RETRIES`
        attempts.
    CellCensusError
        Another HTTP error status.
    """
    from cellcensus._storage.errors import unreachable_error

    try:
        r = session().request(
            method,
            url,
            headers=dict(headers or {}),
            stream=stream,
            timeout=(CONNECT_TIMEOUT, READ_TIMEOUT),
            allow_redirects=True,
        )
    except (requests.ConnectionError, requests.Timeout) as e:
        logger.debug("%s %s failed: %s", method, url, e)
        msg = (
            f"cannot reach {url} after {RETRIES} attempts ({type(e).__name__}: {e}); check the "
            "URL and the network"
        )
        raise unreachable_error(msg) from e
    status = r.status_code
    if status < 400:
        return r
    r.close()
    if status == 404:
        msg = f"{url} does not exist (HTTP 404)"
        raise NotFoundError(msg)
    if status in (401, 403):
        msg = f"access to {url} was denied (HTTP {status})"
        raise PermissionDeniedError(msg)
    if status in _RETRY_STATUS:
        msg = (
            f"cannot reach {url} after {RETRIES} attempts (HTTP {status}); check the URL and the "
            "network"
        )
        raise unreachable_error(msg)
    msg = f"{method} {url} failed: HTTP {status}"
    raise CellCensusError(msg)
