"""Serving the dashboard: the HTML entry and its assets.

Every file under ``static/`` (``index.html`` aside) is served at
``/assets/<digest>/<path>``, where ``<digest>`` is a hash of the whole tree's content:
any change to any file gives every asset a new URL, so assets are cached for a year as
immutable, relative imports between our ES modules keep working, and a page never mixes
files of two versions.  The HTML entry ``/`` is ``no-cache`` and carries the
Content-Security-Policy: scripts, styles and connections from this origin only (plus the
live WebSocket), images also from the tile server, no framing.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import mimetypes
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from hub.core import Hub

STATIC = Path(__file__).resolve().parent / "static"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)

YEAR = 365 * 24 * 3600
VENDOR_CSS = (
    "vendor/leaflet/leaflet.css",
    "vendor/leaflet.markercluster/MarkerCluster.css",
    "vendor/leaflet.markercluster/MarkerCluster.Default.css",
)
VENDOR_JS = ("vendor/leaflet/leaflet.js", "vendor/leaflet.markercluster/leaflet.markercluster.js")
"""What every page needs; the pages load the rest (``js/lib.js``) when they need it."""
FIRST_MODULES = ("js/main.js", "js/pages/map.js", "js/pages/signin.js")
"""The start-up module and the pages shown first: the entry preloads them and what they
import, so the browser fetches them at once rather than one import after another.  The
other pages' modules are fetched when first shown (``import()`` in ``js/router.js``)."""
_STATIC_IMPORT = re.compile(
    r'^\s*(?:import|export)\b[^"\'();]*?(?:\bfrom\s*)?["\'](\.{1,2}/[^"\']+)["\']', re.M
)

_COMPRESSIBLE = ("text/", "application/javascript", "image/svg+xml", "application/json")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass(slots=True)
class Asset:
    """A static file.  Its gzip form is made when first asked for (then kept), so that
    serving starts without compressing the whole tree."""

    body: bytes
    media_type: str
    _gzipped: bytes | None = None

    @property
    def compressible(self) -> bool:
        return self.media_type.startswith(_COMPRESSIBLE) and len(self.body) > 512

    @property
    def gzipped(self) -> bytes | None:
        if self._gzipped is None and self.compressible:
            self._gzipped = gzip.compress(self.body, 9, mtime=0)
        return self._gzipped


