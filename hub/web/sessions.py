"""Browser sessions: the ``gpshub_session`` cookie as a way into the API, and CSRF.

A browser signs in with ``POST /api/session`` (``hub.web.api_sessions``) and gets the
cookie (``HttpOnly``, ``SameSite=Lax``, ``Path=/``; ``Secure`` when the request came
over HTTPS, directly or, from one of the ``trusted_proxies``, by ``X-Forwarded-Proto``).
Every route that takes a bearer token then takes the cookie as well, with the same
access rules; the caller is the session's user.  A request with an ``Authorization``
header is a token request: its cookie is not looked at.

**CSRF.**  A cookie-authenticated request that is not GET, HEAD or OPTIONS must carry
``X-CSRF-Token`` equal to the session's CSRF token (answered at sign-in and by ``GET
/api/session``), and its ``Origin``, if any, must be the hub's own or one of
``allowed_origins`` (``*`` does not count here); otherwise it is refused 403 with the
code ``csrf``.  Token requests are not affected.

**Expiry.**  A session ends after ``session_idle_s`` (30 min) without a request (its
last use is recorded to within a minute; an open live feed counts as use) and
``session_lifetime_s`` (12 h) after signing in, whatever happens.  A request with an
ended session's cookie is answered 401 ``invalid_session`` and the cookie is cleared.
Cookies are not throttled: a session id has 256 random bits, nothing to guess, and a
browser that comes back after its session ended must not count as an attacker.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from hub.blocking import run_blocking
from hub.models import BrowserSession, User
from hub.store import Principal
from hub.web.auth import AuthGate, authenticate_header
from hub.web.client_address import parse_address
from hub.web.errors import ApiError
from hub.web.origins import origin_allowed

if TYPE_CHECKING:
    from hub.core import Hub

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "authenticate_request",
    "check_csrf",
    "cookie_header",
    "session_cookie",
]

COOKIE = "gpshub_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gpshub"'}


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        out[key] = f"{out[key]}; {text}" if key == "cookie" and key in out else text
    return out


def session_cookie(scope: Mapping[str, Any]) -> str | None:
    """The value of the ``gpshub_session`` cookie of a request, if it has one."""
    raw = _headers(scope).get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:  # one bad cookie of another site's: look for ours by hand
        for part in raw.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE and value:
                return value
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def is_https(scope: Mapping[str, Any], gate: AuthGate) -> bool:
    """Whether the browser reached the hub over HTTPS: the connection itself, or, when
    the peer is a trusted proxy, the first ``X-Forwarded-Proto`` it passes on."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    peer = scope.get("client")
    address = parse_address(str(peer[0])) if peer else None
    if address is None or not gate.resolver.trusted or not gate.resolver.is_trusted(address):
        return False
    proto = _headers(scope).get("x-forwarded-proto", "")
    return proto.split(",")[0].strip().lower() == "https"


def cookie_header(value: str, *, secure: bool, max_age: int) -> str:
    """A ``Set-Cookie`` value for the session cookie (``max_age`` 0: clear it)."""
    parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max(0, max_age)}", "HttpOnly"]
    parts.append("SameSite=Lax")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie(scope: Mapping[str, Any], gate: AuthGate) -> str:
    return cookie_header("", secure=is_https(scope, gate), max_age=0)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A valid session and who it is."""

    principal: Principal
    session: BrowserSession
    user: User


def principal_of(user: User, session: BrowserSession) -> Principal:
    return Principal(
        user_id=user.id or 0,
        client_id=user.client_id,
        role=user.role,
        name=user.name,
        session_id=session.id,
    )


async def check_session(hub: Hub, plain: str) -> SignedIn | None:
    """The live session the cookie value ``plain`` names (its last use recorded)."""
    settings = hub.settings
    check = await run_blocking(
        hub.store.sessions.check,
        plain,
        hub.clock.now(),
        timedelta(seconds=settings.session_idle_s),
    )
    if check.session is None or check.user is None:
        return None
    return SignedIn(principal_of(check.user, check.session), check.session, check.user)


def check_csrf(scope: Mapping[str, Any], hub: Hub, session: BrowserSession) -> None:
    """Refuse (403 ``csrf``) a cookie-authenticated write without the session's CSRF
    token or from a foreign ``Origin``; reads pass."""
    method = str(scope.get("method", "GET")).upper()
    if scope.get("type") != "http" or method in SAFE_METHODS:
        return
    headers = _headers(scope)
    given = headers.get(CSRF_HEADER.lower(), "")
    if not given or not hmac.compare_digest(
        given.encode("utf-8", "replace"), session.csrf_token.encode()
    ):
        raise ApiError(
            403,
            "csrf",
            f"a write with the session cookie needs the {CSRF_HEADER} header of the session "
            "(answered at sign-in and by GET /api/session)",
            CSRF_HEADER,
        )
    allowed = hub.settings.allowed_origins
    if not origin_allowed(headers.get("origin"), headers.get("host"), allowed, wildcard=False):
        raise ApiError(
            403, "csrf", "a write with the session cookie from this Origin is refused", "Origin"
        )


async def authenticate_request(hub: Hub, scope: Mapping[str, Any]) -> Principal:
    """The caller of a request: by its bearer token (``hub.web.auth``) when it has an
    ``Authorization`` header, else by its session cookie (CSRF checked for writes);
    401 without either, 429 while the address is throttled (tokens only)."""
    headers = _headers(scope)
    header = headers.get("authorization")
    plain = session_cookie(scope) if header is None else None
    if plain is None:
        return await authenticate_header(hub, header, scope)
    signed_in = await check_session(hub, plain)
    if signed_in is None:
        gate = AuthGate.of(scope, hub)
        raise ApiError(
            401,
            "invalid_session",
            "your session has ended (signed out, expired or idle too long); sign in again",
            None,
            {**_CHALLENGE, "Set-Cookie": clear_cookie(scope, gate)},
        )
    check_csrf(scope, hub, signed_in.session)
    return signed_in.principal
