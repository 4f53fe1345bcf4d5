"""One alert object everywhere the hub's own API shows one: ``GET /api/alerts``, the live
feed's ``alert`` messages and the ``gpshub-alert`` webhook format — snake_case, with a
plain ``id``.  (Startrack's alert webhook keeps the names its specification fixes.)"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
from harness import T0, Web, make_hub
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_live import live, receive
from trio_websocket import WebSocketConnection

from hub.alerts import alert_json, snake_case
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.testing import serve_app
from hub.web.schemas import AlertOut

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
DEPOT = {"type": "Point", "coordinates": [-90.5, 14.6]}


def receiver(bodies: list[Any], arrived: trio.Event) -> Starlette:
    async def hook(request: Request) -> Response:
        bodies.append(json.loads(await request.body()))
        arrived.set()
        return Response(status_code=204)

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


async def next_alert(ws: WebSocketConnection) -> dict[str, Any]:
    while True:
        message = await receive(ws, timeout=30)
        if message["type"] == "alert":
            return message


async def test_the_api_the_live_feed_and_the_webhook_show_the_same_alert(
    tmp_path: Path, start_web: Any
) -> None:
    hub = make_hub(tmp_path, outbound_allow_networks=("127.0.0.0/8",))
    bodies: list[Any] = []
    arrived = trio.Event()
    web: Web
    async with start_web(hub=hub) as web, trio.open_nursery() as nursery:
        url = await nursery.start(serve_app, receiver(bodies, arrived))
        sink = {"name": "alerts", "kind": "webhook", "format": "gpshub-alert"}
        r = await web.post("a_mgr", "/api/sinks", json={**sink, "settings": {"url": url + "/hook"}})
        assert r.status_code == 201, r.text
        fence = {"type": "Feature", "geometry": DEPOT, "properties": {"name": "Depot"}}
        fence["properties"]["radius_m"] = 200
        fence["properties"]["contact"] = "Ana 555-1234"
        depot = (await web.post("a_mgr", "/api/geofences", json=fence)).json()["id"]
        dev = web.device("a", name="Truck 9", license_plate="P-9", tags=["north"])
        rule = {"name": "arrivals", "type": "enteredPoi", "params": {"poi_ids": [depot]}}
        r = await web.post("a_mgr", "/api/rules", json={**rule, "webhook": True})
        assert r.status_code == 201, r.text
        rule_id = r.json()["id"]
        async with live(web) as ws:
            fixes = [(T0, 14.62), (T0 + timedelta(minutes=1), 14.6)]  # outside, then in
            await web.hub.pipeline.submit(
                [IngestItem(dev, None, PositionFix(t, lat, -90.5)) for t, lat in fixes]
            )
            message = await next_alert(ws)
        (alert,) = (await web.get("a_view", "/api/alerts")).json()["alerts"]
        with trio.fail_after(30):
            await arrived.wait()
        nursery.cancel_scope.cancel()

    assert all(SNAKE.match(key) for key in alert), sorted(alert)
    AlertOut.model_validate(alert)  # what /openapi.json says of it
    assert alert["id"] == message["data"]["id"] and "eventId" not in alert
    assert alert["client_id"] == web.clients["a"] and alert["device_id"] == dev
    assert (alert["rule_id"], alert["rule_name"]) == (rule_id, "arrivals")
    assert (alert["owner_id"], alert["owner_name"]) == (web.users["a_mgr"], "a_mgr")
    assert alert["message_id"] == "enteredPoi" and alert["event"]
    assert alert["vehicle"] == "Truck 9 (P-9)" and alert["device_tags"] == ["north"]
    assert alert["fix_time"] == "2026-03-01T12:01:00Z"
    assert (alert["poi_id"], alert["poi_name"], alert["poi_contact"]) == (
        depot,
        "Depot",
        "Ana 555-1234",
    )
    assert alert["poi_ids"] == [depot] and alert["poi_names"] == ["Depot"]
    assert "virtual_odometer_km" in alert and "odometer_units" not in alert
    assert message["device_id"] == dev and message["data"] == alert
    assert bodies == [alert]


def test_condition_alerts_get_snake_case_names_too() -> None:
    stored = {
        "eventId": 7,
        "clientId": 1,
        "messageId": "overspeed",
        "date": "2026-03-01T06:00:00-06:00",
        "startDate": "2026-03-01T11:59:00+00:00",
        "speed": 93.0,
        "limit": 80.0,
        "odometer": 12.5,
        "odometerUnits": "km",
        "ignOnTime": 1.5,
        "someNewField": 1,
    }
    assert alert_json(stored) == {
        "id": 7,
        "client_id": 1,
        "message_id": "overspeed",
        "fix_time": "2026-03-01T12:00:00Z",
        "virtual_odometer_km": 12.5,
        "virtual_hours": 1.5,
        "started_at": "2026-03-01T11:59:00Z",
        "speed_kmh": 93.0,
        "limit_kmh": 80.0,
        "some_new_field": 1,
    }
    item = {**stored, "client": {"id": 3, "name": "A", "timezone": "UTC"}}
    del item["clientId"]
    assert alert_json(item)["client_id"] == 3 and "client" not in alert_json(item)
    assert snake_case("metersFromPoi") == "meters_from_poi" and snake_case("poi_ids") == "poi_ids"
