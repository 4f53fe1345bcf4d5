"""Standard Webhooks signatures (https://www.standardwebhooks.com).

Every request carries ``webhook-id`` (stable across retries and restarts: the
receiver's de-duplication key), ``webhook-timestamp`` (Unix seconds of this attempt)
and, when the sink signs, ``webhook-signature``: space-separated ``v1,<base64>``
values, each an HMAC-SHA256 of ``{id}.{timestamp}.{body}`` under one of the sink's
secrets (two while a rotated secret is still honoured).  A secret is ``whsec_``
followed by the base64 of 32 random bytes; the HMAC key is those bytes.

A receiver verifies by recomputing the HMAC over the raw body it received, comparing
in constant time with each ``v1,`` value, and refusing timestamps more than five
minutes away from its clock (``verify`` does exactly that).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Mapping

PREFIX = "whsec_"
TOLERANCE_S = 300


class SignatureError(ValueError):
    """A request's signature headers are missing, stale or do not match."""


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError as exc:
        raise ValueError("a webhook secret is whsec_ followed by base64") from exc


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one request."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(sign(s, msg_id, timestamp, body) for s in secrets_)


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> None:
    """Check a received request as a receiver should; raise ``SignatureError`` if not."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    given = lower.get("webhook-signature")
    if not msg_id or not stamp or not given:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise SignatureError("webhook-timestamp is not a whole number of seconds") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_s:
        raise SignatureError("webhook-timestamp is too far from now")
    expected = sign(secret, msg_id, timestamp, body)
    for candidate in given.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate, expected):
            return
    raise SignatureError("no signature matches")
