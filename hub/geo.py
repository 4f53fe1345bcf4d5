"""Geofence shapes on WGS84 coordinates: circles, polygons and corridors.

A geofence is stored as GeoJSON (a geometry plus the properties it needs) and parsed into
one of three immutable shapes, each able to say whether it contains a position and how
far a position is from it:

* ``Circle(lat, lon, radius_m)`` -- GeoJSON ``Point`` plus ``properties.radius_m``.
  A position is inside when its great-circle (haversine) distance to the centre is at
  most the radius.
* ``Polygon(exterior, holes)`` -- GeoJSON ``Polygon``; rings are sequences of
  ``(lon, lat)`` positions, closed (last == first), simple (not self-intersecting),
  in either orientation; holes lie strictly inside the exterior and apart from each
  other.  Edges are straight lines in (lon, lat), which is also what a local
  equirectangular projection makes of them.
* ``Corridor(line, width_m)`` -- GeoJSON ``LineString`` plus ``properties.width_m``.
  A position is inside when it is within ``width_m / 2`` of the line (round caps at
  the ends).  The nearest point of each segment is found in a local equirectangular
  projection around the segment, the distance to it is great-circle.

Conventions:

* Positions are ``(lon, lat)`` tuples inside shapes and GeoJSON, as in GeoJSON; the
  methods take ``(lat, lon)`` arguments, as positions are reported.
* Points on a boundary count as inside, with a tolerance of ``BOUNDARY_TOLERANCE_DEG``
  (about 0.1 mm) so that a point computed to lie on an edge is not lost to rounding.
* ``distance_m`` is 0 exactly when ``contains`` is true; otherwise it is the distance
  to the boundary (polygon edges and hole edges, the circle's rim, the corridor's edge,
  i.e. the distance to the line minus ``width_m / 2``).  It is the great-circle
  distance to the nearest boundary point found in a local projection: accurate to well
  under 0.5 % at city scale, and it stays sensible for far points.
* Shapes crossing the antimeridian (longitudes spanning more than 180°, or a circle or
  corridor reaching past ±180°) or containing a pole are refused with a
  ``GeometryError``: split such a geofence in two.
* Errors name the offending field with its GeoJSON path (``geometry.coordinates.0.3``,
  ``properties.radius_m``), also when a shape is constructed directly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from numbers import Real
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

EARTH_RADIUS_M = 6371008.8
"""Mean Earth radius (IUGG), used by every metric computation here."""

BOUNDARY_TOLERANCE_DEG = 1e-9
"""Points this close (in degrees) to a polygon edge count as on it, hence inside.

Precisely: within this distance of the edge's line and of its bounding box, so up to
about 1.4 times as far beyond a vertex."""

M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0
"""Metres per degree of latitude (and of longitude at the equator)."""

LonLat: TypeAlias = tuple[float, float]
Ring: TypeAlias = tuple[LonLat, ...]
BBox: TypeAlias = tuple[float, float, float, float]
"""``(min_lon, min_lat, max_lon, max_lat)``."""

_EPS = BOUNDARY_TOLERANCE_DEG
_BAND_MIN_ITEMS = 16  # below this many edges a shape scans them all


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two positions given in degrees."""
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    s_lat = math.sin((p2 - p1) / 2.0)
    s_lon = math.sin(math.radians(lon2 - lon1) / 2.0)
    h = s_lat * s_lat + math.cos(p1) * math.cos(p2) * s_lon * s_lon
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


