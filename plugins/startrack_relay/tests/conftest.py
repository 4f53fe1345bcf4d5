"""Items shaped as the hub's delivery worker builds them (see ``hub.formats``), set to
reproduce the examples of Startrack's webhook documentation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MakeItem = Callable[..., dict[str, Any]]


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def location(**overrides: Any) -> dict[str, Any]:
    """The location of the doc's JSON 1 example; ``device``/``client`` overrides merge."""
    device = {
        "id": 324,
        "name": "truck",
        "license_plate": "P-123ABC",
        "imei": "358741050302485",
        "remote_id": "mi correlativo",
        "tags": ["north"],
        "driver": "Ana",
        "imei_first": True,  # no device of a lower id has this IMEI
    }
    client = {"id": 0, "name": "ACME", "timezone": "America/Guatemala"}
    device.update(overrides.pop("device", {}))
    client.update(overrides.pop("client", {}))
    item: dict[str, Any] = {
        "id": 9001,
        "device_id": 324,
        "fix_time": datetime(2016, 9, 8, 17, 42, 14, 250_000, tzinfo=UTC),
        "server_time": datetime(2016, 9, 8, 17, 42, 15, 411_000, tzinfo=UTC),
        "lat": 10.67338,
        "lon": -85.54562,
        "altitude_m": 30.0,
        "speed_kmh": 16.2,
        "course_deg": 359.2,
        "satellites": 9,
        "valid": True,
        "ignition": True,
        "accuracy_m": 4.0,
        "sensors": {"fuel_level": 0.5},
        "source_ip": "216.58.192.100",
        "source_port": None,
        "event_code": 0,
        "odometer_km": 100000.1,
        "virtual_odometer_km": 1231.1,
        "hours": 1.1,
        "virtual_hours": 1000.1,
        "poi_ids": [1123, 542],
        "poi_group_ids": [203, 203],
        "place": "111 Oak Street, New York, NY 11010",
        "alerts_count": 0,
        "device": device,
        "client": client,
    }
    item.update(overrides)
    return item


def alert_not_at(**overrides: Any) -> dict[str, Any]:
    """The doc's first alert example (``isNotAt-dist``), with only the keys it shows."""
    item: dict[str, Any] = {
        "eventId": 512,
        "messageId": "isNotAt-dist",
        "deviceId": 7,
        "vehicle": "test vehicle 1 (PLATE1)",
        "date": from_ms(1528996543494).isoformat(),
        "place": "CA-9 km62, Sanarate, El progreso, GT",
        "lat": 15.280898,
        "lon": -91.797898,
        "driver": "",
        "odometer": None,
        "odometerUnits": "km",
        "ignOnTime": None,
        "ruleOwner": "Jose Perez",
        "ruleOwnerId": 1,
        "urId": 1024,
        "ruleName": "far from the depot",
        "vehicle_tags": [],
        "poiContact": "",
        "poiName": "RefPoint1",
        "metersFromPoi": 157041.0,
        "distanceFromPoi": "157 km",
        "client": {"id": 3, "name": "GT", "timezone": "America/Guatemala"},
    }
    item.update(overrides)
    return item


def alert_entered(**overrides: Any) -> dict[str, Any]:
    """The doc's second alert example (``enteredPoi``), with only the keys it shows."""
    item: dict[str, Any] = {
        "eventId": 512,
        "messageId": "enteredPoi",
        "deviceId": 8,
        "vehicle": "test vehicle (PLATE)",
        "date": from_ms(1529009273541).isoformat(),
        "place": "123 Sixth St, Austin, TX",
        "lat": 1.123,
        "lon": 1.123,
        "driver": None,
        "odometer": 2001.0,
        "odometerUnits": "km",
        "ignOnTime": 0.0,
        "ruleOwner": "John Smith",
        "ruleOwnerId": 1,
        "urId": 2471,
        "ruleName": "office",
        "vehicle_tags": ["Vehicle Group/Tag 1"],
        "poiContact": "John Smith 713-232-3453",
        "poiIds": [15432],
        "poiNames": ["The office"],
        "poiGroupIds": [],
        "client": {"id": 4, "name": "TX", "timezone": "America/Chicago"},
    }
    item.update(overrides)
    return item


@pytest.fixture
def make_location() -> MakeItem:
    return location


@pytest.fixture
def make_alert_not_at() -> MakeItem:
    return alert_not_at


@pytest.fixture
def make_alert_entered() -> MakeItem:
    return alert_entered
