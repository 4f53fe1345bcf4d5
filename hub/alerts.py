"""The API's alert object: what ``GET /api/alerts``, the live feed's ``alert`` messages
and the ``gpshub-alert`` webhook format show of an alert.

An alert is stored (and handed to payload formats) as the object the derivation builds,
whose keys follow Startrack's alert webhook (``eventId``, ``messageId``, ``urId``…),
because that format's field names are fixed by its specification.  The API speaks
snake_case everywhere else, so ``alert_json`` renames those keys: the object has a plain
``id``, times in UTC with a ``Z``, and units in the names (``virtual_odometer_km``).
Keys a rule type adds that are not listed here are converted from camelCase.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from hub.timestamps import utc_text

API_NAMES: dict[str, str] = {
    "eventId": "id",
    "clientId": "client_id",
    "deviceId": "device_id",
    "urId": "rule_id",
    "messageId": "message_id",
    "ruleName": "rule_name",
    "ruleOwnerId": "owner_id",
    "ruleOwner": "owner_name",
    "vehicle": "vehicle",
    "vehicle_tags": "device_tags",
    "driver": "driver",
    "date": "fix_time",
    "lat": "lat",
    "lon": "lon",
    "place": "place",
    "odometer": "virtual_odometer_km",
    "ignOnTime": "virtual_hours",
    "event": "event",
    "poiId": "poi_id",
    "poiName": "poi_name",
    "poiContact": "poi_contact",
    "poiIds": "poi_ids",
    "poiNames": "poi_names",
    "poiGroupIds": "poi_group_ids",
    "metersFromPoi": "meters_from_poi",
    "distanceFromPoi": "distance_from_poi",
    "startDate": "started_at",
    "speed": "speed_kmh",
    "limit": "limit_kmh",
}
"""Stored key -> API key, in the order the API shows them."""

LEFT_OUT = frozenset({"odometerUnits", "client"})
"""Stored keys the API does not show: the units are in the names, ``client`` is the
delivery worker's (its id becomes ``client_id``)."""

_TIMES = ("fix_time", "started_at")
_HUMP = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_case(name: str) -> str:
    """``metersFromPoi`` -> ``meters_from_poi``; snake_case names stay as they are."""
    return _HUMP.sub(r"_\1", name).lower()


def alert_json(stored: Mapping[str, Any]) -> dict[str, Any]:
    """The API's alert object for a stored alert (with its ``eventId``, and its
    ``clientId`` or the delivery item's ``client``)."""
    out: dict[str, Any] = {}
    client = stored.get("client")
    if "clientId" not in stored and isinstance(client, Mapping) and "id" in client:
        out["client_id"] = client["id"]
    for old, new in API_NAMES.items():
        if old in stored:
            out[new] = stored[old]
    for old, value in stored.items():
        if old not in API_NAMES and old not in LEFT_OUT:
            out.setdefault(snake_case(old), value)
    for key in _TIMES:
        if key in out:
            out[key] = _utc(out[key])
    if "id" in out:
        out = {"id": out.pop("id"), **out}
    return out


def _utc(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return value
        return utc_text(parsed) if parsed.tzinfo is not None else value
    return value
