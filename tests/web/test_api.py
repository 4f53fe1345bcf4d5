"""The API as a whole: OpenAPI document, probes, error shapes, secrets, plugin routes."""

from __future__ import annotations

import json
import logging
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fakesource
import pytest
from harness import ORIGIN, Web, make_hub
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from hub.errors import HubError
from hub.hookspecs import hookimpl
from hub.models import ConnectionState
from hub.plugins import load_plugins
from hub.registry import Registry
from hub.web import create_app

MARKER = "S3CRET-MARKER"


async def test_openapi_lists_every_route(web: Web) -> None:
    r = await web.get(None, "/openapi.json")
    assert r.status_code == 200
    doc = json.loads(r.text)
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    app = create_app(web.hub)
    for route in app.routes:
        path = route.path.replace(":int", "")  # type: ignore[attr-defined]
        assert path in paths, path
        for method in getattr(route, "methods", None) or {"GET"}:
            if method != "HEAD":
                assert method.lower() in paths[path], (method, path)
    schemas = doc["components"]["schemas"]
    for name in ("ConnectionCreate", "ConnectionOut", "DeviceOut", "ErrorOut", "TestOutcome"):
        assert name in schemas
    op = paths["/api/connections"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ConnectionCreate"
    }
    assert set(op["responses"]) >= {"201", "401", "403", "422"}
    assert op["x-access"] == "manager"
    assert doc["security"] == [{"bearerAuth": []}]
    for public in ("/healthz", "/readyz", "/openapi.json"):
        assert paths[public]["get"]["security"] == []
        assert "Unauthenticated by design" in paths[public]["get"]["description"]
    history = paths["/api/devices/{id}/positions"]["get"]
    params = {p["name"]: p for p in history["parameters"]}
    assert set(params) == {"id", "from", "to", "limit", "cursor", "format"}
    assert params["id"]["in"] == "path" and params["from"]["in"] == "query"
    assert "text/csv" in history["responses"]["200"]["content"]
    assert paths["/api/live"]["get"]["x-websocket"] is True

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["$ref"]] if "$ref" in node else []
            return own + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


async def test_probes(web: Web) -> None:
    assert (await web.get(None, "/healthz")).json() == {"status": "ok"}
    r = await web.get(None, "/readyz")
    assert r.json() == {"status": "ready", "checks": {"database": "ok", "hub": "ok"}}


async def test_readiness_fails_without_a_running_hub(tmp_path: Path) -> None:
    import httpx

    hub = make_hub(tmp_path)
    transport = httpx.ASGITransport(app=create_app(hub))
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
        r = await http.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["hub"] == "stopped"


