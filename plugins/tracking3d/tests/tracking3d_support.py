"""Shared test helpers: the date these tests run at, and small builders (the served fake,
``refs`` and ``fix_times`` come from ``hub.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.source import Cursor
from hub.testing import fix_times

EPOCH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
"""Where these tests' wall clock starts (``gpshub_epoch``)."""
T0 = EPOCH.timestamp()

MakeSource = Callable[..., Tracking3DSource]


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