class GeometryError(ValueError):
    """A geofence geometry is unusable: ``field`` names it (a dotted GeoJSON path),
    ``reason`` says why.  ``str()`` is ``"field: reason"``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --------------------------------------------------------------------------- helpers


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(value: object, field: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise GeometryError(field, f"{what} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise GeometryError(field, f"{what} must be a finite number, got {_short(value)}")
    return number


def _positive(value: object, field: str, what: str) -> float:
    number = _finite(value, field, what)
    if number <= 0.0:
        raise GeometryError(field, f"{what} must be greater than 0, got {number!r}")
    return number


def _position(value: object, field: str) -> LonLat:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise GeometryError(field, f"must be a [longitude, latitude] pair, got {_short(value)}")
    lon = _finite(value[0], field, "longitude")
    lat = _finite(value[1], field, "latitude")
    if not -180.0 <= lon <= 180.0:
        raise GeometryError(field, f"longitude {lon!r} is outside [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise GeometryError(field, f"latitude {lat!r} is outside [-90, 90]")
    return (lon, lat)


def _positions(value: object, field: str) -> Ring:
    if not isinstance(value, list | tuple):
        raise GeometryError(field, f"must be a list of positions, got {_short(value)}")
    return tuple(_position(p, f"{field}.{i}") for i, p in enumerate(value))


def _check_lon_span(min_lon: float, max_lon: float, field: str) -> None:
    if max_lon - min_lon > 180.0:
        raise GeometryError(
            field,
            f"longitudes span {max_lon - min_lon:g}° (more than 180°): shapes crossing the "
            "antimeridian are not supported, split the shape in two",
        )


def _cap_half_spans(radius_m: float, lat: float) -> tuple[float, float] | None:
    """Half extents in degrees ``(dlon, dlat)`` of a spherical cap of ``radius_m`` centred
    at latitude ``lat``; None if the cap contains a pole."""
    angle = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angle)
    if abs(lat) + dlat >= 90.0 or angle >= math.pi / 2.0:
        return None
    dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(lat)))))
    return dlon, dlat


T = TypeVar("T")


class _Bands(Generic[T]):
    """Items bucketed by an interval along one axis, for shapes with many edges.

    ``get(v)`` returns (a superset of) the items whose interval contains ``v``: the same
    monotone expression places intervals and queries, so nothing is missed at bucket
    boundaries.
    """

    __slots__ = ("_bands", "_lo", "_n", "_scale")

    def __init__(self, items: Sequence[tuple[float, float, T]]) -> None:
        n = 1 if len(items) <= _BAND_MIN_ITEMS else int(2.0 * math.sqrt(len(items)))
        lo = min((a for a, _, _ in items), default=0.0)
        hi = max((b for _, b, _ in items), default=0.0)
        self._lo = lo
        self._n = n
        self._scale = n / (hi - lo) if hi > lo else 0.0
        buckets: list[list[T]] = [[] for _ in range(n)]
        for a, b, item in items:
            for i in range(self._index(a), self._index(b) + 1):
                buckets[i].append(item)
        self._bands = tuple(tuple(bucket) for bucket in buckets)

    def _index(self, v: float) -> int:
        i = int((v - self._lo) * self._scale)
        return 0 if i < 0 else self._n - 1 if i >= self._n else i

    def get(self, v: float) -> tuple[T, ...]:
        n = self._n
        if n == 1:
            return self._bands[0]
        try:
            i = int((v - self._lo) * self._scale)  # the expression of _index, inlined
        except (ValueError, OverflowError):  # NaN or inf: nothing can contain it
            return ()
        return self._bands[0 if i < 0 else n - 1 if i >= n else i]


# A segment in degrees plus cos(mid latitude), the x scale of its local projection.
_Seg: TypeAlias = tuple[float, float, float, float, float]


def _seg(a: LonLat, b: LonLat) -> _Seg:
    return (a[0], a[1], b[0], b[1], math.cos(math.radians((a[1] + b[1]) / 2.0)))


def _closest_on_seg(seg: _Seg, lat: float, lon: float) -> tuple[float, float, float]:
    """Nearest point of the segment to (lat, lon) in its local equirectangular
    projection: ``(squared distance in degrees of latitude, lat, lon)``."""
    x1, y1, x2, y2, cx = seg
    dx = (x2 - x1) * cx
    dy = y2 - y1
    wx = (lon - x1) * cx
    wy = lat - y1
    l2 = dx * dx + dy * dy
    t = (wx * dx + wy * dy) / l2 if l2 > 0.0 else 0.0
    t = 0.0 if t < 0.0 else 1.0 if t > 1.0 else t
    ex = wx - t * dx
    ey = wy - t * dy
    return ex * ex + ey * ey, y1 + t * (y2 - y1), x1 + t * (x2 - x1)


def _nearest_on_segs(segs: Sequence[_Seg], lat: float, lon: float) -> tuple[float, float]:
    """The (lat, lon) of the nearest point of a set of segments (projected metric)."""
    best = math.inf
    q = (lat, lon)
    for seg in segs:
        d2, qlat, qlon = _closest_on_seg(seg, lat, lon)
        if d2 < best:
            best = d2
            q = (qlat, qlon)
    return q


# --------------------------------------------------------------------------- circle


@dataclass(frozen=True, slots=True)
class Circle:
    """All positions within ``radius_m`` (great-circle) of the centre ``(lat, lon)``."""

    lat: float
    lon: float
    radius_m: float
    kind: ClassVar[str] = "circle"
    _bbox: BBox = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lon, lat = _position((self.lon, self.lat), "geometry.coordinates")
        radius = _positive(self.radius_m, "properties.radius_m", "radius")
        spans = _cap_half_spans(radius, lat)
        if spans is None:
            raise GeometryError(
                "properties.radius_m",
                f"a circle of {radius!r} m around (lat {lat!r}, lon {lon!r}) contains a pole, "
                "which is not supported",
            )
        dlon, dlat = spans
        if lon - dlon < -180.0 or lon + dlon > 180.0:
            raise GeometryError(
                "properties.radius_m",
                f"a circle of {radius!r} m around (lat {lat!r}, lon {lon!r}) crosses the antimeridian, "
                "which is not supported: split the geofence in two",
            )
        pad_lon, pad_lat = dlon + _EPS, dlat + _EPS
        object.__setattr__(self, "lat", lat)
        object.__setattr__(self, "lon", lon)
        object.__setattr__(self, "radius_m", radius)
        object.__setattr__(
            self,
            "_bbox",
            (
                max(-180.0, lon - pad_lon),
                max(-90.0, lat - pad_lat),
                min(180.0, lon + pad_lon),
                min(90.0, lat + pad_lat),
            ),
        )

    @property
    def bbox(self) -> BBox:
        """``(min_lon, min_lat, max_lon, max_lat)`` covering every contained position."""
        return self._bbox

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the position is within the radius (the rim included)."""
        return haversine_m(self.lat, self.lon, lat, lon) <= self.radius_m

    def distance_m(self, lat: float, lon: float) -> float:
        """0 inside, else the distance to the rim."""
        d = haversine_m(self.lat, self.lon, lat, lon)
        return 0.0 if d <= self.radius_m else d - self.radius_m


