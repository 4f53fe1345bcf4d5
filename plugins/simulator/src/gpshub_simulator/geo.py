"""Great-circle geometry on a spherical Earth, in degrees and metres.

Distances use the haversine formula and positions along a leg use spherical linear
interpolation, both on a sphere of the mean Earth radius.  Good to a few metres per
kilometre, which is plenty for a simulator.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
"""Mean Earth radius (IUGG), in metres."""

# Below this sine of the central angle two distinct points are treated as antipodal.
_ANTIPODAL_SIN = 1e-12


def central_angle(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The angle between two points seen from the Earth's centre, in radians (haversine)."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlam = math.radians(lon2 - lon1) / 2
    h = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlam) ** 2
    h = min(max(h, 0.0), 1.0)
    return 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h))


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance between two points, in metres."""
    return EARTH_RADIUS_M * central_angle(lat1, lon1, lat2, lon2)


def initial_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The course to steer at the first point to follow the great circle to the second.

    In degrees clockwise from true north, within [0, 360).  The bearing between identical
    points is 0.
    """
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dlam = math.radians(lon2 - lon1)
    y = math.sin(dlam) * math.cos(phi2)
    x = math.cos(phi1) * math.sin(phi2) - math.sin(phi1) * math.cos(phi2) * math.cos(dlam)
    return normalize_bearing(math.degrees(math.atan2(y, x)))


def final_bearing(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The course on arrival at the second point along the great circle from the first."""
    return normalize_bearing(initial_bearing(lat2, lon2, lat1, lon1) + 180.0)


def normalize_bearing(degrees: float) -> float:
    """``degrees`` brought into [0, 360)."""
    result = degrees % 360.0
    # A tiny negative input rounds up to exactly 360.0.
    return 0.0 if result >= 360.0 else result


def interpolate(
    lat1: float, lon1: float, lat2: float, lon2: float, fraction: float
) -> tuple[float, float]:
    """The point ``fraction`` (0 to 1) of the way along the great circle between two points.

    Antipodal points are joined by infinitely many great circles; we then follow the one
    leaving the first point on its (arbitrary but stable) initial bearing.
    """
    angle = central_angle(lat1, lon1, lat2, lon2)
    if angle == 0.0:
        return lat1, lon1
    sin_angle = math.sin(angle)
    if sin_angle < _ANTIPODAL_SIN:
        bearing = initial_bearing(lat1, lon1, lat2, lon2)
        return destination(lat1, lon1, bearing, fraction * angle)
    a = math.sin((1 - fraction) * angle) / sin_angle
    b = math.sin(fraction * angle) / sin_angle
    phi1, lam1 = math.radians(lat1), math.radians(lon1)
    phi2, lam2 = math.radians(lat2), math.radians(lon2)
    x = a * math.cos(phi1) * math.cos(lam1) + b * math.cos(phi2) * math.cos(lam2)
    y = a * math.cos(phi1) * math.sin(lam1) + b * math.cos(phi2) * math.sin(lam2)
    z = a * math.sin(phi1) + b * math.sin(phi2)
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def destination(lat: float, lon: float, bearing: float, angle: float) -> tuple[float, float]:
    """The point reached from ``(lat, lon)`` going ``angle`` radians on ``bearing`` degrees."""
    phi1, lam1 = math.radians(lat), math.radians(lon)
    theta = math.radians(bearing)
    sin_phi2 = math.sin(phi1) * math.cos(angle) + math.cos(phi1) * math.sin(angle) * math.cos(theta)
    phi2 = math.asin(min(max(sin_phi2, -1.0), 1.0))
    lam2 = lam1 + math.atan2(
        math.sin(theta) * math.sin(angle) * math.cos(phi1),
        math.cos(angle) - math.sin(phi1) * sin_phi2,
    )
    lon2 = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), lon2
