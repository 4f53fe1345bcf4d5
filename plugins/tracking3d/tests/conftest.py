"""Fixtures on gpshub's pytest plugin: a ``FakeTracking3D`` served on loopback and
sources pointed at it.

``gpshub_clock`` is trio's mock clock (a test taking it, or a fixture built on it, runs
on it); ``gpshub_wall`` is wall time following it from ``EPOCH`` (the date these tests
were written for, through ``gpshub_epoch``); the fake reads the same wall time.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tracking3d_support import EPOCH

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.clock import TrioClock
from hub.testing import Served, SourceMaker


@pytest.fixture
def gpshub_epoch() -> datetime:
    """The wall clock of these tests starts at ``tracking3d_support.EPOCH``."""
    return EPOCH


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (Tracking3DSource,)


@pytest.fixture
async def served(gpshub_served: Any) -> Served:
    served: Served = await gpshub_served(FakeTracking3D)
    return served


@pytest.fixture
def make_source(
    served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> SourceMaker:
    """A new source instance for the fake; pass ``state`` to share one (a restart)."""
    return SourceMaker(Tracking3DSource, served, gpshub_http, gpshub_wall, connection_id=1)