# --------------------------------------------------------------------------- polygon


def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


def _within(ax: float, ay: float, bx: float, by: float, px: float, py: float) -> bool:
    """Whether p (known collinear with a-b) lies within the segment's bounding box."""
    return min(ax, bx) <= px <= max(ax, bx) and min(ay, by) <= py <= max(ay, by)


def _segments_touch(s: _Seg, t: _Seg) -> bool:
    """Whether two closed segments share at least one point."""
    ax, ay, bx, by = s[:4]
    cx, cy, dx, dy = t[:4]
    o1 = _orient(ax, ay, bx, by, cx, cy)
    o2 = _orient(ax, ay, bx, by, dx, dy)
    o3 = _orient(cx, cy, dx, dy, ax, ay)
    o4 = _orient(cx, cy, dx, dy, bx, by)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return (
        (o1 == 0 and _within(ax, ay, bx, by, cx, cy))
        or (o2 == 0 and _within(ax, ay, bx, by, dx, dy))
        or (o3 == 0 and _within(cx, cy, dx, dy, ax, ay))
        or (o4 == 0 and _within(cx, cy, dx, dy, bx, by))
    )


def _adjacent_overlap(s: _Seg, t: _Seg) -> bool:
    """Two consecutive ring segments sharing one endpoint: do they fold back on
    each other (collinear, pointing the same way from the shared point)?"""
    a, b, c, d = (s[0], s[1]), (s[2], s[3]), (t[0], t[1]), (t[2], t[3])
    if b == c:
        shared, p, q = b, a, d
    elif a == d:
        shared, p, q = a, b, c
    else:  # pragma: no cover - callers only pass ring neighbours
        return _segments_touch(s, t)
    ux, uy = p[0] - shared[0], p[1] - shared[1]
    vx, vy = q[0] - shared[0], q[1] - shared[1]
    return ux * vy - uy * vx == 0 and ux * vx + uy * vy > 0


