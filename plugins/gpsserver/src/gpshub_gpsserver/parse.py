"""GPS-Server.net JSON to gpshub values: objects and locations to ``Location``, message rows
to ``PositionFix``.

The key-based API answers MySQL row values, so nearly everything is a string
(``"lat": "37.983810"``, ``"params": {"acc": "1"}``); the v4 token API sends numbers.
Both are read the same way.  Times are ``"YYYY-MM-DD HH:MM:SS"`` without an offset: UTC on
the documented API, possibly local on the v4 one (the caller passes the zone).  Speed is
km/h, ``angle`` the course, ``altitude`` metres.

A message row is ``[dt_tracker, lat, lng, altitude, angle, speed, {params}]`` (a JSON
object with those names is accepted too).  Rows carry no validity, odometer or engine
hours: those come from the object's latest location and are applied to the row at that
time (``annotate``).

Parsing is tolerant: a record that cannot be used is skipped and counted at debug level.
Only a body of the wrong kind altogether is ``BadShape``.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from hub import upstream_values
from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM, PositionFix
from hub.source import RemoteDevice
from hub.upstream_values import ParseStats, coordinates, count, flat_items, heading, kept, switch

log = logging.getLogger(__name__)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
IGNITION_KEYS = ("acc", "ign")
SATELLITE_KEYS = ("gpslev", "sat", "satellites")
"""Where the satellite count is: ``gpslev`` / ``sat`` params on the API-key API; the
email-login (v4) API with ``sensors=true`` names it ``satellites``."""
LIFTED = frozenset(IGNITION_KEYS + SATELLITE_KEYS)
"""Params that become ``PositionFix`` fields instead of sensors."""
ROW_FIELDS = ("dt_tracker", "lat", "lng", "altitude", "angle", "speed")
OBJECT_EXTRA = ("model", "device", "protocol", "vin", "sim_number", "active", "object_expire")
_INT = re.compile(r"[-+]?\d+")


class BadShape(ValueError):
    """The body is not what the endpoint answers (not a list or object at all)."""


# -- values ------------------------------------------------------------------------------
def parse_time(value: Any, zone: tzinfo = UTC) -> datetime | None:
    """``"YYYY-MM-DD HH:MM:SS"`` read in ``zone``, as an aware UTC datetime; ``None`` when
    empty, zero (``0000-00-00 00:00:00``) or unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text.startswith("0000"):
        return None
    try:
        parsed = datetime.strptime(text[:19], TIME_FORMAT)
    except ValueError:
        return None
    return parsed.replace(tzinfo=zone).astimezone(UTC)


def format_time(t: datetime, zone: tzinfo = UTC) -> str:
    """A time as the API takes it: ``"YYYY-MM-DD HH:MM:SS"`` in ``zone`` (whole seconds)."""
    return t.astimezone(zone).strftime(TIME_FORMAT)


def number(value: Any) -> float | None:
    """A finite number from a number or a numeric string; ``None`` otherwise."""
    return upstream_values.number(value, text=True)


def whole(value: Any) -> int | None:
    """A non-negative integer (satellites), from a number or a string."""
    return count(value, text=True)


