"""The dashboard's serving, without a browser: headers, CSP, hashed assets (its pages
served by hypercorn on loopback, asked for as ``hub.test:8080`` by their Host header)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio
from starlette.applications import Starlette

import gpshub_dashboard
from gpshub_dashboard.site import STATIC, Site, tile_origin
from hub.testing import serve_app


@asynccontextmanager
async def client(site: Site) -> AsyncIterator[httpx.AsyncClient]:
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, Starlette(routes=site.routes()))
        async with httpx.AsyncClient(base_url=url, headers={"Host": "hub.test:8080"}) as http:
            yield http
        nursery.cancel_scope.cancel()


async def test_the_entry_page_has_a_strict_policy_and_is_not_cached() -> None:
    async with client(Site.load()) as c:
        r = await c.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["x-content-type-options"] == "nosniff"
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no eval
    assert csp["frame-ancestors"] == "'none'"
    assert "https://tile.openstreetmap.org" in csp["img-src"]
    assert csp["connect-src"] == "'self' ws://hub.test:8080 wss://hub.test:8080"
    assert "<script>" not in r.text and "style=" not in r.text


async def test_assets_have_the_tree_digest_in_their_url_and_are_immutable() -> None:
    site = Site.load()
    async with client(site) as c:
        r = await c.get(f"{site.prefix}/js/main.js", headers={"accept-encoding": "gzip"})
        assert r.status_code == 200
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-type"].startswith("application/javascript")
        assert r.headers["content-encoding"] == "gzip"
        assert "import" in r.text
        assert f"{site.prefix}/js/main.js" in (await c.get("/")).text
        # another version's URL is no hit, and not cached
        r = await c.get("/assets/0000000000000000/js/main.js")
        assert r.status_code == 404 and r.headers["cache-control"] == "no-store"
        assert (await c.get(f"{site.prefix}/%2E%2E/site.py")).status_code == 404


def test_the_entry_preloads_the_first_pages_and_what_they_import(tmp_path: Path) -> None:
    root = tmp_path / "static"
    (root / "js" / "pages" / "far").mkdir(parents=True)
    (root / "index.html").write_text("{{modulepreload}}")
    (root / "js" / "main.js").write_text(
        'import { a } from "./a.js";\nimport {\n  b,\n} from "./pages/far/b.js";\n'
        'route("x", () => import("./pages/other.js"));\n'
    )
    (root / "js" / "a.js").write_text('export { c } from "./c.js";\nexport const a = 1;\n')
    (root / "js" / "c.js").write_text("export const c = 1;\n")
    (root / "js" / "pages" / "far" / "b.js").write_text('import "../../a.js";\n')
    (root / "js" / "pages" / "other.js").write_text("export const title = 'Other';\n")
    (root / "js" / "pages" / "map.js").write_text('import { c } from "../c.js";\n')
    site = Site.load(root)
    assert site.imported_by(("js/main.js",)) == [
        "js/a.js",
        "js/c.js",
        "js/main.js",
        "js/pages/far/b.js",
    ]
    page = site.render_index()
    assert f'href="{site.prefix}/js/pages/map.js"' in page
    assert "other.js" not in page  # loaded when first shown
    real = Site.load()
    first = real.imported_by(("js/main.js", "js/pages/map.js"))
    assert "js/router.js" in first and "js/map/markers.js" in first
    assert "js/pages/geofences.js" not in first


def test_any_change_gives_new_urls(tmp_path: Path) -> None:
    root = tmp_path / "static"
    shutil.copytree(STATIC, root, ignore=shutil.ignore_patterns("vendor"))
    before = Site.load(root)
    (root / "app.css").write_text((root / "app.css").read_text() + "\n/* changed */\n")
    assert Site.load(root).digest != before.digest


async def test_the_page_serves_and_says_so_without_the_vendor_files(tmp_path: Path) -> None:
    root = tmp_path / "static"
    shutil.copytree(STATIC, root, ignore=shutil.ignore_patterns("vendor"))
    site = Site.load(root)
    assert "vendor/leaflet/leaflet.js" in site.missing_vendor()
    async with client(site) as c:
        r = await c.get("/")
    assert r.status_code == 200
    assert "vendor_missing&quot;:[&quot;vendor/leaflet/leaflet.css" in r.text
    assert "leaflet.js" not in r.text.split("gpshub-config")[1].split(">", 1)[1]


def test_the_tile_host_is_allowed_as_configured() -> None:
    assert (
        tile_origin("https://{s}.tile.example.org/{z}/{x}/{y}.png") == "https://*.tile.example.org"
    )
    assert tile_origin("http://tiles.lan:8081/{z}/{x}/{y}.png") == "http://tiles.lan:8081"
    assert tile_origin("/tiles/{z}/{x}/{y}.png") == ""
    site = Site.load(tile_url="https://tiles.lan/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.lan;" in site.csp("h")


def test_the_plugin_registers_its_pages() -> None:
    assert hasattr(gpshub_dashboard, "register_pages")
