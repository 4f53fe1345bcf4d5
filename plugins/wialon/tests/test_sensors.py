"""Unit sensors: parameter expressions, calculation tables, bounds, validation, naming."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gpshub_wialon.expression import Unsupported, compile_expression
from gpshub_wialon.messages import parse_message
from gpshub_wialon.sensors import parse_sensors, sensor_key
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM

MESSAGE: dict[str, Any] = {
    "t": 1767225600,
    "f": 7,
    "tp": "ud",
    "pos": {"y": 53.9, "x": 27.5, "z": 230, "s": 42, "c": 90, "sc": 9},
    "i": 0b0110,
    "o": 0b1,
    "p": {
        "io_239": 1,
        "param66": 12_345,
        "param199": 0b101,
        "can_fuel": 40,
        "can_mileage": 1_234_567,
        "engine_min": 600,
        "temp1": 215,
        "label": "B-2",
        "numeric_text": "12.5",
    },
    "lc": 0,
    "rt": 1767225605,
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("param66", 12_345),
        ("param66/1000", 12.345),
        ("param66 * const0.001", 12.345),
        ("const-4.5 + 10", 5.5),
        ("param199:1", 1),
        ("param199:2", 0),
        ("param199:3", 1),
        ("in1", 0),  # digital input 1 is bit 0 of i
        ("in2", 1),
        ("in:3", 1),
        ("out1", 1),
        ("in", 6),
        ("(temp1 - 15) / 10", 20),
        ("2 ^ 3 ^ 2", 512),  # right-associative
        ("-param199", -5),
        ("missing | can_fuel", 40),
        ("numeric_text * 2", 25),
        ("speed", 42),
        ("sats", 9),
        ("regtime - time", 5),
        ("missing", None),
        ("label", None),  # text that is no number
        ("param66 / 0", None),
        ("missing + 1", None),
    ],
)
def test_expressions(text: str, value: float | None) -> None:
    result = compile_expression(text).evaluate(MESSAGE, lambda name: None)
    assert result == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize(
    "text", ["", "   ", "#adc1", "adc1 - #adc1", "param:x", "param:0", "(a + b", "a +", "a $ b"]
)
def test_what_an_expression_cannot_be(text: str) -> None:
    with pytest.raises(Unsupported):
        compile_expression(text)


def sensor(
    sid: int, name: str, kind: str, param: str, *, metrics: str = "", flags: int = 0,
    table: list[tuple[float, float, float]] | None = None, config: dict[str, Any] | None = None,
    vs: int = 0, vt: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """A sensor as ``core/search_items`` returns it in ``sens``."""
    return {
        "id": sid, "n": name, "t": kind, "d": "", "m": metrics, "p": param, "f": flags,
        "c": orjson.dumps(config or {}).decode(), "vt": vt, "vs": vs,
        "tbl": [{"x": x, "a": a, "b": b} for x, a, b in table or ()],
    }  # fmt: skip


def unit_of(*sensors: dict[str, Any]) -> Any:
    unit, problems = parse_sensors({"id": 1, "sens": {str(s["id"]): s for s in sensors}})
    return unit, problems


def test_each_kind_of_sensor_reaches_the_fix_under_its_key() -> None:
    unit, problems = unit_of(
        sensor(1, "Зажигание", "engine operation", "in2"),
        sensor(2, "Fuel Tank 1", "fuel level", "can_fuel", table=[(0, 1.5, 0)]),
        sensor(3, "Reefer temp. (°C)", "temperature", "(temp1 - 15) / 10"),
        sensor(4, "Board voltage", "voltage", "param66/1000"),
        sensor(5, "CAN odometer", "mileage", "can_mileage", metrics="m"),
        sensor(6, "Motor hours", "engine hours", "engine_min", metrics="min"),
        sensor(7, "GPS mileage", "mileage", "can_mileage/1000", metrics="km"),
        sensor(8, "Door", "digital", "in4"),  # a type we do not map
    )
    assert problems == []
    fix = parse_message(MESSAGE, unit)
    assert fix is not None
    assert fix.ignition is True  # in2
    assert fix.sensors[PLATFORM_ODOMETER_KM] == pytest.approx(1234.567)
    assert fix.sensors[PLATFORM_ENGINE_HOURS] == pytest.approx(10)
    assert fix.sensors["fuel_tank_1"] == 60
    assert fix.sensors["reefer_temp_c"] == 20
    assert fix.sensors["board_voltage"] == pytest.approx(12.345)
    assert fix.sensors["gps_mileage"] == pytest.approx(1234.567)  # a second one, by name
    assert "door" not in fix.sensors
    for name, value in MESSAGE["p"].items():  # the raw parameters stay as they were
        assert fix.sensors[name] == value


def test_the_ignition_sensor_wins_over_the_common_parameters() -> None:
    unit, _ = unit_of(sensor(1, "Ignition", "engine operation", "param199:2"))
    fix = parse_message(MESSAGE, unit)  # io_239 = 1, but the unit says bit 2 of param199
    assert fix is not None and fix.ignition is False
    fix = parse_message({**MESSAGE, "p": {"io_239": 1}}, unit)
    assert fix is not None and fix.ignition is None  # its parameter is missing: unknown


def test_a_unit_without_an_ignition_sensor_uses_the_common_parameters() -> None:
    unit, _ = unit_of(sensor(1, "Fuel", "fuel level", "can_fuel"))
    fix = parse_message({**MESSAGE, "p": {"io_239": 0, "can_fuel": 3}}, unit)
    assert fix is not None and fix.ignition is False and fix.sensors["fuel"] == 3


def test_calculation_table_bounds_and_validation() -> None:
    table = [(0, 0.5, 0), (100, 1.0, -50), (200, 2.0, -250)]
    unit, problems = unit_of(
        sensor(1, "a", "fuel level", "v", table=table),
        sensor(2, "raw bounds", "fuel level", "v", config={"lower_bound": 0, "upper_bound": 150}),
        sensor(
            3,
            "after bounds",
            "fuel level",
            "v",
            table=table,
            flags=0x40,
            config={"lower_bound": 0, "upper_bound": 100},
        ),
        sensor(4, "no bounds", "fuel level", "v", config={"lower_bound": 0, "upper_bound": 0}),
        sensor(5, "power", "voltage", "pwr"),
        sensor(6, "validated", "fuel level", "v", vs=5, vt=11),  # not-null check
        sensor(7, "times power", "fuel level", "v", vs=5, vt=8),
    )
    assert problems == []

    def values(v: float, pwr: float = 1) -> dict[str, Any]:
        fix = parse_message({**MESSAGE, "p": {"v": v, "pwr": pwr}}, unit)
        assert fix is not None
        return {k: fix.sensors.get(k) for k in ("a", "raw_bounds", "after_bounds", "no_bounds",
                                                 "validated", "times_power")}  # fmt: skip

    assert values(-10) == {"a": -5, "raw_bounds": None, "after_bounds": None, "no_bounds": -10,
                           "validated": -10, "times_power": -10}  # fmt: skip
    assert values(50) == {"a": 25, "raw_bounds": 50, "after_bounds": 25, "no_bounds": 50,
                          "validated": 50, "times_power": 50}  # fmt: skip
    assert values(160, pwr=0) == {"a": 110, "raw_bounds": None, "after_bounds": None,
                                  "no_bounds": 160, "validated": None, "times_power": 0}  # fmt: skip
    assert values(300)["a"] == 350


def test_sensors_may_refer_to_sensors() -> None:
    unit, problems = unit_of(
        sensor(1, "Tank A", "custom", "fa"),
        sensor(2, "Tank B", "custom", "fb"),
        sensor(3, "Fuel total", "fuel level", "[Tank A] + [Tank B]"),
        sensor(4, "Power", "custom", "in1|io_239"),
        sensor(5, "Ignition", "engine operation", "[Power]"),
    )
    assert problems == []
    fix = parse_message({**MESSAGE, "p": {"fa": 20, "fb": 15, "io_239": 1}, "i": None}, unit)
    assert fix is not None and fix.sensors["fuel_total"] == 35 and fix.ignition is True


def test_what_cannot_be_evaluated_is_left_out_and_reported() -> None:
    unit, problems = unit_of(
        sensor(1, "Ignition", "engine operation", "#in1"),  # the previous message's value
        sensor(2, "Fuel", "fuel level", "[Nowhere] * 2"),
        sensor(3, "Loop A", "temperature", "[Loop B]"),
        sensor(4, "Loop B", "temperature", "[Loop A]"),
        sensor(5, "Consumed", "fuel level", "fuel_used", flags=0x02),  # differential
        sensor(6, "Checked", "voltage", "pwr", vs=99, vt=1),
        sensor(7, "Odd check", "voltage", "pwr", vs=6, vt=42),
        sensor(8, "Counter", "custom", "#x"),  # broken, but nothing uses it: not reported
        sensor(9, "Fine", "voltage", "pwr"),
    )
    assert len(problems) == 7
    assert "'Ignition' (engine operation)" in problems[0] and "previous message" in problems[0]
    assert "[Nowhere]" in problems[1]
    assert "loop" in problems[2] and "loop" in problems[3]
    assert "differential" in problems[4]
    assert "validating sensor 99" in problems[5]
    assert "validation type 42" in problems[6]
    assert unit is not None and unit.ignition is None  # left to the common parameters
    fix = parse_message({**MESSAGE, "p": {"pwr": 12.5, "ign": 1}}, unit)
    assert fix is not None and fix.ignition is True
    assert fix.sensors["fine"] == 12.5
    assert not {"fuel", "loop_a", "checked", "odd_check"} & set(fix.sensors)


def test_garbage_sensor_lists_are_no_sensors() -> None:
    for sens in (None, "x", [], {"1": "x"}, {"1": {"id": "1", "n": "x"}}, {"1": {"id": 1}}):
        assert parse_sensors({"id": 1, "sens": sens}) == (None, [])
    bad_row: Any = (0, "x", 1)
    unit, _ = unit_of(sensor(1, "Fuel", "fuel level", "f", table=[bad_row]))
    assert unit is not None and unit.outputs[0][1].table == ()


def test_sensor_keys() -> None:
    assert sensor_key("Fuel Tank 1", 3) == "fuel_tank_1"
    assert sensor_key("  Reefer temp. (°C) ", 3) == "reefer_temp_c"
    assert sensor_key("Топливо", 3) == "топливо"
    assert sensor_key("***", 3) == "sensor_3"
    assert sensor_key("Fuel", 4, {"fuel"}) == "fuel_4"
    unit, _ = unit_of(sensor(1, "Fuel", "fuel level", "a"), sensor(2, "fuel", "fuel level", "b"))
    assert [key for key, _, _ in unit.outputs] == ["fuel", "fuel_2"]


def test_a_sensor_named_like_a_parameter_keeps_the_parameter() -> None:
    unit, _ = unit_of(sensor(1, "param66", "voltage", "param66/1000"))
    fix = parse_message(MESSAGE, unit)
    assert fix is not None
    assert fix.sensors["param66"] == 12_345 and fix.sensors["param66_sensor"] == 12.345
