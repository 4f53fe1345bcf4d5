"""The geofence index answers exactly what testing every shape would answer, fast."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.geo import M_PER_DEG, Circle, Corridor, Polygon, Shape, parse_shape
from hub.geofence_index import MAX_CELLS_PER_SHAPE, GeofenceIndex

PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def offset(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    return (
        lat + north_m / M_PER_DEG,
        lon + east_m / (M_PER_DEG * math.cos(math.radians(lat))),
    )


def star(lat: float, lon: float, radii: list[float], phase: float = 0.0) -> Polygon:
    """A star-shaped polygon with evenly spaced vertices at the given radii (metres)."""
    ring = []
    for k, radius in enumerate(radii):
        angle = phase + 2 * math.pi * k / len(radii)
        p_lat, p_lon = offset(lat, lon, radius * math.cos(angle), radius * math.sin(angle))
        ring.append([p_lon, p_lat])
    shape = parse_shape({"type": "Polygon", "coordinates": [[*ring, ring[0]]]})
    assert isinstance(shape, Polygon)
    return shape


def line(points: list[tuple[float, float]], width_m: float) -> Corridor:
    coordinates = [[lon, lat] for lat, lon in points]
    shape = parse_shape({"type": "LineString", "coordinates": coordinates}, {"width_m": width_m})
    assert isinstance(shape, Corridor)
    return shape


def brute_force(items: list[tuple[int, Shape]], lat: float, lon: float) -> list[int]:
    return sorted(gid for gid, shape in items if shape.contains(lat, lon))


PARIS = (48.8566, 2.3522)


def test_empty_index() -> None:
    index = GeofenceIndex([])
    assert len(index) == 0
    assert index.ids == ()
    assert index.containing(*PARIS) == []
    assert index.grid_info == ()
    with pytest.raises(KeyError):
        index.nearest_distance_m(1, *PARIS)


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate geofence id 7"):
        GeofenceIndex([(7, Circle(*PARIS, 10.0)), (7, Circle(*PARIS, 20.0))])


def test_containing_returns_sorted_ids_of_every_containing_shape() -> None:
    lat, lon = PARIS
    items: list[tuple[int, Shape]] = [
        (30, Circle(lat, lon, 100.0)),
        (10, star(lat, lon, [300.0] * 6)),
        (20, line([offset(lat, lon, -500, 0), offset(lat, lon, 500, 0)], 40.0)),
        (40, Circle(*offset(lat, lon, 5000, 0), 100.0)),
        (5, star(*offset(lat, lon, 0, 800), [200.0, 300.0, 250.0, 400.0])),
    ]
    index = GeofenceIndex(iter(items))  # any iterable
    assert len(index) == 5
    assert index.ids == (5, 10, 20, 30, 40)
    assert index.containing(lat, lon) == [10, 20, 30]
    assert index.containing(*offset(lat, lon, 250, 0)) == [10, 20]
    assert index.containing(*offset(lat, lon, 450, 0)) == [20]
    assert index.containing(*offset(lat, lon, 0, 150)) == [10]
    assert index.containing(*offset(lat, lon, 5000, 50)) == [40]
    assert index.containing(*offset(lat, lon, 0, 800)) == [5]
    assert index.containing(*offset(lat, lon, 2000, 2000)) == []
    assert index.shape(30) == items[0][1]


def test_boundary_points_are_found() -> None:
    square = parse_shape(
        {
            "type": "Polygon",
            "coordinates": [[[2.0, 48.0], [2.5, 48.0], [2.5, 48.5], [2.0, 48.5], [2.0, 48.0]]],
        }
    )
    small = Circle(48.25, 2.25, 10.0)
    index = GeofenceIndex([(1, square), (2, small)])
    for lon, lat in [(2.0, 48.0), (2.5, 48.5), (2.0, 48.25), (2.25, 48.5)]:
        assert index.containing(lat, lon) == [1]
    assert index.containing(48.25, 2.25) == [1, 2]
    assert index.containing(48.5 + 1e-7, 2.25) == []


def test_nearest_distance_delegates_to_the_shape() -> None:
    lat, lon = PARIS
    circle = Circle(lat, lon, 200.0)
    index = GeofenceIndex([(3, circle)])
    east = offset(lat, lon, 1200, 0)
    assert index.nearest_distance_m(3, *east) == circle.distance_m(*east)
    assert index.nearest_distance_m(3, *east) == pytest.approx(1000, rel=0.01)
    assert index.nearest_distance_m(3, lat, lon) == 0.0
    with pytest.raises(KeyError, match="geofence 4 is not in the index"):
        index.nearest_distance_m(4, lat, lon)


def test_queries_outside_the_world_or_not_finite() -> None:
    index = GeofenceIndex([(1, Circle(*PARIS, 100.0))])
    assert index.containing(95.0, 200.0) == []
    for lat, lon in [(math.nan, 2.0), (48.0, math.inf), (-math.inf, 0.0)]:
        with pytest.raises(ValueError, match="not finite"):
            index.containing(lat, lon)


def test_big_shapes_go_to_coarse_levels_and_memory_stays_bounded() -> None:
    rng = random.Random(5)
    lat, lon = PARIS
    items: list[tuple[int, Shape]] = []
    for gid in range(500):
        centre = offset(lat, lon, rng.uniform(-20000, 20000), rng.uniform(-20000, 20000))
        items.append((gid, Circle(*centre, rng.uniform(20, 80))))
    # A country, a continent, nearly a hemisphere, and a long thin corridor.
    items.append((1000, star(lat, lon, [400_000.0] * 8)))
    items.append((1001, star(45.0, 10.0, [2_000_000.0] * 12, phase=0.1)))
    world = [[-89.0, -80.0], [89.0, -80.0], [89.0, 80.0], [-89.0, 80.0], [-89.0, -80.0]]
    items.append((1002, parse_shape({"type": "Polygon", "coordinates": [world]})))
    items.append((1003, line([(lat, -5.0), (lat, 20.0)], 50.0)))
    index = GeofenceIndex(items)
    info = index.grid_info
    assert len(info) >= 3
    assert sum(level["entries"] for level in info) <= MAX_CELLS_PER_SHAPE * len(items)
    assert info[0]["cell_lat_deg"] < 0.01  # sized from the small circles
    for gid, shape in items[:50]:
        assert isinstance(shape, Circle)
        found = index.containing(shape.lat, shape.lon)
        assert found == brute_force(items, shape.lat, shape.lon)
        assert {gid, 1000, 1001, 1002} <= set(found)
    for _ in range(2000):
        p_lat, p_lon = offset(lat, lon, rng.uniform(-30000, 30000), rng.uniform(-30000, 30000))
        assert index.containing(p_lat, p_lon) == brute_force(items, p_lat, p_lon)
    assert index.containing(lat, 10.0) == [1001, 1002, 1003]
    assert index.containing(-60.0, -60.0) == [1002]


def test_ten_thousand_shapes_answer_like_brute_force() -> None:
    """A large index stays exact (its build time is measured in bench/, not here)."""
    rng = random.Random(9)
    lat, lon = PARIS
    items: list[tuple[int, Shape]] = []
    for gid in range(10_000):
        centre = offset(lat, lon, rng.uniform(-25000, 25000), rng.uniform(-25000, 25000))
        if gid % 2:
            items.append((gid, Circle(*centre, rng.uniform(30, 500))))
        else:
            radii = [rng.uniform(50, 400) for _ in range(rng.randint(3, 12))]
            items.append((gid, star(*centre, radii)))
    index = GeofenceIndex(items)
    assert len(index) == 10_000
    for _ in range(40):
        p_lat, p_lon = offset(lat, lon, rng.uniform(-26000, 26000), rng.uniform(-26000, 26000))
        assert index.containing(p_lat, p_lon) == brute_force(items, p_lat, p_lon)


# --------------------------------------------------------------------------- properties

REGIONS = st.tuples(st.floats(-70.0, 70.0), st.floats(-170.0, 170.0))
SIZES = st.floats(math.log(5.0), math.log(50_000.0)).map(math.exp)  # 5 m to 50 km, log-uniform
SPOTS = st.tuples(st.floats(-6000.0, 6000.0), st.floats(-6000.0, 6000.0))


@st.composite
def shapes_near(draw: st.DrawFn, lat: float, lon: float) -> Shape:
    centre = offset(lat, lon, *draw(SPOTS))
    size = draw(SIZES)
    kind = draw(st.sampled_from(["circle", "polygon", "corridor"]))
    if kind == "circle":
        return Circle(*centre, size)
    if kind == "polygon":
        n = draw(st.integers(3, 10))
        radii = draw(st.lists(st.floats(0.3 * size, size), min_size=n, max_size=n))
        return star(*centre, radii, phase=draw(st.floats(0.0, math.pi)))
    points = [centre]
    for heading in draw(st.lists(st.floats(0.0, 2 * math.pi), min_size=1, max_size=4)):
        points.append(offset(*points[-1], size * math.sin(heading), size * math.cos(heading)))
    return line(points, draw(st.floats(1.0, max(2.0, size / 2))))


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[tuple[int, Shape]], list[tuple[float, float]]]:
    """Shapes of mixed kinds and scales around a region, and points to ask about:
    random ones, shape vertices and centres (on boundaries and cell edges)."""
    lat, lon = draw(REGIONS)
    shapes = draw(st.lists(shapes_near(lat, lon), min_size=1, max_size=25))
    ids = draw(
        st.lists(st.integers(0, 10**6), min_size=len(shapes), max_size=len(shapes), unique=True)
    )
    items = list(zip(ids, shapes, strict=True))
    points = [offset(lat, lon, *spot) for spot in draw(st.lists(SPOTS, max_size=30))]
    for shape in shapes:
        if isinstance(shape, Circle):
            points.append((shape.lat, shape.lon))
        elif isinstance(shape, Polygon):
            points.extend((p_lat, p_lon) for p_lon, p_lat in shape.exterior)
        else:
            points.extend((p_lat, p_lon) for p_lon, p_lat in shape.line)
        min_lon, min_lat, max_lon, max_lat = shape.bbox
        points.extend([(min_lat, min_lon), (max_lat, max_lon)])
    return items, points


@PROPERTY
@given(scenes())
def test_index_matches_brute_force(
    scene: tuple[list[tuple[int, Shape]], list[tuple[float, float]]],
) -> None:
    items, points = scene
    index = GeofenceIndex(items)
    assert index.ids == tuple(sorted(gid for gid, _ in items))
    assert sum(level["entries"] for level in index.grid_info) <= MAX_CELLS_PER_SHAPE * len(items)
    for lat, lon in points:
        assert index.containing(lat, lon) == brute_force(items, lat, lon)
    for gid, shape in items:
        lat, lon = points[gid % len(points)]
        assert index.nearest_distance_m(gid, lat, lon) == shape.distance_m(lat, lon)