def _first_intersection(rings: Sequence[Ring]) -> tuple[int, int, int, int] | None:
    """The first pair of touching segments ``(ring, seg, ring, seg)`` found, or None.

    Segments are swept by increasing minimum longitude, so only pairs overlapping in
    longitude are tested.  Neighbouring segments of one ring share an endpoint, which
    does not count; they only intersect if they fold back onto each other.
    """
    segs: list[tuple[float, float, float, float, int, int, _Seg]] = []
    sizes = [len(ring) - 1 for ring in rings]
    for r, ring in enumerate(rings):
        for i in range(len(ring) - 1):
            (ax, ay), (bx, by) = ring[i], ring[i + 1]
            seg = (ax, ay, bx, by, 1.0)
            segs.append((min(ax, bx), max(ax, bx), min(ay, by), max(ay, by), r, i, seg))
    segs.sort(key=lambda item: item[0])
    for k, (_, s_max_x, s_min_y, s_max_y, r1, i1, s) in enumerate(segs):
        for m in range(k + 1, len(segs)):
            t_min_x, _, t_min_y, t_max_y, r2, i2, t = segs[m]
            if t_min_x > s_max_x:
                break
            if t_max_y < s_min_y or t_min_y > s_max_y:
                continue
            if r1 == r2 and (abs(i1 - i2) == 1 or abs(i1 - i2) == sizes[r1] - 1):
                hit = _adjacent_overlap(s, t)
            else:
                hit = _segments_touch(s, t)
            if hit:
                return min((r1, i1, r2, i2), (r2, i2, r1, i1))
    return None


def _ring_area2(ring: Ring) -> float:
    """Twice the signed area of a closed ring, in square degrees."""
    x0, y0 = ring[0]
    total = 0.0
    for (ax, ay), (bx, by) in pairwise(ring):
        total += (ax - x0) * (by - y0) - (bx - x0) * (ay - y0)
    return total


def _ring_contains(ring: Ring, lon: float, lat: float) -> bool:
    """Even-odd test against one ring (the point must not be on it)."""
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def _check_ring(ring: Ring, field: str) -> None:
    if len(ring) < 4:
        raise GeometryError(field, f"a ring needs at least 4 positions, got {len(ring)}")
    if ring[0] != ring[-1]:
        raise GeometryError(field, "ring is not closed: the last position must repeat the first")
    for i in range(1, len(ring)):
        if ring[i] == ring[i - 1]:
            raise GeometryError(f"{field}.{i}", "repeats the previous position")
    (ax, ay), (bx, by) = ring[0], ring[1]
    if all(_orient(ax, ay, bx, by, px, py) == 0.0 for px, py in ring[2:]):
        raise GeometryError(field, "ring has zero area (its positions are collinear)")


def _ring_name(r: int) -> str:
    return "the exterior ring" if r == 0 else f"hole {r}"


