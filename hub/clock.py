"""Wall-clock time as the hub sees it.

Everything that needs "now" as a datetime asks a ``Clock``, so tests can run a whole hub
under trio's ``MockClock`` and get exact, repeatable timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import trio


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...


class SystemClock:
    """The real wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class TrioClock:
    """Wall time that advances with ``trio.current_time()``, starting at ``epoch``.

    Under ``trio.testing.MockClock`` this makes wall time virtual too. Only call
    ``now()`` from inside ``trio.run``.
    """

    def __init__(self, epoch: datetime) -> None:
        if epoch.tzinfo is None:
            raise ValueError("epoch must be timezone-aware")
        self._epoch = epoch.astimezone(UTC)
        self._start: float | None = None

    def now(self) -> datetime:
        t = trio.current_time()
        if self._start is None:
            self._start = t
        return self._epoch + timedelta(seconds=t - self._start)
