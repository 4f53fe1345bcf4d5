"""A unit's sensors, as Wialon defines them, evaluated on its messages.

In Wialon the meaning of a device's parameters is set per unit: a *sensor* has a name
chosen by the user (``n``), a type (``t``: ``engine operation`` is the ignition, ``fuel
level``, ``temperature``, ``mileage``, ``engine hours``, ``voltage``, …), a unit of measure
(``m``), a parameter expression (``p``, see :mod:`gpshub_wialon.expression`), flags
(``f``), a configuration (``c``, JSON text: ``lower_bound`` / ``upper_bound`` among
others), a calculation table (``tbl``: rows ``{x, a, b}``) and an optional validating
sensor (``vs``, with the validation type ``vt``).  ``core/search_items`` returns them in
``sens`` with the unit flag 4096; the plugin reads them with the unit list (the periodic
device sync), so polls cost nothing more.

A sensor's value in a message is computed as Wialon documents it: the parameter
expression; the bounds, on that raw value (on the calculated one with flag 0x40), a value
outside them being no value; the calculation table (the row with the largest ``x`` not
above the value, or the first row below them all: ``a * value + b``); then the validation
against the validating sensor.

What reaches a fix:

* the first ``engine operation`` sensor (by id) gives the fix's ``ignition`` (non-zero is
  on); a unit without one is handled by :mod:`gpshub_wialon.messages`;
* the first ``mileage`` sensor gives ``hub.PLATFORM_ODOMETER_KM`` (converted to km from
  its unit: ``m``, ``mi``, ``nmi``, else km) and the first ``engine hours`` sensor
  ``hub.PLATFORM_ENGINE_HOURS`` (from ``min`` or ``s``, else hours);
* every ``fuel level``, ``temperature`` and ``voltage`` sensor (and any further mileage or
  engine-hours sensor) goes into ``sensors`` under its name in snake_case (``Fuel tank
  1`` → ``fuel_tank_1``).

A sensor that cannot be evaluated (an unsupported expression, a differential sensor, a
missing referenced or validating sensor, a reference loop) is left out, and reported by
``parse_sensors`` so the caller can log it once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from gpshub_wialon.expression import Expression, Unsupported, Value, compile_expression, number
from hub.fix import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM

IGNITION = "engine operation"
MILEAGE = "mileage"
ENGINE_HOURS = "engine hours"
PLATFORM_KEYS = {MILEAGE: PLATFORM_ODOMETER_KM, ENGINE_HOURS: PLATFORM_ENGINE_HOURS}
"""The sensor types whose first sensor gives the platform's own counter readings."""
NAMED_TYPES = frozenset({"fuel level", "temperature", "voltage"})
"""Sensor types whose values go into ``sensors`` under the sensor's name."""
KIND_MASK = 0x0F
DIFFERENTIAL = frozenset({0x02, 0x03})
"""Sensor kinds (``f & 0x0F``) whose value is a change between messages: not evaluated."""
BOUNDS_AFTER = 0x40
"""Sensor flag: the bounds apply to the calculated value, not the raw one."""
MAX_DEPTH = 8

_KM_PER = {"m": 0.001, "meter": 0.001, "meters": 0.001, "metre": 0.001, "metres": 0.001,
           "м": 0.001, "mi": 1.609344, "mile": 1.609344, "miles": 1.609344,
           "nmi": 1.852, "nm": 1.852}  # fmt: skip
_HOURS_PER = {"min": 1 / 60, "mins": 1 / 60, "minutes": 1 / 60, "мин": 1 / 60,
              "s": 1 / 3600, "sec": 1 / 3600, "seconds": 1 / 3600, "с": 1 / 3600}  # fmt: skip
_NOT_WORD = re.compile(r"[^\w]+")


def _validate(kind: int, s: float, v: float) -> Value:
    """A sensor value ``s`` checked against its validator's ``v`` (validation types 1–11)."""
    if kind == 1:
        return float(s != 0 and v != 0)
    if kind == 2:
        return float(s != 0 or v != 0)
    if kind == 3:
        return float(int(s) & int(v))
    if kind == 4:
        return float(int(s) | int(v))
    if kind == 5:
        return s + v
    if kind == 6:
        return s - v
    if kind == 7:
        return v - s
    if kind == 8:
        return s * v
    if kind == 9:
        return s / v if v else None
    if kind == 10:
        return v / s if s else None
    if kind == 11:
        return s if v != 0 else None
    return None


