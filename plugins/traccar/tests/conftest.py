"""Fixtures: a ``FakeTraccar`` served on loopback and sources pointed at it, on the
fixtures of gpshub's pytest plugin (``gpshub_clock``: trio's mock clock, a test taking it
runs on it; ``gpshub_wall``: wall time following it, which the fake reads too, so receive
times are virtual; ``gpshub_served``; ``gpshub_http``)."""

from __future__ import annotations

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.pytest_plugin import make_source_fixture, served_fixture

served = served_fixture(FakeTraccar)
make_source = make_source_fixture(TraccarSource)
"""``make_source(**options)``: a new source for the fake (a new one is what a hub restart
makes); ``state=`` shares saved state between instances, ``connection_id=None`` is an
unsaved connection."""
