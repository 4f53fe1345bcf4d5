"""flespi JSON to fixes and devices, record by record; and the client's error mapping
(``httpx.MockTransport``: no server needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gpshub_flespi.client import DevicesNotFound, FlespiClient
from gpshub_flespi.messages import parse_device, parse_message, parse_telemetry
from hub.clock import Clock
from hub.errors import CannotConnect, InvalidAuth, RateLimited, UpdateFailed

# flespi's knowledge-base example message, with timestamps.
KB_MESSAGE: dict[str, Any] = {
    "battery.voltage": 3.938,
    "channel.id": 429,
    "device.id": 182083,
    "device.name": "Vehicle",
    "device.type.id": 744,
    "engine.ignition.status": False,
    "event.priority.enum": 0,
    "external.powersource.voltage": 12.64,
    "gnss.state.enum": 1,
    "gnss.status": True,
    "gsm.cellid": 11511,
    "gsm.lac": 108,
    "gsm.mcc": 257,
    "gsm.mnc": 1,
    "gsm.operator.code": "25701",
    "gsm.signal.level": 80,
    "ident": "111115555599999",
    "movement.status": False,
    "peer": "",
    "position.altitude": 244,
    "position.direction": 281,
    "position.hdop": 0.3,
    "position.latitude": 43.955218,
    "position.longitude": 37.661918,
    "position.satellites": 15,
    "position.speed": 0,
    "position.valid": True,
    "protocol.id": 14,
    "server.timestamp": 1715670012.482311,
    "timestamp": 1715670010,
}


def test_the_knowledge_base_message() -> None:
    message = parse_message(KB_MESSAGE)
    assert message is not None
    assert message.device_id == "182083"
    assert message.received == 1715670012.482311
    fix = message.fix
    assert fix.fix_time == datetime(2024, 5, 14, 7, 0, 10, tzinfo=UTC)
    assert (fix.lat, fix.lon, fix.altitude_m) == (43.955218, 37.661918, 244)
    assert (fix.speed_kmh, fix.course_deg, fix.satellites, fix.valid) == (0, 281, 15, True)
    assert fix.ignition is False
    assert fix.sensors == {
        "battery.voltage": 3.938,
        "event.priority.enum": 0,
        "external.powersource.voltage": 12.64,
        "gnss.state.enum": 1,
        "gnss.status": True,
        "gsm.cellid": 11511,
        "gsm.lac": 108,
        "gsm.mcc": 257,
        "gsm.mnc": 1,
        "gsm.operator.code": "25701",
        "gsm.signal.level": 80,
        "movement.status": False,
        "position.hdop": 0.3,
    }
    fix.validate()


def test_float_timestamps_keep_microseconds() -> None:
    message = parse_message({**KB_MESSAGE, "timestamp": 1715670010.123456})
    assert message is not None
    assert message.fix.fix_time == datetime(2024, 5, 14, 7, 0, 10, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "change",
    [
        {"timestamp": None},
        {"timestamp": "1715670010"},
        {"timestamp": True},
        {"device.id": None},
        {"device.id": "abc"},
        {"position.latitude": None},
        {"position.latitude": 90.5},
        {"position.longitude": -180.01},
        {"position.longitude": "37.6"},
        {"position.latitude": float("nan")},
    ],
)
def test_records_that_are_not_fixes(change: dict[str, Any]) -> None:
    record = {**KB_MESSAGE}
    for key, value in change.items():
        if value is None:
            record.pop(key)
        else:
            record[key] = value
    assert parse_message(record) is None


@pytest.mark.parametrize("record", [None, [], "text", 3, {}])
def test_garbage_is_not_a_fix(record: Any) -> None:
    assert parse_message(record) is None


def test_bad_optional_fields_are_left_out() -> None:
    message = parse_message(
        {
            **KB_MESSAGE,
            "position.speed": -3,
            "position.direction": 370,
            "position.satellites": "many",
            "position.altitude": "high",
            "position.valid": 0,
            "engine.ignition.status": 1,
        }
    )
    assert message is not None
    fix = message.fix
    assert fix.speed_kmh is None
    assert fix.course_deg == pytest.approx(10)
    assert fix.satellites is None and fix.altitude_m is None
    assert fix.valid is False
    assert fix.ignition is True
    fix.validate()


def test_odometer_and_engine_hours() -> None:
    can_only = parse_message({**KB_MESSAGE, "can.vehicle.mileage": 9.5, "can.engine.motorhours": 2})
    assert can_only is not None
    assert can_only.fix.sensors["platform_odometer_km"] == 9.5
    assert can_only.fix.sensors["platform_engine_hours"] == 2
    both = parse_message({**KB_MESSAGE, "vehicle.mileage": 10.0, "can.vehicle.mileage": 9.5})
    assert both is not None
    assert both.fix.sensors["platform_odometer_km"] == 10.0
    trip = parse_message({**KB_MESSAGE, "trip.mileage": 3.0, "vehicle.mileage": "n/a"})
    assert trip is not None
    assert "platform_odometer_km" not in trip.fix.sensors  # a trip distance is not an odometer
    assert trip.fix.sensors["vehicle.mileage"] == "n/a"


TELEMETRY: dict[str, Any] = {
    "id": 1234567,
    "telemetry": {
        "position.latitude": {"value": 43.955218, "ts": 1715670010},
        "position.longitude": {"value": 37.661918, "ts": 1715670010},
        "position.speed": {"value": 0, "ts": 1715670010},
        "position.valid": {"value": True, "ts": 1715670010},
        "engine.ignition.status": {"value": False, "ts": 1715669000},
        "battery.voltage": {"value": 3.938, "ts": 1715670010},
        "position": {
            "value": {"latitude": 43.955218, "longitude": 37.661918, "altitude": 244},
            "ts": 1715670010,
        },
        "timestamp": {"value": 1715670010, "ts": 1715670010},
        "server.timestamp": {"value": 1715670012.482311, "ts": 1715670012.48},
    },
}


def test_telemetry_position() -> None:
    parsed = parse_telemetry(TELEMETRY)
    assert parsed is not None
    device_id, fix, ts = parsed
    assert (device_id, ts) == ("1234567", 1715670010)
    assert fix.fix_time == datetime(2024, 5, 14, 7, 0, 10, tzinfo=UTC)
    assert (fix.lat, fix.lon, fix.speed_kmh, fix.valid) == (43.955218, 37.661918, 0, True)
    assert fix.ignition is None  # reported at another time: not this position's
    assert fix.sensors == {"battery.voltage": 3.938}


@pytest.mark.parametrize(
    "item",
    [
        None,
        {"id": 1},
        {"id": 1, "telemetry": None},
        {"id": 1, "telemetry": {}},
        {"id": 1, "telemetry": {"position.latitude": {"value": 1.0}}},
        {"id": 1, "telemetry": {"position.latitude": {"value": 1.0, "ts": 5}}},
        {"telemetry": TELEMETRY["telemetry"]},
    ],
)
def test_telemetry_without_a_position(item: Any) -> None:
    assert parse_telemetry(item) is None


def test_device_items() -> None:
    device = parse_device(
        {
            "id": 1234567,
            "name": "Truck 07",
            "cid": 123456,
            "device_type_id": 744,
            "configuration": {"ident": "356307042441013", "settings_polling": "once"},
            "metadata": {"plate": "ABC-1234"},
            "connected": True,
        }
    )
    assert device is not None
    assert (device.upstream_id, device.name, device.imei, device.license_plate) == (
        "1234567",
        "Truck 07",
        "356307042441013",
        "ABC-1234",
    )
    assert device.extra == {"device_type_id": 744, "connected": True}
    bare = parse_device({"id": 5, "configuration": None, "metadata": {"plate": ""}})
    assert bare is not None
    assert (bare.name, bare.imei, bare.license_plate) == ("flespi device 5", None, None)
    assert parse_device({"name": "no id"}) is None
    assert parse_device("x") is None


# -- the client's error mapping ---------------------------------------------------------


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now


NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def answer_with(
    response: httpx.Response | Exception, clock: Clock | None = None
) -> FlespiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(response, Exception):
            raise response
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return FlespiClient(http, "tok", base_url="https://flespi.example", clock=clock)


async def test_401_and_403_are_invalid_auth() -> None:
    client = await answer_with(httpx.Response(401, json={"errors": [{"reason": "bad"}]}))
    with pytest.raises(InvalidAuth, match="401"):
        await client.devices()
    client = await answer_with(httpx.Response(403, json={"errors": [{"reason": "acl"}]}))
    with pytest.raises(InvalidAuth, match="gw/devices"):
        await client.devices()


async def test_retry_after_as_seconds_or_a_date() -> None:
    client = await answer_with(httpx.Response(429, headers={"Retry-After": "17"}))
    with pytest.raises(RateLimited) as err:
        await client.devices()
    assert err.value.retry_after == 17
    when = (NOW + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    client = await answer_with(
        httpx.Response(429, headers={"Retry-After": when}), clock=FixedClock(NOW)
    )
    with pytest.raises(RateLimited) as err:
        await client.devices()
    assert err.value.retry_after == 90
    client = await answer_with(httpx.Response(429, headers={"Retry-After": "soon"}))
    with pytest.raises(RateLimited) as err:
        await client.devices()
    assert err.value.retry_after is None


async def test_transport_failures_are_cannot_connect() -> None:
    for exc in (
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        httpx.RemoteProtocolError("x"),
    ):
        client = await answer_with(exc)
        with pytest.raises(CannotConnect):
            await client.devices()


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(200, content=b"<html>"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "not JSON"),
        (httpx.Response(200, json={"results": []}), "no 'result'"),
        (httpx.Response(200, json={"result": {"id": 1}}), "no 'result'"),
        (httpx.Response(200, json={"errors": [{"reason": "boom"}]}), "boom"),
        (httpx.Response(400, json={"errors": [{"code": 2, "reason": "bad key"}]}), "bad key"),
        (httpx.Response(418, content=b""), "418"),
    ],
)
async def test_unusable_answers_are_update_failed(response: httpx.Response, match: str) -> None:
    client = await answer_with(response)
    with pytest.raises(UpdateFailed, match=match):
        await client.devices()


async def test_404_names_the_devices() -> None:
    body = {"errors": [{"id": 7, "code": 7, "reason": "not found"}, {"reason": "no id"}]}
    client = await answer_with(httpx.Response(404, json=body))
    with pytest.raises(DevicesNotFound) as err:
        await client.messages(["7", "8"], {"from": 0})
    assert err.value.ids == {"7"}


async def test_partial_errors_are_reported_next_to_the_result() -> None:
    body = {"result": [{"id": 8}], "errors": [{"id": 7, "reason": "not found"}]}
    client = await answer_with(httpx.Response(200, json=body))
    answer = await client.messages(["7", "8"], {"from": 0})
    assert answer.result == [{"id": 8}]
    assert answer.failed == {"7": "not found"}
