"""Shared test helpers: the test epoch, a served ``FakeFindHub``, sources pointed at it.

(The module name is unique: every plugin's tests put their folder on ``sys.path``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from gpshub_findhub.source import FindHubSource
from gpshub_findhub.testing import FakeFindHub
from hub.clock import Clock
from hub.source import DeviceRef, MemoryStateStore, PollResult
from hub.testing import EPOCH, source_context

T0 = EPOCH.timestamp()
"""Where ``gpshub_wall`` starts (epoch seconds)."""


@dataclass
class World:
    """A served fake account and what a test needs around it."""

    fake: FakeFindHub
    url: str
    http: httpx.AsyncClient
    clock: Clock
    state: MemoryStateStore = field(default_factory=MemoryStateStore)

    def source(
        self,
        *,
        secrets: dict[str, Any] | None = None,
        state: MemoryStateStore | None = None,
        **options: Any,
    ) -> FindHubSource:
        """A source for the fake (``state``: the connection's; the world's by default, so
        a second source is a restart)."""
        ctx = source_context(
            FindHubSource,
            self.fake.credentials(**(secrets or {})),
            self.http,
            options=self.fake.options(self.url, **options),
            clock=self.clock,
            state=self.state if state is None else state,
        )
        return FindHubSource(ctx)


def refs(ids: list[str]) -> list[DeviceRef]:
    """Hub device references for canonic ids (hub ids 1, 2, ...)."""
    return [DeviceRef(i + 1, uid, f"device {i + 1}") for i, uid in enumerate(ids)]


def fix_rows(result: PollResult, uid: str) -> list[tuple[float, float, float]]:
    """(fix time, lat, lon) of a device's fixes in a poll's result."""
    return [(f.fix_time.timestamp(), f.lat, f.lon) for f in result.fixes.get(uid, [])]
