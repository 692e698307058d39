"""Settings: :class:`Settings` for every S3 operation, :class:`ClientConfig` for the client.

Both are typed and immutable. :class:`Settings` says how to reach S3-compatible storage and is
passed explicitly to what needs it; :class:`ClientConfig` holds the client's process-wide
defaults (release root, default :class:`Settings`, cache time), set with :func:`configure`,
read with :func:`client_config`, forgotten with :func:`reset_configuration`.

Resolution order, field by field: explicit arguments, then ``CELLCENSUS_S3_*`` environment
variables, then the AWS conventions (``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_PROFILE``), then defaults. A profile (argument,
``CELLCENSUS_S3_PROFILE`` or ``AWS_PROFILE``) gives the region it defines, when none was given
directly, and the credentials: those are *not* copied into the settings but read through one
boto3 session per profile, whose credential provider refreshes temporary credentials (SSO,
assume-role, ``credential_process``) before they expire, so a publish or sync that outlasts them
keeps working.

TileDB reads none of the AWS variables, so :meth:`Settings.tiledb_config` translates the resolved
settings into ``vfs.s3.*`` keys; :meth:`Settings.boto3_client` builds the matching boto3 client.

==================================  ===============================  ============================
Field                               ``CELLCENSUS_`` variable         AWS fallback
==================================  ===============================  ============================
``endpoint_url``                    ``CELLCENSUS_S3_ENDPOINT_URL``   ``AWS_ENDPOINT_URL_S3``,
                                                                     ``AWS_ENDPOINT_URL``
``region``                          ``CELLCENSUS_S3_REGION``         ``AWS_REGION``,
                                                                     ``AWS_DEFAULT_REGION``
``path_style``                      ``CELLCENSUS_S3_PATH_STYLE``     (on when an endpoint is set)
``anonymous``                       ``CELLCENSUS_S3_NO_SIGN_REQUEST``
``access_key_id``                   ``CELLCENSUS_S3_ACCESS_KEY_ID``  ``AWS_ACCESS_KEY_ID``
``secret_access_key``               ``CELLCENSUS_S3_SECRET_ACCESS_KEY``  ``AWS_SECRET_ACCESS_KEY``
``session_token``                   ``CELLCENSUS_S3_SESSION_TOKEN``  ``AWS_SESSION_TOKEN``
``profile``                         ``CELLCENSUS_S3_PROFILE``        ``AWS_PROFILE``
``connect_timeout`` (s)             ``CELLCENSUS_S3_CONNECT_TIMEOUT``
``read_timeout`` (s)                ``CELLCENSUS_S3_READ_TIMEOUT``
``max_attempts``                    ``CELLCENSUS_S3_MAX_ATTEMPTS``
==================================  ===============================  ============================
"""

from __future__ import annotations

import dataclasses
import logging
import os
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import botocore.exceptions

from cellcensus._redact import register_secret
from cellcensus.errors import ConfigError, PermissionDeniedError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import boto3
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_CACHE_TTL",
    "DEFAULT_OBS_CACHE_BYTES",
    "DEFAULT_REGION",
    "ENV_CACHE_TTL",
    "ENV_OBS_CACHE_BYTES",
    "ENV_PREFIX",
    "ENV_RELEASE_ROOT",
    "ClientConfig",
    "Settings",
    "client_config",
    "configure",
    "reset_configuration",
]

logger = logging.getLogger(__name__)

N = TypeVar("N", int, float)

ENV_PREFIX = "CELLCENSUS_S3_"
DEFAULT_REGION = "us-east-1"
#: Defaults of the S3 client: seconds to connect, seconds to wait for an answer, attempts.
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_ATTEMPTS = 5


def _profile_session(profile: str) -> boto3.Session:
    """The process's refreshing boto3 session of a profile (one per profile and process)."""
    from cellcensus._storage.s3 import profile_session

    return profile_session(profile)


