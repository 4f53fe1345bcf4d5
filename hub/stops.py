"""Stops and trips of a device over a period, computed from its stored positions.

The positions are read in fix-time order, a page at a time, and go through
``StopFinder``, which keeps only the stop it is looking at and the trip before it: memory
does not grow with the number of positions, only with the stops and trips found (the
range is at most ``MAX_RANGE_DAYS`` and a stop lasts at least ``min_stop_s``).

The algorithm:

* Fixes the source marked invalid are skipped.
* A fix is **still** when its ignition is off, or its speed is at most ``MOVING_KMH``
  (5 km/h, the hub's motion threshold); a fix without a speed gets the speed implied by
  the distance from the fix before it (the first fix without one is still).
* A still fix opens a **candidate stop** where it is.  Every later fix within
  ``STOP_RADIUS_M`` (50 m) of that first fix stays in the stop, whatever its speed or
  the time since the fix before: GPS jitter while parked, and a gap in the data with
  the device still at the same place afterwards, do not end it.  The first fix farther
  away ends it: the stop **ends at that fix's time** (when the device was first seen to
  have left).
* A candidate that lasted at least ``min_stop_s`` is a stop; a shorter one (a traffic
  light) is part of the trip around it.  A stop still open at the last position of the
  range lasts until the end of the range (``to``, or now if earlier) and is marked
  ``open_end``; one already open at the range's first position starts there and is
  marked ``open_start``.
* A fix implying more than 300 km/h from the fix before it is a GPS jump and is left
  out, unless 3 in a row are (the device really is there, as for the odometer).
* The movement between two stops (and before the first and after the last) is a
  **trip**: from the end of one stop (the first fix that left it) to the first fix of
  the next, with its distance (great-circle between consecutive fixes, leaving out GPS
  jumps and the jitter inside stops),
  its highest reported speed and its average speed (distance over duration).
* A stop's position is the mean of its fixes; its ``place`` the first one a fix of it
  has; its ``geofence_ids`` every geofence one of its fixes was in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.derive import OdometerRules
from hub.geo import haversine_m
from hub.map_status import MOVING_KMH
from hub.timestamps import utc_text

DEFAULT_MIN_STOP_S = 300
MIN_STOP_S_LIMITS = (30, 86_400)
MAX_RANGE_DAYS = 31
STOP_RADIUS_M = 50.0
MAX_PLAUSIBLE_KMH = OdometerRules().max_plausible_kmh
JUMP_REANCHOR = OdometerRules().reanchor_after
PAGE = 2000
"""Positions read per query."""


@dataclass(slots=True)
class _Trip:
    """A trip being followed."""

    start: datetime
    start_lat: float
    start_lon: float
    open_start: bool
    end: datetime
    end_lat: float
    end_lon: float
    distance_m: float = 0.0
    max_speed_kmh: float | None = None
    positions: int = 0

    def take(self, row: dict[str, Any], step_m: float) -> None:
        """Count ``row``, ``step_m`` from the fix before it, into the trip."""
        self.distance_m += step_m
        self.positions += 1
        speed = row["speed_kmh"]
        if speed is not None and (self.max_speed_kmh is None or speed > self.max_speed_kmh):
            self.max_speed_kmh = speed
        self.end, self.end_lat, self.end_lon = row["fix_time"], row["lat"], row["lon"]

    def absorb(self, other: _Trip) -> None:
        """Add the fixes of a candidate stop that turned out too short."""
        self.distance_m += other.distance_m
        self.positions += other.positions
        if other.max_speed_kmh is not None and (
            self.max_speed_kmh is None or other.max_speed_kmh > self.max_speed_kmh
        ):
            self.max_speed_kmh = other.max_speed_kmh
        self.end, self.end_lat, self.end_lon = other.end, other.end_lat, other.end_lon

    def to_json(self, open_end: bool) -> dict[str, Any]:
        duration = (self.end - self.start).total_seconds()
        km = self.distance_m / 1000.0
        return {
            "start": utc_text(self.start),
            "end": utc_text(self.end),
            "duration_s": duration,
            "start_lat": self.start_lat,
            "start_lon": self.start_lon,
            "end_lat": self.end_lat,
            "end_lon": self.end_lon,
            "distance_km": round(km, 3),
            "max_speed_kmh": self.max_speed_kmh,
            "avg_speed_kmh": round(km / duration * 3600.0, 1) if duration > 0 else None,
            "positions": self.positions,
            "open_start": self.open_start,
            "open_end": open_end,
        }


@dataclass(slots=True)
class _Stop:
    """A candidate stop: the fixes within the radius of its first one."""

    first: dict[str, Any]
    open_start: bool
    last: dict[str, Any]
    sum_lat: float = 0.0
    sum_lon: float = 0.0
    count: int = 0
    place: str | None = None
    geofences: set[int] = field(default_factory=set)
    moves: _Trip | None = None  # its fixes, as a trip, should it turn out too short

    def take(self, row: dict[str, Any]) -> None:
        self.sum_lat += row["lat"]
        self.sum_lon += row["lon"]
        self.count += 1
        if self.place is None and row.get("place"):
            self.place = row["place"]
        self.geofences.update(row.get("poi_ids") or ())
        self.last = row

    def near(self, row: dict[str, Any], radius_m: float) -> bool:
        return haversine_m(self.first["lat"], self.first["lon"], row["lat"], row["lon"]) <= radius_m

    def to_json(self, end: datetime, open_end: bool) -> dict[str, Any]:
        start = self.first["fix_time"]
        return {
            "start": utc_text(start),
            "end": utc_text(end),
            "duration_s": (end - start).total_seconds(),
            "lat": round(self.sum_lat / self.count, 7),
            "lon": round(self.sum_lon / self.count, 7),
            "place": self.place,
            "geofence_ids": sorted(self.geofences),
            "positions": self.count,
            "open_start": self.open_start,
            "open_end": open_end,
        }


class StopFinder:
    """Feed positions in fix-time order with ``add``; ``finish`` gives the stops and the
    trips (see the module's docstring for the rules)."""

    def __init__(
        self,
        min_stop_s: float = DEFAULT_MIN_STOP_S,
        radius_m: float = STOP_RADIUS_M,
        moving_kmh: float = MOVING_KMH,
    ) -> None:
        self.min_stop_s = min_stop_s
        self.radius_m = radius_m
        self.moving_kmh = moving_kmh
        self.stops: list[dict[str, Any]] = []
        self.trips: list[dict[str, Any]] = []
        self._prev: dict[str, Any] | None = None
        self._trip: _Trip | None = None
        self._stop: _Stop | None = None
        self._jumps = 0  # fixes left out in a row as GPS jumps

    def add(self, row: dict[str, Any]) -> None:
        if not row.get("valid", True):
            return
        prev = self._prev
        step_m, speed = 0.0, row["speed_kmh"]
        if prev is not None:
            step_m = haversine_m(prev["lat"], prev["lon"], row["lat"], row["lon"])
            dt = (row["fix_time"] - prev["fix_time"]).total_seconds()
            implied = step_m / dt * 3.6 if dt > 0 else None
            if implied is not None and implied > MAX_PLAUSIBLE_KMH:
                self._jumps += 1
                if self._jumps < JUMP_REANCHOR:
                    return  # a GPS jump: left out
                step_m, implied = 0.0, None  # the device really is there: not counted
            if speed is None:
                speed = implied
        self._jumps = 0
        self._prev = row
        still = row["ignition"] is False or speed is None or speed <= self.moving_kmh

        stop = self._stop
        if stop is not None:
            if stop.near(row, self.radius_m):
                stop.take(row)
                if stop.moves is not None:
                    stop.moves.take(row, step_m)
                return
            self._close_stop(row)  # the device left: ``row`` ends the stop
        if still:
            self._open_stop(row, step_m)
        else:
            self._trip_take(row, step_m)

    def finish(
        self, range_end: datetime | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The stops and trips found; ``range_end`` is when an open stop ends (the end of
        the range asked for, or now), by default its last fix."""
        stop = self._stop
        if stop is not None:
            end = max(range_end or stop.last["fix_time"], stop.last["fix_time"])
            if (end - stop.first["fix_time"]).total_seconds() >= self.min_stop_s:
                self._end_trip_at_stop(stop)
                self.stops.append(stop.to_json(end, open_end=True))
            elif stop.moves is not None:
                self._absorb(stop)
            self._stop = None
        if self._trip is not None:
            self.trips.append(self._trip.to_json(open_end=True))
            self._trip = None
        return self.stops, self.trips

    # -- inside ------------------------------------------------------------------------
    def _trip_take(self, row: dict[str, Any], step_m: float) -> None:
        if self._trip is None:  # the range starts moving
            t, lat, lon = row["fix_time"], row["lat"], row["lon"]
            self._trip = _Trip(t, lat, lon, True, t, lat, lon)
            self._trip.positions = 1
            return
        self._trip.take(row, step_m)

    def _open_stop(self, row: dict[str, Any], step_m: float) -> None:
        # without a trip this is the range's first fix: a stop always leaves a trip
        stop = _Stop(first=row, open_start=self._trip is None, last=row)
        if self._trip is not None:
            self._trip.take(row, step_m)  # the trip ends here if the stop is one
        t, lat, lon = row["fix_time"], row["lat"], row["lon"]
        stop.moves = _Trip(t, lat, lon, False, t, lat, lon)
        stop.take(row)
        self._stop = stop

    def _close_stop(self, leaving: dict[str, Any]) -> None:
        stop = self._stop
        assert stop is not None
        self._stop = None
        end = leaving["fix_time"]
        if (end - stop.first["fix_time"]).total_seconds() < self.min_stop_s:
            self._absorb(stop)
            return
        self._end_trip_at_stop(stop)
        self.stops.append(stop.to_json(end, open_end=False))
        last = stop.last
        self._trip = _Trip(end, last["lat"], last["lon"], False, end, last["lat"], last["lon"])

    def _end_trip_at_stop(self, stop: _Stop) -> None:
        """The trip before ``stop`` (if any) ends at its first fix."""
        if self._trip is not None:
            self.trips.append(self._trip.to_json(open_end=False))
            self._trip = None

    def _absorb(self, stop: _Stop) -> None:
        """A candidate too short to be a stop: its fixes are part of the trip."""
        moves = stop.moves
        assert moves is not None
        if self._trip is None:  # the range began with it
            moves.open_start = True
            moves.positions += 1  # its first fix
            self._trip = moves
        else:
            self._trip.absorb(moves)


def find_stops(
    history: Callable[..., tuple[list[dict[str, Any]], str | None]],
    device_id: int,
    start: datetime,
    end: datetime,
    range_end: datetime,
    min_stop_s: float,
) -> dict[str, Any]:
    """Stops and trips of ``device_id`` from its positions in [start, end), read with
    ``history`` (``PositionStore.history``) a page at a time."""
    finder = StopFinder(min_stop_s)
    cursor = None
    while True:
        rows, cursor = history([device_id], start, end, cursor, PAGE)
        _feed(finder, rows)
        if cursor is None:
            break
    stops, trips = finder.finish(range_end)
    return {"stops": stops, "trips": trips}


def _feed(finder: StopFinder, rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        finder.add(row)
