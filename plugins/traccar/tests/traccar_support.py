"""Shared test helpers: the test epoch, a served fake, and fix builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.source import DeviceRef

EPOCH = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
T0 = EPOCH.timestamp()

MakeSource = Callable[..., TraccarSource]


@dataclass
class Served:
    """A fake Traccar and the base URL it is served at."""

    fake: FakeTraccar
    url: str


def refs(ids: list[str]) -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...)."""
    return [DeviceRef(i + 1, uid, f"device {uid}") for i, uid in enumerate(ids)]


def fix_times(result: Any, uid: str) -> list[float]:
    """The fix times (epoch seconds) a poll returned for one device."""
    return [f.fix_time.timestamp() for f in result.fixes.get(uid, [])]
