"""Shared test helpers: the test epoch, a served fake, and small builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.source import Cursor, DeviceRef

EPOCH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T0 = EPOCH.timestamp()

MakeSource = Callable[..., Tracking3DSource]


@dataclass
class Served:
    """A fake 3D Tracking and the base URL it is served at."""

    fake: FakeTracking3D
    url: str


def refs(ids: list[str]) -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...)."""
    return [DeviceRef(i + 1, uid, f"device {uid}") for i, uid in enumerate(ids)]


def fix_times(result: Any, uid: str) -> list[float]:
    """The fix times (epoch seconds) a poll returned for one device."""
    return [f.fix_time.timestamp() for f in result.fixes.get(uid, [])]


def empty(ids: list[str]) -> dict[str, Cursor]:
    return {uid: Cursor() for uid in ids}


def add_history(fake: FakeTracking3D, ids: list[str], hours: float, every: float) -> list[float]:
    """Give each unit a fix every ``every`` s over the ``hours`` before ``T0`` (the newest
    at ``T0 - 2``), each received 2 s after its fix, in arrival order; the fix times."""
    count = int(hours * 3600 // every)
    times = [T0 - 2 - every * k for k in reversed(range(count))]
    for n, t in enumerate(times):
        for i, uid in enumerate(ids):
            fake.add_fix(
                uid, t, 10.0 + i / 100, 20.0 + n / 10_000, satellites=5 + n % 7, received=t + 2
            )
    return times


def all_fixes(results: list[Any], uid: str) -> list[float]:
    """The fix times of one device over several polls, in the order they came."""
    return [t for result in results for t in fix_times(result, uid)]
