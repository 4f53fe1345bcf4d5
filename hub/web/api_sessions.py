"""Signing in and out (browser sessions) and passwords.

* ``POST /api/session`` signs in with a name and password (and the client, when the name
  and password fit users of several clients): the session cookie is set and the CSRF
  token answered.  ``GET /api/session`` says who the cookie is and its CSRF token;
  ``DELETE /api/session`` signs out (the session ends on the server, the cookie is
  cleared).  See ``hub.web.sessions`` for the cookie, CSRF and expiry.
* ``PUT /api/users/{id}/password``: the administrator sets anybody's password, a
  manager those of its client's users (not its own: that is ``POST /api/me/password``,
  which needs the current one).  A changed password ends the user's sessions (but the
  one that changed it).

Failed sign-ins (and wrong current passwords) count against the client's address and
against the user name, each with the ``auth_failures_per_minute`` budget; throttled,
they are answered 429 with ``Retry-After``.  A refused sign-in never says whether the
name or the password was wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from starlette.responses import JSONResponse, Response

from hub.models import User
from hub.passwords import (
    hash_password_async,
    needs_rehash,
    password_problem,
    verify_password_async,
)
from hub.web.api_tenancy import client_out, user_out
from hub.web.auth import Access, AuthGate
from hub.web.auth_throttle import Attempt, Throttled, retry_after_header
from hub.web.errors import ApiError, forbidden, invalid
from hub.web.origins import origin_allowed
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import PasswordChange, PasswordSet, SessionOut, SignIn
from hub.web.sessions import (
    SignedIn,
    check_csrf,
    check_session,
    clear_cookie,
    cookie_header,
    is_https,
    principal_of,
    session_cookie,
)

if TYPE_CHECKING:
    from hub.core import Hub

T = TypeVar("T")
MAX_CANDIDATES = 4
"""Users of one name tried at a sign-in without ``client``; beyond, it must be given."""
_NO_STORE = {"Cache-Control": "no-store"}


def _name_key(name: str) -> str:
    """What a user name's failures count against; hashed, so no log shows what was typed
    (a password typed into the name field)."""
    return (
        "user name #" + hashlib.sha256(name.casefold().encode("utf-8", "replace")).hexdigest()[:12]
    )


async def throttled(
    hub: Hub,
    req: ApiRequest,
    name: str,
    where: str,
    check: Callable[[], Awaitable[T | None]],
) -> T:
    """``check()`` counted as an authentication attempt of the client's address and of
    the user ``name``: 429 while either is throttled, 401 ``invalid_credentials`` (one
    failure taken from both) when it gives ``None``."""
    scope = req.request.scope
    gate = AuthGate.of(scope, hub)
    held: list[tuple[Attempt, bool]] = []  # (attempt, of the address)
    try:
        try:
            held.append((await gate.throttle.admit(gate.key(scope)), True))
            held.append((await gate.names.admit(_name_key(name)), False))
        except Throttled as exc:
            seconds = retry_after_header(exc.wait)
            raise ApiError(
                429,
                "too_many_attempts",
                f"too many failed sign-ins; try again in {seconds} s",
                None,
                {"Retry-After": seconds},
            ) from None
        result = await check()
        if result is None:
            for attempt, of_address in held:
                throttle = gate.throttle if of_address else gate.names
                throttle.failed(
                    attempt, where, "wrong name or password", None,
                    hint="a password", logged=of_address,
                )  # fmt: skip
            raise ApiError(401, "invalid_credentials", "wrong name or password")
        return result
    finally:
        for attempt, of_address in held:
            (gate.throttle if of_address else gate.names).release(attempt)


def _session_out(hub: Hub, signed_in: SignedIn, client: object | None) -> SessionOut:
    p = signed_in.principal
    return SessionOut(
        user=user_out(signed_in.user),
        client=client_out(client) if client is not None else None,  # type: ignore[arg-type]
        can_write=p.can_write,
        is_admin=p.is_admin,
        csrf_token=signed_in.session.csrf_token,
        expires_at=signed_in.session.expires_at,
        idle_timeout_s=int(hub.settings.session_idle_s),
    )


async def _answer(req: ApiRequest, signed_in: SignedIn, headers: dict[str, str]) -> Response:
    client_id = signed_in.user.client_id
    client = await req.run(req.hub.store.get_client, client_id) if client_id else None
    body = _session_out(req.hub, signed_in, client).model_dump(mode="json")
    return JSONResponse(body, headers={**_NO_STORE, **headers})


def _no_session(req: ApiRequest) -> ApiError:
    scope = req.request.scope
    headers = {"Cache-Control": "no-store"}
    if session_cookie(scope) is not None:
        headers["Set-Cookie"] = clear_cookie(scope, AuthGate.of(scope, req.hub))
    return ApiError(401, "no_session", "not signed in (no valid session cookie)", None, headers)


# -- sessions --------------------------------------------------------------------------
async def sign_in(req: ApiRequest) -> Response:
    body = req.body_as(SignIn)
    hub = req.hub
    scope = req.request.scope
    headers = req.request.headers
    allowed = hub.settings.allowed_origins
    if not origin_allowed(headers.get("origin"), headers.get("host"), allowed, wildcard=False):
        raise ApiError(403, "csrf", "signing in from this Origin is refused", "Origin")
    candidates = await req.run(hub.store.sessions.sign_in_candidates, body.name, body.client)
    if len(candidates) > MAX_CANDIDATES:
        raise invalid("client", "several users have this name: say which client")

    async def check() -> list[User] | None:
        if not candidates:
            await verify_password_async(body.password, None)  # as long as a real check
            return None
        fits = [
            u for u in candidates if await verify_password_async(body.password, u.password_hash)
        ]
        return fits or None

    fits = await throttled(hub, req, body.name, "sign-in (POST /api/session)", check)
    if len(fits) > 1:
        raise invalid("client", "this name and password fit users of several clients: say which")
    user = fits[0]
    if user.client_id is None and user.role != "admin":  # the store makes none such
        raise ApiError(401, "invalid_credentials", "wrong name or password")
    if user.password_hash and needs_rehash(user.password_hash):  # made with weaker parameters
        upgraded = await hash_password_async(body.password)
        await req.run(
            hub.store.sessions.upgrade_password, user.id or 0, user.password_hash, upgraded
        )
    gate = AuthGate.of(scope, hub)
    address = gate.resolver.client(scope)
    now = hub.clock.now()
    settings = hub.settings
    await req.run(hub.store.sessions.prune, now, timedelta(seconds=settings.session_idle_s))
    row, plain = await req.run(
        hub.store.sessions.create,
        user.id or 0,
        now,
        timedelta(seconds=settings.session_lifetime_s),
        user_agent=headers.get("user-agent", ""),
        address=str(address) if address is not None else "",
    )
    signed_in = SignedIn(principal_of(user, row), row, user)
    cookie = cookie_header(
        plain, secure=is_https(scope, gate), max_age=int(settings.session_lifetime_s)
    )
    return await _answer(req, signed_in, {"Set-Cookie": cookie})


async def current_session(req: ApiRequest) -> Response:
    plain = session_cookie(req.request.scope)
    signed_in = await check_session(req.hub, plain) if plain else None
    if signed_in is None:
        raise _no_session(req)
    return await _answer(req, signed_in, {})


async def sign_out(req: ApiRequest) -> Response:
    scope = req.request.scope
    plain = session_cookie(scope)
    if plain:
        signed_in = await check_session(req.hub, plain)
        if signed_in is not None:
            check_csrf(scope, req.hub, signed_in.session)
            await req.run(req.hub.store.sessions.end, plain)
    gate = AuthGate.of(scope, req.hub)
    return Response(status_code=204, headers={**_NO_STORE, "Set-Cookie": clear_cookie(scope, gate)})


# -- passwords -------------------------------------------------------------------------
def _new_password(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise invalid("password", problem)
    return password


async def set_password(req: ApiRequest) -> None:
    user_id = req.path_int("id")
    password = _new_password(req.body_as(PasswordSet).password)
    if user_id == req.principal.user_id:
        raise forbidden("change your own password with POST /api/me/password", "id")
    await req.run(req.hub.store.get_user, user_id, req.scope)  # 404 before the slow part
    hashed = await hash_password_async(password)
    await req.run(req.hub.store.sessions.set_password, user_id, hashed, req.scope)


async def change_my_password(req: ApiRequest) -> None:
    body = req.body_as(PasswordChange)
    me = req.principal
    password = _new_password(body.password)
    stored = await req.run(req.hub.store.sessions.password_hash, me.user_id)
    if stored is not None:
        current = body.current_password
        if not current:
            raise invalid("current_password", "required: your password now")

        async def check() -> bool | None:
            return True if await verify_password_async(current, stored) else None

        try:
            await throttled(req.hub, req, me.name, "password change (POST /api/me/password)", check)
        except ApiError as exc:
            if exc.status != 401:
                raise
            raise forbidden("is not your current password", "current_password") from None
    hashed = await hash_password_async(password)
    await req.run(
        req.hub.store.sessions.set_password, me.user_id, hashed, keep_session=me.session_id
    )


TAG = "sessions"
_SESSION_NOTE = (
    "The cookie `gpshub_session` is HttpOnly, SameSite=Lax, Path=/, and Secure over HTTPS. "
    "With it, every route that takes a bearer token may be called without one; writes "
    "need the header `X-CSRF-Token`."
)
ROUTES = [
    ApiRoute("POST", "/api/session", sign_in, Access.PUBLIC, "Sign in (a browser session)",
             TAG, body=SignIn, response=SessionOut, errors=(401, 403, 422, 429),
             description="Answers who you are and the CSRF token, and sets the session "
             "cookie. A wrong name, password or client is 401 `invalid_credentials`, "
             "whichever was wrong. " + _SESSION_NOTE),
    ApiRoute("GET", "/api/session", current_session, Access.PUBLIC,
             "Who the session cookie is, and its CSRF token", TAG, response=SessionOut,
             errors=(401,), description="401 `no_session` without a valid session cookie "
             "(bearer tokens have no session)."),
    ApiRoute("DELETE", "/api/session", sign_out, Access.PUBLIC, "Sign out", TAG, status=204,
             errors=(403,), description="Ends the session on the server and clears the "
             "cookie; without a valid session it only clears the cookie. Needs "
             "`X-CSRF-Token`."),
    ApiRoute("PUT", "/api/users/{id:int}/password", set_password, Access.MANAGER,
             "Set a user's password", "tenancy", body=PasswordSet, status=204,
             errors=(403, 404, 422),
             description="The administrator sets anybody's, a manager those of its "
             "client's users; your own is changed with POST /api/me/password. The user's "
             "browser sessions end."),
    ApiRoute("POST", "/api/me/password", change_my_password, Access.USER,
             "Change your password", "tenancy", body=PasswordChange, status=204,
             errors=(403, 422, 429),
             description="Needs `current_password` (unless you have none yet); a wrong one "
             "is 403 and counts as a failed sign-in. Your other browser sessions end; "
             "API tokens are not affected."),
]  # fmt: skip
