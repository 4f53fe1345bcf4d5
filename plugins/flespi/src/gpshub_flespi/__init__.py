"""gpshub-flespi: a source plugin pulling device messages from flespi.io (Flespi Cloud).

The hub finds it through the ``gpshub`` entry point in ``pyproject.toml``; pluggy calls
``register_sources`` once at start-up.  ``gpshub_flespi.testing.FakeFlespi`` is a fake
flespi server for tests and benchmarks.

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_flespi.client import DEFAULT_BASE_URL, FlespiClient
    from gpshub_flespi.messages import parse_device, parse_message, parse_telemetry
    from gpshub_flespi.source import FlespiCredentials, FlespiOptions, FlespiSource


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_flespi.source import FlespiSource

    register(FlespiSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_flespi.client": ("DEFAULT_BASE_URL", "FlespiClient"),
        "gpshub_flespi.messages": ("parse_device", "parse_message", "parse_telemetry"),
        "gpshub_flespi.source": ("FlespiCredentials", "FlespiOptions", "FlespiSource"),
    },
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
