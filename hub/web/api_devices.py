"""Devices: CRUD and the latest position of each."""

from __future__ import annotations

from typing import Any

from hub.map_status import count_by_status, map_status
from hub.models import Device
from hub.positions import position_json
from hub.web.auth import Access, filter_client, owning_client
from hub.web.routing import ApiRequest, ApiRoute
from hub.web.schemas import (
    ClientFilter,
    CountersUpdate,
    DeviceCreate,
    DeviceFilter,
    DeviceLabel,
    DeviceList,
    DeviceOut,
    DeviceUpdate,
    LatestList,
    LatestOne,
    StatusSummary,
    StatusSummaryQuery,
)


def device_out(device: Device) -> DeviceOut:
    return DeviceOut.model_validate(device.model_dump())


def offline_after_s(req: ApiRequest, device: Device) -> int:
    """Seconds after its newest fix a device is offline: its own timeout or the hub's."""
    return device.offline_timeout_s or req.hub.settings.offline_timeout_s


def device_label(req: ApiRequest, device: Device) -> dict[str, Any]:
    """The device fields a dashboard labels a row with (``DeviceLabel``)."""
    label = DeviceLabel.model_validate(
        {**device.model_dump(), "offline_timeout_s": offline_after_s(req, device)}
    )
    return label.model_dump(mode="json")


def _status(req: ApiRequest, device: Device, row: dict[str, Any] | None, now: Any) -> str:
    """The map status of ``device`` whose newest stored position is ``row``."""
    return map_status(
        row["fix_time"] if row else None,
        row["speed_kmh"] if row else None,
        row["ignition"] if row else None,
        now=now,
        offline_after_s=offline_after_s(req, device),
    ).value


async def list_devices(req: ApiRequest) -> DeviceList:
    query = req.query_as(DeviceFilter)
    client_id = filter_client(req.principal, query.client_id)
    devices = await req.run(req.hub.store.list_devices, client_id, query.connection_id)
    return DeviceList(devices=[device_out(d) for d in devices])


async def create_device(req: ApiRequest) -> DeviceOut:
    body = req.body_as(DeviceCreate)
    client_id = await owning_client(req.hub, req.principal, body.client_id)
    fields = body.model_dump(exclude={"client_id"})
    fields["tags"] = fields["tags"] or []
    device = await req.run(req.hub.store.create_device, client_id, **fields)
    return device_out(device)


async def get_device(req: ApiRequest) -> DeviceOut:
    device = await req.run(req.hub.store.get_device, req.path_int("id"), req.scope)
    return device_out(device)


async def update_device(req: ApiRequest) -> DeviceOut:
    fields: dict[str, Any] = req.body_as(DeviceUpdate).model_dump(exclude_unset=True)
    if "tags" in fields:
        fields["tags"] = fields["tags"] or []
    device = await req.run(req.hub.store.update_device, req.path_int("id"), req.scope, **fields)
    return device_out(device)


async def delete_device(req: ApiRequest) -> None:
    await req.run(req.hub.store.delete_device, req.path_int("id"), req.scope)


async def set_counters(req: ApiRequest) -> DeviceOut:
    body = req.body_as(CountersUpdate)
    device = await req.run(
        req.hub.store.set_virtual_counters,
        req.path_int("id"),
        req.scope,
        odometer_km=body.odometer_km,
        hours=body.hours,
    )
    return device_out(device)


async def latest_positions(req: ApiRequest) -> dict[str, Any]:
    client_id = filter_client(req.principal, req.query_as(ClientFilter).client_id)
    rows = await req.run(req.hub.store.positions.latest, None, client_id)
    devices = {d.id: d for d in await req.run(req.hub.store.list_devices, client_id)}
    now = req.hub.clock.now()
    return {
        "positions": [
            {
                **position_json(r),
                "device": device_label(req, devices[r["device_id"]]),
                "status": _status(req, devices[r["device_id"]], r, now),
            }
            for r in rows
            if r["device_id"] in devices  # a device deleted between the two reads
        ]
    }


