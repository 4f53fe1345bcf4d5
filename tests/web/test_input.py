"""Odd input gets a 4xx naming the field, never a 500: ids and integers beyond int64,
deeply nested or non-standard JSON, loosely typed values, control characters, time zones
that are no zones, numbers for times; and ``Allow`` names every method of a path."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from harness import Web

from hub.web import create_app

BIG = 2**63  # one past int64
HUGE = "9" * 5000  # more digits than Python converts to an int by default


async def send(web: Web, who: str, method: str, path: str, text: str) -> Any:
    """``text`` as the JSON body, byte for byte."""
    headers = {**web.headers(who), "content-type": "application/json"}
    return await web.http.request(method, path, content=text.encode(), headers=headers)


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    return body["error"]


# -- ids and integers ------------------------------------------------------------------
@pytest.mark.parametrize("raw", [str(BIG), "99999999999999999999999", "0", "-1", HUGE])
async def test_path_ids_out_of_range_are_422(web: Web, raw: str) -> None:
    for method, path in (
        ("GET", "/api/devices/{}"),
        ("DELETE", "/api/connections/{}"),
        ("GET", "/api/devices/{}/positions"),
        ("DELETE", "/api/users/{}"),
        ("PATCH", "/api/clients/{}"),
    ):
        kw = {"json": {"name": "x"}} if method == "PATCH" else {}
        e = error(await web.call("admin", method, path.format(raw), **kw), 422)
        assert e["field"] == "id", e


async def test_the_largest_id_is_just_not_found(web: Web) -> None:
    error(await web.get("admin", f"/api/devices/{BIG - 1}"), 404)
    error(await web.get("admin", "/api/devices/not-a-number"), 404)  # no such route


@pytest.mark.parametrize(
    "path",
    [
        f"/api/devices?client_id={BIG}",
        f"/api/alerts?device_id={BIG}",
        f"/api/alerts?after_id=-{BIG + 1}",
        f"/api/tokens?user_id={HUGE}",
        f"/api/sinks/1/dead-letters?after_id={BIG}",
        "/api/devices?client_id=1.0",
        "/api/devices?client_id=%EF%BC%91",  # a full-width digit
    ],
)
async def test_query_integers_out_of_range_are_400_naming_them(web: Web, path: str) -> None:
    web.hub.store.sinks  # noqa: B018  (the sink route needs no sink to refuse its query)
    name = re.search(r"\?(\w+)=", path)
    assert name
    e = error(await web.get("admin", path), 400)
    assert e["field"] == name.group(1), e


async def test_body_integers_out_of_range_are_422_naming_them(web: Web) -> None:
    conn = web.connection("a")
    cases: list[tuple[str, str, str, Any]] = [
        ("POST", "/api/devices", "client_id", {"name": "x", "client_id": BIG}),
        ("POST", "/api/devices", "offline_timeout_s", {"name": "x", "offline_timeout_s": BIG}),
        ("POST", "/api/rules", "device_ids.1", {"name": "r", "type": "stopped",
                                                "device_ids": [1, BIG]}),
        ("PATCH", f"/api/connections/{conn}", "options.page", {"options": {"page": -BIG - 1}}),
        ("POST", "/api/tokens", "user_id", {"name": "t", "user_id": int(HUGE[:400])}),
    ]  # fmt: skip
    for method, path, field, body in cases:
        e = error(await web.call("a_mgr", method, path, json=body), 422)
        assert e["field"] == field, (path, e)
    # digits beyond what Python converts, sent as raw JSON
    raw = '{"name": "x", "offline_timeout_s": ' + HUGE + "}"
    r = await send(web, "a_mgr", "POST", "/api/devices", raw)
    assert error(r, 422)["field"] == "offline_timeout_s"
    assert web.hub.store.list_devices() == []


# -- JSON ------------------------------------------------------------------------------
async def test_deeply_nested_json_is_400_on_every_route_with_a_body(web: Web) -> None:
    deep = "[" * 1000 + "]" * 1000
    bodies = ('{"a": ' + deep + "}", deep, '{"a": ' + '{"a": ' * 40 + "1" + "}" * 41)
    routes = [spec for spec in create_app(web.hub).state.table if spec.body is not None]
    assert len(routes) >= 23
    for spec in routes:
        path = re.sub(r"{\w+(:\w+)?}", "1", spec.path)
        for body in bodies:
            e = error(await send(web, "admin", spec.method, path, body), 400)
            assert e["code"] == "bad_json" and "deep" in e["message"], (spec.path, e)


async def test_non_standard_json_is_400(web: Web) -> None:
    for raw in ('{"name": NaN}', '{"name": "x", "offline_timeout_s": Infinity}', "1e999"):
        r = await send(web, "a_mgr", "POST", "/api/devices", raw)
        assert error(r, 400)["code"] == "bad_json", raw


async def test_bodies_are_typed_strictly(web: Web) -> None:
    for body, field in (
        ({"name": "x", "offline_timeout_s": "60"}, "offline_timeout_s"),
        ({"name": 5}, "name"),
        ({"name": "x", "tags": "a"}, "tags"),
    ):
        e = error(await web.post("a_mgr", "/api/devices", json=body), 422)
        assert e["field"] == field, e
    rule = {"name": "r", "type": "stopped", "enabled": 1}
    assert error(await web.post("a_mgr", "/api/rules", json=rule), 422)["field"] == "enabled"
    # a whole number written with a fraction is an integer, as in JSON Schema
    r = await web.post("a_mgr", "/api/devices", json={"name": "x", "offline_timeout_s": 60.0})
    assert r.status_code == 201 and r.json()["offline_timeout_s"] == 60, r.text


async def test_null_does_not_switch_a_rule_off(web: Web) -> None:
    r = await web.post("a_mgr", "/api/rules", json={"name": "r", "type": "stopped"})
    assert r.status_code == 201, r.text
    rule = r.json()["id"]
    for field in ("enabled", "webhook", "name", "type"):
        e = error(await web.patch("a_mgr", f"/api/rules/{rule}", json={field: None}), 422)
        assert e["field"] == field
    assert (await web.get("a_mgr", f"/api/rules/{rule}")).json()["enabled"] is True


async def test_times_are_iso_texts_not_numbers(web: Web) -> None:
    device = web.device("a")
    for query in ("from=0.5", "to=1700000000", "from=%201e3"):
        path = f"/api/devices/{device}/positions?{query}"
        assert error(await web.get("a_mgr", path), 400)["field"] == query.split("=")[0]
    assert error(await web.get("a_mgr", "/api/positions?since=12"), 400)["field"] == "since"


# -- text --------------------------------------------------------------------------------
async def test_control_characters_are_refused_naming_the_field(web: Web) -> None:
    conn = web.connection("a")
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/api/devices", {"name": "a\x00b"}, "name"),
        ("POST", "/api/devices", {"name": "two\nlines"}, "name"),
        ("POST", "/api/devices", {"name": "tab\there"}, "name"),
        ("POST", "/api/devices", {"name": "c1\x85"}, "name"),
        ("POST", "/api/devices", {"name": "x", "tags": ["ok", "b\x07d"]}, "tags.1"),
        ("PATCH", f"/api/connections/{conn}", {"label": "bell\x07"}, "label"),
        ("PATCH", f"/api/connections/{conn}", {"credentials": {"password": "p\x00w"}},
         "credentials.password"),
        ("PATCH", f"/api/connections/{conn}", {"options": {"a\nb": 1}}, "options"),
        ("POST", "/api/geofences", {"geometry": {"type": "Point", "coordinates": [0, 0]},
                                    "properties": {"name": "N\x00", "radius_m": 5}},
         "properties.name"),
        ("POST", "/api/geofences", {"geometry": {"type": "Point", "coordinates": [0, 0]},
                                    "properties": {"name": "Depot\nB", "radius_m": 5}},
         "properties.name"),
        ("POST", "/api/geofences", {"geometry": {"type": "Point", "coordinates": [0, 0]},
                                    "properties": {"name": "D", "contact": "x\x00",
                                                   "radius_m": 5}},
         "properties.contact"),
        ("POST", "/api/geofence-groups", {"name": "lone \ud800 surrogate"}, "name"),
        ("POST", "/api/tokens", {"name": "t\x1b[31m"}, "name"),
    ]  # fmt: skip
    for method, path, body, field in cases:
        r = await send(web, "a_mgr", method, path, json.dumps(body))  # \ud800 escaped
        assert error(r, 422)["field"] == field, (body, r.text)
    assert web.hub.store.list_devices() == []
    assert web.hub.store.geofences.list() == []
    # multi-line text keeps its line breaks and tabs
    contact = "Ana Pérez\n\t+502 5555 0000\r\n"
    body = {
        "geometry": {"type": "Point", "coordinates": [0, 0]},
        "properties": {"name": "Depot", "contact": contact, "radius_m": 5},
    }
    r = await web.post("a_mgr", "/api/geofences", json=body)
    assert r.status_code == 201 and r.json()["properties"]["contact"] == contact, r.text
    # and query parameters are single lines too
    e = error(await web.get("a_mgr", "/api/positions?cursor=a%00b"), 400)
    assert e["field"] == "cursor"


async def test_openapi_states_the_text_and_integer_rules(web: Web) -> None:
    doc = (await web.get(None, "/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    name = schemas["DeviceCreate"]["properties"]["name"]
    assert re.fullmatch(name["pattern"], "Truck 7") and not re.search(name["pattern"], "a\nb")
    timeout = schemas["DeviceCreate"]["properties"]["offline_timeout_s"]["anyOf"][0]
    assert timeout["minimum"] == 30 and timeout["maximum"] == 2**63 - 1
    (param,) = doc["paths"]["/api/devices/{id}"]["get"]["parameters"]
    assert param["schema"]["minimum"] == 1 and param["schema"]["maximum"] == 2**63 - 1
    assert "422" in doc["paths"]["/api/devices/{id}"]["get"]["responses"]
    kind = schemas["ConnectionCreate"]["properties"]["kind"]
    assert kind["enum"] == sorted(web.hub.registry.sources)


# -- time zones ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "zone", ["localtime", "posixrules", "Factory", "posix/UTC", "right/UTC", "Nowhere/Land"]
)
async def test_only_iana_zone_names_are_time_zones(web: Web, zone: str) -> None:
    client = web.clients["a"]
    e = error(await web.patch("admin", f"/api/clients/{client}", json={"timezone": zone}), 422)
    assert e["field"] == "timezone" and "IANA" in e["message"]
    assert web.hub.store.get_client(client).timezone == "UTC"


async def test_iana_zone_names_are_taken_and_listed(web: Web) -> None:
    client = web.clients["a"]
    for zone in ("America/Guatemala", "Etc/GMT+6", "UTC"):
        r = await web.patch("admin", f"/api/clients/{client}", json={"timezone": zone})
        assert r.status_code == 200 and r.json()["timezone"] == zone, r.text
    doc = (await web.get(None, "/openapi.json")).json()
    (zones,) = [
        option["enum"]
        for option in doc["components"]["schemas"]["ClientUpdate"]["properties"]["timezone"][
            "anyOf"
        ]
        if "enum" in option
    ]
    assert "America/Guatemala" in zones and "localtime" not in zones and "Factory" not in zones


# -- methods and the live feed ---------------------------------------------------------------
async def test_405_allows_every_method_of_the_path(web: Web) -> None:
    for method, path, allowed in (
        ("PUT", "/api/devices", {"GET", "POST"}),
        ("OPTIONS", "/api/devices/1", {"GET", "PATCH", "DELETE"}),
        ("POST", "/api/clients/1", {"PATCH", "DELETE"}),
        ("DELETE", "/api/tokens", {"GET", "POST"}),
    ):
        r = await web.call("admin", method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert set(r.headers["allow"].split(", ")) - {"HEAD"} == allowed, (path, r.headers)


async def test_the_live_feed_over_plain_http_says_to_upgrade(web: Web) -> None:
    error(await web.get(None, "/api/live"), 401)
    e = error(await web.get("a_view", "/api/live"), 426)
    assert e["code"] == "upgrade_required"


# -- keep-alive ------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [100, 1_200_000, 3_000_000])
async def test_an_early_answer_leaves_the_connection_usable(web: Web, size: int) -> None:
    """An answer given before the body is read (bad token, bad id, no such route, too
    large) still takes the body off the connection, so the next request on it is
    answered (it used to wait forever)."""
    body = json.dumps({"ids": [], "pad": "x" * size})
    good = {**web.headers("admin"), "Content-Type": "application/json"}
    bad = {**good, "Authorization": "Bearer gph_nope"}
    limits = httpx.Limits(max_connections=1)  # one connection, kept alive
    async with httpx.AsyncClient(base_url=web.url, timeout=60, limits=limits) as http:
        for path, headers, status in (
            ("/api/sinks/1/dead-letters/discard", bad, 401),
            ("/api/sinks/0/dead-letters/discard", good, 422),
            ("/api/no-such-route", good, 404),
            ("/api/devices", good, 413 if size > 1024 * 1024 else 422),
        ):
            r = await http.post(path, content=body, headers=headers)
            assert r.status_code == status, (path, r.text)
            r = await http.get("/api/me", headers=good)  # on the same connection
            assert r.status_code == 200, r.text
