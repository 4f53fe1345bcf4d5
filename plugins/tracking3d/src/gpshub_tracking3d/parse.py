"""3D Tracking JSON to gpshub values: feed records to ``PositionFix``, units to ``RemoteDevice``.

Units at the edge: speed in each record's ``SpeedMeasure``, ``Heading`` in degrees, times
ISO-8601 without an offset (``*Utc``/``*UTC`` fields are UTC, ``*Local`` ones are ignored),
no altitude.  Parsing is tolerant: a record that cannot be used is skipped and counted;
only an answer whose shape is wrong as a whole is an error (``BadShape``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gpshub_tracking3d import wire
from gpshub_tracking3d.readings import embedded
from gpshub_tracking3d.values import (
    BadShape,
    kind_of,
    listed,
    number,
    slug,
    start_id,
)
from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM, PositionFix
from hub.source import RemoteDevice
from hub.upstream_values import ParseStats, coordinates, kept, switch
from hub.upstream_values import iso_time as parse_time

log = logging.getLogger(__name__)

_warned_measures: set[str] = set()


@dataclass(frozen=True, slots=True)
class Position:
    """One usable feed record: whose it is, when the server got it (epoch s), the fix, and
    the account's local-time offset its ``GPSTimeLocal`` shows (seconds, or ``None``)."""

    unit: str
    received: float | None
    fix: PositionFix
    local_offset: float | None = None

    @property
    def arrival(self) -> float:
        """When the server got it, else its fix time: where it stands in the feed."""
        return self.received if self.received is not None else self.fix.fix_time.timestamp()


def local_offset(utc: datetime, local: Any) -> float | None:
    """``GPSTimeLocal`` less the UTC time, rounded to ``wire.LOCAL_OFFSET_STEP_S``; ``None``
    when absent or beyond ±14 h."""
    moment = parse_time(local)
    if moment is None:
        return None
    step = wire.LOCAL_OFFSET_STEP_S
    offset = round((moment - utc).total_seconds() / step) * step
    return float(offset) if abs(offset) <= 14 * 3600 else None


def ignition_of(value: Any) -> bool | None:
    """``Ignition`` (``"On"``, ``"Off"`` or ``""``) as a boolean."""
    return switch(value, numbers="none")


def speed_kmh(speed: Any, measure: Any) -> float | None:
    """``Speed`` in km/h by its ``SpeedMeasure``; ``None`` for an unknown measure (logged
    once per measure)."""
    value = number(speed)
    if value is None or value < 0:
        return None
    key = measure.strip().lower() if isinstance(measure, str) else ""
    factor = wire.SPEED_FACTORS.get(key or wire.DEFAULT_SPEED_MEASURE)
    if factor is None:
        if key not in _warned_measures:
            _warned_measures.add(key)
            log.info("3D Tracking sent an unknown SpeedMeasure %r: speed left out", measure)
        return None
    return value * factor


def _key(*values: Any) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return slug(value)
    return ""


def inputs_outputs(record: Mapping[str, Any]) -> dict[str, bool]:
    """``InputOutputs`` as booleans under their ``SystemName`` lower-cased (``input1``)."""
    out: dict[str, bool] = {}
    entries = record.get("InputOutputs")
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, Mapping) or not isinstance(entry.get("Active"), bool):
            continue
        key = _key(entry.get("SystemName"), entry.get("Description"))
        if key:
            out[key] = entry["Active"]
    return out


def _unit_of(record: Mapping[str, Any]) -> str | None:
    unit = record.get("Unit")
    uid = unit.get("Uid") if isinstance(unit, Mapping) else None
    if uid is None:
        uid = record.get("UnitUid", record.get("Uid"))
    if isinstance(uid, bool) or not isinstance(uid, str | int) or not str(uid).strip():
        return None
    return str(uid).strip()


def _valid(record: Mapping[str, Any], lat: float, lon: float) -> bool:
    for key in wire.VALID_KEYS:
        flag = record.get(key)
        if isinstance(flag, bool):
            return flag
    return not (lat == 0.0 and lon == 0.0)


