"""Keep credentials out of log output and error messages.

Libraries log more than they should at DEBUG: botocore writes the canonical request of every
signed call, which carries the session token (``x-amz-security-token``). The command line's log
handler gets :class:`SecretFilter`, which replaces every credential cellcensus knows of (the
secret keys and session tokens of the settings it resolved, and those in the usual environment
variables) and every security-token header by ``<redacted>``; :func:`redact` does the same to a
string (error messages).
"""

from __future__ import annotations

import logging
import os
import re
import threading

__all__ = ["SecretFilter", "redact", "register_secret"]

REDACTED = "<redacted>"
#: Shorter values are not replaced (they would match ordinary text).
MIN_SECRET_CHARS = 8
_ENV_SECRETS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "CELLCENSUS_S3_SECRET_ACCESS_KEY",
    "CELLCENSUS_S3_SESSION_TOKEN",
)
_TOKEN_HEADER = re.compile(
    r"(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)([^'\"\s,}]+)", re.IGNORECASE
)
_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a credential so that :func:`redact` hides it (values < 8 characters ignored)."""
    if value and len(value) >= MIN_SECRET_CHARS:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """``text`` with every known credential and security-token header value replaced."""
    with _lock:
        secrets = set(_known)
    secrets.update(
        v for name in _ENV_SECRETS if len(v := os.environ.get(name, "")) >= MIN_SECRET_CHARS
    )
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _TOKEN_HEADER.sub(lambda m: m.group(1) + REDACTED, text)


class SecretFilter(logging.Filter):
    """A handler filter that redacts credentials from every record it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message if it holds a credential; never drops a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        return True
