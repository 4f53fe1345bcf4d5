"""Geofences (POIs) and their groups through the API: GeoJSON in, GeoJSON out."""

from __future__ import annotations

from typing import Any

from harness import Web

CIRCLE = {"type": "Point", "coordinates": [-90.5, 14.6]}
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[-90.6, 14.5], [-90.5, 14.5], [-90.5, 14.6], [-90.6, 14.6], [-90.6, 14.5]]],
}
LINE = {"type": "LineString", "coordinates": [[-90.6, 14.5], [-90.5, 14.6]]}
BOWTIE = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


async def test_geofence_crud_of_each_shape(web: Web) -> None:
    group = await web.post("a_mgr", "/api/geofence-groups", json={"name": "Depots"})
    assert group.status_code == 201, group.text
    gid = group.json()["id"]
    shapes = [
        (feature(CIRCLE, name="Depot", radius_m=150, contact="Ana", group_ids=[gid]), "circle"),
        (feature(SQUARE, name="Yard"), "polygon"),
        (feature(LINE, name="Road", width_m=40), "corridor"),
    ]
    ids = []
    for body, kind in shapes:
        r = await web.post("a_mgr", "/api/geofences", json=body)
        assert r.status_code == 201, r.text
        out = r.json()
        assert out["type"] == "Feature" and out["geometry"] == body["geometry"]
        assert out["properties"]["kind"] == kind
        assert out["properties"]["name"] == body["properties"]["name"]
        ids.append(out["id"])
    r = await web.get("a_view", f"/api/geofences/{ids[0]}")
    assert r.status_code == 200
    props = r.json()["properties"]
    assert props["radius_m"] == 150 and props["contact"] == "Ana" and props["group_ids"] == [gid]
    assert (await web.get("a_view", f"/api/geofences/{ids[2]}")).json()["properties"][
        "width_m"
    ] == 40

    listed = (await web.get("a_view", "/api/geofences")).json()
    assert listed["type"] == "FeatureCollection"
    assert [f["id"] for f in listed["features"]] == ids
    assert (await web.get("b_mgr", "/api/geofences")).json()["features"] == []
    error(await web.get("b_mgr", f"/api/geofences/{ids[0]}"), 404)

    r = await web.patch(
        "a_mgr",
        f"/api/geofences/{ids[0]}",
        json={"properties": {"name": "Main depot", "radius_m": 300, "group_ids": []}},
    )
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert (props["name"], props["radius_m"], props["group_ids"]) == ("Main depot", 300, [])
    assert props["contact"] == "Ana"
    r = await web.patch(
        "a_mgr", f"/api/geofences/{ids[0]}", json={"geometry": SQUARE, "properties": {}}
    )
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["kind"] == "polygon" and r.json()["geometry"] == SQUARE
    err = error(
        await web.patch(
            "a_mgr", f"/api/geofences/{ids[1]}", json={"properties": {"group_ids": [999]}}
        ),
        422,
    )
    assert err["field"] == "group_ids"

    assert (await web.delete("a_mgr", f"/api/geofences/{ids[1]}")).status_code == 204
    error(await web.get("a_mgr", f"/api/geofences/{ids[1]}"), 404)
    groups = (await web.get("a_view", "/api/geofence-groups")).json()["groups"]
    assert [g["name"] for g in groups] == ["Depots"]
    error(await web.post("a_mgr", "/api/geofence-groups", json={"name": "Depots"}), 409)
    assert (await web.delete("a_mgr", f"/api/geofence-groups/{gid}")).status_code == 204
    assert (await web.get("a_view", "/api/geofence-groups")).json()["groups"] == []


async def test_the_administrator_names_the_client(web: Web) -> None:
    body = feature(CIRCLE, name="Depot", radius_m=100)
    assert error(await web.post("admin", "/api/geofences", json=body), 422)["field"] == (
        "client_id"
    )
    r = await web.post("admin", "/api/geofences", json={**body, "client_id": web.clients["b"]})
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["client_id"] == web.clients["b"]


async def test_bad_shapes_are_refused_naming_the_field(web: Web) -> None:
    cases = [
        (feature(BOWTIE, name="Bow"), "geometry.coordinates.0"),
        (feature(CIRCLE, name="Zero", radius_m=0), "properties.radius_m"),
        (
            feature({"type": "LineString", "coordinates": [[0, 0]]}, name="Dot", width_m=5),
            "geometry.coordinates",
        ),
        (feature(CIRCLE, radius_m=10), "properties.name"),
        (feature({"type": "Point"}, name="x", radius_m=10), "geometry.coordinates"),
        (feature(CIRCLE, name="x", radius_m=10, group_ids=7), "properties.group_ids"),
    ]
    for body, field in cases:
        err = error(await web.post("a_mgr", "/api/geofences", json=body), 422)
        assert err["field"] == field, (body, err)
    assert (
        error(await web.post("a_mgr", "/api/geofences", json={"type": "Feature"}), 422)["field"]
        == "geometry"
    )
    assert web.hub.store.geofences.list() == []


async def test_bulk_import_is_all_or_nothing(web: Web) -> None:
    good = feature(CIRCLE, name="Depot", radius_m=100)
    bad = feature({"type": "Point", "coordinates": [-90.5, 94.0]}, name="Pole", radius_m=5)
    body = {"type": "FeatureCollection", "features": [good, bad]}
    err = error(await web.post("a_mgr", "/api/geofences/import", json=body), 422)
    assert err["field"].startswith("features.1.geometry"), err
    assert web.hub.store.geofences.list() == []

    body["features"] = [good, feature(LINE, name="Road", width_m=20)]
    r = await web.post("a_mgr", "/api/geofences/import", json=body)
    assert r.status_code == 201, r.text
    created = r.json()["features"]
    assert [f["properties"]["kind"] for f in created] == ["circle", "corridor"]
    listed = (await web.get("a_view", "/api/geofences")).json()["features"]
    assert [f["id"] for f in listed] == [f["id"] for f in created]
