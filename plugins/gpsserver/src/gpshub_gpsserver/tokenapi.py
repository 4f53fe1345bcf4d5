"""``TokenApi``: the "GPS-Server.net v4" email-and-password flow with a Bearer token.

**Inferred, not documented.**  One third-party adapter for a v4 white-label server is the
only evidence of this flow (reference section 5.3); everything it assumes is in this module,
so it is easy to adjust when a real server differs:

* login: ``POST {base}/api/v1/endpoints/auth.php`` (form ``grant_type=password``,
  ``username``, ``password``, ``client_id`` when set) answers
  ``{"data": {"access_token": "…", "expires_in": N}}``, where ``N`` is either an epoch
  (a value above 10^9) or a number of seconds; without it the token is kept an hour;
* ``GET …/locations.php?imei=*&sensors=true`` and
  ``GET …/history.php?imei=..&from=..&to=..&sensors=true`` with
  ``Authorization: Bearer <token>``, answering ``{"data": …}`` (locations keyed by IMEI;
  history as the message rows of ``OBJECT_GET_MESSAGES``);
* ``dt_tracker`` may be local time on such servers: the ``token_api_timezone`` option says
  how to read (and write) times;
* a wrong email or password: HTTP 400/401/403 from ``auth.php`` -> ``InvalidAuth``; a 404
  there (no v4 API on the server) -> ``BadConfig`` asking for the API key;
* an expired or revoked token: HTTP 401 (or an ``error`` naming the token) -> one fresh
  login and one retry; a second refusal -> ``InvalidAuth``.

The token is kept in memory and in the connection's state (encrypted at rest), so a
restart reuses it; it is renewed ``RENEW_MARGIN_S`` before it expires.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

import trio

from gpshub_gpsserver.api import NoPermission
from gpshub_gpsserver.parse import (
    BadShape,
    Location,
    format_time,
    number,
    parse_locations,
    parse_rows,
)
from gpshub_gpsserver.transport import Transport, decode_json
from hub.clock import Clock
from hub.errors import BadConfig, InvalidAuth, UpdateFailed
from hub.fix import PositionFix
from hub.source import StateStore

AUTH_PATH = "/api/v1/endpoints/auth.php"
LOCATIONS_PATH = "/api/v1/endpoints/locations.php"
HISTORY_PATH = "/api/v1/endpoints/history.php"
TOKEN_KEY = "gpsserver.token"  # noqa: S105 - a state key, not a secret
"""Connection state key: ``{"token", "expires_at", "who"}`` (``who`` is a hash telling which
server and account the token belongs to)."""
RENEW_MARGIN_S = 60.0
DEFAULT_TTL_S = 3600.0
EPOCH_THRESHOLD = 1e9
"""An ``expires_in`` above this is an epoch (2001-09-09), not a number of seconds."""
MAX_LOGINS = 2
"""Logins per cycle: the first and one after a refused token."""

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def expiry(expires_in: Any, now: float) -> float:
    """When a token expires (epoch seconds), from ``expires_in`` (an epoch or seconds)."""
    value = number(expires_in)
    if value is None or value <= 0:
        return now + DEFAULT_TTL_S
    return value if value > EPOCH_THRESHOLD else now + value


class TokenRefused(Exception):
    """A data request was refused for the token (HTTP 401 or an ``error`` naming it)."""


class TokenApi:
    """The v4 API as one user (see the module docstring)."""

    mode = "email login"

    def __init__(
        self,
        transport: Transport,
        email: str,
        password: str,
        *,
        client_id: str,
        zone: tzinfo,
        state: StateStore,
        clock: Clock,
        log: Logger,
        context: str = "",
    ) -> None:
        self.transport = transport
        self._email = email
        self._password = password
        self.client_id = client_id
        self.zone = zone
        self.state = state
        self.clock = clock
        self.log = log
        self.context = context
        """Who the connection is, for log lines (``connection 'fleet' (#3)``); no secret."""
        self._who = hashlib.sha256(f"{transport.base}\n{email}\n{password}".encode()).hexdigest()[
            :16
        ]
        self.token: str | None = None
        self.expires_at = 0.0
        self.logins = 0
        self._loaded = False
        self._cycle_logins = 0
        self._refused = False  # the server refused the last token
        self._renewing: str | None = None  # why the login under way replaces a token
        self._lock = trio.Lock()

    @property
    def host(self) -> str:
        return self.transport.host

    def _now(self) -> float:
        return self.clock.now().timestamp()

    def begin_cycle(self, max_requests: int | None = None) -> None:
        self._cycle_logins = 0
        self.transport.begin_cycle(max_requests)

    @property
    def requests_left(self) -> int | None:
        return self.transport.left

    # -- the token ---------------------------------------------------------------------
    async def bearer(self) -> str:
        """A token valid for at least ``RENEW_MARGIN_S``: the cached one, or a new login."""
        async with self._lock:
            if not self._loaded:
                self._loaded = True
                await self._restore()
            if self.token is None or self._now() >= self.expires_at - RENEW_MARGIN_S:
                await self._login(self._renewal())
            assert self.token is not None
            return self.token

    async def _restore(self) -> None:
        saved = await self.state.get(TOKEN_KEY)
        if not isinstance(saved, Mapping) or saved.get("who") != self._who:
            return
        token, expires_at = saved.get("token"), saved.get("expires_at")
        if isinstance(token, str) and token and isinstance(expires_at, int | float):
            self.token, self.expires_at = token, float(expires_at)
            self.log.debug("reusing the saved GPS-Server.net token")

    def _renewal(self) -> str | None:
        """Why a login is due, when it renews a token (``None``: the first login)."""
        if self._refused:
            return "the server refused the token"
        if self.token is None:
            return self._renewing  # a renewal whose login failed is still one
        if self._now() >= self.expires_at:
            return "the token expired"
        return f"the token expires in {max(self.expires_at - self._now(), 0):.0f} s"

    async def _login(self, renewal: str | None) -> None:
        """Log in; ``renewal`` says why a token is replaced (logged at INFO), ``None`` for
        the first login of this instance (DEBUG)."""
        self.token, self._renewing = None, renewal
        if self._cycle_logins >= MAX_LOGINS:
            raise InvalidAuth("GPS-Server.net keeps refusing fresh tokens for this account")
        self._cycle_logins += 1
        self.logins += 1
        form = {"grant_type": "password", "username": self._email, "password": self._password}
        if self.client_id:
            form["client_id"] = self.client_id
        response = await self.transport.request(
            "POST", AUTH_PATH, data=form, accept=(400, 401, 403, 404)
        )
        status = response.status_code
        if status in (400, 401, 403):
            raise InvalidAuth(
                f"GPS-Server.net rejected the email or password (HTTP {status} from auth.php)"
            )
        if status == 404:
            raise BadConfig(
                "credentials.api_key",
                f"the server at {self.host} has no email login API (auth.php: HTTP 404);"
                " enter the user API key from its web interface's user settings",
            )
        body = _data(decode_json(response, "the login", self.host))
        token = body.get("access_token") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            if isinstance(body, Mapping) and body.get("error"):
                raise InvalidAuth("GPS-Server.net rejected the email or password")
            raise UpdateFailed("GPS-Server.net's login answer has no access_token")
        now = self._now()
        self.token, self.expires_at = token, expiry(body.get("expires_in"), now)
        await self.state.set(
            TOKEN_KEY, {"token": token, "expires_at": self.expires_at, "who": self._who}
        )
        self._refused, self._renewing = False, None
        where = f"{self.context}: " if self.context else ""
        valid = self.expires_at - now
        if renewal is None:
            self.log.debug("%slogged in to GPS-Server.net at %s", where, self.host)
        else:
            self.log.info(
                "%sGPS-Server.net at %s: logged in again (%s); the new token is valid for %.0f s",
                where,
                self.host,
                renewal,
                valid,
            )

    async def _drop(self, token: str) -> None:
        async with self._lock:
            if self.token == token:
                self.token, self._refused = None, True
                await self.state.delete(TOKEN_KEY)

    # -- calls -------------------------------------------------------------------------
    async def get(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        """``GET`` with the token; a refused token is renewed once and the call repeated."""
        token = await self.bearer()
        try:
            return await self._get(path, params, token)
        except TokenRefused:
            await self._drop(token)
        token = await self.bearer()
        try:
            return await self._get(path, params, token)
        except TokenRefused:
            await self._drop(token)
            raise InvalidAuth("GPS-Server.net refused a fresh token for this account") from None

    async def _get(self, path: str, params: Sequence[tuple[str, str]], token: str) -> Any:
        response = await self.transport.request(
            "GET",
            path,
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            accept=(401, 403),
        )
        status = response.status_code
        name = path.rsplit("/", 1)[-1]
        if status == 401:
            raise TokenRefused
        if status == 403:
            raise NoPermission(f"GPS-Server.net refused {name} (HTTP 403): no permission")
        body = decode_json(response, name, self.host)
        error = body.get("error") if isinstance(body, Mapping) else None
        if error:
            text = str(error)[:200]
            if "token" in text.lower():
                raise TokenRefused
            if "permission" in text.lower():
                raise NoPermission(f"GPS-Server.net: {text}")
            raise UpdateFailed(f"GPS-Server.net refused {name}: {text}")
        return _data(body)

    # -- the interface -----------------------------------------------------------------
    async def objects(self) -> list[Location]:
        return list((await self._locations(with_remote=True)).values())

    async def locations(self) -> dict[str, Location]:
        return await self._locations(with_remote=False)

    async def _locations(self, *, with_remote: bool) -> dict[str, Location]:
        body = await self.get(LOCATIONS_PATH, [("imei", "*"), ("sensors", "true")])
        try:
            return parse_locations(body, self.zone, with_remote=with_remote)
        except BadShape as exc:
            raise UpdateFailed(f"GPS-Server.net sent unusable locations: {exc}") from None

    async def messages(self, imei: str, start: datetime, end: datetime) -> list[PositionFix]:
        params = [
            ("imei", imei),
            ("from", format_time(start, self.zone)),
            ("to", format_time(end, self.zone)),
            ("sensors", "true"),
        ]
        body = await self.get(HISTORY_PATH, params)
        try:
            return parse_rows(body, self.zone)
        except BadShape as exc:
            raise UpdateFailed(f"GPS-Server.net sent unusable history: {exc}") from None


def _data(body: Any) -> Any:
    """The ``data`` member of a v4 answer (or the answer itself when it has none)."""
    if isinstance(body, Mapping) and "data" in body:
        return body["data"]
    return body
