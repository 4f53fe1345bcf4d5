"""The plugin in a real hub: browse, import, poll, restart, poll again; every fix once."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory, RefusedCredentialsCheck
from hub.models import ConnectionState
from hub.testing import TrackerFeed, moving_fix, running

UNITS = 8


def trackers(fake: FakeGpsServer, wall: TrioClock, units: list[str]) -> TrackerFeed:
    """Every unit a fix every 10 s, as trackers feed a server."""

    def report(i: int, unit: str, step: int, now: float) -> None:
        fields = {**moving_fix(i, step), "speed_kmh": 36.5, "valid": True}
        fake.add_fix(unit, now - 2, **fields, params={"io66": 12600 + step, "fuel": "55.5"})

    return TrackerFeed(wall, units, report)


@pytest.mark.parametrize("mode", ["key", "token"])
async def test_import_poll_restart_poll_keeps_every_fix_exactly_once(
    gpshub_served: Any,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_hub_factory: HubFactory,
    mode: str,
) -> None:
    wall = gpshub_wall
    fake, url = await gpshub_served(FakeGpsServer)
    credentials = fake.credentials_key(url) if mode == "key" else fake.credentials(url)
    units = [
        fake.add_unit(f"Truck {i}", imei=f"35630704{i:07d}", plate=f"P-{i}", model="Actros")
        for i in range(UNITS)
    ]
    start = wall.now().timestamp()
    for unit in units:
        fake.add_fix(unit, start - 7200, 1.0, 1.0)  # older than the backfill: never fetched
        fake.add_fix(unit, start - 1800, 2.0, 2.0, valid=False)
    driver = HubDriver(gpshub_hub_factory, GpsServerSource, credentials, {"sync_every_s": 60})
    hub, conn = driver.hub, driver.create()
    assert f"{UNITS} objects" in await driver.test()

    created, existing = hub.store.import_devices(conn.id, await hub.browse(conn))
    assert (len(created), len(existing)) == (UNITS, 0)
    by_unit = driver.devices()
    assert by_unit[units[3]].imei == units[3] and by_unit[units[3]].license_plate == "P-3"

    feed = trackers(fake, wall, units)
    await driver.run_for(90, feed.run, settle_s=65)  # at least two more polls
    polls = fake.requests["OBJECT_GET_LOCATIONS"] + fake.requests["USER_GET_OBJECTS"]
    if mode == "token":
        polls = fake.requests["locations.php"]
    assert polls >= 4

    # upstream changes while the hub is down: a rename, and a late back-dated message
    fake.rename_unit(units[0], "Truck 0 (renamed)")
    late_t = wall.now().timestamp() - 120
    fake.add_fix(units[1], late_t, 5.0, 5.0, speed_kmh=18.5)

    logins = fake.logins
    driver.restart()  # same database, same secret key
    await driver.run_for(60, feed.run, settle_s=65)

    driver.assert_ok()
    devices = driver.devices()
    assert devices[units[0]].name == "Truck 0 (renamed)"
    history = driver.history()
    for unit in units:
        rows = history[unit]
        stored = [r["fix_time"].timestamp() for r in rows]
        expected = sorted(float(t) for t in fake.objects[unit].times if t >= start - 3600)
        assert stored == expected, unit
        assert len(stored) == len(set(stored)) == 1 + 15 + (1 if unit == units[1] else 0)
        assert rows[0]["lat"] == 2.0  # the fix from before the start, within the backfill
        moving = [r for r in rows if r["fix_time"].timestamp() > start - 10 and r["lat"] != 5.0]
        assert len(moving) == 15
        assert all(r["speed_kmh"] == pytest.approx(36.5) for r in moving)
        assert all(r["satellites"] == 7 and r["ignition"] is True for r in moving)
        assert all(r["sensors"]["fuel"] == 55.5 and "acc" not in r["sensors"] for r in moving)
    late_rows = history[units[1]]
    (late,) = [r for r in late_rows if r["fix_time"].timestamp() == late_t // 1]
    assert late["speed_kmh"] == pytest.approx(18.5) and late["lat"] == 5.0
    if mode == "token":
        assert fake.logins == logins  # the token was saved and reused across the restart


class TestRefusedCredentials(RefusedCredentialsCheck):
    fake_class, source_class = FakeGpsServer, GpsServerSource
    refused = {"password": "wrong-pw"}  # one refused login, then it waits


async def served_fleet(
    served: Any,
    hubs: HubFactory,
    mode: str,
    units: int,
    options: dict[str, Any],
    **fake_options: Any,
) -> tuple[FakeGpsServer, Any, int, list[str]]:
    """A served fake with ``units`` units, and a hub with a connection to it in ``mode``
    and the units imported: ``(fake, hub, connection id, IMEIs)``."""
    fake, url = await served(FakeGpsServer, **fake_options)
    credentials = fake.credentials_key(url) if mode == "key" else fake.credentials(url)
    imeis = [fake.add_unit(f"Truck {i}", imei=f"35630704{i:07d}") for i in range(units)]
    driver = HubDriver(hubs, GpsServerSource, credentials, options)
    conn = await driver.connect()
    return fake, driver.hub, conn.id, imeis


def assert_stored_as_upstream(fake: FakeGpsServer, hub: Any, conn_id: int) -> None:
    """Every unit's positions in the hub are its fixes on the server: all, once, in order."""
    devices = {d.upstream_id: d for d in hub.store.list_devices(connection_id=conn_id)}
    for unit, device in devices.items():
        rows, _ = hub.store.positions.history([device.id], limit=10_000)
        stored = [r["fix_time"].timestamp() for r in rows]
        assert stored == [float(t) for t in fake.objects[unit].times], unit
    assert hub.store.get_connection(conn_id).state == ConnectionState.OK


