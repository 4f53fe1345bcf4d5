"""The Starlette application and the hypercorn server that runs it under trio."""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import hypercorn.trio
import trio
from hypercorn.config import Config
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

from hub import __version__
from hub.errors import HubError
from hub.metrics import parse_listen
from hub.rules import RULE_TYPES
from hub.web import (
    api_cluster,
    api_connections,
    api_dashboard,
    api_devices,
    api_geofences,
    api_health,
    api_history,
    api_kinds,
    api_metrics,
    api_rules,
    api_sessions,
    api_sinks,
    api_stops,
    api_tenancy,
    ws_compression,
)
from hub.web.auth import Access, AuthGate, check_access
from hub.web.compression import ApiGzip
from hub.web.cors import ApiCors
from hub.web.errors import ApiError, http_exception
from hub.web.inputs import drain_body
from hub.web.live import LiveOptions, live_feed
from hub.web.live import __doc__ as LIVE_DOC
from hub.web.openapi import RETRY_AFTER_HEADER, openapi_document
from hub.web.routing import ApiRequest, ApiRoute, starlette_routes
from hub.web.sessions import authenticate_request

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.web")

GRACEFUL_SECONDS = 5.0
"""How long requests in flight may take to finish at shutdown."""


def api_table() -> list[ApiRoute]:
    """Every JSON route of the API (the OpenAPI route included)."""
    return [
        *api_health.ROUTES,
        ApiRoute("GET", "/openapi.json", openapi_json, Access.PUBLIC,
                 "This OpenAPI document", "health",
                 description="Unauthenticated by design: it describes the API, not data."),
        *api_kinds.ROUTES,
        *api_connections.ROUTES,
        *api_devices.ROUTES,
        *api_history.ROUTES,
        *api_stops.ROUTES,
        *api_dashboard.ROUTES,
        *api_tenancy.ROUTES,
        *api_sessions.ROUTES,
        *api_geofences.ROUTES,
        *api_rules.ROUTES,
        *api_sinks.ROUTES,
        *api_metrics.ROUTES,
        *api_cluster.ROUTES,
        ApiRoute("GET", "/api/live", live_without_upgrade, Access.USER,
                 "The live feed (WebSocket)", "live"),  # documented by _LIVE_PATH
    ]  # fmt: skip


async def live_without_upgrade(req: ApiRequest) -> None:
    """A plain HTTP ``GET /api/live`` (no WebSocket handshake): 401 without a valid
    token, else 426 saying how to connect."""
    raise ApiError(
        426,
        "upgrade_required",
        "the live feed is a WebSocket: connect with a WebSocket client (ws:// or wss://)",
        headers={"Upgrade": "websocket", "Connection": "Upgrade"},
    )


async def openapi_json(req: ApiRequest) -> dict[str, Any]:
    state = req.request.app.state
    if state.openapi is None:  # made on first use, not at start-up: see create_app
        async with state.openapi_made:  # once, however many ask at the same time
            if state.openapi is None:
                state.openapi = await req.run(state.make_openapi)
    document: dict[str, Any] = state.openapi
    return document


