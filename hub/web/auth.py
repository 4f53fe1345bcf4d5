"""Bearer-token authentication, access rules and tenancy helpers.

(A browser's session cookie is the other way in: ``hub.web.sessions``.)

Every route declares an ``Access`` rule, checked before the handler runs:

* ``PUBLIC``: no token (health, readiness, the OpenAPI document; they expose no data);
* ``USER``: any valid token; what the caller sees is limited to its client;
* ``MANAGER``: a client's manager or the administrator (changes);
* ``ADMIN``: the system administrator only;
* ``METRICS``: the system administrator, with any of its tokens or one whose scope is
  ``metrics`` (``/metrics``).  A ``metrics`` token may call nothing else: a Prometheus
  server holding one can read the metrics and do nothing more.

Objects of another client answer 404, exactly like missing ones, so ids do not leak.

Every token check of a request goes through the app's ``AuthGate``: failed attempts
are throttled per client address and logged (``hub.web.auth_throttle``).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hub import tokens
from hub.blocking import run_blocking
from hub.models import TokenScope
from hub.store import NotFound, Principal, TokenCheck
from hub.web.auth_throttle import AuthThrottle, Throttled, retry_after_header
from hub.web.client_address import AddressResolver, throttle_key
from hub.web.errors import ApiError, forbidden, invalid

if TYPE_CHECKING:
    from hub.config import Settings
    from hub.core import Hub

__all__ = [
    "Access",
    "AuthGate",
    "Principal",
    "authenticate_header",
    "check_access",
    "owning_client",
]


class Access(StrEnum):
    PUBLIC = "public"
    USER = "user"
    MANAGER = "manager"
    ADMIN = "admin"
    METRICS = "metrics"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Access.PUBLIC: "Unauthenticated by design: it exposes no data.",
    Access.USER: "Any API token (viewer, manager or administrator); "
    "a client's users see only their client's data.",
    Access.MANAGER: "A client's manager (its own client's data) or the administrator; "
    "viewers get 403.",
    Access.ADMIN: "The system administrator only; a client's users get 403.",
    Access.METRICS: "The system administrator: any of its tokens, or a token created with "
    'scope "metrics" (which may call nothing else); a client\'s users get 403.',
}

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gpshub"'}


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header, or ``None``."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate_token(hub: Hub, token: str) -> Principal | None:
    """A token's principal, unthrottled: for re-checking a token already admitted."""
    return await run_blocking(hub.store.authenticate, token)


class AuthGate:
    """Checks the tokens of requests, throttling and logging failed attempts per client
    address (``hub.web.auth_throttle``, ``hub.web.client_address``).  One per app."""

    def __init__(self, settings: Settings) -> None:
        self.resolver = AddressResolver(settings.trusted_proxies)
        self.throttle = AuthThrottle(
            settings.auth_failures_per_minute, settings.auth_tracked_addresses
        )
        # failed sign-ins also count per user name (hub.web.sessions), whatever the address
        self.names = AuthThrottle(
            settings.auth_failures_per_minute, settings.auth_tracked_addresses
        )

    @staticmethod
    def of(scope: Mapping[str, Any], hub: Hub) -> AuthGate:
        """The gate of the app serving ``scope`` (made on first use if it has none)."""
        state = scope["app"].state
        gate: AuthGate | None = getattr(state, "auth_gate", None)
        if gate is None:
            gate = state.auth_gate = AuthGate(hub.settings)
        return gate

    def key(self, scope: Mapping[str, Any]) -> str:
        """What the scope's failed attempts count against (see ``throttle_key``)."""
        return throttle_key(self.resolver.client(scope))

    async def check(
        self, hub: Hub, scope: Mapping[str, Any], token: str | None, where: str = ""
    ) -> Principal:
        """The principal of ``token``, presented on ``scope``; a 429 ``ApiError`` while
        the client's address is throttled, a 401 when the token is not valid (``None``:
        credentials that are no bearer token)."""
        key = self.key(scope)
        where = where or _where(scope)
        digest = tokens.token_hash(token) if token else None
        try:
            attempt = await self.throttle.admit(key, digest)
        except Throttled as exc:
            seconds = retry_after_header(exc.wait)
            raise ApiError(
                429,
                "too_many_attempts",
                "too many failed authentication attempts from your address; "
                f"try again in {seconds} s",
                None,
                {"Retry-After": seconds},
            ) from None
        try:
            if token:
                check = await run_blocking(hub.store.check_token, token)
            else:
                check = TokenCheck(None, "credentials that are not a bearer token")
            if check.principal is None:
                self.throttle.failed(attempt, where, check.reason, token)
                raise ApiError(401, "invalid_token", "the API token is not valid", None, _CHALLENGE)
            assert digest is not None
            self.throttle.succeeded(attempt, digest)
            return check.principal
        finally:
            self.throttle.release(attempt)  # cancelled while checking: nothing counted


def _where(scope: Mapping[str, Any]) -> str:
    if scope.get("type") == "websocket":
        return f"WebSocket {scope.get('path', '')}"
    return f"{scope.get('method', '')} {scope.get('path', '')}"


async def authenticate_header(hub: Hub, header: str | None, scope: Mapping[str, Any]) -> Principal:
    """The caller of the request ``scope`` whose ``Authorization`` header is ``header``;
    raises a 401 ``ApiError`` otherwise, or a 429 while its address is throttled."""
    if header is None:
        raise ApiError(
            401, "unauthorized", "an API token is required (Authorization: Bearer …)", None,
            _CHALLENGE,
        )  # fmt: skip
    return await AuthGate.of(scope, hub).check(hub, scope, bearer_token(header))


def check_access(principal: Principal, access: Access) -> None:
    """Raise 403 when ``principal`` may not use a route with rule ``access``."""
    if not principal.is_admin and principal.client_id is None:
        # the store allows no such user; refuse rather than let ``scope`` mean "all"
        raise forbidden("you belong to no client")
    if principal.token_scope != TokenScope.ALL and access is not Access.METRICS:
        raise forbidden("this token may only read /metrics")
    if access is Access.METRICS and not principal.is_admin:
        raise forbidden("only the system administrator may read the metrics")
    if access is Access.MANAGER and not principal.can_write:
        raise forbidden("your role may only read")
    if access is Access.ADMIN and not principal.is_admin:
        raise forbidden("only the system administrator may do this")


async def owning_client(hub: Hub, principal: Principal, client_id: int | None) -> int:
    """The client a new object belongs to, from the body's ``client_id``.

    The administrator must name an existing client; a client's user may omit it or give
    its own, and is refused (403) any other.
    """
    if principal.is_admin:
        if client_id is None:
            raise invalid("client_id", "required: the administrator must say which client")
        try:
            await run_blocking(hub.store.get_client, client_id)
        except NotFound:
            raise invalid("client_id", f"client {client_id} does not exist") from None
        return client_id
    own = principal.client_id
    if own is None:  # a user of no client who is not the administrator: not expected
        raise forbidden("you belong to no client")
    if client_id is not None and client_id != own:
        raise forbidden("you may only act on your own client's data", "client_id")
    return own


def filter_client(principal: Principal, client_id: int | None) -> int | None:
    """The client a listing is limited to: the caller's own, or the administrator's pick."""
    if principal.is_admin:
        return client_id
    if client_id is not None and client_id != principal.client_id:
        raise forbidden("you may only list your own client's data", "client_id")
    return principal.client_id
