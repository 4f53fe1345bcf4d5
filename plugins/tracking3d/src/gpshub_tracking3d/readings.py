"""Sensor readings: ``Data/SensorReadingsList`` to values, keys, and their match to fixes.

3D Tracking keeps sensor values (satellites, fuel, temperatures, voltages, GSM signal)
apart from positions: each reading names its unit (``UnitUid``), its ``SensorType`` (the
platform's kind of sensor), the ``Name`` the user gave that sensor on that unit, a text
``Value``, a ``MeasurementSign`` and a time without an offset (``ReadingTimeLocal``, in
the account's local time, or a UTC variant).

Keys.  A reading of type "Satellite Count" becomes the fix's ``satellites``.  Any other
is keyed by the snake_case of its ``SensorType`` (``"Fuel Level"`` -> ``fuel_level``), so
a sensor has the same key on every unit whatever the user named it; a reading whose type
says nothing (``Custom``, ``Analog Input``, none: ``wire.GENERIC_SENSOR_TYPES``) is keyed
by its ``Name`` instead.  Two sensors of one type on one unit in the same answer (two
temperature probes) are told apart by their names: ``temperature_rear``.  A numeric value
keeps its unit sign as a suffix, as the hub's own fields do (``"V"`` ->
``external_battery_v``, ``"%"`` -> ``_pct``, ``"°C"`` -> ``_c``); other values are kept as
booleans (``true``/``false``) or text.

Matching.  A fix gets, for each key, the newest reading of its unit taken at or before its
fix time and at most ``window_s`` before it; a reading can so serve several fixes close
together (a sensor reported less often than the position).  Readings newer than a unit's
newest fix wait in the unit's cursor for the fixes of later polls, with the newest older
one still within the window.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gpshub_tracking3d import wire
from gpshub_tracking3d.values import listed, number, sensor_value, slug, start_id
from hub.fix import PositionFix
from hub.upstream_values import count as whole
from hub.upstream_values import iso_time as parse_time

log = logging.getLogger(__name__)

SATELLITES = "@satellites"
"""The pool's key of the satellite count (no sensor key can start with ``@``)."""

CARRY_PER_KEY = 32
"""At most this many readings per key wait in a cursor for later fixes."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One usable reading: whose, when (UTC epoch seconds), under which key, and its value."""

    unit: str
    t: float
    key: str
    value: float | bool | str


@dataclass(frozen=True, slots=True)
class ReadingsPage:
    """One answer of ``Data/SensorReadingsList``: its usable readings, how many it had, the
    next ``StartId`` and the newest reading time in it."""

    readings: list[Reading]
    size: int
    start_id: int | None
    newest: float | None


@dataclass(frozen=True, slots=True)
class _Row:
    unit: str | None
    t: float | None
    kind: str
    name: str
    sign: str
    value: float | bool | str | None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _unit_of(entry: Mapping[str, Any]) -> str | None:
    uid = entry.get("UnitUid", entry.get("Uid"))
    unit = entry.get("Unit")
    if uid is None and isinstance(unit, Mapping):
        uid = unit.get("Uid")
    if isinstance(uid, bool) or not isinstance(uid, str | int) or not str(uid).strip():
        return None
    return str(uid).strip()


def reading_time(entry: Mapping[str, Any], offset: Callable[[], float | None]) -> float | None:
    """A reading's time as UTC epoch seconds: its UTC field, else its local time less the
    account's offset, asked of ``offset()`` only then (``None`` when neither can be used)."""
    for key in wire.READING_UTC_KEYS:
        moment = parse_time(entry.get(key))
        if moment is not None:
            return moment.timestamp()
    local = parse_time(entry.get("ReadingTimeLocal"))
    offset_s = None if local is None else offset()
    if local is None or offset_s is None:
        return None
    return local.timestamp() - offset_s


def _row(entry: Any, offset_of: Callable[[str], float | None] | None) -> _Row | None:
    if not isinstance(entry, Mapping):
        return None
    unit = _unit_of(entry)
    t = None
    if offset_of is not None and unit is not None:
        t = reading_time(entry, lambda: offset_of(unit))
    return _Row(
        unit,
        t,
        _text(entry.get("SensorType")),
        _text(entry.get("Name")),
        _text(entry.get("MeasurementSign")),
        sensor_value(entry.get("Value")),
    )


def _sign_key(sign: str) -> str:
    lowered = sign.lower()
    return wire.SIGN_KEYS.get(lowered) or slug(lowered)


def _keys(rows: list[_Row]) -> list[str]:
    """Each row's key (see the module docstring); ``""`` when it has none."""
    names: dict[tuple[str | None, str], set[str]] = {}
    for row in rows:
        kind = slug(row.kind)
        if row.kind.lower() not in wire.GENERIC_SENSOR_TYPES and kind:
            names.setdefault((row.unit, kind), set()).add(slug(row.name))
    keys = []
    for row in rows:
        if row.kind.lower() == wire.SATELLITE_SENSOR_TYPE:
            keys.append(SATELLITES)
            continue
        kind, name = slug(row.kind), slug(row.name)
        if row.kind.lower() not in wire.GENERIC_SENSOR_TYPES and kind:
            twins = len(names.get((row.unit, kind), ())) > 1
            key = f"{kind}_{name}" if twins and name and name != kind else kind
        else:
            key = name or kind
        if key and isinstance(row.value, float) and row.sign:
            suffix = _sign_key(row.sign)
            if suffix and not key.endswith(f"_{suffix}"):
                key = f"{key}_{suffix}"
        keys.append(key)
    return keys


