"""The plugin end to end with the plugin author's kit only: the ``gpshub_*`` fixtures of
gpshub's pytest plugin and ``HubDriver`` (no conftest fixture of this package)."""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory
from hub.testing import ReportsBeforePolls


async def test_create_test_import_poll_restart_poll_stores_every_fix_once(
    gpshub_clock: MockClock,
    gpshub_wall: TrioClock,
    gpshub_served: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    fake, url = await gpshub_served(FakeTracking3D)
    units = [fake.add_unit(f"Truck {i}", imei=f"86{i:013d}") for i in range(3)]
    logins_at_restart: list[int] = []

    def report(i: int, unit: str, poll: int, t: int) -> None:
        if poll == 4 and i == 0:  # the first poll of the restarted hub
            logins_at_restart.append(fake.logins)
        fake.add_fix(unit, t, 40.0 + i / 100 + poll / 10_000, -74.0, speed_kmh=36.0)

    reports = ReportsBeforePolls(gpshub_wall, units, report)
    driver = HubDriver(
        gpshub_hub_factory, Tracking3DSource, fake.credentials(url), fake.options(url)
    )
    stored = await driver.run(polls=3, polls_after_restart=2, before=reports)

    assert driver.polls == 5
    driver.assert_ok()
    assert {unit: [r["fix_time"].timestamp() for r in rows] for unit, rows in stored.items()} == {
        unit: times for unit, times in reports.sent.items()
    }
    assert all(len(times) == 5 for times in reports.sent.values())
    assert {d.imei for d in driver.devices().values()} == {f"86{i:013d}" for i in range(3)}
    assert fake.logins == logins_at_restart[0]  # the saved session outlived the restart
