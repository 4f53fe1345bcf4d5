"""The HTTP calls to 3D Tracking, its session, and the mapping of its answers to errors.

``Authentication/UserAuthenticate`` trades the username and password for a ``UserIdGuid``
and a ``SessionId``, which every other call carries in its query string (the API offers no
header).  The session is kept in memory and in the connection's encrypted state, with its
creation time, so a restart reuses it; it is renewed once older than ``max_age_s``.  Each
renewal (by age, or after an answer that looks like an expired session) logs one INFO line
naming the connection, the user and the host, never the password or the session ids.

Errors: 3D Tracking answers HTTP 200 with ``Status.Result`` other than ``"ok"`` and an
``ErrorCode``/``Message``.  One that looks like an expired or invalid session (see
``wire.SESSION_ERROR_CODES``/``wire.SESSION_MESSAGE``) gets one fresh login and one retry
of the request; a refused login is ``InvalidAuth`` (never a login loop); permission denied
and any other error envelope are ``UpdateFailed``.  HTTP 429 is ``RateLimited``
(``Retry-After``), 5xx, timeouts and unreachable hosts ``CannotConnect``, an answer that is
not JSON ``UpdateFailed``.  No URL is ever logged or put in a message: it carries secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from gpshub_tracking3d import wire
from hub.errors import InvalidAuth, UpdateFailed
from hub.source import StateStore
from hub.upstream_http import upstream_fetch_json

SESSION_KEY = "session"
"""The connection-state key of the cached session."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in session: the ids every call carries and when it was made (epoch s)."""

    user_id_guid: str
    session_id: str
    created: float
    username: str

    def as_state(self) -> dict[str, Any]:
        return {
            "user_id_guid": self.user_id_guid,
            "session_id": self.session_id,
            "created": self.created,
            "username": self.username,
        }

    @classmethod
    def from_state(cls, value: Any) -> Session | None:
        if not isinstance(value, dict):
            return None
        guid, sid = value.get("user_id_guid"), value.get("session_id")
        created, username = value.get("created"), value.get("username")
        if not (isinstance(guid, str) and isinstance(sid, str) and isinstance(username, str)):
            return None
        if isinstance(created, bool) or not isinstance(created, int | float):
            return None
        return cls(guid, sid, float(created), username)


@dataclass(frozen=True, slots=True)
class Envelope:
    """``Status`` of an answer: whether it is ok, its code and message, and the payload."""

    ok: bool
    code: int | None
    message: str
    result: Any


class ApiError(UpdateFailed):
    """3D Tracking answered with an error envelope (``code``, ``message``)."""

    def __init__(self, text: str, code: int | None, message: str) -> None:
        super().__init__(text)
        self.code = code
        self.message = message


def envelope(body: Any) -> Envelope:
    """Read the status of an answer: ``{"Status": {...}, "Result": ...}`` or the flat
    ``{"Result": "ok", "ErrorCode": ..., "Message": ...}``."""
    if not isinstance(body, dict):
        raise UpdateFailed(f"3D Tracking sent {type(body).__name__} instead of a JSON object")
    status = body.get("Status")
    if isinstance(status, dict):
        result_text, code, message = (
            status.get("Result"),
            status.get("ErrorCode"),
            status.get("Message"),
        )
        payload = body.get("Result")
    elif isinstance(body.get("Result"), str) and ("ErrorCode" in body or "Message" in body):
        result_text, code, message = body.get("Result"), body.get("ErrorCode"), body.get("Message")
        payload = None
    else:
        raise UpdateFailed("3D Tracking sent an answer without a Status")
    ok = isinstance(result_text, str) and result_text.strip().lower() == wire.OK
    number = _code(code)
    return Envelope(ok, number, message.strip() if isinstance(message, str) else "", payload)


def _code(code: Any) -> int | None:
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code.strip())
    return None


