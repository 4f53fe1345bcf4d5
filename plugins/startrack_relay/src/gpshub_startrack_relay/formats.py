"""The three Startrack payload formats: location JSON 1 and JSON 2, and the alert object.

Each ``Format`` turns the hub's items (see ``hub.formats`` for what a location item and
an alert item hold) into the body of one POST, encoded with orjson.  The object
builders (``json1_object``, ``json2_object``, ``alert_object``) are public so tests and
tools can look at a payload before it is encoded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gpshub_startrack_relay.times import EpochUnit, epoch, event_time, system_time
from hub import Format

KM_PER_MILE = 1.609344
COORD_SCALE = 100_000  # JSON 2 sends degrees × 100000 as integers
MAX_JSON_SAFE_INT = 2**53 - 1  # the largest integer every JSON reader keeps exactly

Item = Mapping[str, Any]


# -- numbers ---------------------------------------------------------------------------------
def round_int(value: float) -> int:
    """``value`` rounded to the nearest integer, halves away from zero (16.5 → 17)."""
    return int(math.copysign(math.floor(abs(value) + 0.5), value))


def rounded(value: float | None, digits: int) -> float:
    """``value`` rounded to ``digits`` decimals; 0.0 when unknown."""
    return 0.0 if value is None else round(float(value), digits)


def compact(value: float | None, digits: int) -> int | float:
    """``value`` rounded to ``digits`` decimals, as an int when that is whole (2001.0 →
    2001, 1231.14 → 1231.1 with one digit); 0 when unknown."""
    if value is None:
        return 0
    r = round(float(value), digits)
    return int(r) if r.is_integer() else r


def imei_value(imei: str | None) -> int | str | None:
    """Startrack's ``device_id``: the IMEI as a number when it is all digits (as in the
    doc's example), else the text; ``None`` when there is none.

    Digits that a number would not carry faithfully stay text: a leading zero, or more
    than a JSON reader keeps exactly (above 2^53 - 1).
    """
    if imei is None:
        return None
    text = str(imei).strip()
    if not text:
        return None
    if text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0")):
        number = int(text)
        if number <= MAX_JSON_SAFE_INT:
            return number
    return text


def _speed_kmh(item: Item) -> float:
    speed = item.get("speed_kmh")
    return max(float(speed), 0.0) if speed is not None else 0.0


def _heading(course: float | None) -> int:
    return round_int(float(course)) % 360 if course is not None else 0


def _common(item: Item) -> tuple[dict[str, Any], dict[str, Any]]:
    device: dict[str, Any] = item.get("device") or {}
    client: dict[str, Any] = item.get("client") or {}
    return device, client


# -- location objects ------------------------------------------------------------------------
def json1_object(item: Item) -> dict[str, Any]:
    """The Location Data Object of JSON 1 for one location item, in the doc's key order."""
    device, client = _common(item)
    port = item.get("source_port")
    return {
        "code": int(item.get("event_code") or 0),
        "vid": int(item["device_id"]),
        "remote_id": device.get("remote_id") or None,
        "license_plate": device.get("license_plate") or None,
        "device_id": imei_value(device.get("imei")),
        "ip": item.get("source_ip") or None,
        "port": int(port) if port is not None else -1,
        "lon": float(item["lon"]),
        "lat": float(item["lat"]),
        "valid_position": bool(item.get("valid", True)),
        "event_time": event_time(item["fix_time"]),
        "system_time": system_time(item["server_time"], client.get("timezone")),
        "kmph": round_int(_speed_kmh(item)),
        "placename": item.get("place") or "",
        "poi_ids": [int(p) for p in item.get("poi_ids") or ()],
        "poi_group_ids": [int(g) for g in item.get("poi_group_ids") or ()],
        "alerts_count": int(item.get("alerts_count") or 0),
        "route_id": None,  # gpshub has no routes
        "client_id": int(client["id"]),
        "head": _heading(item.get("course_deg")),
        "odometer": rounded(item.get("virtual_odometer_km"), 3),
        "sys_odometer": rounded(item.get("odometer_km"), 3),
        "hourmeter": rounded(item.get("virtual_hours"), 3),
        "sys_hourmeter": rounded(item.get("hours"), 3),
    }


def json2_object(item: Item) -> dict[str, Any]:
    """One object of JSON 2's list: coordinates as integers of degrees × 100000, speed in
    miles per hour."""
    device, client = _common(item)
    return {
        "code": int(item.get("event_code") or 0),
        "vid": int(item["device_id"]),
        "remote_id": device.get("remote_id") or None,
        "license_plate": device.get("license_plate") or None,
        "device_id": imei_value(device.get("imei")),
        "ip": item.get("source_ip") or None,
        "lon": round_int(float(item["lon"]) * COORD_SCALE),
        "lat": round_int(float(item["lat"]) * COORD_SCALE),
        "event_time": event_time(item["fix_time"]),
        "system_time": system_time(item["server_time"], client.get("timezone")),
        "mph": round_int(_speed_kmh(item) / KM_PER_MILE),
    }


