"""``WialonClient``: the Remote API calls, the session and the mapping of every failure.

Every request is ``POST {base}/wialon/ajax.html`` with ``svc``, ``params`` (JSON) and
``sid`` in the form body — never in the URL, which httpx logs.  The session id (``eid``)
from ``token/login`` is kept in memory and in the connection's state (encrypted), so a
restart within Wialon's 5-minute idle timeout carries on with it instead of logging in.

When a request answers error 1 (invalid session) or 1011 (IP changed / expired), the
client logs in again once and repeats that request; a second failure is ``UpdateFailed``.
A rejected token (error 8 on login) is ``InvalidAuth`` and never retried here: the runner
then waits for new credentials, so a wrong token cannot turn into a storm of failed logins
(Wialon blocks an IP after 10 a minute).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import orjson
import trio

from gpshub_wialon import protocol as p
from hub.clock import Clock
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.source import StateStore
from hub.upstream_http import DEFAULT_TIMEOUT_S, upstream_fetch

SESSION_KEY = "wialon.session"
"""Connection state key: ``{"eid", "base", "token", "used_at", "user"}`` (``token`` is a
hash telling which token the session belongs to)."""
SESSION_IDLE_S = 300.0
"""Wialon ends a session after 5 minutes without requests."""
REUSE_MARGIN_S = 30.0
SAVE_EVERY_S = 60.0
"""How often the session's last use is written to the state (not on every request)."""
MAX_LOGINS = 3
"""Logins within one cycle (poll, browse, test): the first and two after lost sessions."""

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


class BatchTooLarge(UpdateFailed):
    """Wialon answered a whole ``core/batch`` with error 6: it holds too many requests."""


