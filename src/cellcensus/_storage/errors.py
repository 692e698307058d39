"""One mapping of storage failures to :mod:`cellcensus.errors`, by exception type and S3 code.

Each situation has one error class and one piece of advice, whoever hit it (the client reading a
directory, the builder staging a source, publish, sync):

===============================  ===================================  ========================
Situation                        Error                                Advice
===============================  ===================================  ========================
no credentials found             :class:`PermissionDeniedError`       set keys / a profile, or
                                                                      read anonymously
access denied (403)              :class:`PermissionDeniedError`       unsigned: set credentials;
                                                                      signed: check them
no such bucket / object (404)    :class:`NotFoundError`               check the name
endpoint unreachable, timeout,   :class:`ReleaseRootUnreachableError` check the endpoint URL,
connection lost                  (a ``requests.ConnectionError``)     raise the timeout, retry
conditional write lost (412)     :class:`PreconditionFailedError`
===============================  ===================================  ========================

Messages never contain credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import botocore.exceptions
import urllib3.exceptions

from cellcensus._storage.s3 import TRANSFER, Role, limits_for
from cellcensus.errors import (
    CellCensusError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
)

if TYPE_CHECKING:
    from cellcensus.settings import Settings

__all__ = [
    "ACCESS_DENIED_CODES",
    "NOT_FOUND_CODES",
    "client_error_code",
    "is_missing_key",
    "map_s3_error",
    "no_credentials_advice",
    "unreachable_error",
]

#: S3 error codes of a refused request.
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "403"}
)
#: S3 error codes of a missing object (a missing bucket is ``NoSuchBucket``).
NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})

#: Where credentials come from, for the advice texts.
CREDENTIALS_HINT = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or CELLCENSUS_S3_ACCESS_KEY_ID/..., or "
    "AWS_PROFILE / --profile)"
)


def no_credentials_advice() -> str:
    """The advice when no credentials were found."""
    return (
        f"no S3 credentials were found; set {CREDENTIALS_HINT}, or use --no-sign-request "
        "(CELLCENSUS_S3_NO_SIGN_REQUEST=true) for anonymous reads of a public bucket"
    )


def client_error_code(e: botocore.exceptions.ClientError) -> tuple[str, int]:
    """The S3 error code and HTTP status of a ``ClientError``."""
    err = e.response.get("Error", {})
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(err.get("Code", "")), int(status)


def is_missing_key(e: BaseException) -> bool:
    """Whether ``e`` is a 404 for the object itself (not for a missing bucket)."""
    if not isinstance(e, botocore.exceptions.ClientError):
        return False
    code, status = client_error_code(e)
    return code != "NoSuchBucket" and (code in NOT_FOUND_CODES or status == 404)


def unreachable_error(msg: str) -> CellCensusError:
    """A :class:`ReleaseRootUnreachableError` (created on first use: it loads TileDB-SOMA)."""
    from cellcensus.errors import ReleaseRootUnreachableError

    return ReleaseRootUnreachableError(msg)


def _plural(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def map_s3_error(  # noqa: PLR0911 - one return per situation is the clearest form
    e: Exception, *, action: str, uri: str, settings: Settings, role: Role = TRANSFER
) -> Exception:
    """The :class:`~cellcensus.errors.CellCensusError` for a boto/botocore exception.

    Parameters
    ----------
    e
        What boto3 raised.
    action
        What was being done (``"reading"``, ``"uploading to"``...), for the message.
    uri
        The object or prefix.
    settings
        The settings of the client (endpoint, anonymous) for the advice.
    role
        The client's role (its timeouts and attempts are named in the message).

    Returns
    -------
    Exception
        The mapped error; ``e`` itself when it is not a storage error.
    """
    if isinstance(e, CellCensusError):
        return e
    where = settings.endpoint_url or "AWS"
    limits = limits_for(settings, role)
    if isinstance(
        e, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError
    ):
        return PermissionDeniedError(f"{action} {uri}: {no_credentials_advice()}")
    if isinstance(
        e, botocore.exceptions.ConnectTimeoutError | botocore.exceptions.ReadTimeoutError
    ):
        which, seconds, var = (
            ("connect", limits.connect_timeout, "CONNECT_TIMEOUT")
            if isinstance(e, botocore.exceptions.ConnectTimeoutError)
            else ("read", limits.read_timeout, "READ_TIMEOUT")
        )
        return unreachable_error(
            f"{action} {uri}: the S3 endpoint {where} did not answer within the {which} timeout "
            f"of {seconds:g} s ({_plural(limits.attempts)}); retry when it is responsive, or "
            f"raise CELLCENSUS_S3_{var} (seconds); re-running a transfer resumes"
        )
    if isinstance(e, botocore.exceptions.EndpointConnectionError):
        return unreachable_error(
            f"{action} {uri}: cannot connect to the S3 endpoint {where} "
            f"({type(e).__name__}, {_plural(limits.attempts)}); check the endpoint URL "
            "(--endpoint-url, CELLCENSUS_S3_ENDPOINT_URL or AWS_ENDPOINT_URL), the network, "
            "and that the server is running"
        )
    if isinstance(e, botocore.exceptions.ClientError):
        code, status = client_error_code(e)
        if code in ("PreconditionFailed", "412") or status == 412:
            return PreconditionFailedError(f"{action} {uri}: precondition failed")
        if code == "NoSuchBucket":
            return NotFoundError(
                f"{action} {uri}: the bucket does not exist; check the bucket name (create it "
                "before publishing)"
            )
        if code in NOT_FOUND_CODES or status == 404:
            return NotFoundError(f"{action} {uri}: {uri} does not exist ({code or status})")
        if status == 403 or code in ACCESS_DENIED_CODES:
            how = (
                "access denied to an unsigned request: set credentials "
                f"({CREDENTIALS_HINT}); a private bucket needs credentials"
                if settings.anonymous
                else f"access denied; check the credentials ({CREDENTIALS_HINT}) and that they "
                "may perform this action on the bucket"
            )
            return PermissionDeniedError(f"{action} {uri} was refused ({code or status}): {how}")
        detail = str(e.response.get("Error", {}).get("Message", ""))
        return CellCensusError(
            f"{action} {uri} failed: S3 error {code or status}" + (f": {detail}" if detail else "")
        )
    if isinstance(
        e,
        botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ResponseStreamingError
        | botocore.exceptions.IncompleteReadError
        | urllib3.exceptions.HTTPError,
    ):
        return unreachable_error(
            f"{action} {uri}: the connection to the S3 endpoint {where} was lost "
            f"({type(e).__name__}); retry when it is back: re-running a transfer resumes"
        )
    if isinstance(e, botocore.exceptions.BotoCoreError):
        return CellCensusError(f"{action} {uri} failed: {type(e).__name__}")
    return e
