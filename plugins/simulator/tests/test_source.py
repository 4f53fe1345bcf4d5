"""``SimulatorSource`` end to end, on gpshub's mock clock (``gpshub_clock``: no real
waiting) and the source clock following it from ``hub.testing.EPOCH`` (``gpshub_wall``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

from gpshub_simulator import DEMO_ROUTE, SimulatorSource
from gpshub_simulator.motion import Trip
from gpshub_simulator.route import parse_route
from hub import (
    GROUP_EXTERNAL,
    BadConfig,
    Cursor,
    DeviceRef,
    NoOptions,
    NotSupported,
    PositionFix,
    TrioClock,
)
from hub.source import describe_fields
from hub.testing import EPOCH, source_context

ONE_DEGREE_M = 6371008.8 * math.pi / 180
LOGGER = f"gpshub.test.{SimulatorSource.kind}"
"""Where ``source_context`` sends the source's log."""

# Wait 10 s, then one degree east along the equator at 36 km/h (10 m/s), then stop.
EAST = "0,0,wait=10,fuel=0.5\n0,1,ignition=off"
EAST_S = ONE_DEGREE_M / 10

SIM_1 = DeviceRef(device_id=1, upstream_id="sim-1", name="Sim 1")
SIM_2 = DeviceRef(device_id=2, upstream_id="sim-2", name="Sim 2")

MakeSource = Callable[..., SimulatorSource]


@pytest.fixture
def make_source(gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock) -> MakeSource:
    """A fresh source instance (as after a hub restart) on the test's source clock."""

    def make(waypoints: str = EAST, **creds: Any) -> SimulatorSource:
        credentials = {"waypoints": waypoints, **creds}
        return SimulatorSource(
            source_context(SimulatorSource, credentials, gpshub_http, clock=gpshub_wall)
        )

    return make


async def poll_one(
    source: SimulatorSource, cursors: Mapping[str, Cursor] | None = None, device: DeviceRef = SIM_1
) -> tuple[PositionFix, Cursor]:
    result = await source.poll([device], cursors or {})
    assert list(result.fixes) == [device.upstream_id]
    (fix,) = result.fixes[device.upstream_id]
    fix.validate()
    return fix, result.cursors[device.upstream_id]


# -- the class as the hub sees it -------------------------------------------------------


def test_declares_what_the_hub_needs() -> None:
    assert SimulatorSource.kind == "simulator"
    assert SimulatorSource.title == "GPS Simulator"
    assert SimulatorSource.group == GROUP_EXTERNAL
    assert SimulatorSource.supports_browse is False
    assert SimulatorSource.cadence.active == 5.0
    assert SimulatorSource.cadence.adaptive is False
    assert "no device list to browse" in SimulatorSource.description
    assert SimulatorSource.Options is NoOptions


def test_credential_form_fields() -> None:
    fields = {f.name: f for f in describe_fields(SimulatorSource.Credentials)}
    assert list(fields) == ["waypoints", "speed_kmh", "loop"]
    waypoints = fields["waypoints"]
    assert (waypoints.label, waypoints.required, waypoints.type) == ("Waypoints", True, "string")
    assert "key=value" in waypoints.description
    assert (fields["speed_kmh"].required, fields["speed_kmh"].default) == (False, 50.0)
    assert fields["speed_kmh"].type == "number"
    assert (fields["loop"].required, fields["loop"].default, fields["loop"].type) == (
        False,
        True,
        "boolean",
    )
    assert not any(f.secret for f in fields.values())


def test_parse_credentials_defaults() -> None:
    creds = SimulatorSource.parse_credentials({"waypoints": EAST})
    assert creds.model_dump() == {"waypoints": EAST, "speed_kmh": 50.0, "loop": True}
    assert SimulatorSource.parse_credentials({"waypoints": EAST, "loop": "false"}).loop is False


