"""Fixtures: a ``FakeTraccar`` served on loopback and sources pointed at it, on the
fixtures of gpshub's pytest plugin (``gpshub_clock``: trio's mock clock, a test taking it
runs on it; ``gpshub_wall``: wall time following it, which the fake reads too, so receive
times are virtual; ``gpshub_served``; ``gpshub_http``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.clock import TrioClock
from hub.testing import Served, SourceMaker


@pytest.fixture
async def served(gpshub_served: Any) -> Served:
    served: Served = await gpshub_served(FakeTraccar)
    return served


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> SourceMaker:
    """A new source instance for the fake (a hub restart makes a new one)."""
    return SourceMaker(TraccarSource, served, gpshub_http, gpshub_wall)
