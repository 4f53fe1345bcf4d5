"""``SimulatorSource``: the hub-facing side of the simulator.

Each device of a simulator connection drives the connection's route on its own clock: the
moment it was first polled is kept in its cursor, so where it is now is a pure function
of the wall-clock time since then.  A restart of the hub therefore continues the trip
where it would have been, and changing the route (or the default speed, or the loop
mode) sends every device back to the start.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from gpshub_simulator.motion import DEFAULT_SPEED_KMH, Trip, VehicleState
from gpshub_simulator.route import SIMULATED_SENSOR, Route, RouteError, parse_route
from hub import (
    GROUP_EXTERNAL,
    Cadence,
    Cursor,
    DeviceRef,
    NoOptions,
    PollResult,
    PositionFix,
    Source,
    SourceContext,
)

STARTED_AT = "started_at"
"""Cursor state key: when the device set off on the route (ISO 8601, UTC)."""

ROUTE_KEY = "route"
"""Cursor state key: the fingerprint of the trip the device is driving."""


class SimulatorCredentials(BaseModel):
    """What a simulator connection is configured with (nothing secret)."""

    model_config = ConfigDict(extra="forbid")

    waypoints: str = Field(
        title="Waypoints",
        description=(
            "One waypoint per line: lat,lon then optional key=value settings "
            "(wait, speed, heading, ignition, sat, or any sensor name). "
            "A bare third number is a wait in seconds; lines starting with # are comments."
        ),
    )
    speed_kmh: float = Field(
        default=DEFAULT_SPEED_KMH,
        gt=0,
        allow_inf_nan=False,
        title="Default speed (km/h)",
        description="Speed on the legs whose starting waypoint sets no speed of its own.",
    )
    loop: bool = Field(
        default=True,
        title="Loop",
        description="Drive back to the first waypoint and start over; off: stop at the last one.",
    )

    @field_validator("waypoints")
    @classmethod
    def _route_must_parse(cls, text: str) -> str:
        try:
            parse_route(text)
        except RouteError as exc:
            # A custom error keeps pydantic from prefixing the message with "Value error, ".
            raise PydanticCustomError("route", "{reason}", {"reason": str(exc)}) from None
        return text

    def route(self) -> Route:
        """The parsed waypoints (they were checked when the model was validated)."""
        return parse_route(self.waypoints)


class SimulatorSource(Source[SimulatorCredentials, NoOptions]):
    """A virtual vehicle driving a waypoint route in real time."""

    kind = "simulator"
    title = "GPS Simulator"
    group = GROUP_EXTERNAL
    description = (
        "Drives a virtual vehicle along a route of waypoints you write, in real time: no "
        "hardware or account needed. There is no device list to browse: give each device "
        "any remote device id you like (for example sim-1); each one drives the route "
        "from the moment it is first polled."
    )
    Credentials = SimulatorCredentials
    cadence = Cadence(active=5.0)
    supports_browse = False

    def __init__(self, ctx: SourceContext[SimulatorCredentials, NoOptions]) -> None:
        super().__init__(ctx)
        creds = ctx.credentials
        route = creds.route()
        self.trip = Trip(route, creds.speed_kmh, creds.loop)
        self.route_key = trip_fingerprint(route, creds.speed_kmh, creds.loop)

    async def test_connection(self) -> str:
        return describe_trip(self.trip)

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        """One fix per device at the current time.

        A device whose cursor is already at (or past) the current time gets nothing, so a
        second poll within the same instant never repeats a fix.
        """
        now = self.ctx.clock.now()
        result = PollResult()
        for device in devices:
            cursor = cursors.get(device.upstream_id) or Cursor()
            if cursor.last_fix_time is not None and now <= cursor.last_fix_time:
                continue
            started_at = self._started_at(device, cursor, now)
            state = self.trip.at((now - started_at).total_seconds())
            result.add(device.upstream_id, position_fix(now, state))
            result.cursors[device.upstream_id] = Cursor(
                last_fix_time=now,
                state={STARTED_AT: started_at.isoformat(), ROUTE_KEY: self.route_key},
            )
        return result

    def _started_at(self, device: DeviceRef, cursor: Cursor, now: datetime) -> datetime:
        """When the device set off: from its cursor, or ``now`` for a new or changed trip."""
        state = cursor.state
        if not state:
            return now
        if state.get(ROUTE_KEY) != self.route_key:
            self.ctx.log.info("route of %s changed: it starts again", device.upstream_id)
            return now
        try:
            started_at = datetime.fromisoformat(state[STARTED_AT])
        except (KeyError, TypeError, ValueError):
            started_at = None
        if started_at is None or started_at.tzinfo is None:
            self.ctx.log.warning(
                "cursor of %s has no usable %r: it starts again", device.upstream_id, STARTED_AT
            )
            return now
        return started_at


def position_fix(now: datetime, state: VehicleState) -> PositionFix:
    """The fix reporting ``state`` at ``now``, marked as simulated."""
    return PositionFix(
        fix_time=now,
        lat=state.lat,
        lon=state.lon,
        speed_kmh=state.speed_kmh,
        course_deg=state.course_deg,
        satellites=state.satellites,
        ignition=state.ignition,
        valid=True,
        sensors={**state.sensors, SIMULATED_SENSOR: True},
    )


def trip_fingerprint(route: Route, default_speed_kmh: float, loop: bool) -> str:
    """A short hash of what decides the trip (comments and line numbers do not count)."""
    payload = {
        "waypoints": [waypoint.canonical() for waypoint in route.waypoints],
        "speed_kmh": default_speed_kmh,
        "loop": loop,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def describe_trip(trip: Trip) -> str:
    """A one-line summary: waypoints, length and loop mode."""
    count = len(trip.route)
    if trip.loop:
        return (
            f"{count} waypoints; {trip.length_m / 1000:.2f} km per lap, including the "
            f"{trip.closing_leg_m / 1000:.2f} km closing leg back to the first waypoint; "
            f"loop on: one lap takes {format_duration(trip.duration_s)}"
        )
    return (
        f"{count} waypoints; {trip.length_m / 1000:.2f} km from the first waypoint to the last; "
        f"loop off: the vehicle stops at the last waypoint after "
        f"{format_duration(trip.duration_s)}"
    )


def format_duration(seconds: float) -> str:
    """``seconds`` as ``1 h 2 min``, ``14 min 5 s`` or ``45 s``."""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
