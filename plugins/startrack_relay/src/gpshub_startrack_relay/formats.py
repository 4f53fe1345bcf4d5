"""The three Startrack payload formats: location JSON 1 and JSON 2, and the alert object.

Each ``Format`` turns the hub's items (see ``hub.formats`` for what a location item and
an alert item hold) into the body of one POST, encoded with orjson.  The object
builders (``json1_object``, ``json2_object``, ``alert_object``) are public so tests and
tools can look at a payload before it is encoded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import orjson
from pydantic import BaseModel, ConfigDict, Field

from gpshub_startrack_relay.times import EpochUnit, epoch, event_time, system_time
from hub import Format

KM_PER_MILE = 1.609344
COORD_SCALE = 100_000  # JSON 2 sends degrees × 100000 as integers
_COORD_SCALE = float(COORD_SCALE)  # the same product, without converting the int each time
MAX_JSON_SAFE_INT = 2**53 - 1  # the largest integer every JSON reader keeps exactly
IMEI_MAX_DIGITS = 15
SYNTHETIC_DEVICE_ID = 10**IMEI_MAX_DIGITS
"""``device_id`` of a device its IMEI does not identify: this plus the hub's device id."""
MAX_WARNED_DEVICES = 20
"""How many devices ``device_warnings`` names one by one."""

Item = Mapping[str, Any]
_EMPTY: Mapping[str, Any] = {}  # a missing device or client


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


def imei_number(imei: str | None) -> int | None:
    """The IMEI as a number, when it is one: ASCII digits only (spaces around it
    ignored), at most 15 of them (``IMEI_MAX_DIGITS``); ``None`` otherwise."""
    if imei is None:
        return None
    text = str(imei).strip(" ")  # as the hub compares IMEIs (hub.sink_store.imei_key)
    if 0 < len(text) <= IMEI_MAX_DIGITS and text.isascii() and text.isdigit():
        return int(text)
    return None


_imei_number = functools.lru_cache(maxsize=65_536)(imei_number)


def device_number(device: Mapping[str, Any], vid: int) -> int:
    """Startrack's ``device_id`` of a device (``vid`` is its hub id): its IMEI as a number
    when it is one and no device of a lower id has the same IMEI (``imei_first``, which
    the hub sets); otherwise ``SYNTHETIC_DEVICE_ID + vid``, 16 digits that no IMEI of at
    most 15 digits reaches.  So no two devices share a number, and a device keeps its
    number while its IMEI (and those of the devices before it) stay as they are."""
    imei = device.get("imei")
    number = _imei_number(imei) if type(imei) is str else imei_number(imei)
    if number is not None and device.get("imei_first"):
        return number
    return SYNTHETIC_DEVICE_ID + vid


def synthetic_reason(device: Mapping[str, Any]) -> str | None:
    """Why ``device_number`` does not use the device's IMEI; ``None`` when it does."""
    imei = device.get("imei")
    if imei is None or not str(imei).strip(" "):
        return "no IMEI"
    if imei_number(imei) is None:
        return f"IMEI {str(imei)[:30]!r} is not a number of at most {IMEI_MAX_DIGITS} digits"
    if not device.get("imei_first"):
        return "another device with a lower id has the same IMEI"
    return None


# -- location objects ------------------------------------------------------------------------
# Both builders run once per delivered location, so they are written out in full: each
# field's conversion inline rather than through the helpers above (the same arithmetic:
# ``round_int`` is ``int(x + 0.5)`` for x ≥ 0 and ``-int(0.5 - x)`` below, ``rounded`` is
# ``round(float(x), 3)``), and the IMEI's conversion cached by its text.  Texts the hub
# does not know are empty, never null: Startrack types them as text.
def json1_object(item: Item) -> dict[str, Any]:
    """The Location Data Object of JSON 1 for one location item, in the doc's key order."""
    get = item.get
    device = get("device") or _EMPTY
    client = get("client") or _EMPTY
    vid = int(item["device_id"])
    port = get("source_port")
    speed = get("speed_kmh")
    kmh = float(speed) if speed is not None else 0.0
    if kmh < 0.0:
        kmh = 0.0
    course = get("course_deg")
    if course is not None:
        c = float(course)
        head = (int(c + 0.5) if c >= 0.0 else -int(0.5 - c)) % 360
    else:
        head = 0
    odometer = get("virtual_odometer_km")
    sys_odometer = get("odometer_km")
    hourmeter = get("virtual_hours")
    sys_hourmeter = get("hours")
    poi_ids = get("poi_ids")
    poi_group_ids = get("poi_group_ids")
    return {
        "code": int(get("event_code") or 0),
        "vid": vid,
        "remote_id": device.get("remote_id") or "",
        "license_plate": device.get("license_plate") or "",
        "device_id": device_number(device, vid),
        "ip": get("source_ip") or "",
        "port": int(port) if port is not None else -1,
        "lon": float(item["lon"]),
        "lat": float(item["lat"]),
        "valid_position": bool(get("valid", True)),
        "event_time": event_time(item["fix_time"]),
        "system_time": system_time(item["server_time"], client.get("timezone")),
        "kmph": int(kmh + 0.5),  # never negative
        "placename": get("place") or "",
        "poi_ids": list(map(int, poi_ids)) if poi_ids else [],
        "poi_group_ids": list(map(int, poi_group_ids)) if poi_group_ids else [],
        "alerts_count": int(get("alerts_count") or 0),
        "route_id": None,  # gpshub has no routes
        "client_id": int(client["id"]),
        "head": head,
        "odometer": 0.0 if odometer is None else round(float(odometer), 3),
        "sys_odometer": 0.0 if sys_odometer is None else round(float(sys_odometer), 3),
        "hourmeter": 0.0 if hourmeter is None else round(float(hourmeter), 3),
        "sys_hourmeter": 0.0 if sys_hourmeter is None else round(float(sys_hourmeter), 3),
    }