VALIDATION_TYPES = range(1, 12)


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor definition, ready to evaluate."""

    id: int
    name: str
    type: str
    metrics: str
    expression: Expression
    table: tuple[tuple[float, float, float], ...] = ()
    lower: float | None = None
    upper: float | None = None
    bounds_after: bool = False
    validation: int = 0
    validator: int = 0

    def calculate(self, raw: Value) -> Value:
        """Bounds and calculation table applied to the expression's value."""
        if raw is None or (not self.bounds_after and not self._within(raw)):
            return None
        value = raw
        if self.table:
            _, a, b = self.table[0]  # below every row: the first row's line
            for x, row_a, row_b in self.table:
                if x <= raw:
                    a, b = row_a, row_b
            value = a * raw + b
        if self.bounds_after and not self._within(value):
            return None
        return value if math.isfinite(value) else None

    def _within(self, value: float) -> bool:
        return (self.lower is None or value >= self.lower) and (
            self.upper is None or value <= self.upper
        )


@dataclass
class UnitSensors:
    """The sensors of one unit that reach its fixes (see the module docstring)."""

    by_id: dict[int, Sensor] = field(default_factory=dict)
    by_name: dict[str, Sensor] = field(default_factory=dict)
    ignition: Sensor | None = None
    outputs: list[tuple[str, Sensor, float]] = field(default_factory=list)
    """``(sensors key, sensor, factor to the hub's unit)``."""

    def ignition_of(self, message: Mapping[str, Any]) -> bool | None:
        """The ignition sensor's reading: on, off, or ``None`` without a value."""
        if self.ignition is None:
            return None
        value = self.value(self.ignition, message, {}, ())
        return None if value is None else value != 0

    def values(self, message: Mapping[str, Any]) -> dict[str, float]:
        """The output sensors' values in a message (those that have one)."""
        memo: dict[int, Value] = {}
        out: dict[str, float] = {}
        for key, sensor, factor in self.outputs:
            value = self.value(sensor, message, memo, ())
            if value is not None:
                out[key] = value * factor
        return out

    def value(
        self,
        sensor: Sensor,
        message: Mapping[str, Any],
        memo: dict[int, Value],
        stack: tuple[int, ...],
    ) -> Value:
        """A sensor's value in a message, references and validation included."""
        if sensor.id in memo:
            return memo[sensor.id]
        if sensor.id in stack or len(stack) >= MAX_DEPTH:
            return None

        def resolve(name: str) -> Value:
            other = self.by_name.get(name)
            if other is None:
                return None
            return self.value(other, message, memo, (*stack, sensor.id))

        value = sensor.calculate(sensor.expression.evaluate(message, resolve))
        if value is not None and sensor.validator:
            validator = self.by_id.get(sensor.validator)
            v = (
                None
                if validator is None
                else self.value(validator, message, memo, (*stack, sensor.id))
            )
            value = None if v is None else _validate(sensor.validation, value, v)
        memo[sensor.id] = value
        return value


def parse_sensors(item: Mapping[str, Any]) -> tuple[UnitSensors | None, list[str]]:
    """The sensors of a ``core/search_items`` unit (``None`` when it has none that reach
    a fix), and a description of each used sensor that had to be left out."""
    raw = item.get("sens")
    entries = raw.values() if isinstance(raw, Mapping) else raw if isinstance(raw, list) else ()
    unit = UnitSensors()
    broken: dict[int, str] = {}
    definitions: list[tuple[int, str, str]] = []  # (id, name, type)
    for entry in entries:
        parsed = _definition(entry)
        if parsed is None:
            continue
        sensor_id, name, kind, result = parsed
        definitions.append((sensor_id, name, kind))
        if isinstance(result, Sensor):
            unit.by_id[sensor_id] = result
        else:
            broken[sensor_id] = result
    # a name used twice refers to the sensor with the lowest id
    names = {name: sensor_id for sensor_id, name, _ in sorted(definitions, reverse=True)}
    unit.by_name = {name: unit.by_id[i] for name, i in names.items() if i in unit.by_id}
    problems: list[str] = []
    used: set[str] = set()
    firsts: dict[str, int] = {}
    for sensor_id, name, kind in sorted(definitions):
        first = kind in (IGNITION, *PLATFORM_KEYS) and kind not in firsts
        if not first and kind not in NAMED_TYPES and kind not in PLATFORM_KEYS:
            continue  # a type we do not map, or a second ignition sensor
        problem = _problem(sensor_id, unit, broken, names, ())
        if problem is not None:
            problems.append(f"sensor {name!r} ({kind}): {problem}")
            continue
        sensor = unit.by_id[sensor_id]
        if first:
            firsts[kind] = sensor_id
            if kind == IGNITION:
                unit.ignition = sensor
                continue
            key = PLATFORM_KEYS[kind]
            factor = _km(sensor.metrics) if kind == MILEAGE else _hours(sensor.metrics)
        else:
            key, factor = sensor_key(name, sensor_id, used), 1.0
        used.add(key)
        unit.outputs.append((key, sensor, factor))
    if unit.ignition is None and not unit.outputs:
        return None, problems
    return unit, problems


