"""``PositionFix``: one position as every source hands it to the pipeline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.errors import BadConfig

PLATFORM_ODOMETER_KM = "platform_odometer_km"
"""The ``sensors`` key of the odometer reading the platform reports (km): the vehicle's own
or the platform's count.  The hub's ``odometer_km`` is its own, from the distance between
fixes; a device may take this reading as its system odometer instead."""
PLATFORM_ENGINE_HOURS = "platform_engine_hours"
"""The ``sensors`` key of the engine-hours reading the platform reports (hours)."""


@dataclass(slots=True)
class PositionFix:
    """One position report, in the hub's units (the names carry them).

    Sources convert at their edge: knots to km/h, epoch milliseconds or local times to
    aware UTC datetimes.  ``sensors`` is a free mapping of extra values (numbers,
    booleans, strings); ``raw`` optionally keeps the upstream message for debugging.
    """

    fix_time: datetime
    lat: float
    lon: float
    altitude_m: float | None = None
    speed_kmh: float | None = None
    course_deg: float | None = None
    satellites: int | None = None
    valid: bool = True
    ignition: bool | None = None
    accuracy_m: float | None = None
    sensors: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] | None = None
    source_ip: str | None = None
    source_port: int | None = None

    def validate(self) -> None:
        """Raise ``BadConfig`` naming the first field that is out of range (a naive
        ``fix_time`` included: nothing compares it with an aware time afterwards)."""
        if not isinstance(self.fix_time, datetime):
            raise BadConfig("fix_time", f"must be a datetime, not {type(self.fix_time).__name__}")
        if self.fix_time.utcoffset() is None:
            raise BadConfig("fix_time", "must be timezone-aware")
        if not _finite(self.lat) or not -90.0 <= self.lat <= 90.0:
            raise BadConfig("lat", f"{self.lat!r} is not a latitude in [-90, 90]")
        if not _finite(self.lon) or not -180.0 <= self.lon <= 180.0:
            raise BadConfig("lon", f"{self.lon!r} is not a longitude in [-180, 180]")
        for name in ("altitude_m", "speed_kmh", "course_deg", "accuracy_m"):
            value = getattr(self, name)
            if value is not None and not _finite(value):
                raise BadConfig(name, f"{value!r} is not a finite number")
        if self.speed_kmh is not None and self.speed_kmh < 0:
            raise BadConfig("speed_kmh", "must not be negative")
        if self.course_deg is not None and not 0.0 <= self.course_deg <= 360.0:
            raise BadConfig("course_deg", f"{self.course_deg!r} is not in [0, 360]")
        if self.satellites is not None and (
            not isinstance(self.satellites, int) or self.satellites < 0
        ):
            raise BadConfig("satellites", "must be a non-negative integer")
        if self.accuracy_m is not None and self.accuracy_m < 0:
            raise BadConfig("accuracy_m", "must not be negative")
        if not isinstance(self.sensors, dict):
            raise BadConfig("sensors", "must be a mapping")

    def utc_fix_time(self) -> datetime:
        return self.fix_time.astimezone(UTC)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
