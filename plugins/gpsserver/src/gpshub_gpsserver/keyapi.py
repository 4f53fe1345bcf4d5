"""``KeyApi``: the documented GPS-Server.net user API ("HTTP API 1.3").

Every call is ``GET {base}/api/api.php?api=user&ver=1.0&key=<key>&cmd=CMD,arg,...``.  The
key has to be in the query string (the API takes it nowhere else); the hub strips query
strings from httpx's log records, and nothing here logs a URL.  There is no login and the
key does not expire.

Answers are JSON (MySQL string values) or, on any error, HTTP 200 with a plain-text body:

* ``ERROR: wrong API key`` -> ``InvalidAuth``;
* ``ERROR: API call limit exceeded`` (the per-user cap the operator sets) ->
  ``RateLimited`` with ``retry_after`` = the ``call_limit_retry_s`` option;
* ``ERROR: no permission to access this IMEI`` -> ``NoPermission`` (the device is skipped);
* any other ``ERROR: …`` -> ``UpdateFailed`` quoting it;
* an empty body (the server's answer to a request missing ``api``/``key``/``cmd``) ->
  ``UpdateFailed``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gpshub_gpsserver.api import NoPermission
from gpshub_gpsserver.parse import (
    BadShape,
    Location,
    format_time,
    parse_locations,
    parse_objects,
    parse_rows,
)
from gpshub_gpsserver.transport import Transport, decode_json
from hub.errors import InvalidAuth, RateLimited, UpdateFailed
from hub.fix import PositionFix

PATH = "/api/api.php"
WRONG_KEY = "wrong api key"
CALL_LIMIT = "api call limit exceeded"
NO_PERMISSION = "no permission to access this imei"


def command(name: str, *args: str) -> str:
    """A ``cmd`` value: arguments with a comma or a quote are double-quoted (the server
    splits with ``str_getcsv``)."""
    parts = [name]
    for arg in args:
        if any(c in arg for c in ',"'):
            arg = '"' + arg.replace('"', '""') + '"'
        parts.append(arg)
    return ",".join(parts)


class KeyApi:
    """The user API with one key (see the module docstring)."""

    mode = "API key"

    def __init__(self, transport: Transport, key: str, *, call_limit_retry_s: float) -> None:
        self.transport = transport
        self._key = key
        self.call_limit_retry_s = call_limit_retry_s

    @property
    def host(self) -> str:
        return self.transport.host

    def begin_cycle(self, max_requests: int | None = None) -> None:
        """The key has no session: only the request budget starts again."""
        self.transport.begin_cycle(max_requests)

    @property
    def requests_left(self) -> int | None:
        return self.transport.left

    async def call(self, name: str, *args: str) -> object:
        """One command; its decoded JSON, or the mapped error."""
        params = [
            ("api", "user"),
            ("ver", "1.0"),
            ("key", self._key),
            ("cmd", command(name, *args)),
        ]
        response = await self.transport.request("GET", PATH, params=params)
        host = self.host
        text = response.content.strip()
        if not text:
            raise UpdateFailed(f"GPS-Server.net at {host} sent an empty answer to {name}")
        if text[:6].upper() == b"ERROR:":
            raise self._error(text.decode("utf-8", "replace")[6:].strip()[:200], name)
        return decode_json(response, name, host)

    def _error(self, message: str, name: str) -> Exception:
        lower = message.lower()
        if WRONG_KEY in lower:
            return InvalidAuth(
                "GPS-Server.net rejected the API key (ERROR: wrong API key): copy it again from"
                " the web interface's user settings"
            )
        if CALL_LIMIT in lower:
            return RateLimited(
                "GPS-Server.net: API call limit exceeded for this user",
                retry_after=self.call_limit_retry_s,
            )
        if NO_PERMISSION in lower:
            return NoPermission(f"GPS-Server.net: {message}")
        return UpdateFailed(f"GPS-Server.net refused {name}: ERROR: {message}")

    async def objects(self) -> list[Location]:
        body = await self.call("USER_GET_OBJECTS")
        try:
            return parse_objects(body)
        except BadShape as exc:
            raise UpdateFailed(f"GPS-Server.net sent an unusable object list: {exc}") from None

    async def locations(self) -> dict[str, Location]:
        body = await self.call("OBJECT_GET_LOCATIONS", "*")
        try:
            return parse_locations(body)
        except BadShape as exc:
            raise UpdateFailed(f"GPS-Server.net sent unusable locations: {exc}") from None

    async def messages(self, imei: str, start: datetime, end: datetime) -> list[PositionFix]:
        body = await self.call(
            "OBJECT_GET_MESSAGES", imei, format_time(start, UTC), format_time(end, UTC)
        )
        try:
            return parse_rows(body)
        except BadShape as exc:
            raise UpdateFailed(f"GPS-Server.net sent unusable messages: {exc}") from None
