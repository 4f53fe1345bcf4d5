"""What the hub derives from each position, for every source alike.

Per device the hub keeps a small state (``DeviceState``) that advances with each new fix
in fix-time order; a fix older than the newest one is stored but never moves it.  From it
and the fix come:

* the **event code** (see ``EventCode``);
* the **system odometer** (km) and **hour meter** (hours), which users cannot change;
  the virtual ones are the system values plus the device's offsets;
* confirmed **motion** (moving / stopped) with hysteresis, so a parked vehicle's GPS
  jitter does not flap.

Rules, in numbers (``MotionRules``, ``OdometerRules``):

* Moving means speed above 5 km/h (implied from distance and time when the source gives
  no speed).  The confirmed state flips only after the other state has held for a
  minimum time: 20 s to start moving, 120 s to stop.
* The odometer adds the great-circle distance between consecutive valid fixes.  A
  segment implying more than 300 km/h is a jump: it is not counted and the last good
  point stays the anchor; after 3 fixes that agree with each other but not with the
  anchor, the anchor moves to them without counting the jump.  Segments shorter than
  15 m between two fixes reported at or below walking pace are parked jitter and are
  not counted.
* The hour meter adds the time between two consecutive fixes when both have the
  ignition on.
* A device may take its platform's readings instead (``odometer_source`` /
  ``hours_source`` = ``platform``): a fix carrying the reading sets the system value to
  it; between readings the hub's own count goes on from the last one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum
from typing import Any

from hub.geo import haversine_m


class EventCode(IntEnum):
    """The ``code`` of a location (Startrack's 0–3, then ours)."""

    MOVING = 0
    STOPPED = 1
    IGNITION_OFF = 2
    IGNITION_ON = 3
    ENTERED_GEOFENCE = 4
    EXITED_GEOFENCE = 5
    BACK_ONLINE = 6  # the first fix after the device was offline
    INVALID_FIX = 7  # the source marked the fix invalid

    @classmethod
    def describe(cls) -> dict[int, str]:
        return {c.value: c.name.lower() for c in cls}


@dataclass(frozen=True, slots=True)
class MotionRules:
    moving_kmh: float = 5.0
    start_after_s: float = 20.0
    stop_after_s: float = 120.0


@dataclass(frozen=True, slots=True)
class OdometerRules:
    max_plausible_kmh: float = 300.0
    reanchor_after: int = 3
    jitter_m: float = 15.0
    slow_kmh: float = 5.0  # at or below: standing still, for the jitter rule


@dataclass(slots=True)
class DeviceState:
    """The derived state of one device, persisted as JSON between batches."""

    last_time: float | None = None  # fix time (epoch seconds) of the newest fix applied
    lat: float | None = None
    lon: float | None = None
    speed_kmh: float | None = None
    ignition: bool | None = None
    odometer_km: float = 0.0
    hours: float = 0.0
    moving: bool | None = None  # confirmed motion
    candidate: bool | None = None  # the other motion state, while it is being confirmed
    candidate_since: float | None = None
    anchor: list[float] | None = None  # [lat, lon, epoch s] of the odometer's last good point
    pending: list[list[float]] = field(default_factory=list)  # fixes disagreeing with it
    inside: list[int] = field(default_factory=list)  # geofence ids at the newest fix
    offline: bool = False  # set by the status watcher, cleared by the next fix
    rules: dict[str, Any] = field(default_factory=dict)  # per-rule state, by rule id

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> DeviceState:
        if not data:
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if not isinstance(known.get("last_time"), int | float | None):
            return cls()  # written by an older version: start afresh rather than guess
        return cls(**known)

    def to_json(self) -> dict[str, Any]:
        # by hand: dataclasses.asdict deep-copies, and this runs for every device in
        # every batch
        return {name: getattr(self, name) for name in _STATE_FIELDS}


_STATE_FIELDS = tuple(DeviceState.__dataclass_fields__)


@dataclass(slots=True)
class Derived:
    """What one fix adds to its position row."""

    event_code: int
    odometer_km: float
    hours: float
    moving: bool
    started_moving: bool = False
    stopped: bool = False
    ignition_changed: bool | None = None  # True: on, False: off, None: no change
    entered: list[int] = field(default_factory=list)
    exited: list[int] = field(default_factory=list)
    in_order: bool = True  # False for a fix older than the newest one


def advance(
    state: DeviceState,
    fix_time: datetime,
    lat: float,
    lon: float,
    speed_kmh: float | None,
    ignition: bool | None,
    valid: bool,
    inside: list[int],
    motion: MotionRules = MotionRules(),
    odo: OdometerRules = OdometerRules(),
    *,
    platform_odometer_km: float | None = None,
    platform_hours: float | None = None,
) -> Derived:
    """Apply one new fix to ``state`` (in place) and say what it derived.

    A fix not newer than the state's newest is out of order: it gets the current
    odometer and hours and an event code from its own speed, and changes nothing.
    ``platform_odometer_km`` / ``platform_hours``, when given, are the platform's readings
    the system odometer / hour meter take instead of the hub's count.
    """
    t = fix_time.timestamp()
    first = state.last_time is None
    if state.last_time is not None and t <= state.last_time:
        moving = _speed_moving(speed_kmh, motion)
        code = (
            EventCode.INVALID_FIX
            if not valid
            else (EventCode.MOVING if moving else EventCode.STOPPED)
        )
        return Derived(int(code), state.odometer_km, state.hours, moving, in_order=False)

    prev_t = state.last_time
    if speed_kmh is None and valid and state.lat is not None and prev_t is not None and t > prev_t:
        speed_kmh = haversine_m(state.lat, state.lon, lat, lon) / (t - prev_t) * 3.6  # type: ignore[arg-type]

    # hour meter: both fixes with the ignition on
    if prev_t is not None and state.ignition and ignition:
        state.hours += (t - prev_t) / 3600.0

    if valid:
        _odometer(state, lat, lon, t, speed_kmh, odo)
    if platform_odometer_km is not None:
        state.odometer_km = platform_odometer_km
        if valid:  # the hub counts on from here until the next reading
            state.anchor, state.pending = [lat, lon, t], []
    if platform_hours is not None:
        state.hours = platform_hours

    # motion, confirmed with hysteresis
    raw_moving = bool(speed_kmh is not None and speed_kmh > motion.moving_kmh)
    started = stopped = False
    if state.moving is None:
        state.moving = raw_moving
    elif raw_moving == state.moving:
        state.candidate = state.candidate_since = None
    else:
        if state.candidate is None or state.candidate != raw_moving:
            state.candidate, state.candidate_since = raw_moving, t
        held = t - (state.candidate_since or t)
        if held >= (motion.start_after_s if raw_moving else motion.stop_after_s):
            state.moving = raw_moving
            state.candidate = state.candidate_since = None
            started, stopped = raw_moving, not raw_moving

    ign_changed: bool | None = None
    if ignition is not None and state.ignition is not None and ignition != state.ignition:
        ign_changed = ignition
    entered = [] if first else sorted(set(inside) - set(state.inside))
    exited = [] if first else sorted(set(state.inside) - set(inside))
    back_online = state.offline and not first

    if not valid:
        code = EventCode.INVALID_FIX
    elif ign_changed is True:
        code = EventCode.IGNITION_ON
    elif ign_changed is False:
        code = EventCode.IGNITION_OFF
    elif entered:
        code = EventCode.ENTERED_GEOFENCE
    elif exited:
        code = EventCode.EXITED_GEOFENCE
    elif back_online:
        code = EventCode.BACK_ONLINE
    else:
        code = EventCode.MOVING if state.moving else EventCode.STOPPED

    state.last_time = t
    if valid:
        state.lat, state.lon = lat, lon
        state.inside = sorted(inside)
    state.speed_kmh = speed_kmh
    if ignition is not None:
        state.ignition = ignition
    state.offline = False
    return Derived(
        int(code),
        state.odometer_km,
        state.hours,
        bool(state.moving),
        started_moving=started,
        stopped=stopped,
        ignition_changed=ign_changed,
        entered=entered if valid else [],
        exited=exited if valid else [],
    )


def _speed_moving(speed_kmh: float | None, motion: MotionRules) -> bool:
    return bool(speed_kmh is not None and speed_kmh > motion.moving_kmh)


def _odometer(
    state: DeviceState,
    lat: float,
    lon: float,
    t: float,
    speed_kmh: float | None,
    odo: OdometerRules,
) -> None:
    if state.anchor is None:
        state.anchor = [lat, lon, t]
        return
    a_lat, a_lon, a_t = state.anchor
    dist = haversine_m(a_lat, a_lon, lat, lon)
    dt = t - a_t
    if dt > 0 and dist / dt * 3.6 > odo.max_plausible_kmh:
        # a jump: keep the anchor, unless the last few fixes agree among themselves
        if state.pending:
            p_lat, p_lon, p_t = state.pending[-1]
            step = haversine_m(p_lat, p_lon, lat, lon)
            if t > p_t and step / (t - p_t) * 3.6 > odo.max_plausible_kmh:
                state.pending = []
        state.pending.append([lat, lon, t])
        if len(state.pending) >= odo.reanchor_after:
            state.anchor, state.pending = [lat, lon, t], []
        return
    state.pending = []
    slow = speed_kmh is None or speed_kmh <= odo.slow_kmh
    if dist < odo.jitter_m and slow:
        return  # parked jitter: keep the anchor so slow real motion still adds up
    state.odometer_km += dist / 1000.0
    state.anchor = [lat, lon, t]
