"""The validators accept what the formats produce and catch broken payloads."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from gpshub_startrack_relay import StartrackAlert, StartrackJson1, StartrackJson2
from gpshub_startrack_relay.testing import (
    ALERT_FIELDS,
    ALERT_OPTIONAL_FIELDS,
    JSON1_FIELDS,
    JSON2_FIELDS,
    validate_alert,
    validate_json1,
    validate_json2,
)

MakeItem = Callable[..., dict[str, Any]]
EXAMPLES: dict[str, Any] = orjson.loads(
    (Path(__file__).parent / "startrack_examples.json").read_bytes()
)
"""The examples of Startrack's webhook documentation."""
DOC_JSON1: dict[str, Any] = EXAMPLES["json1"]
DOC_JSON2: list[Any] = EXAMPLES["json2"]
DOC_NOT_AT: dict[str, Any] = EXAMPLES["alert_isNotAt-dist"]
DOC_ENTERED: dict[str, Any] = EXAMPLES["alert_enteredPoi"]


# -- our output and the doc's examples are valid ------------------------------------------
def test_doc_examples_are_valid() -> None:
    assert validate_json1(DOC_JSON1) == []
    assert validate_json2(DOC_JSON2) == []
    assert validate_alert(DOC_NOT_AT) == []
    assert validate_alert({**DOC_ENTERED, "driver": ""}) == []


def test_the_second_alert_example_lacks_driver() -> None:
    assert validate_alert(DOC_ENTERED) == ["missing field 'driver'"]


def test_our_json1_is_valid(make_location: MakeItem) -> None:
    for item in (
        make_location(),
        make_location(speed_kmh=None, course_deg=None, source_ip=None, place=None),
        make_location(device={"imei": "X-1", "remote_id": None, "license_plate": None}),
        make_location(virtual_odometer_km=None, hours=None, client={"timezone": "Asia/Kolkata"}),
    ):
        assert validate_json1(orjson.loads(StartrackJson1().encode([item]))) == []


def test_our_json2_is_valid(make_location: MakeItem) -> None:
    items = [make_location(lat=-90.0, lon=-180.0), make_location(speed_kmh=None)]
    assert validate_json2(orjson.loads(StartrackJson2().encode(items))) == []


@pytest.mark.parametrize(
    "options",
    [{}, {"date_unit": "s"}, {"odometer_text": True}, {"date_unit": "s", "odometer_text": True}],
)
def test_our_alerts_are_valid(
    make_alert_not_at: MakeItem, make_alert_entered: MakeItem, options: dict[str, Any]
) -> None:
    fmt = StartrackAlert(StartrackAlert.parse_options(options))
    unit = options.get("date_unit", "ms")
    for item in (
        make_alert_not_at(),
        make_alert_entered(startDate="2018-06-14T20:00:00+00:00", event="entered"),
        make_alert_entered(odometer=None, ignOnTime=None, driver=None, vehicle_tags=[]),
    ):
        assert validate_alert(orjson.loads(fmt.encode([item])), date_unit=unit) == []


# -- broken payloads are caught ------------------------------------------------------------
def broken(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    obj = copy.deepcopy(base)
    for key, value in changes.items():
        if value is DROP:
            del obj[key]
        else:
            obj[key] = value
    return obj


DROP = object()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"vid": DROP}, "missing field 'vid'"),
        ({"speed": 3}, "unknown field 'speed'"),
        ({"vid": 324.0}, "vid must be an integer, not a float (324.0)"),
        ({"kmph": 16.2}, "kmph must be an integer"),
        ({"code": True}, "code must be an integer, not a boolean"),
        ({"head": 360}, "head must be within [0, 359]"),
        ({"port": "5027"}, "port must be an integer, not text"),
        ({"lat": 1067338}, "lat must be a float, not an integer"),
        ({"lon": -185.0}, "lon must be within"),
        ({"valid_position": 1}, "valid_position must be true or false"),
        (
            {"event_time": "2016-09-08T17:42:14Z"},
            "event_time '2016-09-08T17:42:14Z' does not match",
        ),
        ({"event_time": "2016-09-08T17:42:14.000+0"}, "event_time"),
        ({"event_time": "2016-13-08T17:42:14+0"}, "is not a date"),
        ({"system_time": "2016-09-08T11:42:15-06:00"}, "system_time"),
        ({"system_time": "2016-09-08T11:42:15.411"}, "system_time"),
        ({"system_time": "2016-09-08T11:42:15.411-0600"}, "system_time"),
        ({"device_id": 35874105.5}, "device_id"),
        ({"remote_id": 5}, "remote_id must be text"),
        ({"remote_id": None}, "remote_id must be text, not null"),
        ({"license_plate": None}, "license_plate must be text, not null"),
        ({"ip": None}, "ip must be text, not null"),
        ({"ip": "216.58.192"}, "'216.58.192' is not an IP address"),
        ({"ip": ""}, None),  # unknown
        ({"ip": "2001:db8::7"}, None),
        ({"device_id": None}, "device_id must be an integer, not null"),
        ({"device_id": "X9"}, "device_id must be an integer, not text"),
        ({"device_id": 2**53}, "device_id must be within"),
        ({"remote_id": "", "license_plate": ""}, None),
        ({"placename": None}, "placename must be text, not null"),
        ({"poi_ids": [1, "2"]}, "poi_ids [1] must be an integer"),
        ({"poi_group_ids": None}, "poi_group_ids must be a list"),
        ({"odometer": "1231.1"}, "odometer must be a number"),
        ({"sys_hourmeter": None}, "sys_hourmeter must be a number, not null"),
        ({"route_id": "r1"}, "route_id must be an integer"),
    ],
)
def test_json1_problems(changes: dict[str, Any], problem: str | None) -> None:
    problems = validate_json1(broken(DOC_JSON1, **changes))
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0], problems