# -- the alert object ------------------------------------------------------------------------
class AlertOptions(BaseModel):
    """Choices of the ``startrack-alert`` format, where Startrack's doc and its examples
    disagree."""

    model_config = ConfigDict(extra="forbid")

    date_unit: EpochUnit = Field(
        "ms",
        title="Date unit",
        description="unit of date and startDate since 1970 UTC: ms (as Startrack's "
        "examples) or s (as its field table says)",
    )
    odometer_text: bool = Field(
        False,
        title="Odometer as text",
        description='send odometer as text ("2001 km") instead of a number with odometerUnits "km"',
    )


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# Fields Startrack sends only for some alert types, and how each is converted; a field
# the alert item lacks (or holds as None) is left out.
_OPTIONAL: dict[str, Callable[[Any], Any]] = {
    "event": str,
    "poiName": str,
    "poiNames": lambda v: [str(n) for n in v],
    "poiId": int,
    "poiIds": lambda v: [int(p) for p in v],
    "poiGroupIds": lambda v: [int(g) for g in v],
    "distanceFromPoi": str,
    "metersFromPoi": float,
}


def alert_object(item: Item, options: AlertOptions | None = None) -> dict[str, Any]:
    """Startrack's Alert Data Object for one alert item.

    Only the fields Startrack defines are sent: the item's own extras (``deviceId``,
    ``client``, ``ruleName``, a type's raw values such as ``speed`` or ``sensor``) are not.
    """
    opts = options or AlertOptions()
    unit: EpochUnit = opts.date_unit
    obj: dict[str, Any] = {
        "eventId": int(item["eventId"]),
        "messageId": str(item["messageId"]),
        "vehicle": _text(item.get("vehicle")),
        "date": epoch(item["date"], unit),
        "place": _text(item.get("place")),
        "lat": f"{float(item['lat']):.6f}",
        "lon": f"{float(item['lon']):.6f}",
        "poiContact": _text(item.get("poiContact")),
        "driver": _text(item.get("driver")),
        "ignOnTime": compact(item.get("ignOnTime"), 3),
        "ruleOwner": _text(item.get("ruleOwner")),
        "ruleOwnerId": int(item.get("ruleOwnerId") or 0),  # 0: the owner was deleted
        "urId": int(item["urId"]),
    }
    km = item.get("odometer")
    if opts.odometer_text:
        obj["odometer"] = f"{round_int(float(km or 0))} km"
    else:
        obj["odometer"] = compact(km, 1)
        obj["odometerUnits"] = "km"  # the item's odometer is always in km
    for key, convert in _OPTIONAL.items():
        value = item.get(key)
        if value is not None:
            obj[key] = convert(value)
    if item.get("startDate") is not None:
        obj["startDate"] = epoch(item["startDate"], unit)
    tags = item.get("vehicle_tags")
    if tags:
        obj["vehicle_tags"] = [str(t) for t in tags]
    return obj


# -- the formats -----------------------------------------------------------------------------
def _check_count(fmt: Format, items: Sequence[Item]) -> None:
    if not 1 <= len(items) <= fmt.max_batch:
        raise ValueError(
            f"{fmt.kind} encodes 1 to {fmt.max_batch} items per body, not {len(items)}"
        )


class StartrackJson1(Format):
    """Startrack's "Formato Json 1": one Location Data Object per request."""

    kind = "startrack-json1"
    title = "Startrack Formato Json 1"
    purpose = "locations"
    max_batch = 1

    def encode(self, items: Sequence[Item]) -> bytes:
        _check_count(self, items)
        return orjson.dumps(json1_object(items[0]))


class StartrackJson2(Format):
    """Startrack's "Formato Json 2": ``[n, [objects]]``, up to 1000 locations per request."""

    kind = "startrack-json2"
    title = "Startrack Formato Json 2"
    purpose = "locations"
    max_batch = 1000

    def encode(self, items: Sequence[Item]) -> bytes:
        _check_count(self, items)
        objects = [json2_object(item) for item in items]
        return orjson.dumps([len(objects), objects])


class StartrackAlert(Format):
    """Startrack's Alert Data Object, one alert per request, keys sorted as in its
    examples."""

    kind = "startrack-alert"
    title = "Startrack alert object"
    purpose = "alerts"
    max_batch = 1
    Options: ClassVar[type[BaseModel]] = AlertOptions

    def encode(self, items: Sequence[Item]) -> bytes:
        _check_count(self, items)
        options: Any = self.options
        return orjson.dumps(alert_object(items[0], options), option=orjson.OPT_SORT_KEYS)
