"""Stops and trips of a device over a period (``hub.stops``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hub.stops import MAX_RANGE_DAYS, find_stops
from hub.stops import __doc__ as STOPS_DOC
from hub.timestamps import utc_text
from hub.web.auth import Access
from hub.web.errors import bad_parameter
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import StopsOut, StopsQuery
from hub.web.times import client_zone, resolve


async def device_stops(req: ApiRequest) -> dict[str, Any]:
    asked = req.query_as(StopsQuery)
    device = await req.run(req.hub.store.get_device, req.path_int("id"), req.scope)
    zone = await client_zone(req, device.client_id, asked.start, asked.end)
    now = req.hub.clock.now()
    end = resolve(asked.end, zone, "to") or now
    start = resolve(asked.start, zone, "from") or end - timedelta(days=1)
    if end <= start:
        raise bad_parameter("to", "must be after `from`")
    if end - start > timedelta(days=MAX_RANGE_DAYS):
        raise bad_parameter("from", f"the range may be at most {MAX_RANGE_DAYS} days long")
    found = await req.run(
        find_stops,
        req.hub.store.positions.history,
        device.id,
        start,
        end,
        min(end, now),
        asked.min_stop_s,
    )
    return {
        "device_id": device.id,
        "from": utc_text(start),
        "to": utc_text(end),
        "min_stop_s": asked.min_stop_s,
        **found,
    }


ROUTES = [
    ApiRoute("GET", "/api/devices/{id:int}/stops", device_stops, Access.USER,
             "Stops and trips of a device over a period", "history", query=StopsQuery,
             response=StopsOut, errors=(400, 404),
             description=(STOPS_DOC or "").split("\n\n", 2)[-1].strip()),
]  # fmt: skip
