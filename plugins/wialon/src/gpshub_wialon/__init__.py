"""gpshub-wialon: positions and sensor data from Wialon Hosting and Wialon Local.

The hub finds this module through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  The fake server for tests lives in
:mod:`gpshub_wialon.testing` (``from gpshub_wialon.testing import FakeWialon``).

Its hook and lazy re-exports come from ``hub.plugin_package.source_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.plugin_package import source_plugin

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_wialon.client import WialonClient
    from gpshub_wialon.messages import parse_message
    from gpshub_wialon.source import WialonCredentials, WialonOptions, WialonSource
    from gpshub_wialon.units import parse_unit


register_sources, __getattr__, __dir__ = source_plugin(
    __name__,
    {
        "gpshub_wialon.client": ("WialonClient",),
        "gpshub_wialon.messages": ("parse_message",),
        "gpshub_wialon.source": ("WialonCredentials", "WialonOptions", "WialonSource"),
        "gpshub_wialon.units": ("parse_unit",),
    },
    "gpshub_wialon.source:WialonSource",
)

__all__ = [
    "WialonClient",
    "WialonCredentials",
    "WialonOptions",
    "WialonSource",
    "parse_message",
    "parse_unit",
    "register_sources",
]
