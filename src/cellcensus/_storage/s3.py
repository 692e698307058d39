"""The one boto3 S3 client factory: cached, pooled, retried, refreshing credentials.

A client is made once per process for each identity (the :class:`~cellcensus.settings.Settings`,
the :class:`S3Limits` and the AWS environment that boto3's default credential chain reads) and
shared by every caller: the builder's source staging, the client's directory and source reads,
release roots, publish and sync. boto3 clients are thread-safe, so the threads of a transfer
share one connection pool.

Credentials: anonymous settings send unsigned requests; static keys are passed to the client;
otherwise one boto3 session per profile (or the default chain) supplies them, and its provider
refreshes temporary credentials (SSO, assume-role, instance roles) before they expire. No
credential is logged, put in an error message or written to disk; the cache key holds only a
digest of the environment's secrets.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import boto3
import botocore
import botocore.exceptions
from botocore.config import Config

from cellcensus.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from cellcensus.settings import Settings

__all__ = [
    "READ",
    "TRANSFER",
    "S3Limits",
    "clear_clients",
    "limits_for",
    "profile_session",
    "s3_client",
]

#: Client reads (directory files, small objects): a dead endpoint fails fast.
READ_CONNECT_TIMEOUT = 5.0
READ_READ_TIMEOUT = 30.0
READ_ATTEMPTS = 3
#: Connections per client for transfers (at least the parallel transfers of publish/sync).
TRANSFER_POOL = 64

Role = Literal["read", "transfer"]
READ: Role = "read"
TRANSFER: Role = "transfer"

#: Environment variables boto3's default credential chain reads (the secret ones are hashed).
_CHAIN_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_EC2_METADATA_DISABLED",
)
_CHAIN_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True, kw_only=True)
class S3Limits:
    """Timeouts, attempts and pool size of a client.

    Parameters
    ----------
    connect_timeout, read_timeout
        Seconds to wait for a connection and for an answer.
    attempts
        Attempts per request, retries included (botocore's ``standard`` retry mode).
    pool
        HTTP connections kept per client.
    """

    connect_timeout: float
    read_timeout: float
    attempts: int
    pool: int


def limits_for(settings: Settings, role: Role = TRANSFER) -> S3Limits:
    """The limits of a client: the settings' own, else the role's defaults.

    ``transfer`` (publish, sync, staging): 10 s to connect, 60 s to answer, 5 attempts;
    ``read`` (client reads): 5 s, 30 s, 3 attempts, so that a dead endpoint fails fast.
    """
    if role == READ:
        return S3Limits(
            connect_timeout=settings.connect_timeout or READ_CONNECT_TIMEOUT,
            read_timeout=settings.read_timeout or READ_READ_TIMEOUT,
            attempts=settings.max_attempts or READ_ATTEMPTS,
            pool=TRANSFER_POOL,
        )
    return S3Limits(
        connect_timeout=settings.connect_seconds,
        read_timeout=settings.read_seconds,
        attempts=settings.attempts,
        pool=TRANSFER_POOL,
    )


#: Clients kept at most (each holds a connection pool).
_MAX_CLIENTS = 32
_lock = threading.Lock()
_sessions: dict[tuple[Any, ...], boto3.Session] = {}
_clients: dict[tuple[Any, ...], Any] = {}


def _chain_identity() -> tuple[Any, ...]:
    """What boto3's default chain would read from the environment (secrets only as a digest)."""
    secrets = hashlib.sha256(
        "\0".join(os.environ.get(k, "") for k in _CHAIN_SECRETS).encode()
    ).hexdigest()
    return (os.getpid(), *(os.environ.get(k) for k in _CHAIN_ENV), secrets)


def _session_locked(profile: str | None) -> boto3.Session:
    key = (profile, *_chain_identity())
    session = _sessions.get(key)
    if session is None:
        try:
            session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        except botocore.exceptions.ProfileNotFound as e:
            msg = (
                f"AWS profile {profile!r} was not found in the AWS config/credentials files; "
                "check AWS_PROFILE / --profile or define the profile with `aws configure`"
            )
            raise ConfigError(msg) from e
        _sessions[key] = session
    return session


def profile_session(profile: str | None) -> boto3.Session:
    """The process's boto3 session of a profile (``None``: the default chain).

    Its credential provider refreshes temporary credentials; every client of the process that
    uses the profile shares it.

    Raises
    ------
    ConfigError
        When the profile is not defined.
    """
    with _lock:
        return _session_locked(profile)


def s3_client(settings: Settings, role: Role = TRANSFER) -> S3Client:
    """The shared S3 client for ``settings`` (made on first use; thread-safe).

    Parameters
    ----------
    settings
        Endpoint, region, addressing, credentials, timeouts.
    role
        ``transfer`` or ``read``: which default limits apply (see :func:`limits_for`).

    Returns
    -------
    S3Client
        A client with a connection pool, ``standard`` retries and the limits of ``role``;
        unsigned when ``settings.anonymous``.
    """
    limits = limits_for(settings, role)
    key = (settings, limits, *_chain_identity())
    with _lock:
        client = _clients.get(key)
        if client is not None:
            return client  # type: ignore[no-any-return]
        config = Config(
            region_name=settings.region,
            signature_version=botocore.UNSIGNED if settings.anonymous else None,
            s3={"addressing_style": "path" if settings.path_style else "virtual"},
            retries={"max_attempts": limits.attempts, "mode": "standard"},
            max_pool_connections=limits.pool,
            connect_timeout=limits.connect_timeout,
            read_timeout=limits.read_timeout,
        )
        kwargs: dict[str, Any] = {}
        if not settings.anonymous and settings.access_key_id is not None:
            kwargs = {
                "aws_access_key_id": settings.access_key_id,
                "aws_secret_access_key": settings.secret_access_key,
                "aws_session_token": settings.session_token,
            }
        use_profile = settings.profile if (settings.profile and not kwargs) else None
        session = _session_locked(None if settings.anonymous else use_profile)
        client = session.client("s3", endpoint_url=settings.endpoint_url, config=config, **kwargs)
        if len(_clients) >= _MAX_CLIENTS:  # many settings in one process (tests): drop the oldest
            del _clients[next(iter(_clients))]
        _clients[key] = client
        return client  # type: ignore[no-any-return]


def clear_clients() -> None:
    """Forget every cached client and session (tests; after credentials files changed)."""
    with _lock:
        _clients.clear()
        _sessions.clear()
