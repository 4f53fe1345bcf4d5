"""gpshub-tracking3d: the units and positions of a 3D Tracking account as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_tracking3d.testing.FakeTracking3D``
is an in-memory 3D Tracking server for tests and benchmarks (the running hub never imports
it).

Its hook and lazy re-exports come from ``hub.plugin_package.source_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.plugin_package import source_plugin

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_tracking3d.client import ApiError, Session, Tracking3DClient
    from gpshub_tracking3d.feed import FeedPoller
    from gpshub_tracking3d.parse import parse_feed, parse_record, parse_unit
    from gpshub_tracking3d.source import Tracking3DCredentials, Tracking3DOptions, Tracking3DSource


register_sources, __getattr__, __dir__ = source_plugin(
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
    "gpshub_tracking3d.source:Tracking3DSource",
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