def test_null_is_refused_in_every_typed_field() -> None:
    """Only JSON 1's ``route_id`` may be null (it is in Startrack's example)."""
    (obj,) = DOC_JSON2[1]
    full_alert = {**DOC_NOT_AT, **{k: v for k, v in DOC_ENTERED.items() if k not in DOC_NOT_AT}}
    full_alert.update(event="e", poiId=1, startDate=DOC_NOT_AT["date"], odometer=2001)
    assert set(full_alert) == {*ALERT_FIELDS, *ALERT_OPTIONAL_FIELDS}
    cases = [
        (DOC_JSON1, validate_json1, lambda o: o),
        (obj, validate_json2, lambda o: [1, [o]]),
        (full_alert, validate_alert, lambda o: o),
    ]
    for base, validate, wrap in cases:
        assert validate(wrap(base)) == []
        for key in base:
            problems = validate(wrap(broken(base, **{key: None})))
            if key == "route_id":
                assert problems == []
            else:
                assert any(key in p and "null" in p for p in problems), (key, problems)


def test_json1_must_be_an_object() -> None:
    assert validate_json1(DOC_JSON2) == ["must be an object, not a list"]


def test_json2_problems() -> None:
    (obj,) = DOC_JSON2[1]
    assert validate_json2([2, [obj]]) == ["[0] n is 2 but the list holds 1 objects"]
    assert validate_json2(["1", [obj]]) == ["[0] n must be an integer, not text ('1')"]
    assert validate_json2([0, []]) == ["[1] the list of objects is empty"]
    assert validate_json2([obj]) == ["must be a list [n, [objects]], not a list"]
    assert validate_json2(obj) == ["must be a list [n, [objects]], not an object"]
    assert validate_json2([1, obj]) == ["[1] must be the list of objects, not an object"]
    assert validate_json2([1, [broken(obj, lat=10.67338)]]) == [
        "[1][0]: lat must be an integer, not a float (10.67338)"
    ]
    assert validate_json2([1, [broken(obj, lon=-18000001)]])[0].startswith(
        "[1][0]: lon must be within"
    )
    assert validate_json2([1, [broken(obj, mph=DROP, kmph=16)]]) == [
        "[1][0]: missing field 'mph'",
        "[1][0]: unknown field 'kmph'",
    ]
    assert validate_json2([2, [obj, broken(obj, port=-1)]]) == ["[1][1]: unknown field 'port'"]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"urId": DROP}, "missing field 'urId'"),
        ({"deviceId": 7}, "unknown field 'deviceId'"),
        ({"ruleName": "x"}, "unknown field 'ruleName'"),
        ({"eventId": "512"}, "eventId must be an integer"),
        ({"ruleOwnerId": 1.0}, "ruleOwnerId must be an integer, not a float"),
        ({"date": 1528996543}, "is not a time in ms"),
        ({"date": 1528996543494.0}, "date must be an integer"),
        ({"date": "2018-06-14T17:15:43Z"}, "date must be an integer"),
        ({"lat": 15.280898}, "lat must be text"),
        ({"lat": "15,280898"}, "lat '15,280898' does not match"),
        ({"lon": "-191.797898"}, "lon must be within"),
        ({"odometer": "0 miles"}, "odometer must be a number"),
        ({"odometer": 0}, "odometerUnits is missing for a numeric odometer"),
        ({"odometerUnits": "km"}, "odometerUnits is given with a text odometer"),
        ({"ignOnTime": "0"}, "ignOnTime must be a number"),
        ({"driver": None}, "driver must be text, not null"),
        ({"poiIds": [1.5]}, "poiIds [0] must be an integer"),
        ({"metersFromPoi": "157041"}, "metersFromPoi must be a number"),
        ({"vehicle_tags": "a"}, "vehicle_tags must be a list"),
        ({"startDate": 1528996543}, "startDate 1528996543 is not a time in ms"),
    ],
)
def test_alert_problems(changes: dict[str, Any], problem: str) -> None:
    problems = validate_alert(broken(DOC_NOT_AT, **changes))
    assert len(problems) == 1 and problem in problems[0], problems


def test_alert_dates_in_seconds_when_told() -> None:
    in_seconds = broken(DOC_NOT_AT, date=1528996543)
    assert validate_alert(in_seconds, date_unit="s") == []
    assert validate_alert(DOC_NOT_AT, date_unit="s") == [
        "date 1528996543494 is not a time in s since 1970"
    ]


def test_field_tables_follow_the_doc() -> None:
    assert list(JSON1_FIELDS) == list(DOC_JSON1)
    assert list(JSON2_FIELDS) == list(DOC_JSON2[1][0])
    assert set(ALERT_FIELDS) == {
        "eventId",
        "messageId",
        "vehicle",
        "date",
        "place",
        "lat",
        "lon",
        "poiContact",
        "driver",
        "odometer",
        "ignOnTime",
        "ruleOwner",
        "ruleOwnerId",
        "urId",
    }
