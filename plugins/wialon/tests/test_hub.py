"""End to end: the plugin in a real hub against the fake, across a hub restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from trio.testing import MockClock
from wialon_support import EPOCH, T0

from gpshub_wialon import WialonSource
from gpshub_wialon import protocol as p
from gpshub_wialon.testing import FakeWialon
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM
from hub.clock import TrioClock
from hub.core import Hub
from hub.derive import EventCode
from hub.models import Client, Connection, ConnectionState, Device, Role
from hub.store import Store
from hub.testing import LOOPBACK_NETWORKS, make_hub, serve_app

UNITS = 12
EVERY_S = 10


def new_hub(tmp_path: Path, wall: TrioClock, store: Store | None = None) -> Any:
    hub = make_hub(tmp_path, WialonSource, clock=wall, outbound_allow_networks=LOOPBACK_NETWORKS)
    if store is None:
        return hub
    hub.store.close()
    return Hub(store, hub.registry, hub.plugins, clock=wall, settings=hub.settings)


@asynccontextmanager
async def connected(
    tmp_path: Path, wall: TrioClock, fake: FakeWialon
) -> AsyncIterator[tuple[Any, Client, Connection, str]]:
    """The fake served on loopback and a hub (not running yet) whose client has a Wialon
    connection to it: ``(hub, client, connection, the fake's URL)``."""
    async with trio.open_nursery() as server:
        url = await server.start(serve_app, fake.app)
        hub = new_hub(tmp_path, wall)
        client = hub.store.create_client("acme")
        conn = hub.store.create_connection(
            client.id, "wialon", "Fleet", fake.credentials(url), fake.options(url)
        )
        yield hub, client, conn, url
        server.cancel_scope.cancel()


@asynccontextmanager
async def imported(
    tmp_path: Path, wall: TrioClock, fake: FakeWialon
) -> AsyncIterator[tuple[Any, Client, dict[str, Device]]]:
    """As ``connected``, with every unit imported: ``(hub, client, devices by unit id)``."""
    async with connected(tmp_path, wall, fake) as (hub, client, conn, _):
        hub.store.import_devices(conn.id, await hub.browse(hub.store.get_connection(conn.id)))
        yield hub, client, {d.upstream_id: d for d in hub.store.list_devices(client.id)}


async def feed(fake: FakeWialon, units: list[str], wall: TrioClock, seconds: float) -> None:
    """Every unit reports every ``EVERY_S`` seconds of wall time, for ``seconds``."""
    for _ in range(int(seconds // EVERY_S)):
        now = int(wall.now().timestamp())
        for i, unit in enumerate(units):
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
        await trio.sleep(EVERY_S)


async def run_hub(hub: Any, fake: FakeWialon, units: list[str], wall: TrioClock, s: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await feed(fake, units, wall, s)
        await trio.sleep(35)  # one more poll after the last fix
        hub.shutdown()


async def test_import_poll_restart_poll_every_fix_once(tmp_path: Path, clock: MockClock) -> None:
    wall = TrioClock(EPOCH)
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    units = [
        fake.add_unit(f"Truck {i:02d}", imei=f"35630704244{i:04d}", plate=f"AB-{i:03d}")
        for i in range(UNITS)
    ]
    for unit in units:  # history before the first poll, within the backfill
        fake.add_fix(unit, T0 - 600, 49.0, 29.0, satellites=7)
    async with connected(tmp_path, wall, fake) as (hub, client, conn, url):
        assert (
            await hub.test_connection("wialon", fake.credentials(url), fake.options(url))
            == f"Wialon account 'fleet': {UNITS} units"
        )
        remote = await hub.browse(hub.store.get_connection(conn.id))
        created, existing = hub.store.import_devices(conn.id, remote[:8])
        assert (len(created), len(existing)) == (8, 0)
        created, existing = hub.store.import_devices(conn.id, remote)
        assert (len(created), len(existing)) == (UNITS - 8, 8)  # idempotent
        devices = {d.upstream_id: d for d in hub.store.list_devices(client.id)}
        assert devices[units[3]].imei == "356307042440003"
        assert devices[units[3]].license_plate == "AB-003"

        fake.rename(units[5], "Truck 05 (renamed)")
        logins = fake.requests[p.LOGIN]
        before = fake.request_count
        await run_hub(hub, fake, units, wall, 120)
        first_run = fake.request_count - before
        assert hub.store.get_connection(conn.id).state == ConnectionState.OK
        store = hub.store
        assert store.get_device(devices[units[5]].id).name == "Truck 05 (renamed)"

        # a restart: a new hub on the same database, with the fixes still coming in
        hub2 = new_hub(tmp_path, wall, Store.open(f"sqlite:///{tmp_path / 'hub.db'}",
                                                   store.secrets))  # fmt: skip
        await trio.sleep(20)  # down for a moment: the session outlives it
        await run_hub(hub2, fake, units, wall, 90)

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


async def test_a_wrong_token_stops_the_connection_after_one_login(
    tmp_path: Path, clock: MockClock
) -> None:
    wall = TrioClock(EPOCH)
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    unit = fake.add_unit("Truck")
    async with trio.open_nursery() as server:
        url = await server.start(serve_app, fake.app)
        hub = new_hub(tmp_path, wall)
        client = hub.store.create_client("acme")
        creds = {**fake.credentials(url), "token": "F" * 72}
        conn = hub.store.create_connection(client.id, "wialon", "Fleet", creds)
        hub.store.create_device(client.id, name="Truck", connection_id=conn.id, upstream_id=unit)
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            await trio.sleep(600)
            hub.shutdown()
        server.cancel_scope.cancel()
    state = hub.store.get_connection(conn.id)
    assert state.state == ConnectionState.NEEDS_REAUTH
    assert "error 8" in state.last_error and "F" * 72 not in state.last_error
    assert fake.requests == {p.LOGIN: 1}


async def test_a_black_box_upload_after_twenty_silent_minutes_is_stored_whole(
    tmp_path: Path, clock: MockClock
) -> None:
    """A tracker out of coverage for 20 minutes keeps recording (every 10 to 30 s) and then
    uploads its whole buffer at once, received now: every buffered fix is stored, once,
    while a unit in coverage goes on reporting around it."""
    wall = TrioClock(EPOCH)
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    reefer = fake.add_unit("Reefer", imei="356307042449001")
    van = fake.add_unit("Van", imei="356307042449002")
    gaps = [10, 20, 30, 15, 25]  # the reefer's recording interval cycles through these

    async with imported(tmp_path, wall, fake) as (hub, _, devices):

        async def drive(seconds: int) -> None:
            """Both units record for ``seconds`` of wall time: the van every 10 s, the
            reefer at the cycling gaps."""
            next_reefer = int(wall.now().timestamp())
            recorded = 0
            for step in range(seconds // 5):
                now = int(wall.now().timestamp())
                if step % 2 == 0:
                    fake.add_fix(van, now, 52.0, 21.0 + (now - T0) / 1e5, speed_kmh=50)
                if now >= next_reefer:
                    fake.add_fix(reefer, now, 51.0, 20.0 + (now - T0) / 1e5, speed_kmh=60)
                    next_reefer = now + gaps[recorded % len(gaps)]
                    recorded += 1
                await trio.sleep(5)

        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            await drive(180)  # both in coverage
            fake.hold(reefer)  # out of coverage: it records into its black box
            await drive(20 * 60)
            uploaded = fake.release(reefer)  # back: the 20 minutes arrive at once
            await drive(120)
            await trio.sleep(35)  # one more poll after the last fix
            hub.shutdown()

    assert 20 * 60 // 30 <= uploaded <= 20 * 60 // 10  # one fix every 10 to 30 s
    for unit in (reefer, van):
        rows, _ = hub.store.positions.history([devices[unit].id], limit=10_000)
        stored = [int(r["fix_time"].timestamp()) for r in rows]
        assert stored == fake.unit(unit).times, unit  # every fix, once, in order
    assert hub.pipeline.stats.duplicates == 0


async def test_ignition_from_each_units_sensor_drives_hours_events_and_rules(
    tmp_path: Path, clock: MockClock
) -> None:
    """Three units tell their ignition three ways — a sensor on input 2, a sensor on bit 3
    of a parameter, no sensor but Teltonika's io_239 — and in a real hub each gets its
    hour meter, ignition on/off event codes and ignition alerts."""
    wall = TrioClock(EPOCH)
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    relay, bits, plain = (fake.add_unit(n) for n in ("Relay", "Bits", "Plain"))
    fake.add_sensor(relay, "Ignition", "engine operation", "in2")
    fake.add_sensor(relay, "Odometer", "mileage", "can_mileage", metrics="m")
    fake.add_sensor(bits, "Зажигание", "engine operation", "param199:3")
    fake.add_sensor(bits, "Motor hours", "engine hours", "engine_min/60")

    def record(on: bool) -> None:
        now = int(wall.now().timestamp())
        distance = now - T0
        fake.add_fix(relay, now, 50.0, 30.0, inputs=0b10 if on else 0,
                     params={"can_mileage": 1_000_000 + distance})  # fmt: skip
        fake.add_fix(bits, now, 50.1, 30.0, params={"param199": 0b101 if on else 0b001,
                     "engine_min": 6000 + distance // 60})  # fmt: skip
        fake.add_fix(plain, now, 50.2, 30.0, params={"io_239": int(on)})

    async with imported(tmp_path, wall, fake) as (hub, client, devices):
        owner = hub.store.create_user("Ann", Role.MANAGER, client.id)
        on_rule = hub.store.rules.create(client.id, owner, "on", "ignitionOn")
        off_rule = hub.store.rules.create(client.id, owner, "off", "ignitionOff")
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            for minute in range(8):  # off 2 minutes, on 4, off 2
                for _ in range(6):
                    record(2 <= minute < 6)
                    await trio.sleep(10)
            await trio.sleep(35)
            hub.shutdown()

    for unit in (relay, bits, plain):
        device = devices[unit]
        rows, _ = hub.store.positions.history([device.id], limit=10_000)
        assert len(rows) == 48 and all(r["ignition"] is not None for r in rows), unit
        assert [r["ignition"] for r in rows] == [False] * 12 + [True] * 24 + [False] * 12
        codes = [r["event_code"] for r in rows]
        assert codes.count(EventCode.IGNITION_ON) == 1, unit
        assert codes.count(EventCode.IGNITION_OFF) == 1, unit
        assert rows[-1]["hours"] == pytest.approx(23 * 10 / 3600), unit  # on from fix to fix
        alerts = hub.store.rules.alerts(client.id, device_id=device.id)
        assert [a.rule_id for a in alerts] == [on_rule.id, off_rule.id], unit
    rows, _ = hub.store.positions.history([devices[relay].id], limit=10_000)
    assert rows[-1]["sensors"][PLATFORM_ODOMETER_KM] == pytest.approx(1000 + 470 / 1000)
    rows, _ = hub.store.positions.history([devices[bits].id], limit=10_000)
    assert rows[-1]["sensors"][PLATFORM_ENGINE_HOURS] == pytest.approx((6000 + 7) / 60)