def json2_object(item: Item) -> dict[str, Any]:
    """One object of JSON 2's list: coordinates as integers of degrees × 100000, speed in
    miles per hour."""
    return json2_objects((item,))[0]


def json2_objects(items: Iterable[Item]) -> list[dict[str, Any]]:
    """``json2_object`` of each item, in one loop (a JSON 2 body holds up to 1000)."""
    objects: list[dict[str, Any]] = []
    append = objects.append
    for item in items:
        get = item.get
        device = get("device") or _EMPTY
        vid = int(item["device_id"])
        lon = float(item["lon"]) * _COORD_SCALE
        lat = float(item["lat"]) * _COORD_SCALE
        speed = get("speed_kmh")
        kmh = float(speed) if speed is not None else 0.0
        if kmh < 0.0:
            kmh = 0.0
        append(
            {
                "code": int(get("event_code") or 0),
                "vid": vid,
                "remote_id": device.get("remote_id") or "",
                "license_plate": device.get("license_plate") or "",
                "device_id": device_number(device, vid),
                "ip": get("source_ip") or "",
                "lon": int(lon + 0.5) if lon >= 0.0 else -int(0.5 - lon),
                "lat": int(lat + 0.5) if lat >= 0.0 else -int(0.5 - lat),
                "event_time": event_time(item["fix_time"]),
                "system_time": system_time(
                    item["server_time"], (get("client") or _EMPTY).get("timezone")
                ),
                # divided, not multiplied by 1 / KM_PER_MILE: that can round the other way
                "mph": int(kmh / KM_PER_MILE + 0.5),  # never negative
            }
        )
    return objects


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
    "poiNames": lambda v: [_text(n) for n in v],
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


def device_warnings(devices: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per device whose ``device_id`` is synthetic, with the reason and the
    number it gets; past ``MAX_WARNED_DEVICES`` of them, one line counting the rest."""
    found = [(d, why) for d in devices if (why := synthetic_reason(d)) is not None]
    lines = [
        f"device {d['id']} ({d.get('name') or ''}): {why}; its device_id is "
        f"{device_number(d, int(d['id']))}"
        for d, why in found[:MAX_WARNED_DEVICES]
    ]
    if len(found) > MAX_WARNED_DEVICES:
        lines.append(
            f"and {len(found) - MAX_WARNED_DEVICES} more devices get a device_id of "
            f"{SYNTHETIC_DEVICE_ID} + their id"
        )
    return lines


class _Location(Format):
    """What both location formats share: the warnings about the client's devices."""

    purpose = "locations"

    @classmethod
    def device_warnings(cls, devices: Sequence[Mapping[str, Any]]) -> list[str]:
        return device_warnings(devices)


# -- the formats -----------------------------------------------------------------------------
def _check_count(fmt: Format, items: Sequence[Item]) -> None:
    if not 1 <= len(items) <= fmt.max_batch:
        raise ValueError(
            f"{fmt.kind} encodes 1 to {fmt.max_batch} items per body, not {len(items)}"
        )


class StartrackJson1(_Location):
    """Startrack's "Formato Json 1": one Location Data Object per request."""

    kind = "startrack-json1"
    title = "Startrack Formato Json 1"
    max_batch = 1
    fields = (
        "event_code", "source_ip", "source_port", "lon", "lat", "valid", "fix_time",
        "server_time", "speed_kmh", "place", "poi_ids", "poi_group_ids", "alerts_count",
        "course_deg", "virtual_odometer_km", "odometer_km", "virtual_hours", "hours",
    )  # fmt: skip

    def encode(self, items: Sequence[Item]) -> bytes:
        _check_count(self, items)
        return orjson.dumps(json1_object(items[0]))


class StartrackJson2(_Location):
    """Startrack's "Formato Json 2": ``[n, [objects]]``, up to 1000 locations per request."""

    kind = "startrack-json2"
    title = "Startrack Formato Json 2"
    max_batch = 1000
    fields = ("event_code", "source_ip", "lon", "lat", "fix_time", "server_time", "speed_kmh")

    def encode(self, items: Sequence[Item]) -> bytes:
        _check_count(self, items)
        objects = json2_objects(items)
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