def embedded(entries: Any) -> tuple[int | None, dict[str, Any]]:
    """The satellite count and the other sensors of a ``SensorReadings`` list carried in
    a position record (``LatestPositionsList`` does; the feed may), keyed as above."""
    items = entries if isinstance(entries, list) else []
    usable = [r for r in (_row(e, None) for e in items) if r is not None]
    satellites: int | None = None
    sensors: dict[str, Any] = {}
    for row, key in zip(usable, _keys(usable), strict=True):
        if key == SATELLITES:
            satellites = whole(row.value, text=True, decimal_comma=True)
        elif key and row.value is not None:
            sensors[key] = row.value
    return satellites, sensors


def parse_readings(result: Any, offset_of: Callable[[str], float | None]) -> ReadingsPage:
    """``Result`` of ``Data/SensorReadingsList`` (``{"SensorReadings": [...], "StartId": N}``);
    ``offset_of(unit)`` is the account's local-time offset (seconds) where known."""
    entries = listed(result, "SensorReadings")
    rows = [r for r in (_row(e, offset_of) for e in entries) if r is not None]
    readings: list[Reading] = []
    newest: float | None = None
    for row, key in zip(rows, _keys(rows), strict=True):
        if row.t is not None:
            newest = row.t if newest is None else max(newest, row.t)
        if row.unit is None or row.t is None or not key or row.value is None:
            continue
        if key == SATELLITES:
            count = whole(row.value, text=True, decimal_comma=True)
            if count is not None:
                readings.append(Reading(row.unit, row.t, key, count))
            continue
        readings.append(Reading(row.unit, row.t, key, row.value))
    skipped = len(entries) - len(readings)
    if skipped:
        log.debug("skipped %d of %d 3D Tracking sensor reading(s)", skipped, len(entries))
    return ReadingsPage(readings, len(entries), start_id(result.get("StartId")), newest)


@dataclass(slots=True)
class _Series:
    """One unit's readings of one key, by time."""

    times: list[float] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)

    def add(self, t: float, value: Any) -> None:
        i = bisect.bisect_left(self.times, t)
        if i < len(self.times) and self.times[i] == t:
            self.values[i] = value
        else:
            self.times.insert(i, t)
            self.values.insert(i, value)

    def at(self, t: float, window: float) -> tuple[bool, Any]:
        i = bisect.bisect_right(self.times, t) - 1
        if i >= 0 and self.times[i] >= t - window:
            return True, self.values[i]
        return False, None


class ReadingPool:
    """Readings per unit and key, matched to fixes (see the module docstring)."""

    def __init__(self, window_s: float) -> None:
        self.window = max(window_s, 0.0)
        self._units: dict[str, dict[str, _Series]] = {}

    def add(self, reading: Reading) -> None:
        series = self._units.setdefault(reading.unit, {})
        series.setdefault(reading.key, _Series()).add(reading.t, reading.value)

    def add_all(self, readings: Iterable[Reading]) -> None:
        for reading in readings:
            self.add(reading)

    def load(self, unit: str, saved: Any) -> None:
        """Readings a cursor kept for ``unit`` (what ``carry`` returned); garbage is ignored."""
        if not isinstance(saved, Mapping):
            return
        for key, pairs in saved.items():
            if not isinstance(key, str) or not isinstance(pairs, list):
                continue
            for pair in pairs:
                if not (isinstance(pair, list) and len(pair) == 2):
                    continue
                t, value = number(pair[0]), pair[1]
                if t is not None and isinstance(value, bool | int | float | str):
                    self.add(Reading(unit, t, key, value))

    def attach(self, unit: str, fix: PositionFix) -> None:
        """Give ``fix`` the readings of ``unit`` that belong to it; what the record itself
        carried stays."""
        series = self._units.get(unit)
        if not series:
            return
        t = fix.fix_time.timestamp()
        for key, values in series.items():
            found, value = values.at(t, self.window)
            if not found:
                continue
            if key == SATELLITES:
                if fix.satellites is None and isinstance(value, int | float):
                    fix.satellites = int(value)
            else:
                fix.sensors.setdefault(key, value)

    def carry(self, unit: str, newest_fix: float | None) -> dict[str, list[list[Any]]]:
        """What ``unit``'s cursor keeps for later fixes: per key, the readings after its
        newest fix and the newest one at or before it that is still within the window."""
        out: dict[str, list[list[Any]]] = {}
        for key, series in (self._units.get(unit) or {}).items():
            keep: list[list[Any]] = []
            for t, value in zip(series.times, series.values, strict=True):
                if newest_fix is None or t > newest_fix:
                    keep.append([t, value])
                elif t >= newest_fix - self.window:
                    keep[:] = [[t, value]]  # only the newest of those
            if keep:
                out[key] = keep[-CARRY_PER_KEY:]
        return out
