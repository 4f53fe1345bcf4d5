"""Traccar JSON to gpshub values: positions to ``PositionFix``, devices to ``RemoteDevice``.

Units at the edge (``model/Position.java``): ``speed`` is in knots, ``course`` degrees,
``altitude`` and ``accuracy`` metres; times are ISO-8601 with an offset.  In
``attributes``, ``distance`` is metres since the previous fix (kept as a per-fix sensor,
never an odometer), ``odometer`` and ``totalDistance`` are cumulative metres and
``hours`` is engine time in milliseconds.

Parsing is tolerant: a record that cannot be used is skipped and counted, never fatal.
Only a body that is not a JSON list at all is an error (``BadShape``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM, PositionFix
from hub.source import RemoteDevice
from hub.upstream_values import (
    ParseStats,
    coordinates,
    count,
    flat_items,
    heading,
    kept,
    number,
    switch,
)
from hub.upstream_values import iso_time as parse_time

log = logging.getLogger(__name__)

KNOT_KMH = 1.852
LIFTED = frozenset({"sat", "ignition"})
"""Attributes that become ``PositionFix`` fields instead of sensors."""
PLATE_KEYS = ("licenseplate", "plate", "registration", "licenceplate", "registrationplate")
"""Device attributes holding a licence plate (compared lower-case, ``_`` and ``-`` ignored)."""
DEVICE_EXTRA = ("model", "category", "status", "lastUpdate", "phone", "contact", "disabled")


class BadShape(ValueError):
    """The body is not what the endpoint answers (not a list, not JSON objects at all)."""


@dataclass(frozen=True, slots=True)
class Position:
    """One usable Traccar position: whose it is, when the server got it, and the fix."""

    device_id: int
    received: float | None
    """``serverTime`` in epoch seconds, or ``None`` when missing."""
    fix: PositionFix


def sensors_of(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sensors`` of a fix: every attribute under its own name except those lifted
    into fix fields, plus Traccar's odometer (km) and engine hours under the hub's keys for
    a platform's own readings (``PLATFORM_ODOMETER_KM``, ``PLATFORM_ENGINE_HOURS``)."""
    sensors = {k: v for k, v in flat_items(attributes) if k not in LIFTED}
    odometer = number(attributes.get("odometer"))
    if odometer is None:
        odometer = number(attributes.get("totalDistance"))
    if odometer is not None and PLATFORM_ODOMETER_KM not in sensors:
        sensors[PLATFORM_ODOMETER_KM] = odometer / 1000.0
    hours = number(attributes.get("hours"))
    if hours is not None and PLATFORM_ENGINE_HOURS not in sensors:
        sensors[PLATFORM_ENGINE_HOURS] = hours / 3_600_000.0
    return sensors


@dataclass(frozen=True, slots=True)
class Header:
    """What deciding whether a position is new needs, read cheaply: the rest of the record
    is only converted (``to_position``) for the positions that are."""

    device_id: int
    fix_time: datetime
    received: float | None
    lat: float
    lon: float
    record: Mapping[str, Any]


def parse_header(record: Any, stats: ParseStats | None = None) -> Header | None:
    """The identity, times and coordinates of one position; ``None`` if unusable."""
    stats = stats if stats is not None else ParseStats()
    if not isinstance(record, Mapping):
        stats.skip("not an object")
        return None
    device_id = record.get("deviceId")
    if isinstance(device_id, bool) or not isinstance(device_id, int):
        stats.skip("no deviceId")
        return None
    fix_time = parse_time(record.get("fixTime"))
    if fix_time is None:
        stats.skip("no fixTime")
        return None
    position = coordinates(record.get("latitude"), record.get("longitude"))
    if position is None:
        stats.skip("no coordinates")
        return None
    lat, lon = position
    received = parse_time(record.get("serverTime"))
    return Header(
        device_id, fix_time, None if received is None else received.timestamp(), lat, lon, record
    )


