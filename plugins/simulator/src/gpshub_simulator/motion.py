"""Where the simulated vehicle is, and in what state, a given time after it set off.

A :class:`Trip` is a route made ready to drive: its legs are measured and timed once, then
:meth:`Trip.at` answers for any elapsed time with no side effects, so the same inputs
always give the same :class:`VehicleState`.

The timeline, per waypoint in order: wait there for its ``wait`` seconds (speed 0), then
drive the great circle to the next waypoint at its ``speed`` (or the trip's default).
A trip that does not loop ends at the last waypoint and stays there.  A looping trip
drives from the last waypoint back to the first, at the last waypoint's speed, and starts
over.

Ignition, satellites and sensors hold the value set at the current waypoint or at the
nearest one before it.  In a loop "before" wraps around: the values in force when a lap
starts are those the previous lap ended with, and the first lap behaves like every other
one (as if a lap had already been driven).  Without a loop, a value not set yet is
``None`` (sensors: absent).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field

from gpshub_simulator.geo import (
    distance_m,
    final_bearing,
    initial_bearing,
    interpolate,
    normalize_bearing,
)
from gpshub_simulator.route import Route, SensorValue, Waypoint

DEFAULT_SPEED_KMH = 50.0


@dataclass(frozen=True, slots=True)
class VehicleState:
    """The simulated vehicle at one instant.

    ``waypoint`` is the index of the waypoint being waited at, or of the one the current
    leg leaves from; ``moving`` is false while waiting and after the end of the route.
    """

    lat: float
    lon: float
    speed_kmh: float
    course_deg: float
    ignition: bool | None
    satellites: int | None
    sensors: dict[str, SensorValue]
    waypoint: int
    moving: bool


@dataclass(frozen=True, slots=True)
class _Status:
    """Ignition, satellites and sensors in force at a waypoint."""

    ignition: bool | None = None
    satellites: int | None = None
    sensors: Mapping[str, SensorValue] = field(default_factory=dict)

    def updated_by(self, waypoint: Waypoint) -> _Status:
        return _Status(
            ignition=self.ignition if waypoint.ignition is None else waypoint.ignition,
            satellites=self.satellites if waypoint.satellites is None else waypoint.satellites,
            sensors={**self.sensors, **waypoint.sensors},
        )


@dataclass(frozen=True, slots=True)
class Leg:
    """The drive from one waypoint to the next."""

    start: Waypoint
    end: Waypoint
    length_m: float
    speed_kmh: float
    duration_s: float

    @property
    def course_deg(self) -> float:
        """The course reported when leaving: the start's heading override or the bearing."""
        if self.start.heading_deg is not None:
            return self.start.heading_deg
        return initial_bearing(self.start.lat, self.start.lon, self.end.lat, self.end.lon)

    @property
    def arrival_course_deg(self) -> float:
        """The course reported on arriving at the end of the leg."""
        if self.start.heading_deg is not None:
            return self.start.heading_deg
        return final_bearing(self.start.lat, self.start.lon, self.end.lat, self.end.lon)


