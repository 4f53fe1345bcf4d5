"""The ADM access token (for Nova) from the AAS token of ``secrets.json``.

What ``gpsoauth.perform_oauth(username, aas_token, android_id, service, app, client_sig)``
does: a form POST to Google's auth endpoint answered by ``key=value`` lines — ``Auth``
(the token), ``Expiry`` (epoch seconds) — or ``Error=BadAuthentication`` and the like.

**Why not call ``perform_oauth`` itself.**  The auth endpoint is an option (tests and
other deployments point it at another server), and gpsoauth reads it from a module
constant, ``gpsoauth.AUTH_URL``, that ``_perform_auth_request`` takes no parameter for.
Setting that global would be process-wide: two connections refreshing at the same time
from worker threads could each post to the other's server.  So this module makes the
same request itself — the same form fields as ``perform_oauth`` (``oauth_form``; a test
checks them against gpsoauth's own), the same ``User-Agent`` and headers, and crucially
the same transport: a ``requests`` session with gpsoauth's ``AuthHTTPAdapter`` mounted for
the configured URL, the TLS set-up (no ALPN, session tickets kept) without which Google
answers "403 BadAuthentication" — and reads the answer with gpsoauth's own parser.  What
is ours is only the URL, the timeouts and the status code, which ``perform_oauth``
discards.  The call is blocking (``requests``), so it runs through
``hub.blocking.run_blocking``, in a worker thread, never on the trio thread.

The token is cached in the connection's state (encrypted at rest) until its ``Expiry``
minus 300 s (or issued + 50 min when the answer has no expiry), keyed by a digest of the
account, so a new ``secrets.json`` never reuses the old account's token.  A 401 from Nova
calls ``refresh``.  ``BadAuthentication`` / ``NeedsBrowser`` raise ``InvalidAuth`` telling
the user to make a new ``secrets.json``: the runner then stops polling until the
credentials change (no login loop).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from hub.blocking import run_blocking
from hub.clock import Clock
from hub.errors import CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.retry_after import parse_retry_after
from hub.source import StateStore

DEFAULT_AUTH_URL = "https://android.clients.google.com/auth"
ADM_SERVICE = "oauth2:https://www.googleapis.com/auth/android_device_manager"
ADM_APP = "com.google.android.apps.adm"
CLIENT_SIG = "38918a453d07199354f8b19af05ec6562ced5788"
USER_AGENT = "GoogleAuth/1.4"
"""gpsoauth.USER_AGENT, which the POST sends (a test checks they agree)."""
REFRESH_MARGIN_S = 300.0
FALLBACK_LIFETIME_S = 50 * 60.0
AUTH_TIMEOUT_S = (10.0, 30.0)  # requests' (connect, read)
STATE_KEY = "findhub.adm_token"
REGENERATE = (
    "generate a new secrets.json with GoogleFindMyTools (sign in again) and save it in this"
    " connection"
)
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    """The auth endpoint's answer: its HTTP status and its ``key=value`` fields."""

    status: int
    fields: dict[str, str]
    retry_after: str | None = None


PostForm = Callable[[str, dict[str, Any]], AuthAnswer]
"""A blocking POST of a form to the auth endpoint (``post_auth_form``, or a stand-in)."""


def oauth_form(email: str, aas_token: str, android_id: str) -> dict[str, Any]:
    """The fields ``gpsoauth.perform_oauth`` sends for the ADM scope, in its order."""
    return {
        "accountType": "HOSTED_OR_GOOGLE",
        "Email": email,
        "has_permission": 1,
        "EncryptedPasswd": aas_token,
        "service": ADM_SERVICE,
        "source": "android",
        "androidId": android_id,
        "app": ADM_APP,
        "client_sig": CLIENT_SIG,
        "device_country": "us",
        "operatorCountry": "us",
        "lang": "en",
        "sdk_version": 17,
        "google_play_services_version": 240913000,
    }


def post_auth_form(url: str, form: dict[str, Any]) -> AuthAnswer:
    """Blocking: POST ``form`` to ``url`` the way gpsoauth does (see the module doc).

    Network failures raise ``CannotConnect``; the message names the host only."""
    import gpsoauth
    import requests
    from gpsoauth import google

    with requests.Session() as session:
        session.mount(url, gpsoauth.AuthHTTPAdapter())
        session.trust_env = False  # no proxy from the environment (as the hub's own client)
        session.headers.update(
            {
                "Accept-Encoding": "identity",
                "Content-type": "application/x-www-form-urlencoded",
                "User-Agent": gpsoauth.USER_AGENT,
            }
        )
        try:
            response = session.post(
                url, data=form, verify=True, timeout=AUTH_TIMEOUT_S, allow_redirects=False
            )
        except requests.Timeout:
            raise CannotConnect("Google's auth endpoint did not answer in time") from None
        except requests.RequestException as exc:
            raise CannotConnect(
                f"cannot reach Google's auth endpoint: {type(exc).__name__}"
            ) from None
        text = response.text
    fields = google.parse_auth_response(text) if "=" in text else {}
    return AuthAnswer(response.status_code, fields, response.headers.get("Retry-After"))


