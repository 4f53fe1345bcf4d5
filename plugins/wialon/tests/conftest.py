"""Fixtures on gpshub's pytest plugin (``gpshub_*``): a ``FakeWialon`` served on loopback
and sources pointed at it.

``gpshub_clock`` is trio's mock clock (a test taking it runs on it) and ``gpshub_wall``
wall time from ``EPOCH`` following it; the fake reads the same wall time, so sessions
expire and messages are received in virtual time.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # wialon_support.py


from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.pytest_plugin import make_source_fixture, served_fixture

served = served_fixture(FakeWialon)
make_source = make_source_fixture(WialonSource, connection_id=1, label="Fleet")
"""``make_source(**options)``: a new source for the fake (a new one is what a hub restart
makes); ``state=`` shares saved state between instances, ``connection_id=None`` is an
unsaved connection."""
