"""gpshub-simulator: a GPS source that drives a virtual vehicle along a waypoint route.

This is gpshub's reference plugin.  The hub finds it through the ``gpshub`` entry point in
``pyproject.toml``, which names this module; pluggy then calls the ``@hookimpl`` functions
below once at start-up.

Its exports are imported when first used (``hub.lazy``): the command line imports this
package for every command, ``--help`` included, and needs none of them for that.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import TYPE_CHECKING

from hub import hookimpl
from hub.lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time see __getattr__
    from gpshub_simulator.motion import DEFAULT_SPEED_KMH, Leg, Trip, VehicleState
    from gpshub_simulator.route import Route, RouteError, SensorValue, Waypoint, parse_route
    from gpshub_simulator.source import SimulatorCredentials, SimulatorSource

DEMO_ROUTE: str = files(__name__).joinpath("demo_route.txt").read_text(encoding="utf-8")
"""The built-in route of ``gpshub serve --demo``: a loop around Central Park, Manhattan."""


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    from gpshub_simulator.source import SimulatorSource

    register(SimulatorSource)


__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "gpshub_simulator.motion": ("DEFAULT_SPEED_KMH", "Leg", "Trip", "VehicleState"),
        "gpshub_simulator.route": ("Route", "RouteError", "SensorValue", "Waypoint", "parse_route"),
        "gpshub_simulator.source": ("SimulatorCredentials", "SimulatorSource"),
    },
)

__all__ = [
    "DEFAULT_SPEED_KMH",
    "DEMO_ROUTE",
    "Leg",
    "Route",
    "RouteError",
    "SensorValue",
    "SimulatorCredentials",
    "SimulatorSource",
    "Trip",
    "VehicleState",
    "Waypoint",
    "parse_route",
    "register_sources",
]
