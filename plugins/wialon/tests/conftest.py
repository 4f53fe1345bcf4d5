"""Fixtures on gpshub's pytest plugin (``gpshub_*``): a ``FakeWialon`` served on loopback
and sources pointed at it.

``clock`` and ``wall`` are the kit's ``gpshub_clock`` (a test taking it runs on trio's
mock clock) and ``gpshub_wall`` (wall time from ``EPOCH`` following it); the fake reads
the same wall time, so sessions expire and messages are received in virtual time.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).parent))  # wialon_support.py

from wialon_support import MakeSource, Served

from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.clock import TrioClock
from hub.source import MemoryStateStore
from hub.testing import source_context


@pytest.fixture
def clock(gpshub_clock: MockClock) -> MockClock:
    return gpshub_clock


@pytest.fixture
def wall(gpshub_wall: TrioClock) -> TrioClock:
    return gpshub_wall


@pytest.fixture
async def served(gpshub_serve: Any, wall: TrioClock) -> Served:
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    return Served(fake, await gpshub_serve(fake))


@pytest.fixture
def make_source(served: Served, gpshub_http: httpx.AsyncClient, wall: TrioClock) -> MakeSource:
    """A source instance for the fake (a new one is what a hub restart makes).

    ``state`` shares a connection's saved state between instances; ``connection_id``
    ``None`` makes an unsaved connection (its session is logged out on close)."""

    def make(
        *,
        state: MemoryStateStore | None = None,
        credentials: dict[str, Any] | None = None,
        connection_id: int | None = 1,
        **options: Any,
    ) -> WialonSource:
        fake, url = served.fake, served.url
        ctx = source_context(
            WialonSource, credentials or fake.credentials(url), gpshub_http,
            options={**fake.options(url), **options}, clock=wall, state=state,
        )  # fmt: skip
        return WialonSource(replace(ctx, connection_id=connection_id, label="Fleet"))

    return make
