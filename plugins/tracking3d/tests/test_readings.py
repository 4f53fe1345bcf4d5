"""Parsing of ``Data/SensorReadingsList`` answers, reading keys, and the match to fixes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gpshub_tracking3d.parse import BadShape
from gpshub_tracking3d.readings import (
    SATELLITES,
    Reading,
    ReadingPool,
    embedded,
    parse_readings,
)
from hub.fix import PositionFix

T = datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC).timestamp()
LOCAL = "2024-05-14T12:12:41"  # account time, three hours ahead


def reading(**fields: Any) -> dict[str, Any]:
    base = {
        "UnitUid": "5CE7C3",
        "Name": "Ext. power",
        "Value": "13.8",
        "MeasurementSign": "V",
        "ReadingTimeLocal": LOCAL,
        "SensorType": "External Battery",
    }
    return {**base, **fields}


def parse(*entries: Any, offset: float | None = 3 * 3600.0) -> list[Reading]:
    page = parse_readings({"SensorReadings": list(entries), "StartId": 9}, lambda unit: offset)
    return page.readings


def test_a_reading_has_its_unit_utc_time_key_and_value() -> None:
    page = parse_readings({"SensorReadings": [reading()], "StartId": "9"}, lambda u: 10800.0)
    assert page.start_id == 9 and page.size == 1 and page.newest == T
    assert page.readings == [Reading("5CE7C3", T, "external_battery_v", 13.8)]


def test_a_utc_time_wins_over_the_local_one_and_needs_no_offset() -> None:
    for key in ("ReadingTimeUtc", "ReadingTimeUTC"):
        (got,) = parse(reading(**{key: "2024-05-14T09:12:41"}), offset=None)
        assert got.t == T


@pytest.mark.parametrize(
    ("fields", "key", "value"),
    [
        ({"SensorType": "Satellite Count", "Name": "Sats", "Value": "11"}, SATELLITES, 11),
        ({"SensorType": "Custom", "Name": "Door", "Value": "Open", "MeasurementSign": ""}, "door", "Open"),
        ({"SensorType": "", "Name": "Fuel (rear)", "Value": "12,5", "MeasurementSign": "L"}, "fuel_rear_l", 12.5),
        ({"SensorType": "Fuel Level", "Name": "Diesel", "Value": "80", "MeasurementSign": "%"}, "fuel_level_pct", 80.0),
        ({"SensorType": "Temperature", "Name": "T", "Value": "-4", "MeasurementSign": "°C"}, "temperature_c", -4.0),
        ({"SensorType": "Alarm", "Name": "Panic", "Value": "true", "MeasurementSign": "V"}, "alarm", True),
        ({"SensorType": "GSM Signal Strength", "Name": "GSM", "Value": "4", "MeasurementSign": ""}, "gsm_signal_strength", 4.0),
    ],
)  # fmt: skip
def test_keys_and_values(fields: dict[str, Any], key: str, value: Any) -> None:
    (got,) = parse(reading(**fields))
    assert (got.key, got.value) == (key, value)


def test_sensors_of_one_type_on_one_unit_are_told_apart_by_name() -> None:
    front = reading(SensorType="Temperature", Name="Front", MeasurementSign="°C")
    rear = reading(SensorType="Temperature", Name="Rear", MeasurementSign="°C")
    other = reading(UnitUid="OTHER", SensorType="Temperature", Name="Box", MeasurementSign="°C")
    keys = [r.key for r in parse(front, rear, other)]
    assert keys == ["temperature_front_c", "temperature_rear_c", "temperature_c"]


def test_unusable_readings_are_skipped() -> None:
    bad = [
        "text",
        reading(UnitUid=None),
        reading(ReadingTimeLocal="soon"),
        reading(Value=None),
        reading(SensorType="", Name=""),
        reading(SensorType="Satellite Count", Value="many"),
    ]
    page = parse_readings({"SensorReadings": [*bad, reading()]}, lambda u: 0.0)
    assert len(page.readings) == 1 and page.size == 7 and page.start_id is None
    assert parse(reading(), offset=None) == []  # a local time without a known offset


def test_an_answer_of_the_wrong_shape_is_bad_readings() -> None:
    with pytest.raises(BadShape):
        parse_readings([reading()], lambda u: 0.0)
    with pytest.raises(BadShape):
        parse_readings({"SensorReadings": {"a": 1}}, lambda u: 0.0)
    assert parse_readings({"SensorReadings": None, "StartId": 3}, lambda u: 0.0).size == 0


def test_readings_carried_in_a_record_use_the_same_keys() -> None:
    satellites, sensors = embedded([reading(), reading(SensorType="Satellite Count", Value="7")])
    assert satellites == 7 and sensors == {"external_battery_v": 13.8}
    assert embedded(None) == (None, {})


def fix_at(t: float) -> PositionFix:
    return PositionFix(datetime.fromtimestamp(t, UTC), 1.0, 1.0)


def test_the_pool_gives_each_fix_the_newest_reading_within_the_window() -> None:
    pool = ReadingPool(60.0)
    pool.add_all(
        [
            Reading("U", T - 100, "fuel", 50.0),
            Reading("U", T - 30, "fuel", 49.0),
            Reading("U", T - 30, SATELLITES, 9),
            Reading("U", T + 10, "fuel", 48.0),
            Reading("V", T, "fuel", 1.0),
        ]
    )
    at, before, after = fix_at(T), fix_at(T - 80), fix_at(T + 200)
    at.sensors["fuel"] = 60.0  # what the record carried itself stays
    for fix in (at, before, after):
        pool.attach("U", fix)
    assert at.sensors["fuel"] == 60.0 and at.satellites == 9
    assert before.sensors["fuel"] == 50.0 and before.satellites is None
    assert "fuel" not in after.sensors


def test_the_pool_carries_readings_ahead_and_the_last_within_the_window() -> None:
    pool = ReadingPool(60.0)
    for k in range(5):
        pool.add(Reading("U", T - 200 + 50 * k, "fuel", float(k)))
    carry = pool.carry("U", T - 90)  # readings at T-200, -150, -100, -50, 0
    assert carry == {"fuel": [[T - 100, 2.0], [T - 50, 3.0], [T, 4.0]]}
    again = ReadingPool(60.0)
    again.load("U", {**carry, "junk": [[1, {}], "x"], 3: []})
    fix = fix_at(T - 40)
    again.attach("U", fix)
    assert fix.sensors == {"fuel": 3.0}
    assert pool.carry("U", T + 1000) == {}
