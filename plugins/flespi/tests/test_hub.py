"""The plugin in a real hub against ``FakeFlespi``: import, poll, restart, poll again, and
every fix is in the history exactly once with the right fields."""

from __future__ import annotations

from typing import Any

import pytest
from trio.testing import MockClock

from gpshub_flespi import FlespiSource
from gpshub_flespi.source import FUTURE_SLACK_S, SETTLE_S
from gpshub_flespi.testing import FakeFlespi
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory, RefusedCredentialsCheck
from hub.testing import Fleet, ReportsBeforePolls, TrackerFeed

UNITS = 7


class Trackers(TrackerFeed):
    """Each unit reports every 10 s; every fourth report is invalid; now and then a
    report reaches flespi late, with the time it was recorded.  ``sent`` keeps each
    unit's reports by fix time."""

    def __init__(self, fake: FakeFlespi, wall: TrioClock, units: list[str]) -> None:
        super().__init__(wall, units, self.send)
        self.fake = fake
        self.sent: dict[str, dict[float, dict[str, Any]]] = {u: {} for u in units}

    def send(self, i: int, unit: str, step: int, now: float) -> None:
        t = now - 1.25 - i / 1000
        if step % 6 == 5 and i == 0:
            t = now - 95.5  # a black-box upload: behind the cursor
        report = {
            "lat": 14.6 + i / 100 + step / 10_000,
            "lon": -90.5,
            "speed_kmh": 30.0 + i,
            "course": (step * 11) % 360,
            "valid": step % 4 != 3,
            "ignition": step % 2 == 0,
            "params": {"vehicle.mileage": 1000.0 + step, "fuel.level": 50 - i},
        }
        self.fake.add_fix(
            unit,
            t,
            report["lat"],
            report["lon"],
            speed_kmh=report["speed_kmh"],
            course=report["course"],
            valid=report["valid"],
            ignition=report["ignition"],
            params=report["params"],
        )
        self.sent[unit][t] = report


