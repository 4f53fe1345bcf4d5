"""Fixtures on gpshub's pytest plugin (``gpshub_*``): a ``FakeWialon`` served on loopback
and sources pointed at it.

``gpshub_clock`` is trio's mock clock (a test taking it runs on it) and ``gpshub_wall``
wall time from ``EPOCH`` following it; the fake reads the same wall time, so sessions
expire and messages are received in virtual time.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # wialon_support.py

from wialon_support import MakeSource

from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.clock import TrioClock
from hub.source import MemoryStateStore
from hub.testing import Served, source_context


@pytest.fixture
async def served(gpshub_serve: Any, gpshub_wall: TrioClock) -> Served:
    fake = FakeWialon(now=lambda: gpshub_wall.now().timestamp())
    return Served(fake, await gpshub_serve(fake))


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> MakeSource:
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
            options={**fake.options(url), **options}, clock=gpshub_wall, state=state,
            connection_id=connection_id, label="Fleet",
        )  # fmt: skip
        return WialonSource(ctx)

    return make
