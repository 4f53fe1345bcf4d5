"""gpshub-startrack-relay: deliver locations and alerts in Startrack's webhook formats.

Receivers built for Startrack's webhooks get the same bodies from gpshub: the location
relay in "Formato Json 1" (one object per request) or "Formato Json 2" (a counted list),
and the Alert Data Object.  The hub finds this plugin through the ``gpshub`` entry point
in ``pyproject.toml``; pluggy calls the hooks below once at start-up.
``gpshub_startrack_relay.testing`` holds validators and a recording receiver for tests.
"""

from __future__ import annotations

from collections.abc import Callable

from gpshub_startrack_relay.formats import (
    AlertOptions,
    StartrackAlert,
    StartrackJson1,
    StartrackJson2,
    alert_object,
    json1_object,
    json2_object,
)
from gpshub_startrack_relay.sinks import StartrackAlerts, StartrackRelay
from hub import hookimpl


@hookimpl
def register_formats(register: Callable[[type], None]) -> None:
    register(StartrackJson1)
    register(StartrackJson2)
    register(StartrackAlert)


@hookimpl
def register_sinks(register: Callable[[type], None]) -> None:
    register(StartrackRelay)
    register(StartrackAlerts)


__all__ = [
    "AlertOptions",
    "StartrackAlert",
    "StartrackAlerts",
    "StartrackJson1",
    "StartrackJson2",
    "StartrackRelay",
    "alert_object",
    "json1_object",
    "json2_object",
    "register_formats",
    "register_sinks",
]
