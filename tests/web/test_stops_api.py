"""``GET /api/devices/{id}/stops``: stops and trips from stored positions, the range and
its limits (the algorithm's cases are in tests/test_stops.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from harness import T0, Web

from hub.fix import PositionFix
from hub.positions import IngestItem


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def drive(web: Web, device: int) -> None:
    """Parked 10 min with the ignition off, 10 min east at 40 km/h, parked 10 min."""
    items = []
    for minute in range(1, 31):
        moving = 10 < minute <= 20
        east_m = min(max(minute - 10, 0), 10) * 40_000 / 60
        fix = PositionFix(
            fix_time=T0 + timedelta(minutes=minute),
            lat=14.6,
            lon=-90.5 + east_m / 107_700,
            speed_kmh=40.0 if moving else 0.0,
            ignition=moving,
        )
        items.append(IngestItem(device, None, fix))
    await web.hub.pipeline.submit(items)


async def test_stops_and_trips_of_a_day(web: Web) -> None:
    device = web.device("a")
    await drive(web, device)
    path = f"/api/devices/{device}/stops"
    r = await web.get(
        "a_view", path, params={"from": "2026-03-01T11:00:00Z", "to": "2026-03-01T13:00:00Z"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["device_id"] == device and body["min_stop_s"] == 300
    assert body["from"] == "2026-03-01T11:00:00Z" and body["to"] == "2026-03-01T13:00:00Z"
    first, last = body["stops"]
    assert first["start"] == "2026-03-01T12:01:00Z" and first["end"] == "2026-03-01T12:11:00Z"
    assert first["open_start"] and not first["open_end"] and first["positions"] == 10
    assert last["start"] == "2026-03-01T12:21:00Z" and last["end"] == "2026-03-01T13:00:00Z"
    assert last["open_end"]  # parked to the end of the range
    (trip,) = body["trips"]
    assert trip["start"] == first["end"] and trip["end"] == last["start"]
    assert trip["distance_km"] == pytest.approx(6.67, abs=0.05)
    assert trip["max_speed_kmh"] == 40.0

    # a shorter min_stop_s and the default range (the day before now) are taken
    r = await web.get("a_view", path, params={"min_stop_s": "60"})
    assert r.status_code == 200 and r.json()["min_stop_s"] == 60
    error(await web.get("b_mgr", path), 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-02-02T00:00:01Z"}, "from"),  # > 31 days
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2026-03-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "2026-03-01T00:00:00"}, "from"),
        ({"min_stop_s": "10"}, "min_stop_s"),
        ({"min_stop_s": "86401"}, "min_stop_s"),
        ({"min_stop_s": "5m"}, "min_stop_s"),
    ],
)
async def test_bad_ranges_are_named(web: Web, params: dict[str, str], field: str) -> None:
    device = web.device("a")
    err = error(await web.get("a_view", f"/api/devices/{device}/stops", params=params), 400)
    assert err["field"] == field


async def test_thirty_one_days_are_allowed(web: Web) -> None:
    device = web.device("a")
    params = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
    r = await web.get("a_view", f"/api/devices/{device}/stops", params=params)
    assert r.status_code == 200 and r.json()["stops"] == [] and r.json()["trips"] == []
