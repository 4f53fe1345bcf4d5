"""gpshub-flespi: a source plugin pulling device messages from flespi.io (Flespi Cloud).

The hub finds it through the ``gpshub`` entry point in ``pyproject.toml``; pluggy calls
``register_sources`` once at start-up.  ``gpshub_flespi.testing.FakeFlespi`` is a fake
flespi server for tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_flespi.client import DEFAULT_BASE_URL, FlespiClient
from gpshub_flespi.messages import parse_device, parse_message, parse_telemetry
from gpshub_flespi.source import FlespiCredentials, FlespiOptions, FlespiSource
from hub import hookimpl


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(FlespiSource)


__all__ = [
    "DEFAULT_BASE_URL",
    "FlespiClient",
    "FlespiCredentials",
    "FlespiOptions",
    "FlespiSource",
    "parse_device",
    "parse_message",
    "parse_telemetry",
    "register_sources",
]
