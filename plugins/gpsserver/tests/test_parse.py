"""Parsing GPS-Server.net JSON: rows, objects, locations, values (no network)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gpshub_gpsserver.keyapi import command
from gpshub_gpsserver.parse import (
    BadShape,
    Location,
    annotate,
    format_time,
    parse_location,
    parse_locations,
    parse_objects,
    parse_row,
    parse_rows,
    parse_time,
    scalar,
    sensors_of,
)
from gpshub_gpsserver.tokenapi import expiry
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM

OBJECT = {
    "imei": "356307042441013",
    "protocol": "teltonika",
    "active": "true",
    "dt_server": "2024-05-14 09:12:44",
    "dt_tracker": "2024-05-14 09:12:41",
    "lat": "37.983810",
    "lng": "23.727539",
    "altitude": "112",
    "angle": "270",
    "speed": "40",
    "params": {"acc": "1", "gpslev": "11", "io66": "13800", "batp": "87"},
    "loc_valid": "1",
    "name": "Truck 07",
    "device": "FMB920",
    "model": "Actros",
    "vin": "WDB9634031L000000",
    "plate_number": "ABC-1234",
    "odometer": "152334.60",
    "engine_hours": "1234.5",
    "custom_fields": [{"name": "Depot", "value": "Athens"}],
}


def test_times_are_utc_without_offset_and_zero_is_none() -> None:
    assert parse_time("2024-05-14 09:12:41") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert parse_time("0000-00-00 00:00:00") is None
    assert parse_time("") is None and parse_time("yesterday") is None and parse_time(5) is None
    athens = ZoneInfo("Europe/Athens")
    assert parse_time("2024-05-14 12:12:41", athens) == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert (
        format_time(datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC), athens) == "2024-05-14 12:12:41"
    )


def test_a_string_row_becomes_a_fix_in_hub_units() -> None:
    fix = parse_row(
        ["2024-05-14 09:12:41", "37.983810", "23.727539", "112", "270", "40",
         {"acc": "1", "gpslev": "11", "io66": "13800", "batp": "87.5", "driver": "AB12"}]
    )  # fmt: skip
    assert fix is not None
    assert fix.fix_time == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert (fix.lat, fix.lon) == (37.98381, 23.727539)
    assert (fix.altitude_m, fix.course_deg, fix.speed_kmh) == (112.0, 270.0, 40.0)
    assert fix.ignition is True and fix.satellites == 11 and fix.valid is True
    assert fix.sensors == {"io66": 13800, "batp": 87.5, "driver": "AB12"}
    fix.validate()


def test_numbers_objects_and_alternative_names_are_read_too() -> None:
    fix = parse_row(
        {"dt_tracker": "2024-05-14 09:12:41", "lat": 1.5, "lng": 2.5, "altitude": 3,
         "angle": 370, "speed": 12.5, "sensors": {"ign": 0, "sat": 7, "can": {"rpm": 900}}}
    )  # fmt: skip
    assert fix is not None
    assert fix.ignition is False and fix.satellites == 7 and fix.course_deg == 10.0
    assert fix.sensors == {"can.rpm": 900}


@pytest.mark.parametrize(
    "row",
    [
        # the email-login (v4) API with sensors=true names the count "satellites"
        ["2024-05-14 09:12:41", 1.5, 2.5, 3, 10, 12.5, {"satellites": 9, "acc": 1}],
        {"dt_tracker": "2024-05-14 09:12:41", "lat": 1.5, "lng": 2.5, "satellites": "9",
         "ign": 1, "params": {"io1": 0}},
        # the API key's params
        ["2024-05-14 09:12:41", "1.5", "2.5", "3", "10", "12.5", {"gpslev": "9", "acc": "1"}],
        ["2024-05-14 09:12:41", "1.5", "2.5", "3", "10", "12.5", {"sat": "9", "ign": "1"}],
    ],
)  # fmt: skip
def test_the_satellite_count_is_a_field_under_each_name_the_apis_use(row: object) -> None:
    fix = parse_row(row)
    assert fix is not None and fix.satellites == 9 and fix.ignition is True
    assert not {"satellites", "gpslev", "sat", "acc", "ign"} & set(fix.sensors)


@pytest.mark.parametrize(
    "row",
    [
        ["2024-05-14 09:12:41", "91", "23.7", "0", "0", "0", {}],
        ["2024-05-14 09:12:41", "", "23.7", "0", "0", "0", {}],
        ["0000-00-00 00:00:00", "1", "2", "0", "0", "0", {}],
        ["2024-05-14 09:12:41"],
        "garbage",
        None,
    ],
)
def test_unusable_rows_are_skipped(row: object) -> None:
    assert parse_row(row) is None


def test_a_list_of_rows_keeps_the_good_ones_sorted() -> None:
    rows = parse_rows(
        [
            ["2024-05-14 09:12:50", "1", "2", "0", "0", "-5", {"gpslev": "x"}],
            "broken",
            ["2024-05-14 09:12:41", "1", "2", "0", "0", "0", []],
        ]
    )
    assert [f.fix_time.second for f in rows] == [41, 50]
    assert rows[1].speed_kmh is None and rows[1].satellites is None
    assert rows[1].sensors == {}  # gpslev is lifted even when unusable
    with pytest.raises(BadShape):
        parse_rows({"error": "x"})


def test_sensor_values_are_scalars() -> None:
    assert scalar("13800") == 13800 and scalar("-3") == -3 and scalar("1.25") == 1.25
    assert scalar("nan") == "nan" and scalar("AB12") == "AB12" and scalar(True) is True
    assert scalar([1]) is None and scalar(float("inf")) is None
    assert sensors_of({"acc": "1", "ign": 1, "gpslev": "9", "sat": 3, "temp": "21.5"}) == {
        "temp": 21.5
    }


def test_objects_give_devices_with_plate_model_and_the_latest_location() -> None:
    (loc,) = parse_objects([OBJECT, {"name": "no imei"}])
    assert loc.remote is not None
    assert loc.remote.upstream_id == loc.remote.imei == "356307042441013"
    assert (loc.remote.name, loc.remote.license_plate) == ("Truck 07", "ABC-1234")
    assert loc.remote.extra["model"] == "Actros" and loc.remote.extra["device"] == "FMB920"
    assert loc.odometer_km == pytest.approx(152334.6) and loc.engine_hours == 1234.5
    assert loc.mark == (
        datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC).timestamp(),
        datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC).timestamp(),
    )
    with pytest.raises(BadShape):
        parse_objects({"x": 1})


def test_locations_are_keyed_by_imei_and_an_empty_php_array_is_none() -> None:
    body = {"356307042441013": {k: v for k, v in OBJECT.items() if k != "imei"}}
    locations = parse_locations(body)
    assert list(locations) == ["356307042441013"]
    assert parse_locations([]) == {}
    with pytest.raises(BadShape):
        parse_locations("text")


def test_the_latest_location_annotates_only_its_own_fix() -> None:
    loc = parse_location({**OBJECT, "loc_valid": "0"})
    assert isinstance(loc, Location) and loc.valid is False
    latest = parse_row(["2024-05-14 09:12:41", "1", "2", "0", "0", "0", {}])
    older = parse_row(["2024-05-14 09:12:11", "1", "2", "0", "0", "0", {}])
    assert latest is not None and older is not None
    marked = annotate(latest, loc)
    assert marked.valid is False
    assert marked.sensors == {
        PLATFORM_ODOMETER_KM: pytest.approx(152334.6),
        PLATFORM_ENGINE_HOURS: 1234.5,
    }
    assert annotate(older, loc) is older


def test_expires_in_is_an_epoch_or_seconds() -> None:
    now = 1_772_438_400.0
    assert expiry(3600, now) == now + 3600
    assert expiry("1800", now) == now + 1800
    assert expiry(1_772_442_000, now) == 1_772_442_000
    assert expiry(None, now) == now + 3600


def test_commands_quote_arguments_with_commas() -> None:
    assert command("OBJECT_GET_MESSAGES", "1", "2024-05-14 09:00:00") == (
        "OBJECT_GET_MESSAGES,1,2024-05-14 09:00:00"
    )
    assert command("X", 'a,"b"') == 'X,"a,""b"""'
