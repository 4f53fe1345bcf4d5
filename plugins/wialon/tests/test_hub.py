"""End to end: the plugin in a real hub against the fake, across a hub restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import MockClock
from wialon_support import T0

from gpshub_wialon import WialonSource
from gpshub_wialon import protocol as p
from gpshub_wialon.testing import FakeWialon
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM
from hub.clock import TrioClock
from hub.derive import EventCode
from hub.hub_driver import HubDriver, HubFactory, RefusedCredentialsCheck
from hub.models import Device, Role
from hub.testing import ReportsBeforePolls, TrackerFeed

UNITS = 12
EVERY_S = 10
Serve = Any


@pytest.fixture
def fake(gpshub_wall: TrioClock) -> FakeWialon:
    return FakeWialon(now=lambda: gpshub_wall.now().timestamp())


async def connected(
    hubs: HubFactory, serve: Serve, fake: FakeWialon, **credentials: Any
) -> tuple[HubDriver, str]:
    """The fake served on loopback and a hub (not running yet) with a Wialon connection
    to it: its driver and the fake's URL."""
    url = await serve(fake)
    driver = HubDriver(
        hubs, WialonSource, {**fake.credentials(url), **credentials}, fake.options(url),
        label="Fleet",
    )  # fmt: skip
    driver.create()
    return driver, url


@asynccontextmanager
async def imported(
    hubs: HubFactory, serve: Serve, fake: FakeWialon
) -> AsyncIterator[tuple[HubDriver, dict[str, Device]]]:
    """As ``connected``, with every unit imported: ``(driver, devices by unit id)``."""
    driver, _ = await connected(hubs, serve, fake)
    await driver.import_devices()
    yield driver, driver.devices()


def trackers(fake: FakeWialon, units: list[str], wall: TrioClock) -> TrackerFeed:
    """Every unit reports every ``EVERY_S`` seconds of wall time."""

    def report(i: int, unit: str, step: int, now_s: float) -> None:
        now = int(now_s)
        fake.add_fix(
            unit,
            now,
            50.0 + i / 100,
            30.0 + (now - T0) / 10_000,
            speed_kmh=36 + i,
            course=90,
            satellites=0 if i == 0 else 9,  # unit 0 never has a satellite fix
            ignition=i % 2 == 0,
            params={"fuel": 40 - (now - T0) / 100, "temp.engine": 88},
        )

    return TrackerFeed(wall, units, report, every=EVERY_S)


async def test_import_poll_restart_poll_every_fix_once(
    gpshub_clock: MockClock, gpshub_wall: TrioClock, fake: FakeWialon, gpshub_hub_factory: HubFactory,
    gpshub_serve: Serve,
) -> None:  # fmt: skip
    units = [
        fake.add_unit(f"Truck {i:02d}", imei=f"35630704244{i:04d}", plate=f"AB-{i:03d}")
        for i in range(UNITS)
    ]
    for unit in units:  # history before the first poll, within the backfill
        fake.add_fix(unit, T0 - 600, 49.0, 29.0, satellites=7)
    driver, _ = await connected(gpshub_hub_factory, gpshub_serve, fake)
    hub, conn = driver.hub, driver.connection()
    assert await driver.test() == f"Wialon account 'fleet': {UNITS} units"
    remote = await hub.browse(conn)
    created, existing = hub.store.import_devices(conn.id, remote[:8])
    assert (len(created), len(existing)) == (8, 0)
    created, existing = hub.store.import_devices(conn.id, remote)
    assert (len(created), len(existing)) == (UNITS - 8, 8)  # idempotent
    devices = driver.devices()
    assert devices[units[3]].imei == "356307042440003"
    assert devices[units[3]].license_plate == "AB-003"

    fake.rename(units[5], "Truck 05 (renamed)")
    logins = fake.requests[p.LOGIN]
    before = fake.request_count
    feed = trackers(fake, units, gpshub_wall)
    await driver.run_for(120, feed.run, settle_s=35)  # one more poll after the last fix
    first_run = fake.request_count - before
    driver.assert_ok()
    assert hub.store.get_device(devices[units[5]].id).name == "Truck 05 (renamed)"

    # a restart: a new hub on the same database, with the fixes still coming in
    hub2 = driver.restart()
    await trio.sleep(20)  # down for a moment: the session outlives it
    await driver.run_for(90, trackers(fake, units, gpshub_wall).run, settle_s=35)

    # the browse and the runner share the connection's saved session: one login for all
    assert fake.requests[p.LOGIN] == logins
    polls = round((120 + 35) / 30) + 1
    assert first_run <= polls * (1 + 1) + 1  # one batch per poll, syncs, nothing more
    assert hub.pipeline.stats.duplicates == hub2.pipeline.stats.duplicates == 0
    assert hub.pipeline.stats.stored + hub2.pipeline.stats.stored == UNITS * (1 + 21)

    for i, unit in enumerate(units):
        device = devices[unit]
        rows, _ = hub2.store.positions.history([device.id], limit=10_000)
        stored = [int(r["fix_time"].timestamp()) for r in rows]
        expected = [T0 - 600] + [t for t in fake.unit(unit).times if t >= T0]
        assert stored == expected, unit
        last = rows[-1]
        assert last["speed_kmh"] == 36 + i and last["course_deg"] == 90
        assert last["valid"] is (i != 0)
        assert last["ignition"] is (i % 2 == 0)
        assert last["sensors"]["temp.engine"] == 88 and "fuel" in last["sensors"]
        assert "ign" not in last["sensors"]


