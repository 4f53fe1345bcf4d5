"""The plugin as the hub loads it: entry point, hook, registry, and the demo route."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import gpshub_simulator
from gpshub_simulator import DEMO_ROUTE, SimulatorSource, Trip, parse_route
from hub.plugins import ENTRY_POINT_GROUP, load_plugins
from hub.registry import Registry


def test_entry_point_names_the_package() -> None:
    (ep,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "simulator"]
    assert ep.value == "gpshub_simulator"
    assert ep.load() is gpshub_simulator


def test_hook_registers_the_source() -> None:
    pm, infos = load_plugins(extra=[("simulator", gpshub_simulator)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    assert registry.source("simulator") is SimulatorSource
    assert list(registry.sources) == ["simulator"]


def test_register_sources_calls_register_once_with_the_class() -> None:
    registered: list[type] = []
    gpshub_simulator.register_sources(registered.append)
    assert registered == [SimulatorSource]


def test_demo_route_is_a_city_loop_with_stops_and_sensors() -> None:
    route = parse_route(DEMO_ROUTE)
    assert 10 <= len(route) <= 20
    trip = Trip(route, 50.0, loop=True)
    assert 5_000 <= trip.length_m <= 10_000
    assert trip.closing_leg_m < 500  # the last waypoint is close to the first: a real loop
    waypoints = route.waypoints
    assert any(w.wait_s > 0 and w.ignition is False for w in waypoints)
    assert len({w.speed_kmh for w in waypoints if w.speed_kmh is not None}) >= 3
    assert any("fuel_level" in w.sensors for w in waypoints)
    assert all(40.7 < w.lat < 40.9 and -74.0 < w.lon < -73.9 for w in waypoints)  # Manhattan


def test_the_demo_vehicle_sets_off_at_once() -> None:
    """``gpshub serve --demo`` shows a vehicle moving from its first fix, not one parked
    at the depot for minutes; it parks there at the end of each lap instead."""
    trip = Trip(parse_route(DEMO_ROUTE), 50.0, loop=True)
    for elapsed in range(0, 120, 5):
        state = trip.at(elapsed)
        assert state.moving and state.speed_kmh > 0 and state.ignition, elapsed
    parked = trip.at(trip.duration_s - 60)  # the last minutes of a lap: at the depot
    assert not parked.moving and parked.ignition is False


def test_public_names() -> None:
    for name in gpshub_simulator.__all__:
        assert hasattr(gpshub_simulator, name), name


def test_readme_example_route_parses() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    example = readme.split("An example", 1)[1].split("```\n", 2)[1]
    route = parse_route(example)
    assert len(route) == 5
    assert route.waypoints[3].sensors == {"door_open": True, "fuel_level": 63}