def _definition(entry: Any) -> tuple[int, str, str, Sensor | str] | None:
    """``(id, name, type, the sensor or why it cannot be evaluated)``; ``None`` for an
    entry that is not a sensor at all."""
    if not isinstance(entry, Mapping):
        return None
    sensor_id, name, kind = entry.get("id"), entry.get("n"), entry.get("t")
    if not isinstance(sensor_id, int) or isinstance(sensor_id, bool) or not isinstance(name, str):
        return None
    kind = kind.strip().lower() if isinstance(kind, str) else ""
    name = name.strip()
    flags = _int(entry.get("f"))
    if flags & KIND_MASK in DIFFERENTIAL:
        return sensor_id, name, kind, "a differential sensor (its value needs the previous message)"
    param = entry.get("p")
    try:
        expression = compile_expression(param if isinstance(param, str) else "")
    except Unsupported as exc:
        return sensor_id, name, kind, f"parameter {str(param)[:60]!r}: {exc}"
    validator = _int(entry.get("vs"))
    validation = _int(entry.get("vt"))
    if validator and validation not in VALIDATION_TYPES:
        return sensor_id, name, kind, f"unknown validation type {validation}"
    lower, upper = _bounds(entry.get("c"))
    metrics = entry.get("m")
    return (
        sensor_id,
        name,
        kind,
        Sensor(
            id=sensor_id,
            name=name,
            type=kind,
            metrics=metrics.strip() if isinstance(metrics, str) else "",
            expression=expression,
            table=_table(entry.get("tbl")),
            lower=lower,
            upper=upper,
            bounds_after=bool(flags & BOUNDS_AFTER),
            validation=validation,
            validator=validator,
        ),
    )


def _problem(
    sensor_id: int,
    unit: UnitSensors,
    broken: Mapping[int, str],
    names: Mapping[str, int],
    stack: tuple[int, ...],
) -> str | None:
    """Why a sensor cannot be evaluated (itself or a sensor it depends on), or ``None``."""
    if sensor_id in broken:
        return broken[sensor_id]
    if sensor_id in stack:
        return "its sensors refer to each other in a loop"
    sensor = unit.by_id[sensor_id]
    depends: list[int] = []
    for name in sorted(sensor.expression.sensors):
        if name not in names:
            return f"it refers to a sensor [{name}] the unit does not have"
        depends.append(names[name])
    if sensor.validator:
        if sensor.validator not in unit.by_id and sensor.validator not in broken:
            return f"its validating sensor {sensor.validator} does not exist"
        depends.append(sensor.validator)
    for other in depends:
        problem = _problem(other, unit, broken, names, (*stack, sensor_id))
        if problem is not None:
            return problem
    return None


def sensor_key(name: str, sensor_id: int, taken: Iterable[str] = ()) -> str:
    """A sensor's name as a ``sensors`` key: snake_case, unique among ``taken``."""
    key = _NOT_WORD.sub("_", name.strip().lower()).strip("_") or f"sensor_{sensor_id}"
    return f"{key}_{sensor_id}" if key in set(taken) else key


def _km(metrics: str) -> float:
    return _KM_PER.get(metrics.strip().lower().rstrip("."), 1.0)


def _hours(metrics: str) -> float:
    return _HOURS_PER.get(metrics.strip().lower().rstrip("."), 1.0)


def _bounds(config: Any) -> tuple[float | None, float | None]:
    """``lower_bound`` / ``upper_bound`` of a sensor's configuration (JSON text); equal or
    crossed bounds count as none."""
    if isinstance(config, str):
        try:
            config = orjson.loads(config)
        except orjson.JSONDecodeError:
            return None, None
    if not isinstance(config, Mapping):
        return None, None
    lower, upper = number(config.get("lower_bound")), number(config.get("upper_bound"))
    if lower is not None and upper is not None and lower >= upper:
        return None, None
    return lower, upper


def _table(rows: Any) -> tuple[tuple[float, float, float], ...]:
    """A calculation table as ``(x, a, b)`` rows sorted by ``x`` (bad rows dropped)."""
    out = []
    for row in rows if isinstance(rows, list) else ():
        if isinstance(row, Mapping):
            x, a, b = (number(row.get(k)) for k in ("x", "a", "b"))
            if x is not None and a is not None and b is not None:
                out.append((x, a, b))
    return tuple(sorted(out))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
