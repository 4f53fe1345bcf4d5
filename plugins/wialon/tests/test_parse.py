"""Parsing Wialon messages and units (the reference's documented examples)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gpshub_wialon.messages import as_bool, parse_message, received_time, sensors_of
from gpshub_wialon.units import parse_unit, profile_fields

DOC_MESSAGE: dict[str, Any] = {
    "t": 1364760081,
    "f": 3,
    "tp": "ud",
    "pos": {"y": 53.8396544, "x": 27.5608672, "z": 213, "s": 0, "c": 51, "sc": 9},
    "i": 0,
    "p": {
        "param22": 3,
        "adc1": 12.606,
        "pwr_ext": 12.598,
        "param199": 0,
        "param241": 25701,
        "battery_charge": 0,
    },
}

DOC_UNIT: dict[str, Any] = {
    "nm": "Bavarian Tractor",
    "cls": 2,
    "id": 34868,
    "mu": 0,
    "uacl": 638138188323,
    "uid": "356307042441013",
    "uid2": "",
    "hw": 9,
    "ph": "+375290000000",
    "ph2": "",
    "psw": "",
    "pos": {"t": 1358761631, "y": 53.9205504, "x": 27.4921152, "z": 238, "s": 0, "c": 102,
            "sc": 10},
    "lmsg": {"t": 1358761631, "f": 3, "tp": "ud",
             "pos": {"y": 53.9205504, "x": 27.4921152, "z": 238, "s": 0, "c": 102, "sc": 10},
             "i": 0, "o": 0, "lc": 0, "rt": 0, "p": {"param22": 3}},
    "pflds": {"1": {"id": 1, "n": "registration_plate", "v": "1234 AB-7"},
              "2": {"id": 2, "n": "vehicle_type", "v": "truck"}},
    "pfldsmax": 2,
}  # fmt: skip


def test_the_documented_message() -> None:
    fix = parse_message(DOC_MESSAGE)
    assert fix is not None
    fix.validate()
    assert fix.fix_time == datetime(2013, 3, 31, 20, 1, 21, tzinfo=UTC)
    assert (fix.lat, fix.lon, fix.altitude_m) == (53.8396544, 27.5608672, 213.0)
    assert (fix.speed_kmh, fix.course_deg, fix.satellites) == (0.0, 51.0, 9)
    assert fix.valid is True
    assert fix.ignition is False  # no ignition parameter: digital input 1 (bit 0 of i), off
    assert fix.sensors == {
        **DOC_MESSAGE["p"],
        "input": 0,
        **{f"in{n}": False for n in range(1, 9)},
    }
    assert received_time(DOC_MESSAGE) is None  # no rt


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({"pos": {**DOC_MESSAGE["pos"], "sc": 0}}, False),
        ({"f": 3 | 0x20000}, False),
        ({"f": 3 | 0x80000}, False),
        ({"f": 3 | 0x10}, True),  # an alarm bit says nothing about the position
        ({"pos": {"y": 1.0, "x": 2.0}}, True),  # no satellite count: not known to be bad
    ],
)
def test_validity(change: dict[str, Any], valid: bool) -> None:
    fix = parse_message({**DOC_MESSAGE, **change})
    assert fix is not None and fix.valid is valid


@pytest.mark.parametrize(
    "message",
    [
        {**DOC_MESSAGE, "pos": None},
        {**DOC_MESSAGE, "pos": {"y": 91.0, "x": 0.0}},
        {**DOC_MESSAGE, "pos": {"y": 0.0, "x": -181.0}},
        {**DOC_MESSAGE, "pos": {"y": "1", "x": 0.0}},
        {**DOC_MESSAGE, "pos": {"x": 0.0}},
        {**DOC_MESSAGE, "t": None},
        {**DOC_MESSAGE, "t": "1364760081"},
        {**DOC_MESSAGE, "t": 0},
        {k: v for k, v in DOC_MESSAGE.items() if k != "t"},
        "not a message",
        None,
    ],
)
def test_what_is_no_fix(message: Any) -> None:
    assert parse_message(message) is None


def test_bad_optional_values_are_dropped() -> None:
    pos = {"y": 1.0, "x": 2.0, "z": "high", "s": -5, "c": 725, "sc": -1}
    fix = parse_message({**DOC_MESSAGE, "pos": pos, "i": "x", "o": -1, "p": "junk"})
    assert fix is not None
    fix.validate()
    assert (fix.altitude_m, fix.speed_kmh, fix.course_deg, fix.satellites) == (None, None, 5, None)
    assert fix.sensors == {}


def test_ignition_is_lifted_from_the_parameters() -> None:
    for name in ("ign", "ignition", "engine_ignition"):
        fix = parse_message({**DOC_MESSAGE, "p": {name: 1, "adc1": 1.5}})
        assert fix is not None and fix.ignition is True
        assert fix.sensors == {"adc1": 1.5, "input": 0, **{f"in{n}": False for n in range(1, 9)}}
    fix = parse_message({**DOC_MESSAGE, "p": {"ign": 0}})
    assert fix is not None and fix.ignition is False
    fix = parse_message({**DOC_MESSAGE, "f": 1, "p": {"ign": "maybe"}})  # no inputs either
    assert fix is not None and fix.ignition is None and fix.sensors["ign"] == "maybe"


@pytest.mark.parametrize(
    ("params", "inputs", "flags", "ignition"),
    [
        ({"io_239": 1, "ign": 0, "in1": 0}, 0, 3, True),  # io_239 first
        ({"io_239": 0, "ign": 1}, 1, 3, False),
        ({"ign": 1, "in1": 0}, 0, 3, True),  # then ign (ignition, engine_ignition)
        ({"engine_ignition": "off", "in1": 1}, 1, 3, False),
        ({"in1": 1}, 0, 3, True),  # then the parameter in1
        ({"io_239": "n/a"}, 0b11, 3, True),  # then bit 0 of the inputs
        ({}, 0b10, 3, False),
        ({}, 1, 1, None),  # inputs not flagged as present: unknown
        ({}, None, 3, None),
    ],
)
def test_ignition_of_a_unit_without_an_ignition_sensor(
    params: dict[str, Any], inputs: int | None, flags: int, ignition: bool | None
) -> None:
    message = {**DOC_MESSAGE, "f": flags, "p": params, "i": inputs}
    fix = parse_message(message)
    assert fix is not None and fix.ignition is ignition
    if "io_239" in params:
        assert fix.sensors["io_239"] == params["io_239"]  # a named parameter stays


def test_inputs_and_outputs_become_bits() -> None:
    fix = parse_message({**DOC_MESSAGE, "i": 0b10000001, "o": 0b110})
    assert fix is not None
    s = fix.sensors
    assert (s["input"], s["in1"], s["in2"], s["in8"]) == (129, True, False, True)
    assert (s["output"], s["out1"], s["out2"], s["out3"]) == (6, False, True, True)


def test_sensor_values_are_flat_scalars() -> None:
    assert sensors_of(
        {"a": 1, "b": 2.5, "c": "x", "d": True, "e": None, "f": [1, 2], "g": {"h": 1, "i": {"j": 2}},
         "nan": float("nan")}
    ) == {"a": 1, "b": 2.5, "c": "x", "d": True, "g.h": 1, "g.i.j": 2}  # fmt: skip


def test_received_time() -> None:
    assert received_time({**DOC_MESSAGE, "rt": 1364760090}) == 1364760090.0
    assert received_time({**DOC_MESSAGE, "rt": 0}) is None
    assert received_time({**DOC_MESSAGE, "rt": "soon"}) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, True), (0, False), (2.0, True), (True, True), ("on", True), ("0", False), ("?", None),
     (None, None)],
)  # fmt: skip
def test_as_bool(value: Any, expected: bool | None) -> None:
    assert as_bool(value) is expected


def test_the_documented_unit() -> None:
    device = parse_unit(DOC_UNIT)
    assert device is not None
    assert device.upstream_id == "34868"
    assert (device.name, device.imei, device.license_plate) == (
        "Bavarian Tractor",
        "356307042441013",
        "1234 AB-7",
    )
    assert device.extra == {
        "vehicle_type": "truck",
        "hardware_type": 9,
        "last_message_at": "2013-01-21T09:47:11+00:00",
    }


def test_a_unit_with_only_base_flags() -> None:
    device = parse_unit({"nm": " ", "id": 7, "cls": 2})
    assert device is not None
    assert (device.upstream_id, device.name, device.imei, device.license_plate) == (
        "7",
        "7",
        None,
        None,
    )
    assert device.extra == {}


@pytest.mark.parametrize("item", [None, {}, {"id": "34868"}, {"id": 0}, {"id": True}, []])
def test_a_unit_without_an_id_is_skipped(item: Any) -> None:
    assert parse_unit(item) is None


def test_profile_fields_are_read_from_an_object_or_a_list() -> None:
    listed = [{"id": 1, "n": "registration_plate", "v": " X-1 "}, {"n": "year", "v": 2019},
              {"n": "vin", "v": ""}, "junk"]  # fmt: skip
    assert profile_fields({"pflds": listed}) == {"registration_plate": "X-1", "year": "2019"}
    assert profile_fields({"pflds": None}) == {}
    assert profile_fields({"prp": {"lic_reg_num": "wrong place"}}) == {}
