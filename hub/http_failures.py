"""What a source reports when an HTTP request to its upstream fails before an answer.

Every cloud plugin maps httpx's failures the same way, so the hub's statuses read alike
whichever platform failed::

    with upstream_errors("Traccar at demo.traccar.org", "credentials.server_url"):
        response = await http.get(url)

* a timeout: ``CannotConnect`` "… did not answer in time (ReadTimeout)";
* an address the outbound guard refuses: ``BadConfig`` naming ``url_field`` (the user
  must change it; retrying cannot help), or, with ``url_field=None`` (a fixed, built-in
  upstream), ``CannotConnect`` like any other unreachable host;
* any other transport failure: ``CannotConnect`` "cannot reach …: ConnectError: …";
* an answer httpx cannot read (a broken encoding, say): ``UpdateFailed``.

httpx's messages may end with the URL, query string included, where a platform takes
its token: the detail shown stops before it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from hub.errors import BadConfig, CannotConnect, UpdateFailed
from hub.netguard import blocked_reason

MAX_DETAIL = 200


def failure_detail(exc: BaseException) -> str:
    """``ConnectError: [Errno 111] Connection refused``: the exception's type and its
    message up to any URL, at most ``MAX_DETAIL`` characters of it."""
    text = str(exc).split(" for url ")[0].strip()[:MAX_DETAIL]
    name = type(exc).__name__
    return f"{name}: {text}" if text and text != name else name


@contextmanager
def upstream_errors(who: str, url_field: str | None) -> Iterator[None]:
    """Raise the hub's error for an httpx failure in the block (see the module doc);
    ``who`` names the upstream in messages ("Traccar at demo.traccar.org")."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise CannotConnect(f"{who} did not answer in time ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        reason = blocked_reason(exc)
        if reason is not None and url_field is not None:
            raise BadConfig(url_field, reason) from None
        raise CannotConnect(f"cannot reach {who}: {failure_detail(exc)}") from None
    except httpx.HTTPError as exc:
        raise UpdateFailed(f"unreadable answer from {who}: {type(exc).__name__}") from None
