"""The cloud plugins as an integrator uses them, through the API: add a connection to the
platform (its fake on loopback), test it, browse and import the units, see positions.

Loopback is a private address, so the outbound guard refuses it until the administrator
allows it; that is the first thing checked.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from harness import ORIGIN, running_web

from hub.config import Settings
from hub.core import Hub
from hub.plugins import load_plugins
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.store import Store
from hub.testing import LOOPBACK_NETWORKS, serve_app

PLATFORMS = {
    "wialon": "FakeWialon",
    "flespi": "FakeFlespi",
    "traccar": "FakeTraccar",
    "tracking3d": "FakeTracking3D",
    "gpsserver": "FakeGpsServer",
}


def hub_with(tmp_path: Path, kind: str, **settings: Any) -> Hub:
    tmp_path.mkdir(exist_ok=True)
    package = importlib.import_module(f"gpshub_{kind}")
    pm, infos = load_plugins(extra=[(kind, package)], use_entry_points=False)
    store = Store.open(f"sqlite:///{tmp_path}/t.db", SecretBox([SecretBox.generate_key().encode()]))
    return Hub(
        store,
        Registry.collect(pm, infos),
        infos,
        settings=Settings(data_dir=tmp_path, allowed_origins=(ORIGIN,), **settings),
    )


def fake_for(kind: str) -> Any:
    module = importlib.import_module(f"gpshub_{kind}.testing")
    fake = getattr(module, PLATFORMS[kind])()  # the real wall clock
    now = time.time()
    for i in range(3):
        unit = fake.add_unit(f"Truck {i}", imei=f"35630704244101{i}", plate=f"AB-12{i}")
        for k in range(4):
            fake.add_fix(unit, now - 300 + 60 * k, 14.6 + i * 0.01, -90.5, speed_kmh=36.0)
    return fake


@pytest.mark.parametrize("kind", sorted(PLATFORMS))
async def test_connect_import_and_see_positions(tmp_path: Path, kind: str) -> None:
    fake = fake_for(kind)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, fake.app)
        body = {
            "kind": kind,
            "label": f"{kind} fleet",
            "credentials": fake.credentials(url),
            "options": fake.options(url),
        }

        # the guard: a private address is refused when saved, naming the field
        async with running_web(tmp_path, hub=hub_with(tmp_path / "guarded", kind)) as web:
            r = await web.post("a_mgr", "/api/connections", json=body)
            assert r.status_code == 422, r.text
            assert r.json()["error"]["field"] in ("credentials.server_url", "options.base_url")
            assert "loopback" in r.json()["error"]["message"]
            assert not web.hub.store.list_connections()

        allowed = hub_with(tmp_path / "allowed", kind, outbound_allow_networks=LOOPBACK_NETWORKS)
        async with running_web(tmp_path, hub=allowed) as web:
            test = {k: body[k] for k in ("kind", "credentials", "options")}
            r = await web.post("a_mgr", "/api/connections/test", json=test)
            assert r.status_code == 200 and r.json()["ok"], r.text
            assert "3 " in r.json()["summary"]
            r = await web.post("a_mgr", "/api/connections", json=body)
            assert r.status_code == 201, r.text
            conn = r.json()
            secret = "password" if "password" in body["credentials"] else "token"
            assert conn["credentials"][secret] == {"set": True, "secret": True, "value": None}

            r = await web.get("a_mgr", f"/api/connections/{conn['id']}/remote-devices")
            remote = r.json()["devices"]
            assert sorted(d["name"] for d in remote) == ["Truck 0", "Truck 1", "Truck 2"]
            picked = [remote[0]["upstream_id"]]
            r = await web.post(
                "a_mgr", f"/api/connections/{conn['id']}/import", json={"upstream_ids": picked}
            )
            assert r.json()["created"] == 1
            r = await web.post("a_mgr", f"/api/connections/{conn['id']}/import", json={})
            assert (r.json()["created"], r.json()["existing"]) == (2, 1)
            devices = r.json()["devices"]
            assert {d["license_plate"] for d in devices} == {"AB-120", "AB-121", "AB-122"}

            with trio.fail_after(60):  # a hang guard, not a timing assertion
                while True:
                    latest = (await web.get("a_mgr", "/api/devices/latest")).json()
                    if len(latest["positions"]) == 3:
                        break
                    await trio.sleep(0.1)
            for position in latest["positions"]:
                assert position["speed_kmh"] == pytest.approx(36.0, abs=0.01)
            status = (await web.get("a_mgr", f"/api/connections/{conn['id']}/status")).json()
            assert status["state"] == "ok", status
        nursery.cancel_scope.cancel()
