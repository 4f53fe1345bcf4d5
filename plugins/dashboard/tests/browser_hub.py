"""A real hub with the dashboard, served on a free port from a thread (its own trio
loop), for Playwright's sync API in plain tests and for bench/dashboard.py."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

import gpshub_dashboard
from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.models import Role
from hub.plugins import load_plugins
from hub.positions import IngestItem
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.store import Store
from hub.web import create_app, serve

REQUIRE = os.environ.get("GPSHUB_REQUIRE_BROWSER") == "1"
PASSWORD = "correct horse battery"


def chromium() -> str | None:
    """Debian's chromium (Playwright's own browser download is not reachable here)."""
    found = os.environ.get("GPSHUB_CHROMIUM") or shutil.which("chromium")
    return found or shutil.which("chromium-browser")


class HubThread:
    """``start()`` serves; ``stop()`` shuts down.  ``users``: name → id; ``admin``: a token."""

    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.tmp_path = tmp_path
        self.settings = settings  # for the hub's Settings
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.url = ""
        self.users: dict[str, int] = {}
        self.plugins: list[tuple[str, Any]] = []  # more (name, module) plugins to load

    def start(self) -> HubThread:
        pm, infos = load_plugins(
            extra=[("dashboard", gpshub_dashboard), *self.plugins], use_entry_points=False
        )
        box = SecretBox([SecretBox.generate_key().encode()])
        store = Store.open(f"sqlite:///{self.tmp_path}/hub.db", box)
        config = Settings(
            data_dir=self.tmp_path, auth_failures_per_minute=1_000_000, **self.settings
        )
        self.hub = Hub(store, Registry.collect(pm, infos), infos, settings=config)
        self.hub.plugin_manager = pm
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(60)
        if self.error or not self.url:
            raise RuntimeError(f"the hub did not start: {self.error!r}")
        return self

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.token = trio.lowlevel.current_trio_token()
        app = create_app(self.hub)
        async with trio.open_nursery() as nursery:
            self.url = await nursery.start(
                functools.partial(
                    self.hub.run, serve=functools.partial(serve, self.hub, "127.0.0.1", 0, app=app)
                )
            )
            self.ready.set()

    def stop(self) -> None:
        trio.from_thread.run_sync(self.hub.shutdown, trio_token=self.token)
        self.thread.join(30)
        self.hub.store.close()

    # -- set-up ------------------------------------------------------------------------
    def populate(self, devices: int = 1) -> list[int]:
        """Client "Demo" with a manager ``ann`` and a viewer ``vic`` (password
        ``PASSWORD``) and ``devices`` devices, the first "Demo vehicle"; their ids."""
        store = self.hub.store
        client = store.create_client("Demo")
        admin = store.create_user("root", Role.ADMIN, None)
        self.admin = store.create_token(admin.id or 0, "test")[1]
        for name, role in (("ann", Role.MANAGER), ("vic", Role.VIEWER)):
            self.users[name] = store.create_user(name, role, client.id).id or 0
        ids = [
            store.create_device(
                client.id or 0,
                name="Demo vehicle" if i == 0 else f"Van {i:04d}",
                license_plate=f"DEMO-{i:03d}",
                tags=["demo"] if i == 0 else ["fleet"],
            ).id
            or 0
            for i in range(devices)
        ]
        return ids

    def session_api(self) -> bool:
        """Whether this hub has the session API (``POST /api/session``)."""
        return httpx.post(f"{self.url}/api/session", json={}).status_code != 404

    def admin_api(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call of the API as the system administrator (its token), which must
        succeed; the JSON answer, or ``None`` when it has no body."""
        headers = {"Authorization": f"Bearer {self.admin}"}
        r = httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def set_passwords(self) -> None:
        for uid in self.users.values():
            self.admin_api("PUT", f"/api/users/{uid}/password", json={"password": PASSWORD})

    def add_admin(self, name: str) -> int:
        """Another system administrator, with password ``PASSWORD``; its id."""
        admin = self.hub.store.create_user(name, Role.ADMIN, None)
        self.admin_api("PUT", f"/api/users/{admin.id}/password", json={"password": PASSWORD})
        return admin.id or 0

    def ingest(self, device_id: int, lat: float, lon: float, **fix: Any) -> None:
        """Store a fix through the real pipeline (which publishes it live)."""
        at = fix.pop("fix_time", None) or datetime.now(UTC)
        item = IngestItem(device_id, None, PositionFix(fix_time=at, lat=lat, lon=lon, **fix))
        trio.from_thread.run(self.hub.pipeline.submit, [item], trio_token=self.token)

    def ingest_many(self, positions: list[tuple[int, float, float]]) -> None:
        now = datetime.now(UTC) - timedelta(seconds=5)
        items = [
            IngestItem(d, None, PositionFix(fix_time=now, lat=lat, lon=lon, speed_kmh=20.0))
            for d, lat, lon in positions
        ]
        trio.from_thread.run(self.hub.pipeline.submit, items, trio_token=self.token)


def skip_browser_test(reason: str) -> None:
    """Skip, or with ``GPSHUB_REQUIRE_BROWSER=1`` (``.ci/run``) fail, saying why."""
    if REQUIRE:
        pytest.fail(reason + " (GPSHUB_REQUIRE_BROWSER=1)")
    pytest.skip(reason)
