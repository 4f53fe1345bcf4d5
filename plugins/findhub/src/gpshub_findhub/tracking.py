"""Each device's polling state (kept in its cursor) and its reports turned into fixes.

``Track`` is what the source remembers per device between polls, saved in the device's
``Cursor.state`` (committed with the fixes it covers, so a restart neither repeats nor
loses): the keys of the reports already turned into fixes (dedupe, reference §5: Google
serves the same report again and again), when the device was last asked to locate itself
and when it may be asked again, and its newest position (for "recently active").

**Recently active** (the adaptive cadence): a device is active when a report new to us,
taken less than ``active_window`` seconds ago, lies farther from the device's previous
position than either report's accuracy (and at least ``MIN_MOVE_M``): it moved, by more
than the fixes' own uncertainty, within the window.  A report that only repeats the
position, or an old report arriving late, does not count.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hub.fix import PositionFix
from hub.geo import haversine_m
from hub.source import Cursor

SEEN_MAX = 200
"""Report keys kept per device: far more than Google serves in one answer."""
MIN_MOVE_M = 25.0
"""A move shorter than this never makes a device active, whatever the accuracies say."""


def seen_key(report: Any) -> str:
    """A report's dedupe key as stored: timestamp and position (1e-7°), as §5 says."""
    return (
        f"{int(report.timestamp.timestamp())}"
        f":{round(report.latitude * 1e7)}:{round(report.longitude * 1e7)}"
    )


@dataclass(slots=True)
class Track:
    """One device's polling state; ``changed`` says whether its cursor needs saving."""

    seen: list[str] = field(default_factory=list)
    locate_at: float | None = None
    next_locate_at: float = 0.0
    last: tuple[float, float, float | None, float] | None = None
    """(lat, lon, accuracy m or None, epoch s) of the newest fix made."""
    last_fix_time: datetime | None = None
    changed: bool = False
    _seen_set: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def from_cursor(cls, cursor: Cursor | None) -> Track:
        """The state saved in ``cursor``; anything unreadable in it is dropped, not fatal."""
        if cursor is None:
            return cls()
        state = cursor.state if isinstance(cursor.state, Mapping) else {}
        seen = [k for k in state.get("seen", []) if isinstance(k, str)][-SEEN_MAX:]
        track = cls(
            seen=seen,
            locate_at=_number(state.get("locate_at")),
            next_locate_at=_number(state.get("next_locate_at")) or 0.0,
            last=_last(state.get("last")),
            last_fix_time=cursor.last_fix_time,
        )
        track._seen_set = set(seen)
        return track

    def cursor(self) -> Cursor:
        state: dict[str, Any] = {"seen": list(self.seen), "next_locate_at": self.next_locate_at}
        if self.locate_at is not None:
            state["locate_at"] = self.locate_at
        if self.last is not None:
            state["last"] = list(self.last)
        return Cursor(self.last_fix_time, state)

    def is_new(self, key: str) -> bool:
        return key not in self._seen_set

    def remember(self, key: str) -> None:
        if key in self._seen_set:
            return
        self.seen.append(key)
        self._seen_set.add(key)
        if len(self.seen) > SEEN_MAX:
            for old in self.seen[: len(self.seen) - SEEN_MAX]:
                self._seen_set.discard(old)
            del self.seen[: len(self.seen) - SEEN_MAX]
        self.changed = True

    def locate_sent(self, at: float, cooldown_s: float) -> None:
        self.locate_at = at
        self.next_locate_at = at + cooldown_s
        self.changed = True

    def cool_down_until(self, at: float) -> None:
        """Push the next locate back to ``at`` (a crowdsourced answer: a longer cool-down)."""
        if at > self.next_locate_at:
            self.next_locate_at = at
            self.changed = True


@dataclass(slots=True)
class NewFixes:
    """The fixes made from one device's reports, and whether they show it moving."""

    fixes: list[PositionFix]
    moved: bool


def new_fixes(
    track: Track, reports: Iterable[Any], *, now: datetime, active_window_s: float
) -> NewFixes:
    """The reports ``track`` has not seen, as fixes (oldest first), remembered as seen.

    Reports sharing a timestamp are one fix (the hub keeps one position per device and
    time): the best of them per ``reports.best_report``.
    """
    from gpshub_findhub.reports import best_report

    by_time: dict[int, list[Any]] = {}
    for report in reports:
        key = seen_key(report)
        if track.is_new(key):
            by_time.setdefault(int(report.timestamp.timestamp()), []).append(report)
    fixes: list[PositionFix] = []
    moved = False
    for _, group in sorted(by_time.items()):
        report = best_report(group) if len(group) > 1 else group[0]
        for other in group:
            track.remember(seen_key(other))
        fixes.append(to_fix(report))
        recent = (now - report.timestamp).total_seconds() <= active_window_s
        moved = moved or (recent and _moved(track.last, report))
        t = report.timestamp.timestamp()
        if track.last is None or t >= track.last[3]:
            track.last = (report.latitude, report.longitude, report.accuracy_m, t)
        if track.last_fix_time is None or report.timestamp > track.last_fix_time:
            track.last_fix_time = report.timestamp
    return NewFixes(fixes, moved)


def to_fix(report: Any) -> PositionFix:
    """A decrypted ``reports.Report`` as the hub's fix: its own time, position, altitude
    and accuracy; its status, the server's own-report flag and any place name as sensors."""
    sensors: dict[str, Any] = {
        "report_status": report.status,
        "is_own_report": bool(report.is_own_report),
    }
    if report.place_name:
        sensors["place_name"] = report.place_name
    return PositionFix(
        fix_time=report.timestamp.astimezone(UTC),
        lat=report.latitude,
        lon=report.longitude,
        altitude_m=None if report.altitude_m is None else float(report.altitude_m),
        accuracy_m=report.accuracy_m,
        sensors=sensors,
    )


def _moved(last: tuple[float, float, float | None, float] | None, report: Any) -> bool:
    if last is None:
        return False
    lat, lon, accuracy, _ = last
    distance = haversine_m(lat, lon, report.latitude, report.longitude)
    return distance > max(MIN_MOVE_M, accuracy or 0.0, report.accuracy_m or 0.0)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _last(value: Any) -> tuple[float, float, float | None, float] | None:
    if not isinstance(value, list) or len(value) != 4:
        return None
    lat, lon, accuracy, t = (_number(v) for v in value)
    if lat is None or lon is None or t is None:
        return None
    return lat, lon, accuracy, t
