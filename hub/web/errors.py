"""Error answers: ``{"error": {"code", "message", "field"}}`` with a fitting status.

Handlers raise ``ApiError`` (or let the store's ``NotFound``/``Conflict``/``Invalid``
through); ``error_for`` maps whatever was raised to an answer.  Messages never carry a
credential value: texts that come from a source go through ``scrub`` first.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from hub.errors import BadConfig
from hub.store import Conflict, Invalid, NotFound

log = logging.getLogger("hub.web")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    426: "upgrade_required",
    500: "internal",
    502: "upstream_error",
    503: "not_ready",
}


class ApiError(Exception):
    """An error answer: ``status``, a stable ``code``, a message and the field concerned."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.field, self.headers)


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def invalid(field: str, message: str) -> ApiError:
    """A 422: the request body is well-formed JSON but ``field`` is unacceptable."""
    return ApiError(422, "invalid", message, field)


def bad_parameter(field: str, message: str) -> ApiError:
    """A 400: a query-string parameter is unacceptable."""
    return ApiError(400, "bad_request", message, field)


def forbidden(message: str, field: str | None = None) -> ApiError:
    return ApiError(403, "forbidden", message, field)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def first_error(exc: ValidationError, prefix: str = "") -> tuple[str | None, str]:
    """The dotted location and message of a validation error's first problem."""
    err = exc.errors(include_input=False, include_url=False)[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}.{loc}" if prefix and loc else (loc or prefix or None)
    message = str(err["msg"])
    if err["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    return field, message


def error_for(exc: Exception) -> ApiError | None:
    """The answer for an exception the API expects; ``None`` for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotFound):
        return not_found(str(exc))
    if isinstance(exc, Conflict):
        return ApiError(409, "conflict", exc.reason, exc.field)
    if isinstance(exc, Invalid):
        return invalid(exc.field, exc.reason)
    if isinstance(exc, BadConfig):
        return invalid(exc.field, exc.reason)
    return None


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (no such route, method not allowed) in our shape."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    message = {404: "no such route", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers or {})
    from hub.web.inputs import drain_body  # it uses this module

    if not await drain_body(request):
        headers["Connection"] = "close"
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
            message = f"method not allowed; this path allows {headers['Allow']}"
    return error_response(exc.status_code, code, message, headers=headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the application takes on the request's path.

    Starlette's own ``Allow`` names the first route that matches the path only, while
    one path is often served by several routes (``GET`` and ``POST /api/devices``)."""
    methods: set[str] = set()
    router = getattr(request.app, "router", None)
    for route in getattr(router, "routes", []):
        if isinstance(route, Route) and route.methods:
            match, _ = route.matches(request.scope)
            if match is not Match.NONE:
                methods |= route.methods
    return sorted(methods)
