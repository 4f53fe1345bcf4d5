"""Delivery tests: a hub with sinks and a real receiver on loopback, under a mock clock.

The mock clock jumps only after the run loop has idled for a moment of real time, so
requests on loopback complete before timeouts and retry waits are skipped over.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from trio.testing import MockClock

sys.path.insert(0, str(Path(__file__).parent))  # world.py

from hub.blocking import blocking_calls_inline


@pytest.fixture
def clock() -> MockClock:
    """The mock clock: a test that takes this fixture runs on it (pytest-trio)."""
    return MockClock(autojump_threshold=0.02)


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield
