"""Traccar JSON to fixes and devices, and the client's mapping of answers to errors."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gpshub_traccar.client import TraccarClient, TraccarRequestError, wire_time
from gpshub_traccar.parse import (
    BadShape,
    ParseStats,
    parse_device,
    parse_devices,
    parse_position,
    parse_positions,
    parse_time,
    plate_of,
)
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed

# The position example of the reference (Traccar's openapi Position, a Teltonika device).
EXAMPLE: dict[str, Any] = {
    "id": 98321,
    "attributes": {
        "priority": 0,
        "sat": 11,
        "event": 0,
        "ignition": True,
        "motion": True,
        "rssi": 4,
        "io200": 0,
        "power": 13.8,
        "battery": 4.1,
        "batteryLevel": 87,
        "distance": 42.17,
        "totalDistance": 1523344.6,
        "hours": 3600000,
    },
    "deviceId": 12,
    "protocol": "teltonika",
    "serverTime": "2024-05-14T09:12:44.512+00:00",
    "deviceTime": "2024-05-14T09:12:41.000+00:00",
    "fixTime": "2024-05-14T09:12:41.000+00:00",
    "valid": True,
    "latitude": 37.98381,
    "longitude": 23.727539,
    "altitude": 112.0,
    "speed": 21.59,
    "course": 270.0,
    "address": None,
    "accuracy": 0.0,
    "network": None,
    "geofenceIds": None,
}


def record(**changes: Any) -> dict[str, Any]:
    out = {**EXAMPLE, "attributes": dict(EXAMPLE["attributes"])}
    attributes = changes.pop("attributes", None)
    if attributes is not None:
        out["attributes"] = attributes
    out.update(changes)
    return out


def test_the_reference_example_maps_field_by_field() -> None:
    position = parse_position(EXAMPLE)
    assert position is not None
    fix = position.fix
    fix.validate()
    assert position.device_id == 12
    assert position.received == datetime(2024, 5, 14, 9, 12, 44, 512000, tzinfo=UTC).timestamp()
    assert fix.fix_time == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert (fix.lat, fix.lon, fix.altitude_m) == (37.98381, 23.727539, 112.0)
    assert fix.speed_kmh == pytest.approx(21.59 * 1.852)  # knots
    assert fix.course_deg == 270.0
    assert fix.satellites == 11
    assert fix.ignition is True
    assert fix.valid is True
    assert fix.accuracy_m is None  # 0 means unknown
    assert fix.sensors == {
        "priority": 0,
        "event": 0,
        "motion": True,
        "rssi": 4,
        "io200": 0,
        "power": 13.8,
        "battery": 4.1,
        "batteryLevel": 87,
        "distance": 42.17,  # metres since the previous fix: a sensor, not an odometer
        "totalDistance": 1523344.6,
        "hours": 3600000,
        "platform_odometer_km": pytest.approx(1523.3446),
        "platform_engine_hours": 1.0,
    }


def test_odometer_wins_over_total_distance_and_distance_is_never_an_odometer() -> None:
    both = parse_position(record(attributes={"odometer": 250000, "totalDistance": 9e6}))
    assert both is not None and both.fix.sensors["platform_odometer_km"] == 250.0
    only_distance = parse_position(record(attributes={"distance": 42.0}))
    assert only_distance is not None
    assert only_distance.fix.sensors == {"distance": 42.0}
    assert "platform_odometer_km" not in only_distance.fix.sensors


def test_invalid_fixes_are_kept_as_invalid() -> None:
    position = parse_position(record(valid=False, latitude=0.0, longitude=0.0))
    assert position is not None and position.fix.valid is False


def test_accuracy_course_and_speed_edges() -> None:
    position = parse_position(record(accuracy=7.5, course=-90.0, speed=-1.0))
    assert position is not None
    assert position.fix.accuracy_m == 7.5
    assert position.fix.course_deg == 270.0
    assert position.fix.speed_kmh is None
    wrapped = parse_position(record(course=720.5))
    assert wrapped is not None and wrapped.fix.course_deg == pytest.approx(0.5)


def test_times_with_any_offset_become_utc() -> None:
    assert parse_time("2024-05-14T12:12:41.250+03:00") == datetime(
        2024, 5, 14, 9, 12, 41, 250000, tzinfo=UTC
    )
    assert parse_time("2024-05-14T09:12:41Z") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert parse_time("2024-05-14T09:12:41") == datetime(2024, 5, 14, 9, 12, 41, tzinfo=UTC)
    assert parse_time("yesterday") is None
    assert parse_time(1715677961) is None


def test_attributes_become_sensors_verbatim_flattened_and_typed() -> None:
    position = parse_position(
        record(
            attributes={
                "ignition": "false",
                "sat": 7.0,
                "io239": 1,
                "driverUniqueId": "D-17",
                "alarm": "sos",
                "fuel": float("nan"),
                "geofences": [1, 2],
                "adc": {"1": 12.4, "2": None},
                "note": None,
            }
        )
    )
    assert position is not None
    fix = position.fix
    assert (fix.ignition, fix.satellites) == (False, 7)
    assert fix.sensors == {"io239": 1, "driverUniqueId": "D-17", "alarm": "sos", "adc.1": 12.4}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"latitude": None}, "no coordinates"),
        ({"longitude": "23.7"}, "no coordinates"),
        ({"latitude": 91.0}, "no coordinates"),
        ({"longitude": -180.5}, "no coordinates"),
        ({"fixTime": "not a time"}, "no fixTime"),
        ({"fixTime": None}, "no fixTime"),
        ({"deviceId": "12"}, "no deviceId"),
        ({"deviceId": True}, "no deviceId"),
    ],
)
def test_unusable_records_are_skipped_and_counted(changes: dict[str, Any], reason: str) -> None:
    stats = ParseStats()
    assert parse_position(record(**changes), stats) is None
    assert stats.skipped == {reason: 1}


def test_a_bad_record_does_not_spoil_the_answer() -> None:
    stats = ParseStats()
    body = [EXAMPLE, "garbage", record(latitude=None), record(id=2, fixTime="2024-05-14T09:13:41Z")]
    positions = parse_positions(body, stats)
    assert [p.fix.fix_time.minute for p in positions] == [12, 13]
    assert stats.count == 2


def test_missing_attributes_and_valid_are_tolerated() -> None:
    bare = {"deviceId": 3, "fixTime": "2024-05-14T09:12:41Z", "latitude": 1.0, "longitude": 2.0}
    position = parse_position(bare)
    assert position is not None
    assert position.received is None
    assert position.fix.valid is True
    assert position.fix.sensors == {}
    assert (position.fix.speed_kmh, position.fix.satellites, position.fix.ignition) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("body", [{"positions": []}, "[]", None, 5])
def test_a_body_that_is_not_a_list_is_refused(body: Any) -> None:
    with pytest.raises(BadShape):
        parse_positions(body)
    with pytest.raises(BadShape):
        parse_devices(body)


def test_devices_with_plates_from_attributes() -> None:
    device = parse_device(
        {
            "id": 12,
            "attributes": {"speedLimit": 48.6, "licensePlate": " KHI-2045 "},
            "name": "Van 12",
            "uniqueId": "860123456789012",
            "status": "online",
            "lastUpdate": "2024-05-14T09:12:44.512+00:00",
            "model": "FMB920",
            "category": "van",
            "contact": "",
            "phone": None,
            "disabled": False,
        }
    )
    assert device is not None
    assert (device.id, device.unique_id) == (12, "860123456789012")
    remote = device.remote
    assert (remote.upstream_id, remote.name, remote.imei, remote.license_plate) == (
        "12",
        "Van 12",
        "860123456789012",
        "KHI-2045",
    )
    assert remote.extra == {
        "model": "FMB920",
        "category": "van",
        "status": "online",
        "lastUpdate": "2024-05-14T09:12:44.512+00:00",
        "disabled": False,
    }


@pytest.mark.parametrize(
    ("attributes", "plate"),
    [
        ({"plate": "AB-123"}, "AB-123"),
        ({"Registration": "XYZ 9"}, "XYZ 9"),
        ({"license_plate": "L-1"}, "L-1"),
        ({"licence-plate": "L-2"}, "L-2"),
        ({"plate": "  "}, None),
        ({"plate": True}, None),
        ({"color": "red"}, None),
        (None, None),
    ],
)
def test_plate_keys(attributes: Any, plate: str | None) -> None:
    assert plate_of(attributes) == plate


def test_devices_without_an_id_are_skipped_and_names_default() -> None:
    devices = parse_devices([{"name": "ghost"}, {"id": 4, "uniqueId": "", "name": " "}])
    assert len(devices) == 1
    assert devices[0].remote.name == "Traccar 4"
    assert devices[0].remote.imei is None


# -- the client's error mapping (httpx.MockTransport) ---------------------------------------

SECRET = "s3cr3t-pa55"


def client_for(handler: Any) -> TraccarClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return TraccarClient(
        http,
        "https://traccar.example.com/",
        "fleet@example.com",
        SECRET,
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
    )


def answer(status: int, body: bytes = b"", **headers: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body, headers=headers)

    return handler


async def test_requests_carry_basic_auth_and_accept_json_and_no_secret_in_the_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[])

    client = client_for(handler)
    start = datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert await client.route([3, 4], start, start + timedelta(minutes=5)) == []
    (request,) = seen
    expected = base64.b64encode(f"fleet@example.com:{SECRET}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    assert request.headers["accept"] == "application/json"
    assert SECRET not in str(request.url)
    assert request.url.path == "/api/reports/route"
    assert request.url.params.get_list("deviceId") == ["3", "4"]
    assert request.url.params["from"] == "2026-01-01T08:00:00.123Z"
    assert request.url.params["to"] == "2026-01-01T08:05:00.123Z"


async def test_server_info_goes_without_credentials() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"version": "6.6"})

    assert await client_for(handler).server() == {"version": "6.6"}
    assert "authorization" not in seen[0].headers


def test_a_server_url_ending_in_api_is_accepted() -> None:
    http = httpx.AsyncClient()
    client = TraccarClient(http, "https://t.example.com/api/", "u", "p")
    assert client.base == "https://t.example.com"
    assert client.host == "t.example.com"


async def test_401_is_invalid_auth_without_the_secret() -> None:
    with pytest.raises(InvalidAuth) as err:
        await client_for(answer(401)).devices()
    assert SECRET not in str(err.value)


async def test_400_carries_the_first_line_of_the_stack_trace() -> None:
    trace = (
        b"java.lang.SecurityException: Operation restricted\n"
        b"\tat org.traccar.api.security.PermissionsService.checkRestriction(...)\n"
    )
    with pytest.raises(TraccarRequestError) as err:
        await client_for(answer(400, trace, **{"content-type": "text/plain"})).devices()
    assert err.value.first_line == "java.lang.SecurityException: Operation restricted"
    assert err.value.reports_disabled and not err.value.access_denied
    assert isinstance(err.value, UpdateFailed)
    assert "Operation restricted" in str(err.value)
    assert "PermissionsService" not in str(err.value)


@pytest.mark.parametrize(
    ("line", "flag"),
    [
        ("java.lang.SecurityException: Device access denied", "access_denied"),
        ("java.lang.IllegalArgumentException: Time period exceeds the limit", "period_too_long"),
    ],
)
async def test_400_kinds(line: str, flag: str) -> None:
    with pytest.raises(TraccarRequestError) as err:
        await client_for(answer(400, line.encode())).devices()
    assert getattr(err.value, flag)


async def test_404_and_other_statuses_are_update_failed() -> None:
    with pytest.raises(UpdateFailed, match="404"):
        await client_for(answer(404)).devices()
    with pytest.raises(UpdateFailed, match="HTTP 403"):
        await client_for(answer(403, b"forbidden")).devices()


async def test_429_is_rate_limited_with_retry_after() -> None:
    with pytest.raises(RateLimited) as err:
        await client_for(answer(429, **{"retry-after": "42"})).devices()
    assert err.value.retry_after == 42.0
    with pytest.raises(RateLimited) as dated:
        await client_for(answer(429, **{"retry-after": "Thu, 01 Jan 2026 00:02:00 GMT"})).devices()
    assert dated.value.retry_after == 120.0
    with pytest.raises(RateLimited) as bare:
        await client_for(answer(429)).devices()
    assert bare.value.retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_5xx_is_cannot_connect(status: int) -> None:
    with pytest.raises(CannotConnect, match=str(status)):
        await client_for(answer(status, b"<html>down</html>")).devices()


async def test_non_json_answers_are_update_failed() -> None:
    page = answer(200, b"<html><body>Sign in</body></html>", **{"content-type": "text/html"})
    with pytest.raises(UpdateFailed, match="instead of JSON"):
        await client_for(page).devices()
    broken = answer(200, b'[{"id": 1,', **{"content-type": "application/json"})
    with pytest.raises(UpdateFailed, match="broken JSON"):
        await client_for(broken).devices()


async def test_a_redirect_is_a_configuration_problem() -> None:
    moved = answer(301, location="https://new.example.com/api/devices")
    with pytest.raises(BadConfig) as err:
        await client_for(moved).devices()
    assert err.value.field == "credentials.server_url"
    assert "https://new.example.com" in err.value.reason


async def test_transport_failures_are_cannot_connect() -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(CannotConnect, match="cannot reach"):
        await client_for(refused).devices()
    with pytest.raises(CannotConnect, match="did not answer in time"):
        await client_for(slow).devices()


async def test_an_unreadable_answer_is_update_failed() -> None:
    def garbled(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("bad gzip", request=request)

    with pytest.raises(UpdateFailed, match="DecodingError"):
        await client_for(garbled).devices()


def test_wire_time_is_utc_with_milliseconds() -> None:
    t = datetime(2026, 1, 1, 10, 0, 0, 999999, tzinfo=UTC).astimezone()
    assert wire_time(t) == "2026-01-01T10:00:00.999Z"
