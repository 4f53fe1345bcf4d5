"""gpshub-gpsserver: the objects and message history of a GPS-Server.net account.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_gpsserver.testing.FakeGpsServer``
is an in-memory GPS-Server.net server for tests and benchmarks (the running hub never
imports it).
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_gpsserver.api import Api, NoPermission
from gpshub_gpsserver.keyapi import KeyApi
from gpshub_gpsserver.parse import Location, parse_locations, parse_objects, parse_row
from gpshub_gpsserver.source import (
    HOSTED_URL,
    GpsServerCredentials,
    GpsServerOptions,
    GpsServerSource,
)
from gpshub_gpsserver.tokenapi import TokenApi
from hub import hookimpl


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(GpsServerSource)


__all__ = [
    "HOSTED_URL",
    "Api",
    "GpsServerCredentials",
    "GpsServerOptions",
    "GpsServerSource",
    "KeyApi",
    "Location",
    "NoPermission",
    "TokenApi",
    "parse_locations",
    "parse_objects",
    "parse_row",
    "register_sources",
]
