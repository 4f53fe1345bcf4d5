"""Origins: whether a browser's ``Origin`` is the hub's own or an allowed one.

Origins are compared by scheme, host and port, without case, a trailing slash or a
default port (``https://a.example:443/`` is ``https://a.example``).  The hub's own origin
is the one whose host (and port) is the request's ``Host``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

__all__ = ["origin_allowed"]


def _origin_key(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    port = parts.port
    default = {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def origin_allowed(
    origin: str | None, host: str | None, allowed: Iterable[str], *, wildcard: bool = True
) -> bool:
    """Whether a request's ``Origin`` is the hub's own (the ``Host``) or in ``allowed``;
    a request without one (not a browser) passes.  ``*`` in ``allowed`` allows any
    origin, unless ``wildcard`` is false (a browser session's writes: see
    ``hub.web.sessions``)."""
    if origin is None:
        return True
    allowed = list(allowed)
    if "*" in allowed and wildcard:
        return True
    try:
        key = _origin_key(origin)
        if key in {_origin_key(a) for a in allowed}:
            return True
        netloc = urlsplit(origin.strip().lower()).netloc
    except ValueError:
        return False
    return bool(host) and netloc == (host or "").strip().lower()
