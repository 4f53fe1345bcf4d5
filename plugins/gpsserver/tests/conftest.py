"""Fixtures on gpshub's pytest plugin (``gpshub_clock``, ``gpshub_wall``, ``gpshub_served``,
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

from gpsserver_support import Served

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.clock import TrioClock
from hub.testing import SourceMaker


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (GpsServerSource,)


@pytest.fixture(params=["key", "token"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which API the source uses: the user API key, or the email login (v4 token)."""
    return str(request.param)


@pytest.fixture
async def served(gpshub_served: Any) -> Served:
    kit = await gpshub_served(FakeGpsServer)
    return Served(kit.fake, kit.url)


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock, mode: str
) -> SourceMaker:
    """A new source instance for the fake, in the test's ``mode``."""
    return SourceMaker(
        GpsServerSource,
        served,
        gpshub_http,
        gpshub_wall,
        credentials=lambda: served.creds(mode),
        connection_id=1,
    )