def scalar(value: Any) -> Any:
    """A sensor value: numeric strings become numbers (``"13800"`` -> 13800), other
    strings, numbers and booleans stay; ``None`` for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if _INT.fullmatch(text):
            return int(text)
        parsed = number(text)
        return value if parsed is None else parsed
    return None


def sensors_of(params: Any) -> dict[str, Any]:
    """Every param under its own name, except those lifted into fix fields."""
    if not isinstance(params, Mapping):
        return {}
    return {k: v for k, v in flat_items(params, convert=scalar) if k not in LIFTED}


def _first(params: Mapping[str, Any], keys: tuple[str, ...], convert: Any) -> Any:
    for key in keys:
        value = convert(params.get(key))
        if value is not None:
            return value
    return None


# -- message rows ------------------------------------------------------------------------
def parse_row(row: Any, zone: tzinfo = UTC, stats: ParseStats | None = None) -> PositionFix | None:
    """One message row (a list, or an object with the same names); ``None`` if unusable."""
    stats = stats if stats is not None else ParseStats()
    if isinstance(row, list | tuple):
        values = list(row[:6]) + [None] * (6 - min(len(row), 6))
        params = row[6] if len(row) > 6 else None
    elif isinstance(row, Mapping):
        values = [row.get(k) for k in ROW_FIELDS]
        params = row.get("params", row.get("sensors"))
    else:
        stats.skip("not a row")
        return None
    fix_time = parse_time(values[0], zone)
    if fix_time is None:
        stats.skip("no time")
        return None
    position = coordinates(values[1], values[2], text=True)
    if position is None:
        stats.skip("no coordinates")
        return None
    lat, lon = position
    params = params if isinstance(params, Mapping) else {}
    speed = number(values[5])
    course = heading(values[4], text=True)
    ignition = _first(params, IGNITION_KEYS, switch)
    satellites = _first(params, SATELLITE_KEYS, whole)
    if isinstance(row, Mapping):  # a row object may carry them beside its params
        ignition = _first(row, IGNITION_KEYS, switch) if ignition is None else ignition
        satellites = _first(row, SATELLITE_KEYS, whole) if satellites is None else satellites
    return PositionFix(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        altitude_m=number(values[3]),
        speed_kmh=speed if speed is not None and speed >= 0 else None,
        course_deg=course,
        satellites=satellites,
        ignition=ignition,
        sensors=sensors_of(params),
    )


def parse_rows(body: Any, zone: tzinfo = UTC) -> list[PositionFix]:
    """Every usable fix of a message answer (a JSON list), oldest first."""
    if not isinstance(body, list):
        raise BadShape(f"expected a list of messages, got {type(body).__name__}")
    stats = ParseStats()
    fixes = [f for f in (parse_row(r, zone, stats) for r in body) if f is not None]
    stats.report(log, "GPS-Server.net message row(s)", len(body))
    fixes.sort(key=lambda f: f.fix_time)
    return fixes


# -- objects and locations ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Location:
    """An object's latest location: what tells whether its history has news, and the
    facts only the latest fix gets (validity, odometer, engine hours)."""

    imei: str
    fix_time: datetime | None
    received: datetime | None
    valid: bool = True
    odometer_km: float | None = None
    engine_hours: float | None = None
    remote: RemoteDevice | None = None

    @property
    def mark(self) -> tuple[float, float]:
        """``(dt_tracker, dt_server)`` in epoch seconds (0 when missing)."""
        return (
            self.fix_time.timestamp() if self.fix_time else 0.0,
            self.received.timestamp() if self.received else 0.0,
        )


def _text(value: Any) -> str | None:
    if isinstance(value, str | int) and not isinstance(value, bool):
        text = str(value).strip()
        return text or None
    return None


def parse_location(
    record: Any, imei: Any = None, zone: tzinfo = UTC, *, with_remote: bool = False
) -> Location | None:
    """One object (``USER_GET_OBJECTS``) or location (``OBJECT_GET_LOCATIONS``,
    ``locations.php``); ``None`` without an IMEI."""
    if not isinstance(record, Mapping):
        return None
    key = _text(record.get("imei")) or _text(imei)
    if key is None:
        return None
    odometer = number(record.get("odometer"))
    hours = number(record.get("engine_hours"))
    remote = None
    if with_remote:
        extra: dict[str, Any] = {
            k: record[k] for k in OBJECT_EXTRA if _text(record.get(k)) is not None
        }
        last_seen = parse_time(record.get("dt_server"), zone)
        if last_seen is not None:
            extra["last_seen"] = last_seen.isoformat()
        remote = RemoteDevice(
            upstream_id=key,
            name=_text(record.get("name")) or f"GPS-Server {key}",
            imei=key,
            license_plate=_text(record.get("plate_number")) or _text(record.get("plate")),
            extra=extra,
        )
    return Location(
        imei=key,
        fix_time=parse_time(record.get("dt_tracker"), zone),
        received=parse_time(record.get("dt_server"), zone),
        valid=switch(record.get("loc_valid")) is not False,
        odometer_km=odometer if odometer is not None and odometer >= 0 else None,
        engine_hours=hours if hours is not None and hours >= 0 else None,
        remote=remote,
    )


def parse_objects(body: Any, zone: tzinfo = UTC) -> list[Location]:
    """``USER_GET_OBJECTS``: a list of objects, each with its latest location."""
    if not isinstance(body, list):
        raise BadShape(f"expected a list of objects, got {type(body).__name__}")
    return kept(
        body,
        lambda r: parse_location(r, zone=zone, with_remote=True),
        log,
        "GPS-Server.net object(s) without an IMEI",
    )


def parse_locations(
    body: Any, zone: tzinfo = UTC, *, with_remote: bool = False
) -> dict[str, Location]:
    """``OBJECT_GET_LOCATIONS`` / ``locations.php``: an object keyed by IMEI.  (An empty
    PHP array arrives as ``[]``: no object.)"""
    if body == []:
        return {}
    if not isinstance(body, Mapping):
        raise BadShape(f"expected locations keyed by IMEI, got {type(body).__name__}")
    out: dict[str, Location] = {}
    for imei, record in body.items():
        loc = parse_location(record, imei, zone, with_remote=with_remote)
        if loc is not None:
            out[loc.imei] = loc
    return out


def annotate(fix: PositionFix, latest: Location | None) -> PositionFix:
    """``fix`` with what the object's latest location says about it, if it is that fix."""
    if latest is None or latest.fix_time is None or fix.fix_time != latest.fix_time:
        return fix
    sensors = dict(fix.sensors)
    if latest.odometer_km is not None:
        sensors.setdefault(PLATFORM_ODOMETER_KM, latest.odometer_km)
    if latest.engine_hours is not None:
        sensors.setdefault(PLATFORM_ENGINE_HOURS, latest.engine_hours)
    return replace(fix, valid=fix.valid and latest.valid, sensors=sensors)
