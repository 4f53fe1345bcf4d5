"""Bearer-token authentication, access rules and tenancy helpers.

Every route declares an ``Access`` rule, checked before the handler runs:

* ``PUBLIC``: no token (health, readiness, the OpenAPI document; they expose no data);
* ``USER``: any valid token; what the caller sees is limited to its client;
* ``MANAGER``: a client's manager or the administrator (changes);
* ``ADMIN``: the system administrator only;
* ``METRICS``: the system administrator, with any of its tokens or one whose scope is
  ``metrics`` (``/metrics``).  A ``metrics`` token may call nothing else: a Prometheus
  server holding one can read the metrics and do nothing more.

Objects of another client answer 404, exactly like missing ones, so ids do not leak.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from hub.blocking import run_blocking
from hub.models import TokenScope
from hub.store import NotFound, Principal
from hub.web.errors import ApiError, forbidden, invalid

if TYPE_CHECKING:
    from hub.core import Hub

__all__ = ["Access", "Principal", "authenticate_header", "check_access", "owning_client"]


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
    return await run_blocking(hub.store.authenticate, token)


async def authenticate_header(hub: Hub, header: str | None) -> Principal:
    """The caller of a request with ``header``; raises a 401 ``ApiError`` otherwise."""
    if header is None:
        raise ApiError(
            401, "unauthorized", "an API token is required (Authorization: Bearer …)", None,
            _CHALLENGE,
        )  # fmt: skip
    token = bearer_token(header)
    principal = await authenticate_token(hub, token) if token else None
    if principal is None:
        raise ApiError(401, "invalid_token", "the API token is not valid", None, _CHALLENGE)
    return principal


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
