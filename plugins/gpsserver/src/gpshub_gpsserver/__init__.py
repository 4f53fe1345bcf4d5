"""gpshub-gpsserver: the objects and message history of a GPS-Server.net account.

The hub finds this plugin through the ``gpshub`` entry point in ``pyproject.toml``; pluggy
calls ``register_sources`` once at start-up.  ``gpshub_gpsserver.testing.FakeGpsServer``
is an in-memory GPS-Server.net server for tests and benchmarks (the running hub never
imports it).

Its hook and lazy re-exports come from ``hub.plugin_package.source_plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.plugin_package import source_plugin

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
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


register_sources, __getattr__, __dir__ = source_plugin(
    __name__,
    {
        "gpshub_gpsserver.api": ("Api", "NoPermission"),
        "gpshub_gpsserver.keyapi": ("KeyApi",),
        "gpshub_gpsserver.parse": ("Location", "parse_locations", "parse_objects", "parse_row"),
        "gpshub_gpsserver.source": (
            "HOSTED_URL",
            "GpsServerCredentials",
            "GpsServerOptions",
            "GpsServerSource",
        ),
        "gpshub_gpsserver.tokenapi": ("TokenApi",),
    },
    "gpshub_gpsserver.source:GpsServerSource",
)

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