@dataclass(slots=True)
class Site:
    """The dashboard's files, read once, and what the page is told about the hub."""

    assets: dict[str, Asset]
    digest: str
    index_template: str
    tile_url: str = OSM_TILES
    tile_attribution: str = OSM_ATTRIBUTION
    tile_max_zoom: int = 19
    page_settings: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, root: Path = STATIC, **kw: Any) -> Site:
        assets: dict[str, Asset] = {}
        tree = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            name = path.relative_to(root).as_posix()
            if name == "index.html" or path.name.startswith("."):
                continue
            body = path.read_bytes()
            tree.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
            media = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if media in ("text/javascript", "application/x-javascript"):
                media = "application/javascript"
            if media.startswith("text/") or media == "application/javascript":
                media += "; charset=utf-8"
            assets[name] = Asset(body, media)
        index = (root / "index.html").read_text("utf-8")
        tree.update(index.encode())
        return cls(assets, tree.hexdigest()[:16], index, **kw)

    @classmethod
    def from_hub(cls, hub: Hub) -> Site:
        from hub.map_status import MOVING_KMH

        settings = hub.settings
        return cls.load(
            tile_url=settings.map_tile_url,  # "" draws no tiles
            tile_attribution=settings.map_tile_attribution,
            tile_max_zoom=settings.map_tile_max_zoom,
            page_settings={  # the hub's map status rule (hub.map_status), for live positions
                "moving_kmh": MOVING_KMH,
                "offline_timeout_s": settings.offline_timeout_s,
            },
        )

    # -- routes --------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        return [
            Route("/", self.index, methods=["GET"], name="dashboard"),
            Route("/assets/{digest}/{name:path}", self.asset, methods=["GET"], name="asset"),
        ]

    @property
    def prefix(self) -> str:
        return f"/assets/{self.digest}"

    def has(self, name: str) -> bool:
        return name in self.assets

    def missing_vendor(self) -> list[str]:
        return [n for n in (*VENDOR_CSS, *VENDOR_JS) if n not in self.assets]

    def config(self) -> dict[str, Any]:
        """What the page reads from its ``<meta name="gpshub-config">``."""
        return {
            "assets": self.prefix,
            "tiles": {
                "url": self.tile_url,
                "attribution": self.tile_attribution,
                "max_zoom": self.tile_max_zoom,
            },
            "status": self.page_settings,
            "vendor_missing": self.missing_vendor(),
        }

    def render_index(self) -> str:
        css = "".join(
            f'<link rel="stylesheet" href="{self.prefix}/{n}">\n' for n in VENDOR_CSS if self.has(n)
        )
        js = "".join(
            f'<script src="{self.prefix}/{n}" defer></script>\n' for n in VENDOR_JS if self.has(n)
        )
        preload = "".join(
            f'<link rel="modulepreload" href="{self.prefix}/{n}">\n'
            for n in self.imported_by(FIRST_MODULES)
        )
        values = {
            "assets": self.prefix,
            "config": html.escape(json.dumps(self.config(), separators=(",", ":")), quote=True),
            "vendor_css": css,
            "vendor_js": js,
            "modulepreload": preload,
        }
        return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], self.index_template)

    def imported_by(self, entries: tuple[str, ...]) -> list[str]:
        """The modules ``entries`` are and import statically, directly or not (the
        relative ``import … from "./x.js"`` and ``export … from`` lines), sorted."""
        found: set[str] = set()
        todo = [n for n in entries if n in self.assets]
        while todo:
            name = todo.pop()
            if name in found:
                continue
            found.add(name)
            folder = name.rsplit("/", 1)[0]
            for target in _STATIC_IMPORT.findall(self.assets[name].body.decode("utf-8")):
                parts = folder.split("/")
                for piece in target.split("/"):
                    if piece == "..":
                        parts.pop()
                    elif piece != ".":
                        parts.append(piece)
                resolved = "/".join(parts)
                if resolved in self.assets:
                    todo.append(resolved)
        return sorted(found)

    def csp(self, host: str | None) -> str:
        ws = ""
        if host and _HOST.match(host):
            ws = f" ws://{host} wss://{host}"
        return "; ".join(
            [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                f"img-src 'self' data: {tile_origin(self.tile_url)}".rstrip(),
                f"connect-src 'self'{ws}",
                "font-src 'self'",
                "object-src 'none'",
                "base-uri 'none'",
                "form-action 'self'",
                "frame-ancestors 'none'",
            ]
        )

    async def index(self, request: Request) -> Response:
        response = Response(self.render_index(), media_type="text/html; charset=utf-8")
        response.headers.update(
            {
                "cache-control": "no-cache",
                "content-security-policy": self.csp(request.headers.get("host")),
                "x-content-type-options": "nosniff",
                "x-frame-options": "DENY",
                "referrer-policy": "same-origin",
            }
        )
        return response

    async def asset(self, request: Request) -> Response:
        asset = self.assets.get(request.path_params["name"])
        if asset is None or request.path_params["digest"] != self.digest:
            # another version's URL: a year's immutable cache must never hold this one
            return JSONResponse(
                {"error": {"code": "not_found", "message": "no such file", "field": None}},
                status_code=404,
                headers={"cache-control": "no-store"},
            )
        headers = {
            "cache-control": f"public, max-age={YEAR}, immutable",
            "x-content-type-options": "nosniff",
            "vary": "accept-encoding",
        }
        body = asset.body
        if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            body = asset.gzipped
            headers["content-encoding"] = "gzip"
        return Response(body, media_type=asset.media_type, headers=headers)


def tile_origin(template: str) -> str:
    """The CSP source of a tile URL template: ``https://{s}.tile.example/{z}/…`` →
    ``https://*.tile.example``; empty for a template that is no absolute http(s) URL."""
    parts = urlsplit(template.replace("{s}", "x-subdomain-x"))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    netloc = parts.netloc.replace("x-subdomain-x", "*")
    return f"{parts.scheme}://{netloc}"