@pytest.mark.parametrize("mode", ["key", "token"])
async def test_a_black_box_upload_after_twenty_silent_minutes_is_stored_complete(
    gpshub_served: Any,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_hub_factory: HubFactory,
    mode: str,
) -> None:
    wall = gpshub_wall
    fake, hub, conn_id, units = await served_fleet(gpshub_served, gpshub_hub_factory, mode, 3, {})
    silent = units[0]
    driver = trackers(fake, wall, units)
    async with running(hub):
        await driver.run(120)
        fake.hold(silent)  # out of coverage: its fixes stay in its black box
        for _ in range(4):
            await driver.run(5 * 60)
            fake.ping(silent)  # a keep-alive gets through now and then: dt_server moves
        assert fake.release(silent) == 120  # back: twenty minutes of fixes at once
        await driver.run(120)
        await trio.sleep(65)  # two more polls
    assert len(fake.objects[silent].times) == 12 + 120 + 12
    assert_stored_as_upstream(fake, hub, conn_id)


def locations_calls(fake: FakeGpsServer) -> int:
    """Polls served: each makes one locations call (or the device sync in its place)."""
    names = ("OBJECT_GET_LOCATIONS", "USER_GET_OBJECTS", "locations.php")
    return sum(fake.requests[name] for name in names)


@pytest.mark.parametrize("mode", ["key", "token"])
async def test_a_large_account_within_the_request_budget_is_stored_complete_and_in_order(
    gpshub_served: Any,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_hub_factory: HubFactory,
    mode: str,
) -> None:
    budget = 12
    wall = gpshub_wall
    fake, hub, conn_id, units = await served_fleet(
        gpshub_served,
        gpshub_hub_factory,
        mode,
        60,
        {"max_requests_per_poll": budget},
        token_ttl_s=600,
    )
    browse_requests = fake.request_count
    driver = trackers(fake, wall, units)
    async with running(hub):
        await driver.run(15 * 60)  # every unit moves for a quarter of an hour
        await trio.sleep(5 * 60)  # parked: the backlog is worked off
    polls = locations_calls(fake) - 1  # the browse made one
    assert fake.request_count - browse_requests <= budget * polls
    assert fake.request_count - browse_requests > 1.5 * polls  # histories did go out
    assert_stored_as_upstream(fake, hub, conn_id)
