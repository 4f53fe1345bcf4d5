"""gpshub-startrack-relay: deliver locations and alerts in Startrack's webhook formats.

Receivers built for Startrack's webhooks get the same bodies from gpshub: the location
relay in "Formato Json 1" (one object per request) or "Formato Json 2" (a counted list),
and the Alert Data Object.  The hub finds this plugin through the ``gpshub`` entry point
in ``pyproject.toml``; pluggy calls the hooks below once at start-up.
``gpshub_startrack_relay.testing`` holds validators and a recording receiver for tests.

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
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


@hookimpl
def register_formats(register: Callable[[type], None]) -> None:
    from gpshub_startrack_relay.formats import StartrackAlert, StartrackJson1, StartrackJson2

    register(StartrackJson1)
    register(StartrackJson2)
    register(StartrackAlert)


@hookimpl
def register_sinks(register: Callable[[type], None]) -> None:
    from gpshub_startrack_relay.sinks import StartrackAlerts, StartrackRelay

    register(StartrackRelay)
    register(StartrackAlerts)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_startrack_relay.formats": (
            "AlertOptions",
            "StartrackAlert",
            "StartrackJson1",
            "StartrackJson2",
            "alert_object",
            "json1_object",
            "json2_object",
        ),
        "gpshub_startrack_relay.sinks": ("StartrackAlerts", "StartrackRelay"),
    },
)

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
