"""CORS: ``allowed_origins`` lets browser pages on those origins call the REST API (and
open the live feed), with preflights, simple requests and readable errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from harness import ORIGIN, Web, make_hub
from test_live import live, receive

from hub.config import Settings

PREFLIGHT = {
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization, content-type",
}


def preflight(web: Web, origin: str, **headers: str) -> Any:
    return web.http.options("/api/devices/1", headers={"Origin": origin, **PREFLIGHT, **headers})


async def test_a_preflight_from_an_allowed_origin(web: Web) -> None:
    r = await preflight(web, ORIGIN)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == ORIGIN
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    allowed = r.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "access-control-allow-credentials" not in r.headers  # tokens, never cookies
    assert int(r.headers["access-control-max-age"]) > 0


@pytest.mark.parametrize(
    ("origin", "extra", "refused"),
    [
        ("https://evil.example", {}, "origin"),
        (ORIGIN, {"Access-Control-Request-Method": "PROPFIND"}, "method"),
        (ORIGIN, {"Access-Control-Request-Headers": "authorization, x-evil"}, "headers"),
    ],
)
async def test_a_refused_preflight_says_why_in_json(
    web: Web, origin: str, extra: dict[str, str], refused: str
) -> None:
    r = await preflight(web, origin, **extra)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "cors_refused" and refused in error["message"]
    if origin != ORIGIN:
        assert "access-control-allow-origin" not in r.headers


async def test_simple_requests_and_errors_are_readable_by_the_page(web: Web) -> None:
    dev = web.device("a", name="Truck")
    r = await web.http.get("/api/devices", headers={"Origin": ORIGIN, **web.headers("a_view")})
    assert r.status_code == 200 and r.json()["devices"][0]["id"] == dev
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert "origin" in r.headers["vary"].lower()
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "content-disposition" in exposed and "retry-after" in exposed
    r = await web.http.get("/api/devices", headers={"Origin": ORIGIN})  # no token
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ORIGIN
    r = await web.http.post(
        "/api/devices", headers={"Origin": ORIGIN, **web.headers("a_mgr")}, json={"name": ""}
    )
    assert r.status_code == 422 and r.headers["access-control-allow-origin"] == ORIGIN
    r = await web.http.get(
        "/api/devices", headers={"Origin": "https://evil.example", **web.headers("a_view")}
    )
    assert "access-control-allow-origin" not in r.headers  # the browser keeps it from the page


async def test_origins_are_compared_like_the_live_feeds(tmp_path: Path, start_web: Any) -> None:
    hub = make_hub(tmp_path)
    hub.settings = replace(hub.settings, allowed_origins=("HTTPS://Console.Example:443/",))
    async with start_web(hub=hub) as web:
        r = await preflight(web, ORIGIN)
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        r = await web.http.get("/api/me", headers={"Origin": ORIGIN, **web.headers("a_view")})
        assert r.headers["access-control-allow-origin"] == ORIGIN
        async with live(web, origin=ORIGIN) as ws:
            assert (await receive(ws))["type"] == "hello"


async def test_a_star_allows_every_origin_without_credentials(
    tmp_path: Path, start_web: Any
) -> None:
    hub = make_hub(tmp_path)
    hub.settings = replace(hub.settings, allowed_origins=("*",))
    async with start_web(hub=hub) as web:
        r = await preflight(web, "https://anywhere.example")
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        assert "access-control-allow-credentials" not in r.headers
        r = await web.http.get(
            "/api/me", headers={"Origin": "https://anywhere.example", **web.headers("a_view")}
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "*"
        async with live(web, origin="https://anywhere.example") as ws:
            assert (await receive(ws))["type"] == "hello"


async def test_no_allowed_origins_no_cors(tmp_path: Path, start_web: Any) -> None:
    hub = make_hub(tmp_path)
    hub.settings = replace(hub.settings, allowed_origins=())
    async with start_web(hub=hub) as web:
        r = await preflight(web, ORIGIN)
        assert r.status_code == 405 and "access-control-allow-origin" not in r.headers
        r = await web.http.get("/api/me", headers={"Origin": ORIGIN, **web.headers("a_view")})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


def test_the_settings_take_a_star() -> None:
    assert Settings.load(environ={"GPSHUB_ALLOWED_ORIGINS": "*"}).allowed_origins == ("*",)
    both = {"GPSHUB_ALLOWED_ORIGINS": "https://a.example, https://b.example"}
    assert Settings.load(environ=both).allowed_origins == ("https://a.example", "https://b.example")
