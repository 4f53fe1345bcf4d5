"""The rule engine: transitions, confirmation, schedules, and the rule definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hub.derive import Derived
from hub.rules import (
    Engine,
    Facts,
    Rule,
    RuleError,
    distance_text,
    meters_above,
    parse_params,
    parse_schedule,
)

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)  # a Monday


def rule(type_: str, params: dict[str, Any] | None = None, **kw: Any) -> Rule:
    return Rule(1, 1, 7, "Jose Perez", "r", type_, parse_params(type_, params), **kw)


def facts(
    s: float,
    *,
    inside: tuple[int, ...] = (),
    speed: float | None = 0.0,
    sensors: dict[str, Any] | None = None,
    dist: float | None = None,
    derived: Derived | None = None,
) -> Facts:
    return Facts(
        device_id=1,
        fix_time=T0 + timedelta(seconds=s),
        lat=0.0,
        lon=0.0,
        speed_kmh=speed,
        ignition=None,
        sensors=sensors or {},
        derived=derived or Derived(1, 0.0, 0.0, False),
        inside=frozenset(inside),
        poi_targets=lambda p: frozenset(p.poi_ids) or None,
        distance_m=lambda poi: dist,
    )


def run(r: Rule, seq: list[Facts]) -> list[list[str]]:
    engine, state = Engine(), {}
    return [[f.message_id for f in engine.evaluate(r, state, fx)] for fx in seq]


def test_enter_and_exit_fire_on_transitions_only() -> None:
    enter, exit_ = rule("enteredPoi"), rule("exitedPoi")
    seq = [facts(0, inside=(5,)), facts(10, inside=(5,)), facts(20), facts(30, inside=(5,))]
    # the first fix (already inside) sets state: no enter; later crossings fire once
    assert run(enter, seq) == [[], [], [], ["enteredPoi"]]
    assert run(exit_, seq) == [[], [], ["exitedPoi"], []]
    # never inside: an exit never fires
    assert run(exit_, [facts(0), facts(10), facts(20)]) == [[], [], []]


def test_confirmation_count_and_dwell_ignore_a_stray_fix() -> None:
    r = rule("enteredPoi", {"confirm_fixes": 2, "dwell_s": 30})
    seq = [
        facts(0),
        facts(10, inside=(5,)),
        facts(20),
        facts(30, inside=(5,)),
        facts(50, inside=(5,)),
        facts(70, inside=(5,)),
    ]
    assert run(r, seq) == [[], [], [], [], [], ["enteredPoi"]]


def test_poi_rules_watch_only_their_pois() -> None:
    r = rule("enteredPoi", {"poi_ids": [9]})
    assert run(r, [facts(0), facts(10, inside=(5,)), facts(20, inside=(5, 9))]) == [
        [],
        [],
        ["enteredPoi"],
    ]


def test_conditions_fire_once_until_they_clear() -> None:
    r = rule("overspeed", {"limit_kmh": 80, "min_duration_s": 20})
    speeds = [(0, 90), (10, 95), (40, 50), (50, 90), (60, 95), (75, 100), (80, 90), (90, 60)]
    got = run(r, [facts(s, speed=v) for s, v in speeds])
    # already over at the first fix: state only, and no alert until it has cleared (40);
    # over again from 50, for 20 s at 75 -> fires once; staying over does not fire again
    assert got == [[], [], [], [], [], ["overspeed"], [], []]


def test_is_not_at_distance_and_its_text() -> None:
    r = rule("isNotAt-dist", {"poi_id": 3, "distance_m": 1000})
    engine, state = Engine(), {}
    assert engine.evaluate(r, state, facts(0, dist=10)) == []
    (f,) = engine.evaluate(r, state, facts(10, dist=157041.0))
    assert f.message_id == "isNotAt-dist"
    assert f.fields["metersFromPoi"] == 157041.0 and f.fields["distanceFromPoi"] == "157 km"
    assert engine.evaluate(r, state, facts(20, dist=200000)) == []
    assert distance_text(850) == "850 m"


def test_is_not_at_text_never_contradicts_the_rule() -> None:
    """1,210.8 m from the POI is beyond a 1,200 m rule: not "1 km", which is not."""
    r = rule("isNotAt-dist", {"poi_id": 3, "distance_m": 1200})
    engine, state = Engine(), {}
    assert engine.evaluate(r, state, facts(0, dist=10)) == []
    (f,) = engine.evaluate(r, state, facts(10, dist=1210.8))
    assert f.fields["distanceFromPoi"] == "1211 m" and f.fields["metersFromPoi"] == 1210.8
    engine, state = Engine(), {}
    engine.evaluate(r, state, facts(0, dist=10))
    (f,) = engine.evaluate(r, state, facts(10, dist=1200.04))
    assert f.fields["distanceFromPoi"] == "1200.04 m" and f.fields["metersFromPoi"] == 1200.04


def shown_meters(text: str) -> float:
    number, unit = text.split(" ")
    return float(number) * {"m": 1, "km": 1000}[unit]


@pytest.mark.parametrize(
    "threshold", [100, 999.5, 1000, 1200, 1200.1, 9999.6, 10_000, 10_400, 150_000, 2_500_000]
)
def test_a_distance_just_beyond_a_threshold_is_shown_beyond_it(threshold: float) -> None:
    for beyond in (1e-9, 1e-6, 0.001, 0.04, 0.4, 0.5, 0.6, 10.8, 499, 501, 1e4):
        dist = threshold + beyond
        assert dist > threshold
        text = distance_text(dist, threshold)
        assert shown_meters(text) > threshold, (threshold, dist, text)
        assert meters_above(dist, threshold) > threshold, (threshold, dist)
    assert distance_text(threshold + 10.8, threshold) != "1 km"


def test_distance_text_style() -> None:
    assert distance_text(850) == "850 m"
    assert distance_text(1210.8) == "1211 m"  # metres up to 10 km, never "1 km"
    assert distance_text(157041.0) == "157 km"  # whole km beyond, as Startrack's example
    assert distance_text(157041.0, 1000) == "157 km"  # decimals only where needed
    assert distance_text(150000.4, 150000) == "150.0004 km"
    assert distance_text(1200.4, 1200) == "1200.4 m"
    assert meters_above(157041.04, 1000) == 157041.0


def test_sensor_conditions_and_unknown_values() -> None:
    r = rule("sensor", {"sensor": "fuel_level", "op": "<", "value": 0.2})
    seq = [
        facts(0, sensors={"fuel_level": 0.5}),
        facts(10, sensors={}),
        facts(20, sensors={"fuel_level": 0.1}),
        facts(30, sensors={"fuel_level": "n/a"}),
        facts(40, sensors={"fuel_level": 0.1}),
    ]
    assert run(r, seq) == [[], [], ["sensor"], [], []]


def test_event_rules_use_derived_transitions() -> None:
    on = rule("ignitionOn")
    d_on = Derived(3, 0, 0, False, ignition_changed=True)
    assert run(on, [facts(0), facts(10, derived=d_on)]) == [[], ["ignitionOn"]]
    moving = rule("startedMoving")
    assert run(
        moving, [facts(0), facts(10, derived=Derived(0, 0, 0, True, started_moving=True))]
    ) == [[], ["startedMoving"]]


def test_schedule_in_the_client_zone() -> None:
    # weekdays 08:00-18:00 in Guatemala (UTC-6): Monday 12:00 UTC is 06:00 there: closed
    sched = parse_schedule(
        {"windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}]}
    )
    r = rule("enteredPoi", schedule=sched, zone=ZoneInfo("America/Guatemala"))
    assert run(r, [facts(0), facts(10, inside=(5,))]) == [[], []]
    assert run(r, [facts(0), facts(3 * 3600, inside=(5,))]) == [[], ["enteredPoi"]]  # 09:00 local
    overnight = parse_schedule({"windows": [{"days": [0], "start": "22:00", "end": "06:00"}]})
    assert overnight.active(datetime(2026, 5, 4, 23, 0))  # Monday night
    assert overnight.active(datetime(2026, 5, 5, 5, 0))  # early Tuesday
    assert not overnight.active(datetime(2026, 5, 5, 23, 0))


@pytest.mark.parametrize(
    ("type_", "params", "schedule", "field"),
    [
        ("nope", {}, None, "type"),
        ("overspeed", {}, None, "params.limit_kmh"),
        ("overspeed", {"limit_kmh": -1}, None, "params.limit_kmh"),
        ("sensor", {"sensor": "x", "op": "<", "value": "high"}, None, "params"),
        ("sensor", {"sensor": "x", "op": "~", "value": 1}, None, "params.op"),
        ("enteredPoi", {"confirm_fixes": 0}, None, "params.confirm_fixes"),
        ("ignitionOn", {"extra": 1}, None, "params.extra"),
        ("ignitionOn", {}, {"windows": [{"days": [7]}]}, "schedule.windows.0.days"),
        ("ignitionOn", {}, {"windows": []}, "schedule.windows"),
        (
            "ignitionOn",
            {},
            {"windows": [{"days": [1], "start": "25:00"}]},
            "schedule.windows.0.start",
        ),
    ],
)
def test_bad_definitions_name_the_field(
    type_: str, params: dict[str, Any], schedule: Any, field: str
) -> None:
    def parse() -> None:
        parse_params(type_, params)
        parse_schedule(schedule)

    with pytest.raises(RuleError) as err:
        parse()
    assert err.value.field == field
