"""Times without a time zone: a date alone is midnight in the client's time zone; a
date-time without an offset is refused with an error that says one is needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from harness import Web

from hub.fix import PositionFix
from hub.positions import IngestItem

ZONE = "America/Guatemala"  # UTC-6 all year
MIDNIGHT = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # 2026-03-01 00:00 in Guatemala
RULE = {"name": "keys", "type": "ignitionOn"}


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def around_midnight(web: Web, client: str = "a") -> int:
    """A device of ``client`` with fixes an hour before and an hour after 2026-03-01
    00:00 in Guatemala, the second one switching the ignition on."""
    dev = web.device(client, name="Van")
    await web.hub.pipeline.submit(
        [
            IngestItem(
                dev, None, PositionFix(MIDNIGHT - timedelta(hours=1), 14.6, -90.5, ignition=False)
            ),
            IngestItem(
                dev, None, PositionFix(MIDNIGHT + timedelta(hours=1), 14.6, -90.5, ignition=True)
            ),
        ]
    )
    return dev


@pytest.fixture
async def guatemala(web: Web) -> Web:
    r = await web.patch("admin", f"/api/clients/{web.clients['a']}", json={"timezone": ZONE})
    assert r.status_code == 200, r.text
    return web


async def test_a_date_is_midnight_in_the_clients_zone_for_history(guatemala: Web) -> None:
    web = guatemala
    dev = await around_midnight(web)
    path = f"/api/devices/{dev}/positions"
    r = await web.get("a_view", path, params={"from": "2026-03-01"})
    assert [p["fix_time"] for p in r.json()["positions"]] == ["2026-03-01T07:00:00Z"]
    r = await web.get("a_view", path, params={"to": "2026-03-01"})
    assert [p["fix_time"] for p in r.json()["positions"]] == ["2026-03-01T05:00:00Z"]
    r = await web.get("a_view", path, params={"from": "2026-03-01", "format": "csv"})
    assert r.text.count("\n") == 2  # the header and one row
    # the administrator reading a device of client A: still A's zone
    r = await web.get("admin", path, params={"from": "2026-03-01", "to": "2026-03-02"})
    assert len(r.json()["positions"]) == 1
    err = error(
        await web.get("a_view", path, params={"from": "2026-03-02", "to": "2026-03-01"}), 400
    )
    assert err["field"] == "to"


@pytest.mark.parametrize(
    "value", ["2026-03-01T08:00", "2026-03-01T08:00:00", "2026-03-01 08:00:00"]
)
async def test_a_date_time_without_an_offset_is_refused(web: Web, value: str) -> None:
    dev = web.device("a")
    for path, name in (
        (f"/api/devices/{dev}/positions", "from"),
        (f"/api/devices/{dev}/positions", "to"),
        ("/api/positions", "since"),
        ("/api/alerts", "from"),
    ):
        err = error(await web.get("a_view", path, params={name: value}), 400)
        assert err["field"] == name
        assert "no offset" in err["message"] and "2026-03-01" in err["message"], err


async def test_dates_in_positions_since_and_alerts(guatemala: Web) -> None:
    web = guatemala
    r = await web.post("a_mgr", "/api/rules", json=RULE)
    assert r.status_code == 201, r.text
    dev = await around_midnight(web)
    since = {"since": "2026-03-01"}
    r = await web.get("a_view", "/api/positions", params=since)
    assert [p["fix_time"] for p in r.json()["positions"]] == ["2026-03-01T07:00:00Z"]
    r = await web.get("admin", "/api/positions", params={**since, "client_id": web.clients["a"]})
    assert len(r.json()["positions"]) == 1
    r = await web.get("admin", "/api/positions", params=since)  # every client: UTC
    assert len(r.json()["positions"]) == 2

    (alert,) = (await web.get("a_view", "/api/alerts")).json()["alerts"]
    assert alert["device_id"] == dev and alert["fix_time"] == "2026-03-01T07:00:00Z"
    r = await web.get("a_view", "/api/alerts", params={"from": "2026-03-01", "to": "2026-03-02"})
    assert [a["id"] for a in r.json()["alerts"]] == [alert["id"]]
    r = await web.get("a_view", "/api/alerts", params={"to": "2026-03-01"})
    assert r.json()["alerts"] == []
    r = await web.get("a_view", "/api/alerts", params={"from": "2026-03-01T08:00:00+01:00"})
    assert len(r.json()["alerts"]) == 1  # offsets still work, with + written out or not
    r = await web.get("a_view", "/api/alerts?from=2026-03-01T08:00:00+01:00")
    assert r.status_code == 200 and len(r.json()["alerts"]) == 1


async def test_dates_in_a_replay_body(guatemala: Web) -> None:
    web = guatemala
    dev = await around_midnight(web)
    body = {
        "client_id": web.clients["a"],
        "name": "Relay",
        "kind": "webhook",
        "format": "gpshub-locations",
        "settings": {"url": "https://receiver.example/hook"},
        "enabled": False,
    }
    r = await web.post("admin", "/api/sinks", json=body)
    assert r.status_code == 201, r.text
    path = f"/api/sinks/{r.json()['id']}/replay"
    r = await web.post("admin", path, json={"from": "2026-03-01", "to": "2026-03-02"})
    assert r.status_code == 200 and r.json() == {"queued": 1}, r.text
    r = await web.post("admin", path, json={"from": "2026-02-28", "to": "2026-03-01"})
    assert r.json() == {"queued": 1}
    err = error(
        await web.post("admin", path, json={"from": "2026-03-01T00:00", "to": "2026-03-02"}), 422
    )
    assert err["field"] == "from" and "no offset" in err["message"]
    err = error(
        await web.post(
            "admin", path, json={"from": "0001-01-01T00:00:00+05:00", "to": "2026-03-02"}
        ),
        422,
    )
    assert err["field"] == "from"
    assert dev


async def test_the_openapi_document_says_so(web: Web) -> None:
    doc = (await web.get(None, "/openapi.json")).json()
    (param,) = [
        p
        for p in doc["paths"]["/api/devices/{id}/positions"]["get"]["parameters"]
        if p["name"] == "from"
    ]
    formats = {s.get("format") for s in param["schema"]["anyOf"]} - {None}
    assert formats == {"date-time", "date"} and "client's time zone" in param["description"]
