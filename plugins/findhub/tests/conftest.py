"""Fixtures on gpshub's pytest plugin (``gpshub_clock``, ``gpshub_wall``, ``gpshub_serve``,
``gpshub_http``, ``gpshub_hub_factory``): a ``FakeFindHub`` served on loopback (its MCS
server with it), and a ``world`` to make sources pointed at it.

On the mock clock blocking calls run inline on the trio thread, so the token request
cannot go over a socket to the fake served by that same thread: ``auth.post_auth_form`` is
replaced by the fake's in-process answer (its one call site; ``test_auth.py`` covers the
real POST, in a worker thread, on the real clock).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # findhub_support.py

from findhub_support import World

from gpshub_findhub import FindHubSource, auth
from gpshub_findhub.testing import FakeFindHub
from hub.clock import TrioClock


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source the hubs of ``gpshub_hub_factory`` register."""
    return (FindHubSource,)


@pytest.fixture
def fake(gpshub_wall: TrioClock) -> FakeFindHub:
    return FakeFindHub(now=lambda: gpshub_wall.now().timestamp())


@pytest.fixture
def inline_auth(fake: FakeFindHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token request answered by the fake in-process."""
    monkeypatch.setattr(auth, "post_auth_form", fake.post_form)


@pytest.fixture
async def served(fake: FakeFindHub, gpshub_serve: Any, inline_auth: None) -> str:
    """The fake served (its MCS server too); its URL."""
    url: str = await gpshub_serve(fake)
    return url


@pytest.fixture
def world(
    fake: FakeFindHub, served: str, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
) -> World:
    return World(fake, served, gpshub_http, gpshub_wall)
