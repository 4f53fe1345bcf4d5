"""gpshub-tracking3d: the units and positions of a 3D Tracking account as a gpshub source.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_tracking3d.testing.FakeTracking3D``
is an in-memory 3D Tracking server for tests and benchmarks (the running hub never imports
it).
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_tracking3d.client import ApiError, Session, Tracking3DClient
from gpshub_tracking3d.feed import FeedPoller
from gpshub_tracking3d.parse import parse_feed, parse_record, parse_unit
from gpshub_tracking3d.source import Tracking3DCredentials, Tracking3DOptions, Tracking3DSource
from hub import hookimpl


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(Tracking3DSource)


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