async def status_summary(req: ApiRequest) -> StatusSummary:
    query = req.query_as(StatusSummaryQuery)
    client_id = filter_client(req.principal, query.client_id)
    devices = await req.run(req.hub.store.list_devices, client_id, query.connection_id)
    if query.tag is not None:
        devices = [d for d in devices if query.tag in (d.tags or [])]
    rows = await req.run(req.hub.store.positions.latest, [d.id for d in devices])
    newest = {r["device_id"]: r for r in rows}
    now = req.hub.clock.now()
    counts = count_by_status(_status(req, d, newest.get(d.id), now) for d in devices)
    return StatusSummary(total=len(devices), counts=counts, at=now)


async def latest_position(req: ApiRequest) -> dict[str, Any]:
    device = await req.run(req.hub.store.get_device, req.path_int("id"), req.scope)
    rows = await req.run(req.hub.store.positions.latest, [device.id])
    return {
        "device_id": device.id,
        "device": device_label(req, device),
        "position": position_json(rows[0]) if rows else None,
        "status": _status(req, device, rows[0] if rows else None, req.hub.clock.now()),
    }


TAG = "devices"
STATUS_RULE = (
    "The map `status` is, in order: `no_data` without a position; `offline` when the "
    "newest fix is older than the device's `offline_timeout_s`; `moving` when its "
    "`speed_kmh` is above 5; `ignition_off` when its `ignition` is false; else `stopped`."
)
ROUTES = [
    ApiRoute("GET", "/api/devices", list_devices, Access.USER, "List devices", TAG,
             query=DeviceFilter, response=DeviceList),
    ApiRoute("POST", "/api/devices", create_device, Access.MANAGER, "Create a device", TAG,
             body=DeviceCreate, response=DeviceOut, status=201, errors=(409, 422),
             description="With a `connection_id`, `upstream_id` names the device upstream."),
    ApiRoute("GET", "/api/devices/latest", latest_positions, Access.USER,
             "The latest position of every visible device", TAG, query=ClientFilter,
             response=LatestList,
             description="Each position carries its `device` (name, plate, driver, tags, "
             "status…), so a dashboard can label it without another request, and its map "
             f"`status`.  Devices without any position are left out.  {STATUS_RULE}"),
    ApiRoute("GET", "/api/devices/summary", status_summary, Access.USER,
             "How many visible devices have each map status", TAG,
             query=StatusSummaryQuery, response=StatusSummary,
             description="Counts every device (those without a position as `no_data`), "
             "optionally only a connection's or a tag's, for a device list's counters.  "
             f"{STATUS_RULE}"),
    ApiRoute("GET", "/api/devices/{id:int}", get_device, Access.USER, "Read a device", TAG,
             response=DeviceOut, errors=(404,)),
    ApiRoute("PATCH", "/api/devices/{id:int}", update_device, Access.MANAGER,
             "Change a device", TAG, body=DeviceUpdate, response=DeviceOut,
             errors=(404, 409, 422)),
    ApiRoute("DELETE", "/api/devices/{id:int}", delete_device, Access.MANAGER,
             "Delete a device and its positions", TAG, status=204, errors=(404,)),
    ApiRoute("PATCH", "/api/devices/{id:int}/counters", set_counters, Access.MANAGER,
             "Set a device's virtual odometer and hour meter", TAG, body=CountersUpdate,
             response=DeviceOut, errors=(404, 422),
             description="The values count on from the next fix; omitted ones stay."),
    ApiRoute("GET", "/api/devices/{id:int}/latest", latest_position, Access.USER,
             "The latest position of a device", TAG, response=LatestOne, errors=(404,),
             description=f"With the device's map `status`.  {STATUS_RULE}"),
]  # fmt: skip

__all__ = ["ROUTES", "device_out"]
