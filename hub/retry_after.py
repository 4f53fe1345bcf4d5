"""``Retry-After``: the HTTP header telling a client how long to wait (RFC 9110 §10.2.3).

Its value is delta-seconds (``120``) or an HTTP date (``Wed, 21 Oct 2026 07:28:00 GMT``).
Sinks and source plugins read it the same way, with this one parser.
"""

from __future__ import annotations

import email.utils
import math
from datetime import UTC, datetime

import httpx


def parse_retry_after(
    value: str | None, now: datetime, *, cap: float | None = None
) -> float | None:
    """Seconds to wait from ``now``: never negative, at most ``cap`` when given; ``None``
    when the header is absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    seconds = max(seconds, 0.0)
    return seconds if cap is None else min(seconds, cap)


def response_retry_after(
    response: httpx.Response, now: datetime, *, cap: float | None = None
) -> float | None:
    """``Retry-After`` of ``response`` in seconds (see ``parse_retry_after``)."""
    return parse_retry_after(response.headers.get("retry-after"), now, cap=cap)
