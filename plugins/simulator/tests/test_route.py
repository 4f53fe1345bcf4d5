"""The waypoint text parser: what each line means, and every way it is refused."""

from __future__ import annotations

import pytest

from gpshub_simulator.route import RouteError, Waypoint, parse_route, sensor_value


def only(text: str) -> Waypoint:
    """The first waypoint of ``text`` followed by a plain second one."""
    return parse_route(f"{text}\n0,0").waypoints[0]


def test_comments_blank_lines_and_whitespace_are_skipped() -> None:
    route = parse_route(
        "# a comment\n\n   \n  # indented comment\n  48.85 , 2.35 , wait = 10 \n\t1,2\r\n"
    )
    assert len(route) == 2
    first, second = route.waypoints
    assert (first.lat, first.lon, first.wait_s, first.line) == (48.85, 2.35, 10.0, 5)
    assert (second.lat, second.lon, second.line) == (1.0, 2.0, 6)


def test_plain_waypoint_sets_nothing() -> None:
    wp = only("10.5,-20.25")
    assert (wp.lat, wp.lon) == (10.5, -20.25)
    assert wp.wait_s == 0.0
    assert wp.speed_kmh is None
    assert wp.heading_deg is None
    assert wp.ignition is None
    assert wp.satellites is None
    assert dict(wp.sensors) == {}


def test_bare_third_number_is_a_wait() -> None:
    assert only("48.85,2.35,10").wait_s == 10.0
    assert only("48.85,2.35,2.5,speed=30").wait_s == 2.5


def test_reserved_keys() -> None:
    wp = only("1,2,wait=30,speed=110,heading=45,ignition=false,sat=8")
    assert wp.wait_s == 30.0
    assert wp.speed_kmh == 110.0
    assert wp.heading_deg == 45.0
    assert wp.ignition is False
    assert wp.satellites == 8
    assert dict(wp.sensors) == {}


def test_heading_bounds_are_inclusive() -> None:
    assert only("1,2,heading=0").heading_deg == 0.0
    assert only("1,2,heading=360").heading_deg == 360.0


def test_coordinate_bounds_are_inclusive() -> None:
    route = parse_route("90,180\n-90,-180")
    assert [(w.lat, w.lon) for w in route.waypoints] == [(90.0, 180.0), (-90.0, -180.0)]


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("false", False),
        ("No", False),
        ("OFF", False),
        ("0", False),
    ],
)
def test_ignition_words(word: str, expected: bool) -> None:
    assert only(f"1,2,ignition={word}").ignition is expected


def test_other_keys_become_typed_sensors() -> None:
    wp = only("1,2,fuel_level=0.75,odometer=12034,door=true,alarm=False,driver=Ana Lima,code=007")
    assert dict(wp.sensors) == {
        "fuel_level": 0.75,
        "odometer": 12034,
        "door": True,
        "alarm": False,
        "driver": "Ana Lima",
        "code": 7,
    }
    assert type(wp.sensors["odometer"]) is int
    assert type(wp.sensors["fuel_level"]) is float


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("-3", -3),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("true", True),
        ("False", False),
        ("yes", "yes"),
        ("nan", "nan"),
        ("inf", "inf"),
        ("hello world", "hello world"),
    ],
)
def test_sensor_values_read_as_they_look(text: str, expected: object) -> None:
    value = sensor_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_value_may_contain_equals_sign() -> None:
    assert only("1,2,note=a=b").sensors == {"note": "a=b"}


def test_keys_are_case_sensitive() -> None:
    wp = only("1,2,Speed=30")
    assert wp.speed_kmh is None
    assert wp.sensors == {"Speed": 30}


def test_sensors_are_read_only() -> None:
    wp = only("1,2,fuel=1")
    with pytest.raises(TypeError):
        wp.sensors["fuel"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("abc,2", "latitude 'abc' is not a number"),
        ("1,", "longitude '' is not a number"),
        ("1", "expected 'lat,lon'"),
        ("nan,2", "latitude 'nan' is not a finite number"),
        ("90.5,2", "latitude 90.5 is outside [-90, 90]"),
        ("-91,2", "latitude -91 is outside [-90, 90]"),
        ("1,180.01", "longitude 180.01 is outside [-180, 180]"),
        ("1,-181", "longitude -181 is outside [-180, 180]"),
        ("1,2,wait=soon", "wait 'soon' is not a number"),
        ("1,2,-5", "wait must be 0 or more seconds, got -5"),
        ("1,2,wait=-0.5", "wait must be 0 or more seconds, got -0.5"),
        ("1,2,speed=fast", "speed 'fast' is not a number"),
        ("1,2,speed=0", "speed must be more than 0 km/h, got 0"),
        ("1,2,speed=-10", "speed must be more than 0 km/h, got -10"),
        ("1,2,heading=361", "heading must be within [0, 360] degrees, got 361"),
        ("1,2,heading=-1", "heading must be within [0, 360] degrees, got -1"),
        ("1,2,heading=north", "heading 'north' is not a number"),
        ("1,2,ignition=maybe", "ignition 'maybe' is not one of true/false"),
        ("1,2,ignition=2", "ignition '2' is not one of true/false"),
        ("1,2,sat=many", "sat 'many' is not a whole number"),
        ("1,2,sat=7.5", "sat '7.5' is not a whole number"),
        ("1,2,sat=-1", "sat must be 0 or more, got -1"),
        ("1,2,fuel", "expected key=value, got 'fuel'"),
        ("1,2,wait=1,5", "expected key=value, got '5'"),
        ("1,2,soon", "expected key=value, got 'soon'"),
        ("1,2,=5", "'=5' has an empty key"),
        ("1,2, =5", "'=5' has an empty key"),
        ("1,2,fuel=", "'fuel' has no value"),
        ("1,2,,speed=3", "field 3 is empty"),
        ("1,2,speed=3,", "field 4 is empty"),
        ("1,2,speed=3,speed=4", "duplicate key 'speed'"),
        ("1,2,fuel=1,fuel=2", "duplicate key 'fuel'"),
        ("1,2,10,wait=5", "duplicate key 'wait'"),
        ("1,2,simulated=false", "'simulated' is set by the simulator"),
    ],
)
def test_errors_name_the_line(line: str, reason: str) -> None:
    text = f"# header comment\n\n0,0\n{line}\n0,1"
    with pytest.raises(RouteError) as info:
        parse_route(text)
    assert info.value.line == 4
    assert str(info.value).startswith("line 4: ")
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_first_error_wins() -> None:
    with pytest.raises(RouteError, match=r"^line 2: latitude 'x'"):
        parse_route("0,0\nx,0\n0,1,speed=-1")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("", "found none"),
        ("# only comments\n\n", "found none"),
        ("# one\n\n1,2", "found only 1 (line 3)"),
    ],
)
def test_too_few_waypoints(text: str, found: str) -> None:
    with pytest.raises(RouteError) as info:
        parse_route(text)
    assert info.value.line is None
    assert str(info.value) == f"a route needs at least 2 waypoints, {found}"
