"""flespi JSON to the hub's types: messages and telemetry to ``PositionFix``, device
items to ``RemoteDevice``.

Tolerant by design: a record that cannot be a fix (no device id, no time, coordinates
missing or out of range) gives ``None`` and the caller counts it; a field with a wrong
type is left out of the fix.  flespi's units are the hub's: km/h, degrees, metres,
epoch seconds (floats with microseconds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM, PositionFix
from hub.source import RemoteDevice
from hub.upstream_values import coordinates, flat_items, heading, number, switch

IDENTITY_KEYS = frozenset(
    {
        "device.id",
        "device.name",
        "device.type.id",
        "ident",
        "channel.id",
        "protocol.id",
        "peer",
        "timestamp",
        "server.timestamp",
    }
)
"""Transport and identity parameters: neither fix fields nor sensors."""

LIFTED_KEYS = frozenset(
    {
        "position.latitude",
        "position.longitude",
        "position.altitude",
        "position.speed",
        "position.direction",
        "position.satellites",
        "position.valid",
        "engine.ignition.status",
    }
)
"""Parameters that become ``PositionFix`` fields rather than sensors."""

ODOMETER_KEYS = ("vehicle.mileage", "can.vehicle.mileage")  # km, a true odometer
ENGINE_HOURS_KEYS = ("engine.motorhours", "can.engine.motorhours")  # hours
PLATE_KEYS = ("plate", "license_plate", "registration_plate")
"""Where users keep a licence plate in a device's ``metadata`` (flespi has no field)."""


@dataclass(frozen=True, slots=True)
class Message:
    """A flespi message that is a fix: whose device, when received, and the fix."""

    device_id: str
    received: float | None
    fix: PositionFix


def epoch_time(value: Any) -> datetime | None:
    """Epoch seconds (a float keeps its microseconds) as an aware UTC datetime."""
    seconds = number(value)
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def flag(value: Any) -> bool | None:
    """A flespi boolean (some protocols send 0/1)."""
    return switch(value, words=False)


def device_key(value: Any) -> str | None:
    """A device id (an integer upstream) as the hub keeps it: text."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.isdigit():
        return value
    return None


def parse_message(record: Any) -> Message | None:
    """One item of a ``/messages`` answer as a fix, or ``None`` when it is not one."""
    if not isinstance(record, Mapping):
        return None
    device_id = device_key(record.get("device.id"))
    fix_time = epoch_time(record.get("timestamp"))
    if device_id is None or fix_time is None:
        return None
    fix = fix_from_parameters(record, fix_time)
    if fix is None:
        return None
    return Message(device_id, number(record.get("server.timestamp")), fix)


def fix_from_parameters(params: Mapping[str, Any], fix_time: datetime) -> PositionFix | None:
    """A fix from flat flespi parameters, or ``None`` without usable coordinates."""
    position = coordinates(params.get("position.latitude"), params.get("position.longitude"))
    if position is None:
        return None
    lat, lon = position
    speed = number(params.get("position.speed"))
    if speed is not None and speed < 0:
        speed = None
    course = heading(params.get("position.direction"))
    satellites = number(params.get("position.satellites"))
    valid = flag(params.get("position.valid"))
    fix = PositionFix(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        altitude_m=number(params.get("position.altitude")),
        speed_kmh=speed,
        course_deg=course,
        satellites=int(satellites) if satellites is not None and satellites >= 0 else None,
        valid=True if valid is None else valid,
        ignition=flag(params.get("engine.ignition.status")),
        sensors=sensors(params),
    )
    return fix


def sensors(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter that is not identity or a fix field, under its flespi name;
    nested objects flattened with dotted keys, lists and nulls dropped; plus flespi's
    odometer (km) and engine hours under the hub's keys for a platform's own readings
    (``PLATFORM_ODOMETER_KM``, ``PLATFORM_ENGINE_HOURS``)."""
    kept = {
        key: value
        for key, value in params.items()
        if isinstance(key, str) and key not in IDENTITY_KEYS and key not in LIFTED_KEYS
    }
    out = dict(flat_items(kept))
    for target, keys in (
        (PLATFORM_ODOMETER_KM, ODOMETER_KEYS),
        (PLATFORM_ENGINE_HOURS, ENGINE_HOURS_KEYS),
    ):
        for key in keys:
            value = number(params.get(key))
            if value is not None and value >= 0:
                out[target] = value
                break
    return out


def parse_telemetry(item: Any) -> tuple[str, PositionFix, float] | None:
    """A ``/telemetry/all`` item as ``(device id, fix, fix time in epoch seconds)``.

    Each parameter carries its own ``ts``; the fix is the position's (``position.*`` at
    the latitude's ``ts``), with the other parameters reported at that same ``ts``: those
    came with the position, older ones may not describe it.
    """
    if not isinstance(item, Mapping):
        return None
    device_id = device_key(item.get("id"))
    telemetry = item.get("telemetry")
    if device_id is None or not isinstance(telemetry, Mapping):
        return None
    latest = telemetry.get("position.latitude")
    if not isinstance(latest, Mapping):
        return None
    ts = number(latest.get("ts"))
    fix_time = epoch_time(ts)
    if ts is None or fix_time is None:
        return None
    same: dict[str, Any] = {}
    for key, entry in telemetry.items():
        if key == "position" or not isinstance(entry, Mapping):
            continue  # "position" is a composite of the position.* values
        entry_ts = number(entry.get("ts"))
        if entry_ts is not None and abs(entry_ts - ts) < 1e-6:
            same[key] = entry.get("value")
    fix = fix_from_parameters(same, fix_time)
    if fix is None:
        return None
    return device_id, fix, ts


def parse_device(item: Any) -> RemoteDevice | None:
    """A ``/gw/devices`` item as a ``RemoteDevice`` (``None`` without an id)."""
    if not isinstance(item, Mapping):
        return None
    device_id = device_key(item.get("id"))
    if device_id is None:
        return None
    name = item.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else f"flespi device {device_id}"
    configuration = item.get("configuration")
    ident = configuration.get("ident") if isinstance(configuration, Mapping) else None
    imei = str(ident).strip() if isinstance(ident, str | int) and str(ident).strip() else None
    metadata = item.get("metadata")
    plate = None
    if isinstance(metadata, Mapping):
        for key in PLATE_KEYS:
            value = metadata.get(key)
            if isinstance(value, str | int) and str(value).strip():
                plate = str(value).strip()
                break
    extra: dict[str, Any] = {}
    if isinstance(item.get("device_type_id"), int):
        extra["device_type_id"] = item["device_type_id"]
    if isinstance(item.get("connected"), bool):
        extra["connected"] = item["connected"]
    return RemoteDevice(device_id, name, imei=imei, license_plate=plate, extra=extra)
