"""gpshub-tracking3d: the units and positions of a 3D Tracking account as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_tracking3d.testing.FakeTracking3D``
is an in-memory 3D Tracking server for tests and benchmarks (the running hub never imports
it).

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_tracking3d.client import ApiError, Session, Tracking3DClient
    from gpshub_tracking3d.feed import FeedPoller
    from gpshub_tracking3d.parse import parse_feed, parse_record, parse_unit
    from gpshub_tracking3d.source import Tracking3DCredentials, Tracking3DOptions, Tracking3DSource


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_tracking3d.source import Tracking3DSource

    register(Tracking3DSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_tracking3d.client": ("ApiError", "Session", "Tracking3DClient"),
        "gpshub_tracking3d.feed": ("FeedPoller",),
        "gpshub_tracking3d.parse": ("parse_feed", "parse_record", "parse_unit"),
        "gpshub_tracking3d.source": (
            "Tracking3DCredentials",
            "Tracking3DOptions",
            "Tracking3DSource",
        ),
    },
)

__all__ = [
    "ApiError",
    "FeedPoller",
    "Session",
    "Tracking3DClient",
    "Tracking3DCredentials",
    "Tracking3DOptions",
    "Tracking3DSource",
    "parse_feed",
    "parse_record",
    "parse_unit",
    "register_sources",
]