async def test_router_errors_are_json(web: Web) -> None:
    r = await web.get("admin", "/api/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = await web.call("admin", "PUT", "/api/devices")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = await web.get("admin", "/api/devices/not-a-number")
    assert r.status_code == 404


async def test_secrets_never_leave(web: Web, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def call(who: str, method: str, path: str, **kw: Any) -> Any:
        r = await web.call(who, method, path, **kw)
        seen.append(f"{method} {path} {r.status_code} {r.text}")
        return r

    creds = {"username": "ann", "password": f"{MARKER}-pw"}
    r = await call(
        "a_mgr",
        "POST",
        "/api/connections",
        json={"kind": "fake", "label": "L", "credentials": creds},
    )
    fake = r.json()["id"]
    r = await call(
        "a_mgr",
        "POST",
        "/api/connections",
        json={"kind": "plain", "label": "P", "credentials": {"api_key": f"{MARKER}-key"}},
    )
    plain = r.json()["id"]
    # a plugin that quotes its credentials in an error (the runner stores it as is)
    web.hub.store.set_connection_status(
        fake, state=ConnectionState.FAILING, last_error=f"login with password={MARKER}-pw failed"
    )
    web.hub.store.set_connection_status(plain, last_error=f"key {MARKER}-key refused")

    device = web.device("a", name="linked", connection_id=fake, upstream_id="1001")
    await web.write_positions(device, 2)
    for route in create_app(web.hub).routes:  # every GET route
        if "GET" in (getattr(route, "methods", None) or ()):
            ids = {"id": fake if "/connections/" in route.path else device, "kind": "fake"}
            path = re.sub(r"{(\w+)(?::\w+)?}", lambda m, ids=ids: str(ids[m[1]]), route.path)
            for who in ("admin", "a_view"):
                await call(who, "GET", path, params={"since": "2026-01-01T00:00:00Z"})
    for cid in (fake, plain):
        for suffix in ("", "/status", "/remote-devices"):
            await call("a_view", "GET", f"/api/connections/{cid}{suffix}")
        await call("a_mgr", "POST", f"/api/connections/{cid}/test")
        await call("a_mgr", "POST", f"/api/connections/{cid}/import")
    path = f"/api/connections/{fake}"
    await call(
        "a_mgr", "POST", f"{path}/test", json={"credentials": {"password": f"leak-{MARKER}"}}
    )
    await call("a_mgr", "POST", f"{path}/test", json={"credentials": {"password": "boom"}})
    await call(
        "a_mgr", "PATCH", path, json={"credentials": {"username": "", "password": f"{MARKER}-2"}}
    )
    await call("a_mgr", "PATCH", path, json={"credentials": {"password": f"leak-{MARKER}"}})
    await call("a_view", "GET", f"{path}/remote-devices")  # now fails upstream: 502
    await call(
        "a_mgr",
        "POST",
        "/api/connections/test",
        json={"kind": "fake", "credentials": {"username": "", "password": f"{MARKER}-3"}},
    )
    await call(
        "a_mgr",
        "POST",
        "/api/connections",
        json={"kind": "fake", "label": "L", "credentials": {"password": f"{MARKER}-4", "x": 1}},
    )
    await call(
        "a_mgr",
        "POST",
        "/api/connections",
        json={"kind": "fake", "label": "L", "credentials": f"{MARKER}"},
    )

    assert len(seen) > 20
    assert any("[redacted]" in s for s in seen)  # the stored errors were scrubbed, not dropped
    assert any('"code":"update_failed"' in s for s in seen)
    assert any('"code":"source_error"' in s for s in seen)
    leaks = [s for s in seen if MARKER in s]
    assert not leaks, leaks
    assert MARKER not in caplog.text
    assert "boom" not in caplog.text  # an unexpected failure logs its type only
    assert "RuntimeError" in caplog.text


def routes_plugin() -> types.ModuleType:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": request.state.principal.name})

    module = types.ModuleType("extras")

    @hookimpl
    def register_routes(hub: Any) -> list[Any]:
        return [Route("/hello", hello)]

    module.register_routes = register_routes  # type: ignore[attr-defined]
    return module


async def test_plugin_routes_require_a_token(tmp_path: Path, start_web: Callable[..., Any]) -> None:
    hub = make_hub(tmp_path)
    pm, infos = load_plugins(
        extra=[("testsource", fakesource), ("extras", routes_plugin())], use_entry_points=False
    )
    hub.registry = Registry.collect(pm, infos)
    hub.plugin_manager = pm
    async with start_web(hub=hub) as web:
        r = await web.get(None, "/api/plugins/extras/hello")
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        r = await web.get("malformed", "/api/plugins/extras/hello")
        assert r.status_code == 401
        r = await web.get("a_view", "/api/plugins/extras/hello")
        assert r.json() == {"hello": "a_view"}


async def test_browsers_of_allowed_origins_may_call(web: Web) -> None:
    preflight = {"Access-Control-Request-Method": "PATCH"}
    r = await web.http.options("/api/devices/1", headers={"Origin": ORIGIN, **preflight})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in r.headers["access-control-allow-headers"].lower()
    r = await web.http.options(
        "/api/devices/1", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in r.headers
    r = await web.get("a_view", "/api/devices")
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def pages_plugin(*paths: str) -> types.ModuleType:
    async def page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"page {request.url.path}")

    module = types.ModuleType("site")

    @hookimpl
    def register_pages(hub: Any) -> list[Any]:
        return [Route(path, page) for path in paths]

    module.register_pages = register_pages  # type: ignore[attr-defined]
    return module


def hub_with(tmp_path: Path, *plugins: tuple[str, types.ModuleType]) -> Any:
    hub = make_hub(tmp_path)
    pm, infos = load_plugins(extra=[("testsource", fakesource), *plugins], use_entry_points=False)
    hub.registry = Registry.collect(pm, infos)
    hub.plugin_manager = pm
    return hub


async def test_plugin_pages_are_public_at_the_root_and_the_api_comes_first(
    tmp_path: Path, start_web: Callable[..., Any]
) -> None:
    hub = hub_with(tmp_path, ("site", pages_plugin("/", "/about")))
    async with start_web(hub=hub) as web:
        r = await web.get(None, "/")
        assert r.status_code == 200 and r.text == "page /"
        assert (await web.get(None, "/about")).text == "page /about"
        assert (await web.get(None, "/healthz")).status_code == 200
        r = await web.get(None, "/api/devices")  # still the API's, still guarded
        assert r.status_code == 401
        r = await web.get(None, "/nowhere")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/x", "/api", "/openapi.json", "/metrics", "/healthz/x"])
def test_a_plugin_page_may_not_take_an_api_path(tmp_path: Path, path: str) -> None:
    hub = hub_with(tmp_path, ("site", pages_plugin(path)))
    with pytest.raises(HubError, match="may not serve a page"):
        create_app(hub)
    hub.store.close()


def test_two_plugins_may_not_serve_the_same_page(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, ("site", pages_plugin("/")), ("other", pages_plugin("/")))
    with pytest.raises(HubError, match="both serve '/'"):
        create_app(hub)
    hub.store.close()
