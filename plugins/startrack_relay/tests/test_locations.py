"""JSON 1 and JSON 2 against the examples of Startrack's documentation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gpshub_startrack_relay import StartrackJson1, StartrackJson2, json1_object, json2_object
from gpshub_startrack_relay.formats import (
    SYNTHETIC_DEVICE_ID,
    device_number,
    device_warnings,
    imei_number,
    round_int,
)

MakeItem = Callable[..., dict[str, Any]]
EXAMPLES: dict[str, Any] = orjson.loads(
    (Path(__file__).parent / "startrack_examples.json").read_bytes()
)
"""The examples of Startrack's webhook documentation."""
DOC_JSON1: dict[str, Any] = EXAMPLES["json1"]
DOC_JSON2: list[Any] = EXAMPLES["json2"]


def json2_example_item(make_location: MakeItem) -> dict[str, Any]:
    # the JSON 2 example is another event than JSON 1's: 15 km/h is 9.32 mph
    return make_location(
        fix_time=datetime(2016, 9, 8, 16, 31, 44, tzinfo=UTC),
        server_time=datetime(2016, 9, 8, 16, 31, 45, 162_000, tzinfo=UTC),
        speed_kmh=15.0,
    )


# -- JSON 1 ----------------------------------------------------------------------------------
def test_json1_reproduces_the_doc_example_field_by_field(make_location: MakeItem) -> None:
    body = StartrackJson1().encode([make_location()])
    got = orjson.loads(body)
    for key, expected in DOC_JSON1.items():
        assert got[key] == expected, key
        assert type(got[key]) is type(expected), key
    assert list(got) == list(DOC_JSON1)  # every field, in the doc's order, nothing else


def test_json1_format_declares_one_location_per_body() -> None:
    assert StartrackJson1.kind == "startrack-json1"
    assert StartrackJson1.purpose == "locations"
    assert StartrackJson1.max_batch == 1
    assert StartrackJson1.content_type == "application/json"


def test_json1_refuses_more_than_one_item(make_location: MakeItem) -> None:
    with pytest.raises(ValueError, match="1 to 1 items"):
        StartrackJson1().encode([make_location(), make_location()])
    with pytest.raises(ValueError):
        StartrackJson1().encode([])


def test_json1_missing_values(make_location: MakeItem) -> None:
    item = make_location(
        speed_kmh=None,
        course_deg=None,
        source_ip=None,
        source_port=None,
        place=None,
        poi_ids=[],
        poi_group_ids=[],
        alerts_count=None,
        odometer_km=None,
        virtual_odometer_km=None,
        hours=None,
        virtual_hours=None,
        valid=False,
        device={"imei": None, "remote_id": None, "license_plate": None},
    )
    got = json1_object(item)
    assert got["kmph"] == 0 and got["head"] == 0
    assert got["ip"] == "" and got["port"] == -1
    assert got["placename"] == ""
    assert got["poi_ids"] == [] and got["poi_group_ids"] == []
    assert got["alerts_count"] == 0
    assert [got[k] for k in ("odometer", "sys_odometer", "hourmeter", "sys_hourmeter")] == [0] * 4
    assert got["remote_id"] == "" and got["license_plate"] == ""
    assert got["device_id"] == 10**15 + 324  # no IMEI: a number of its own all the same
    assert got["valid_position"] is False
    assert got["route_id"] is None


NULLABLE_POSITION_FIELDS = (
    "altitude_m", "speed_kmh", "course_deg", "satellites", "ignition", "accuracy_m",
    "source_ip", "source_port", "odometer_km", "virtual_odometer_km", "hours",
    "virtual_hours", "place",
)  # fmt: skip


def sparse(make_location: MakeItem) -> dict[str, Any]:
    """A location of which the hub knows as little as it can: every nullable field null."""
    return make_location(
        **dict.fromkeys(NULLABLE_POSITION_FIELDS),
        poi_ids=[],
        poi_group_ids=[],
        device={"imei": None, "remote_id": None, "license_plate": None, "driver": None},
    )


@pytest.mark.parametrize("format_class", [StartrackJson1, StartrackJson2])
def test_no_null_where_startrack_types_a_value(format_class: Any, make_location: Any) -> None:
    """Startrack types every location field as a number, text, boolean or list: only
    ``route_id`` (its own example) is null."""
    body = orjson.loads(format_class().encode([sparse(make_location)]))
    obj = body if isinstance(body, dict) else body[1][0]
    assert [k for k, v in obj.items() if v is None] == (
        ["route_id"] if format_class is StartrackJson1 else []
    )
    assert isinstance(obj["device_id"], int) and obj["ip"] == ""


