"""Geofence shapes: parsing and validation, containment, distances, GeoJSON round trips.

Property tests compare the shapes against plain, separate references: ray casting
northwards (the implementation casts eastwards), great-circle vector geometry for
corridors, and the spherical law of cosines for circles.
"""

from __future__ import annotations

import math
import time
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.geo import (
    EARTH_RADIUS_M,
    M_PER_DEG,
    Circle,
    Corridor,
    GeometryError,
    Polygon,
    haversine_m,
    parse_shape,
    shape_center,
    to_geojson,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """(lat, lon) moved by metres in a local flat approximation."""
    return (
        lat + north_m / M_PER_DEG,
        lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))),
    )


def polygon(*rings: list[list[float]]) -> Polygon:
    shape = parse_shape({"type": "Polygon", "coordinates": list(rings)})
    assert isinstance(shape, Polygon)
    return shape


def refused(geometry: Any, properties: Any = None) -> GeometryError:
    with pytest.raises(GeometryError) as info:
        parse_shape(geometry, properties)
    return info.value


SQUARE = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0], [0.0, 0.0]]
HOLE = [[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0], [4.0, 4.0]]


# --------------------------------------------------------------------------- basics


def test_haversine_one_degree_of_latitude_and_symmetry() -> None:
    assert haversine_m(10.0, 20.0, 11.0, 20.0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180)
    assert haversine_m(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343_900, rel=0.005)
    assert haversine_m(1.0, 2.0, 3.0, 4.0) == pytest.approx(haversine_m(3.0, 4.0, 1.0, 2.0))
    assert haversine_m(45.0, 7.0, 45.0, 7.0) == 0.0
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_M)


def test_geometry_error_carries_field_and_reason() -> None:
    error = GeometryError("properties.radius_m", "must be greater than 0")
    assert isinstance(error, ValueError)
    assert error.field == "properties.radius_m"
    assert error.reason == "must be greater than 0"
    assert str(error) == "properties.radius_m: must be greater than 0"


def test_kinds() -> None:
    assert Circle(1.0, 2.0, 3.0).kind == "circle"
    assert polygon(SQUARE).kind == "polygon"
    assert Corridor(((0.0, 0.0), (1.0, 0.0)), 5.0).kind == "corridor"


# --------------------------------------------------------------------------- parsing errors


@pytest.mark.parametrize(
    ("geometry", "properties", "field", "reason"),
    [
        ([1, 2], None, "geometry", "must be a GeoJSON geometry object"),
        ({"type": "Point", "coordinates": [1, 2]}, [], "properties", "must be an object"),
        (
            {"type": "MultiPolygon", "coordinates": []},
            None,
            "geometry.type",
            "unsupported geometry type 'MultiPolygon' (expected Point, Polygon or LineString)",
        ),
        (
            {"coordinates": [1, 2]},
            None,
            "geometry.type",
            "unsupported geometry type None (expected Point, Polygon or LineString)",
        ),
        ({"type": "Point"}, {"radius_m": 5}, "geometry.coordinates", "is required"),
    ],
)
def test_structure_errors(geometry: Any, properties: Any, field: str, reason: str) -> None:
    error = refused(geometry, properties)
    assert (error.field, error.reason) == (field, reason)


@pytest.mark.parametrize(
    ("coordinates", "reason"),
    [
        ([1.0], "must be a [longitude, latitude] pair, got [1.0]"),
        ([1.0, 2.0, 3.0], "must be a [longitude, latitude] pair, got [1.0, 2.0, 3.0]"),
        ("1,2", "must be a [longitude, latitude] pair, got '1,2'"),
        (None, "must be a [longitude, latitude] pair, got None"),
        (["1", 2.0], "longitude must be a number, got '1'"),
        ([1.0, True], "latitude must be a number, got True"),
        ([float("nan"), 2.0], "longitude must be a finite number, got nan"),
        ([1.0, float("inf")], "latitude must be a finite number, got inf"),
        ([10**400, 2.0], f"longitude must be a finite number, got {str(10**400)[:57]}..."),
        ([180.5, 2.0], "longitude 180.5 is outside [-180, 180]"),
        ([1.0, -90.01], "latitude -90.01 is outside [-90, 90]"),
    ],
)
def test_point_coordinate_errors(coordinates: Any, reason: str) -> None:
    error = refused({"type": "Point", "coordinates": coordinates}, {"radius_m": 10})
    assert error.field == "geometry.coordinates"
    assert error.reason == reason


@pytest.mark.parametrize(
    ("properties", "reason"),
    [
        (None, "is required for a circle (Point)"),
        ({}, "is required for a circle (Point)"),
        ({"radius_m": 0}, "radius must be greater than 0, got 0.0"),
        ({"radius_m": -3.5}, "radius must be greater than 0, got -3.5"),
        ({"radius_m": "100"}, "radius must be a number, got '100'"),
        ({"radius_m": None}, "radius must be a number, got None"),
        ({"radius_m": False}, "radius must be a number, got False"),
        ({"radius_m": float("nan")}, "radius must be a finite number, got nan"),
        ({"radius_m": float("inf")}, "radius must be a finite number, got inf"),
    ],
)
def test_circle_radius_errors(properties: Any, reason: str) -> None:
    error = refused({"type": "Point", "coordinates": [2.35, 48.85]}, properties)
    assert (error.field, error.reason) == ("properties.radius_m", reason)


