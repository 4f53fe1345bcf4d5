"""Export encodings of positions shared by the API and the CLI: CSV cells and GeoJSON."""

from __future__ import annotations

import json
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = (
    "id", "device_id", "fix_time", "server_time", "lat", "lon", "altitude_m", "speed_kmh",
    "course_deg", "satellites", "valid", "ignition", "accuracy_m", "sensors", "source_ip",
    "source_port", "event_code", "odometer_km", "virtual_odometer_km", "hours",
    "virtual_hours", "poi_ids", "poi_group_ids", "place", "alerts_count",
)  # fmt: skip
"""The columns of a position history export (the API adds the device's name)."""


def csv_cell(value: Any) -> Any:
    """A value safe to put in a CSV cell that a spreadsheet will open.

    Text starting with ``= + - @`` (or a tab or carriage return) is prefixed with ``'``
    so it is not run as a formula; numbers stay numbers, mappings become JSON.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        value = json.dumps(value, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def geojson_feature(position: dict[str, Any]) -> dict[str, Any]:
    """A position (as ``position_json`` shows it) as a GeoJSON Point feature."""
    coords = [position["lon"], position["lat"]]
    if position.get("altitude_m") is not None:
        coords.append(position["altitude_m"])
    props = {k: v for k, v in position.items() if k not in ("lat", "lon")}
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": coords},
        "properties": props,
    }
