"""The Alert Data Object against the examples of Startrack's documentation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest

from gpshub_startrack_relay import AlertOptions, StartrackAlert, alert_object

MakeItem = Callable[..., dict[str, Any]]
EXAMPLES: dict[str, Any] = orjson.loads(
    (Path(__file__).parent / "startrack_examples.json").read_bytes()
)
"""The examples of Startrack's webhook documentation."""
DOC_NOT_AT: dict[str, Any] = EXAMPLES["alert_isNotAt-dist"]
DOC_ENTERED: dict[str, Any] = EXAMPLES["alert_enteredPoi"]


def encode(item: dict[str, Any], **options: Any) -> dict[str, Any]:
    fmt = StartrackAlert(StartrackAlert.parse_options(options))
    return orjson.loads(fmt.encode([item]))


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    assert sorted(got) == sorted(expected)
    for key, value in expected.items():
        if key in ("lat", "lon"):  # the doc's second example shows "1.123"; we send 6 decimals
            assert isinstance(got[key], str) and float(got[key]) == float(value), key
        else:
            assert got[key] == value, key
            assert type(got[key]) is type(value), key


def test_not_at_example_field_by_field(make_alert_not_at: MakeItem) -> None:
    got = encode(make_alert_not_at(), odometer_text=True)
    assert_same(got, DOC_NOT_AT)
    assert got == DOC_NOT_AT  # 6 decimals as in this example: byte for byte the same values


def test_entered_example_field_by_field(make_alert_entered: MakeItem) -> None:
    got = encode(make_alert_entered())
    # the example lacks driver, which the doc's table says every alert has: we always send it
    assert_same(got, {**DOC_ENTERED, "driver": ""})
    assert got["lat"] == "1.123000"


def test_keys_are_sorted_as_in_the_examples(make_alert_entered: MakeItem) -> None:
    body = StartrackAlert().encode([make_alert_entered()])
    keys = list(orjson.loads(body))
    assert keys == sorted(keys) == sorted([*DOC_ENTERED, "driver"])
    assert [k for k in keys if k in DOC_ENTERED] == list(DOC_ENTERED)


def test_format_declares_one_alert_per_body(make_alert_entered: MakeItem) -> None:
    assert StartrackAlert.kind == "startrack-alert"
    assert StartrackAlert.purpose == "alerts"
    assert StartrackAlert.max_batch == 1
    with pytest.raises(ValueError):
        StartrackAlert().encode([make_alert_entered()] * 2)


def test_the_hubs_own_extras_are_left_out(make_alert_entered: MakeItem) -> None:
    item = make_alert_entered(
        messageId="sensor",
        sensor="fuel_level",
        value=0.1,
        op="<",
        threshold=0.2,
        speed=120.0,
        limit=90.0,
        clientId=4,
        event="a sensor compared to a value became true",
    )
    got = encode(item)
    for key in (
        "deviceId",
        "clientId",
        "client",
        "ruleName",
        "speed",
        "limit",
        "sensor",
        "value",
        "op",
        "threshold",
    ):
        assert key not in got, key
    assert got["event"] == "a sensor compared to a value became true"


def test_the_hubs_full_poi_alert(make_alert_not_at: MakeItem) -> None:
    # the hub gives an isNotAt-dist alert its POI's id, list, names and groups too
    item = make_alert_not_at(
        poiId=77,
        poiIds=[77],
        poiNames=["RefPoint1"],
        poiGroupIds=[3, 5],
        event="the device is farther than distance_m from a POI",
        vehicle_tags=["north", "cold chain"],
    )
    got = encode(item)
    assert got["poiId"] == 77 and got["poiIds"] == [77] and got["poiNames"] == ["RefPoint1"]
    assert got["poiGroupIds"] == [3, 5] and got["poiName"] == "RefPoint1"
    assert got["event"].startswith("the device is farther")
    assert got["vehicle_tags"] == ["north", "cold chain"]


