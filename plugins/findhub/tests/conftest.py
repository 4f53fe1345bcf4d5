"""Fixtures: a ``FakeFindHub`` on loopback, sources pointed at it, and a mock clock.

A test that takes ``clock`` runs on trio's ``MockClock`` (autojump): loopback requests
complete first, waits cost nothing.  ``wall`` is wall time following that clock from
``EPOCH``; the fake reads the same wall time.  Blocking calls run inline on the trio
thread, so the token request cannot go over a socket to the fake served by that same
thread: ``auth.post_auth_form`` is replaced by the fake's in-process answer (its one call
site; ``test_auth.py`` covers the real POST, in a worker thread, on the real clock).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import trio
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).parent))  # findhub_support.py

from findhub_support import EPOCH, World

from gpshub_findhub import auth
from gpshub_findhub.testing import FakeFindHub
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.runner import new_http_client
from hub.testing import LOOPBACK


@pytest.fixture
def clock() -> MockClock:
    """Trio's mock clock; a test taking this fixture runs on it (pytest-trio)."""
    return MockClock(autojump_threshold=0.02)


@pytest.fixture
def wall() -> TrioClock:
    """Wall time from ``EPOCH``, following trio's clock."""
    return TrioClock(EPOCH)


@pytest.fixture
def fake(wall: TrioClock) -> FakeFindHub:
    return FakeFindHub(now=lambda: wall.now().timestamp())


@pytest.fixture
def inline_auth(fake: FakeFindHub, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Blocking calls inline, the token request answered by the fake in-process."""
    monkeypatch.setattr(auth, "post_auth_form", fake.post_form)
    with blocking_calls_inline():
        yield


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client a runner gives a source: guarded (loopback allowed), timeouts set."""
    async with new_http_client(LOOPBACK) as client:
        yield client


@pytest.fixture
async def world(
    fake: FakeFindHub,
    http: httpx.AsyncClient,
    wall: TrioClock,
    nursery: trio.Nursery,
    inline_auth: None,
) -> World:
    url = await fake.start(nursery)
    return World(fake, url, http, wall)