def test_json1_known_port_speed_course_and_counters(make_location: MakeItem) -> None:
    item = make_location(
        source_port=5027,
        speed_kmh=87.5,
        course_deg=359.6,
        virtual_odometer_km=12.34567,
        virtual_hours=2.0004,
        event_code=4,
        alerts_count=2,
    )
    got = json1_object(item)
    assert got["port"] == 5027
    assert got["kmph"] == 88  # halves round up
    assert got["head"] == 0  # 359.6 rounds to 360, which is north again
    assert got["odometer"] == 12.346 and got["hourmeter"] == 2.0
    assert got["code"] == 4 and got["alerts_count"] == 2


@pytest.mark.parametrize(
    ("imei", "expected"),
    [
        ("358741050302485", 358741050302485),
        (" 358741050302485 ", 358741050302485),
        ("0", 0),
        ("012345678901234", 12345678901234),  # 15 digits: as Startrack keeps it, a number
        ("ABC-1234", None),
        ("35874105030248X", None),
        ("3587410503024851", None),  # 16 digits: could meet a synthetic number
        ("9" * 20, None),
        ("٣٥٨", None),  # digits, but not ASCII ones
        ("\t358741050302485", None),  # the hub compares IMEIs without spaces only
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_imei_number(imei: str | None, expected: int | None) -> None:
    assert imei_number(imei) == expected


def test_device_id_is_the_imei_or_a_synthetic_number(make_location: MakeItem) -> None:
    def number(vid: int, **device: Any) -> int:
        item = make_location(device_id=vid, device={"id": vid, **device})
        got = json1_object(item)["device_id"]
        assert json2_object(item)["device_id"] == got
        return int(got)

    assert number(5, imei="358741050302485") == 358741050302485
    # the same IMEI on a device of a higher id (imei_first is false): its own number
    assert number(9, imei="358741050302485", imei_first=False) == 1_000_000_000_000_009
    assert number(6, imei=None) == 1_000_000_000_000_006
    assert number(7, imei="ABC-1234") == 1_000_000_000_000_007
    assert number(8, imei="35874105030248512") == 1_000_000_000_000_008  # 17 digits
    assert number(10, imei="358741050302485", imei_first=None) == SYNTHETIC_DEVICE_ID + 10


def test_synthetic_numbers_never_meet_an_imei() -> None:
    biggest_imei = imei_number("9" * 15)
    assert biggest_imei is not None and biggest_imei < SYNTHETIC_DEVICE_ID
    assert SYNTHETIC_DEVICE_ID + 10**12 < 2**53  # exact in JavaScript too
    assert device_number({"imei": "1", "imei_first": True}, 1) == 1
    assert device_number({"imei": "1", "imei_first": False}, 1) == SYNTHETIC_DEVICE_ID + 1


def test_device_warnings_name_the_devices_with_synthetic_numbers() -> None:
    devices = [
        {"id": 1, "name": "a", "imei": "358741050302485", "imei_first": True},
        {"id": 2, "name": "b", "imei": "358741050302485", "imei_first": False},
        {"id": 3, "name": "c", "imei": None, "imei_first": True},
        {"id": 4, "name": "d", "imei": "X-4", "imei_first": True},
        {"id": 5, "name": "e", "imei": "1" * 16, "imei_first": True},
    ]
    lines = device_warnings(devices)
    assert lines == [
        "device 2 (b): another device with a lower id has the same IMEI; "
        "its device_id is 1000000000000002",
        "device 3 (c): no IMEI; its device_id is 1000000000000003",
        "device 4 (d): IMEI 'X-4' is not a number of at most 15 digits; "
        "its device_id is 1000000000000004",
        "device 5 (e): IMEI '1111111111111111' is not a number of at most 15 digits; "
        "its device_id is 1000000000000005",
    ]
    assert (
        StartrackJson1.device_warnings(devices) == lines == StartrackJson2.device_warnings(devices)
    )
    many = device_warnings([{"id": i, "name": f"n{i}", "imei": None} for i in range(1, 31)])
    assert len(many) == 21 and many[-1].startswith("and 10 more devices")
    assert device_warnings(devices[:1]) == []


def test_locations_accept_iso_text_times(make_location: MakeItem) -> None:
    item = make_location(
        fix_time="2016-09-08T17:42:14.999+00:00", server_time="2016-09-08T17:42:15.411Z"
    )
    got = json1_object(item)
    assert got["event_time"] == "2016-09-08T17:42:14+0"
    assert got["system_time"] == "2016-09-08T11:42:15.411-06:00"


@pytest.mark.parametrize(
    ("zone", "server_time", "expected"),
    [
        (
            "America/Guatemala",
            datetime(2016, 9, 8, 17, 42, 15, 411_000, tzinfo=UTC),
            "2016-09-08T11:42:15.411-06:00",
        ),
        (
            "America/New_York",
            datetime(2016, 7, 1, 12, 0, 0, 500_000, tzinfo=UTC),
            "2016-07-01T08:00:00.500-04:00",
        ),
        (
            "America/New_York",
            datetime(2016, 1, 15, 12, 0, 0, tzinfo=UTC),
            "2016-01-15T07:00:00.000-05:00",
        ),
        (
            "Asia/Kolkata",
            datetime(2016, 1, 15, 12, 0, 0, 1_999, tzinfo=UTC),
            "2016-01-15T17:30:00.001+05:30",
        ),
        ("UTC", datetime(2016, 1, 15, 12, 0, 0, tzinfo=UTC), "2016-01-15T12:00:00.000+00:00"),
    ],
)
def test_system_time_is_in_the_clients_zone(
    make_location: MakeItem, zone: str, server_time: datetime, expected: str
) -> None:
    item = make_location(server_time=server_time, client={"timezone": zone})
    assert json1_object(item)["system_time"] == expected
    assert json2_object(item)["system_time"] == expected


def test_event_time_is_utc_whatever_the_clients_zone(make_location: MakeItem) -> None:
    item = make_location(client={"timezone": "Asia/Tokyo"})
    assert json1_object(item)["event_time"] == "2016-09-08T17:42:14+0"


def test_an_unknown_zone_falls_back_to_utc(make_location: MakeItem) -> None:
    item = make_location(client={"timezone": "Mars/Olympus_Mons"})
    assert json1_object(item)["system_time"] == "2016-09-08T17:42:15.411+00:00"


# -- JSON 2 ----------------------------------------------------------------------------------
def test_json2_reproduces_the_doc_example_field_by_field(make_location: MakeItem) -> None:
    body = StartrackJson2().encode([json2_example_item(make_location)])
    got = orjson.loads(body)
    assert got[0] == 1 and len(got) == 2
    (obj,) = got[1]
    (expected_obj,) = DOC_JSON2[1]
    for key, expected in expected_obj.items():
        assert obj[key] == expected, key
        assert type(obj[key]) is type(expected), key
    assert list(obj) == list(expected_obj)
    assert got == DOC_JSON2


def test_json2_coordinates_are_integers_of_hundred_thousandths(make_location: MakeItem) -> None:
    got = json2_object(make_location())
    assert got["lon"] == -8554562 and got["lat"] == 1067338
    edge = json2_object(make_location(lat=-90.0, lon=180.0))
    assert edge["lat"] == -9000000 and edge["lon"] == 18000000
    tiny = json2_object(make_location(lat=0.000006, lon=-0.000006))
    assert tiny["lat"] == 1 and tiny["lon"] == -1


@pytest.mark.parametrize(
    ("kmh", "mph"),
    [(16.0, 10), (15.0, 9), (14.0, 9), (0.0, 0), (None, 0), (100.0, 62), (0.8, 0), (0.81, 1)],
)
def test_json2_speed_is_whole_miles_per_hour(
    make_location: MakeItem, kmh: float | None, mph: int
) -> None:
    # 16 km/h is 9.94 mph: 10 once rounded; the doc's 9 mph example is a slower event
    assert json2_object(make_location(speed_kmh=kmh))["mph"] == mph


def test_json2_batches_with_their_count(make_location: MakeItem) -> None:
    items = [make_location(device_id=i, device={"id": i}) for i in range(1, 4)]
    got = orjson.loads(StartrackJson2().encode(items))
    assert got[0] == 3 and [o["vid"] for o in got[1]] == [1, 2, 3]
    full = orjson.loads(StartrackJson2().encode([make_location()] * 1000))
    assert full[0] == 1000 == len(full[1])


def test_json2_declares_and_enforces_its_batch_size(make_location: MakeItem) -> None:
    assert StartrackJson2.kind == "startrack-json2"
    assert StartrackJson2.purpose == "locations"
    assert StartrackJson2.max_batch == 1000
    with pytest.raises(ValueError, match="1 to 1000"):
        StartrackJson2().encode([make_location()] * 1001)
    with pytest.raises(ValueError):
        StartrackJson2().encode([])


def test_json2_missing_values(make_location: MakeItem) -> None:
    item = make_location(
        source_ip=None, speed_kmh=None, device={"imei": "", "remote_id": "", "license_plate": None}
    )
    got = json2_object(item)
    assert got["ip"] == "" and got["mph"] == 0
    assert got["device_id"] == 10**15 + 324
    assert got["remote_id"] == "" and got["license_plate"] == ""


def test_round_int_rounds_halves_away_from_zero() -> None:
    assert [round_int(x) for x in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, -2.4999)] == [
        1,
        2,
        3,
        -1,
        -3,
        2,
        -2,
    ]


@pytest.mark.parametrize("format_class", [StartrackJson1, StartrackJson2])
def test_the_fields_a_format_names_are_all_it_reads(format_class: Any, make_location: Any) -> None:
    """The hub loads only ``fields`` (and the device and client) for these formats."""
    item = make_location()
    kept = {"id", "device_id", "device", "client", *format_class.fields}
    narrow = {k: v for k, v in item.items() if k in kept}
    assert format_class().encode([narrow]) == format_class().encode([item])