class Trip:
    """A route with its default speed and loop mode, ready to be asked where the vehicle is."""

    def __init__(
        self, route: Route, default_speed_kmh: float = DEFAULT_SPEED_KMH, loop: bool = True
    ) -> None:
        if not (math.isfinite(default_speed_kmh) and default_speed_kmh > 0):
            raise ValueError(f"default speed must be a positive number, got {default_speed_kmh}")
        waypoints = route.waypoints
        if not waypoints:
            raise ValueError("a trip needs at least one waypoint")
        self.route = route
        self.default_speed_kmh = default_speed_kmh
        self.loop = loop

        count = len(waypoints)
        ends = range(1, count + 1) if loop else range(1, count)
        self.legs: tuple[Leg, ...] = tuple(
            self._leg(waypoints[i - 1], waypoints[i % count]) for i in ends
        )
        # _arrivals[i]: seconds into a lap at which waypoint i is reached.  A loop has one
        # more entry, the lap duration (arrival back at the first waypoint).
        arrivals = [0.0]
        for leg in self.legs:
            arrivals.append(arrivals[-1] + leg.start.wait_s + leg.duration_s)
        self._arrivals = tuple(arrivals)
        self._statuses = _statuses(waypoints, loop)
        self._rest_courses = tuple(self._rest_course(i) for i in range(count))

    def _leg(self, start: Waypoint, end: Waypoint) -> Leg:
        length_m = distance_m(start.lat, start.lon, end.lat, end.lon)
        speed_kmh = start.speed_kmh if start.speed_kmh is not None else self.default_speed_kmh
        return Leg(start, end, length_m, speed_kmh, length_m / (speed_kmh / 3.6))

    # -- summary -----------------------------------------------------------------------
    @property
    def length_m(self) -> float:
        """Distance driven per lap (with the closing leg) or from first to last waypoint."""
        return sum(leg.length_m for leg in self.legs)

    @property
    def closing_leg_m(self) -> float:
        """Length of the leg from the last waypoint back to the first (0 without a loop)."""
        return self.legs[-1].length_m if self.loop and self.legs else 0.0

    @property
    def duration_s(self) -> float:
        """Seconds per lap, or until the last waypoint is reached when not looping."""
        return self._arrivals[-1]

    # -- simulation --------------------------------------------------------------------
    def at(self, elapsed_s: float) -> VehicleState:
        """The vehicle ``elapsed_s`` seconds after the start (negative counts as 0)."""
        if not math.isfinite(elapsed_s):
            raise ValueError(f"elapsed time must be finite, got {elapsed_s}")
        t = max(elapsed_s, 0.0)
        if self.loop:
            period = self.duration_s
            t = t % period if period > 0 else 0.0
        count = len(self.route.waypoints)
        index = bisect_right(self._arrivals, t, hi=count) - 1
        if index >= len(self.legs):  # at the end of a route that does not loop
            return self._resting(index)
        leg = self.legs[index]
        driving_s = t - self._arrivals[index] - leg.start.wait_s
        if driving_s < 0 or leg.duration_s <= 0:
            return self._resting(index)
        return self._driving(index, leg, min(driving_s / leg.duration_s, 1.0))

    def _resting(self, index: int) -> VehicleState:
        waypoint = self.route.waypoints[index]
        return self._state(
            index, waypoint.lat, waypoint.lon, 0.0, self._rest_courses[index], moving=False
        )

    def _driving(self, index: int, leg: Leg, fraction: float) -> VehicleState:
        start, end = leg.start, leg.end
        lat, lon = interpolate(start.lat, start.lon, end.lat, end.lon, fraction)
        if start.heading_deg is not None:
            course = start.heading_deg
        elif fraction <= 0.5:
            course = initial_bearing(lat, lon, end.lat, end.lon)
        else:
            # Same great circle, but well conditioned when the end is very close.
            course = normalize_bearing(initial_bearing(lat, lon, start.lat, start.lon) + 180.0)
        return self._state(index, lat, lon, leg.speed_kmh, course, moving=True)

    def _state(
        self, index: int, lat: float, lon: float, speed: float, course: float, *, moving: bool
    ) -> VehicleState:
        status = self._statuses[index]
        return VehicleState(
            lat=lat,
            lon=lon,
            speed_kmh=speed,
            course_deg=course,
            ignition=status.ignition,
            satellites=status.satellites,
            sensors=dict(status.sensors),
            waypoint=index,
            moving=moving,
        )

    def _rest_course(self, index: int) -> float:
        """The course reported while standing at a waypoint.

        Its own heading override if any; else the course of the next leg that actually
        moves (the one about to start, skipping zero-length legs); else, at the end of a
        route that does not loop, the course the vehicle arrived with; else 0.
        """
        heading = self.route.waypoints[index].heading_deg
        if heading is not None:
            return heading
        count = len(self.legs)
        if self.loop:
            ahead = [(index + step) % count for step in range(count)]
        else:
            ahead = list(range(index, count))
        for i in ahead:
            if self.legs[i].length_m > 0:
                return self.legs[i].course_deg
        for i in reversed(range(min(index, count))):
            if self.legs[i].length_m > 0:
                return self.legs[i].arrival_course_deg
        return 0.0


def _statuses(waypoints: tuple[Waypoint, ...], loop: bool) -> tuple[_Status, ...]:
    """The status in force at each waypoint (see the module docstring for loops)."""
    status = _Status()
    if loop:
        for waypoint in waypoints:  # one silent lap: what the previous lap ends with
            status = status.updated_by(waypoint)
    out = []
    for waypoint in waypoints:
        status = status.updated_by(waypoint)
        out.append(status)
    return tuple(out)
