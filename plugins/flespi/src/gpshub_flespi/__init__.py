"""gpshub-flespi: a source plugin pulling device messages from flespi.io (Flespi Cloud).

The hub finds it through the ``gpshub`` entry point in ``pyproject.toml``; pluggy calls
``register_sources`` once at start-up.  ``gpshub_flespi.testing.FakeFlespi`` is a fake
flespi server for tests and benchmarks.

Its hook and lazy re-exports come from ``hub.plugin_package.source_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.plugin_package import source_plugin

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_flespi.client import DEFAULT_BASE_URL, FlespiClient
    from gpshub_flespi.messages import parse_device, parse_message, parse_telemetry
    from gpshub_flespi.source import FlespiCredentials, FlespiOptions, FlespiSource


register_sources, __getattr__, __dir__ = source_plugin(
    __name__,
    {
        "gpshub_flespi.client": ("DEFAULT_BASE_URL", "FlespiClient"),
        "gpshub_flespi.messages": ("parse_device", "parse_message", "parse_telemetry"),
        "gpshub_flespi.source": ("FlespiCredentials", "FlespiOptions", "FlespiSource"),
    },
    "gpshub_flespi.source:FlespiSource",
)

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