_ERROR = {"$ref": "#/components/schemas/ErrorOut"}
_LIVE_PATH = {
    "/api/live": {
        "get": {
            "operationId": "live_feed",
            "summary": "The live feed (WebSocket)",
            "description": (LIVE_DOC or "").strip(),
            "tags": ["live"],
            "x-access": Access.USER.value,
            "x-websocket": True,
            "parameters": [
                {
                    "name": "device_ids",
                    "in": "query",
                    "required": False,
                    "description": "Comma-separated device ids; default: all of yours.",
                    "schema": {"type": "string"},
                }
            ],
            "responses": {
                "101": {"description": "Switching to the WebSocket protocol"},
                "400": {
                    "description": "`device_ids` is not a comma-separated list of ids",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "401": {
                    "description": "Invalid token in the Authorization header (or, without "
                    "a WebSocket handshake, no token)",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "403": {
                    "description": "Origin not allowed",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "426": {
                    "description": "A plain HTTP request, not a WebSocket handshake",
                    "content": {"application/json": {"schema": _ERROR}},
                },
                "429": {
                    "description": "Too many failed authentication attempts from your "
                    "address (also close code 4029 after an `auth` message)",
                    "headers": {"Retry-After": RETRY_AFTER_HEADER},
                    "content": {"application/json": {"schema": _ERROR}},
                },
            },
        }
    }
}


def create_app(hub: Hub, *, live: LiveOptions | None = None) -> Starlette:
    """The API of ``hub``.  ``live`` overrides the live feed's options (tests)."""
    table = api_table()
    routes: list[BaseRoute] = [
        *starlette_routes(table),
        WebSocketRoute("/api/live", live_feed, name="live_feed"),
        *plugin_mounts(hub),
        *plugin_pages(hub),  # last: the API's own paths always win
    ]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"hub": hub}

    app = Starlette(
        routes=routes,
        middleware=[*_cors(hub), Middleware(ApiGzip)],
        exception_handlers={HTTPException: http_exception},
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.auth_gate = AuthGate(hub.settings)  # failed authentication, per address
    app.state.live = live or LiveOptions.from_settings(hub.settings)
    app.state.closing = trio.Event()  # set when the server starts shutting down
    app.state.table = table
    # the document takes a fifth of a second of pydantic schema building: made when
    # /openapi.json is first asked for (on a worker thread), readiness does not wait
    app.state.openapi = None
    app.state.openapi_made = trio.Lock()
    app.state.make_openapi = functools.partial(
        openapi_document,
        table,
        title="gpshub",
        version=__version__,
        extra_paths=_LIVE_PATH,
        installed={
            "sources": list(hub.registry.sources),
            "sinks": list(hub.registry.sinks),
            "formats": list(hub.registry.formats),
            "rule_types": list(RULE_TYPES),
        },
    )
    return app


def _cors(hub: Hub) -> list[Middleware]:
    """Browsers on ``settings.allowed_origins`` may call the API (``hub.web.cors``)."""
    origins = list(hub.settings.allowed_origins)
    if not origins:
        return []
    return [Middleware(ApiCors, origins=origins)]


# -- plugin routes ---------------------------------------------------------------------
class _RequireToken:
    """Guards a plugin's routes: a valid API token or browser session is required (a
    session's writes need its CSRF token, ``hub.web.sessions``); the caller is put in
    ``request.state.principal``.  Tenancy inside is the plugin's business."""

    def __init__(self, hub: Hub, app: Any) -> None:
        self.hub = hub
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        try:
            principal = await authenticate_request(self.hub, scope)  # a token or a session
            check_access(principal, Access.USER)
        except ApiError as exc:
            if scope["type"] == "http":
                response = exc.response()
                if not await drain_body(Request(scope, receive)):  # keep-alive stays usable
                    response.headers["connection"] = "close"
                await response(scope, receive, send)
            elif "websocket.http.response" in scope.get("extensions", {}):
                # a WebSocket is refused at the handshake with the HTTP answer, as /api/live
                await exc.response()(scope, receive, send)
            else:
                code = 4029 if exc.status == 429 else 4001
                await send({"type": "websocket.close", "code": code, "reason": exc.code})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


def plugin_mounts(hub: Hub) -> list[Mount]:
    """The routes plugins register, each under ``/api/plugins/<plugin>``, token required."""
    pm = getattr(hub, "plugin_manager", None)
    if pm is None:
        return []
    mounts = []
    for impl in pm.hook.register_routes.get_hookimpls():
        routes = impl.function(hub=hub)
        if routes:
            mounts.append(
                Mount(
                    f"/api/plugins/{impl.plugin_name}",
                    app=_RequireToken(hub, Router(list(routes))),
                    name=f"plugin:{impl.plugin_name}",
                )
            )
    return mounts


RESERVED_PATHS = ("/api", "/openapi.json", "/healthz", "/readyz", "/metrics")
"""The API's paths: a plugin's page may not be served at one of them or below it."""


def _reserved(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in RESERVED_PATHS)


def plugin_pages(hub: Hub) -> list[BaseRoute]:
    """The public routes plugins serve from the root (``register_pages``), in plugin
    order.  A route at an API path, or at a path another plugin serves, is a start-up
    error naming both."""
    pm = getattr(hub, "plugin_manager", None)
    if pm is None:
        return []
    routes: list[BaseRoute] = []
    owners: dict[str, str] = {}
    for impl in pm.hook.register_pages.get_hookimpls():
        for route in impl.function(hub=hub) or []:
            path = getattr(route, "path", "")
            if not path.startswith("/") or _reserved(path) or path.startswith("/{"):
                raise HubError(
                    f"plugin {impl.plugin_name!r} may not serve a page at {path!r}: "
                    f"the API keeps {', '.join(RESERVED_PATHS)}"
                )
            if path in owners:
                raise HubError(
                    f"plugins {owners[path]!r} and {impl.plugin_name!r} both serve {path!r}"
                )
            owners[path] = impl.plugin_name
            routes.append(route)
    return routes


# -- serving ---------------------------------------------------------------------------
class ListenError(HubError):
    """The server could not listen on its address (in use, not ours, no permission)."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        shown = f"[{host}]" if ":" in host else host
        super().__init__(f"cannot listen on {shown}:{port}: {reason}")
        self.host, self.port, self.reason = host, port, reason


def _os_error(exc: BaseException) -> OSError | None:
    """The ``OSError`` in ``exc`` or in the exception groups it is wrapped in."""
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _os_error(inner)
            if found is not None:
                return found
    return None


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "address already in use"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no such address on this machine"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()


def _config(host: str, port: int, options: LiveOptions) -> Config:
    config = Config()
    bind_host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    config.bind = [f"{bind_host}:{port}"]
    config.accesslog = None  # requests are not logged (URLs could be, but never tokens)
    config.errorlog = logging.getLogger("hypercorn.error")
    config.websocket_max_message_size = options.max_message_bytes
    config.graceful_timeout = GRACEFUL_SECONDS
    config.include_server_header = False
    return config


async def serve(
    hub: Hub,
    host: str,
    port: int,
    *,
    app: Starlette | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the API until cancelled; report the base URL (``http://host:port``) once bound.

    With the ``metrics_listen`` setting, ``/metrics`` is also served alone, without a
    token, on that address.  Cancellation (the hub shutting down) triggers a graceful
    shutdown: hypercorn stops accepting, live sockets are closed with 1001, and requests
    in flight get ``GRACEFUL_SECONDS`` to finish.  Port 0 binds a free port.  An address
    that cannot be listened on raises ``ListenError``.
    """
    app = app or create_app(hub)
    ws_compression.install(hub.settings.live_compression)
    closing: trio.Event = app.state.closing
    metrics_at = parse_listen(hub.settings.metrics_listen) if hub.settings.metrics_listen else None
    scopes: list[trio.CancelScope] = []

    async with trio.open_nursery() as nursery:
        url = await _start(nursery, app, _config(host, port, app.state.live), closing, scopes)
        log.info("API listening on %s", url)
        if metrics_at is not None:
            from hub.web.api_metrics import metrics_app

            config = _config(*metrics_at, app.state.live)
            murl = await _start(nursery, metrics_app(hub), config, closing, scopes)
            hub.metrics.url = murl + "/metrics"
            log.info("metrics served without a token on %s/metrics", murl)
        task_status.started(url)
        try:
            await trio.sleep_forever()
        finally:
            closing.set()
            for scope in scopes:
                scope.deadline = trio.current_time() + GRACEFUL_SECONDS + 2


async def _start(
    nursery: trio.Nursery,
    app: Any,
    config: Config,
    closing: trio.Event,
    scopes: list[trio.CancelScope],
) -> str:
    """Start hypercorn serving ``app``; its base URL once it listens."""
    server_scope = trio.CancelScope(shield=True)
    scopes.append(server_scope)

    async def run(task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
        with server_scope:  # shielded: our own cancellation becomes a graceful shutdown
            await hypercorn.trio.serve(
                app, config, shutdown_trigger=closing.wait, task_status=task_status
            )

    try:
        binds: list[str] = await nursery.start(run)
    except Exception as exc:
        error = _os_error(exc)
        if error is None:
            raise
        host, _, port = config.bind[0].rpartition(":")
        raise ListenError(host.strip("[]"), int(port), _reason(error)) from None
    return binds[0]