@pytest.mark.parametrize(
    ("waypoints", "reason"),
    [
        ("0,0\n# comment\n91,0", "line 3: latitude 91 is outside [-90, 90]"),
        ("0,0\n0,1,ignition=maybe", "line 2: ignition 'maybe' is not one of"),
        ("0,0\n\n\n0,1,speed=0", "line 4: speed must be more than 0 km/h"),
        ("0,0,{x}=1,{x}=2\n0,1", "line 1: duplicate key '{x}'"),
        ("# nothing here", "a route needs at least 2 waypoints, found none"),
    ],
)
def test_bad_waypoints_are_refused_at_validation(waypoints: str, reason: str) -> None:
    with pytest.raises(BadConfig) as info:
        SimulatorSource.parse_credentials({"waypoints": waypoints})
    assert info.value.field == "credentials.waypoints"
    assert info.value.reason.startswith(reason)
    assert "Value error" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "credentials.waypoints"),
        ({"waypoints": EAST, "speed_kmh": 0}, "credentials.speed_kmh"),
        ({"waypoints": EAST, "speed_kmh": -3}, "credentials.speed_kmh"),
        ({"waypoints": EAST, "speed_kmh": "inf"}, "credentials.speed_kmh"),
        ({"waypoints": EAST, "loop": "sometimes"}, "credentials.loop"),
        ({"waypoints": EAST, "speeed": 3}, "credentials.speeed"),
    ],
)
def test_other_bad_credentials_name_their_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(BadConfig) as info:
        SimulatorSource.parse_credentials(raw)
    assert info.value.field == field


async def test_there_is_nothing_to_browse(make_source: MakeSource) -> None:
    with pytest.raises(NotSupported):
        await make_source().list_devices()


# -- test_connection ----------------------------------------------------------------


async def test_connection_summary_of_a_loop(make_source: MakeSource) -> None:
    # Two legs of one degree (111.19 km each), then 157.25 km back from (1,1) to (0,0).
    summary = await make_source("0,0\n0,1\n1,1", speed_kmh=36).test_connection()
    assert summary == (
        "3 waypoints; 379.64 km per lap, including the 157.25 km closing leg back to the "
        "first waypoint; loop on: one lap takes 10 h 32 min"
    )


async def test_connection_summary_without_a_loop(make_source: MakeSource) -> None:
    summary = await make_source(EAST, speed_kmh=36, loop=False).test_connection()
    assert summary == (
        "2 waypoints; 111.20 km from the first waypoint to the last; "
        "loop off: the vehicle stops at the last waypoint after 3 h 5 min"
    )


async def test_connection_summary_of_the_demo_route(make_source: MakeSource) -> None:
    summary = await make_source(DEMO_ROUTE).test_connection()
    assert summary.startswith("16 waypoints; 9.91 km per lap")


# -- poll ---------------------------------------------------------------------------


