"""Fixtures on gpshub's pytest plugin: a ``FakeTracking3D`` served on loopback and
sources pointed at it.

``gpshub_clock`` is trio's mock clock (a test taking it, or a fixture built on it, runs
on it); ``gpshub_wall`` is wall time following it from ``EPOCH`` (the date these tests
were written for, through ``gpshub_epoch``); the fake reads the same wall time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tracking3d_support import EPOCH, MakeSource

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.clock import TrioClock
from hub.source import MemoryStateStore
from hub.testing import Served, source_context


@pytest.fixture
def gpshub_epoch() -> datetime:
    """The wall clock of these tests starts at ``tracking3d_support.EPOCH``."""
    return EPOCH


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (Tracking3DSource,)


@pytest.fixture
async def served(gpshub_serve: Any, gpshub_wall: TrioClock) -> Served:
    fake = FakeTracking3D(now=lambda: gpshub_wall.now().timestamp())
    return Served(fake, await gpshub_serve(fake))


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> MakeSource:
    """A new source instance for the fake; pass ``state`` to share one (a restart)."""

    def make(
        *,
        credentials: dict[str, Any] | None = None,
        state: MemoryStateStore | None = None,
        **options: Any,
    ) -> Tracking3DSource:
        ctx = source_context(
            Tracking3DSource,
            credentials or served.fake.credentials(served.url),
            gpshub_http,
            options={**served.fake.options(served.url), **options},
            clock=gpshub_wall,
            state=state,
            connection_id=1,
        )
        return Tracking3DSource(ctx)

    return make
