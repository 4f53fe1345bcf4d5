"""Fixtures: ``web``, a running hub with its API (see ``harness``), and ``start_web``."""

from __future__ import annotations

import functools
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the harness and the fake source plugin

from harness import Web, running_web


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[Web]:
    async with running_web(tmp_path) as w:
        yield w


@pytest.fixture
def start_web(tmp_path: Path) -> Any:
    """``async with start_web(live=LiveOptions(...)) as web``: a hub with other options."""
    return functools.partial(running_web, tmp_path)
