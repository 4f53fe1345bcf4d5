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

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tracking3d_support import EPOCH

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.pytest_plugin import make_source_fixture, served_fixture


@pytest.fixture
def gpshub_epoch() -> datetime:
    """The wall clock of these tests starts at ``tracking3d_support.EPOCH``."""
    return EPOCH


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (Tracking3DSource,)


served = served_fixture(FakeTracking3D)
make_source = make_source_fixture(Tracking3DSource, connection_id=1)
"""``make_source(**options)``: a new source for the fake (a new one is what a hub restart
makes); ``state=`` shares saved state between instances, ``connection_id=None`` is an
unsaved connection."""
