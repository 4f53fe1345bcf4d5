"""The Nova API (``https://android.googleapis.com/nova``) over httpx.

Two calls, both ``POST {nova_url}/<scope>`` with a raw protobuf body (despite the form
content type Google's app sends) and the headers of Google's Find Hub app:

* ``nbe_list_devices`` — the account's devices (``messages.decode_devices_list``);
* ``nbe_execute_action`` — a locate request; the answer is an empty 200, the location
  comes later as an FCM push (``mcs``).

Errors: the requests go through ``ctx.http.fetch`` (``hub.upstream_http``), which
maps no answer (``CannotConnect``), 403 (``InvalidAuth``), 429 (``RateLimited`` with its
``Retry-After``) and redirects (``BadConfig`` naming ``nova_url``).  What is Nova's own:
a 401 refreshes the ADM token once and retries once, a second 401 is ``InvalidAuth``;
Google's error pages (any other 4xx or 5xx) and bodies that do not decode are
``UpdateFailed``, an HTML page shown in a message only as a short snippet of its text.

Also here: ``outbound_policy`` (the hub's outbound guard, read from the client it gives
the source) and ``vet_endpoint``, the guard's check for the token request, which goes
through gpsoauth's ``requests`` adapter rather than httpx.  (The MCS socket is vetted and
pinned by ``mcs.guarded_connector``.)
"""

from __future__ import annotations

import html
import logging
import re
import uuid
from typing import TYPE_CHECKING

import httpx

from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.netguard import BlockedAddress, GuardedBackend, OutboundPolicy
from hub.upstream_http import UpstreamClient

if TYPE_CHECKING:
    from gpshub_findhub.auth import TokenManager
    from gpshub_findhub.messages import DeviceMetadata

