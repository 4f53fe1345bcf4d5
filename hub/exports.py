"""Export encodings of a device's position history, shared by the API and the CLI.

``HISTORY_CSV_COLUMNS`` and ``history_csv_row`` are the one definition of the CSV a
history export has (``GET /api/devices/{id}/positions?format=csv`` and ``gpshub history
export``), ``history_feature`` the one of a GeoJSON export's features, ``gpx_head``, ``gpx_point``
and ``GPX_TAIL`` the one of a GPX export.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from hub.positions import position_json
from hub.timestamps import utc_text

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = (
    "id", "device_id", "fix_time", "server_time", "lat", "lon", "altitude_m", "speed_kmh",
    "course_deg", "satellites", "valid", "ignition", "accuracy_m", "sensors", "source_ip",
    "source_port", "event_code", "odometer_km", "virtual_odometer_km", "hours",
    "virtual_hours", "poi_ids", "poi_group_ids", "place", "alerts_count",
)  # fmt: skip
"""The position fields of a history export, in order."""

HISTORY_CSV_COLUMNS = (*CSV_COLUMNS[:2], "device_name", *CSV_COLUMNS[2:])
"""The columns of a history export's CSV: the position fields and the device's name."""


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


def history_csv_row(row: dict[str, Any], device_name: str) -> list[Any]:
    """The cells of one stored position (a row of ``PositionStore.history``) in a history
    CSV, in ``HISTORY_CSV_COLUMNS`` order."""
    data = position_json(row)
    data["device_name"] = device_name
    return [csv_cell(data.get(c)) for c in HISTORY_CSV_COLUMNS]


def history_feature(row: dict[str, Any], device_name: str) -> dict[str, Any]:
    """One stored position as a feature of a history GeoJSON export: the position's id
    as the feature's, and the device's name among the properties."""
    feature = geojson_feature(position_json(row))
    feature["id"] = row["id"]
    feature["properties"]["device_name"] = device_name
    return feature


# -- GPX -------------------------------------------------------------------------------
GPX_NS = "http://www.topografix.com/GPX/1/1"
GPX_TPX_NS = "http://www.garmin.com/xmlschemas/TrackPointExtension/v2"
"""Garmin's TrackPointExtension v2: where GPX readers look for a point's speed (m/s) and
course (degrees); GPX 1.1's ``trkpt`` has no element for either."""


def gpx_head(device_name: str, created: datetime) -> str:
    """The start of a history GPX 1.1 export: one ``trk`` named after the device, with
    one ``trkseg`` the ``gpx_point`` elements go in; ``gpx_tail`` closes it."""
    name = escape(device_name)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<gpx version="1.1" creator="gpshub" xmlns="{GPX_NS}" xmlns:gpxtpx="{GPX_TPX_NS}" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="'
        f"{GPX_NS} http://www.topografix.com/GPX/1/1/gpx.xsd "
        f'{GPX_TPX_NS} https://www8.garmin.com/xmlschemas/TrackPointExtensionv2.xsd">\n'
        f"<metadata><name>{name}</name><time>{utc_text(created)}</time></metadata>\n"
        f"<trk><name>{name}</name><trkseg>\n"
    )


GPX_TAIL = "</trkseg></trk></gpx>\n"


def gpx_point(row: dict[str, Any]) -> str:
    """One stored position as a ``trkpt``: its children in the order GPX 1.1 requires
    (``ele``, ``time``, ``sat``, ``extensions``); speed in m/s and course in [0, 360)
    in Garmin's TrackPointExtension."""
    parts = [f'<trkpt lat="{row["lat"]!r}" lon="{row["lon"]!r}">']
    if row.get("altitude_m") is not None:
        parts.append(f"<ele>{row['altitude_m']!r}</ele>")
    parts.append(f"<time>{utc_text(row['fix_time'])}</time>")
    if row.get("satellites") is not None:
        parts.append(f"<sat>{int(row['satellites'])}</sat>")
    speed, course = row.get("speed_kmh"), row.get("course_deg")
    if speed is not None or course is not None:
        parts.append("<extensions><gpxtpx:TrackPointExtension>")
        if speed is not None:
            parts.append(f"<gpxtpx:speed>{round(speed / 3.6, 3)!r}</gpxtpx:speed>")
        if course is not None:
            parts.append(f"<gpxtpx:course>{float(course) % 360.0!r}</gpxtpx:course>")
        parts.append("</gpxtpx:TrackPointExtension></extensions>")
    parts.append("</trkpt>\n")
    return "".join(parts)
