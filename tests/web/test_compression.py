"""The API's GET answers are gzip-compressed for clients that accept it; the session's
answer (it holds the CSRF token) and writes never are."""

from __future__ import annotations

import httpx
import trio
from harness import Web
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hub.testing import serve_app
from hub.web.compression import ApiGzip

BIG = {"items": [f"device number {i}" for i in range(500)]}  # ~10 KiB of JSON


async def test_a_large_list_comes_compressed(web: Web) -> None:
    for i in range(60):
        r = await web.post("a_mgr", "/api/devices", json={"name": f"Delivery van {i:03}"})
        assert r.status_code == 201
    asked = web.headers("a_view")
    r = await web.http.get("/api/devices", headers={**asked, "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert len(r.json()["devices"]) == 60  # httpx decoded it
    assert int(r.headers["content-length"]) < len(r.content) / 4
    plain = await web.http.get("/api/devices", headers={**asked, "Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.json() == r.json()


async def test_only_get_under_api_and_never_the_session() -> None:
    async def big(request: Request) -> JSONResponse:
        return JSONResponse(BIG)

    paths = ["/api/big", "/api/session", "/elsewhere"]
    app = ApiGzip(Starlette(routes=[Route(p, big, methods=["GET", "POST"]) for p in paths]))
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, app)
        async with httpx.AsyncClient(base_url=url, headers={"Accept-Encoding": "gzip"}) as http:
            raw = await http.get("/api/big")
            assert raw.headers.get("content-encoding") == "gzip"
            assert raw.json() == BIG
            for method, path in (
                ("GET", "/api/session"),
                ("GET", "/elsewhere"),
                ("POST", "/api/big"),
            ):
                r = await http.request(method, path)
                assert "content-encoding" not in r.headers, (method, path)
                assert r.json() == BIG
        nursery.cancel_scope.cancel()
