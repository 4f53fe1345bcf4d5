"""Fixtures: a ``FakeTraccar`` on loopback, sources pointed at it, and a mock clock.

A test that takes ``clock`` runs on trio's ``MockClock``: it jumps ahead only after the
run loop has been idle for a moment of real time, so loopback requests complete first and
waits cost nothing.  ``wall`` is wall time following that clock from ``EPOCH``; the fake
reads the same wall time, so receive times are virtual too.
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

from traccar_support import EPOCH, MakeSource, Served

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
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


@pytest.fixture
async def served(nursery: trio.Nursery, wall: TrioClock) -> Served:
    fake = FakeTraccar(now=lambda: wall.now().timestamp())
    url = await nursery.start(serve_app, fake.app)
    return Served(fake, url)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client a runner gives a source: guarded (loopback allowed), timeouts set."""
    async with new_http_client(LOOPBACK) as client:
        yield client


@pytest.fixture
def make_source(served: Served, http: httpx.AsyncClient, wall: TrioClock) -> MakeSource:
    """A new source instance for the fake (a hub restart makes a new one)."""

    def make(*, credentials: dict[str, Any] | None = None, **options: Any) -> TraccarSource:
        ctx: SourceContext[Any, Any] = SourceContext(
            credentials=TraccarSource.parse_credentials(
                credentials or served.fake.credentials(served.url)
            ),
            options=TraccarSource.parse_options({**served.fake.options(served.url), **options}),
            http=http,
            log=logging.getLogger("gpshub.test.traccar"),
            state=MemoryStateStore(),
            clock=wall,
            connection_id=1,
        )
        return TraccarSource(ctx)

    return make
