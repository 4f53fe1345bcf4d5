"""Fixtures: a ``FakeTraccar`` served on loopback and sources pointed at it, on the
fixtures of gpshub's pytest plugin (``gpshub_clock``: trio's mock clock, a test taking it
runs on it; ``gpshub_wall``: wall time following it, which the fake reads too, so receive
times are virtual; ``gpshub_serve``; ``gpshub_http``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.clock import TrioClock
from hub.testing import Served, source_context


@pytest.fixture
async def served(gpshub_serve: Any, gpshub_wall: TrioClock) -> Served:
    fake = FakeTraccar(now=lambda: gpshub_wall.now().timestamp())
    return Served(fake, await gpshub_serve(fake))


@pytest.fixture
def make_source(served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock) -> Any:
    """A new source instance for the fake (a hub restart makes a new one)."""

    def make(*, credentials: dict[str, Any] | None = None, **options: Any) -> TraccarSource:
        ctx = source_context(
            TraccarSource,
            credentials or served.fake.credentials(served.url),
            gpshub_http,
            options={**served.fake.options(served.url), **options},
            clock=gpshub_wall,
        )
        return TraccarSource(ctx)

    return make
