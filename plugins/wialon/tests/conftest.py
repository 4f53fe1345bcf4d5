"""Fixtures: a ``FakeWialon`` served on loopback, sources pointed at it, a mock clock.

Tests that take ``clock`` run on trio's ``MockClock``; it jumps only after the run loop
has idled for a moment of real time, so loopback requests complete before timeouts and
waits are skipped over.  Wall time (``wall``) follows the mock clock from ``EPOCH``, and
the fake server reads the same wall time, so sessions expire and messages are received
in virtual time.
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

sys.path.insert(0, str(Path(__file__).parent))  # wialon_support.py

from wialon_support import EPOCH, MakeSource, Served

from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.runner import new_http_client
from hub.source import MemoryStateStore, SourceContext
from hub.testing import LOOPBACK, serve_app


@pytest.fixture
def clock() -> MockClock:
    """The mock clock: a test that takes this fixture runs on it (pytest-trio)."""
    return MockClock(autojump_threshold=0.02)


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


@pytest.fixture
def wall() -> TrioClock:
    """Wall time starting at ``EPOCH`` and following trio's clock."""
    return TrioClock(EPOCH)


@pytest.fixture
async def served(nursery: trio.Nursery, wall: TrioClock) -> Served:
    fake = FakeWialon(now=lambda: wall.now().timestamp())
    url = await nursery.start(serve_app, fake.app)
    return Served(fake, url)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client a runner gives its source: guarded (loopback allowed), timeouts set."""
    async with new_http_client(LOOPBACK) as client:
        yield client


@pytest.fixture
def make_source(served: Served, http: httpx.AsyncClient, wall: TrioClock) -> MakeSource:
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
        ctx: SourceContext[Any, Any] = SourceContext(
            credentials=WialonSource.parse_credentials(
                credentials or served.fake.credentials(served.url)
            ),
            options=WialonSource.parse_options({**served.fake.options(served.url), **options}),
            http=http,
            log=logging.getLogger("gpshub.test.wialon"),
            state=state if state is not None else MemoryStateStore(),
            clock=wall,
            connection_id=connection_id,
            label="Fleet",
        )
        return WialonSource(ctx)

    return make
