"""Position history: pages with a cursor, CSV and GeoJSON downloads, positions since."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.responses import StreamingResponse

from hub.exports import (
    GPX_TAIL,
    HISTORY_CSV_COLUMNS,
    gpx_head,
    gpx_point,
    history_csv_row,
    history_feature,
)
from hub.models import Device
from hub.positions import decode_arrival_cursor, decode_cursor, position_json
from hub.web.auth import Access, filter_client
from hub.web.errors import bad_parameter
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import HistoryQuery, PositionPage, SincePage, SinceQuery
from hub.web.times import client_zone, resolve

EXPORT_PAGE = 2000
"""Rows fetched per query while streaming a download: memory stays flat."""

CSV_COLUMNS = HISTORY_CSV_COLUMNS  # one definition, shared with ``gpshub history export``


@dataclass(frozen=True, slots=True)
class _Range:
    """A history query with its times resolved to instants."""

    start: datetime | None
    end: datetime | None
    asked: HistoryQuery

    @property
    def cursor(self) -> str | None:
        return self.asked.cursor


def _check_cursor(cursor: str | None) -> None:
    if cursor:
        try:
            decode_cursor(cursor)
        except ValueError:
            raise bad_parameter("cursor", "not a cursor this API returned") from None


async def _pages(
    req: ApiRequest,
    device_id: int,
    start: datetime | None,
    end: datetime | None,
    cursor: str | None,
) -> AsyncIterator[list[dict[str, Any]]]:
    history = req.hub.store.positions.history
    while True:
        rows, cursor = await req.run(history, [device_id], start, end, cursor, EXPORT_PAGE)
        if rows:
            yield rows
        if cursor is None:
            return


async def _csv(req: ApiRequest, device: Device, query: _Range) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    yield buffer.getvalue()
    async for rows in _pages(req, device.id or 0, query.start, query.end, query.cursor):
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow(history_csv_row(row, device.name))
        yield buffer.getvalue()


async def _geojson(req: ApiRequest, device: Device, query: _Range) -> AsyncIterator[str]:
    yield '{"type":"FeatureCollection","features":['
    first = True
    async for rows in _pages(req, device.id or 0, query.start, query.end, query.cursor):
        parts = []
        for row in rows:
            feature = history_feature(row, device.name)
            parts.append(json.dumps(feature, separators=(",", ":"), default=str))
        yield ("" if first else ",") + ",".join(parts)
        first = False
    yield "]}"


async def _gpx(req: ApiRequest, device: Device, query: _Range) -> AsyncIterator[str]:
    yield gpx_head(device.name, req.hub.clock.now())
    async for rows in _pages(req, device.id or 0, query.start, query.end, query.cursor):
        yield "".join(gpx_point(row) for row in rows)
    yield GPX_TAIL


def _download(name: str, media_type: str, body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def device_positions(req: ApiRequest) -> Any:
    asked = req.query_as(HistoryQuery)
    _check_cursor(asked.cursor)
    device = await req.run(req.hub.store.get_device, req.path_int("id"), req.scope)
    zone = await client_zone(req, device.client_id, asked.start, asked.end)
    query = _Range(resolve(asked.start, zone, "from"), resolve(asked.end, zone, "to"), asked)
    if query.start and query.end and query.end < query.start:
        raise bad_parameter("to", "must not be before `from`")
    stem = f"device-{device.id}-positions"
    if asked.format == "csv":
        return _download(f"{stem}.csv", "text/csv; charset=utf-8", _csv(req, device, query))
    if asked.format == "geojson":
        return _download(f"{stem}.geojson", "application/geo+json", _geojson(req, device, query))
    if asked.format == "gpx":
        return _download(f"{stem}.gpx", "application/gpx+xml", _gpx(req, device, query))
    rows, next_cursor = await req.run(
        req.hub.store.positions.history,
        [device.id],
        query.start,
        query.end,
        asked.cursor,
        asked.limit,
    )
    return {"positions": [position_json(r) for r in rows], "next_cursor": next_cursor}


async def positions_since(req: ApiRequest) -> dict[str, Any]:
    query = req.query_as(SinceQuery)
    if query.since is None and not query.cursor:
        raise bad_parameter(
            "since", "required without `cursor`: a date-time with an offset or Z, or a date"
        )
    if query.cursor:
        try:
            decode_arrival_cursor(query.cursor)
        except ValueError:
            raise bad_parameter("cursor", "not a cursor this API returned") from None
    client_id = filter_client(req.principal, query.client_id)
    zone = await client_zone(req, client_id, query.since)
    since = resolve(query.since, zone, "since")
    rows, next_cursor, resume = await req.run(
        req.hub.store.positions.since, client_id, since, query.cursor, query.limit
    )
    return {
        "positions": [position_json(r) for r in rows],
        "next_cursor": next_cursor,
        "resume_cursor": resume,
    }


TAG = "history"
ROUTES = [
    ApiRoute("GET", "/api/devices/{id:int}/positions", device_positions, Access.USER,
             "Positions of a device over a time range", TAG, query=HistoryQuery,
             response=PositionPage, errors=(400, 404),
             media_types=("text/csv", "application/geo+json", "application/gpx+xml"),
             description="Ordered by fix time.  `format=json` answers one page and the "
             "cursor of the next; `csv`, `geojson` and `gpx` stream the whole range as a "
             "download (CSV text cells starting with = + - @ are prefixed with ' against "
             "formula injection; GPX 1.1 is one track of one segment, each point with "
             "`ele`, `time` and `sat`, and its speed in m/s and course in degrees in "
             "Garmin's TrackPointExtension v2).  Bad times or cursors answer 400 naming "
             "the parameter."),
    ApiRoute("GET", "/api/positions", positions_since, Access.USER,
             "Positions of all the caller's devices since a time", TAG, query=SinceQuery,
             response=SincePage, errors=(400,),
             description="In arrival order, so a fix that arrives late is not missed.  "
             "`since` keeps fixes from that time on.  Follow `next_cursor` to the end; keep "
             "`resume_cursor` to ask again later for what arrived after."),
]  # fmt: skip
