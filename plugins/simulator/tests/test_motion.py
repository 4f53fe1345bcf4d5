"""Where the simulated vehicle is at exact elapsed times.

Expected positions come from formulas written out here, independent of the plugin's own
geometry, so a wrong interpolation (for example a straight line in lat/lon) fails.
"""

from __future__ import annotations

import math

import pytest

from gpshub_simulator.motion import Trip
from gpshub_simulator.route import Route, Waypoint, parse_route

R = 6371008.8
ONE_DEGREE_M = R * math.pi / 180  # along the equator or a meridian


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(a))


def midpoint(lat1: float, lon1: float, lat2: float, lon2: float) -> tuple[float, float]:
    """The great-circle midpoint, by the closed formula (no interpolation)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    bx, by = math.cos(p2) * math.cos(dl), math.cos(p2) * math.sin(dl)
    lat = math.atan2(math.sin(p1) + math.sin(p2), math.hypot(math.cos(p1) + bx, by))
    lon = math.radians(lon1) + math.atan2(by, math.cos(p1) + bx)
    return math.degrees(lat), math.degrees(lon)


def bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360


def course_gap(a: float, b: float) -> float:
    """How far apart two courses are, in degrees (0 and 359.9999 are close)."""
    return abs((a - b + 180) % 360 - 180)


def trip(text: str, speed: float = 36.0, loop: bool = False) -> Trip:
    return Trip(parse_route(text), speed, loop)


# 36 km/h is 10 m/s: one degree along the equator takes ONE_DEGREE_M / 10 seconds.
EAST = "0,0,wait=10\n0,1"
EAST_S = ONE_DEGREE_M / 10


def test_waits_at_the_first_waypoint_facing_the_first_leg() -> None:
    t = trip(EAST)
    for elapsed in (0.0, 5.0, 9.999):
        state = t.at(elapsed)
        assert (state.lat, state.lon) == (0.0, 0.0)
        assert state.speed_kmh == 0.0
        assert state.moving is False
        assert state.course_deg == pytest.approx(90.0)
        assert state.waypoint == 0


def test_drives_at_the_default_speed_after_the_wait() -> None:
    t = trip(EAST)
    state = t.at(10.0)
    assert state.moving is True
    assert state.speed_kmh == 36.0
    assert state.lat == pytest.approx(0.0, abs=1e-12)
    assert state.lon == pytest.approx(0.0, abs=1e-12)
    quarter = t.at(10.0 + EAST_S / 4)
    assert quarter.lon == pytest.approx(0.25, abs=1e-9)
    assert quarter.lat == pytest.approx(0.0, abs=1e-9)
    assert quarter.course_deg == pytest.approx(90.0)


def test_mid_leg_position_is_the_great_circle_midpoint() -> None:
    # New York to London: the great circle bulges far north of the straight lat/lon line.
    t = trip("40.7128,-74.006,wait=60,speed=900\n51.5074,-0.1278", loop=False)
    length = haversine_m(40.7128, -74.006, 51.5074, -0.1278)
    duration = length / (900 / 3.6)
    assert t.length_m == pytest.approx(length, rel=1e-12)
    assert t.duration_s == pytest.approx(60 + duration, rel=1e-12)

    state = t.at(60 + duration / 2)
    lat, lon = midpoint(40.7128, -74.006, 51.5074, -0.1278)
    assert state.lat == pytest.approx(lat, abs=1e-9)
    assert state.lon == pytest.approx(lon, abs=1e-9)
    assert state.lat > 52  # north of both ends: not a straight line in lat/lon
    assert state.speed_kmh == 900
    assert state.course_deg == pytest.approx(bearing(lat, lon, 51.5074, -0.1278), abs=1e-9)

    # A fifth of the way in time is a fifth of the way in distance, on the great circle.
    fifth = t.at(60 + duration / 5)
    assert haversine_m(40.7128, -74.006, fifth.lat, fifth.lon) == pytest.approx(length / 5)
    assert haversine_m(fifth.lat, fifth.lon, 51.5074, -0.1278) == pytest.approx(length * 4 / 5)


def test_course_is_the_bearing_from_the_current_point_to_the_leg_end() -> None:
    t = trip("0,0\n60,90", speed=1000)
    at_start = t.at(0)
    assert at_start.course_deg == pytest.approx(bearing(0, 0, 60, 90), abs=1e-9)
    for fraction in (0.25, 0.75, 0.999):
        state = t.at(t.duration_s * fraction)
        expected = bearing(state.lat, state.lon, 60, 90)
        assert state.course_deg == pytest.approx(expected, abs=1e-6)
    # It turns along a great circle that is not a meridian or the equator: 30 to 90 here.
    assert at_start.course_deg == pytest.approx(30.0)
    assert t.at(t.duration_s * 0.999).course_deg == pytest.approx(90.0, abs=0.5)


def test_speed_applies_from_its_waypoint_to_the_next_only() -> None:
    # 0 -> 1 degree east at 72 km/h (20 m/s), then 1 -> 2 at the default 36 km/h.
    t = trip("0,0,speed=72\n0,1\n0,2")
    first = ONE_DEGREE_M / 20
    second = ONE_DEGREE_M / 10
    assert t.duration_s == pytest.approx(first + second)
    assert t.at(first / 2).speed_kmh == 72
    assert t.at(first / 2).lon == pytest.approx(0.5, abs=1e-9)
    assert t.at(first + second / 2).speed_kmh == 36
    assert t.at(first + second / 2).lon == pytest.approx(1.5, abs=1e-9)
    assert t.at(first + second / 2).waypoint == 1


def test_heading_overrides_the_course_at_its_point_and_on_the_leg_leaving_it() -> None:
    t = trip("0,0,wait=5,heading=45\n0,1,wait=5\n1,1")
    assert t.at(0).course_deg == 45  # waiting
    assert t.at(5 + EAST_S / 2).course_deg == 45  # driving east, reported 45
    # The next waypoint has no override: its own leg's bearing (north) comes back.
    assert course_gap(t.at(5 + EAST_S + 1).course_deg, 0.0) < 1e-9
    assert course_gap(t.at(5 + EAST_S + 5 + 10).course_deg, 0.0) < 1e-9


def test_ignition_persists_until_changed() -> None:
    t = trip("0,0\n0,1,ignition=off\n0,2\n0,3,ignition=on\n0,4")
    assert t.at(0).ignition is None  # not set yet, no loop
    assert t.at(EAST_S * 0.5).ignition is None
    assert t.at(EAST_S * 1.5).ignition is False
    assert t.at(EAST_S * 2.5).ignition is False
    assert t.at(EAST_S * 3.5).ignition is True
    assert t.at(EAST_S * 99).ignition is True


def test_satellites_and_sensors_persist_until_changed() -> None:
    t = trip("0,0,sat=5,fuel=0.9,door=false\n0,1,sat=8,fuel=0.8\n0,2,driver=Ana\n0,3")
    assert (t.at(1).satellites, t.at(1).sensors) == (5, {"fuel": 0.9, "door": False})
    mid2 = t.at(EAST_S * 1.5)
    assert (mid2.satellites, mid2.sensors) == (8, {"fuel": 0.8, "door": False})
    mid3 = t.at(EAST_S * 2.5)
    assert mid3.sensors == {"fuel": 0.8, "door": False, "driver": "Ana"}
    assert mid3.satellites == 8


def test_a_route_that_does_not_loop_stops_at_its_last_waypoint_for_good() -> None:
    t = trip("0,0\n0,1,wait=30,heading=270,sat=3")
    end = t.duration_s
    assert end == pytest.approx(EAST_S)  # the last waypoint's wait does not count
    for elapsed in (end, end + 1, end + 86400 * 365):
        state = t.at(elapsed)
        assert (state.lat, state.lon) == (0.0, 1.0)
        assert state.speed_kmh == 0
        assert state.moving is False
        assert state.course_deg == 270  # its own heading override
        assert state.satellites == 3
        assert state.waypoint == 1
    assert t.closing_leg_m == 0


def test_a_stopped_vehicle_keeps_the_course_it_arrived_with() -> None:
    t = trip("0,0\n0,1\n1,1")
    assert course_gap(t.at(t.duration_s + 100).course_deg, 0.0) < 1e-9  # north


def test_a_loop_drives_back_to_the_first_waypoint_then_repeats() -> None:
    text = "0,0,wait=10\n0,1\n1,1,speed=72"
    t = trip(text, loop=True)
    closing = haversine_m(1, 1, 0, 0)
    assert t.closing_leg_m == pytest.approx(closing)
    assert t.length_m == pytest.approx(2 * ONE_DEGREE_M + closing)
    lap = 10 + 2 * EAST_S + closing / 20
    assert t.duration_s == pytest.approx(lap)

    start_closing = 10 + 2 * EAST_S
    state = t.at(start_closing + closing / 20 / 2)
    lat, lon = midpoint(1, 1, 0, 0)
    assert (state.lat, state.lon) == (pytest.approx(lat, abs=1e-9), pytest.approx(lon, abs=1e-9))
    assert state.speed_kmh == 72  # the last waypoint's speed
    assert state.waypoint == 2
    assert state.course_deg == pytest.approx(bearing(lat, lon, 0, 0), abs=1e-9)

    # Back at the start: the first waypoint's wait again, then the same lap.
    again = t.at(lap + 1)
    assert (again.lat, again.lon, again.speed_kmh, again.waypoint) == (0.0, 0.0, 0.0, 0)
    for elapsed in (3.0, 10 + EAST_S / 3, start_closing + 100):
        assert t.at(elapsed + 5 * lap).lat == pytest.approx(t.at(elapsed).lat, abs=1e-9)
        assert t.at(elapsed + 5 * lap).lon == pytest.approx(t.at(elapsed).lon, abs=1e-9)


def test_a_loop_never_teleports() -> None:
    t = trip("0,0,wait=10\n0,1\n1,1,speed=72,wait=3", loop=True)
    step = 1.0
    fastest_m = 72 / 3.6 * step
    previous = t.at(0)
    elapsed = step
    while elapsed <= 2.5 * t.duration_s:
        state = t.at(elapsed)
        jump = haversine_m(previous.lat, previous.lon, state.lat, state.lon)
        assert jump <= fastest_m + 1e-6, f"jumped {jump:.1f} m at {elapsed} s"
        previous = state
        elapsed += step


def test_loop_state_carries_over_from_the_previous_lap_even_on_the_first() -> None:
    text = "0,0\n0,1,sat=5,fuel=1\n0,2,sat=7,ignition=off"
    looping = trip(text, loop=True)
    first = looping.at(1)
    assert (first.satellites, first.ignition, first.sensors) == (7, False, {"fuel": 1})
    assert looping.at(EAST_S * 1.5).satellites == 5
    assert looping.at(EAST_S * 1.5).ignition is False  # still the previous lap's value
    assert looping.at(looping.duration_s + 1).satellites == 7

    straight = trip(text, loop=False)
    first = straight.at(1)
    assert (first.satellites, first.ignition, first.sensors) == (None, None, {})


def test_zero_length_legs_are_skipped_without_dividing_by_zero() -> None:
    t = trip("0,0,wait=5,ignition=off\n0,0,wait=5,ignition=on\n0,1", loop=False)
    assert t.duration_s == pytest.approx(10 + EAST_S)
    assert t.at(2).ignition is False
    assert t.at(2).course_deg == pytest.approx(90.0)  # the course of the leg to come
    assert t.at(7).ignition is True
    assert t.at(7).waypoint == 1
    assert t.at(7).speed_kmh == 0
    assert t.at(10 + EAST_S / 2).lon == pytest.approx(0.5, abs=1e-9)


@pytest.mark.parametrize("loop", [True, False])
def test_a_route_of_one_repeated_point_stands_still(loop: bool) -> None:
    t = trip("5,5\n5,5\n5,5", loop=loop)
    assert t.length_m == 0
    assert t.duration_s == 0
    for elapsed in (0, 1, 1e6):
        state = t.at(elapsed)
        assert (state.lat, state.lon, state.speed_kmh, state.course_deg) == (5, 5, 0, 0)


def test_antipodal_points_do_not_break_the_interpolation() -> None:
    t = trip("0,0\n0,180", speed=1000, loop=True)
    assert t.legs[0].length_m == pytest.approx(math.pi * R)
    state = t.at(t.duration_s / 4)  # halfway along the first leg
    assert haversine_m(0, 0, state.lat, state.lon) == pytest.approx(math.pi * R / 2)
    assert haversine_m(0, 180, state.lat, state.lon) == pytest.approx(math.pi * R / 2)


def test_negative_elapsed_counts_as_the_start() -> None:
    t = trip(EAST)
    assert t.at(-100) == t.at(0)


def test_results_are_deterministic_and_callers_own_their_sensors() -> None:
    t = trip("0,0,fuel=1\n0,1")
    first = t.at(123.0)
    first.sensors["fuel"] = 99
    assert t.at(123.0).sensors == {"fuel": 1}
    assert t.at(123.0) == t.at(123.0)


def test_bad_arguments_are_refused() -> None:
    route = Route((Waypoint(0, 0), Waypoint(0, 1)))
    for speed in (0.0, -5.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="default speed"):
            Trip(route, speed)
    with pytest.raises(ValueError, match="finite"):
        Trip(route).at(math.nan)
