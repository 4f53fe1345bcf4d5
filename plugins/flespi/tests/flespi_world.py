"""Shared helpers of the flespi tests: the world a test runs in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import FakeFlespi
from hub.clock import TrioClock
from hub.testing import EPOCH, Served, SourceMaker

T0 = EPOCH.timestamp()


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


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
        make = SourceMaker(FlespiSource, Served(self.fake, self.url), self.http, self.wall)
        source: FlespiSource = make(credentials=credentials, **options)
        return source
