"""Devices: CRUD, validation naming the field, tenancy, latest positions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harness import T0, Web

from hub.models import REMOTE_ID_RULE


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def test_device_crud(web: Web) -> None:
    body = {"name": "Truck 7", "license_plate": "P-777", "tags": ["north"], "remote_id": "T-7"}
    r = await web.post("a_mgr", "/api/devices", json=body)
    assert r.status_code == 201, r.text
    device = r.json()
    assert device["client_id"] == web.clients["a"]
    assert device["tags"] == ["north"] and device["remote_id"] == "T-7"
    path = f"/api/devices/{device['id']}"

    assert (await web.get("a_view", path)).json() == device
    error(await web.get("b_mgr", path), 404)
    listed = (await web.get("a_view", "/api/devices")).json()["devices"]
    assert [d["id"] for d in listed] == [device["id"]]
    assert (await web.get("b_mgr", "/api/devices")).json()["devices"] == []

    r = await web.patch("a_mgr", path, json={"driver": "Ana", "license_plate": None})
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["driver"] == "Ana" and changed["license_plate"] is None
    assert changed["name"] == "Truck 7" and changed["tags"] == ["north"]

    error(await web.patch("a_view", path, json={"driver": "x"}), 403)
    error(await web.patch("b_mgr", path, json={"driver": "x"}), 404)
    error(await web.delete("b_mgr", path), 404)
    assert (await web.delete("a_mgr", path)).status_code == 204
    error(await web.get("a_mgr", path), 404)


async def test_admin_must_name_the_client(web: Web) -> None:
    err = error(await web.post("admin", "/api/devices", json={"name": "x"}), 422)
    assert err["field"] == "client_id"
    r = await web.post("admin", "/api/devices", json={"name": "x", "client_id": web.clients["b"]})
    assert r.status_code == 201 and r.json()["client_id"] == web.clients["b"]
    r = await web.post("a_mgr", "/api/devices", json={"name": "x", "client_id": web.clients["b"]})
    assert error(r, 403)["field"] == "client_id"
    assert len(web.hub.store.list_devices(web.clients["a"])) == 0


async def test_validation_names_the_field(web: Web) -> None:
    err = error(
        await web.post("a_mgr", "/api/devices", json={"name": "x", "remote_id": "a b"}), 422
    )
    assert err == {"code": "invalid", "message": REMOTE_ID_RULE, "field": "remote_id"}
    err = error(await web.post("a_mgr", "/api/devices", json={"remote_id": "ok"}), 422)
    assert err["field"] == "name"
    err = error(await web.post("a_mgr", "/api/devices", json={"name": "x", "tags": ["a", 3]}), 422)
    assert err["field"] == "tags.1"
    err = error(await web.post("a_mgr", "/api/devices", json={"name": "x" * 201}), 422)
    assert err["field"] == "name"
    first = await web.post("a_mgr", "/api/devices", json={"name": "one", "remote_id": "R1"})
    assert first.status_code == 201
    err = error(
        await web.post("a_mgr", "/api/devices", json={"name": "two", "remote_id": "R1"}), 409
    )
    assert err["field"] == "remote_id"
    # another client may use the same remote id
    assert (
        await web.post("b_mgr", "/api/devices", json={"name": "b", "remote_id": "R1"})
    ).status_code == 201
    path = f"/api/devices/{first.json()['id']}"
    err = error(await web.patch("a_mgr", path, json={"remote_id": "no spaces"}), 422)
    assert err["field"] == "remote_id" and err["message"] == REMOTE_ID_RULE
    err = error(await web.patch("a_mgr", path, json={"name": None}), 422)
    assert err["field"] == "name"
    err = error(await web.patch("a_mgr", path, json={"client_id": web.clients["b"]}), 422)
    assert err["field"] == "client_id"


async def test_devices_link_only_to_own_connections(web: Web) -> None:
    mine = web.connection("a")
    theirs = web.connection("b")
    r = await web.post(
        "a_mgr", "/api/devices", json={"name": "x", "connection_id": mine, "upstream_id": "u1"}
    )
    assert r.status_code == 201 and r.json()["connection_id"] == mine
    r = await web.post(
        "a_mgr", "/api/devices", json={"name": "y", "connection_id": theirs, "upstream_id": "u2"}
    )
    assert error(r, 422)["field"] == "connection_id"
    r = await web.post("a_mgr", "/api/devices", json={"name": "z", "connection_id": mine})
    assert error(r, 422)["field"] == "upstream_id"
    r = await web.post(
        "a_mgr", "/api/devices", json={"name": "w", "connection_id": mine, "upstream_id": "u1"}
    )
    assert error(r, 409)["field"] == "upstream_id"
    r = await web.get("a_view", "/api/devices", params={"connection_id": mine})
    assert [d["upstream_id"] for d in r.json()["devices"]] == ["u1"]


async def test_latest_positions(web: Web) -> None:
    d1 = web.device("a", name="one", license_plate="P-1", driver="Ana", tags=["north"])
    d2 = web.device("a", name="two")
    idle = web.device("a", name="idle")
    other = web.device("b", name="theirs")
    await web.write_positions(d1, 3)
    await web.write_positions(d2, 2, start=T0 + timedelta(hours=1))
    await web.write_positions(other, 1)

    r = await web.get("a_view", "/api/devices/latest")
    latest = {p["device_id"]: p for p in r.json()["positions"]}
    assert set(latest) == {d1, d2}
    assert latest[d1]["fix_time"] == "2026-03-01T12:02:00Z"
    assert latest[d2]["fix_time"] == "2026-03-01T13:01:00Z"
    label = {
        "id": d1,
        "client_id": web.clients["a"],
        "name": "one",
        "license_plate": "P-1",
        "remote_id": None,
        "driver": "Ana",
        "tags": ["north"],
        "status": "online",
    }
    assert {k: latest[d1]["device"][k] for k in label} == label  # a row needs no 2nd request
    assert latest[d2]["device"]["name"] == "two" and latest[d1]["device"]["status_at"]
    everything = (await web.get("admin", "/api/devices/latest")).json()["positions"]
    assert {p["device_id"] for p in everything} == {d1, d2, other}

    one = (await web.get("a_view", f"/api/devices/{d1}/latest")).json()
    device = latest[d1].pop("device")
    status = latest[d1].pop("status")  # the map status (test_map_status.py)
    assert one == {"device_id": d1, "device": device, "position": latest[d1], "status": status}
    none = (await web.get("a_view", f"/api/devices/{idle}/latest")).json()
    assert none["position"] is None and none["device"]["name"] == "idle"
    assert none["status"] == "no_data"
    error(await web.get("a_view", f"/api/devices/{other}/latest"), 404)


async def test_status_timeout_and_derived_fields(web: Web) -> None:
    device = web.device("a", name="derived")
    r = await web.patch("a_mgr", f"/api/devices/{device}", json={"offline_timeout_s": 300})
    assert r.status_code == 200 and r.json()["offline_timeout_s"] == 300
    assert r.json()["status"] == "unknown"
    r = await web.patch("a_mgr", f"/api/devices/{device}", json={"offline_timeout_s": 5})
    assert r.status_code == 422 and r.json()["error"]["field"] == "offline_timeout_s"
    assert (r := await web.get("a_view", f"/api/devices/{device}")).json()[
        "odometer_source"
    ] == "hub"
    r = await web.patch("a_mgr", f"/api/devices/{device}", json={"odometer_source": "platform"})
    assert r.status_code == 200 and r.json()["odometer_source"] == "platform"
    assert r.json()["hours_source"] == "hub"
    r = await web.patch("a_mgr", f"/api/devices/{device}", json={"hours_source": "dashboard"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "hours_source"
    r = await web.patch("a_mgr", f"/api/devices/{device}", json={"odometer_source": None})
    assert r.status_code == 200 and r.json()["odometer_source"] == "hub"
    await web.write_positions(device, 3, speed_kmh=40.0, ignition=True)
    assert (await web.get("a_view", f"/api/devices/{device}")).json()["status"] == "online"
    last = (await web.get("a_view", f"/api/devices/{device}/positions")).json()["positions"][-1]
    assert last["event_code"] in (0, 1) and last["odometer_km"] > 0.2
    assert last["hours"] > 0 and last["poi_ids"] == [] and last["alerts_count"] == 0