def test_circle_crossing_the_antimeridian_or_containing_a_pole_is_refused() -> None:
    near_antimeridian = {"type": "Point", "coordinates": [179.999, 0.0]}
    assert isinstance(parse_shape(near_antimeridian, {"radius_m": 100}), Circle)
    error = refused(near_antimeridian, {"radius_m": 200})
    assert error.field == "properties.radius_m"
    assert "crosses the antimeridian" in error.reason
    assert "split the geofence in two" in error.reason
    error = refused({"type": "Point", "coordinates": [-179.999, 10.0]}, {"radius_m": 200})
    assert "crosses the antimeridian" in error.reason

    near_pole = {"type": "Point", "coordinates": [0.0, 89.999]}
    assert isinstance(parse_shape(near_pole, {"radius_m": 100}), Circle)
    error = refused(near_pole, {"radius_m": 112})
    assert error.field == "properties.radius_m"
    assert "contains a pole" in error.reason
    assert "contains a pole" in refused(near_pole, {"radius_m": 1e7}).reason


@pytest.mark.parametrize(
    ("coordinates", "field", "reason"),
    [
        ([], "geometry.coordinates", "a polygon needs a list of rings, the exterior ring first"),
        (
            "ring",
            "geometry.coordinates",
            "a polygon needs a list of rings, the exterior ring first",
        ),
        ([5], "geometry.coordinates.0", "must be a list of positions, got 5"),
        (
            [SQUARE, "hole"],
            "geometry.coordinates.1",
            "must be a list of positions, got 'hole'",
        ),
        (
            [[[0, 0], [1, 0], [0, 1], [0, 0, 1]]],
            "geometry.coordinates.0.3",
            "must be a [longitude, latitude] pair, got [0, 0, 1]",
        ),
        (
            [[[0, 0], [1, 0], [1, 95], [0, 0]]],
            "geometry.coordinates.0.2",
            "latitude 95.0 is outside [-90, 90]",
        ),
        (
            [SQUARE, [[4, 4], [6, 4], ["6", 6], [4, 4]]],
            "geometry.coordinates.1.2",
            "longitude must be a number, got '6'",
        ),
        (
            [[[0, 0], [1, 0], [0, 0]]],
            "geometry.coordinates.0",
            "a ring needs at least 4 positions, got 3",
        ),
        (
            [[[0, 0], [1, 0], [1, 1], [0, 1]]],
            "geometry.coordinates.0",
            "ring is not closed: the last position must repeat the first",
        ),
        (
            [[[0, 0], [1, 0], [1, 0], [1, 1], [0, 0]]],
            "geometry.coordinates.0.2",
            "repeats the previous position",
        ),
        (
            [[[0, 0], [1, 1], [2, 2], [0, 0]]],
            "geometry.coordinates.0",
            "ring has zero area (its positions are collinear)",
        ),
        (
            [SQUARE, [[4, 4], [6, 4], [6, 6], [4, 6]]],
            "geometry.coordinates.1",
            "ring is not closed: the last position must repeat the first",
        ),
    ],
)
def test_polygon_structure_errors(coordinates: Any, field: str, reason: str) -> None:
    error = refused({"type": "Polygon", "coordinates": coordinates})
    assert (error.field, error.reason) == (field, reason)


def test_bow_tie_names_the_crossing_segments() -> None:
    error = refused(
        {"type": "Polygon", "coordinates": [[[0, 0], [10, 10], [10, 0], [0, 10], [0, 0]]]}
    )
    assert error.field == "geometry.coordinates.0"
    assert error.reason == (
        "the exterior ring intersects itself: segment 0 (positions 0-1) "
        "and segment 2 (positions 2-3)"
    )


def test_ring_touching_itself_at_a_vertex_is_self_intersecting() -> None:
    # Two triangles meeting at (5, 5): the vertex appears twice.
    ring = [[0, 0], [10, 0], [5, 5], [10, 10], [0, 10], [5, 5], [0, 0]]
    error = refused({"type": "Polygon", "coordinates": [ring]})
    assert error.field == "geometry.coordinates.0"
    assert error.reason.startswith("the exterior ring intersects itself: segment 1 (positions 1-2)")


def test_vertex_touching_another_edge_is_self_intersecting() -> None:
    # Position 3 lies on segment 0; segments 2 and 3 both touch it there.
    ring = [[0, 0], [10, 0], [10, 10], [5, 0.0], [0, 10], [0, 0]]
    error = refused({"type": "Polygon", "coordinates": [ring]})
    assert error.field == "geometry.coordinates.0"
    assert error.reason == (
        "the exterior ring intersects itself: segment 0 (positions 0-1) "
        "and segment 3 (positions 3-4)"
    )


def test_spike_folding_back_on_itself_is_self_intersecting() -> None:
    ring = [[0, 0], [10, 0], [5, 0], [5, 5], [0, 5], [0, 0]]
    error = refused({"type": "Polygon", "coordinates": [ring]})
    assert error.reason == (
        "the exterior ring intersects itself: segment 0 (positions 0-1) "
        "and segment 1 (positions 1-2)"
    )


def test_self_intersecting_hole() -> None:
    bow_tie = [[2, 2], [8, 8], [8, 2], [2, 8], [2, 2]]
    error = refused({"type": "Polygon", "coordinates": [SQUARE, bow_tie]})
    assert error.field == "geometry.coordinates.1"
    assert error.reason == (
        "hole 1 intersects itself: segment 0 (positions 0-1) and segment 2 (positions 2-3)"
    )


def test_adjacent_segments_and_collinear_neighbours_are_accepted() -> None:
    # Three collinear positions along the bottom edge, and a triangle (all pairs adjacent).
    shape = polygon([[0, 0], [5, 0], [10, 0], [10, 10], [0, 10], [0, 0]])
    assert shape.contains(5.0, 5.0)
    assert polygon([[0, 0], [1, 0], [0, 1], [0, 0]]).contains(0.25, 0.25)


@pytest.mark.parametrize(
    ("hole", "reason"),
    [
        ([[20, 20], [22, 20], [22, 22], [20, 20]], "hole 1 is outside the exterior ring"),
        (
            [[5, 5], [15, 5], [15, 6], [5, 5]],
            "hole 1 touches or crosses the exterior ring: its segment 0 (positions 0-1) "
            "and segment 1 of the exterior ring",
        ),
        (
            [[0, 5], [5, 4], [5, 6], [0, 5]],
            "hole 1 touches or crosses the exterior ring: its segment 0 (positions 0-1) "
            "and segment 3 of the exterior ring",
        ),
    ],
)
def test_hole_must_lie_inside_the_exterior(hole: list[list[float]], reason: str) -> None:
    error = refused({"type": "Polygon", "coordinates": [SQUARE, hole]})
    assert (error.field, error.reason) == ("geometry.coordinates.1", reason)


def test_holes_must_not_nest_or_touch() -> None:
    inner = [[4.5, 4.5], [5.5, 4.5], [5.0, 5.5], [4.5, 4.5]]
    error = refused({"type": "Polygon", "coordinates": [SQUARE, HOLE, inner]})
    assert (error.field, error.reason) == ("geometry.coordinates.2", "hole 2 lies inside hole 1")
    error = refused({"type": "Polygon", "coordinates": [SQUARE, inner, HOLE]})
    assert (error.field, error.reason) == ("geometry.coordinates.1", "hole 1 lies inside hole 2")
    touching = [[6, 5], [8, 4], [8, 6], [6, 5]]
    error = refused({"type": "Polygon", "coordinates": [SQUARE, HOLE, touching]})
    assert error.field == "geometry.coordinates.2"
    assert error.reason.startswith("hole 2 touches or crosses hole 1")


def test_polygon_crossing_the_antimeridian_is_refused() -> None:
    ring = [[170, 0], [-170, 0], [-170, 10], [170, 10], [170, 0]]
    error = refused({"type": "Polygon", "coordinates": [ring]})
    assert error.field == "geometry.coordinates.0"
    assert error.reason == (
        "longitudes span 340° (more than 180°): shapes crossing the antimeridian are not "
        "supported, split the shape in two"
    )
    # Wide but not crossing: exactly 180° of longitude is accepted.
    assert polygon([[-90, 0], [90, 0], [90, 10], [-90, 0]]).contains(2.0, 50.0)


@pytest.mark.parametrize(
    ("coordinates", "properties", "field", "reason"),
    [
        (
            [[0, 0]],
            {"width_m": 10},
            "geometry.coordinates",
            "a line needs at least 2 positions, got 1",
        ),
        ([], {"width_m": 10}, "geometry.coordinates", "a line needs at least 2 positions, got 0"),
        (
            [[1, 1], [1, 1], [1.0, 1.0]],
            {"width_m": 10},
            "geometry.coordinates",
            "a line needs at least 2 distinct positions",
        ),
        (
            "line",
            {"width_m": 10},
            "geometry.coordinates",
            "must be a list of positions, got 'line'",
        ),
        (
            [[0, 0], [1, 91]],
            {"width_m": 10},
            "geometry.coordinates.1",
            "latitude 91.0 is outside [-90, 90]",
        ),
        ([[0, 0], [1, 1]], {}, "properties.width_m", "is required for a corridor (LineString)"),
        (
            [[0, 0], [1, 1]],
            {"width_m": 0},
            "properties.width_m",
            "width must be greater than 0, got 0.0",
        ),
        (
            [[0, 0], [1, 1]],
            {"width_m": -1},
            "properties.width_m",
            "width must be greater than 0, got -1.0",
        ),
        (
            [[0, 0], [1, 1]],
            {"width_m": float("inf")},
            "properties.width_m",
            "width must be a finite number, got inf",
        ),
        (
            [[-100, 0], [100, 1]],
            {"width_m": 10},
            "geometry.coordinates",
            "longitudes span 200° (more than 180°): shapes crossing the antimeridian are "
            "not supported, split the shape in two",
        ),
        (
            [[179.9995, 0], [179.9995, 1]],
            {"width_m": 200},
            "properties.width_m",
            "the corridor crosses the antimeridian, which is not supported: split the "
            "geofence in two",
        ),
        (
            [[0, 89.99], [1, 89.9999]],
            {"width_m": 50},
            "properties.width_m",
            "the corridor reaches a pole, which is not supported",
        ),
    ],
)
def test_corridor_errors(coordinates: Any, properties: Any, field: str, reason: str) -> None:
    error = refused({"type": "LineString", "coordinates": coordinates}, properties)
    assert (error.field, error.reason) == (field, reason)


def test_direct_construction_validates_and_normalises() -> None:
    assert Circle(1, 2, 3) == Circle(1.0, 2.0, 3.0)
    assert isinstance(Circle(1, 2, 3).radius_m, float)
    with pytest.raises(GeometryError) as info:
        Circle(91.0, 0.0, 5.0)
    assert info.value.field == "geometry.coordinates"
    shape = Polygon([[0, 0], [1, 0], [0, 1], [0, 0]])  # type: ignore[arg-type]
    assert shape.exterior == ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0))
    with pytest.raises(GeometryError) as info:
        Polygon(((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)), "no")  # type: ignore[arg-type]
    assert info.value.field == "geometry.coordinates"
    corridor = Corridor([[0, 0], [1, 0]], 4)  # type: ignore[arg-type]
    assert corridor.line == ((0.0, 0.0), (1.0, 0.0))
    assert corridor.width_m == 4.0


def test_shapes_are_frozen_and_hashable() -> None:
    circle = Circle(1.0, 2.0, 3.0)
    with pytest.raises(AttributeError):
        circle.radius_m = 5.0  # type: ignore[misc]
    assert len({circle, Circle(1.0, 2.0, 3.0), polygon(SQUARE), polygon(SQUARE)}) == 2


# --------------------------------------------------------------------------- polygons


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [
        (2.0, 2.0, True),  # in the ring between exterior and hole
        (5.0, 5.0, False),  # in the hole
        (11.0, 5.0, False),  # north of the polygon
        (5.0, -0.5, False),  # west of it
        (5.0, 0.0, True),  # on the exterior's west edge
        (0.0, 0.0, True),  # on an exterior vertex
        (10.0, 10.0, True),  # on the opposite vertex
        (4.0, 5.0, True),  # on the hole's south edge
        (6.0, 6.0, True),  # on a hole vertex
        (5.0, 4.0 + 1e-6, False),  # just inside the hole
        (5.0, 4.0 - 1e-6, True),  # just outside the hole
        (10.0 + 1e-6, 5.0, False),  # just outside the north edge
    ],
)
def test_polygon_with_hole_contains(lat: float, lon: float, inside: bool) -> None:
    shape = polygon(SQUARE, HOLE)
    assert shape.contains(lat, lon) is inside
    assert (shape.distance_m(lat, lon) == 0.0) is inside


def test_point_on_a_slanted_edge_is_inside_despite_rounding() -> None:
    a, b = (2.349, 48.851), (2.3573, 48.8597)
    shape = polygon([list(a), list(b), [2.34, 48.87], list(a)])
    for t in (0.1, 0.3, 1 / 3, 0.5, 0.77):
        lon = a[0] + t * (b[0] - a[0])
        lat = a[1] + t * (b[1] - a[1])
        assert shape.contains(lat, lon)
        assert shape.distance_m(lat, lon) == 0.0
    # Half a metre outside the middle of the same edge (the interior is on its left).
    east = (b[0] - a[0]) * M_PER_DEG * math.cos(math.radians(a[1]))
    north = (b[1] - a[1]) * M_PER_DEG
    length = math.hypot(east, north)
    mid_lat, mid_lon = (a[1] + b[1]) / 2, (a[0] + b[0]) / 2
    lat, lon = offset(mid_lat, mid_lon, 0.5 * north / length, -0.5 * east / length)
    assert not shape.contains(lat, lon)
    assert shape.distance_m(lat, lon) == pytest.approx(0.5, abs=0.005)
    lat, lon = offset(mid_lat, mid_lon, -0.5 * north / length, 0.5 * east / length)
    assert shape.contains(lat, lon)


def test_polygon_orientation_does_not_matter() -> None:
    clockwise = polygon(SQUARE[::-1], HOLE[::-1])
    counter = polygon(SQUARE, HOLE)
    for lat, lon in [(2.0, 2.0), (5.0, 5.0), (11.0, 5.0), (4.0, 5.0), (0.0, 3.0)]:
        assert clockwise.contains(lat, lon) == counter.contains(lat, lon)


def test_polygon_distances_in_metres() -> None:
    lat0, lon0 = 45.0, 7.0
    corners = [offset(lat0, lon0, e, n) for e, n in [(0, 0), (1000, 0), (1000, 1000), (0, 1000)]]
    hole = [offset(lat0, lon0, e, n) for e, n in [(400, 400), (600, 400), (600, 600), (400, 600)]]
    shape = polygon(
        [[lon, lat] for lat, lon in [*corners, corners[0]]],
        [[lon, lat] for lat, lon in [*hole, hole[0]]],
    )
    assert shape.distance_m(*offset(lat0, lon0, 500, 200)) == 0.0
    east = offset(lat0, lon0, 2000, 500)
    assert shape.distance_m(*east) == pytest.approx(1000, rel=0.005)
    south_west = offset(lat0, lon0, -300, -400)
    assert shape.distance_m(*south_west) == pytest.approx(500, rel=0.005)
    in_hole = offset(lat0, lon0, 500, 520)
    assert shape.distance_m(*in_hole) == pytest.approx(80, rel=0.005)
    far = offset(lat0, lon0, 500, -100_000)
    assert shape.distance_m(*far) == pytest.approx(100_000, rel=0.005)


def test_polygon_bbox_is_the_exterior_extent() -> None:
    min_lon, min_lat, max_lon, max_lat = polygon(SQUARE, HOLE).bbox
    assert (min_lon, min_lat) == pytest.approx((0.0, 0.0), abs=1e-8)
    assert (max_lon, max_lat) == pytest.approx((10.0, 10.0), abs=1e-8)
    assert min_lon <= 0.0 and max_lat >= 10.0  # boundary points are covered


def test_large_polygon_validates_and_answers_quickly() -> None:
    n = 5000
    ring = [
        [2.35 + 0.1 * math.cos(2 * math.pi * k / n), 48.85 + 0.07 * math.sin(2 * math.pi * k / n)]
        for k in range(n)
    ]
    started = time.perf_counter()
    shape = polygon([*ring, ring[0]])
    built = time.perf_counter() - started
    started = time.perf_counter()
    for k in range(1000):
        assert shape.contains(48.85 + 0.069 * math.sin(k), 2.35 + 0.099 * math.cos(k))
    queried = time.perf_counter() - started
    assert built < 5.0, built
    assert queried < 1.0, queried
    assert not shape.contains(48.85 + 0.0701, 2.35)


# --------------------------------------------------------------------------- circles


def test_circle_contains_and_rim() -> None:
    circle = Circle(48.85, 2.35, 500.0)
    assert circle.contains(48.85, 2.35)
    rim = 500.0 / M_PER_DEG
    assert circle.contains(48.85 + rim * (1 - 1e-9), 2.35)
    assert circle.contains(48.85 - rim * (1 - 1e-9), 2.35)
    assert not circle.contains(48.85 + rim * (1 + 1e-6), 2.35)


def test_circle_at_high_latitude_uses_metres_not_degrees() -> None:
    # Longyearbyen: a degree of longitude is about 23 km, a degree of latitude 111 km.
    circle = Circle(78.22, 15.65, 1000.0)
    inside_east = offset(78.22, 15.65, 990, 0)
    outside_east = offset(78.22, 15.65, 1010, 0)
    assert inside_east[1] - 15.65 > 1000 / M_PER_DEG * 4  # far in degrees, near in metres
    assert circle.contains(*inside_east)
    assert not circle.contains(*outside_east)
    assert circle.contains(*offset(78.22, 15.65, 0, -995))
    assert not circle.contains(*offset(78.22, 15.65, 0, -1005))
    min_lon, _, max_lon, max_lat = circle.bbox
    assert max_lon - 15.65 == pytest.approx(
        1000 / (M_PER_DEG * math.cos(math.radians(78.22))), rel=1e-4
    )
    assert max_lat - 78.22 == pytest.approx(1000 / M_PER_DEG, rel=1e-6)
    assert min_lon < inside_east[1] < max_lon


def test_distance_one_km_east_of_a_circle_edge() -> None:
    circle = Circle(52.52, 13.405, 300.0)
    lat, lon = offset(52.52, 13.405, 1300, 0)
    assert circle.distance_m(lat, lon) == pytest.approx(1000.0, rel=0.01)
    assert circle.distance_m(52.52, 13.405) == 0.0
    assert circle.distance_m(*offset(52.52, 13.405, 299, 0)) == 0.0


# --------------------------------------------------------------------------- corridors


def corridor_east(lat: float, lon: float, length_m: float, width_m: float) -> Corridor:
    end = offset(lat, lon, length_m, 0)
    shape = parse_shape(
        {"type": "LineString", "coordinates": [[lon, lat], [end[1], end[0]]]}, {"width_m": width_m}
    )
    assert isinstance(shape, Corridor)
    return shape


def test_corridor_sides_and_round_end_caps() -> None:
    lat, lon = 40.0, -3.7
    shape = corridor_east(lat, lon, 1000, 100)  # half width 50 m
    assert shape.contains(*offset(lat, lon, 500, 49.5))
    assert shape.contains(*offset(lat, lon, 500, -49.5))
    assert not shape.contains(*offset(lat, lon, 500, 50.5))
    # Beyond the east end, along the line.
    assert shape.contains(*offset(lat, lon, 1049.5, 0))
    assert not shape.contains(*offset(lat, lon, 1050.5, 0))
    # The caps are round: 45° off the end at 0.9 and 1.1 half widths.
    diagonal = 50 * 0.9 / math.sqrt(2)
    assert shape.contains(*offset(lat, lon, -diagonal, diagonal))
    assert shape.contains(*offset(lat, lon, 1000 + diagonal, -diagonal))
    diagonal = 50 * 1.01 / math.sqrt(2)
    assert not shape.contains(*offset(lat, lon, -diagonal, diagonal))
    assert not shape.contains(*offset(lat, lon, 1000 + diagonal, diagonal))
    diagonal = 50 * 1.1 / math.sqrt(2)
    corner = offset(lat, lon, -diagonal, diagonal)
    assert not shape.contains(*corner)
    min_lon, min_lat, max_lon, max_lat = shape.bbox
    assert min_lon <= corner[1] <= max_lon and min_lat <= corner[0] <= max_lat


def test_diagonal_corridor_width_is_metric() -> None:
    lat, lon = 60.0, 25.0  # a degree of longitude is half a degree of latitude here
    end = offset(lat, lon, 2000, 2000)
    shape = parse_shape(
        {"type": "LineString", "coordinates": [[lon, lat], [end[1], end[0]]]}, {"width_m": 200}
    )
    across = 100 / math.sqrt(2)  # perpendicular to the line, north-west and south-east
    for k in (0.99, -0.99):
        assert shape.contains(*offset(lat, lon, 1000 - k * across, 1000 + k * across))
    for k in (1.01, -1.01):
        assert not shape.contains(*offset(lat, lon, 1000 - k * across, 1000 + k * across))


def test_corridor_distance_is_to_its_edge() -> None:
    lat, lon = 40.0, -3.7
    shape = corridor_east(lat, lon, 1000, 100)
    assert shape.distance_m(*offset(lat, lon, 500, 20)) == 0.0
    assert shape.distance_m(*offset(lat, lon, 500, 1050)) == pytest.approx(1000, rel=0.005)
    assert shape.distance_m(*offset(lat, lon, 2050, 0)) == pytest.approx(1000, rel=0.005)
    assert shape.distance_m(*offset(lat, lon, -600, -800)) == pytest.approx(950, rel=0.005)


def test_corridor_with_bends_and_repeated_points() -> None:
    line = [[13.0, 52.0], [13.01, 52.0], [13.01, 52.0], [13.01, 52.01], [13.02, 52.01]]
    shape = parse_shape({"type": "LineString", "coordinates": line}, {"width_m": 40})
    assert isinstance(shape, Corridor)
    assert shape.contains(52.005, 13.01)
    assert shape.contains(*offset(52.005, 13.01, 19, 0))
    assert not shape.contains(*offset(52.005, 13.01, 21, 0))
    assert not shape.contains(52.005, 13.005)


def test_long_corridor_answers_from_its_bands() -> None:
    line = [[10.0 + k * 0.001, 50.0 + 0.0005 * math.sin(k / 5)] for k in range(2000)]
    shape = parse_shape({"type": "LineString", "coordinates": line}, {"width_m": 30})
    for k in range(0, 1999, 7):
        lon = (line[k][0] + line[k + 1][0]) / 2
        lat = (line[k][1] + line[k + 1][1]) / 2
        assert shape.contains(lat, lon)
        assert not shape.contains(*offset(lat, lon, 0, 200))


# --------------------------------------------------------------------------- GeoJSON and centres


@pytest.mark.parametrize(
    ("geometry", "properties"),
    [
        ({"type": "Point", "coordinates": [2.35, 48.85]}, {"radius_m": 250.0}),
        ({"type": "Polygon", "coordinates": [SQUARE, HOLE]}, {}),
        ({"type": "Polygon", "coordinates": [SQUARE[::-1]]}, {}),
        (
            {"type": "LineString", "coordinates": [[1.5, 2.5], [1.6, 2.5], [1.6, 2.4]]},
            {"width_m": 12.5},
        ),
    ],
)
def test_geojson_round_trips_exactly(geometry: dict[str, Any], properties: dict[str, Any]) -> None:
    shape = parse_shape(geometry, {**properties, "name": "ignored"})
    assert to_geojson(shape) == (geometry, properties)
    assert parse_shape(*to_geojson(shape)) == shape


def test_to_geojson_refuses_other_objects() -> None:
    with pytest.raises(TypeError):
        to_geojson("circle")  # type: ignore[arg-type]


def test_shape_centres() -> None:
    assert shape_center(Circle(1.0, 2.0, 3.0)) == (1.0, 2.0)
    assert shape_center(polygon(SQUARE, HOLE)) == pytest.approx((5.0, 5.0))
    # An L: the 2x2 square minus its north-east quarter.
    ell = polygon([[0, 0], [2, 0], [2, 1], [1, 1], [1, 2], [0, 2], [0, 0]])
    assert shape_center(ell) == pytest.approx((5 / 6, 5 / 6))
    # A hole off centre pulls the centroid away from it.
    off_hole = polygon(SQUARE, [[6, 6], [8, 6], [8, 8], [6, 8], [6, 6]])
    lat, lon = shape_center(off_hole)
    assert lat == pytest.approx(lon) and lat < 5.0
    line = parse_shape(
        {"type": "LineString", "coordinates": [[0, 0], [0.01, 0], [0.01, 0.03]]}, {"width_m": 5}
    )
    assert shape_center(line) == pytest.approx((0.01, 0.01), abs=1e-6)


# --------------------------------------------------------------------------- properties

CENTRES = st.tuples(
    st.floats(min_value=-75, max_value=75), st.floats(min_value=-170, max_value=170)
)


def star_ring(lat: float, lon: float, angles: list[float], radii: list[float]) -> list[list[float]]:
    points = []
    for angle, radius in zip(angles, radii, strict=True):
        p_lat, p_lon = offset(lat, lon, radius * math.cos(angle), radius * math.sin(angle))
        points.append([p_lon, p_lat])
    return [*points, points[0]]


@st.composite
def star_angles(draw: st.DrawFn, n: int) -> list[float]:
    """Strictly increasing angles with every gap below 180°: the star is simple."""
    jitter = draw(st.lists(st.floats(0.0, 0.9), min_size=n, max_size=n))
    return [2 * math.pi * (k + u / 2) / n for k, u in enumerate(jitter)]


def min_edge_distance(ring: list[list[float]], lat: float, lon: float) -> float:
    """Metres from (lat, lon) to the nearest edge, computed plainly in a flat frame."""
    k = math.cos(math.radians(lat))
    best = math.inf
    for (x1, y1), (x2, y2) in pairwise(ring):
        ax, ay = (x1 - lon) * k * M_PER_DEG, (y1 - lat) * M_PER_DEG
        bx, by = (x2 - lon) * k * M_PER_DEG, (y2 - lat) * M_PER_DEG
        dx, dy = bx - ax, by - ay
        t = max(0.0, min(1.0, -(ax * dx + ay * dy) / (dx * dx + dy * dy)))
        best = min(best, math.hypot(ax + t * dx, ay + t * dy))
    return best


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[Polygon, float, float, float]:
    """A random star-shaped polygon, maybe with a star-shaped hole around its centre;
    returns it with its centre and its largest radius in metres."""
    lat, lon = draw(CENTRES)
    n = draw(st.integers(3, 14))
    r_max = draw(st.floats(20.0, 3000.0))
    radii = draw(st.lists(st.floats(0.2 * r_max, r_max), min_size=n, max_size=n))
    exterior = star_ring(lat, lon, draw(star_angles(n)), radii)
    rings = [exterior]
    if draw(st.booleans()):
        clearance = min_edge_distance(exterior, lat, lon)
        m = draw(st.integers(3, 8))
        hole_radii = draw(
            st.lists(st.floats(0.2 * clearance, 0.6 * clearance), min_size=m, max_size=m)
        )
        rings.append(star_ring(lat, lon, draw(star_angles(m)), hole_radii))
    return polygon(*rings), lat, lon, r_max


@st.composite
def corridors(draw: st.DrawFn) -> tuple[Corridor, float, float, float]:
    lat, lon = draw(CENTRES)
    steps = draw(
        st.lists(
            st.tuples(st.floats(1.0, 1500.0), st.floats(0.0, 2 * math.pi)), min_size=1, max_size=5
        )
    )
    points = [(lat, lon)]
    for length, heading in steps:
        points.append(offset(*points[-1], length * math.sin(heading), length * math.cos(heading)))
    width = draw(st.floats(2.0, 600.0))
    line = [[p_lon, p_lat] for p_lat, p_lon in points]
    shape = parse_shape({"type": "LineString", "coordinates": line}, {"width_m": width})
    assert isinstance(shape, Corridor)
    return shape, lat, lon, 1500.0 * len(steps) + width


@st.composite
def circles(draw: st.DrawFn) -> tuple[Circle, float, float, float]:
    lat, lon = draw(
        st.tuples(st.floats(min_value=-85, max_value=85), st.floats(min_value=-170, max_value=170))
    )
    radius = draw(st.floats(1.0, 5000.0))
    return Circle(lat, lon, radius), lat, lon, radius


SHAPES = st.one_of(star_polygons(), corridors(), circles())
OFFSETS = st.tuples(st.floats(-1.5, 1.5), st.floats(-1.5, 1.5))


def ray_north(rings: tuple[tuple[tuple[float, float], ...], ...], lat: float, lon: float) -> bool:
    """Even-odd rule with a ray cast north (the implementation casts east)."""
    crossings = 0
    for ring in rings:
        for (x1, y1), (x2, y2) in pairwise(ring):
            if min(x1, x2) <= lon < max(x1, x2):
                y = y1 + (lon - x1) * (y2 - y1) / (x2 - x1)
                if y > lat:
                    crossings += 1
    return crossings % 2 == 1