class TestRefusedCredentials(RefusedCredentialsCheck):
    fake_class, source_class = FakeWialon, WialonSource
    refused = {"token": "F" * 72}  # one login, refused

    def check_refused(self, fake: Any, connection: Any) -> None:
        assert "error 8" in connection.last_error
        assert fake.requests == {p.LOGIN: 1}


async def test_a_black_box_upload_after_twenty_silent_minutes_is_stored_whole(
    gpshub_clock: MockClock, gpshub_wall: TrioClock, fake: FakeWialon, gpshub_hub_factory: HubFactory,
    gpshub_serve: Serve,
) -> None:  # fmt: skip
    """A tracker out of coverage for 20 minutes keeps recording (every 10 to 30 s) and then
    uploads its whole buffer at once, received now: every buffered fix is stored, once,
    while a unit in coverage goes on reporting around it."""
    reefer = fake.add_unit("Reefer", imei="356307042449001")
    van = fake.add_unit("Van", imei="356307042449002")
    gaps = [10, 20, 30, 15, 25]  # the reefer's recording interval cycles through these

    async with imported(gpshub_hub_factory, gpshub_serve, fake) as (driver, devices):
        hub = driver.hub

        async def drive(seconds: int) -> None:
            """Both units record for ``seconds`` of wall time: the van every 10 s, the
            reefer at the cycling gaps."""
            next_reefer = int(gpshub_wall.now().timestamp())
            recorded = 0
            for step in range(seconds // 5):
                now = int(gpshub_wall.now().timestamp())
                if step % 2 == 0:
                    fake.add_fix(van, now, 52.0, 21.0 + (now - T0) / 1e5, speed_kmh=50)
                if now >= next_reefer:
                    fake.add_fix(reefer, now, 51.0, 20.0 + (now - T0) / 1e5, speed_kmh=60)
                    next_reefer = now + gaps[recorded % len(gaps)]
                    recorded += 1
                await trio.sleep(5)

        async with driver.running():
            await drive(180)  # both in coverage
            fake.hold(reefer)  # out of coverage: it records into its black box
            await drive(20 * 60)
            uploaded = fake.release(reefer)  # back: the 20 minutes arrive at once
            await drive(120)
            await trio.sleep(35)  # one more poll after the last fix

    assert 20 * 60 // 30 <= uploaded <= 20 * 60 // 10  # one fix every 10 to 30 s
    for unit in (reefer, van):
        rows, _ = hub.store.positions.history([devices[unit].id], limit=10_000)
        stored = [int(r["fix_time"].timestamp()) for r in rows]
        assert stored == fake.unit(unit).times, unit  # every fix, once, in order
    assert hub.pipeline.stats.duplicates == 0


async def test_ignition_from_each_units_sensor_drives_hours_events_and_rules(
    gpshub_clock: MockClock, gpshub_wall: TrioClock, fake: FakeWialon, gpshub_hub_factory: HubFactory,
    gpshub_serve: Serve,
) -> None:  # fmt: skip
    """Three units tell their ignition three ways — a sensor on input 2, a sensor on bit 3
    of a parameter, no sensor but Teltonika's io_239 — and in a real hub each gets its
    hour meter, ignition on/off event codes and ignition alerts."""
    relay, bits, plain = (fake.add_unit(n) for n in ("Relay", "Bits", "Plain"))
    fake.add_sensor(relay, "Ignition", "engine operation", "in2")
    fake.add_sensor(relay, "Odometer", "mileage", "can_mileage", metrics="m")
    fake.add_sensor(bits, "Зажигание", "engine operation", "param199:3")
    fake.add_sensor(bits, "Motor hours", "engine hours", "engine_min/60")

    def record(on: bool) -> None:
        now = int(gpshub_wall.now().timestamp())
        distance = now - T0
        fake.add_fix(relay, now, 50.0, 30.0, inputs=0b10 if on else 0,
                     params={"can_mileage": 1_000_000 + distance})  # fmt: skip
        fake.add_fix(bits, now, 50.1, 30.0, params={"param199": 0b101 if on else 0b001,
                     "engine_min": 6000 + distance // 60})  # fmt: skip
        fake.add_fix(plain, now, 50.2, 30.0, params={"io_239": int(on)})

    async with imported(gpshub_hub_factory, gpshub_serve, fake) as (driver, devices):
        hub, client_id = driver.hub, driver.client_id
        owner = hub.store.create_user("Ann", Role.MANAGER, client_id)
        on_rule = hub.store.rules.create(client_id, owner, "on", "ignitionOn")
        off_rule = hub.store.rules.create(client_id, owner, "off", "ignitionOff")
        async with driver.running():
            for minute in range(8):  # off 2 minutes, on 4, off 2
                for _ in range(6):
                    record(2 <= minute < 6)
                    await trio.sleep(10)
            await trio.sleep(35)

    for unit in (relay, bits, plain):
        device = devices[unit]
        rows, _ = hub.store.positions.history([device.id], limit=10_000)
        assert len(rows) == 48 and all(r["ignition"] is not None for r in rows), unit
        assert [r["ignition"] for r in rows] == [False] * 12 + [True] * 24 + [False] * 12
        codes = [r["event_code"] for r in rows]
        assert codes.count(EventCode.IGNITION_ON) == 1, unit
        assert codes.count(EventCode.IGNITION_OFF) == 1, unit
        assert rows[-1]["hours"] == pytest.approx(23 * 10 / 3600), unit  # on from fix to fix
        alerts = hub.store.rules.alerts(client_id, device_id=device.id)
        assert [a.rule_id for a in alerts] == [on_rule.id, off_rule.id], unit
    rows, _ = hub.store.positions.history([devices[relay].id], limit=10_000)
    assert rows[-1]["sensors"][PLATFORM_ODOMETER_KM] == pytest.approx(1000 + 470 / 1000)
    rows, _ = hub.store.positions.history([devices[bits].id], limit=10_000)
    assert rows[-1]["sensors"][PLATFORM_ENGINE_HOURS] == pytest.approx((6000 + 7) / 60)


async def test_the_kits_run_stores_every_fix_once_across_a_restart(
    gpshub_clock: MockClock, gpshub_wall: TrioClock, fake: FakeWialon, gpshub_hub_factory: HubFactory,
    gpshub_serve: Serve,
) -> None:  # fmt: skip
    """``HubDriver.run``: create, test, import, 3 polls, restart, 2 polls; every unit
    reports before each poll and the restarted hub carries on with the saved session."""
    url = await gpshub_serve(fake)
    units = [fake.add_unit(f"Van {i}", imei=f"35630704245{i:04d}") for i in range(3)]
    reports = ReportsBeforePolls(
        gpshub_wall,
        units,
        lambda i, unit, poll, t: fake.add_fix(
            unit, t, 50.0 + i / 100, 30.0 + poll / 10_000, speed_kmh=40
        ),
    )
    driver = HubDriver(gpshub_hub_factory, WialonSource, fake.credentials(url), fake.options(url))
    stored = await driver.run(polls=3, polls_after_restart=2, before=reports)
    driver.assert_ok()
    assert {
        u: [int(r["fix_time"].timestamp()) for r in rows] for u, rows in stored.items()
    } == reports.sent
    # the test's own session (logged out), then one for the browse and every poll: the
    # saved session outlives the restart
    assert fake.requests[p.LOGIN] == 2
