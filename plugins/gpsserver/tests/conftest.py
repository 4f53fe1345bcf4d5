"""Fixtures: a ``FakeGpsServer`` on loopback, sources pointed at it, and a mock clock.

A test that takes ``clock`` runs on trio's ``MockClock``: it jumps ahead only after the
run loop has been idle for a moment of real time, so loopback requests complete first and
waits cost nothing.  ``wall`` is wall time following that clock from ``EPOCH``; the fake
reads the same wall time.  ``mode`` runs a test with both APIs (the key, the login).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).parent))

from gpsserver_support import EPOCH, MakeSource, Served

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.runner import new_http_client
from hub.source import MemoryStateStore, SourceContext
from hub.testing import LOOPBACK, serve_app


@pytest.fixture
def clock() -> MockClock:
    """Trio's mock clock; a test taking this fixture runs on it (pytest-trio)."""
    return MockClock(autojump_threshold=0.02)


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


@pytest.fixture
def wall() -> TrioClock:
    """Wall time from ``EPOCH``, following trio's clock."""
    return TrioClock(EPOCH)


@pytest.fixture(params=["key", "token"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which API the source uses: the user API key, or the email login (v4 token)."""
    return str(request.param)


@pytest.fixture
async def served(nursery: trio.Nursery, wall: TrioClock) -> Served:
    fake = FakeGpsServer(now=lambda: wall.now().timestamp())
    url = await nursery.start(serve_app, fake.app)
    return Served(fake, url)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client a runner gives a source: guarded (loopback allowed), timeouts set."""
    async with new_http_client(LOOPBACK) as client:
        yield client


@pytest.fixture
def make_source(served: Served, http: httpx.AsyncClient, wall: TrioClock, mode: str) -> MakeSource:
    """A new source instance for the fake, in the test's ``mode``."""

    def make(
        *,
        credentials: dict[str, Any] | None = None,
        state: MemoryStateStore | None = None,
        label: str = "",
        **options: Any,
    ) -> GpsServerSource:
        ctx: SourceContext[Any, Any] = SourceContext(
            credentials=GpsServerSource.parse_credentials(credentials or served.creds(mode)),
            options=GpsServerSource.parse_options({**served.fake.options(served.url), **options}),
            http=http,
            log=logging.getLogger("gpshub.test.gpsserver"),
            state=state if state is not None else MemoryStateStore(),
            clock=wall,
            connection_id=1,
            label=label,
        )
        return GpsServerSource(ctx)

    return make