@PROPERTY
@given(star_polygons(), st.lists(OFFSETS, min_size=1, max_size=20))
def test_polygon_contains_matches_ray_casting(
    drawn: tuple[Polygon, float, float, float], offsets: list[tuple[float, float]]
) -> None:
    shape, lat0, lon0, r_max = drawn
    rings = (shape.exterior, *shape.holes)
    for fx, fy in offsets:
        lat, lon = offset(lat0, lon0, fx * r_max, fy * r_max)
        margin = min(min_edge_distance([list(p) for p in ring], lat, lon) for ring in rings)
        if margin > 0.01:  # away from the boundary
            assert shape.contains(lat, lon) == ray_north(rings, lat, lon)
            if not shape.contains(lat, lon):
                assert shape.distance_m(lat, lon) == pytest.approx(margin, rel=0.01, abs=0.01)


def _vec(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return (math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi))


def _cross(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _angle(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.atan2(math.sqrt(_dot(_cross(a, b), _cross(a, b))), _dot(a, b))


def arc_distance_m(lat: float, lon: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    """Metres from a point to the great-circle arc a-b ((lon, lat) ends), by vectors."""
    p, va, vb = _vec(lat, lon), _vec(a[1], a[0]), _vec(b[1], b[0])
    normal = _cross(va, vb)
    size = math.sqrt(_dot(normal, normal))
    ends = min(_angle(p, va), _angle(p, vb))
    if size == 0.0:
        return ends * EARTH_RADIUS_M
    normal = tuple(x / size for x in normal)
    foot = tuple(x - y * _dot(p, normal) for x, y in zip(p, normal, strict=True))
    on_arc = _dot(_cross(va, foot), normal) >= 0 and _dot(_cross(foot, vb), normal) >= 0
    return (min(ends, _angle(p, foot)) if on_arc else ends) * EARTH_RADIUS_M


@PROPERTY
@given(corridors(), st.lists(OFFSETS, min_size=1, max_size=20))
def test_corridor_contains_matches_great_circle_reference(
    drawn: tuple[Corridor, float, float, float], offsets: list[tuple[float, float]]
) -> None:
    shape, lat0, lon0, extent = drawn
    half = shape.width_m / 2
    for fx, fy in offsets:
        lat, lon = offset(lat0, lon0, fx * extent, fy * extent)
        reference = min(arc_distance_m(lat, lon, a, b) for a, b in pairwise(shape.line))
        if abs(reference - half) > 0.005 * half + 0.5:
            assert shape.contains(lat, lon) == (reference <= half)
        if reference > half * 1.01 + 1:
            assert shape.distance_m(lat, lon) == pytest.approx(reference - half, rel=0.01, abs=1)


@PROPERTY
@given(circles(), st.lists(OFFSETS, min_size=1, max_size=20))
def test_circle_contains_matches_law_of_cosines(
    drawn: tuple[Circle, float, float, float], offsets: list[tuple[float, float]]
) -> None:
    shape, lat0, lon0, radius = drawn
    for fx, fy in offsets:
        lat, lon = offset(lat0, lon0, fx * radius, fy * radius)
        reference = _angle(_vec(lat0, lon0), _vec(lat, lon)) * EARTH_RADIUS_M
        if abs(reference - radius) > 1e-6 * radius + 1e-6:
            assert shape.contains(lat, lon) == (reference <= radius)
        if not shape.contains(lat, lon):
            assert shape.distance_m(lat, lon) == pytest.approx(
                reference - radius, rel=1e-6, abs=1e-6
            )


@PROPERTY
@given(SHAPES, st.lists(OFFSETS, min_size=1, max_size=20))
def test_distance_is_zero_exactly_inside_and_bbox_covers_inside(
    drawn: tuple[Any, float, float, float], offsets: list[tuple[float, float]]
) -> None:
    shape, lat0, lon0, extent = drawn
    min_lon, min_lat, max_lon, max_lat = shape.bbox
    points = [offset(lat0, lon0, fx * extent, fy * extent) for fx, fy in offsets]
    if isinstance(shape, Polygon):
        points += [(lat, lon) for lon, lat in shape.exterior]  # vertices: on the boundary
    for lat, lon in points:
        inside = shape.contains(lat, lon)
        distance = shape.distance_m(lat, lon)
        assert distance >= 0.0
        assert (distance == 0.0) == inside
        if inside:
            assert min_lon <= lon <= max_lon and min_lat <= lat <= max_lat
    if isinstance(shape, Polygon):
        assert all(shape.contains(lat, lon) for lon, lat in shape.exterior)


@PROPERTY
@given(SHAPES)
def test_geojson_round_trip_property(drawn: tuple[Any, float, float, float]) -> None:
    shape = drawn[0]
    geometry, properties = to_geojson(shape)
    again = parse_shape(geometry, properties)
    assert again == shape
    assert to_geojson(again) == (geometry, properties)
    assert again.bbox == shape.bbox
