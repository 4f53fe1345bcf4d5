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


from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.clock import TrioClock
from hub.testing import Served, SourceMaker


@pytest.fixture
async def served(gpshub_served: Any) -> Served:
    served: Served = await gpshub_served(FakeWialon)
    return served


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> SourceMaker:
    """A source instance for the fake (a new one is what a hub restart makes).

    ``state`` shares a connection's saved state between instances; ``connection_id``
    ``None`` makes an unsaved connection (its session is logged out on close)."""
    return SourceMaker(
        WialonSource, served, gpshub_http, gpshub_wall, connection_id=1, label="Fleet"
    )