class Tracking3DClient:
    """The calls gpshub makes to 3D Tracking as one user, with its session."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        username: str,
        password: str,
        *,
        state: StateStore,
        now: Callable[[], datetime],
        max_age_s: float = 84_600.0,
        session_codes: Collection[int] = wire.SESSION_ERROR_CODES,
        timeout_s: float = 30.0,
        url_field: str = "options.base_url",
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
        context: str = "",
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.username = username
        self._password = password
        self.state = state
        self._now = now
        self.max_age_s = max_age_s
        self.session_codes = frozenset(session_codes)
        self.timeout_s = timeout_s
        self.url_field = url_field
        self.log = log
        self.context = context or "connection"
        """How log lines name the connection (``'fleet' (#3)``)."""
        self._session: Session | None = None
        self._loaded = False
        self.logins = 0

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc or self.base

    # -- the session -------------------------------------------------------------------
    def _fresh(self, session: Session | None) -> bool:
        if session is None or session.username != self.username:
            return False
        age = self._now().timestamp() - session.created
        return 0 <= age < self.max_age_s

    async def session(self) -> Session:
        """The session to use: the one in memory, else the saved one, else a new login."""
        return (await self._current())[0]

    async def _current(self) -> tuple[Session, bool]:
        """The session to use, and whether it was made just now (not worth a retry)."""
        if not self._loaded:
            self._loaded = True
            if self._session is None:
                self._session = Session.from_state(await self.state.get(SESSION_KEY))
        old = self._session
        if old is not None and self._fresh(old):
            return old, False
        if old is not None and old.username == self.username:
            age_h = (self._now().timestamp() - old.created) / 3600
            self.log.info(
                "3D Tracking %s: the session of %r at %s is %.1f h old; logging in again",
                self.context,
                self.username,
                self.host,
                age_h,
            )
        return await self.login(), True

    async def login(self) -> Session:
        """``UserAuthenticate``: a new session, saved; ``InvalidAuth`` when refused."""
        self.logins += 1
        self._session = None
        params = [("UserName", self.username), ("Password", self._password)]
        body = await self._send(wire.LOGIN_PATH, params, method=wire.LOGIN_METHOD)
        status = envelope(body)
        if not status.ok:
            reason = self._scrub(status.message) or f"error code {status.code}"
            raise InvalidAuth(f"3D Tracking refused the login of {self.username!r}: {reason}")
        result = status.result if isinstance(status.result, dict) else {}
        guid, sid = result.get("UserIdGuid"), result.get("SessionId")
        if not (isinstance(guid, str) and guid and isinstance(sid, str) and sid):
            raise UpdateFailed("3D Tracking's login answer has no UserIdGuid/SessionId")
        session = Session(guid, sid, self._now().timestamp(), self.username)
        self._session = session
        await self.state.set(SESSION_KEY, session.as_state())
        self.log.debug("3D Tracking %s: new session for %r", self.context, self.username)
        return session

    async def forget_session(self) -> None:
        self._session = None
        self._loaded = True
        await self.state.delete(SESSION_KEY)

    def _is_session_error(self, status: Envelope) -> bool:
        if status.code == wire.PERMISSION_DENIED:
            return False
        if status.code is not None and status.code in self.session_codes:
            return True
        return bool(status.message) and wire.SESSION_MESSAGE.search(status.message) is not None

    # -- calls -------------------------------------------------------------------------
    async def call(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """``path`` with the session's ids; its ``Result``, or the mapped error.  A session
        error gets one fresh login and one retry."""
        session, fresh_login = await self._current()
        status = await self._call_with(session, path, params)
        if not status.ok and self._is_session_error(status) and not fresh_login:
            self.log.info(
                "3D Tracking %s: %s answered %s for %s, taken as an expired session;"
                " logging in again as %r",
                self.context,
                self.host,
                self._describe(status),
                path,
                self.username,
            )
            session = await self.login()
            status = await self._call_with(session, path, params)
            if not status.ok and self._is_session_error(status):
                raise ApiError(
                    f"3D Tracking refused a fresh session for {path}: {self._describe(status)}",
                    status.code,
                    status.message,
                )
        if not status.ok:
            if status.code == wire.PERMISSION_DENIED:
                raise ApiError(
                    f"3D Tracking denied permission for {path} (error {status.code}): the"
                    f" account {self.username!r} may not read this",
                    status.code,
                    status.message,
                )
            raise ApiError(
                f"3D Tracking answered an error for {path}: {self._describe(status)}",
                status.code,
                status.message,
            )
        return status.result

    async def _call_with(
        self, session: Session, path: str, params: Sequence[tuple[str, str]]
    ) -> Envelope:
        query = [("UserIdGuid", session.user_id_guid), ("SessionId", session.session_id)]
        return envelope(await self._send(path, [*query, *params]))

    def _describe(self, status: Envelope) -> str:
        text = self._scrub(status.message) or "no message"
        return f"{text} (error {status.code})" if status.code is not None else text

    def _scrub(self, text: str) -> str:
        for secret in (self._password, *(self._session_secrets())):
            if secret and len(secret) >= 3:
                text = text.replace(secret, "[redacted]")
        return text[:300]

    def _session_secrets(self) -> tuple[str, ...]:
        s = self._session
        return () if s is None else (s.session_id,)

    async def _send(
        self, path: str, params: Sequence[tuple[str, str]], *, method: str = "GET"
    ) -> Any:
        """The JSON of ``base/path`` (``hub.upstream_http`` maps what is not a 200 answer;
        the JSON is read whatever its content type says)."""
        return await upstream_fetch_json(
            self.http,
            method,
            f"{self.base}/{path}",
            upstream="3D Tracking",
            now=self._now,
            timeout_s=self.timeout_s,
            url_field=self.url_field,
            lenient=True,
            params=list(params),
            headers={"Accept": "application/json"},
        )

    # -- the endpoints -----------------------------------------------------------------
    async def units(self) -> Any:
        """``Units/Unit/List``: every unit of the account."""
        return await self.call(wire.UNITS_PATH)

    async def positions(self, start_id: int | None) -> Any:
        """``Data/PositionsList``: the account's records from ``start_id`` on (without it,
        about the last 24 h), and the next ``StartId``."""
        params = list(wire.FEED_PARAMS)
        if start_id is not None:
            params.append(("StartId", str(start_id)))
        return await self.call(wire.FEED_PATH, params)

    async def readings(self, start_id: int | None) -> Any:
        """``Data/SensorReadingsList``: the account's sensor readings from ``start_id`` on
        (without it, about the last 24 h), and the next ``StartId``."""
        params = [] if start_id is None else [("StartId", str(start_id))]
        return await self.call(wire.READINGS_PATH, params)
