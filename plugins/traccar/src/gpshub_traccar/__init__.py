"""gpshub-traccar: the devices and positions of a Traccar server as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_traccar.testing.FakeTraccar`` is an
in-memory Traccar server for tests and benchmarks (the running hub never imports it).
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_traccar.client import TraccarClient, TraccarRequestError
from gpshub_traccar.parse import parse_device, parse_position
from gpshub_traccar.source import TraccarCredentials, TraccarOptions, TraccarSource
from hub import hookimpl


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(TraccarSource)


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