async def test_poll_follows_the_route_in_virtual_time(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    source = make_source(EAST, speed_kmh=36, loop=False)

    fix, cursor = await poll_one(source)
    assert fix.fix_time == EPOCH
    assert (fix.lat, fix.lon, fix.speed_kmh) == (0.0, 0.0, 0.0)
    assert fix.course_deg == pytest.approx(90.0)
    assert fix.valid is True
    assert fix.ignition is None
    assert fix.sensors == {"fuel": 0.5, "simulated": True}
    assert cursor.last_fix_time == EPOCH
    assert cursor.state["started_at"] == EPOCH.isoformat()

    await trio.sleep(5)
    fix, cursor = await poll_one(source, {"sim-1": cursor})
    assert fix.fix_time == EPOCH + timedelta(seconds=5)
    assert (fix.lon, fix.speed_kmh) == (0.0, 0.0)  # still waiting

    await trio.sleep(505)  # 10 s waited, then 500 s at 10 m/s
    fix, cursor = await poll_one(source, {"sim-1": cursor})
    assert fix.fix_time == EPOCH + timedelta(seconds=510)
    assert fix.speed_kmh == 36
    assert fix.lon == pytest.approx(5000 / ONE_DEGREE_M, abs=1e-9)
    assert fix.lat == pytest.approx(0.0, abs=1e-9)
    assert cursor.last_fix_time == fix.fix_time
    assert cursor.state["started_at"] == EPOCH.isoformat()  # unchanged while driving

    await trio.sleep(EAST_S)  # well past the end
    fix, cursor = await poll_one(source, {"sim-1": cursor})
    assert (fix.lat, fix.lon, fix.speed_kmh) == (0.0, 1.0, 0.0)
    assert fix.ignition is False
    assert fix.sensors == {"fuel": 0.5, "simulated": True}


async def test_each_device_drives_on_its_own_clock(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    source = make_source(EAST, speed_kmh=36)
    _, first = await poll_one(source, device=SIM_1)
    await trio.sleep(110)
    result = await source.poll([SIM_1, SIM_2], {"sim-1": first})
    assert sorted(result.fixes) == ["sim-1", "sim-2"]
    assert all(len(fixes) == 1 for fixes in result.fixes.values())
    (one,), (two,) = result.fixes["sim-1"], result.fixes["sim-2"]
    assert one.fix_time == two.fix_time == EPOCH + timedelta(seconds=110)
    assert one.lon == pytest.approx(1000 / ONE_DEGREE_M, abs=1e-9)
    assert two.lon == 0.0  # just set off: waiting at the first waypoint
    assert result.cursors["sim-2"].state["started_at"] == one.fix_time.isoformat()
    assert result.cursors["sim-1"].state["started_at"] == EPOCH.isoformat()


async def test_a_restart_continues_the_trip(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    before = make_source(EAST, speed_kmh=36)
    _, cursor = await poll_one(before)
    await trio.sleep(60)
    _, cursor = await poll_one(before, {"sim-1": cursor})

    await trio.sleep(40)  # the hub is down; the persisted cursor is all that is left
    after = make_source(EAST, speed_kmh=36)
    assert after is not before
    fix, new_cursor = await poll_one(after, {"sim-1": cursor})
    assert new_cursor.state == cursor.state
    assert fix.lon == pytest.approx(900 / ONE_DEGREE_M, abs=1e-9)  # 100 s in, 90 s driving


async def test_a_changed_trip_starts_again_but_a_changed_comment_does_not(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    _, cursor = await poll_one(make_source(EAST, speed_kmh=36))
    await trio.sleep(100)

    same = make_source("# renamed\n" + EAST.replace(",", " , "), speed_kmh=36)
    fix, kept = await poll_one(same, {"sim-1": cursor})
    assert kept.state == cursor.state
    assert fix.speed_kmh == 36

    for changed in (
        make_source(EAST.replace("wait=10", "wait=20"), speed_kmh=36),
        make_source(EAST, speed_kmh=40),
        make_source(EAST, speed_kmh=36, loop=False),
    ):
        fix, reset = await poll_one(changed, {"sim-1": cursor})
        now = EPOCH + timedelta(seconds=100)
        assert reset.state["started_at"] == now.isoformat()
        assert reset.state["route"] != cursor.state["route"]
        assert (fix.lat, fix.lon, fix.speed_kmh) == (0.0, 0.0, 0.0)


async def test_an_unusable_cursor_state_starts_again(
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = make_source(EAST, speed_kmh=36)
    _, good = await poll_one(source)
    await trio.sleep(100)
    now = EPOCH + timedelta(seconds=100)
    for started_at in ("yesterday", None, "2025-03-01T08:00:00"):  # the last one is naive
        bad = Cursor(good.last_fix_time, {**good.state, "started_at": started_at})
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            fix, cursor = await poll_one(source, {"sim-1": bad})
        assert cursor.state["started_at"] == now.isoformat()
        assert fix.lon == 0.0
    assert "sim-1" in caplog.text


async def test_no_fix_for_an_instant_already_reported(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    source = make_source(EAST)
    _, cursor = await poll_one(source)
    result = await source.poll([SIM_1], {"sim-1": cursor})
    assert result.fix_count == 0
    assert result.cursors == {}


async def test_every_fix_of_a_demo_lap_is_valid_and_marked_simulated(
    make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    gpshub_clock.autojump_threshold = 0  # hundreds of sleeps and no I/O: jump at once
    source = make_source(DEMO_ROUTE)
    trip = Trip(parse_route(DEMO_ROUTE), 50.0, loop=True)
    cursors: dict[str, Cursor] = {}
    seen_ignition: set[bool | None] = set()
    moving = 0
    polls = math.ceil(trip.duration_s / 5) + 2
    for n in range(polls):
        result = await source.poll([SIM_1], cursors)
        (fix,) = result.fixes["sim-1"]
        fix.validate()
        assert fix.fix_time == EPOCH + timedelta(seconds=5 * n)
        assert fix.sensors["simulated"] is True
        assert "fuel_level" in fix.sensors
        expected = trip.at(5 * n)
        assert (fix.lat, fix.lon) == (expected.lat, expected.lon)
        seen_ignition.add(fix.ignition)
        moving += fix.speed_kmh is not None and fix.speed_kmh > 0
        cursors = result.cursors
        await trio.sleep(SimulatorSource.cadence.active)
    assert seen_ignition == {True, False}
    assert 0 < moving < polls