def test_optional_fields_the_item_lacks_are_left_out(make_alert_entered: MakeItem) -> None:
    item = make_alert_entered(messageId="ignitionOn", vehicle_tags=[], poiId=None)
    for key in ("poiIds", "poiNames", "poiGroupIds"):
        del item[key]
    got = encode(item)
    assert set(got) == {
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
        "odometerUnits",
        "ignOnTime",
        "ruleOwner",
        "ruleOwnerId",
        "urId",
    }


def test_missing_values(make_alert_entered: MakeItem) -> None:
    item = make_alert_entered(
        driver=None, place=None, poiContact=None, ruleOwner=None, odometer=None, ignOnTime=None
    )
    got = encode(item)
    assert got["driver"] == got["place"] == got["poiContact"] == got["ruleOwner"] == ""
    assert got["odometer"] == 0 and got["odometerUnits"] == "km"
    assert got["ignOnTime"] == 0 and isinstance(got["ignOnTime"], int)


# -- options ---------------------------------------------------------------------------------
def test_date_in_seconds(make_alert_entered: MakeItem) -> None:
    got = encode(make_alert_entered(), date_unit="s")
    assert got["date"] == 1529009273


def test_start_date_in_the_same_unit(make_alert_entered: MakeItem) -> None:
    item = make_alert_entered(startDate="2018-06-14T20:00:00.250+00:00")
    start = datetime(2018, 6, 14, 20, 0, 0, 250_000, tzinfo=UTC)
    assert encode(item)["startDate"] == int(start.timestamp() * 1000) == 1529006400250
    assert encode(item, date_unit="s")["startDate"] == 1529006400


def test_dates_accept_datetimes_and_other_offsets(make_alert_entered: MakeItem) -> None:
    when = datetime(2018, 6, 14, 20, 47, 53, 541_000, tzinfo=UTC)
    assert encode(make_alert_entered(date=when))["date"] == 1529009273541
    assert encode(make_alert_entered(date="2018-06-14T14:47:53.541-06:00"))["date"] == 1529009273541


@pytest.mark.parametrize(
    ("km", "number", "text"),
    [
        (2001.0, 2001, "2001 km"),
        (2001.04, 2001, "2001 km"),
        (1231.14, 1231.1, "1231 km"),
        (1231.5, 1231.5, "1232 km"),
        (0.0, 0, "0 km"),
        (None, 0, "0 km"),
    ],
)
def test_odometer_as_number_or_text(
    make_alert_entered: MakeItem, km: float | None, number: float, text: str
) -> None:
    as_number = encode(make_alert_entered(odometer=km))
    assert as_number["odometer"] == number and type(as_number["odometer"]) is type(number)
    assert as_number["odometerUnits"] == "km"
    as_text = encode(make_alert_entered(odometer=km), odometer_text=True)
    assert as_text["odometer"] == text
    assert "odometerUnits" not in as_text


def test_hour_meter_is_a_number_of_hours(make_alert_entered: MakeItem) -> None:
    assert encode(make_alert_entered(ignOnTime=12.34567))["ignOnTime"] == 12.346
    assert encode(make_alert_entered(ignOnTime=3.0))["ignOnTime"] == 3


def test_coordinates_are_text_with_six_decimals(make_alert_entered: MakeItem) -> None:
    got = encode(make_alert_entered(lat=-0.1234567, lon=179.9999999))
    assert got["lat"] == "-0.123457" and got["lon"] == "180.000000"


def test_options_are_validated() -> None:
    assert StartrackAlert.parse_options(None) == AlertOptions()
    assert AlertOptions().date_unit == "ms" and AlertOptions().odometer_text is False
    with pytest.raises(pydantic.ValidationError):
        StartrackAlert.parse_options({"date_unit": "us"})
    with pytest.raises(pydantic.ValidationError):
        StartrackAlert.parse_options({"odometer_units": "mi"})  # unknown options are refused


def test_alert_object_defaults_to_the_default_options(make_alert_entered: MakeItem) -> None:
    assert alert_object(make_alert_entered()) == alert_object(
        make_alert_entered(), AlertOptions(date_unit="ms", odometer_text=False)
    )