async def test_import_poll_restart_poll_stores_every_fix_once(
    gpshub_clock: MockClock,
    gpshub_wall: TrioClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    wall = gpshub_wall
    fake, url = await gpshub_served(FakeFlespi)
    units = [
        fake.add_unit(f"Truck {i}", imei=f"35630704244{i:04d}", plate=f"P-{i}")
        for i in range(UNITS)
    ]
    quiet = fake.add_unit("Short TTL", messages_ttl=0)  # only its telemetry has a position
    start = wall.now().timestamp()
    fake.add_fix(quiet, start - 5000, 10.0, 10.0, speed_kmh=5.0)
    for unit in units:
        fake.add_fix(unit, start - 7200, 1.0, 1.0)  # older than the backfill: not fetched
        fake.add_fix(unit, start - 1800, 2.0, 2.0)

    options = {**fake.options(url), "batch_size": 3, "sync_every_s": 60}
    driver = HubDriver(gpshub_hub_factory, "flespi", fake.credentials(url), options)
    hub = driver.hub
    assert await hub.test_connection("flespi", fake.credentials(url), fake.options(url)) == (
        "flespi account 123456 (token 'gpshub'): 8 devices"
    )
    conn = driver.create()
    created, existing = hub.store.import_devices(conn.id, await hub.browse(conn))
    assert (len(created), len(existing)) == (UNITS + 1, 0)
    created, existing = hub.store.import_devices(conn.id, await hub.browse(conn))
    assert (len(created), len(existing)) == (0, UNITS + 1)
    devices = driver.devices()
    assert (devices[units[2]].imei, devices[units[2]].license_plate) == ("356307042440002", "P-2")

    trackers = Trackers(fake, wall, units)
    before = fake.requests.copy()
    await driver.run_for(120, trackers.run, settle_s=65)  # two polls after the last report
    first_run = fake.requests - before
    polls = first_run["/gw/devices/telemetry"]  # the short-TTL device, every poll
    assert polls >= 5
    # The first poll: 8 new devices, 3 per selector.  Then the 7 reporting ones take 3
    # selectors and the short-TTL one, silent, its own (the call silent devices share).
    assert first_run["/gw/devices/messages"] == 3 + 4 * (polls - 1)

    # While the hub is down: a rename upstream, reports go on, one arrives late.
    fake.rename(units[0], "Truck 0 (renamed)")
    fake.set_plate(units[1], "NEW-1")
    gpshub_hub_factory.close_hub(hub)
    await trackers.run(60)

    driver.restart()  # same database and secret key
    driver.assert_ok()
    await driver.run_for(60, trackers.run, settle_s=65)
    driver.assert_ok()

    devices, history = driver.devices(), driver.history()
    assert devices[units[0]].name == "Truck 0 (renamed)"
    assert devices[units[1]].license_plate == "NEW-1"
    late = 0
    for unit in units:
        rows = history[unit]
        times = [r["fix_time"].timestamp() for r in rows]
        assert len(times) == len(set(times)), f"{unit}: a fix stored twice"
        sent = trackers.sent[unit]
        assert sorted(times) == sorted([start - 1800, *sent]), unit
        for row in rows:
            t = row["fix_time"].timestamp()
            if t == start - 1800:
                continue
            report = sent[t]
            late += t < row["server_time"].timestamp() - 60
            assert row["fix_time"].tzinfo is not None
            assert (row["lat"], row["lon"]) == (pytest.approx(report["lat"]), report["lon"])
            assert row["speed_kmh"] == report["speed_kmh"]
            assert row["course_deg"] == report["course"]
            assert row["valid"] is report["valid"]
            assert row["ignition"] is report["ignition"]
            assert row["sensors"]["fuel.level"] == report["params"]["fuel.level"]
            assert row["sensors"]["platform_odometer_km"] == report["params"]["vehicle.mileage"]
            assert "position.latitude" not in row["sensors"]
            assert "device.id" not in row["sensors"]
    assert late >= 3  # the black-box uploads were all picked up

    rows = history[quiet]
    assert [(r["lat"], r["lon"], r["speed_kmh"]) for r in rows] == [(10.0, 10.0, 5.0)]


class TestRefusedCredentials(RefusedCredentialsCheck):
    fake_class, source_class = FakeFlespi, FlespiSource
    refused = {"token": "W" * 64}


async def test_a_device_silent_for_20_minutes_uploads_its_black_box_and_nothing_is_lost(
    gpshub_clock: MockClock,
    gpshub_wall: TrioClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    """A truck out of coverage for 20 minutes buffers its messages and uploads them all at
    once when it is back: every fix is stored, once.  While it is silent it shares a call
    with other silent devices, and that call transfers only what flespi received lately."""
    wall = gpshub_wall
    fake, url = await gpshub_served(FakeFlespi)
    units = [fake.add_unit(f"Truck {i}") for i in range(3)]
    quiet = units[0]
    driver = HubDriver(gpshub_hub_factory, "flespi", fake.credentials(url), fake.options(url))
    hub, conn = driver.hub, await driver.connect()
    fleet = Fleet(fake, wall, units)

    silent_queries: list[Any] = []
    async with driver.running():
        # out of coverage: its messages go to its black box; once its last stored fix is
        # older than the window, what the queries ask; then 20 minutes arrive at once
        uploaded = await fleet.black_box(
            quiet,
            on_window=fake.queries.clear,
            on_back=lambda: silent_queries.extend(q for q in fake.queries if q[2] is not None),
        )

    assert len(uploaded) >= 20 * 60 / 30
    fleet.assert_stored_once(hub, conn.id)  # all, in order, once
    polls = {q[2]["to"] for q in silent_queries}
    assert len(silent_queries) == 2 * len(polls)  # the reporting pair, and the silent one
    for _, selector, data in silent_queries:
        if selector == quiet:
            polled_at = data["to"] - FUTURE_SLACK_S
            floor = float(data["filter"].split(">=")[1].split("|")[0])
            assert floor >= polled_at - SETTLE_S - 60  # what arrived since about the last call


async def test_the_kit_driver_stores_every_fix_once_across_a_restart(
    gpshub_clock: MockClock,
    gpshub_wall: TrioClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    """``HubDriver``: create, test, import, 3 polls, restart, 2 polls; every report stored
    once, names and IMEIs imported."""
    fake, url = await gpshub_served(FakeFlespi)
    units = [fake.add_unit(f"Truck {i}", imei=f"35630704244{i:04d}") for i in range(3)]
    report = ReportsBeforePolls(
        gpshub_wall,
        units,
        lambda i, unit, poll, t: fake.add_fix(
            unit, t, 14.6 + i / 100 + poll / 10_000, -90.5, speed_kmh=36.0
        ),
    )
    sent = report.sent
    driver = HubDriver(gpshub_hub_factory, FlespiSource, fake.credentials(url), fake.options(url))
    stored = await driver.run(polls=3, polls_after_restart=2, before=report)

    assert driver.polls == 5
    driver.assert_ok()
    assert {u: [r["fix_time"].timestamp() for r in rows] for u, rows in stored.items()} == sent
    assert all(len(times) == 5 for times in sent.values())
    assert {d.imei for d in driver.devices().values()} == {f"35630704244{i:04d}" for i in range(3)}
