"""The flespi plugin against ``FakeFlespi`` on loopback, under a mock clock.

The clock jumps only after the run loop has idled for a moment of real time, so requests
on loopback complete first and only deliberate sleeps, timeouts and waits move time.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).parent))  # flespi_world.py

from flespi_world import EPOCH, World

from gpshub_flespi.testing import FakeFlespi
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.testing import serve_app


@pytest.fixture
def clock() -> MockClock:
    """The mock clock: a test that takes this fixture runs on it (pytest-trio)."""
    return MockClock(autojump_threshold=0.02)


@pytest.fixture
def inline() -> Iterator[None]:
    """Store calls on the trio thread, so the mock clock is not fooled by DB threads."""
    with blocking_calls_inline():
        yield


@pytest.fixture
async def world(clock: MockClock, nursery: trio.Nursery) -> AsyncIterator[World]:
    wall = TrioClock(EPOCH)
    wall.now()  # pin the epoch to the current trio time
    fake = FakeFlespi(now=lambda: wall.now().timestamp())
    url = await nursery.start(serve_app, fake.app)
    async with httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)) as http:
        yield World(fake, url, wall, http)
