"""The plugin in a real hub: browse, import, poll, restart, poll again; every fix once."""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory, RefusedCredentialsCheck
from hub.testing import TrackerFeed, moving_fix

UNITS = 6


def trackers(fake: FakeTracking3D, wall: TrioClock, units: list[str]) -> TrackerFeed:
    """Every unit a fix every 10 s (some invalid, some in mph), as trackers do."""

    def report(i: int, unit: str, step: int, now: float) -> None:
        fake.add_fix(
            unit,
            round(now) - 2,
            **moving_fix(i, step),
            speed_measure="mph" if i % 2 else "kph",
            params={"Fuel level": 55},
            odometer_km=1000.0 + step,
        )

    return TrackerFeed(wall, units, report)


async def test_import_poll_restart_poll_keeps_every_fix_exactly_once(
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    wall = gpshub_wall
    fake, url = await gpshub_served(FakeTracking3D)
    units = [
        fake.add_unit(f"Truck {i}", imei=f"86{i:013d}", plate=f"AB-{i}00") for i in range(UNITS)
    ]
    start = round(wall.now().timestamp())
    for unit in units:
        fake.add_fix(unit, start - 7200, 1.0, 1.0, received=start - 7190)  # before the backfill
        fake.add_fix(unit, start - 1800, 2.0, 2.0, valid=False, received=start - 1790)
    options = {**fake.options(url), "sync_every_s": 60}
    hubs = HubDriver(
        gpshub_hub_factory, "tracking3d", fake.credentials(url), options, label="fleet"
    )
    hub, conn = hubs.hub, hubs.create()
    summary = await hub.test_connection("tracking3d", fake.credentials(url), fake.options(url))
    assert summary.endswith(f": {UNITS} units")

    created, existing = hub.store.import_devices(conn.id, await hub.browse(conn))
    assert (len(created), len(existing)) == (UNITS, 0)
    by_unit = hubs.devices()
    assert by_unit[units[3]].imei == "86" + "3".zfill(13)
    assert by_unit[units[3]].license_plate == "AB-300"

    feed = trackers(fake, wall, units)
    await hubs.run_for(90, feed.run, settle_s=65)
    logins = fake.logins

    # while the hub is down: a rename and a late back-dated record
    fake.rename_unit(units[0], "Truck 0 (renamed)")
    late_t = round(wall.now().timestamp()) - 4000
    fake.add_fix(units[1], late_t, 5.0, 5.0, speed_kmh=18.52, speed_measure="knots")

    hubs.restart()
    await hubs.run_for(60, feed.run, settle_s=65)
    assert fake.logins == logins  # the saved session was reused after the restart

    hubs.assert_ok()
    devices, history = hubs.devices(), hubs.history()
    assert devices[units[0]].name == "Truck 0 (renamed)"
    for i, unit in enumerate(units):
        rows = history[unit]
        stored = [r["fix_time"].timestamp() for r in rows]
        extra = 1 if unit == units[1] else 0
        assert len(stored) == len(set(stored)) == 1 + 15 + extra, unit
        assert min(stored) == (late_t if extra else start - 1800)
        (old,) = [r for r in rows if r["fix_time"].timestamp() == start - 1800]
        assert old["valid"] is False
        moving = [r for r in rows if r["fix_time"].timestamp() > start - 10]
        assert len(moving) == 15
        assert all(abs(r["speed_kmh"] - 36.0) < 1e-6 for r in moving), i
        assert [r["valid"] for r in moving].count(False) == 3
        assert all(r["satellites"] == 7 and r["ignition"] is True for r in moving)
        assert all(r["sensors"]["fuel_level"] == 55.0 for r in moving)
        assert all(r["sensors"]["platform_odometer_km"] >= 1000.0 for r in moving)
        assert all(r["altitude_m"] is None for r in moving)
    late_rows = history[units[1]]
    (late,) = [r for r in late_rows if r["fix_time"].timestamp() == late_t]
    assert abs(late["speed_kmh"] - 18.52) < 1e-6 and late["lat"] == 5.0


class TestRefusedCredentials(RefusedCredentialsCheck):
    fake_class, source_class = FakeTracking3D, Tracking3DSource
    refused = {"password": "wrong-one"}