def parse_record(record: Any, stats: ParseStats | None = None) -> Position | None:
    """One element of ``Result.Position`` of ``Data/PositionsList``; ``None`` if unusable."""
    stats = stats if stats is not None else ParseStats()
    if not isinstance(record, Mapping):
        stats.skip("not an object")
        return None
    unit = _unit_of(record)
    if unit is None:
        stats.skip("no unit")
        return None
    fix_time = parse_time(record.get("GPSTimeUtc", record.get("GPSTimeUTC")))
    if fix_time is None:
        stats.skip("no GPS time")
        return None
    position = coordinates(
        record.get("Latitude"), record.get("Longitude"), text=True, decimal_comma=True
    )
    if position is None:
        stats.skip("no coordinates")
        return None
    lat, lon = position
    course = number(record.get("Heading"))
    if course is not None:
        course = course % 360.0
    satellites, sensors = embedded(record.get("SensorReadings"))
    sensors.update(inputs_outputs(record))
    odometer = number(record.get("Odometer"))
    if odometer is not None and odometer >= 0:
        sensors[PLATFORM_ODOMETER_KM] = odometer * wire.ODOMETER_KM_PER_UNIT
    engine = number(record.get("EngineTime"))
    if engine is not None and engine >= 0:
        sensors[PLATFORM_ENGINE_HOURS] = engine * wire.ENGINE_HOURS_PER_UNIT
    for key, name in (("Address", "address"), ("EngineStatus", "engine_status")):
        text = record.get(key)
        if isinstance(text, str) and text.strip():
            sensors[name] = text.strip()
    poi = record.get("PointOfInterest")
    if isinstance(poi, Mapping) and isinstance(poi.get("Name"), str) and poi["Name"].strip():
        sensors["point_of_interest"] = poi["Name"].strip()
    received = parse_time(record.get("ServerTimeUTC", record.get("ServerTimeUtc")))
    fix = PositionFix(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        speed_kmh=speed_kmh(record.get("Speed"), record.get("SpeedMeasure")),
        course_deg=course,
        satellites=satellites,
        valid=_valid(record, lat, lon),
        ignition=ignition_of(record.get("Ignition")),
        sensors=sensors,
    )
    return Position(
        unit,
        None if received is None else received.timestamp(),
        fix,
        local_offset(fix_time, record.get("GPSTimeLocal")),
    )


@dataclass(frozen=True, slots=True)
class FeedPage:
    """One answer of the delta feed: its usable records, how many it had, the next id, and
    the latest arrival (``Position.arrival``) in it."""

    positions: list[Position]
    size: int
    start_id: int | None
    newest: float | None = None


def parse_feed(result: Any, stats: ParseStats | None = None) -> FeedPage:
    """``Result`` of ``Data/PositionsList`` (``{"Position": [...], "StartId": N}``)."""
    records = listed(result, "Position")
    stats = stats if stats is not None else ParseStats()
    positions = [p for p in (parse_record(r, stats) for r in records) if p is not None]
    stats.report(log, "3D Tracking record(s)", len(records))
    newest = max((p.arrival for p in positions), default=None)
    return FeedPage(positions, len(records), start_id(result.get("StartId")), newest)


def plate_of(information: Any) -> str | None:
    """``Information`` when it looks like a licence plate (see ``wire.PLATE``)."""
    if not isinstance(information, str):
        return None
    text = information.strip()
    return text if wire.PLATE.match(text) else None


def parse_unit(record: Any) -> RemoteDevice | None:
    """One element of ``Units/Unit/List``; ``None`` without a ``Uid``."""
    if not isinstance(record, Mapping):
        return None
    uid = record.get("Uid")
    if isinstance(uid, bool) or not isinstance(uid, str | int) or not str(uid).strip():
        return None
    uid = str(uid).strip()
    imei = record.get("Imei", record.get("IMEI"))
    imei_text = (
        str(imei).strip() if isinstance(imei, str | int) and not isinstance(imei, bool) else ""
    )
    name = record.get("Name")
    extra: dict[str, Any] = {}
    for key, out in (
        ("UnitType", "unit_type"),
        ("GroupName", "group"),
        ("Status", "status"),
        ("LastReportedTimeUTC", "last_seen"),
    ):
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            extra[out] = value.strip()
    return RemoteDevice(
        upstream_id=uid,
        name=name.strip() if isinstance(name, str) and name.strip() else f"3D Tracking {uid}",
        imei=imei_text or None,
        license_plate=plate_of(record.get("Information")),
        extra=extra,
    )


def parse_units(result: Any) -> list[RemoteDevice]:
    """Every usable unit of ``Units/Unit/List``'s ``Result`` (a list)."""
    if result is None:
        return []
    if not isinstance(result, list):
        raise BadShape(f"expected a list of units, got {kind_of(result)}")
    return kept(result, parse_unit, log, "3D Tracking unit record(s) without a Uid")


def by_unit(positions: Iterable[Position]) -> dict[str, list[Position]]:
    """Positions grouped by unit, each group in the given order."""
    out: dict[str, list[Position]] = {}
    for p in positions:
        out.setdefault(p.unit, []).append(p)
    return out
