"""The plugin in a real hub: browse, import, poll, restart, poll again; every fix once."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory, RefusedCredentialsCheck
from hub.testing import Fleet, TrackerFeed, moving_fix

UNITS = 12


@pytest.fixture
def gpshub_sources() -> list[type]:
    """The hubs of ``gpshub_hub_factory`` run this plugin's source."""
    return [TraccarSource]


def trackers(fake: FakeTraccar, wall: TrioClock, units: list[str]) -> TrackerFeed:
    """Every unit a fix every 10 s (some invalid), as trackers feed a server."""

    def report(i: int, unit: str, step: int, now: float) -> None:
        params = {"distance": 100.0, "odometer": 1_000_000 + step * 100}
        fake.add_fix(unit, now - 2, **moving_fix(i, step), params=params)

    return TrackerFeed(wall, units, report)


async def test_import_poll_restart_poll_keeps_every_fix_exactly_once(
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    fake, url = await gpshub_served(FakeTraccar)
    units = [fake.add_unit(f"Van {i}", imei=f"86{i:013d}", plate=f"P-{i}") for i in range(UNITS)]
    start = gpshub_wall.now().timestamp()
    for unit in units:
        fake.add_fix(unit, start - 7200, 1.0, 1.0)  # older than the backfill: never fetched
        fake.add_fix(unit, start - 1800, 2.0, 2.0, valid=False)
    hubs = HubDriver(
        gpshub_hub_factory, "traccar", fake.credentials(url), {"batch_size": 5, "sync_every_s": 60}
    )
    hub, conn = hubs.hub, hubs.create()
    assert "sees 12 devices" in await hubs.test()

    remote = await hub.browse(conn)
    created, existing = hub.store.import_devices(conn.id, remote)
    assert (len(created), len(existing)) == (UNITS, 0)
    again_created, again_existing = hub.store.import_devices(conn.id, await hub.browse(conn))
    assert (len(again_created), len(again_existing)) == (0, UNITS)
    by_unit = hubs.devices()
    assert by_unit[units[3]].imei == "86" + "3".zfill(13)
    assert by_unit[units[3]].license_plate == "P-3"

    feed = trackers(fake, gpshub_wall, units)
    before = fake.requests.copy()
    await hubs.run_for(90, feed.run, settle_s=65)  # at least two more polls
    first_run = fake.requests - before
    polls_1 = first_run["/api/reports/route"] / 3  # 12 devices / 5 per call
    assert polls_1 == int(polls_1) and polls_1 >= 4

    # upstream changes while the hub is down: a rename, and a late back-dated position
    fake.rename_unit(units[0], "Van 0 (renamed)")
    late_t = gpshub_wall.now().timestamp() - 120
    fake.add_fix(units[1], late_t, 5.0, 5.0, speed_kmh=18.52)

    hubs.restart()  # same database, same secret key
    hubs.assert_ok()
    await hubs.run_for(60, feed.run, settle_s=65)

    hubs.assert_ok()
    devices, history = hubs.devices(), hubs.history()
    assert devices[units[0]].name == "Van 0 (renamed)"
    for unit in units:
        rows = history[unit]
        stored = [r["fix_time"].timestamp() for r in rows]
        expected = sorted(
            t / 1000 for t in fake.devices[int(unit)].fix_ms if t / 1000 >= start - 3600
        )
        assert stored == pytest.approx(expected), unit
        assert len(stored) == len(set(stored)) == 1 + 15 + (1 if unit == units[1] else 0)
        assert rows[0]["valid"] is False  # the invalid one from before the hub started
        moving = [r for r in rows if r["fix_time"].timestamp() > start - 10 and r["lat"] != 5.0]
        assert len(moving) == 15
        assert all(r["speed_kmh"] == pytest.approx(36.0) for r in moving)
        assert [r["valid"] for r in moving].count(False) == 3
        assert all(r["satellites"] == 7 and r["ignition"] is True for r in moving)
        assert all(r["sensors"]["distance"] == 100.0 for r in moving)
        assert all(r["sensors"]["platform_odometer_km"] >= 1000.0 for r in moving)
    late_rows = history[units[1]]
    (late,) = [r for r in late_rows if abs(r["fix_time"].timestamp() - late_t) < 0.001]
    assert late["speed_kmh"] == pytest.approx(18.52) and late["lat"] == 5.0


class TestRefusedCredentials(RefusedCredentialsCheck):
    fake_class, source_class = FakeTraccar, TraccarSource
    refused = {"password": "wrong"}  # one refused call, then it waits for new credentials


async def test_a_device_silent_for_20_minutes_uploads_its_black_box_and_nothing_is_lost(
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    """A van out of coverage for 20 minutes buffers its fixes and uploads them all at once
    when it is back: every one is stored, once.  While it is silent it costs no report
    call: its ``positionId`` says Traccar stored nothing new for it."""
    fake, url = await gpshub_served(FakeTraccar)
    units = [fake.add_unit(f"Van {i}") for i in range(3)]
    quiet = units[0]
    driver = HubDriver(gpshub_hub_factory, "traccar", fake.credentials(url), {})
    hub, conn = driver.hub, await driver.connect()
    fleet = Fleet(fake, gpshub_wall, units)

    calls: dict[str, int] = {}
    async with driver.running():
        # out of coverage: its fixes go to its black box; once its last stored fix is
        # older than the window, what the calls ask; then 20 minutes arrive at once
        uploaded = await fleet.black_box(
            quiet,
            on_window=lambda: calls.setdefault("silent_from", len(fake.calls)),
            on_back=lambda: calls.setdefault("back", len(fake.calls)),
        )
    silent_calls = fake.calls[calls["silent_from"] : calls["back"]]

    assert len(uploaded) >= 20 * 60 / 30
    fleet.assert_stored_once(hub, conn.id)  # all, in order, once
    routes = [c for c in silent_calls if c.path == "/api/reports/route"]
    lists = [c for c in silent_calls if c.path == "/api/devices"]
    assert routes and all(quiet not in c.params("deviceId") for c in routes)
    assert len(lists) == len(routes)  # one device list per poll tells it apart


async def test_a_user_who_is_not_an_administrator_tests_imports_and_polls(
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """On a Traccar that refuses ``/api/devices?all=true`` to a user who is not an
    administrator (Traccar 4: 400 ``Manager access required``), the connection lists the
    user's own devices instead: Test Connection, browsing and polling all work, and a
    running connection is refused once, not every poll."""
    fake, url = await gpshub_served(FakeTraccar)
    fake.all_refusal = 400
    driver = fake.add_user("driver@example.com", "pw")
    units = [fake.add_unit(f"Van {i}", users=[driver]) for i in range(3)]
    fake.add_unit("Someone else's")
    credentials = fake.credentials(url, driver)
    hubs = HubDriver(gpshub_hub_factory, "traccar", credentials, {})
    hub = hubs.hub
    summary = await hub.test_connection("traccar", credentials)
    assert "'driver@example.com' sees 3 devices" in summary
    conn = hubs.create()
    created = await hubs.import_devices()
    assert sorted(d.upstream_id for d in created) == units

    fleet = Fleet(fake, gpshub_wall, units)
    caplog.set_level(logging.INFO, logger="gpshub.source.traccar")
    before = len(fake.calls)
    async with hubs.running():
        await fleet.run(300)
        fake.hold(units[0])  # silent devices make every poll read the device list
        await fleet.run(600)
        fake.release(units[0])
        await trio.sleep(65)

    fleet.assert_stored_once(hub, conn.id)
    lists = [c for c in fake.calls[before:] if c.path == "/api/devices"]
    assert len(lists) > 10
    assert [c.status for c in lists if c.params("all")] == [400]  # once, then not again
    told = [r for r in caplog.records if "own devices" in r.getMessage()]
    assert len(told) == 1 and told[0].levelno == logging.INFO
