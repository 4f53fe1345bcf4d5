"""A tiny declarative route table.

Each ``ApiRoute`` says what a route takes (path, query and body models), who may call
it (``Access``) and what it answers.  The same table builds the Starlette routes (with
authentication, access checks, request parsing and error answers done here, once, for
every route) and the OpenAPI document (``hub.web.openapi``).

A handler gets an ``ApiRequest`` and returns a pydantic model or a plain JSON value
(answered with the route's ``status``), ``None`` (204) or any Starlette ``Response``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, compile_path

from hub.blocking import run_blocking
from hub.logging_setup import redact
from hub.store import Principal
from hub.web.auth import Access, check_access
from hub.web.errors import ApiError, bad_parameter, error_for, first_error, invalid
from hub.web.inputs import (
    ID_CONVERTOR,
    check_body,
    check_query,
    drain_body,
    load_json,
    parse_id,
)
from hub.web.sessions import authenticate_request

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.web")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Handler = Callable[["ApiRequest"], Awaitable[Any]]

_INT_PARAM = re.compile(r"{(\w+):int}")
MAX_BODY_BYTES = 1024 * 1024
DISCARD_MAX_BYTES = 16 * MAX_BODY_BYTES  # a refused body read and dropped, at most


@dataclass(frozen=True, slots=True)
class ApiRoute:
    method: str
    path: str
    handler: Handler
    access: Access
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    description: str = ""
    errors: tuple[int, ...] = ()
    """Error statuses worth documenting besides the ones every route may answer."""
    media_types: tuple[str, ...] = ()
    """Other media types the success answer may have (downloads)."""

    @property
    def name(self) -> str:
        return self.handler.__name__.lstrip("_")


@dataclass(slots=True)
class ApiRequest:
    """What a handler gets: the request, the hub, the caller and the parsed input."""

    request: Request
    hub: Hub
    caller: Principal | None
    body: BaseModel | None = None
    query: BaseModel | None = None
    ids: dict[str, int] = field(default_factory=dict)
    """The path's ``{name:int}`` parameters, parsed and checked."""

    @property
    def principal(self) -> Principal:
        """The authenticated caller (every route but the public ones has one)."""
        assert self.caller is not None, "a public route has no caller"
        return self.caller

    @property
    def scope(self) -> int | None:
        """The client whose data the caller may see; ``None`` for the administrator."""
        return self.principal.scope

    def path_int(self, name: str) -> int:
        return self.ids[name]

    def body_as(self, model: type[M]) -> M:
        if self.body is None:
            return model()
        assert isinstance(self.body, model)
        return self.body

    def query_as(self, model: type[M]) -> M:
        assert isinstance(self.query, model)
        return self.query

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking (store) call on a worker thread."""
        return await run_blocking(functools.partial(fn, *args, **kwargs))


def starlette_routes(table: list[ApiRoute]) -> list[Route]:
    names = [spec.name for spec in table]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"handler names must be unique (operation ids): {duplicates}")
    return [_route(spec) for spec in table]


def _route(spec: ApiRoute) -> Route:
    """The Starlette route of ``spec``.  Its ``{name:int}`` parameters match any signed
    number (``_handle`` checks the range with ``parse_id``), while ``route.path`` keeps
    saying ``{name:int}``."""
    route = Route(spec.path, _endpoint(spec), methods=[spec.method], name=spec.name)
    routed = spec.path.replace(":int}", f":{ID_CONVERTOR}}}")
    route.path_regex, route.path_format, route.param_convertors = compile_path(routed)
    return route


def _endpoint(spec: ApiRoute) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            response = await _handle(spec, request)
        except Exception as exc:
            error = error_for(exc)
            if error is None:
                _log_bug(request, exc)
                error = ApiError(500, "internal", "internal error; the hub's log has details")
            response = error.response()
        if not await drain_body(request, DISCARD_MAX_BYTES):
            response.headers["connection"] = "close"  # the rest of the body is not read
        response.headers.setdefault("x-content-type-options", "nosniff")
        if spec.access is not Access.PUBLIC:
            response.headers.setdefault("cache-control", "no-store")  # tokens, private data
        return response

    endpoint.__name__ = spec.name
    return endpoint


async def _handle(spec: ApiRoute, request: Request) -> Response:
    hub: Hub = request.app.state.hub
    caller = None
    if spec.access is not Access.PUBLIC:
        caller = await authenticate_request(hub, request.scope)  # a token or a session
        check_access(caller, spec.access)
    ids = {name: parse_id(name, str(value)) for name, value in _int_params(spec, request)}
    query = _parse_query(spec.query, request) if spec.query else None
    body = await _parse_body(spec, request) if spec.body else None
    result = await spec.handler(ApiRequest(request, hub, caller, body, query, ids))
    if spec.method != "GET":
        await _apply_changes(hub)
    return _answer(result, spec.status)


async def _apply_changes(hub: Hub) -> None:
    """Apply what the request changed before answering (``hub.changes``): a revoked
    token's live sockets are closed, a new connection is polled, and so on."""
    try:
        await hub.changes.catch_up()
    except Exception:  # the change is stored; the feed applies it on its next round
        log.exception("applying the request's changes failed")


def _answer(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(status_code=204)
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json")
    return JSONResponse(result, status_code=status)


def _int_params(spec: ApiRoute, request: Request) -> list[tuple[str, Any]]:
    return [
        (name, request.path_params[name])
        for name in _INT_PARAM.findall(spec.path)
        if name in request.path_params
    ]


def _parse_query(model: type[BaseModel], request: Request) -> BaseModel:
    params = dict(request.query_params)
    check_query(model, params)
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise bad_parameter(field or "query", message) from None


async def _parse_body(spec: ApiRoute, request: Request) -> BaseModel | None:
    assert spec.body is not None
    raw = await _read_body(request)
    if not raw.strip():
        if spec.body_required:
            raise invalid("body", "a JSON object is required")
        return None
    data = load_json(raw)
    if not isinstance(data, dict):
        raise invalid("body", "must be a JSON object")
    check_body(spec.body, data)
    try:
        # strict: the JSON types the schema states (no "5" for an integer, no 1 for true)
        return spec.body.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        field, message = first_error(exc)
        raise invalid(field or "body", message) from None


async def _read_body(request: Request) -> bytes:
    """The body, up to ``MAX_BODY_BYTES``; a larger one is a 413.  The endpoint reads and
    drops the rest of a refused body (``drain_body``, up to ``DISCARD_MAX_BYTES``): a
    client that sends its whole body before it reads the answer (httpx, most libraries)
    would otherwise wait on a full socket buffer and never see the 413; beyond the bound
    the server stops reading and closes the connection after the answer."""
    length = request.headers.get("content-length")
    if (
        length
        and length.isascii()
        and length.isdigit()
        and len(length) < 20
        and int(length) > MAX_BODY_BYTES
    ):
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large() -> ApiError:
    return ApiError(413, "too_large", f"the body may have at most {MAX_BODY_BYTES} bytes")


def _log_bug(request: Request, exc: Exception) -> None:
    # The frames, and the message only when it cannot quote a request's input
    # (a ValidationError quotes it, and the input may hold credentials).
    text = "" if isinstance(exc, ValidationError) else redact(str(exc))
    frames = "".join(traceback.format_tb(exc.__traceback__))
    log.error(
        "%s %s failed with %s: %s\n%s",
        request.method,
        request.url.path,
        type(exc).__name__,
        text,
        frames,
    )
