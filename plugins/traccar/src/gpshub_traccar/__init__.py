"""gpshub-traccar: the devices and positions of a Traccar server as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_traccar.testing.FakeTraccar`` is an
in-memory Traccar server for tests and benchmarks (the running hub never imports it).

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_traccar.client import TraccarClient, TraccarRequestError
    from gpshub_traccar.parse import parse_device, parse_position
    from gpshub_traccar.source import TraccarCredentials, TraccarOptions, TraccarSource


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_traccar.source import TraccarSource

    register(TraccarSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_traccar.client": ("TraccarClient", "TraccarRequestError"),
        "gpshub_traccar.parse": ("parse_device", "parse_position"),
        "gpshub_traccar.source": ("TraccarCredentials", "TraccarOptions", "TraccarSource"),
    },
)

__all__ = [
    "TraccarClient",
    "TraccarCredentials",
    "TraccarOptions",
    "TraccarRequestError",
    "TraccarSource",
    "parse_device",
    "parse_position",
    "register_sources",
]
