"""Parsing of 3D Tracking answers, and the envelope and error mapping of the client."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gpshub_tracking3d.client import Tracking3DClient, envelope
from gpshub_tracking3d.parse import (
    BadShape,
    ParseStats,
    parse_feed,
    parse_record,
    parse_unit,
    parse_units,
    plate_of,
    speed_kmh,
)
from hub.errors import CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.source import MemoryStateStore

RECORD: dict[str, Any] = {
    "Unit": {"Uid": "5CE7C3", "Name": "Truck 07", "Imei": "356307042441013"},
    "Latitude": 37.98381,
    "Longitude": 23.727539,
    "Address": "Ermou 12, Athina",
    "Speed": 40.0,
    "SpeedMeasure": "kph",
    "Heading": 370,
    "Ignition": "On",
    "Odometer": 152334.6,
    "EngineTime": 3600,
    "ServerTimeUTC": "2024-05-14T09:12:44",
    "GPSTimeUtc": "2024-05-14T09:12:41",
    "GPSTimeLocal": "2024-05-14T12:12:41",
    "PointOfInterest": {"Uid": "A1B2C3", "Name": "Depot"},
    "Driver": {"Uid": "D4E5F6", "FirstName": "Nikos"},
    "InputOutputs": [{"SystemName": "Input1", "Description": "Ignition", "Active": True}],
    "SensorReadings": [
        {"Name": "Satellites", "Value": "11", "SensorType": "Satellite Count"},
        {"Name": "Ext. power", "Value": "13.8", "SensorType": "External Battery"},
        {"Name": "Door", "Value": "Open", "SensorType": "Custom"},
    ],
}


def test_a_record_becomes_a_fix() -> None:
    position = parse_record(RECORD)
    assert position is not None and position.unit == "5CE7C3"
    fix = position.fix
    assert fix.fix_time == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)  # the Utc one, as UTC
    assert position.received == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC).timestamp()
    assert (fix.lat, fix.lon, fix.speed_kmh, fix.course_deg) == (37.98381, 23.727539, 40.0, 10.0)
    assert fix.ignition is True and fix.satellites == 11 and fix.altitude_m is None
    assert fix.sensors == {
        "external_battery": 13.8,  # keyed by its type, whatever the user named it
        "door": "Open",
        "input1": True,
        "platform_odometer_km": 152334.6,
        "platform_engine_hours": 1.0,
        "address": "Ermou 12, Athina",
        "point_of_interest": "Depot",
    }
    fix.validate()


@pytest.mark.parametrize(
    ("speed", "measure", "kmh"),
    [
        (10, "kph", 10.0),
        (10, "km/h", 10.0),
        (10, "MPH", 16.09344),
        (10, "knots", 18.52),
        (10, None, 10.0),
        (10, "furlongs/fortnight", None),
        (-1, "kph", None),
        ("12.5", "kph", 12.5),
    ],
)
def test_speed_follows_the_speed_measure(speed: Any, measure: Any, kmh: float | None) -> None:
    assert speed_kmh(speed, measure) == (None if kmh is None else pytest.approx(kmh))


@pytest.mark.parametrize(
    ("text", "value"), [("On", True), ("Off", False), ("", None), (None, None)]
)
def test_ignition_strings(text: Any, value: bool | None) -> None:
    position = parse_record({**RECORD, "Ignition": text})
    assert position is not None and position.fix.ignition is value


def test_gps_time_utc_spelling_and_offsets() -> None:
    record = {k: v for k, v in RECORD.items() if k != "GPSTimeUtc"}
    upper = parse_record({**record, "GPSTimeUTC": "2024-05-14T09:12:41.250"})
    assert upper is not None
    assert upper.fix.fix_time == datetime(2024, 5, 14, 9, 12, 41, 250_000, tzinfo=UTC)
    zoned = parse_record({**record, "GPSTimeUTC": "2024-05-14T12:12:41+03:00"})
    assert zoned is not None and zoned.fix.fix_time.hour == 9


def test_unusable_records_are_skipped_and_counted() -> None:
    stats = ParseStats()
    bad = [
        "text",
        {**RECORD, "Unit": None},
        {**RECORD, "GPSTimeUtc": "yesterday"},
        {**RECORD, "Latitude": None},
        {**RECORD, "Longitude": 200.0},
    ]
    page = parse_feed({"Position": [*bad, RECORD], "StartId": 7}, stats)
    assert len(page.positions) == 1 and page.size == 6 and page.start_id == 7
    assert stats.count == 5


def test_invalid_markers() -> None:
    flagged = parse_record({**RECORD, "Valid": False})
    null_island = parse_record({**RECORD, "Latitude": 0, "Longitude": 0})
    assert flagged is not None and flagged.fix.valid is False
    assert null_island is not None and null_island.fix.valid is False


def test_a_feed_of_the_wrong_shape_is_bad_shape() -> None:
    with pytest.raises(BadShape):
        parse_feed([RECORD])
    with pytest.raises(BadShape):
        parse_feed({"Position": {"a": 1}, "StartId": 1})
    assert parse_feed({"Position": None, "StartId": "12"}).start_id == 12


def test_units() -> None:
    unit = parse_unit(
        {"Uid": "5CE7C3", "Name": " Truck 07 ", "IMEI": 356307042441013, "Information": "ABC-1234"}
    )
    assert unit is not None
    assert (unit.upstream_id, unit.name, unit.imei, unit.license_plate) == (
        "5CE7C3",
        "Truck 07",
        "356307042441013",
        "ABC-1234",
    )
    assert parse_unit({"Name": "no uid"}) is None
    assert [u.upstream_id for u in parse_units([{"Uid": "A"}, {}, 3])] == ["A"]
    with pytest.raises(BadShape):
        parse_units({"Uid": "A"})


@pytest.mark.parametrize(
    ("text", "plate"),
    [("ABC-1234", "ABC-1234"), ("KHI 2045", "KHI 2045"), ("spare key", None), ("1234", None)],
)
def test_plate_heuristic(text: str, plate: str | None) -> None:
    assert plate_of(text) == plate


def test_envelopes() -> None:
    ok = envelope({"Status": {"Result": "OK", "ErrorCode": None, "Message": None}, "Result": []})
    assert ok.ok and ok.result == []
    flat = envelope({"Result": "Error", "ErrorCode": "50021", "Message": "Permission denied"})
    assert not flat.ok and flat.code == 50021
    with pytest.raises(UpdateFailed):
        envelope([1, 2])
    with pytest.raises(UpdateFailed):
        envelope({"Result": {"Position": []}})


def _client(handler: Any) -> Tracking3DClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return Tracking3DClient(
        http,
        "https://api.example.test/api/v1.0",
        "fleet",
        "pw-secret",
        state=MemoryStateStore(),
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


async def test_http_errors_are_mapped() -> None:
    def answer(status: int, **headers: str) -> Any:
        return lambda request: httpx.Response(status, headers=headers, text="x")

    with pytest.raises(RateLimited) as err:
        await _client(answer(429, **{"Retry-After": "12"})).login()
    assert err.value.retry_after == 12
    with pytest.raises(CannotConnect):
        await _client(answer(502)).login()
    with pytest.raises(UpdateFailed):
        await _client(answer(404)).login()
    with pytest.raises(UpdateFailed, match="broken JSON"):
        await _client(answer(200)).login()


async def test_a_refused_login_is_invalid_auth_without_the_password() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        return httpx.Response(
            200,
            json={
                "Status": {"Result": "Error", "ErrorCode": 1, "Message": "bad pw-secret"},
                "Result": None,
            },
        )

    with pytest.raises(InvalidAuth) as err:
        await _client(refuse).login()
    assert "pw-secret" not in str(err.value)
