"""Derived values: event codes, motion with hysteresis, odometer and hour meter rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hub.derive import DeviceState, EventCode, advance

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
DEG_PER_KM = 1 / 111.195  # of latitude


def step(
    state: DeviceState,
    s: float,
    lat: float = 14.6,
    speed: float | None = 0.0,
    ign: bool | None = None,
    valid: bool = True,
    inside: list[int] | None = None,
):  # type: ignore[no-untyped-def]
    return advance(state, T0 + timedelta(seconds=s), lat, -90.5, speed, ign, valid, inside or [])


def test_ignition_codes_and_hour_meter() -> None:
    st = DeviceState()
    assert step(st, 0, ign=False).event_code == EventCode.STOPPED  # the first fix sets state
    assert step(st, 60, ign=True).event_code == EventCode.IGNITION_ON
    d = step(st, 660, ign=True)
    assert d.event_code == EventCode.STOPPED
    d = step(st, 1260, ign=False)
    assert d.event_code == EventCode.IGNITION_OFF
    # counted only between two fixes with the ignition on: 60 -> 660 -> 1260 s? no: 60..660
    assert d.hours == pytest.approx(600 / 3600)
    assert step(st, 3000, ign=False).hours == pytest.approx(600 / 3600)


def test_motion_needs_to_hold_before_it_counts() -> None:
    st = DeviceState()
    step(st, 0, speed=0)
    d = step(st, 5, speed=30)  # a blip
    assert d.event_code == EventCode.STOPPED and not d.started_moving
    d = step(st, 10, speed=0)
    assert d.event_code == EventCode.STOPPED
    step(st, 20, speed=30)
    d = step(st, 45, speed=35)  # moving for 25 s >= 20 s
    assert d.started_moving and d.event_code == EventCode.MOVING
    d = step(st, 60, speed=0)  # a red light
    assert d.event_code == EventCode.MOVING and not d.stopped
    d = step(st, 200, speed=0)  # stopped for 140 s >= 120 s
    assert d.stopped and d.event_code == EventCode.STOPPED


def test_odometer_counts_real_distance_and_ignores_jumps_and_jitter() -> None:
    st = DeviceState()
    step(st, 0, lat=14.6, speed=50)
    d = step(st, 72, lat=14.6 + 1 * DEG_PER_KM, speed=50)  # 1 km in 72 s = 50 km/h
    assert d.odometer_km == pytest.approx(1.0, rel=1e-3)
    d = step(st, 82, lat=14.6 + 60 * DEG_PER_KM, speed=50)  # 59 km in 10 s: a jump
    assert d.odometer_km == pytest.approx(1.0, rel=1e-3)
    d = step(st, 154, lat=14.6 + 2 * DEG_PER_KM, speed=50)  # back on track
    assert d.odometer_km == pytest.approx(2.0, rel=1e-3)
    for s in range(200, 400, 20):  # parked: 5 m of jitter each time
        d = step(st, s, lat=14.6 + 2 * DEG_PER_KM + (s % 40) * 0.00000225, speed=0)
    assert d.odometer_km == pytest.approx(2.0, rel=1e-3)


def test_a_real_teleport_reanchors_after_three_agreeing_fixes() -> None:
    st = DeviceState()
    step(st, 0, lat=10.0, speed=0)
    far = 10.0 + 500 * DEG_PER_KM  # 500 km away, 10 s later: a ferry with the device off?
    for n in range(3):
        d = step(st, 10 + 10 * n, lat=far + n * 0.1 * DEG_PER_KM, speed=36)
    assert d.odometer_km == 0.0
    d = step(st, 50, lat=far + 0.3 * DEG_PER_KM, speed=36)
    assert d.odometer_km == pytest.approx(0.1, rel=1e-2)


def test_out_of_order_fixes_change_nothing() -> None:
    st = DeviceState()
    step(st, 0, ign=False)
    step(st, 100, ign=True, lat=14.61)
    before = st.to_json()
    d = step(st, 50, ign=False, lat=15.0, speed=80)
    assert not d.in_order and d.event_code == EventCode.MOVING
    assert st.to_json() == before


def test_geofence_and_validity_codes() -> None:
    st = DeviceState()
    step(st, 0, inside=[])
    d = step(st, 10, inside=[7])
    assert d.event_code == EventCode.ENTERED_GEOFENCE and d.entered == [7]
    d = step(st, 20, inside=[])
    assert d.event_code == EventCode.EXITED_GEOFENCE and d.exited == [7]
    assert step(st, 30, valid=False).event_code == EventCode.INVALID_FIX
    st.offline = True
    assert step(st, 40).event_code == EventCode.BACK_ONLINE
    assert step(st, 50).event_code == EventCode.STOPPED


def test_state_round_trips_through_json() -> None:
    st = DeviceState()
    step(st, 0, speed=40, ign=True)
    step(st, 30, speed=40, ign=True, inside=[3])
    assert DeviceState.from_json(st.to_json()) == st
    assert DeviceState.from_json({"unknown_key": 1}) == DeviceState()