def _default_post(url: str, form: dict[str, Any]) -> AuthAnswer:
    """``post_auth_form`` as the module has it at call time (tests replace it there)."""
    return post_auth_form(url, form)


def account_digest(username: str, aas_token: str) -> str:
    """Which account a cached token belongs to, without storing anything secret twice."""
    return hashlib.sha256(f"{username}\n{aas_token}".encode()).hexdigest()[:32]


class TokenManager:
    """ADM access tokens for one account: cached, refreshed, errors mapped."""

    def __init__(
        self,
        *,
        auth_url: str,
        username: str,
        aas_token: str,
        android_id: str,
        state: StateStore,
        clock: Clock,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
        post: PostForm | None = None,
    ) -> None:
        self.auth_url = auth_url
        self._form = oauth_form(username, aas_token, android_id)
        self._account = account_digest(username, aas_token)
        self._state = state
        self._clock = clock
        self._post = post
        self.log = log or logging.getLogger(__name__)
        self._lock = trio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._loaded = False
        self.issued = 0
        """How many tokens this manager obtained (not counting cached ones)."""

    async def token(self) -> str:
        """A valid ADM token: the cached one while it lasts, else a new one."""
        async with self._lock:
            await self._load()
            if self._token is not None and self._now() < self._expires_at:
                return self._token
            return await self._obtain()

    async def refresh(self, rejected: str) -> str:
        """A new token after Nova refused ``rejected`` (HTTP 401).  Concurrent callers
        holding the same rejected token share one refresh."""
        async with self._lock:
            if self._token is not None and self._token != rejected:
                return self._token  # someone refreshed meanwhile
            return await self._obtain()

    async def forget(self) -> None:
        async with self._lock:
            self._token, self._expires_at = None, 0.0
            await self._state.delete(STATE_KEY)

    # -- internals -----------------------------------------------------------------------
    def _now(self) -> float:
        return self._clock.now().timestamp()

    async def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        saved = await self._state.get(STATE_KEY)
        if (
            isinstance(saved, dict)
            and saved.get("account") == self._account
            and isinstance(saved.get("token"), str)
            and isinstance(saved.get("expires_at"), int | float)
        ):
            self._token, self._expires_at = saved["token"], float(saved["expires_at"])

    async def _obtain(self) -> str:
        issued_at = self._now()
        post = self._post or _default_post
        answer = await run_blocking(post, self.auth_url, self._form)
        token, expires_at = self._read(answer, issued_at)
        self._token, self._expires_at = token, expires_at
        self.issued += 1
        await self._state.set(
            STATE_KEY, {"account": self._account, "token": token, "expires_at": expires_at}
        )
        self.log.debug("new ADM token, valid for %.0f s", expires_at - issued_at)
        return token

    def _read(self, answer: AuthAnswer, issued_at: float) -> tuple[str, float]:
        fields = answer.fields
        error = fields.get("Error")
        if error is not None:
            code = error if _ERROR_CODE.fullmatch(error) else "unreadable"
            if code in ("BadAuthentication", "NeedsBrowser"):
                why = (
                    "the AAS token was revoked or is not valid for this account"
                    if code == "BadAuthentication"
                    else "the account needs a sign-in in a browser"
                )
                raise InvalidAuth(f"Google refused the secrets.json ({code}: {why}): {REGENERATE}")
            if answer.status == 429:
                raise RateLimited(
                    f"Google's auth endpoint is rate limiting ({code})",
                    retry_after=parse_retry_after(answer.retry_after, self._clock.now()),
                )
            if answer.status >= 500:
                raise CannotConnect(f"Google's auth endpoint failed (HTTP {answer.status}, {code})")
            raise UpdateFailed(f"Google's auth endpoint refused the token request ({code})")
        if answer.status == 429:
            raise RateLimited(
                "Google's auth endpoint is rate limiting (HTTP 429)",
                retry_after=parse_retry_after(answer.retry_after, self._clock.now()),
            )
        if answer.status >= 500:
            raise CannotConnect(f"Google's auth endpoint failed (HTTP {answer.status})")
        token = fields.get("Auth", "").strip()
        if answer.status != 200 or not token:
            raise UpdateFailed(
                f"Google's auth endpoint answered HTTP {answer.status} without a token:"
                " is auth_url an auth endpoint?"
            )
        return token, _expiry(fields, issued_at)


def _expiry(fields: dict[str, str], issued_at: float) -> float:
    """When to stop using a token: ``Expiry`` − 300 s (``ExpiresInDurationSec`` counted from
    the request when there is no ``Expiry``), but at least half its life; issued + 50 min
    when the answer says nothing usable (absent, already past, or more than a day away)."""
    expires: float | None = None
    try:
        expires = float(fields["Expiry"])
    except (KeyError, ValueError):
        try:
            expires = issued_at + float(fields["ExpiresInDurationSec"])
        except (KeyError, ValueError):
            expires = None
    if expires is None or not issued_at < expires <= issued_at + 86_400:  # NaN fails too
        return issued_at + FALLBACK_LIFETIME_S
    return max(expires - REFRESH_MARGIN_S, issued_at + (expires - issued_at) / 2)
