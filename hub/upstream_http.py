"""The upstream HTTP helper: one call that sends a source's request and maps its failures.

A source's ``ctx.http`` is an :class:`UpstreamClient`: an ``httpx.AsyncClient`` (use it
as one) that knows the upstream's name (the source's title), the connection's request
timeout (``options.timeout_s`` when the options have one) and the source's clock::

    data = await ctx.http.fetch_json("GET", f"{base}/api/devices", params={"token": t},
                                     url_field="credentials.server_url")

``fetch`` sends with that timeout (connecting takes at most ``MAX_CONNECT_S`` of it),
never follows a redirect, and raises the hub's error for whatever is not a usable answer:

* no answer (a timeout, a refused connection, an address the outbound guard refuses):
  as :func:`hub.http_failures.upstream_errors`;
* 401 and 403: ``InvalidAuth`` "Acme at host refused the credentials (HTTP 401)";
* 429: ``RateLimited`` with its ``Retry-After`` in seconds (``hub.retry_after``);
* 5xx: ``CannotConnect`` "Acme at host answered HTTP 503 for /path";
* a redirect (301, 302, 303, 307, 308): ``BadConfig`` naming ``url_field`` ("the server
  redirects to …: use that address"), or ``UpdateFailed`` for a fixed upstream
  (``url_field=None``);
* any other status but 2xx: ``UpdateFailed`` with the status and the first line of the
  body (an HTML page's title or first text, without markup; at most ``MAX_EXCERPT``
  characters, control characters removed);
* a status listed in ``accept`` is handed back unmapped: a platform's own meaning of a
  400 or a 404 stays the plugin's to tell.

Two hooks carry what platforms do their own way: ``reason(response)`` gives the platform's
error text, quoted in the 5xx (and other status) messages ("… answered HTTP 503 for
/path: database is down"; :func:`error_text` reads the usual JSON fields); and
``rate_limit(response)`` tells a rate limit signalled in a 2xx answer without a 429
(Wialon's error 1003, GPS-Server.net's "API call limit exceeded"): ``True`` or the seconds
to wait make it ``RateLimited``.

``fetch_json`` also decodes a 2xx answer: one of another content type is ``NotJson``, one
that does not decode ``BrokenJson`` (both ``UpdateFailed``).  ``lenient=True`` decodes
whatever the content type says (a PHP server that sends its JSON as ``text/html``).  Messages name the upstream, its host and the path only, never the
query string, headers or body sent (tokens travel there); the helper logs nothing.

A plugin handed a plain ``httpx.AsyncClient`` (its own tests, say) gets the same mapping
from :func:`upstream_fetch` and :func:`decode_json`, given the name, clock and timeout.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

import httpx

from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.http_failures import upstream_errors
from hub.retry_after import response_retry_after

DEFAULT_TIMEOUT_S = 30.0
"""A request's timeout when the connection's options set none: the one default of the kit,
also ``hub.HttpOptions.timeout_s``'s (what a user sees in the connection form)."""
MAX_CONNECT_S = 10.0
"""The longest a connection to the upstream may take to open, whatever the timeout."""
MAX_EXCERPT = 300
"""The most of an error answer's first line a message quotes."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
JSON_TYPES = ("json", "javascript")
"""Content types taken for JSON: any that names one of these (``application/json``,
``text/json``, ``application/vnd.api+json``, ``text/javascript``)."""
REASON_FIELDS = ("message", "error_description", "reason", "error", "detail", "description")
"""The fields :func:`error_text` reads a platform's error text from, in this order."""
Clock = Callable[[], datetime]
Reason = Callable[[httpx.Response], str | None]
RateLimitSignal = Callable[[httpx.Response], float | bool | None]


class NotJson(UpdateFailed):
    """A 2xx answer of another content type than JSON (an HTML page, say)."""


class BrokenJson(UpdateFailed):
    """A 2xx answer that says it is JSON but does not decode."""


def request_timeout(timeout_s: float) -> httpx.Timeout:
    """``timeout_s`` for every phase of a request, at most ``MAX_CONNECT_S`` to connect."""
    return httpx.Timeout(timeout_s, connect=min(timeout_s, MAX_CONNECT_S))


DEFAULT_CLIENT_TIMEOUT = request_timeout(DEFAULT_TIMEOUT_S)
"""The client's own timeout (plain ``get``, ``post``…) when the options set none."""


def options_timeout(options: object) -> float | None:
    """The connection's request timeout: its options' ``timeout_s``, when they have a
    positive finite one (``hub.HttpOptions``)."""
    value = getattr(options, "timeout_s", None)
    usable = isinstance(value, int | float) and not isinstance(value, bool)
    return float(value) if usable and math.isfinite(value) and value > 0 else None


def _utc_now() -> datetime:
    return datetime.now(UTC)


