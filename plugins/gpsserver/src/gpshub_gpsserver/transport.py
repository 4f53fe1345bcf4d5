"""One HTTP request to a GPS-Server.net server, sent by the hub's upstream helper
(``hub.upstream_http.upstream_fetch``), which maps what every platform shares: timeouts,
refused connections, 5xx -> ``CannotConnect``; 401/403 -> ``InvalidAuth``; 429 (a
proxy's) -> ``RateLimited`` with its ``Retry-After``; redirects (not followed) and a
blocked address -> ``BadConfig``; another status -> ``UpdateFailed``.  The statuses an API
gives a meaning of its own (the v4 login's 400 and 404, a refused token's 401, a
forbidden IMEI's 403) it lists in ``accept`` and reads itself.

Every request counts against the cycle's request budget (``begin_cycle``): once it is
spent, ``request`` raises ``BudgetSpent`` without sending anything.

URLs are never logged here: the key-based API carries its key in the query string.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from hub.errors import UpdateFailed
from hub.upstream_http import upstream_fetch

UPSTREAM = "GPS-Server.net"


class BudgetSpent(Exception):
    """This cycle's request budget is spent: the request was not sent (not an upstream
    failure: what it would have fetched waits for the next cycle)."""


class Transport:
    """Requests to one server (``base``), mapping what both APIs share."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        *,
        now: Callable[[], datetime],
        url_field: str = "credentials.server_url",
        timeout_s: float = 30.0,
    ) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.url_field = url_field
        self.timeout_s = timeout_s
        self.now = now
        self.used = 0
        """Requests sent since ``begin_cycle``."""
        self.limit: int | None = None

    def begin_cycle(self, limit: int | None = None) -> None:
        """Start counting a new cycle's requests; at most ``limit`` (``None``: no limit)."""
        self.used, self.limit = 0, limit

    @property
    def left(self) -> int | None:
        """Requests this cycle may still send (``None``: no limit)."""
        return None if self.limit is None else max(self.limit - self.used, 0)

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc or self.base

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> httpx.Response:
        """``method base+path``: its 2xx answer (or one of ``accept``), else the error."""
        if self.limit is not None and self.used >= self.limit:
            raise BudgetSpent
        self.used += 1
        return await upstream_fetch(
            self.http,
            method,
            f"{self.base}{path}",
            upstream=UPSTREAM,
            now=self.now,
            timeout_s=self.timeout_s,
            url_field=self.url_field,
            accept=accept,
            params=list(params or ()),
            data=dict(data) if data is not None else None,
            headers=dict(headers or {}),
        )


def decode_json(response: httpx.Response, what: str, host: str) -> Any:
    """The JSON of a response, or ``UpdateFailed`` naming ``what`` was asked.  Unlike
    ``hub.upstream_http.decode_json`` it ignores the content type: the server's PHP may
    send its JSON as ``text/html``."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise UpdateFailed(f"{UPSTREAM} at {host} sent broken JSON for {what}") from None
