"""CORS for the REST API: browsers on ``settings.allowed_origins`` may call it.

The same list lets a browser page open the live WebSocket (``hub.web.live``).  ``*``
allows every origin.  Origins are compared as the live feed compares them: scheme, host
and port, without case, a trailing slash or a default port (``https://a.example:443/``
is ``https://a.example``).

Calls carry the token in ``Authorization``, never cookies, so credentials mode is never
allowed, and ``*`` answers ``Access-Control-Allow-Origin: *``.  A preflight may ask for the
methods the API has (GET, POST, PUT, PATCH, DELETE) and the headers it reads
(``Authorization``, ``Content-Type`` and the CORS-safelisted ones); a refused preflight
is a 400 with the usual JSON error saying what was refused.  Answers expose
``Content-Disposition`` (downloads' file names) and ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp

from hub.web.errors import error_response
from hub.web.live import origin_allowed

ALLOW_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOW_HEADERS = ("Authorization", "Content-Type")
EXPOSE_HEADERS = ("Content-Disposition", "Retry-After")
MAX_AGE_S = 600


class ApiCors(CORSMiddleware):
    """Starlette's CORS middleware with the hub's origin matching and JSON refusals."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=list(origins),
            allow_methods=ALLOW_METHODS,
            allow_headers=ALLOW_HEADERS,
            allow_credentials=False,
            expose_headers=EXPOSE_HEADERS,
            max_age=MAX_AGE_S,
        )

    def is_allowed_origin(self, origin: str) -> bool:
        return origin_allowed(origin, None, self.allow_origins)

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        headers = {
            k: v for k, v in response.headers.items() if k.lower().startswith(("access-", "vary"))
        }
        return error_response(
            400,
            "cors_refused",
            f"cross-origin request refused ({refused}): allowed_origins names the origins; "
            f"methods: {', '.join(ALLOW_METHODS)}; headers: {', '.join(ALLOW_HEADERS)}",
            headers=headers,
        )
