"""gzip for the API's answers to GET requests.

A dashboard's first load reads every device and its newest position: about 1.2 MB of
JSON for 1,000 devices, a tenth of that compressed.  Starlette's ``GZipMiddleware`` does
the work (for clients that send ``Accept-Encoding: gzip``, answers of 1 KiB or more,
streamed downloads too); this wrapper limits it to ``GET`` under ``/api/``, and leaves out
``/api/session``, whose answer holds the CSRF token: an answer that mixes a secret with
text an attacker may choose should not be compressed (the BREACH attack), and writes
(``POST /api/tokens`` shows a new token) are small anyway.  Pages a plugin serves
compress their own files.
"""

from __future__ import annotations

from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

MINIMUM_SIZE = 1024
LEVEL = 6  # zlib's default: ~90% of level 9's gain at a third of its CPU
NOT_COMPRESSED = frozenset({"/api/session"})


class ApiGzip:
    """ASGI middleware: gzip-compress ``GET /api/...`` answers (see the module doc)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=MINIMUM_SIZE, compresslevel=LEVEL)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"].startswith("/api/")
            and scope["path"] not in NOT_COMPRESSED
        ):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
