"""The map status of devices (moving, stopped, ignition_off, offline, no_data), its
counts, and the dashboard's settings (tiles, thresholds, the server's clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import Web, make_hub, running_web

from hub.config import Settings
from hub.map_status import MapStatus, map_status

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("age_s", "speed", "ignition", "timeout", "expected"),
    [
        (10, 40.0, True, 600, "moving"),
        (10, 40.0, False, 600, "moving"),  # towed: speed wins
        (10, 5.0, True, 600, "stopped"),  # the threshold itself is not moving
        (10, 5.1, None, 600, "moving"),
        (10, None, None, 600, "stopped"),  # no speed, no ignition (e.g. a phone)
        (10, 0.0, False, 600, "ignition_off"),
        (600, 0.0, True, 600, "stopped"),  # exactly the timeout: not yet offline
        (601, 90.0, True, 600, "offline"),
        (3600, 0.0, False, 7200, "ignition_off"),  # the device's own longer timeout
    ],
)
def test_the_rule(
    age_s: int, speed: float | None, ignition: bool | None, timeout: int, expected: str
) -> None:
    fix_time = NOW - timedelta(seconds=age_s)
    got = map_status(fix_time, speed, ignition, now=NOW, offline_after_s=timeout)
    assert got == MapStatus(expected)
    assert map_status(None, 50.0, True, now=NOW, offline_after_s=timeout) == "no_data"


async def _fleet(web: Web) -> dict[str, int]:
    now = web.hub.clock.now()
    ids = {
        "moving": web.device("a", "Mover", tags=["north"]),
        "stopped": web.device("a", "Parked", tags=["north"]),
        "ignition_off": web.device("a", "Off"),
        "offline": web.device("a", "Silent", tags=["north"]),
        "patient": web.device("a", "Patient", offline_timeout_s=7200),
        "no_data": web.device("a", "New", tags=["north"]),
        "b": web.device("b", "B's"),
    }
    recent = now - timedelta(seconds=30)
    # older fixes first: the newest decides
    await web.write_positions(ids["moving"], 1, start=recent - timedelta(seconds=60), speed_kmh=0)
    await web.write_positions(ids["moving"], 1, start=recent, speed_kmh=42.0, ignition=True)
    await web.write_positions(ids["stopped"], 1, start=recent, speed_kmh=1.0, ignition=True)
    await web.write_positions(ids["ignition_off"], 1, start=recent, speed_kmh=0.0, ignition=False)
    await web.write_positions(ids["offline"], 1, start=now - timedelta(hours=2), speed_kmh=60.0)
    await web.write_positions(ids["patient"], 1, start=now - timedelta(hours=1), speed_kmh=0.0)
    await web.write_positions(ids["b"], 1, start=recent, speed_kmh=70.0)
    return ids


async def test_latest_positions_carry_the_map_status(web: Web) -> None:
    ids = await _fleet(web)
    r = await web.get("a_view", "/api/devices/latest")
    assert r.status_code == 200, r.text
    got = {p["device_id"]: p for p in r.json()["positions"]}
    assert {d: p["status"] for d, p in got.items()} == {
        ids["moving"]: "moving",
        ids["stopped"]: "stopped",
        ids["ignition_off"]: "ignition_off",
        ids["offline"]: "offline",
        ids["patient"]: "stopped",
    }
    # the timeout a page needs to recompute the status of a live position
    assert got[ids["moving"]]["device"]["offline_timeout_s"] == 600
    assert got[ids["patient"]]["device"]["offline_timeout_s"] == 7200
    # the device's connectivity is another thing, and stays where it was
    assert got[ids["moving"]]["device"]["status"] == "online"

    one = (await web.get("a_view", f"/api/devices/{ids['ignition_off']}/latest")).json()
    assert one["status"] == "ignition_off" and one["position"]["ignition"] is False
    empty = (await web.get("a_view", f"/api/devices/{ids['no_data']}/latest")).json()
    assert empty["position"] is None and empty["status"] == "no_data"
    assert empty["device"]["offline_timeout_s"] == 600


async def test_counts_by_status(web: Web) -> None:
    ids = await _fleet(web)
    r = await web.get("a_view", "/api/devices/summary")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 6
    assert body["counts"] == {
        "moving": 1,
        "stopped": 2,
        "ignition_off": 1,
        "offline": 1,
        "no_data": 1,
    }
    at = datetime.fromisoformat(body["at"])
    assert abs((at - web.hub.clock.now()).total_seconds()) < 60

    north = (await web.get("a_view", "/api/devices/summary", params={"tag": "north"})).json()
    assert north["total"] == 4
    assert north["counts"] == {
        "moving": 1,
        "stopped": 1,
        "ignition_off": 0,
        "offline": 1,
        "no_data": 1,
    }
    b = (await web.get("b_mgr", "/api/devices/summary")).json()
    assert b["total"] == 1 and b["counts"]["moving"] == 1
    everyone = (await web.get("admin", "/api/devices/summary")).json()
    assert everyone["total"] == 7
    only_b = await web.get("admin", "/api/devices/summary", params={"client_id": web.clients["b"]})
    assert only_b.json()["total"] == 1
    # another client's filter is refused, naming it
    r = await web.get("a_view", "/api/devices/summary", params={"client_id": web.clients["b"]})
    assert r.status_code in (403, 404) and r.json()["error"]["field"] == "client_id"
    r = await web.get("a_view", "/api/devices/summary", params={"connection_id": "x"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "connection_id"
    del ids


async def test_dashboard_settings(web: Web) -> None:
    r = await web.get("a_view", "/api/dashboard-settings")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["map_tile_url"] == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap" in body["map_tile_attribution"]
    assert body["map_tile_max_zoom"] == 19
    assert body["statuses"] == ["moving", "stopped", "ignition_off", "offline", "no_data"]
    assert body["moving_kmh"] == 5.0 and body["offline_timeout_s"] == 600
    assert body["min_stop_s"] == 300 and body["stops_max_days"] == 31
    assert body["server_time"].endswith("Z")
    assert (await web.get(None, "/api/dashboard-settings")).status_code == 401
    spec = (await web.get(None, "/openapi.json")).json()
    for path in ("/api/dashboard-settings", "/api/devices/summary", "/api/devices/{id}/stops"):
        assert path in spec["paths"], path


async def test_no_tiles_on_a_network_without_internet(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, map_tile_url="", offline_timeout_s=120)
    async with running_web(tmp_path, hub=hub) as web:
        body: dict[str, Any] = (await web.get("a_view", "/api/dashboard-settings")).json()
        assert body["map_tile_url"] is None and body["offline_timeout_s"] == 120


@pytest.mark.parametrize(
    ("values", "name"),
    [
        ({"map_tile_url": "tile.example/{z}/{x}/{y}.png"}, "map_tile_url"),
        ({"map_tile_url": "https://tile.example/{z}/{x}.png"}, "map_tile_url"),
        ({"map_tile_max_zoom": "31"}, "map_tile_max_zoom"),
    ],
)
def test_bad_map_settings_are_refused(values: dict[str, str], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Settings.load(environ={f"GPSHUB_{k.upper()}": v for k, v in values.items()})


def test_map_settings_from_the_environment() -> None:
    env = {
        "GPSHUB_MAP_TILE_URL": "/tiles/{z}/{x}/{y}.png",
        "GPSHUB_MAP_TILE_ATTRIBUTION": "Our own tiles",
    }
    settings = Settings.load(environ=env)
    assert settings.map_tile_url == "/tiles/{z}/{x}/{y}.png"
    assert settings.map_tile_attribution == "Our own tiles"
