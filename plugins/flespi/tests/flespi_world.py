"""Shared helpers of the flespi tests: the world a test runs in, and a runner-like poller."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import FakeFlespi
from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.source import Cursor, DeviceRef, MemoryStateStore, PollResult
from hub.testing import EPOCH, source_context

T0 = EPOCH.timestamp()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def refs(ids: Iterable[str]) -> list[DeviceRef]:
    return [DeviceRef(n, uid, f"device {n}") for n, uid in enumerate(ids, start=1)]


@dataclass
class World:
    """A fake flespi served on loopback, the wall clock both sides share, a client."""

    fake: FakeFlespi
    url: str
    wall: TrioClock
    http: httpx.AsyncClient

    def now(self) -> float:
        return self.wall.now().timestamp()

    def source(self, credentials: dict[str, Any] | None = None, **options: Any) -> FlespiSource:
        """A fresh source (as after a restart) on the fake, with option overrides."""
        ctx = source_context(
            FlespiSource,
            credentials if credentials is not None else self.fake.credentials(self.url),
            self.http,
            options={**self.fake.options(self.url), **options},
            clock=self.wall,
            state=MemoryStateStore(),
        )
        return FlespiSource(ctx)


class Poller:
    """Polls like the runner: keeps the cursors, collects every fix by device."""

    def __init__(self, source: FlespiSource, devices: list[DeviceRef]) -> None:
        self.source = source
        self.devices = devices
        self.cursors: dict[str, Cursor] = {}
        self.seen: dict[str, list[PositionFix]] = {}

    async def poll(self) -> PollResult:
        result = await self.source.poll(self.devices, self.cursors)
        for uid, fixes in result.fixes.items():
            for fix in fixes:
                fix.validate()
            self.seen.setdefault(uid, []).extend(fixes)
        for ref in self.devices:
            uid = ref.upstream_id
            if uid in result.cursors:
                self.cursors[uid] = result.cursors[uid]
            elif result.fixes.get(uid):
                newest = max(f.fix_time for f in result.fixes[uid])
                self.cursors[uid] = Cursor(newest, self.cursors.get(uid, Cursor()).state)
        return result

    def times(self, uid: str) -> list[float]:
        return [f.fix_time.timestamp() for f in self.seen.get(uid, [])]
