"""A source plugin for the crash test: each poll hands every device the next fixes of a
fixed, finite track (continuing from its cursor), so a restarted hub picks up where the
last committed poll left off and the whole run is known in advance."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel

from hub import Cadence, Cursor, DeviceRef, PollResult, PositionFix, Source, hookimpl

EPOCH = datetime(2026, 6, 1, tzinfo=UTC)
PER_POLL = 25
TOTAL = 300  # fixes per device
STEP_S = 15.0


def track(i: int, device: str) -> PositionFix:
    """The i-th fix of a device: ignition toggles every tenth fix, so rules fire."""
    return PositionFix(
        fix_time=EPOCH + timedelta(seconds=STEP_S * i),
        lat=14.6 + 0.0004 * i,
        lon=-90.5 - 0.001 * int(device.split("-")[-1]),
        speed_kmh=20.0 + i % 30,
        course_deg=float(i * 7 % 360),
        ignition=(i // 10) % 2 == 0,
    )


class BurstSource(Source[Any, Any]):
    kind = "burst"
    title = "Burst (crash test)"
    cadence = Cadence(active=0.3, jitter=0.0)

    class Credentials(BaseModel):
        pass

    async def test_connection(self) -> str:
        return "ok"

    async def poll(self, devices: Sequence[DeviceRef], cursors: dict[str, Cursor]) -> PollResult:
        result = PollResult()
        for d in devices:
            last = cursors[d.upstream_id].last_fix_time
            start = 0 if last is None else round((last - EPOCH).total_seconds() / STEP_S) + 1
            for i in range(start, min(start + PER_POLL, TOTAL)):
                result.add(d.upstream_id, track(i, d.upstream_id))
        return result


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(BurstSource)
