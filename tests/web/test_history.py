"""Position history: cursor paging, time ranges, CSV and GeoJSON downloads, "since"."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from harness import T0, Web

from hub.web import api_history


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def pages(web: Web, who: str, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    out = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await web.get(who, path, params=query)
        assert r.status_code == 200, r.text
        out.append(r.json()["positions"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def test_history_pages_with_a_cursor(web: Web) -> None:
    device = web.device("a")
    await web.write_positions(device, 25)
    path = f"/api/devices/{device}/positions"
    got = await pages(web, "a_view", path, limit=10)
    assert [len(p) for p in got] == [10, 10, 5]
    times = [p["fix_time"] for page in got for p in page]
    assert times == sorted(times) and len(set(times)) == 25
    assert times[0] == "2026-03-01T12:00:00Z"
    first = got[0][0]
    assert first["device_id"] == device and first["lat"] == 14.6 and first["lon"] == -90.5
    assert "raw" not in first

    # [from, to): from is inclusive, to exclusive; offsets are understood
    r = await web.get(
        "a_view",
        path,
        params={"from": "2026-03-01T13:05:00+01:00", "to": "2026-03-01T12:10:00Z"},
    )
    times = [p["fix_time"] for p in r.json()["positions"]]
    assert times == [f"2026-03-01T12:{m:02d}:00Z" for m in range(5, 10)]
    # a "+" left unencoded in the query string arrives as a space: still understood
    r = await web.http.get(f"{path}?from=2026-03-01T13:20:00+01:00", headers=web.headers("a_view"))
    assert len(r.json()["positions"]) == 5
    error(await web.get("b_mgr", path), 404)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-03-01T12:00:00"}, "from"),  # no offset: ambiguous
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"format": "xml"}, "format"),
    ],
)
async def test_bad_parameters_are_named(web: Web, params: dict[str, str], field: str) -> None:
    device = web.device("a")
    err = error(await web.get("a_view", f"/api/devices/{device}/positions", params=params), 400)
    assert err["field"] == field and err["code"] == "bad_request"


async def test_csv_export(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_history, "EXPORT_PAGE", 4)  # several pages are streamed
    device = web.device("a", name='=HYPERLINK("http://evil.example","click")')
    await web.write_positions(device, 10, sensors={"note": "@SUM(1)", "temp": -3.5})
    r = await web.get(
        "a_view", f"/api/devices/{device}/positions", params={"format": "csv", "limit": 2}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="device-{device}-positions.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 10  # the whole range, whatever the limit
    assert list(rows[0]) == list(api_history.CSV_COLUMNS)
    first = rows[0]
    assert first["device_name"].startswith("'=HYPERLINK")  # a formula no more
    assert first["lon"] == "-90.5"  # negative numbers stay numbers
    assert float(rows[9]["lat"]) == pytest.approx(14.609)
    assert first["fix_time"] == "2026-03-01T12:00:00Z"
    assert json.loads(first["sensors"]) == {"note": "@SUM(1)", "temp": -3.5}
    assert first["valid"] == "true" and first["ignition"] == ""


async def test_csv_of_an_empty_range_has_a_header(web: Web) -> None:
    device = web.device("a")
    r = await web.get("a_view", f"/api/devices/{device}/positions", params={"format": "csv"})
    assert r.text.strip() == ",".join(api_history.CSV_COLUMNS)


async def test_geojson_export(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_history, "EXPORT_PAGE", 3)
    device = web.device("a", name="Truck")
    await web.write_positions(device, 7, altitude_m=1500.0)
    r = await web.get(
        "a_view",
        f"/api/devices/{device}/positions",
        params={"format": "geojson", "from": "2026-03-01T12:01:00Z"},
    )
    assert r.headers["content-type"].startswith("application/geo+json")
    assert 'filename="device-' in r.headers["content-disposition"]
    doc = json.loads(r.text)
    assert doc["type"] == "FeatureCollection"
    features = doc["features"]
    assert len(features) == 6
    first = features[0]
    assert first["type"] == "Feature"
    assert first["geometry"]["type"] == "Point"
    assert first["geometry"]["coordinates"] == pytest.approx([-90.501, 14.601, 1500.0])
    assert first["properties"]["fix_time"] == "2026-03-01T12:01:00Z"
    assert first["properties"]["device_name"] == "Truck"
    assert "lat" not in first["properties"]

    empty = web.device("a", name="Empty")
    r = await web.get("a_view", f"/api/devices/{empty}/positions", params={"format": "geojson"})
    assert json.loads(r.text) == {"type": "FeatureCollection", "features": []}


async def test_positions_since(web: Web) -> None:
    d1 = web.device("a", name="one")
    d2 = web.device("a", name="two")
    theirs = web.device("b", name="theirs")
    await web.write_positions(d1, 5)
    await web.write_positions(d2, 5, start=T0 + timedelta(seconds=30))
    await web.write_positions(theirs, 5)

    since = {"since": "2026-03-01T12:01:00Z"}
    got = await pages(web, "a_view", "/api/positions", limit=3, **since)
    flat = [p for page in got for p in page]
    assert {p["device_id"] for p in flat} == {d1, d2}
    assert len(flat) == 4 + 4  # 12:01..12:04 and 12:01:30..12:04:30
    assert [p["id"] for p in flat] == sorted(p["id"] for p in flat)  # arrival order

    r = await web.get("b_mgr", "/api/positions", params=since)
    assert {p["device_id"] for p in r.json()["positions"]} == {theirs}
    r = await web.get("admin", "/api/positions", params={**since, "limit": 100})
    assert len(r.json()["positions"]) == 12
    r = await web.get("admin", "/api/positions", params={**since, "client_id": web.clients["b"]})
    assert {p["device_id"] for p in r.json()["positions"]} == {theirs}
    r = await web.get("a_view", "/api/positions", params={**since, "client_id": web.clients["b"]})
    assert error(r, 403)["field"] == "client_id"

    # resume later from where we stopped
    r = await web.get("a_view", "/api/positions", params={**since, "limit": 100})
    resume = r.json()["resume_cursor"]
    await web.write_positions(d1, 1, start=T0 + timedelta(hours=2))
    await web.write_positions(d2, 1, start=T0 + timedelta(minutes=2, seconds=10))  # late
    r = await web.get("a_view", "/api/positions", params={"cursor": resume})
    assert [p["fix_time"] for p in r.json()["positions"]] == [
        "2026-03-01T14:00:00Z",
        "2026-03-01T12:02:10Z",  # arrived after the cursor, though older: not missed
    ]
    assert r.json()["next_cursor"] is None

    assert error(await web.get("a_view", "/api/positions"), 400)["field"] == "since"
    r = await web.get("a_view", "/api/positions", params={"since": "last week"})
    assert error(r, 400)["field"] == "since"
