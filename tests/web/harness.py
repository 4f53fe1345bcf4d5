"""The web tests' harness: a real hub whose API hypercorn serves on a free port, two
clients (A and B) and four callers: the administrator, A's manager, A's viewer and B's
manager (plus "no token" and a malformed one)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakesource
import httpx
import trio

from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.models import Role
from hub.plugins import load_plugins
from hub.positions import IngestItem
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.store import Store
from hub.web import LiveOptions, create_app, serve

ORIGIN = "https://console.example"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WHO = ("admin", "a_mgr", "a_view", "b_mgr")
MALFORMED = "gph_thisisnotavalidtoken"


@dataclass
class Web:
    hub: Hub
    url: str
    http: httpx.AsyncClient
    tokens: dict[str, str] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    clients: dict[str, int] = field(default_factory=dict)
    app: Any = None  # the Starlette app served

    def headers(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        if who == "malformed":
            return {"Authorization": f"Bearer {MALFORMED}"}
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        return await self.http.request(method, path, headers=self.headers(who), **kw)

    async def get(self, who: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self.call(who, "GET", path, **kw)

    async def post(self, who: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self.call(who, "POST", path, **kw)

    async def patch(self, who: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self.call(who, "PATCH", path, **kw)

    async def delete(self, who: str | None, path: str, **kw: Any) -> httpx.Response:
        return await self.call(who, "DELETE", path, **kw)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/live"

    # -- set-up straight through the store ----------------------------------------------
    def connection(self, client: str = "a", kind: str = "fake", **creds: Any) -> int:
        if kind == "fake":
            creds = {"username": "ann", "password": "hunter22", **creds}
        else:
            creds = {"api_key": "k-123", **creds}
        conn = self.hub.store.create_connection(
            self.clients[client], kind, f"{kind} of {client}", creds, enabled=False
        )
        return conn.id or 0

    def device(self, client: str = "a", name: str = "Truck", **fields: Any) -> int:
        return self.hub.store.create_device(self.clients[client], name=name, **fields).id or 0

    async def write_positions(
        self, device_id: int, count: int, start: datetime = T0, step: float = 60.0, **fix: Any
    ) -> None:
        """Store ``count`` fixes through the real pipeline (which publishes them live)."""
        items = [
            IngestItem(
                device_id,
                None,
                PositionFix(
                    fix_time=start + timedelta(seconds=step * i),
                    lat=14.6 + i * 0.001,
                    lon=-90.5 - i * 0.001,
                    **fix,
                ),
            )
            for i in range(count)
        ]
        await self.hub.pipeline.submit(items)


def make_hub(tmp_path: Path, **settings: Any) -> Hub:
    # the authorization tests try bad tokens on every route from one address: the
    # failed-authentication throttle has tests of its own (test_auth_throttle.py)
    settings.setdefault("auth_failures_per_minute", 1_000_000)
    pm, infos = load_plugins(extra=[("testsource", fakesource)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    store = Store.open(f"sqlite:///{tmp_path}/t.db", SecretBox([SecretBox.generate_key().encode()]))
    hub = Hub(
        store,
        registry,
        infos,
        settings=Settings(data_dir=tmp_path, allowed_origins=(ORIGIN,), **settings),
    )
    hub.plugin_manager = pm
    return hub


def populate(web: Web) -> None:
    store = web.hub.store
    a = store.create_client("Client A").id or 0
    b = store.create_client("Client B").id or 0
    web.clients = {"a": a, "b": b}
    for who, role, client in (
        ("admin", Role.ADMIN, None),
        ("a_mgr", Role.MANAGER, a),
        ("a_view", Role.VIEWER, a),
        ("b_mgr", Role.MANAGER, b),
    ):
        user = store.create_user(who, role, client)
        web.users[who] = user.id or 0
        web.tokens[who] = store.create_token(user.id or 0, "test")[1]


@asynccontextmanager
async def running_web(
    tmp_path: Path, *, live: LiveOptions | None = None, hub: Hub | None = None
) -> AsyncIterator[Web]:
    hub = hub or make_hub(tmp_path)
    app = create_app(hub, live=live)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0, app=app))
        )
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as http:  # against hangs only
                web = Web(hub, url, http, app=app)
                populate(web)
                yield web
        finally:
            hub.shutdown()
    hub.store.close()