class WialonClient:
    """Calls to one Wialon server with one token (see the module docstring).

    ``url_field`` names the setting the base URL came from, for ``BadConfig``;
    ``context`` names the connection in log messages (never a secret).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        base: str,
        token: str,
        *,
        state: StateStore,
        clock: Clock,
        log: Logger,
        url_field: str = "credentials.server_url",
        context: str = "Wialon",
    ) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.url = self.base + p.AJAX_PATH
        self.url_field = url_field
        self.context = context
        self._token = token
        self._token_key = hashlib.sha256(f"{self.base}\n{token}".encode()).hexdigest()[:16]
        self.state = state
        self.clock = clock
        self.log = log
        self.eid: str | None = None
        self.user: str = ""
        self.logins = 0
        self._loaded = False
        self._used_at = 0.0
        self._saved_at = 0.0
        self._cycle_logins = 0
        self._lock = trio.Lock()

    # -- the session -----------------------------------------------------------------------
    def begin_cycle(self) -> None:
        """Start a new cycle: the budget of logins is renewed."""
        self._cycle_logins = 0

    async def session(self) -> str:
        """The current session id: the one in memory, a saved one still fresh, or a new login."""
        if self.eid is None and not self._loaded:
            self._loaded = True
            await self._restore()
        if self.eid is None:
            await self.login()
        assert self.eid is not None
        return self.eid

    async def _restore(self) -> None:
        saved = await self.state.get(SESSION_KEY)
        if not isinstance(saved, dict) or saved.get("token") != self._token_key:
            return
        eid, used_at = saved.get("eid"), saved.get("used_at")
        if not isinstance(eid, str) or not eid or not isinstance(used_at, int | float):
            return
        idle = self._now() - used_at
        if idle > SESSION_IDLE_S - REUSE_MARGIN_S:  # Wialon has ended it
            self.log.info(
                "%s: the saved Wialon session was idle for %.0f s and has expired; "
                "logging in again",
                self.context,
                idle,
            )
            return
        self.eid, self._used_at, self._saved_at = eid, float(used_at), float(used_at)
        self.user = str(saved.get("user") or "")
        self.log.debug("reusing the saved Wialon session")

    async def login(self) -> dict[str, Any]:
        """``token/login``: a fresh session.  Error 8 is ``InvalidAuth``, 4 ``BadConfig``."""
        async with self._lock:
            self.eid = None
            if self._cycle_logins >= MAX_LOGINS:
                raise UpdateFailed("Wialon keeps ending the session; giving up until next time")
            self._cycle_logins += 1
            self.logins += 1
            answer = await self._post(
                p.LOGIN, {"token": self._token, "fl": p.LOGIN_BASIC | p.LOGIN_USER}, None
            )
            code = error_code(answer)
            if code == p.ERR_BAD_LOGIN:
                raise InvalidAuth(
                    "Wialon rejected the API token (error 8): it is wrong, expired or was "
                    "deleted; create a new one in Wialon under User Settings → API"
                )
            if code == p.ERR_INVALID_INPUT:
                raise BadConfig(
                    "credentials.token",
                    "Wialon refused the token as invalid input (error 4): paste the whole "
                    "API token (72 characters)",
                )
            if code == p.ERR_ACCESS_DENIED:
                raise InvalidAuth("Wialon denied access to this token (error 7)")
            if code is not None:
                raise map_error(code, answer, p.LOGIN)
            eid = answer.get("eid") if isinstance(answer, dict) else None
            if not isinstance(eid, str) or not eid:
                raise UpdateFailed("Wialon's login answer has no session id (eid)")
            user = answer.get("user")
            name = user.get("nm") if isinstance(user, dict) else None
            self.user = str(name or answer.get("au") or "")
            self.eid = eid
            self._used_at = self._now()
            await self._save()
            self.log.debug("logged in to Wialon as %r", self.user)
            return answer

    async def logout(self) -> None:
        """``core/logout`` (best effort) and forget the session."""
        eid, self.eid = self.eid, None
        if eid is None:
            return
        try:
            await self._post(p.LOGOUT, {}, eid)
        except Exception as exc:  # the session idles out anyway
            self.log.debug("Wialon logout failed: %s", exc)
        await self.state.delete(SESSION_KEY)

    async def _save(self) -> None:
        self._saved_at = self._used_at
        await self.state.set(
            SESSION_KEY,
            {
                "eid": self.eid,
                "token": self._token_key,
                "used_at": self._used_at,
                "user": self.user,
            },
        )

    def _now(self) -> float:
        return self.clock.now().timestamp()

    # -- calls -----------------------------------------------------------------------------
    async def call(self, svc: str, params: Any) -> Any:
        """One request in the session; a lost session is renewed once and the request
        repeated.  An error answer raises the matching hub error."""
        eid = await self.session()
        answer = await self._post(svc, params, eid)
        code = error_code(answer)
        if code in p.SESSION_ERRORS:
            assert code is not None
            self.eid = None
            self.log.info(
                "%s: Wialon ended the session (%s); logging in again",
                self.context,
                p.describe_error(code),
            )
            await self.login()
            assert self.eid is not None
            answer = await self._post(svc, params, self.eid)
            code = error_code(answer)
            if code in p.SESSION_ERRORS:
                self.eid = None
                raise UpdateFailed(
                    f"Wialon refused a fresh session for {svc} ({p.describe_error(code or 0)})"
                )
        if code is not None:
            raise map_error(code, answer, svc)
        self._used_at = self._now()
        if self._used_at - self._saved_at >= SAVE_EVERY_S:
            await self._save()
        return answer

    async def batch(self, calls: Sequence[tuple[str, Any]]) -> list[Any]:
        """``core/batch`` with ``flags: 0`` (one entry's error does not stop the others):
        one answer per call, in order; per-entry errors stay in the list as
        ``{"error": N}``."""
        params = {"params": [{"svc": svc, "params": prm} for svc, prm in calls], "flags": 0}
        answer = await self.call(p.BATCH, params)
        if not isinstance(answer, list) or len(answer) != len(calls):
            raise UpdateFailed(f"Wialon's batch answer is not a list of {len(calls)} results")
        return answer

    async def _post(self, svc: str, params: Any, sid: str | None) -> Any:
        form = {"svc": svc, "params": orjson.dumps(params).decode()}
        if sid is not None:
            form["sid"] = sid
        response = await upstream_fetch(
            self.http,
            "POST",
            self.url,
            upstream="Wialon",
            now=self.clock.now,
            timeout_s=getattr(self.http, "timeout_s", DEFAULT_TIMEOUT_S),
            url_field=self.url_field,
            accept=(403, 404),
            data=form,
        )
        return decode(response, self.url_field)


def decode(response: httpx.Response, url_field: str = "credentials.server_url") -> Any:
    """The JSON of a Wialon answer that ``hub.upstream_http`` let through: its 2xx, or
    the statuses Wialon gives its own meaning (403 from a proxy is no verdict on the
    token; 404 means the address holds no Wialon API)."""
    status = response.status_code
    if status == 404:
        raise BadConfig(url_field, "no Wialon API at this address (HTTP 404)")
    if status == 403:
        raise UpdateFailed("Wialon's server refused the request (HTTP 403)")
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise UpdateFailed("Wialon answered with a body that is not JSON") from None


def error_code(answer: Any) -> int | None:
    """The error code of an answer, ``None`` for a success (``{"error": 0}`` included)."""
    if isinstance(answer, dict):
        code = answer.get("error")
        if isinstance(code, int) and not isinstance(code, bool) and code != p.ERR_OK:
            return code
    return None


def map_error(code: int, answer: Any, svc: str) -> Exception:
    """The hub error for an error answer to ``svc`` (other than a lost session)."""
    reason = answer.get("reason") if isinstance(answer, dict) else None
    if svc == p.BATCH and code == p.ERR_UNKNOWN:
        return BatchTooLarge(f"Wialon {svc}: error {code} (batch too large)")
    what = f"Wialon {svc}: {p.describe_error(code, reason)}"
    if code in p.RATE_ERRORS:
        return RateLimited(what, retry_after=None)
    if code == p.ERR_AUTH_SERVER:
        return CannotConnect(what)
    if code == p.ERR_ACCESS_DENIED:
        return UpdateFailed(f"{what}: does the token have the needed access rights?")
    return UpdateFailed(what)
