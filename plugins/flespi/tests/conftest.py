"""The flespi plugin against ``FakeFlespi`` on loopback, on gpshub's pytest plugin: a test
that takes ``gpshub_clock`` runs on trio's mock clock (it jumps only once the run loop has
idled for a moment of real time, so loopback requests complete first)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # flespi_world.py

from flespi_world import World

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import FakeFlespi
from hub.clock import TrioClock


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    return (FlespiSource,)


@pytest.fixture
async def world(
    gpshub_wall: TrioClock, gpshub_served: Any, gpshub_http: httpx.AsyncClient
) -> World:
    """A fake flespi served on loopback, the source's clock, the runner's HTTP client."""
    gpshub_wall.now()  # pin the epoch to the current trio time
    fake, url = await gpshub_served(FakeFlespi)
    return World(fake, url, gpshub_wall, gpshub_http)
