"""The HTTP calls to a Traccar server and the mapping of its answers to gpshub errors.

Every request carries HTTP Basic credentials (no session is kept: Traccar checks them on
each call) and ``Accept: application/json``; nothing secret goes into a URL.  Errors
(``api/ResourceErrorHandler.java``, ``api/security/SecurityRequestFilter.java``) are
mapped by ``hub.upstream_http`` (401 ``InvalidAuth``; 429 from a reverse proxy
``RateLimited`` with ``Retry-After``; 5xx, timeouts, refused connections
``CannotConnect``; a redirect ``BadConfig``; a 200 that is not JSON, a proxy's HTML page or
a cut body, ``UpdateFailed``) except Traccar's own:

* 400 — a Java stack trace as text/plain (``java.lang.SecurityException: Operation
  restricted``): ``TraccarRequestError`` (an ``UpdateFailed``) with its first line;
* 403 — Traccar sends none, a proxy may: ``Forbidden`` (an ``UpdateFailed``);
* 404 — also a query parameter that does not convert: ``UpdateFailed``;
* 414 — too many device ids in the URL: ``BadConfig`` naming ``options.batch_size``.

``GET /api/devices?all=true`` lists every device of the server to an administrator and a
user's own devices to anyone else on Traccar 5 and later; Traccar 4 refuses it (400
``Manager access required``) to a user who is neither administrator nor manager, and a
proxy may answer 403.  ``devices()`` then asks for the user's own devices (no ``all``)
and keeps doing so for the client's life, saying so once at INFO.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx

from hub.errors import BadConfig, UpdateFailed
from hub.upstream_http import decode_json, first_line, upstream_fetch

JSON_HEADERS = {"Accept": "application/json"}
RESTRICTED = "Operation restricted"
ACCESS_DENIED = "Device access denied"
PERIOD_LIMIT = "Time period exceeds the limit"


class Forbidden(UpdateFailed):
    """HTTP 403: Traccar itself does not send it, a proxy in front of it may."""


class BrokenAnswer(UpdateFailed):
    """A JSON answer whose body does not decode (cut short): the server is a JSON server,
    the transfer went wrong; unlike an answer that is not JSON at all, not a sign of a
    wrong address."""


class TraccarRequestError(UpdateFailed):
    """Traccar answered 400: ``first_line`` is the exception line of its stack trace."""

    def __init__(self, first_line: str) -> None:
        super().__init__(f"Traccar refused the request: {first_line}")
        self.first_line = first_line

    @property
    def reports_disabled(self) -> bool:
        """The user (or the server) has ``disableReports`` set."""
        return RESTRICTED in self.first_line

    @property
    def access_denied(self) -> bool:
        """A device in the request is not (or no longer) visible to the user."""
        return ACCESS_DENIED in self.first_line

    @property
    def period_too_long(self) -> bool:
        """The period is longer than the server's ``report.periodLimit``."""
        return PERIOD_LIMIT in self.first_line


def wire_time(t: datetime) -> str:
    """A query-string time for Traccar: UTC, milliseconds, ``Z`` (no ``+`` to escape)."""
    t = t.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def floor_ms(t: datetime) -> datetime:
    """``t`` cut to whole milliseconds: Traccar's precision, so what we send is exact."""
    return t - timedelta(microseconds=t.microsecond % 1000)


class TraccarClient:
    """The calls gpshub makes to one Traccar server, as one user."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        username: str,
        password: str,
        *,
        url_field: str = "credentials.server_url",
        timeout_s: float = 30.0,
        now: Callable[[], datetime] | None = None,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.base = base.removesuffix("/api")
        self.http = http
        self.url_field = url_field
        self.timeout_s = timeout_s
        self._auth = httpx.BasicAuth(username, password)
        self._now = now or (lambda: datetime.now(UTC))
        self.log = log or logging.getLogger(__name__)
        self.own_devices_only = False
        """``/api/devices?all=true`` was refused: the user's own devices are listed."""

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc or self.base

    async def get(
        self,
        path: str,
        params: Sequence[tuple[str, str]] | None = None,
        *,
        auth: bool = True,
    ) -> Any:
        """``GET base + path``; the decoded JSON, or the mapped error (``hub.upstream_http``
        maps what is common to every platform; Traccar's 400, 403, 404 and 414 here)."""
        response = await upstream_fetch(
            self.http,
            "GET",
            f"{self.base}{path}",
            upstream="Traccar",
            now=self._now,
            timeout_s=self.timeout_s,
            url_field=self.url_field,
            accept=(400, 403, 404, 414),
            params=list(params or ()),
            headers=JSON_HEADERS,
            auth=self._auth if auth else None,
        )
        status = response.status_code
        if status == 400:
            raise TraccarRequestError(first_line(response.text) or "HTTP 400")
        if status == 403:
            raise Forbidden(f"Traccar at {self.host} refused {path} (HTTP 403)")
        if status == 414:
            raise BadConfig("options.batch_size", "the request URL is too long for the server")
        if status == 404:
            raise UpdateFailed(
                f"Traccar at {self.host} answered 404 for {path}: "
                + (first_line(response.text) or "is this a Traccar server?")
            )
        try:
            return decode_json(response, "Traccar", url_field=self.url_field)
        except UpdateFailed as exc:
            if "json" in response.headers.get("content-type", "").lower():
                raise BrokenAnswer(str(exc)) from None
            raise

    # -- the endpoints -----------------------------------------------------------------
    async def server(self) -> Any:
        """``GET /api/server`` (no auth needed): the server's settings and version."""
        return await self.get("/api/server", auth=False)

    async def devices(self) -> Any:
        """``GET /api/devices?all=true``: every device the user may see (all, for an admin);
        once that is refused, ``GET /api/devices``: the user's own devices."""
        if self.own_devices_only:
            return await self.get("/api/devices")
        try:
            return await self.get("/api/devices", [("all", "true")])
        except (TraccarRequestError, Forbidden) as exc:
            refusal = str(exc)
        body = await self.get("/api/devices")  # if this fails too, its error is the one
        self.own_devices_only = True
        self.log.info(
            "Traccar refuses the list of all devices to this user (%s): listing the user's own"
            " devices from now on",
            refusal,
        )
        return body

    async def route(self, device_ids: Sequence[int], start: datetime, end: datetime) -> Any:
        """``GET /api/reports/route``: the positions of ``device_ids`` with ``start <= fixTime
        <= end``, each device's in fixTime order, one device after the other."""
        params = [("deviceId", str(i)) for i in device_ids]
        params += [("from", wire_time(start)), ("to", wire_time(end))]
        return await self.get("/api/reports/route", params)

    async def latest(self) -> Any:
        """``GET /api/positions`` without parameters: the latest position of every device."""
        return await self.get("/api/positions")