def to_position(header: Header) -> Position:
    """The whole position of a header: units converted, attributes into sensors."""
    record = header.record
    raw_attributes = record.get("attributes")
    attributes: Mapping[str, Any] = raw_attributes if isinstance(raw_attributes, Mapping) else {}
    knots = number(record.get("speed"))
    course = heading(record.get("course"))
    accuracy = number(record.get("accuracy"))
    valid = record.get("valid")
    fix = PositionFix(
        fix_time=header.fix_time,
        lat=header.lat,
        lon=header.lon,
        altitude_m=number(record.get("altitude")),
        speed_kmh=knots * KNOT_KMH if knots is not None and knots >= 0 else None,
        course_deg=course,
        satellites=count(attributes.get("sat")),
        valid=valid if isinstance(valid, bool) else True,
        ignition=switch(attributes.get("ignition")),
        accuracy_m=accuracy if accuracy is not None and accuracy > 0 else None,
        sensors=sensors_of(attributes),
    )
    return Position(header.device_id, header.received, fix)


def parse_position(record: Any, stats: ParseStats | None = None) -> Position | None:
    """One element of ``/api/positions`` or ``/api/reports/route``; ``None`` if unusable."""
    header = parse_header(record, stats)
    return None if header is None else to_position(header)


def parse_headers(body: Any, stats: ParseStats | None = None) -> list[Header]:
    """The headers of every usable position of an answer (a JSON list), in its order."""
    if not isinstance(body, list):
        raise BadShape(f"expected a list of positions, got {type(body).__name__}")
    stats = stats if stats is not None else ParseStats()
    out = []
    for record in body:
        header = parse_header(record, stats)
        if header is not None:
            out.append(header)
    stats.report(log, "Traccar position(s)", len(body))
    return out


def parse_positions(body: Any, stats: ParseStats | None = None) -> list[Position]:
    """Every usable position of an answer (a JSON list), in the answer's order."""
    return [to_position(h) for h in parse_headers(body, stats)]


def plate_of(attributes: Any) -> str | None:
    """A licence plate kept in a device's ``attributes`` (Traccar has no plate field)."""
    if not isinstance(attributes, Mapping):
        return None
    keyed = {
        str(k).lower().replace("_", "").replace("-", "").replace(" ", ""): v
        for k, v in attributes.items()
    }
    for key in PLATE_KEYS:
        value = keyed.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


@dataclass(frozen=True, slots=True)
class Device:
    """One Traccar device as gpshub needs it."""

    id: int
    unique_id: str | None
    remote: RemoteDevice
    position_id: int | None = None
    """``positionId``: the id of the device's latest position (0: none yet)."""


def parse_device(record: Any) -> Device | None:
    """One element of ``/api/devices``; ``None`` without a numeric ``id``."""
    if not isinstance(record, Mapping):
        return None
    device_id = record.get("id")
    if isinstance(device_id, bool) or not isinstance(device_id, int):
        return None
    unique_id = record.get("uniqueId")
    unique = str(unique_id).strip() if isinstance(unique_id, str | int) else ""
    name = record.get("name")
    extra = {
        key: record[key]
        for key in DEVICE_EXTRA
        if isinstance(record.get(key), str | int | float | bool) and record.get(key) != ""
    }
    remote = RemoteDevice(
        upstream_id=str(device_id),
        name=name.strip() if isinstance(name, str) and name.strip() else f"Traccar {device_id}",
        imei=unique or None,
        license_plate=plate_of(record.get("attributes")),
        extra=extra,
    )
    position_id = record.get("positionId")
    if isinstance(position_id, bool) or not isinstance(position_id, int):
        position_id = None
    return Device(device_id, unique or None, remote, position_id)


def parse_devices(body: Any) -> list[Device]:
    """Every usable device of a ``/api/devices`` answer."""
    if not isinstance(body, list):
        raise BadShape(f"expected a list of devices, got {type(body).__name__}")
    return kept(body, parse_device, log, "Traccar device record(s) without an id")


H = TypeVar("H", Header, Position)


def by_device(items: Iterable[H]) -> dict[int, list[H]]:
    """Positions (or headers) grouped by Traccar device id, each group in the given order."""
    out: dict[int, list[H]] = {}
    for item in items:
        out.setdefault(item.device_id, []).append(item)
    return out