class UpstreamClient(httpx.AsyncClient):
    """The HTTP client of one connection (``ctx.http``): an ``httpx.AsyncClient`` with
    :meth:`fetch` and :meth:`fetch_json` (see the module doc).

    ``upstream`` names the platform in messages, ``timeout_s`` is a request's timeout
    (also the client's own, for plain ``get``… calls; ``DEFAULT_CLIENT_TIMEOUT``
    without), ``now`` the source's clock for ``Retry-After`` dates.
    Other keyword arguments go to ``httpx.AsyncClient``; redirects are never followed.
    """

    def __init__(
        self,
        *,
        upstream: str = "the upstream",
        timeout_s: float | None = None,
        now: Clock | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault(
            "timeout",
            DEFAULT_CLIENT_TIMEOUT if timeout_s is None else request_timeout(timeout_s),
        )
        kwargs["follow_redirects"] = False
        super().__init__(**kwargs)
        self.upstream = upstream
        self.timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else float(timeout_s)
        self.now: Clock = now or _utc_now

    async def fetch(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        url_field: str | None = None,
        accept: Collection[int] = (),
        timeout_s: float | None = None,
        reason: Reason | None = None,
        rate_limit: RateLimitSignal | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send the request; its 2xx answer (or one of ``accept``), else the hub's error.

        ``url_field`` names the option or credential the URL comes from (a redirect or an
        address the guard refuses is that field's fault); ``timeout_s`` overrides the
        connection's; ``reason`` and ``rate_limit`` are the platform's hooks (module doc);
        ``kwargs`` go to ``httpx.AsyncClient.request`` (``params``, ``headers``, ``json``,
        ``auth``…)."""
        return await upstream_fetch(
            self,
            method,
            url,
            upstream=self.upstream,
            now=self.now,
            timeout_s=self.timeout_s if timeout_s is None else timeout_s,
            url_field=url_field,
            accept=accept,
            reason=reason,
            rate_limit=rate_limit,
            **kwargs,
        )

    async def fetch_json(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        url_field: str | None = None,
        accept: Collection[int] = (),
        timeout_s: float | None = None,
        lenient: bool = False,
        **kwargs: Any,
    ) -> Any:
        """:meth:`fetch`, then the 2xx answer's JSON (``NotJson`` or ``BrokenJson`` when it
        has none; ``lenient``: whatever its content type).  An answer of a status in
        ``accept`` that is not 2xx comes back as the ``httpx.Response`` itself, for the
        caller to read."""
        response = await self.fetch(
            method, url, url_field=url_field, accept=accept, timeout_s=timeout_s, **kwargs
        )
        if not response.is_success:  # one of ``accept``
            return response
        return decode_json(response, self.upstream, url_field=url_field, lenient=lenient)


async def upstream_fetch(
    http: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    upstream: str,
    now: Clock | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    url_field: str | None = None,
    accept: Collection[int] = (),
    reason: Reason | None = None,
    rate_limit: RateLimitSignal | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """:meth:`UpstreamClient.fetch` with any ``httpx.AsyncClient``: the upstream's name,
    clock and timeout given here."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        if url_field is not None:
            raise BadConfig(url_field, f"not a usable URL ({exc})") from None
        raise UpdateFailed(f"{upstream}: not a usable URL ({exc})") from None
    who = f"{upstream} at {_host(target)}"
    kwargs.setdefault("timeout", request_timeout(timeout_s))
    with upstream_errors(who, url_field):
        response = await http.request(method, url, follow_redirects=False, **kwargs)
    status = response.status_code
    if response.is_success and rate_limit is not None:
        wait = rate_limit(response)
        if wait is not None and wait is not False:
            text = _reason(reason, response)
            raise RateLimited(
                f"{who} is rate limiting" + (f": {text}" if text else ""),
                retry_after=None if isinstance(wait, bool) else float(wait),
            )
    if response.is_success or status in accept:
        return response
    path = response.request.url.path if _has_request(response) else target.path
    if status in (401, 403):
        raise InvalidAuth(f"{who} refused the credentials (HTTP {status})")
    if status == 429:
        raise RateLimited(
            f"{who} is rate limiting (HTTP 429)",
            retry_after=response_retry_after(response, (now or _utc_now)()),
        )
    if status >= 500:
        text = _reason(reason, response)
        raise CannotConnect(
            f"{who} answered HTTP {status} for {path}" + (f": {text}" if text else "")
        )
    if status in REDIRECTS:
        moved = _redirect_target(response)
        if url_field is not None:
            raise BadConfig(
                url_field,
                f"the server redirects to {moved}: use that address (redirects are not followed)",
            )
        raise UpdateFailed(f"{who} redirects {path} to {moved} (HTTP {status})")
    line = _reason(reason, response) if reason is not None else answer_text(response)
    raise UpdateFailed(f"{who} answered HTTP {status} for {path}" + (f": {line}" if line else ""))


def decode_json(
    response: httpx.Response, upstream: str, *, url_field: str | None = None, lenient: bool = False
) -> Any:
    """The JSON of an answer, or ``NotJson``: "Acme at host answered text/html instead of
    JSON for /path" (with a hint at the address when it is a setting, ``url_field``), or
    ``BrokenJson``: "… sent broken JSON for /path".  ``lenient`` decodes whatever the
    content type (``JSON_TYPES``) says: for a platform whose type says nothing, an answer
    that does not decode is ``BrokenJson`` whatever its type."""
    url = response.request.url if _has_request(response) else response.url
    who, path = f"{upstream} at {_host(url)}", url.path
    kind = response.headers.get("content-type", "")
    is_json = any(name in kind.lower() for name in JSON_TYPES)
    if not is_json and not lenient:
        hint = f": is this a {upstream} server?" if url_field is not None else ""
        raise NotJson(
            f"{who} answered {first_line(kind, 80) or 'no content type'} instead of JSON"
            f" for {path}{hint}"
        )
    try:
        return response.json()
    except ValueError:  # json's and the text decoding's errors alike
        raise BrokenJson(f"{who} sent broken JSON for {path}") from None


async def upstream_fetch_json(
    http: httpx.AsyncClient,
    method: str,
    url: str | httpx.URL,
    *,
    upstream: str,
    lenient: bool = False,
    **kwargs: Any,
) -> Any:
    """:func:`upstream_fetch`, then :func:`decode_json` (no ``accept``)."""
    response = await upstream_fetch(http, method, url, upstream=upstream, **kwargs)
    return decode_json(response, upstream, url_field=kwargs.get("url_field"), lenient=lenient)


def error_text(response: httpx.Response) -> str | None:
    """A platform's error text in an answer, for ``reason=``: the first of
    ``REASON_FIELDS`` that a JSON object body (or its ``error`` object) holds as text,
    else the body's first line; control characters removed, at most ``MAX_EXCERPT``
    characters; ``None`` for an empty body.  An HTML page gives its title or its first
    line of text (``answer_text``)."""
    try:
        body = response.json()
    except ValueError:
        return answer_text(response) or None
    for holder in (body, body.get("error") if isinstance(body, dict) else None):
        if not isinstance(holder, dict):
            continue
        for name in REASON_FIELDS:
            value = holder.get(name)
            if isinstance(value, str) and value.strip():
                return first_line(value) or None
    return first_line(response.text) or None


def answer_text(response: httpx.Response) -> str:
    """What an answer says first, fit to quote: an HTML page's title, else its first line
    of text without the markup; any other body's first line (``first_line``)."""
    text = response.text
    kind = response.headers.get("content-type", "").lower()
    if "html" not in kind and text.lstrip()[:1] != "<":
        return first_line(text)
    title = _TITLE.search(text)
    titled = first_line(html.unescape(title.group(1))) if title else ""
    return titled or first_line(html.unescape(_TAG.sub("\n", _HIDDEN.sub(" ", text))))


_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def _reason(reason: Reason | None, response: httpx.Response) -> str:
    """What ``reason`` makes of ``response``, made safe to quote ("" without one)."""
    if reason is None:
        return ""
    try:
        text = reason(response)
    except Exception:  # a platform's extractor must not hide the failure it explains
        return ""
    return first_line(text) if isinstance(text, str) else ""


def first_line(text: str, limit: int = MAX_EXCERPT) -> str:
    """The first non-blank line of ``text``, control characters removed, at most
    ``limit`` characters: what an error page or a stack trace says first."""
    for line in text.splitlines():
        shown = "".join(c if c.isprintable() else " " for c in line).strip()
        if shown:
            return " ".join(shown.split())[:limit]
    return ""


def _host(url: httpx.URL) -> str:
    """``host`` or ``host:port``: never the user info, path or query."""
    host = url.host
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    return f"{host}:{url.port}" if url.port is not None else host


def _has_request(response: httpx.Response) -> bool:
    try:
        response.request  # noqa: B018 (a response built by hand has none)
    except RuntimeError:
        return False
    return True


def _redirect_target(response: httpx.Response) -> str:
    """Where the answer redirects to, without its query string (it may carry a token)."""
    location = response.headers.get("location", "")
    if not location:
        return "elsewhere"
    try:
        base = response.request.url if _has_request(response) else httpx.URL("")
        moved = base.join(location)
    except (httpx.InvalidURL, ValueError):
        return "elsewhere"
    if not moved.scheme or not moved.host:
        return "elsewhere"
    return f"{moved.scheme}://{_host(moved)}{moved.path}"
