"""gpshub-traccar: the devices and positions of a Traccar server as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_traccar.testing.FakeTraccar`` is an
in-memory Traccar server for tests and benchmarks (the running hub never imports it).

Its hook and lazy re-exports come from ``hub.plugin_package.source_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.plugin_package import source_plugin

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_traccar.client import TraccarClient, TraccarRequestError
    from gpshub_traccar.parse import parse_device, parse_position
    from gpshub_traccar.source import TraccarCredentials, TraccarOptions, TraccarSource


register_sources, __getattr__, __dir__ = source_plugin(
    __name__,
    {
        "gpshub_traccar.client": ("TraccarClient", "TraccarRequestError"),
        "gpshub_traccar.parse": ("parse_device", "parse_position"),
        "gpshub_traccar.source": ("TraccarCredentials", "TraccarOptions", "TraccarSource"),
    },
    "gpshub_traccar.source:TraccarSource",
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
