"""Stops and trips from crafted position sequences (``hub.stops``)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.stops import StopFinder

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LAT = 14.6
M_PER_DEG_LON = 111_320 * math.cos(math.radians(LAT))


class Track:
    """Positions along a line east of a base point, a fix at a time."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.t = T0
        self.x = 0.0  # metres east

    def fix(self, speed: float | None = 0.0, ignition: bool | None = None, **extra: Any) -> None:
        self.rows.append(
            {
                "fix_time": self.t,
                "lat": LAT + extra.pop("dy", 0.0) / 111_320,
                "lon": -90.5 + (self.x + extra.pop("dx", 0.0)) / M_PER_DEG_LON,
                "speed_kmh": speed,
                "ignition": ignition,
                "valid": extra.pop("valid", True),
                "place": extra.pop("place", None),
                "poi_ids": extra.pop("poi_ids", []),
            }
        )

    def park(self, minutes: int, every_s: int = 60, **fix: Any) -> None:
        for _ in range(minutes * 60 // every_s):
            self.t += timedelta(seconds=every_s)
            self.fix(**{"speed": 0.0, "ignition": False, **fix})

    def drive(self, minutes: int, kmh: float = 36.0, every_s: int = 60) -> None:
        for _ in range(minutes * 60 // every_s):
            self.t += timedelta(seconds=every_s)
            self.x += kmh / 3.6 * every_s
            self.fix(speed=kmh, ignition=True)


def run(track: Track, min_stop_s: float = 300, end: datetime | None = None) -> tuple[Any, Any]:
    finder = StopFinder(min_stop_s)
    for row in track.rows:
        finder.add(row)
    return finder.finish(end)


def at(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def test_a_stop_at_the_start_and_a_trip_to_the_end() -> None:
    track = Track()
    track.park(10, place="Depot", poi_ids=[4])
    track.drive(10)  # 6 km at 36 km/h
    stops, trips = run(track, end=track.t + timedelta(hours=1))
    assert len(stops) == 1 and len(trips) == 1
    stop = stops[0]
    assert stop["start"] == at(1) and stop["open_start"] and not stop["open_end"]
    # it ends when the device is first seen elsewhere: the first fix of the drive
    assert stop["end"] == at(11) and stop["duration_s"] == 600
    assert stop["place"] == "Depot" and stop["geofence_ids"] == [4] and stop["positions"] == 10
    assert stop["lat"] == pytest.approx(LAT) and stop["lon"] == pytest.approx(-90.5)
    trip = trips[0]
    assert trip["start"] == at(11) and trip["end"] == at(20) and trip["open_end"]
    assert not trip["open_start"]
    assert trip["distance_km"] == pytest.approx(6.0, abs=0.05)
    assert trip["max_speed_kmh"] == 36.0
    assert trip["avg_speed_kmh"] == pytest.approx(6.0 / (9 / 60), rel=0.02)


def test_a_stop_at_the_end_lasts_to_the_end_of_the_range() -> None:
    track = Track()
    track.drive(10)
    track.park(10, speed=0.0, ignition=True)
    end = T0 + timedelta(hours=2)
    stops, trips = run(track, end=end)
    assert len(trips) == 1 and len(stops) == 1
    assert trips[0]["open_start"] and trips[0]["start"] == at(1)
    assert trips[0]["end"] == at(11)  # the stop's first fix
    assert stops[0]["start"] == at(11) and stops[0]["end"] == at(120)
    assert stops[0]["open_end"] and not stops[0]["open_start"]
    # without a range end, the last fix ends it
    stops, _ = run(track)
    assert stops[0]["end"] == at(20)


def test_gps_jitter_and_a_jump_while_parked_do_not_end_the_stop() -> None:
    track = Track()
    track.drive(5)
    for i in range(30):  # 30 min parked, the GPS wandering up to 25 m, speeds to 9 km/h
        track.t += timedelta(seconds=60)
        wobble = 25 * math.sin(i)
        speed = 9.0 if i % 7 == 3 else 0.4
        track.fix(speed=speed, ignition=True, dx=wobble, dy=-wobble)
        if i == 15:  # one fix 5 km away a second later: a GPS jump
            track.t += timedelta(seconds=1)
            track.fix(speed=0.0, ignition=True, dx=5000)
    track.drive(5)
    stops, trips = run(track)
    assert len(stops) == 1, stops
    assert stops[0]["start"] == at(6) and stops[0]["end"] == at(36 + 1 / 60)
    # the first trip starts at the range's first fix, 600 m on; the jitter is not counted
    assert [t["distance_km"] for t in trips] == [
        pytest.approx(2.4, abs=0.01),
        pytest.approx(3.0, abs=0.05),
    ]
    assert trips[1]["max_speed_kmh"] == 36.0


def test_a_gap_at_the_same_place_is_part_of_the_stop() -> None:
    track = Track()
    track.drive(5)
    track.park(2)
    track.t += timedelta(hours=3)  # the tracker sleeps while parked
    track.park(2)
    track.drive(5)
    stops, trips = run(track)
    assert len(stops) == 1 and len(trips) == 2
    assert stops[0]["start"] == at(6) and stops[0]["end"] == at(5 + 2 + 180 + 2 + 1)
    assert stops[0]["positions"] == 4


def test_a_gap_ending_elsewhere_ends_the_stop_at_the_next_fix() -> None:
    track = Track()
    track.park(1)
    track.t += timedelta(hours=2)
    track.x += 3000  # woke up 3 km away, already driving
    track.fix(speed=40.0, ignition=True)
    track.drive(3)
    stops, trips = run(track)
    assert len(stops) == 1 and stops[0]["start"] == at(1) and stops[0]["end"] == at(121)
    assert len(trips) == 1 and trips[0]["start"] == at(121)
    assert trips[0]["distance_km"] == pytest.approx(3.0 + 1.8, abs=0.05)


def test_a_short_halt_is_part_of_the_trip_and_min_stop_s_decides() -> None:
    track = Track()
    track.drive(5)
    track.park(2, speed=0.0, ignition=True)  # a traffic light
    track.drive(5)
    stops, trips = run(track)
    assert stops == [] and len(trips) == 1
    assert trips[0]["open_start"] and trips[0]["open_end"]
    assert trips[0]["distance_km"] == pytest.approx(5.4, abs=0.01)  # from the first fix
    assert trips[0]["positions"] == len(track.rows)
    stops, trips = run(track, min_stop_s=120)
    assert len(stops) == 1 and len(trips) == 2
    assert stops[0]["duration_s"] == 120


def test_ignition_off_is_still_and_invalid_fixes_are_left_out() -> None:
    track = Track()
    track.drive(3)
    # crawling with the ignition off (pushed, towed a few metres): still
    for _ in range(6):
        track.t += timedelta(seconds=60)
        track.x += 3
        track.fix(speed=8.0, ignition=False)
    track.t += timedelta(seconds=30)
    track.fix(speed=50.0, ignition=True, dx=40_000, valid=False)
    track.drive(3)
    stops, _ = run(track)
    assert len(stops) == 1 and stops[0]["positions"] == 6


def test_no_positions_no_stops() -> None:
    assert run(Track()) == ([], [])
