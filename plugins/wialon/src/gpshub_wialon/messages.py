"""Wialon data messages to ``PositionFix``.

A data message is ``{t, f, tp: "ud", pos: {y, x, z, s, c, sc}, i, o, p: {...}, lc, rt}``:
time in epoch seconds (UTC), latitude ``y``, longitude ``x``, altitude ``z`` (m), speed
``s`` (km/h), course ``c`` (degrees), satellites ``sc``, digital inputs ``i`` and outputs
``o`` as bit masks, device parameters ``p`` and the server's registration time ``rt``.

Parsing is tolerant: a message that cannot be a fix (no time, no position, coordinates out
of range) gives ``None`` and is skipped by the caller; a bad optional value is dropped.

The ignition comes from the unit's ignition sensor when it has one (see
:mod:`gpshub_wialon.sensors`), else from the first of these that the message has:
the parameter ``io_239`` (Teltonika's ignition), ``ign``, ``ignition``,
``engine_ignition``, ``in1``, then bit 0 (digital input 1) of ``i`` when the message
carries inputs (flag ``0x2``).  Any non-zero number is on.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from gpshub_wialon import protocol as p
from gpshub_wialon.sensors import UnitSensors
from hub.fix import PositionFix
from hub.upstream_values import coordinates, flat_items, heading, number, switch

IGNITION_PARAMS = ("io_239", "ign", "ignition", "engine_ignition", "in1")
"""Device parameters read as the ignition of a unit without an ignition sensor, in this
order (then digital input 1 of ``i``)."""
LIFTED_PARAMS = frozenset({"ign", "ignition", "engine_ignition"})
"""Ignition parameters that are not kept as sensors once read as the ignition."""
IO_BITS = 8
"""Inputs/outputs reported as ``in1``..``in8`` / ``out1``..``out8`` booleans."""
MAX_DEPTH = 3


def message_time(message: Any) -> int | None:
    """The message's time ``t`` (epoch seconds), or ``None`` when it has none usable."""
    if not isinstance(message, dict):
        return None
    t = message.get("t")
    if isinstance(t, int) and not isinstance(t, bool) and t > 0:
        return t
    if isinstance(t, float) and math.isfinite(t) and t > 0:
        return int(t)
    return None


def received_time(message: dict[str, Any]) -> float | None:
    """The registration time ``rt`` (when Wialon received it), when present and > 0."""
    rt = message.get("rt")
    if isinstance(rt, int | float) and not isinstance(rt, bool) and math.isfinite(rt) and rt > 0:
        return float(rt)
    return None


def to_datetime(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def parse_message(message: Any, unit: UnitSensors | None = None) -> PositionFix | None:
    """The fix a data message reports, or ``None`` when it reports none; ``unit`` is the
    unit's sensors, when it defines any."""
    t = message_time(message)
    if t is None:
        return None
    pos = message.get("pos")
    if not isinstance(pos, dict):
        return None
    position = coordinates(pos.get("y"), pos.get("x"))
    if position is None:
        return None
    lat, lon = position
    flags = message.get("f")
    flags = flags if isinstance(flags, int) and not isinstance(flags, bool) else 0
    satellites = pos.get("sc")
    if not isinstance(satellites, int) or isinstance(satellites, bool) or satellites < 0:
        satellites = None
    speed = number(pos.get("s"))
    course = heading(pos.get("c"))
    estimated = bool(flags & (p.MSG_LBS | p.MSG_WIFI))
    params = message.get("p")
    sensors = sensors_of(params if isinstance(params, dict) else {})
    if unit is not None and unit.ignition is not None:
        ignition = unit.ignition_of(message)
    else:
        ignition = _common_ignition(message, flags, sensors)
    sensors.update(io_sensors("input", "in", message.get("i")))
    sensors.update(io_sensors("output", "out", message.get("o")))
    if unit is not None:
        for key, value in unit.values(message).items():
            sensors[f"{key}_sensor" if key in sensors else key] = value
    return PositionFix(
        fix_time=to_datetime(t),
        lat=lat,
        lon=lon,
        altitude_m=number(pos.get("z")),
        speed_kmh=speed if speed is not None and speed >= 0 else None,
        course_deg=course,
        satellites=satellites,
        valid=satellites != 0 and not estimated,
        ignition=ignition,
        sensors=sensors,
    )


def _common_ignition(message: dict[str, Any], flags: int, sensors: dict[str, Any]) -> bool | None:
    """The ignition of a unit without an ignition sensor (see the module docstring); the
    parameter it came from leaves ``sensors`` when it is one of ``LIFTED_PARAMS``."""
    for name in IGNITION_PARAMS:
        if name in sensors:
            ignition = as_bool(sensors[name])
            if ignition is not None:
                if name in LIFTED_PARAMS:
                    del sensors[name]
                return ignition
    inputs = message.get("i")
    if flags & p.MSG_INPUTS and isinstance(inputs, int) and not isinstance(inputs, bool):
        return bool(inputs & 1)
    return None


def sensors_of(params: dict[str, Any]) -> dict[str, Any]:
    """Device parameters as sensors, names verbatim: numbers, booleans and text kept;
    nested objects flattened with dotted names; lists and nulls dropped."""
    return dict(flat_items(params, max_depth=MAX_DEPTH))


def io_sensors(name: str, bit_prefix: str, value: Any) -> dict[str, Any]:
    """``{"input": 5, "in1": True, "in2": False, "in3": True, ...}`` from a bit mask."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return {}
    out: dict[str, Any] = {name: value}
    for bit in range(IO_BITS):
        out[f"{bit_prefix}{bit + 1}"] = bool(value >> bit & 1)
    return out


def as_bool(value: Any) -> bool | None:
    """An ignition parameter as a boolean: numbers (0 = off), booleans, on/off words."""
    return switch(value, numbers="nonzero")