@dataclass(frozen=True, slots=True)
class Polygon:
    """A simple polygon with optional holes; rings are closed tuples of ``(lon, lat)``.

    Ring ``r`` of the GeoJSON form is ``exterior`` for ``r == 0`` and ``holes[r - 1]``
    otherwise; error fields use the GeoJSON numbering.
    """

    exterior: Ring
    holes: tuple[Ring, ...] = ()
    kind: ClassVar[str] = "polygon"
    _bbox: BBox = field(init=False, repr=False, compare=False)
    _edges: _Bands[_Edge] = field(init=False, repr=False, compare=False)
    _all_edges: tuple[_Seg, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exterior = _positions(self.exterior, "geometry.coordinates.0")
        if not isinstance(self.holes, list | tuple):
            raise GeometryError("geometry.coordinates", "holes must be a list of rings")
        holes = tuple(
            _positions(h, f"geometry.coordinates.{k}") for k, h in enumerate(self.holes, 1)
        )
        rings = (exterior, *holes)
        for r, ring in enumerate(rings):
            _check_ring(ring, f"geometry.coordinates.{r}")
        lons = [p[0] for p in exterior]
        lats = [p[1] for p in exterior]
        _check_lon_span(min(lons), max(lons), "geometry.coordinates.0")
        _check_simple(rings)
        object.__setattr__(self, "exterior", exterior)
        object.__setattr__(self, "holes", holes)
        object.__setattr__(
            self,
            "_bbox",
            (
                max(-180.0, min(lons) - _EPS),
                max(-90.0, min(lats) - _EPS),
                min(180.0, max(lons) + _EPS),
                min(90.0, max(lats) + _EPS),
            ),
        )
        edges = tuple(_seg(ring[i], ring[i + 1]) for ring in rings for i in range(len(ring) - 1))
        object.__setattr__(self, "_all_edges", edges)
        object.__setattr__(self, "_edges", _Bands([(e[0], e[1], e) for e in map(_edge, edges)]))

    @property
    def bbox(self) -> BBox:
        """``(min_lon, min_lat, max_lon, max_lat)`` of the exterior ring (padded by the
        boundary tolerance)."""
        return self._bbox

    def contains(self, lat: float, lon: float) -> bool:
        """Even-odd rule over all rings; points on (or within the tolerance of) any
        edge, hole edges included, are inside."""
        b = self._bbox
        if not (b[0] <= lon <= b[2] and b[1] <= lat <= b[3]):
            return False
        inside = False
        for min_y, max_y, edge in self._edges.get(lat):
            if min_y <= lat <= max_y:
                x1, y1, x2, y2, min_x, max_x, tolerance = edge
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
                if (
                    min_x <= lon <= max_x
                    and abs((x2 - x1) * (lat - y1) - (y2 - y1) * (lon - x1)) <= tolerance
                ):
                    return True  # on the edge
        return inside

    def distance_m(self, lat: float, lon: float) -> float:
        """0 inside, else the distance to the nearest edge (of the exterior or a hole)."""
        if self.contains(lat, lon):
            return 0.0
        qlat, qlon = _nearest_on_segs(self._all_edges, lat, lon)
        return haversine_m(lat, lon, qlat, qlon)


# An edge for containment tests: its latitude range grown by the boundary tolerance,
# then (x1, y1, x2, y2, min_x, max_x, tolerance): the longitude range grown likewise and
# the tolerance on the cross product that puts a point within it of the edge's line.
_Edge: TypeAlias = tuple[float, float, tuple[float, float, float, float, float, float, float]]


def _edge(seg: _Seg) -> _Edge:
    x1, y1, x2, y2, _ = seg
    tolerance = _EPS * math.hypot(x2 - x1, y2 - y1)
    return (
        min(y1, y2) - _EPS,
        max(y1, y2) + _EPS,
        (x1, y1, x2, y2, min(x1, x2) - _EPS, max(x1, x2) + _EPS, tolerance),
    )


def _check_simple(rings: Sequence[Ring]) -> None:
    """Refuse self-intersecting rings, rings touching each other and misplaced holes."""
    hit = _first_intersection(rings)
    if hit is not None:
        r1, i1, r2, i2 = hit
        if r1 == r2:
            raise GeometryError(
                f"geometry.coordinates.{r1}",
                f"{_ring_name(r1)} intersects itself: segment {i1} (positions {i1}-{i1 + 1}) "
                f"and segment {i2} (positions {i2}-{i2 + 1})",
            )
        raise GeometryError(
            f"geometry.coordinates.{r2}",
            f"hole {r2} touches or crosses {_ring_name(r1)}: its segment {i2} "
            f"(positions {i2}-{i2 + 1}) and segment {i1} of {_ring_name(r1)}",
        )
    exterior = rings[0]
    for k in range(1, len(rings)):
        lon, lat = rings[k][0]
        if not _ring_contains(exterior, lon, lat):
            raise GeometryError(
                f"geometry.coordinates.{k}", f"hole {k} is outside the exterior ring"
            )
        for m in range(1, len(rings)):
            if m != k and _ring_contains(rings[m], lon, lat):
                raise GeometryError(f"geometry.coordinates.{k}", f"hole {k} lies inside hole {m}")


# --------------------------------------------------------------------------- corridor

# A corridor segment: its bounding box grown by the half width, then the segment.
_CSeg: TypeAlias = tuple[float, float, float, float, _Seg]


@dataclass(frozen=True, slots=True)
class Corridor:
    """All positions within ``width_m / 2`` of a line of ``(lon, lat)`` positions."""

    line: tuple[LonLat, ...]
    width_m: float
    kind: ClassVar[str] = "corridor"
    _bbox: BBox = field(init=False, repr=False, compare=False)
    _segs: _Bands[_CSeg] = field(init=False, repr=False, compare=False)
    _all_segs: tuple[_Seg, ...] = field(init=False, repr=False, compare=False)
    _by_lat: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = _positions(self.line, "geometry.coordinates")
        if len(line) < 2:
            raise GeometryError(
                "geometry.coordinates", f"a line needs at least 2 positions, got {len(line)}"
            )
        if len(set(line)) < 2:
            raise GeometryError(
                "geometry.coordinates", "a line needs at least 2 distinct positions"
            )
        width = _positive(self.width_m, "properties.width_m", "width")
        half = width / 2.0
        lons = [p[0] for p in line]
        lats = [p[1] for p in line]
        _check_lon_span(min(lons), max(lons), "geometry.coordinates")
        spans = _cap_half_spans(half, max(abs(v) for v in lats))
        if spans is None:
            raise GeometryError(
                "properties.width_m", "the corridor reaches a pole, which is not supported"
            )
        dlon, dlat = spans[0] + _EPS, spans[1] + _EPS
        bbox = (min(lons) - dlon, min(lats) - dlat, max(lons) + dlon, max(lats) + dlat)
        if bbox[0] < -180.0 or bbox[2] > 180.0:
            raise GeometryError(
                "properties.width_m",
                "the corridor crosses the antimeridian, which is not supported: "
                "split the geofence in two",
            )
        segs: list[_CSeg] = []
        for a, b in pairwise(line):
            seg_spans = _cap_half_spans(half, max(abs(a[1]), abs(b[1])))
            assert seg_spans is not None  # the whole line passed the same test
            sx, sy = seg_spans[0] + _EPS, seg_spans[1] + _EPS
            segs.append(
                (
                    min(a[0], b[0]) - sx,
                    min(a[1], b[1]) - sy,
                    max(a[0], b[0]) + sx,
                    max(a[1], b[1]) + sy,
                    _seg(a, b),
                )
            )
        # Bucket along the axis the corridor is longer in (in metres).
        mid_cos = math.cos(math.radians((bbox[1] + bbox[3]) / 2.0))
        by_lat = bbox[3] - bbox[1] >= (bbox[2] - bbox[0]) * mid_cos
        axis = (1, 3) if by_lat else (0, 2)
        object.__setattr__(self, "line", line)
        object.__setattr__(self, "width_m", width)
        object.__setattr__(self, "_bbox", bbox)
        object.__setattr__(self, "_by_lat", by_lat)
        object.__setattr__(self, "_all_segs", tuple(s[4] for s in segs))
        object.__setattr__(self, "_segs", _Bands([(s[axis[0]], s[axis[1]], s) for s in segs]))

    @property
    def bbox(self) -> BBox:
        """``(min_lon, min_lat, max_lon, max_lat)`` of the line grown by half the width."""
        return self._bbox

    def contains(self, lat: float, lon: float) -> bool:
        """Whether the position is within half the width of the line (edge included)."""
        b = self._bbox
        if not (b[0] <= lon <= b[2] and b[1] <= lat <= b[3]):
            return False
        half = self.width_m / 2.0
        for min_x, min_y, max_x, max_y, seg in self._segs.get(lat if self._by_lat else lon):
            if min_x <= lon <= max_x and min_y <= lat <= max_y:
                _, qlat, qlon = _closest_on_seg(seg, lat, lon)
                if haversine_m(lat, lon, qlat, qlon) <= half:
                    return True
        return False

    def distance_m(self, lat: float, lon: float) -> float:
        """0 inside, else the distance to the corridor's edge (to the line minus half
        the width)."""
        if self.contains(lat, lon):
            return 0.0
        qlat, qlon = _nearest_on_segs(self._all_segs, lat, lon)
        return haversine_m(lat, lon, qlat, qlon) - self.width_m / 2.0


Shape: TypeAlias = Circle | Polygon | Corridor


# --------------------------------------------------------------------------- GeoJSON


def parse_shape(geometry: Mapping[str, Any], properties: Mapping[str, Any] | None = None) -> Shape:
    """Build a shape from a GeoJSON geometry and the geofence's properties.

    ``Point`` + ``properties.radius_m`` is a circle, ``Polygon`` a polygon, ``LineString``
    + ``properties.width_m`` a corridor; other properties and other geometry members
    (``bbox``) are ignored.  Positions must be ``[lon, lat]`` pairs (no altitude).  Raises
    ``GeometryError`` naming the field.
    """
    if not isinstance(geometry, Mapping):
        raise GeometryError("geometry", "must be a GeoJSON geometry object")
    if properties is None:
        properties = {}
    elif not isinstance(properties, Mapping):
        raise GeometryError("properties", "must be an object")
    kind = geometry.get("type")
    if kind not in ("Point", "Polygon", "LineString"):
        raise GeometryError(
            "geometry.type",
            f"unsupported geometry type {_short(kind)} (expected Point, Polygon or LineString)",
        )
    if "coordinates" not in geometry:
        raise GeometryError("geometry.coordinates", "is required")
    coords = geometry["coordinates"]
    if kind == "Point":
        lon, lat = _position(coords, "geometry.coordinates")
        return Circle(lat, lon, _required(properties, "radius_m", "a circle (Point)"))
    if kind == "Polygon":
        if not isinstance(coords, list | tuple) or not coords:
            raise GeometryError(
                "geometry.coordinates", "a polygon needs a list of rings, the exterior ring first"
            )
        return Polygon(coords[0], tuple(coords[1:]))
    return Corridor(coords, _required(properties, "width_m", "a corridor (LineString)"))


def _required(properties: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in properties:
        raise GeometryError(f"properties.{name}", f"is required for {what}")
    return properties[name]


def to_geojson(shape: Shape) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(geometry, properties)`` such that ``parse_shape(*to_geojson(s)) == s``."""
    if isinstance(shape, Circle):
        return (
            {"type": "Point", "coordinates": [shape.lon, shape.lat]},
            {"radius_m": shape.radius_m},
        )
    if isinstance(shape, Polygon):
        rings = (shape.exterior, *shape.holes)
        return (
            {"type": "Polygon", "coordinates": [[list(p) for p in ring] for ring in rings]},
            {},
        )
    if isinstance(shape, Corridor):
        return (
            {"type": "LineString", "coordinates": [list(p) for p in shape.line]},
            {"width_m": shape.width_m},
        )
    raise TypeError(f"not a shape: {shape!r}")


def shape_center(shape: Shape) -> tuple[float, float]:
    """A representative ``(lat, lon)`` for display: the circle's centre, the polygon's
    area centroid (holes subtracted; it may fall outside a concave polygon), the point
    halfway along a corridor's line."""
    if isinstance(shape, Circle):
        return (shape.lat, shape.lon)
    if isinstance(shape, Polygon):
        x0, y0 = shape.exterior[0]
        area = sx = sy = 0.0
        for r, ring in enumerate((shape.exterior, *shape.holes)):
            sign = 1.0 if (_ring_area2(ring) > 0) == (r == 0) else -1.0
            for (ax, ay), (bx, by) in pairwise(ring):
                ax, ay, bx, by = ax - x0, ay - y0, bx - x0, by - y0
                cross = (ax * by - bx * ay) * sign
                area += cross
                sx += (ax + bx) * cross
                sy += (ay + by) * cross
        return (y0 + sy / (3.0 * area), x0 + sx / (3.0 * area))
    if isinstance(shape, Corridor):
        lengths = [haversine_m(a[1], a[0], b[1], b[0]) for a, b in pairwise(shape.line)]
        remaining = sum(lengths) / 2.0
        for (a, b), length in zip(pairwise(shape.line), lengths, strict=True):
            if remaining <= length and length > 0.0:
                t = remaining / length
                return (a[1] + t * (b[1] - a[1]), a[0] + t * (b[0] - a[0]))
            remaining -= length
        return (shape.line[-1][1], shape.line[-1][0])
    raise TypeError(f"not a shape: {shape!r}")
