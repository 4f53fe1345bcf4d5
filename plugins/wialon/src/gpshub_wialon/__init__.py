"""gpshub-wialon: positions and sensor data from Wialon Hosting and Wialon Local.

The hub finds this module through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  The fake server for tests lives in
:mod:`gpshub_wialon.testing` (``from gpshub_wialon.testing import FakeWialon``).
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_wialon.client import WialonClient
from gpshub_wialon.messages import parse_message
from gpshub_wialon.source import WialonCredentials, WialonOptions, WialonSource
from gpshub_wialon.units import parse_unit
from hub import hookimpl


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(WialonSource)


__all__ = [
    "WialonClient",
    "WialonCredentials",
    "WialonOptions",
    "WialonSource",
    "parse_message",
    "parse_unit",
    "register_sources",
]
