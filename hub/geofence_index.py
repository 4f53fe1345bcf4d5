"""Which geofences contain a position: a hierarchical uniform grid over bounding boxes.

The index is built once from a client's geofences (rebuild it when they change) and
answers ``containing(lat, lon)`` with the sorted ids of every shape containing the
position, testing exactly (``Shape.contains``) only the few shapes whose bounding box
covers it.

Grid design.  Cells are rectangles in degrees.  The base cell is the median bounding-box
span of the shapes (longitude and latitude separately), clamped to
[``MIN_CELL_DEG``, ``MAX_CELL_DEG``].  Level ``k`` has cells ``LEVEL_FACTOR ** k`` times
larger.  Each shape is registered in the finest level where its bounding box covers at
most ``MAX_CELLS_PER_SHAPE`` cells, and only there, so memory stays below
``MAX_CELLS_PER_SHAPE`` entries per shape whatever the mix of sizes (a country-sized
polygon among street-sized circles simply lands on a coarse level; at the coarsest
levels a cell spans the whole globe, so every shape fits somewhere).  A query looks up
one cell per non-empty level (usually one or two levels), checks each entry's bounding
box, then calls ``contains`` on the survivors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from statistics import median

from hub.geo import BBox, Shape

MAX_CELLS_PER_SHAPE = 16
"""A shape covering more cells than this at one level goes to a coarser level."""

LEVEL_FACTOR = 4
"""Ratio between the cell sizes of consecutive levels."""

MIN_CELL_DEG = 1e-4
"""Smallest base cell side (about 11 m of latitude)."""

MAX_CELL_DEG = 1.0
"""Largest base cell side."""

# (min_lon, min_lat, max_lon, max_lat, geofence id, shape.contains)
_Entry = tuple[float, float, float, float, int, Callable[[float, float], bool]]
# (1 / cell width, 1 / cell height, cells)
_Level = tuple[float, float, dict[tuple[int, int], tuple[_Entry, ...]]]


def _clamp(value: float) -> float:
    return min(MAX_CELL_DEG, max(MIN_CELL_DEG, value))


def _cell_range(lo: float, hi: float, inv: float) -> range:
    return range(math.floor(lo * inv), math.floor(hi * inv) + 1)


class GeofenceIndex:
    """An immutable spatial index of geofence shapes keyed by geofence id."""

    __slots__ = ("_ids", "_info", "_levels", "_shapes")

    def __init__(self, items: Iterable[tuple[int, Shape]]) -> None:
        """Index ``(geofence_id, shape)`` pairs; ids must be unique."""
        shapes: dict[int, Shape] = {}
        for geofence_id, shape in items:
            if geofence_id in shapes:
                raise ValueError(f"duplicate geofence id {geofence_id!r}")
            shapes[geofence_id] = shape
        self._shapes = shapes
        self._ids = tuple(sorted(shapes))
        boxes = {gid: shape.bbox for gid, shape in shapes.items()}
        if boxes:
            cell_w = _clamp(median(b[2] - b[0] for b in boxes.values()))
            cell_h = _clamp(median(b[3] - b[1] for b in boxes.values()))
        else:
            cell_w = cell_h = MAX_CELL_DEG
        self._levels, self._info = _build(shapes, boxes, cell_w, cell_h)

    def containing(self, lat: float, lon: float) -> list[int]:
        """Sorted ids of every geofence containing ``(lat, lon)`` (boundary included).

        Raises ValueError for a non-finite position.
        """
        found: list[int] = []
        floor = math.floor
        try:
            for inv_w, inv_h, cells in self._levels:
                entries = cells.get((floor(lon * inv_w), floor(lat * inv_h)))
                if entries is None:
                    continue
                for min_x, min_y, max_x, max_y, gid, contains in entries:
                    if min_x <= lon <= max_x and min_y <= lat <= max_y and contains(lat, lon):
                        found.append(gid)
        except (ValueError, OverflowError):
            raise ValueError(f"position ({lat!r}, {lon!r}) is not finite") from None
        if len(self._levels) > 1:
            found.sort()
        return found

    def nearest_distance_m(self, geofence_id: int, lat: float, lon: float) -> float:
        """Metres from ``(lat, lon)`` to the geofence (0 inside); KeyError if unknown."""
        return self.shape(geofence_id).distance_m(lat, lon)

    def shape(self, geofence_id: int) -> Shape:
        """The indexed shape of a geofence; KeyError if unknown."""
        try:
            return self._shapes[geofence_id]
        except KeyError:
            raise KeyError(f"geofence {geofence_id!r} is not in the index") from None

    @property
    def ids(self) -> tuple[int, ...]:
        """Every indexed geofence id, sorted."""
        return self._ids

    @property
    def grid_info(self) -> tuple[dict[str, float], ...]:
        """Per non-empty level: cell size in degrees, cell count and entry count."""
        return self._info

    def __len__(self) -> int:
        return len(self._shapes)

    def __repr__(self) -> str:
        return f"<GeofenceIndex: {len(self)} geofences on {len(self._levels)} grid levels>"


def _build(
    shapes: dict[int, Shape], boxes: dict[int, BBox], cell_w: float, cell_h: float
) -> tuple[tuple[_Level, ...], tuple[dict[str, float], ...]]:
    """Register every shape in the finest level where it covers few enough cells."""
    levels: dict[int, dict[tuple[int, int], list[_Entry]]] = {}
    for gid in sorted(shapes):  # cells list their entries by increasing id
        box = boxes[gid]
        entry: _Entry = (*box, gid, shapes[gid].contains)
        k = 0
        while True:
            scale = LEVEL_FACTOR**k
            inv_w, inv_h = 1.0 / (cell_w * scale), 1.0 / (cell_h * scale)
            xs = _cell_range(box[0], box[2], inv_w)
            ys = _cell_range(box[1], box[3], inv_h)
            if len(xs) * len(ys) <= MAX_CELLS_PER_SHAPE:
                break
            k += 1
        cells = levels.setdefault(k, {})
        for ix in xs:
            for iy in ys:
                cells.setdefault((ix, iy), []).append(entry)
    built: list[_Level] = []
    info: list[dict[str, float]] = []
    for k in sorted(levels):
        scale = LEVEL_FACTOR**k
        cells = {key: tuple(entries) for key, entries in levels[k].items()}
        built.append((1.0 / (cell_w * scale), 1.0 / (cell_h * scale), cells))
        info.append(
            {
                "level": k,
                "cell_lon_deg": cell_w * scale,
                "cell_lat_deg": cell_h * scale,
                "cells": len(cells),
                "entries": sum(len(entries) for entries in cells.values()),
            }
        )
    return tuple(built), tuple(info)
