"""Alert rules, rule types, alerts, device counters and client time zones via the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from harness import T0, Web

from hub.fix import PositionFix
from hub.positions import IngestItem

CIRCLE = {"type": "Point", "coordinates": [-90.5, 14.6]}


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def poi(web: Web, who: str = "a_mgr", name: str = "Depot") -> int:
    body = {"type": "Feature", "geometry": CIRCLE, "properties": {"name": name, "radius_m": 200}}
    r = await web.post(who, "/api/geofences", json=body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def test_rule_types_are_listed(web: Web) -> None:
    r = await web.get("a_view", "/api/rule-types")
    assert r.status_code == 200
    types = {t["name"]: t for t in r.json()["types"]}
    assert types["enteredPoi"]["message_id"] == "enteredPoi"
    assert "poi_ids" in types["enteredPoi"]["params"]["properties"]
    assert types["overspeed"]["params"]["required"] == ["limit_kmh"]
    assert types["ignitionOn"]["description"]


async def test_rule_crud_with_owner(web: Web) -> None:
    dev = web.device("a")
    depot = await poi(web)
    body = {
        "name": "Depot arrivals",
        "type": "enteredPoi",
        "params": {"poi_ids": [depot]},
        "device_ids": [dev],
        "schedule": {"windows": [{"days": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00"}]},
    }
    r = await web.post("a_mgr", "/api/rules", json=body)
    assert r.status_code == 201, r.text
    rule = r.json()
    assert rule["owner_id"] == web.users["a_mgr"] and rule["owner_name"] == "a_mgr"
    assert rule["client_id"] == web.clients["a"] and rule["device_ids"] == [dev]
    assert rule["tags"] is None and rule["enabled"] is True
    assert rule["params"]["poi_ids"] == [depot]
    assert rule["schedule"]["windows"][0]["days"] == [0, 1, 2, 3, 4]

    r = await web.post(
        "admin",
        "/api/rules",
        json={"name": "Ignition", "type": "ignitionOn", "client_id": web.clients["a"]},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["owner_id"], r.json()["owner_name"]) == (web.users["admin"], "admin")

    rid = rule["id"]
    assert (await web.get("a_view", f"/api/rules/{rid}")).json()["name"] == "Depot arrivals"
    error(await web.get("b_mgr", f"/api/rules/{rid}"), 404)
    assert (await web.get("b_mgr", "/api/rules")).json()["rules"] == []
    assert len((await web.get("a_view", "/api/rules")).json()["rules"]) == 2

    r = await web.patch(
        "a_mgr",
        f"/api/rules/{rid}",
        json={"enabled": False, "device_ids": None, "tags": ["north"], "schedule": None},
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["enabled"] is False and out["device_ids"] is None and out["tags"] == ["north"]
    assert out["schedule"] is None and out["params"]["poi_ids"] == [depot]
    r = await web.patch(
        "a_mgr", f"/api/rules/{rid}", json={"type": "overspeed", "params": {"limit_kmh": 90}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["type"] == "overspeed" and r.json()["params"]["limit_kmh"] == 90

    assert (await web.delete("a_mgr", f"/api/rules/{rid}")).status_code == 204
    error(await web.get("a_mgr", f"/api/rules/{rid}"), 404)


async def test_bad_rules_are_refused_naming_the_field(web: Web) -> None:
    foreign = await poi(web, "b_mgr", "B's depot")
    cases = [
        ({"name": "x", "type": "teleported"}, "type"),
        ({"name": "x", "type": "enteredPoi", "params": {"poi_ids": [foreign]}}, "params.poi_ids"),
        ({"name": "x", "type": "overspeed", "params": {}}, "params.limit_kmh"),
        ({"name": "x", "type": "ignitionOn", "device_ids": [999]}, "device_ids"),
        (
            {"name": "x", "type": "ignitionOn", "schedule": {"windows": [{"days": [9]}]}},
            "schedule.windows.0.days",
        ),
        ({"name": "", "type": "ignitionOn"}, "name"),
    ]
    for body, field in cases:
        err = error(await web.post("a_mgr", "/api/rules", json=body), 422)
        assert err["field"].startswith(field), (body, err)
    assert web.hub.store.rules.list() == []


async def test_entering_a_poi_raises_an_alert_read_back_from_the_api(web: Web) -> None:
    dev = web.device("a", name="Truck 9")
    depot = await poi(web, name="Depot")
    r = await web.post(
        "a_mgr",
        "/api/rules",
        json={
            "name": "arrivals",
            "type": "enteredPoi",
            "params": {"poi_ids": [depot]},
            "device_ids": [dev],
        },
    )
    assert r.status_code == 201, r.text
    rule_id = r.json()["id"]
    items = [
        IngestItem(dev, None, PositionFix(fix_time=T0, lat=14.62, lon=-90.5)),  # outside
        IngestItem(dev, None, PositionFix(fix_time=T0 + timedelta(minutes=1), lat=14.6, lon=-90.5)),
    ]
    await web.hub.pipeline.submit(items)

    r = await web.get("a_view", "/api/alerts", params={"device_id": dev})
    assert r.status_code == 200, r.text
    page = r.json()
    (alert,) = page["alerts"]
    assert alert["message_id"] == "enteredPoi" and alert["poi_name"] == "Depot"
    assert alert["owner_name"] == "a_mgr" and alert["owner_id"] == web.users["a_mgr"]
    assert alert["rule_id"] == rule_id and alert["device_id"] == dev
    assert page["next_after_id"] == alert["id"]

    again = (await web.get("a_view", "/api/alerts", params={"after_id": alert["id"]})).json()
    assert again == {"alerts": [], "next_after_id": alert["id"], "next_before_id": None}
    ranged = await web.get(
        "a_view",
        "/api/alerts",
        params={"rule_id": rule_id, "from": T0.isoformat(), "to": T0.isoformat()},
    )
    assert ranged.json()["alerts"] == []
    assert (await web.get("b_mgr", "/api/alerts")).json()["alerts"] == []
    error(await web.get("a_view", "/api/alerts", params={"from": "yesterday"}), 400)


async def test_alerts_newest_first_page_back_with_before_id(web: Web) -> None:
    dev = web.device("a", name="Truck 9")
    depot = await poi(web, name="Depot")
    body = {"name": "arrivals", "type": "enteredPoi", "params": {"poi_ids": [depot]}}
    assert (await web.post("a_mgr", "/api/rules", json=body)).status_code == 201
    items = [  # out, in, out, in, out, in: three arrivals
        IngestItem(dev, None, PositionFix(fix_time=T0 + timedelta(minutes=i), lat=lat, lon=-90.5))
        for i, lat in enumerate([14.62, 14.6] * 3)
    ]
    await web.hub.pipeline.submit(items)
    oldest_first = (await web.get("a_view", "/api/alerts")).json()["alerts"]
    ids = [a["id"] for a in oldest_first]
    assert len(ids) == 3 and ids == sorted(ids)

    params: dict[str, Any] = {"order": "desc", "limit": 2}
    first = (await web.get("a_view", "/api/alerts", params=params)).json()
    assert [a["id"] for a in first["alerts"]] == [ids[2], ids[1]]
    assert first["next_before_id"] == ids[1] and first["next_after_id"] == ids[2]
    params["before_id"] = first["next_before_id"]
    second = (await web.get("a_view", "/api/alerts", params=params)).json()
    assert [a["id"] for a in second["alerts"]] == [ids[0]]
    params["before_id"] = second["next_before_id"]
    last = (await web.get("a_view", "/api/alerts", params=params)).json()
    assert last == {"alerts": [], "next_after_id": None, "next_before_id": ids[0]}
    err = error(await web.get("a_view", "/api/alerts", params={"order": "newest"}), 400)
    assert err["field"] == "order"


async def test_device_counters(web: Web) -> None:
    dev = web.device("a")
    r = await web.patch(
        "a_mgr", f"/api/devices/{dev}/counters", json={"odometer_km": 1200.5, "hours": 300}
    )
    assert r.status_code == 200, r.text
    assert r.json()["id"] == dev
    device = web.hub.store.get_device(dev)
    assert device.odometer_offset_km == 1200.5 and device.hours_offset == 300
    err = error(await web.patch("a_mgr", f"/api/devices/{dev}/counters", json={"hours": -1}), 422)
    assert err["field"] == "hours"
    err = error(
        await web.patch("a_mgr", f"/api/devices/{dev}/counters", json={"odometer_km": "x"}), 422
    )
    assert err["field"] == "odometer_km"
    error(await web.patch("b_mgr", f"/api/devices/{dev}/counters", json={"hours": 1}), 404)


async def test_client_timezone(web: Web) -> None:
    a = web.clients["a"]
    r = await web.patch("admin", f"/api/clients/{a}", json={"timezone": "America/Guatemala"})
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "America/Guatemala" and r.json()["name"] == "Client A"
    assert web.hub.store.get_client(a).timezone == "America/Guatemala"
    err = error(
        await web.patch("admin", f"/api/clients/{a}", json={"timezone": "Mars/Olympus"}), 422
    )
    assert err["field"] == "timezone"
    assert web.hub.store.get_client(a).timezone == "America/Guatemala"
    r = await web.patch("admin", f"/api/clients/{a}", json={"name": "Client A2"})
    assert r.json()["name"] == "Client A2" and r.json()["timezone"] == "America/Guatemala"
    error(await web.patch("admin", "/api/clients/99999", json={"name": "x"}), 404)
    error(await web.patch("a_mgr", f"/api/clients/{a}", json={"name": "x"}), 403)


async def test_a_deleted_device_leaves_its_rules_and_lends_its_id_to_nobody(web: Web) -> None:
    """Issue 12: a rule kept ``device_ids: [21]`` after device 21 was deleted, and the id
    then went to another client's new device."""
    kept = web.device("a", "kept")
    r = await web.post("a_mgr", "/api/devices", json={"name": "Truck 21"})
    assert r.status_code == 201, r.text
    gone = r.json()["id"]
    both = {"name": "Both", "type": "ignitionOn", "device_ids": [kept, gone]}
    only = {"name": "Only 21", "type": "ignitionOn", "device_ids": [gone]}
    ids = []
    for body in (both, only):
        r = await web.post("a_mgr", "/api/rules", json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    assert (await web.delete("a_mgr", f"/api/devices/{gone}")).status_code == 204
    rules = {r["id"]: r for r in (await web.get("a_view", "/api/rules")).json()["rules"]}
    assert rules[ids[0]]["device_ids"] == [kept]
    assert rules[ids[1]]["device_ids"] == [] and rules[ids[1]]["enabled"] is True
    r = await web.post("b_mgr", "/api/devices", json={"name": "B's new truck"})
    assert r.status_code == 201, r.text
    assert r.json()["id"] > gone
