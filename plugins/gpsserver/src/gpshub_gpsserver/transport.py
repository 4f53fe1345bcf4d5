"""One HTTP request to a GPS-Server.net server, with the failures both APIs share mapped to
gpshub errors: timeouts, refused connections, 5xx -> ``CannotConnect``; 429 (a proxy's)
-> ``RateLimited``; redirects -> ``BadConfig`` (they are not followed); a blocked address
-> ``BadConfig``.  What a 200 or another 4xx means is each API's business.

Every request counts against the cycle's request budget (``begin_cycle``): once it is
spent, ``request`` raises ``BudgetSpent`` without sending anything.

URLs are never logged here: the key-based API carries its key in the query string.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

from hub.errors import BadConfig, CannotConnect, RateLimited, UpdateFailed
from hub.http_failures import upstream_errors
from hub.retry_after import response_retry_after

REDIRECTS = (301, 302, 303, 307, 308)


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
        self.timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0))
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
    ) -> httpx.Response:
        """``method base+path``; the response unless it is a shared failure."""
        if self.limit is not None and self.used >= self.limit:
            raise BudgetSpent
        self.used += 1
        with upstream_errors(f"GPS-Server.net at {self.host}", self.url_field):
            response = await self.http.request(
                method,
                f"{self.base}{path}",
                params=list(params or ()),
                data=dict(data) if data is not None else None,
                headers=dict(headers or {}),
                timeout=self.timeout,
                follow_redirects=False,
            )
        status = response.status_code
        if status == 429:
            raise RateLimited(
                f"GPS-Server.net at {self.host} is rate limiting (HTTP 429)",
                retry_after=response_retry_after(response, self.now()),
            )
        if status >= 500:
            raise CannotConnect(f"GPS-Server.net at {self.host} answered HTTP {status}")
        if status in REDIRECTS:
            target = urlsplit(response.headers.get("location", "")).netloc or "elsewhere"
            raise BadConfig(
                self.url_field,
                f"the server redirects to {target}: use that address (redirects are not followed)",
            )
        return response


def decode_json(response: httpx.Response, what: str, host: str) -> Any:
    """The JSON of a response, or ``UpdateFailed`` naming ``what`` was asked."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise UpdateFailed(f"GPS-Server.net at {host} sent broken JSON for {what}") from None
