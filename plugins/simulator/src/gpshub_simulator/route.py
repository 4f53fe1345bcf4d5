"""The waypoint text a simulator connection is configured with, and its parser.

One waypoint per line::

    lat,lon[,wait][,key=value]...

Blank lines and lines starting with ``#`` are skipped.  A bare number in the third field is
shorthand for ``wait=``.  The reserved keys are ``wait``, ``speed``, ``heading``,
``ignition`` and ``sat``; every other key becomes a sensor value.  Keys are case-sensitive.
A value may not contain a comma.

The parser only reads the text: what a key *means* over time (persistence, loops) is
decided by :mod:`gpshub_simulator.motion`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

SensorValue = bool | int | float | str
"""What a sensor written in a waypoint can hold."""

MIN_WAYPOINTS = 2

# Words accepted for ``ignition`` (compared case-insensitively).
_TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
_FALSE_WORDS = frozenset({"false", "no", "off", "0"})

SIMULATED_SENSOR = "simulated"
"""The sensor the source sets to ``True`` on every fix; a route may not set it."""


class RouteError(ValueError):
    """The waypoint text is malformed.

    ``line`` is the 1-based line of the text at fault, or ``None`` when the problem is the
    route as a whole (too few waypoints).  ``reason`` says what is wrong.
    """

    def __init__(self, line: int | None, reason: str) -> None:
        super().__init__(f"line {line}: {reason}" if line is not None else reason)
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Waypoint:
    """One parsed line of the route.

    Every optional attribute is ``None`` (or, for ``sensors``, empty) when the line does
    not set it; ``line`` is where the waypoint was written, for messages.
    """

    lat: float
    lon: float
    line: int = 0
    wait_s: float = 0.0
    speed_kmh: float | None = None
    heading_deg: float | None = None
    ignition: bool | None = None
    satellites: int | None = None
    sensors: Mapping[str, SensorValue] = field(default_factory=lambda: MappingProxyType({}))

    def canonical(self) -> dict[str, object]:
        """The waypoint as plain JSON values, without its line number (for hashing)."""
        return {
            "lat": self.lat,
            "lon": self.lon,
            "wait": self.wait_s,
            "speed": self.speed_kmh,
            "heading": self.heading_deg,
            "ignition": self.ignition,
            "sat": self.satellites,
            "sensors": dict(sorted(self.sensors.items())),
        }


@dataclass(frozen=True, slots=True)
class Route:
    """The waypoints of a route, in the order they are driven (at least two)."""

    waypoints: tuple[Waypoint, ...]

    def __len__(self) -> int:
        return len(self.waypoints)


def parse_route(text: str) -> Route:
    """Parse waypoint text; raise :class:`RouteError` at the first problem."""
    waypoints = [
        _parse_line(number, stripped)
        for number, raw in enumerate(text.splitlines(), start=1)
        if (stripped := raw.strip()) and not stripped.startswith("#")
    ]
    if len(waypoints) < MIN_WAYPOINTS:
        found = "none" if not waypoints else f"only 1 (line {waypoints[0].line})"
        raise RouteError(None, f"a route needs at least {MIN_WAYPOINTS} waypoints, found {found}")
    return Route(tuple(waypoints))


def _parse_line(number: int, line: str) -> Waypoint:
    fields = [part.strip() for part in line.split(",")]
    if len(fields) < 2:
        raise RouteError(number, f"expected 'lat,lon', got {line!r}")
    lat = _coordinate(number, "latitude", fields[0], 90.0)
    lon = _coordinate(number, "longitude", fields[1], 180.0)
    values = _key_values(number, fields[2:])

    wait_s = 0.0
    if "wait" in values:
        wait_s = _number(number, "wait", values.pop("wait"))
        if wait_s < 0:
            raise RouteError(number, f"wait must be 0 or more seconds, got {wait_s:g}")
    speed_kmh = None
    if "speed" in values:
        speed_kmh = _number(number, "speed", values.pop("speed"))
        if speed_kmh <= 0:
            raise RouteError(number, f"speed must be more than 0 km/h, got {speed_kmh:g}")
    heading_deg = None
    if "heading" in values:
        heading_deg = _number(number, "heading", values.pop("heading"))
        if not 0.0 <= heading_deg <= 360.0:
            raise RouteError(
                number, f"heading must be within [0, 360] degrees, got {heading_deg:g}"
            )
    ignition = _boolean(number, values.pop("ignition")) if "ignition" in values else None
    satellites = _count(number, "sat", values.pop("sat")) if "sat" in values else None

    if SIMULATED_SENSOR in values:
        raise RouteError(number, f"{SIMULATED_SENSOR!r} is set by the simulator and cannot be used")
    return Waypoint(
        lat=lat,
        lon=lon,
        line=number,
        wait_s=wait_s,
        speed_kmh=speed_kmh,
        heading_deg=heading_deg,
        ignition=ignition,
        satellites=satellites,
        sensors=MappingProxyType({key: sensor_value(text) for key, text in values.items()}),
    )


def _key_values(number: int, items: list[str]) -> dict[str, str]:
    """The ``key=value`` fields after the coordinates, as written (the wait shorthand expanded)."""
    values: dict[str, str] = {}
    for position, item in enumerate(items, start=3):
        if not item:
            raise RouteError(number, f"field {position} is empty")
        key, sep, value = item.partition("=")
        if not sep:
            if position == 3 and _is_number(item):
                key, value = "wait", item
            else:
                raise RouteError(number, f"expected key=value, got {item!r}")
        key, value = key.strip(), value.strip()
        if not key:
            raise RouteError(number, f"{item!r} has an empty key")
        if key in values:
            raise RouteError(number, f"duplicate key {key!r}")
        if not value:
            raise RouteError(number, f"{key!r} has no value")
        values[key] = value
    return values


def sensor_value(text: str) -> SensorValue:
    """Read a sensor value as what it looks like: int, float, ``true``/``false``, or text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _number(line: int, name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise RouteError(line, f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise RouteError(line, f"{name} {text!r} is not a finite number")
    return value


def _coordinate(line: int, name: str, text: str, limit: float) -> float:
    value = _number(line, name, text)
    if not -limit <= value <= limit:
        raise RouteError(line, f"{name} {value:g} is outside [{-limit:g}, {limit:g}]")
    return value


def _boolean(line: int, text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE_WORDS:
        return True
    if lowered in _FALSE_WORDS:
        return False
    raise RouteError(line, f"ignition {text!r} is not one of true/false, yes/no, on/off, 1/0")


def _count(line: int, name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise RouteError(line, f"{name} {text!r} is not a whole number") from None
    if value < 0:
        raise RouteError(line, f"{name} must be 0 or more, got {value}")
    return value
