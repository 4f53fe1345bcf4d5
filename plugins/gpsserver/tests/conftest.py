"""Fixtures on gpshub's pytest plugin (``gpshub_clock``, ``gpshub_wall``, ``gpshub_serve``,
``gpshub_http``, ``gpshub_hub_factory``): a ``FakeGpsServer`` served on loopback, sources
pointed at it, and ``mode`` to run a test with both APIs (the key, the login).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from gpsserver_support import MakeSource, Served

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.clock import TrioClock
from hub.source import MemoryStateStore
from hub.testing import source_context


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (GpsServerSource,)


@pytest.fixture(params=["key", "token"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which API the source uses: the user API key, or the email login (v4 token)."""
    return str(request.param)


@pytest.fixture
async def served(gpshub_serve: Any, gpshub_wall: TrioClock) -> Served:
    fake = FakeGpsServer(now=lambda: gpshub_wall.now().timestamp())
    return Served(fake, await gpshub_serve(fake))


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock, mode: str
) -> MakeSource:
    """A new source instance for the fake, in the test's ``mode``."""

    def make(
        *,
        credentials: dict[str, Any] | None = None,
        state: MemoryStateStore | None = None,
        label: str = "",
        **options: Any,
    ) -> GpsServerSource:
        ctx = source_context(
            GpsServerSource,
            credentials or served.creds(mode),
            gpshub_http,
            options={**served.fake.options(served.url), **options},
            clock=gpshub_wall,
            state=state,
            connection_id=1,
            label=label,
        )
        return GpsServerSource(ctx)

    return make
