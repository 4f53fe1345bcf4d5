"""The simulator in a real hub (``hub.hub_driver.HubDriver``): create the connection,
test it, add its devices by hand (it has nothing to browse), poll, restart, poll again:
every fix is in the history once, and each vehicle drives on across the restart."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from trio.testing import MockClock

from gpshub_simulator import SimulatorSource, Trip, parse_route
from hub.hub_driver import HubDriver, HubFactory
from hub.models import ConnectionState

ROUTE = "0,0,wait=10,fuel=0.5\n0,1,ignition=off"  # wait 10 s, then a degree east
CREDENTIALS = {"waypoints": ROUTE, "speed_kmh": 36}
VEHICLES = ("sim-1", "sim-2")


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    return (SimulatorSource,)


async def test_poll_restart_poll_keeps_every_fix_once_and_the_trip_goes_on(
    gpshub_hub_factory: HubFactory, gpshub_clock: MockClock
) -> None:
    driver = HubDriver(gpshub_hub_factory, SimulatorSource.kind, CREDENTIALS)
    driver.create()
    assert (await driver.test()).startswith("2 waypoints; 222.39 km per lap")
    for uid in VEHICLES:
        driver.add_device(uid)
    await driver.poll(4)
    driver.restart()
    await driver.poll(3)

    assert driver.connection().state == ConnectionState.OK, driver.connection().last_error
    trip = Trip(parse_route(ROUTE), 36.0, loop=True)
    history = driver.history()
    assert sorted(history) == sorted(VEHICLES)
    for uid, rows in history.items():
        times = [r["fix_time"] for r in rows]
        # a fix a poll, but none from the restarted hub's first poll if it came at the
        # instant of the last one before (nothing new at an instant already reported)
        assert len(times) == len(set(times)) in (6, 7), (uid, times)
        assert times == sorted(times)
        start = times[0]  # each vehicle sets off when it is first polled
        for row in rows:
            state = trip.at((row["fix_time"] - start).total_seconds())
            assert (row["lat"], row["lon"]) == (state.lat, state.lon), (uid, row["fix_time"])
            assert row["sensors"]["simulated"] is True