DEFAULT_NOVA_URL = "https://android.googleapis.com/nova"
LIST_DEVICES = "nbe_list_devices"
EXECUTE_ACTION = "nbe_execute_action"
USER_AGENT = "fmd/20006320; gzip"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
RETRY_AFTER_CAP_S = 3600.0
PAGES = frozenset(range(400, 600)) - {403, 429}
"""Answers Nova's own code reads (``upstream_fetch``'s ``accept``): 401 (a new token), and
Google's error pages."""
_TAGS = re.compile(r"<[^>]*>")
_CODE = re.compile(r"<(style|script)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_SPACE = re.compile(r"\s+")


def snippet(text: str, limit: int = 80) -> str:
    """A short plain-text excerpt of an error page: tags, styles and scripts stripped,
    blanks collapsed."""
    plain = _SPACE.sub(" ", html.unescape(_TAGS.sub(" ", _CODE.sub(" ", text[:4000])))).strip()
    return plain[:limit] + ("…" if len(plain) > limit else "")


class NovaClient:
    """The Nova calls of one account."""

    def __init__(
        self,
        http: UpstreamClient,
        base_url: str,
        tokens: TokenManager,
        *,
        url_field: str = "options.nova_url",
        log: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/")
        self.tokens = tokens
        self.url_field = url_field
        self.log = log or logging.getLogger(__name__)
        self.requests = 0
        """Requests sent (retries included): for the benchmark and the tests."""

    async def call(self, scope: str, body: bytes) -> bytes:
        """``POST {base}/{scope}`` with ``body``; the answer's body, or the mapped error."""
        token = await self.tokens.token()
        response = await self._post(scope, body, token)
        if response.status_code == 401:
            self.log.info("Nova refused the ADM token (HTTP 401): getting a new one")
            token = await self.tokens.refresh(token)
            response = await self._post(scope, body, token)
            if response.status_code == 401:
                raise InvalidAuth(
                    "Nova refused a fresh ADM token too (HTTP 401): the account may have lost"
                    " access to Find Hub; generate a new secrets.json"
                )
        return self._body(response, scope)

    async def list_devices(self) -> list[DeviceMetadata]:
        """The account's devices, with any location reports the list carries."""
        from gpshub_findhub.messages import decode_devices_list, encode_list_devices_request
        from gpshub_findhub.wire import WireError

        body = await self.call(LIST_DEVICES, encode_list_devices_request(str(uuid.uuid4())))
        try:
            return decode_devices_list(body)
        except (WireError, ValueError) as exc:
            raise UpdateFailed(f"Nova sent a device list that does not decode: {exc}") from None

    async def locate(
        self,
        *,
        canonic_id: str,
        request_uuid: str,
        client_uuid: str,
        fcm_token: str,
        high_traffic_time: int,
    ) -> None:
        """Ask for a fresh location of one device; the answer comes as a push."""
        from gpshub_findhub.messages import encode_locate_request

        await self.call(
            EXECUTE_ACTION,
            encode_locate_request(
                canonic_id=canonic_id,
                request_uuid=request_uuid,
                client_uuid=client_uuid,
                fcm_token=fcm_token,
                high_traffic_time=high_traffic_time,
            ),
        )

    # -- internals -----------------------------------------------------------------------
    async def _post(self, scope: str, body: bytes, token: str) -> httpx.Response:
        self.requests += 1
        try:
            return await self.http.fetch(
                "POST",
                f"{self.base}/{scope}",
                url_field=self.url_field,
                accept=PAGES,
                content=body,
                headers={
                    "Content-Type": CONTENT_TYPE,
                    "Authorization": f"Bearer {token}",
                    "Accept-Language": "en-US",
                    "User-Agent": USER_AGENT,
                },
            )
        except RateLimited as exc:
            wait = exc.retry_after
            raise RateLimited(
                f"Google is rate limiting {scope} (HTTP 429)",
                retry_after=None if wait is None else min(wait, RETRY_AFTER_CAP_S),
            ) from None

    def _body(self, response: httpx.Response, scope: str) -> bytes:
        status = response.status_code
        kind = response.headers.get("content-type", "").lower()
        # protobuf never starts with "<" (field 7, wire type 4: not a valid key)
        is_page = "html" in kind or response.content.lstrip()[:1] == b"<"
        if not response.is_success:  # one of PAGES
            textual = is_page or kind.startswith("text/")
            detail = f": {snippet(response.text)}" if textual and response.text.strip() else ""
            raise UpdateFailed(f"Nova answered HTTP {status} for {scope}{detail}")
        if is_page:
            raise UpdateFailed(
                f"Nova answered {scope} with a page instead of protobuf: {snippet(response.text)}"
            )
        return response.content


def outbound_policy(http: httpx.AsyncClient) -> OutboundPolicy | None:
    """The outbound guard's policy of ``http`` (the hub's guarded client), or ``None`` for
    an unguarded client (a test's).  httpx offers no public way to it: this reads the
    attributes ``hub.netguard.guarded_transport`` sets, and finds nothing if they change."""
    pool = getattr(getattr(http, "_transport", None), "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    return backend.policy if isinstance(backend, GuardedBackend) else None


async def vet_endpoint(http: httpx.AsyncClient, host: str, port: int, field: str) -> None:
    """Refuse (``BadConfig`` naming ``field``) a host the outbound guard would refuse.

    For the token request, which ``requests`` makes (gpsoauth's TLS adapter), not httpx:
    the name is resolved and every address checked against the hub's policy, as
    ``GuardedBackend`` does.  ``requests`` then resolves it again, so a name that changes
    its answer in between is not caught (no pinning through gpsoauth's adapter); the URL
    is an option only a connection's manager sets, and its save-time check already
    refuses private literal addresses.
    """
    policy = outbound_policy(http)
    if policy is None:
        return
    from hub.netguard import system_resolver

    try:
        addresses = await system_resolver(host, port)
    except OSError as exc:
        raise CannotConnect(
            f"cannot resolve {host}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        for address in addresses:
            policy.check_address(address, host=host)
    except BlockedAddress as exc:
        raise BadConfig(field, str(exc)) from None
