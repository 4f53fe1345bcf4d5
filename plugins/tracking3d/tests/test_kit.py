"""The plugin end to end with the plugin author's kit only: the ``gpshub_*`` fixtures of
gpshub's pytest plugin and ``HubDriver`` (no conftest fixture of this package)."""

from __future__ import annotations

from typing import Any

from trio.testing import MockClock

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory
from hub.models import ConnectionState


async def test_create_test_import_poll_restart_poll_stores_every_fix_once(
    gpshub_clock: MockClock,
    gpshub_wall: TrioClock,
    gpshub_serve: Any,
    gpshub_hub_factory: HubFactory,
) -> None:
    fake = FakeTracking3D(now=lambda: gpshub_wall.now().timestamp())
    url = await gpshub_serve(fake)
    units = [fake.add_unit(f"Truck {i}", imei=f"86{i:013d}") for i in range(3)]
    sent: dict[str, list[float]] = {unit: [] for unit in units}
    logins_at_restart: list[int] = []

    def report(poll: int) -> None:
        """Before each poll, every unit reports a fix (2 s old)."""
        if poll == 4:  # the first poll of the restarted hub
            logins_at_restart.append(fake.logins)
        # a restarted hub polls at once: the reports before polls 4 and 5 come together
        t = max(round(gpshub_wall.now().timestamp()) - 2, max(sent[units[0]], default=0) + 1)
        for i, unit in enumerate(units):
            fake.add_fix(unit, t, 40.0 + i / 100 + poll / 10_000, -74.0, speed_kmh=36.0)
            sent[unit].append(t)

    driver = HubDriver(
        gpshub_hub_factory, Tracking3DSource, fake.credentials(url), fake.options(url)
    )
    stored = await driver.run(polls=3, polls_after_restart=2, before=report)

    assert driver.polls == 5
    assert driver.connection().state == ConnectionState.OK
    assert {unit: [r["fix_time"].timestamp() for r in rows] for unit, rows in stored.items()} == {
        unit: times for unit, times in sent.items()
    }
    assert all(len(times) == 5 for times in sent.values())
    assert {d.imei for d in driver.devices().values()} == {f"86{i:013d}" for i in range(3)}
    assert fake.logins == logins_at_restart[0]  # the saved session outlived the restart
