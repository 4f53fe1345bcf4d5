"""gpshub-wialon: positions and sensor data from Wialon Hosting and Wialon Local.

The hub finds this module through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  The fake server for tests lives in
:mod:`gpshub_wialon.testing` (``from gpshub_wialon.testing import FakeWialon``).

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_wialon.client import WialonClient
    from gpshub_wialon.messages import parse_message
    from gpshub_wialon.source import WialonCredentials, WialonOptions, WialonSource
    from gpshub_wialon.units import parse_unit


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_wialon.source import WialonSource

    register(WialonSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_wialon.client": ("WialonClient",),
        "gpshub_wialon.messages": ("parse_message",),
        "gpshub_wialon.source": ("WialonCredentials", "WialonOptions", "WialonSource"),
        "gpshub_wialon.units": ("parse_unit",),
    },
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