def _parse_number(value: str, name: str, *, integer: bool = False) -> float:
    try:
        number = float(int(value)) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number of seconds"
        msg = f"environment variable {name}={value!r} is not {kind}"
        raise ConfigError(msg) from None
    return number


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def _parse_bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    msg = (
        f"environment variable {name}={value!r} is not a boolean; use one of true/false/1/0/yes/no"
    )
    raise ConfigError(msg)


def _first(env: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        value = env.get(name)
        if value:
            return value
    return None


def _check_endpoint(endpoint_url: str) -> str:
    parsed = urllib.parse.urlparse(endpoint_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        msg = (
            f"S3 endpoint URL {endpoint_url!r} is not an http(s) URL; give it as "
            "'https://host[:port]' or 'http://host:port' (e.g. http://127.0.0.1:8333)"
        )
        raise ConfigError(msg)
    if parsed.username or parsed.password:
        msg = (
            "the S3 endpoint URL must not contain credentials; pass them as access key "
            "settings (CELLCENSUS_S3_ACCESS_KEY_ID / AWS_ACCESS_KEY_ID) instead"
        )
        raise ConfigError(msg)
    return endpoint_url.rstrip("/")


def _limits(
    e: Mapping[str, str],
    connect_timeout: float | None,
    read_timeout: float | None,
    max_attempts: int | None,
) -> tuple[float | None, float | None, int | None]:
    """Timeouts and attempts: the given values, else ``CELLCENSUS_S3_*`` variables."""
    p = ENV_PREFIX
    if connect_timeout is None and (raw := e.get(p + "CONNECT_TIMEOUT")):
        connect_timeout = _parse_number(raw, p + "CONNECT_TIMEOUT")
    if read_timeout is None and (raw := e.get(p + "READ_TIMEOUT")):
        read_timeout = _parse_number(raw, p + "READ_TIMEOUT")
    if max_attempts is None and (raw := e.get(p + "MAX_ATTEMPTS")):
        max_attempts = int(_parse_number(raw, p + "MAX_ATTEMPTS", integer=True))
    return connect_timeout, read_timeout, max_attempts


@dataclass(frozen=True, kw_only=True, repr=False)
class Settings:
    """How to reach S3-compatible storage. Immutable; build it with :meth:`resolve`.

    Parameters
    ----------
    endpoint_url
        ``http(s)://host[:port]`` of a non-AWS S3 server, or ``None`` for AWS.
    region
        Bucket region (signing region for non-AWS servers).
    path_style
        Path-style addressing (``host/bucket/key``) instead of virtual-host style.
    anonymous
        Send unsigned requests (public buckets); no credentials are used.
    access_key_id, secret_access_key, session_token
        Static credentials; when ``None`` boto3's (and TileDB's) default credential chain applies.
    profile
        The AWS profile whose credentials are used when no static keys are given; they are
        read through a refreshing boto3 session (see :meth:`frozen_credentials`).
    connect_timeout, read_timeout
        Seconds to wait for a connection and for an answer (``None``: 10 and 60).
    max_attempts
        Attempts per S3 request, retries included (``None``: 5).
    """

    endpoint_url: str | None = None
    region: str = DEFAULT_REGION
    path_style: bool = False
    anonymous: bool = False
    access_key_id: str | None = field(default=None, compare=True)
    secret_access_key: str | None = field(default=None, compare=True)
    session_token: str | None = field(default=None, compare=True)
    profile: str | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            object.__setattr__(self, "endpoint_url", _check_endpoint(self.endpoint_url))
        if (self.access_key_id is None) != (self.secret_access_key is None):
            msg = (
                "an S3 access key id was given without its secret access key (or the reverse); "
                "set both (CELLCENSUS_S3_ACCESS_KEY_ID and CELLCENSUS_S3_SECRET_ACCESS_KEY, or "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) or neither"
            )
            raise ConfigError(msg)
        if not self.region:
            msg = "the S3 region must not be empty; set e.g. --region us-east-1"
            raise ConfigError(msg)
        register_secret(self.secret_access_key)  # kept out of logs and errors
        register_secret(self.session_token)
        for name in ("connect_timeout", "read_timeout"):
            value = getattr(self, name)
            if value is not None and not (0 < value <= 3600):
                msg = f"S3 {name} must be between 0 and 3600 seconds, got {value}"
                raise ConfigError(msg)
        if self.max_attempts is not None and not (1 <= self.max_attempts <= 100):
            msg = f"S3 max_attempts must be between 1 and 100, got {self.max_attempts}"
            raise ConfigError(msg)

    # ------------------------------------------------------------------ construction
    @classmethod
    def resolve(
        cls,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        anonymous: bool | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        session_token: str | None = None,
        profile: str | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_attempts: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Settings:
        """Resolve settings: arguments, then ``CELLCENSUS_S3_*``, then AWS env, then defaults.

        Parameters
        ----------
        endpoint_url, region, path_style, anonymous, access_key_id, secret_access_key, \
session_token, profile, connect_timeout, read_timeout, max_attempts
            Explicit values; ``None`` means "not given, look further".
        env
            The environment to read (defaults to ``os.environ``); tests pass their own.

        Returns
        -------
        Settings
            The resolved, immutable settings.

        Raises
        ------
        ConfigError
            On a malformed value (endpoint URL, boolean variable, half-given key pair, unknown
            profile).

        Examples
        --------
        >>> s = Settings.resolve(endpoint_url="http://127.0.0.1:8333", anonymous=True, env={})
        >>> s.tiledb_config()["vfs.s3.scheme"], s.path_style
        ('http', True)
        """
        e: Mapping[str, str] = os.environ if env is None else env
        p = ENV_PREFIX

        if endpoint_url is None:
            endpoint_url = _first(e, p + "ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
        if anonymous is None:
            raw = e.get(p + "NO_SIGN_REQUEST")
            anonymous = _parse_bool(raw, p + "NO_SIGN_REQUEST") if raw is not None else False
        if path_style is None:
            raw = e.get(p + "PATH_STYLE")
            if raw is not None:
                path_style = _parse_bool(raw, p + "PATH_STYLE")
            else:
                # Non-AWS servers (SeaweedFS, MinIO, Ceph...) generally need path-style.
                path_style = endpoint_url is not None
        if profile is None:
            profile = _first(e, p + "PROFILE", "AWS_PROFILE")

        explicit_keys = access_key_id is not None or secret_access_key is not None
        if not explicit_keys:
            prefixed = _first(e, p + "ACCESS_KEY_ID"), _first(e, p + "SECRET_ACCESS_KEY")
            if any(prefixed):
                access_key_id, secret_access_key = prefixed
                session_token = session_token or _first(e, p + "SESSION_TOKEN")
            elif _first(e, "AWS_ACCESS_KEY_ID") or _first(e, "AWS_SECRET_ACCESS_KEY"):
                access_key_id = _first(e, "AWS_ACCESS_KEY_ID")
                secret_access_key = _first(e, "AWS_SECRET_ACCESS_KEY")
                session_token = session_token or _first(e, "AWS_SESSION_TOKEN")

        if region is None:
            region = _first(e, p + "REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
        connect_timeout, read_timeout, max_attempts = _limits(
            e, connect_timeout, read_timeout, max_attempts
        )

        if profile is not None and not anonymous and (access_key_id is None or region is None):
            session = _profile_session(profile)  # checks that the profile exists
            if region is None:
                region = session.region_name

        return cls(
            endpoint_url=endpoint_url,
            region=region if region is not None else DEFAULT_REGION,
            path_style=path_style,
            anonymous=anonymous,
            access_key_id=None if anonymous else access_key_id,
            secret_access_key=None if anonymous else secret_access_key,
            session_token=None if anonymous else session_token,
            profile=profile,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_attempts=max_attempts,
        )

    def frozen_credentials(self) -> tuple[str, str, str | None] | None:
        """The credentials in effect right now: ``(access key id, secret, session token)``.

        Static keys as given; for a profile, the current value of its refreshing credentials
        (refreshed first when they are about to expire); ``None`` when anonymous or when only
        an unnamed default chain (instance role, container) would supply them.
        """
        if self.anonymous:
            return None
        if self.access_key_id is not None:
            return (self.access_key_id, self.secret_access_key or "", self.session_token)
        if not self.profile:
            return None
        try:
            creds = _profile_session(self.profile).get_credentials()
            if creds is None:
                return None
            frozen = creds.get_frozen_credentials()
        except botocore.exceptions.BotoCoreError as e:
            msg = (
                f"the credentials of AWS profile {self.profile!r} could not be obtained "
                f"({type(e).__name__}); renew them (e.g. `aws sso login --profile "
                f"{self.profile}`) and retry"
            )
            raise PermissionDeniedError(msg) from e
        if not frozen.access_key or not frozen.secret_key:
            return None
        register_secret(frozen.secret_key)
        register_secret(frozen.token)
        return (frozen.access_key, frozen.secret_key, frozen.token)

    def replace(self, **changes: Any) -> Settings:  # noqa: ANN401 - any field
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ derived values
    @property
    def scheme(self) -> str:
        """``http`` or ``https``, from the endpoint URL (``https`` for AWS)."""
        if self.endpoint_url is None:
            return "https"
        return urllib.parse.urlparse(self.endpoint_url).scheme

    @property
    def has_credentials(self) -> bool:
        """Whether static keys or a profile give credentials (else a default chain may)."""
        return self.access_key_id is not None or (self.profile is not None and not self.anonymous)

    def secrets(self) -> tuple[str, ...]:
        """The secret values currently in effect (secret key, session token): for leak checks."""
        creds = self.frozen_credentials()
        if creds is None:
            return ()
        return tuple(v for v in creds[1:] if v)

    def tiledb_config(self) -> dict[str, str]:
        """The TileDB ``vfs.s3.*`` configuration for these settings.

        Always sets ``vfs.s3.no_sign_request`` explicitly (the official ``cellxgene_census``
        client defaults it to ``"true"``), the region, scheme and addressing style, and the
        endpoint and keys when present. Pass it as ``tiledb_config=`` to
        ``cellxgene_census.open_soma`` or to ``tiledbsoma.SOMATileDBContext``.

        Returns
        -------
        dict[str, str]
            TileDB configuration keys and values (contains secrets: do not log it).
        """
        cfg: dict[str, str] = {
            "vfs.s3.region": self.region,
            "vfs.s3.scheme": self.scheme,
            "vfs.s3.use_virtual_addressing": "false" if self.path_style else "true",
            "vfs.s3.no_sign_request": "true" if self.anonymous else "false",
        }
        if self.endpoint_url is not None:
            cfg["vfs.s3.endpoint_override"] = self.endpoint_url
        if self.connect_timeout is not None:
            cfg["vfs.s3.connect_timeout_ms"] = str(int(self.connect_timeout * 1000))
        if self.read_timeout is not None:
            cfg["vfs.s3.request_timeout_ms"] = str(int(self.read_timeout * 1000))
        if self.max_attempts is not None:
            cfg["vfs.s3.connect_max_tries"] = str(self.max_attempts)
        # TileDB cannot refresh a profile's credentials itself: it gets their current value
        creds = self.frozen_credentials()
        if creds is not None:
            cfg["vfs.s3.aws_access_key_id"] = creds[0]
            cfg["vfs.s3.aws_secret_access_key"] = creds[1]
            if creds[2]:
                cfg["vfs.s3.aws_session_token"] = creds[2]
        return cfg

    def boto3_client(self) -> S3Client:
        """The shared boto3 S3 client for these settings (thread-safe; made on first use).

        See :func:`cellcensus._storage.s3.s3_client`: pooled connections, ``standard``
        retries, the timeouts and attempts of these settings, unsigned when anonymous.
        """
        from cellcensus._storage.s3 import s3_client

        return s3_client(self)

    @property
    def connect_seconds(self) -> float:
        """Connect timeout in effect, in seconds."""
        return DEFAULT_CONNECT_TIMEOUT if self.connect_timeout is None else self.connect_timeout

    @property
    def read_seconds(self) -> float:
        """Read timeout in effect, in seconds."""
        return DEFAULT_READ_TIMEOUT if self.read_timeout is None else self.read_timeout

    @property
    def attempts(self) -> int:
        """Attempts per request in effect."""
        return DEFAULT_MAX_ATTEMPTS if self.max_attempts is None else self.max_attempts

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        creds = (
            "anonymous"
            if self.anonymous
            else (
                "static keys"
                if self.access_key_id is not None
                else ("profile" if self.profile else "default chain")
            )
        )
        return (
            f"Settings(endpoint_url={self.endpoint_url!r}, region={self.region!r}, "
            f"path_style={self.path_style}, anonymous={self.anonymous}, "
            f"credentials={creds!r}, profile={self.profile!r})"
        )

    __str__ = __repr__

    def describe(self) -> dict[str, str | bool | None]:
        """A JSON-able summary without secrets (for logs and ``show`` commands)."""
        return {
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "path_style": self.path_style,
            "anonymous": self.anonymous,
            "scheme": self.scheme,
            "credentials": "static keys" if self.access_key_id else None,
            "profile": self.profile,
            "connect_timeout": str(self.connect_seconds),
            "read_timeout": str(self.read_seconds),
            "max_attempts": str(self.attempts),
        }


# ---------------------------------------------------------------------------- client defaults
#: Environment variable naming the default release root of the client.
ENV_RELEASE_ROOT = "CELLCENSUS_RELEASE_ROOT"
#: Environment variable with the seconds a remote directory file is reused.
ENV_CACHE_TTL = "CELLCENSUS_CACHE_TTL"
#: Seconds a remote ``release.json`` / ``mirrors.json`` is reused before it is fetched again.
DEFAULT_CACHE_TTL = 60.0
#: Environment variable with the bytes of obs frames a process keeps for gene queries.
ENV_OBS_CACHE_BYTES = "CELLCENSUS_OBS_CACHE_BYTES"
#: Bytes of obs frames (every cell of a release, for gene queries) a process keeps.
DEFAULT_OBS_CACHE_BYTES = 512 << 20


def _check_cache_bytes(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"{name} must be a whole number of bytes >= 0, got {value!r}"
        raise ConfigError(msg)
    return value


def _check_ttl(value: float, name: str) -> float:
    if not value >= 0:  # also refuses NaN
        msg = f"{name} must be >= 0 seconds, got {value}"
        raise ConfigError(msg)
    return float(value)


@dataclass(frozen=True, kw_only=True)
class ClientConfig:
    """The client's defaults: where releases are, how to reach S3, how long to cache.

    Immutable. :func:`configure` replaces the process-wide one; :func:`client_config` returns it
    with the environment filled in. Per field, a call's own argument wins, then
    :func:`configure`, then the ``CELLCENSUS_`` environment variable, then the default.

    Lifecycle: maturing.

    Parameters
    ----------
    release_root
        Default release root (path, ``file://``, ``s3://``, ``http(s)://``, or a
        ``release.json`` URL); ``CELLCENSUS_RELEASE_ROOT``; ``None``: the official directory.
    settings
        Default storage settings for ``s3://`` locations; ``None``: resolved from the
        environment for each read (anonymous when no credentials are configured).
    cache_ttl
        Seconds to reuse a fetched remote directory file (``0`` disables the cache);
        ``CELLCENSUS_CACHE_TTL``.
    obs_cache_bytes
        Bytes of obs frames a process keeps for gene queries across every cell (the frame of
        every cell of a release, reused by the next such query; ``0`` disables it; see
        ``docs/genes.md``); ``CELLCENSUS_OBS_CACHE_BYTES``.
    """

    release_root: str | None = None
    settings: Settings | None = None
    cache_ttl: float = DEFAULT_CACHE_TTL
    obs_cache_bytes: int = DEFAULT_OBS_CACHE_BYTES

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_ttl", _check_ttl(self.cache_ttl, "cache_ttl"))
        _check_cache_bytes(self.obs_cache_bytes, "obs_cache_bytes")
        if self.release_root == "":
            object.__setattr__(self, "release_root", None)


_configured: ClientConfig | None = None
_configured_fields: frozenset[str] = frozenset()


def configure(
    *,
    release_root: str | os.PathLike[str] | None = None,
    settings: Settings | None = None,
    cache_ttl: float | None = None,
    obs_cache_bytes: int | None = None,
) -> ClientConfig:
    """Set process-wide defaults for the client (arguments of a call still win).

    Lifecycle: maturing.

    Parameters
    ----------
    release_root
        Default release root. ``None`` leaves the current value; ``""`` unsets it (the
        environment applies again).
    settings
        Default storage settings for S3 locations (endpoint, region, credentials).
    cache_ttl
        Seconds to reuse a fetched remote directory file; ``0`` disables the cache.
    obs_cache_bytes
        Bytes of obs frames kept for gene queries; ``0`` disables that cache.

    Returns
    -------
    ClientConfig
        The configuration now in effect (environment included).

    Raises
    ------
    ConfigError
        For a negative ``cache_ttl`` or ``obs_cache_bytes``.
    """
    global _configured, _configured_fields  # noqa: PLW0603 - the one process-wide default
    current = _configured or ClientConfig()
    fields = set(_configured_fields)
    changes: dict[str, Any] = {}
    if release_root is not None:
        changes["release_root"] = str(release_root) or None
        (fields.add if changes["release_root"] else fields.discard)("release_root")
    if settings is not None:
        changes["settings"] = settings
        fields.add("settings")
    if cache_ttl is not None:
        changes["cache_ttl"] = _check_ttl(cache_ttl, "cache_ttl")
        fields.add("cache_ttl")
    if obs_cache_bytes is not None:
        changes["obs_cache_bytes"] = _check_cache_bytes(obs_cache_bytes, "obs_cache_bytes")
        fields.add("obs_cache_bytes")
    _configured = dataclasses.replace(current, **changes)
    _configured_fields = frozenset(fields)
    return client_config()


def reset_configuration() -> None:
    """Forget everything :func:`configure` set (tests call this between cases)."""
    global _configured, _configured_fields  # noqa: PLW0603 - the one process-wide default
    _configured = None
    _configured_fields = frozenset()


def _env_number(env: Mapping[str, str], name: str, parse: Callable[[str], N], unit: str) -> N:
    raw = env[name]
    try:
        return parse(raw)
    except ValueError as err:
        msg = f"environment variable {name}={raw!r} is not a number of {unit}"
        raise ConfigError(msg) from err


def client_config(env: Mapping[str, str] | None = None) -> ClientConfig:
    """The client configuration in effect: :func:`configure`, then environment, then defaults.

    Parameters
    ----------
    env
        The environment to read (defaults to ``os.environ``).

    Raises
    ------
    ConfigError
        For a ``CELLCENSUS_CACHE_TTL`` that is not a number >= 0, or a
        ``CELLCENSUS_OBS_CACHE_BYTES`` that is not a whole number >= 0.
    """
    e: Mapping[str, str] = os.environ if env is None else env
    given = _configured or ClientConfig()
    fields = _configured_fields
    release_root = given.release_root if "release_root" in fields else e.get(ENV_RELEASE_ROOT)
    cache_ttl = given.cache_ttl
    if "cache_ttl" not in fields and e.get(ENV_CACHE_TTL):
        cache_ttl = _check_ttl(_env_number(e, ENV_CACHE_TTL, float, "seconds"), ENV_CACHE_TTL)
    obs_cache_bytes = given.obs_cache_bytes
    if "obs_cache_bytes" not in fields and e.get(ENV_OBS_CACHE_BYTES):
        raw_bytes = _env_number(e, ENV_OBS_CACHE_BYTES, int, "bytes")
        obs_cache_bytes = _check_cache_bytes(raw_bytes, ENV_OBS_CACHE_BYTES)
    return ClientConfig(
        release_root=release_root or None,
        settings=given.settings,
        cache_ttl=cache_ttl,
        obs_cache_bytes=obs_cache_bytes,
    )
