"""Source kinds and connections: CRUD, write-only credentials, tests, browse and import."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from harness import Web

from hub.models import ConnectionState
from hub.web import routing

CREDS = {"server_url": "https://gps.example", "username": "ann", "password": "hunter22"}


async def create(web: Web, who: str = "a_mgr", **body: Any) -> Any:
    payload = {"kind": "fake", "label": "Fleet", "credentials": CREDS, **body}
    r = await web.post(who, "/api/connections", json=payload)
    assert r.status_code == 201, r.text
    return r.json()


def error(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


async def count_connections(web: Web) -> int:
    return len(web.hub.store.list_connections())


# -- kinds -------------------------------------------------------------------------------
async def test_source_kinds_describe_their_forms(web: Web) -> None:
    r = await web.get("a_view", "/api/source-kinds")
    assert r.status_code == 200
    kinds = {k["kind"]: k for k in r.json()["kinds"]}
    assert set(kinds) == {"fake", "plain"}
    fake = kinds["fake"]
    assert fake["group"] == "External Integrations"
    assert fake["supports_browse"] is True
    assert fake["cadence"]["active_seconds"] == 3600.0
    assert fake["plugin"] == "testsource"
    fields = {f["name"]: f for f in fake["credentials"]}
    assert fields["server_url"] == {
        "name": "server_url",
        "label": "Server URL",
        "required": False,
        "secret": False,
        "description": "Where the cloud is.",
        "default": "https://fake.example",
        "type": "string",
    }
    assert fields["username"]["required"] is True
    assert fields["password"]["secret"] is True and fields["password"]["default"] is None
    assert [o["name"] for o in fake["options"]] == ["units"]
    plain = kinds["plain"]
    assert plain["supports_browse"] is False
    assert "no device list" in plain["description"]

    r = await web.get("a_view", "/api/source-kinds/plain")
    assert r.json() == plain
    assert error(await web.get("a_view", "/api/source-kinds/nope"), 404)["code"] == "not_found"


# -- create, read, update, delete -------------------------------------------------------
async def test_create_shows_credentials_write_only(web: Web) -> None:
    conn = await create(web)
    assert conn["client_id"] == web.clients["a"]
    assert conn["credentials"] == {
        "server_url": {"set": True, "secret": False, "value": "https://gps.example"},
        "username": {"set": True, "secret": False, "value": "ann"},
        "password": {"set": True, "secret": True, "value": None},
    }
    assert conn["state"] == "new" and conn["enabled"] is True
    again = (await web.get("a_view", f"/api/connections/{conn['id']}")).json()
    polled = {
        "state",
        "state_message",
        "last_poll_at",
        "last_success_at",
        "next_poll_at",
        "updated_at",
    }
    assert {k: v for k, v in again.items() if k not in polled} == {
        k: v for k, v in conn.items() if k not in polled
    }
    listed = (await web.get("a_view", "/api/connections")).json()["connections"]
    assert [c["id"] for c in listed] == [conn["id"]]
    assert (await web.get("b_mgr", "/api/connections")).json()["connections"] == []
    saved = web.hub.store.get_connection(conn["id"])
    assert web.hub.store.connection_credentials(saved) == CREDS


async def test_admin_lists_every_client_or_one(web: Web) -> None:
    a = await create(web)
    b = await create(web, "b_mgr")
    everything = (await web.get("admin", "/api/connections")).json()["connections"]
    assert {c["id"] for c in everything} == {a["id"], b["id"]}
    r = await web.get("admin", "/api/connections", params={"client_id": web.clients["b"]})
    assert [c["id"] for c in r.json()["connections"]] == [b["id"]]
    r = await web.get("a_mgr", "/api/connections", params={"client_id": web.clients["b"]})
    assert error(r, 403)["field"] == "client_id"


@pytest.mark.parametrize(
    ("who", "body", "status", "field"),
    [
        ("a_mgr", {"kind": "nope"}, 422, "kind"),
        ("a_mgr", {"credentials": {**CREDS, "password": "x"}}, 422, "credentials.password"),
        ("a_mgr", {"credentials": {"password": "hunter22"}}, 422, "credentials.username"),
        ("a_mgr", {"credentials": {**CREDS, "pin": "1"}}, 422, "credentials.pin"),
        ("a_mgr", {"options": {"units": 3}}, 422, "options.units"),
        (
            "a_mgr",
            {"credentials": {**CREDS, "server_url": "gps.example"}},
            422,
            "credentials.server_url",
        ),
        # the outbound guard: no private, loopback or metadata addresses unless allowed
        (
            "a_mgr",
            {"credentials": {**CREDS, "server_url": "http://192.168.1.9"}},
            422,
            "credentials.server_url",
        ),
        (
            "a_mgr",
            {"credentials": {**CREDS, "server_url": "http://localhost:8082"}},
            422,
            "credentials.server_url",
        ),
        ("a_mgr", {"label": ""}, 422, "label"),
        ("a_mgr", {"surprise": 1}, 422, "surprise"),
        ("admin", {}, 422, "client_id"),
        ("admin", {"client_id": 99999}, 422, "client_id"),
        ("a_mgr", {"client_id": "b"}, 403, "client_id"),
    ],
)
async def test_a_refused_create_stores_nothing(
    web: Web, who: str, body: dict[str, Any], status: int, field: str
) -> None:
    if body.get("client_id") == "b":
        body = {**body, "client_id": web.clients["b"]}
    before = await count_connections(web)
    payload = {"kind": "fake", "label": "Fleet", "credentials": CREDS, **body}
    err = error(await web.post(who, "/api/connections", json=payload), status)
    assert err["field"] == field
    assert err["message"]
    assert await count_connections(web) == before
    assert not web.hub.runners


async def test_bad_json_and_missing_body(web: Web, monkeypatch: pytest.MonkeyPatch) -> None:
    r = await web.http.post(
        "/api/connections",
        content=b"{not json",
        headers={**web.headers("a_mgr"), "Content-Type": "application/json"},
    )
    assert error(r, 400)["code"] == "bad_json"
    assert error(await web.post("a_mgr", "/api/connections"), 422)["field"] == "body"
    assert error(await web.post("a_mgr", "/api/connections", json=[1]), 422)["field"] == "body"
    # over a lowered limit: a body of megabytes can outlast any write timeout on a busy
    # machine, since the server answers 413 before it has read it all
    monkeypatch.setattr(routing, "MAX_BODY_BYTES", 4096)
    big = {"kind": "fake", "label": "x" * 8192}
    e = error(await web.post("a_mgr", "/api/connections", json=big), 413)
    assert e["code"] == "too_large" and "4096" in e["message"]

    async def parts() -> AsyncIterator[bytes]:  # streamed: no Content-Length
        for part in (b'{"label": "', b"x" * 8192, b'"}'):
            yield part

    r = await web.http.post(
        "/api/connections",
        content=parts(),
        headers={**web.headers("a_mgr"), "Content-Type": "application/json"},
    )
    assert error(r, 413)["code"] == "too_large"
    assert web.hub.store.list_connections() == []


async def test_patch_merges_credentials(web: Web) -> None:
    conn = await create(web)
    path = f"/api/connections/{conn['id']}"
    r = await web.patch("a_mgr", path, json={"credentials": {"server_url": "https://new.example"}})
    assert r.status_code == 200, r.text
    assert r.json()["credentials"]["server_url"]["value"] == "https://new.example"
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved == {**CREDS, "server_url": "https://new.example"}

    # what the API shows can be sent back unchanged: the password stays
    shown = r.json()["credentials"]
    r = await web.patch("a_mgr", path, json={"credentials": shown, "label": "Renamed"})
    assert r.status_code == 200, r.text
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved["password"] == "hunter22" and r.json()["label"] == "Renamed"

    # a bad merged result changes nothing
    err = error(await web.patch("a_mgr", path, json={"credentials": {"password": "x"}}), 422)
    assert err["field"] == "credentials.password"
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved["password"] == "hunter22"

    r = await web.patch("a_mgr", path, json={"credentials": {"password": "correct horse"}})
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved["password"] == "correct horse"

    err = error(
        await web.patch("a_mgr", path, json={"credentials": {"server_url": "http://10.0.0.5"}}),
        422,
    )
    assert err["field"] == "credentials.server_url" and "private address" in err["message"]
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved["server_url"] == "https://new.example"

    r = await web.patch("a_mgr", path, json={"options": {"units": "imperial"}})
    assert r.json()["options"] == {"units": "imperial"}
    err = error(await web.patch("a_mgr", path, json={"options": {"speed": 1}}), 422)
    assert err["field"] == "options.speed"


async def test_changes_start_and_stop_the_runner(web: Web) -> None:
    runners = web.hub.runners
    conn = await create(web)
    cid = conn["id"]
    assert cid in runners
    first = runners[cid]

    r = await web.post("a_mgr", f"/api/connections/{cid}/disable")
    assert r.json()["enabled"] is False and r.json()["state"] == "disabled"
    assert r.json()["next_poll_at"] is None and r.json()["state_message"] is None
    assert cid not in runners
    status = (await web.get("a_view", f"/api/connections/{cid}/status")).json()
    assert status["running"] is False and status["state"] == "disabled"

    r = await web.post("a_mgr", f"/api/connections/{cid}/enable")
    assert r.json()["enabled"] is True
    assert cid in runners and runners[cid] is not first

    second = runners[cid]
    await web.patch(
        "a_mgr", f"/api/connections/{cid}", json={"credentials": {"password": "newpass"}}
    )
    assert cid in runners and runners[cid] is not second

    off = await create(web, enabled=False)
    assert off["id"] not in runners and off["state"] == "disabled"

    r = await web.delete("a_mgr", f"/api/connections/{cid}")
    assert r.status_code == 204
    assert cid not in runners
    assert error(await web.get("a_mgr", f"/api/connections/{cid}"), 404)["code"] == "not_found"


async def test_editing_a_bad_config_connection_restarts_it(web: Web) -> None:
    conn = await create(web)
    cid = conn["id"]
    await web.post("a_mgr", f"/api/connections/{cid}/disable")
    web.hub.store.update_connection(cid, enabled=True)
    web.hub.store.set_connection_status(cid, state=ConnectionState.BAD_CONFIG, last_error="bad")
    await web.hub.reload_connection(cid)
    assert cid not in web.hub.runners  # not polled until edited
    r = await web.patch("a_mgr", f"/api/connections/{cid}", json={"options": {"units": "metric"}})
    assert r.json()["state"] == "new"
    assert cid in web.hub.runners


# -- testing a connection ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("creds", "code", "field"),
    [
        ({"password": "wrong"}, "invalid_auth", None),
        ({"password": "named-wrong"}, "invalid_auth", "credentials.password"),
        ({"server_url": "https://down.example"}, "cannot_connect", None),
        ({"password": "slow"}, "rate_limited", None),
        ({"password": "bad-config"}, "bad_config", "credentials.server_url"),
        ({"password": "x"}, "bad_config", "credentials.password"),
        ({"server_url": "http://169.254.169.254"}, "bad_config", "credentials.server_url"),
        ({"password": "leak-S3CRET-MARKER"}, "update_failed", None),
        ({"password": "boom"}, "source_error", None),
    ],
)
async def test_test_connection_reports_each_failure(
    web: Web, creds: dict[str, str], code: str, field: str | None
) -> None:
    body = {"kind": "fake", "credentials": {**CREDS, **creds}}
    r = await web.post("a_mgr", "/api/connections/test", json=body)
    assert r.status_code == 200, r.text
    outcome = r.json()
    assert outcome["ok"] is False and outcome["summary"] is None
    assert outcome["error"]["code"] == code
    assert outcome["error"]["field"] == field
    assert outcome["error"]["message"]
    assert creds.get("password", "hunter22") not in r.text or creds.get("password") == "x"
    assert await count_connections(web) == 0

    conn = await create(web)
    r = await web.post("a_mgr", f"/api/connections/{conn['id']}/test", json={"credentials": creds})
    assert r.json()["error"]["code"] == code
    assert "S3CRET-MARKER" not in r.text


async def test_a_plugin_failure_is_a_clear_message_logged_once_with_its_traceback(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    body = {"kind": "fake", "credentials": {**CREDS, "password": "boom"}}
    r = await web.post("a_mgr", "/api/connections/test", json=body)
    assert r.status_code == 200, r.text
    detail = r.json()["error"]
    assert detail["code"] == "source_error"
    assert detail["message"].startswith("the plugin failed: RuntimeError: crashed on ")
    assert "boom" not in detail["message"] and "Traceback" not in r.text
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(logged) == 1
    text = logged[0].getMessage()
    assert "the plugin failed: RuntimeError" in text and "Traceback" in text
    assert "in check" in text  # where the plugin failed
    assert "boom" not in text

    caplog.clear()  # browsing fails the same way, as a 502
    conn = await create(web, credentials={**CREDS, "password": "boom"})
    err = error(await web.get("a_view", f"/api/connections/{conn['id']}/remote-devices"), 502)
    assert err["code"] == "source_error"
    assert err["message"].startswith("the plugin failed: RuntimeError: crashed on ")
    logged = [r for r in caplog.records if r.name == "hub.web" and r.levelno >= logging.ERROR]
    assert len(logged) == 1 and "boom" not in logged[0].getMessage()


async def test_a_test_connection_that_returns_nothing_is_an_error(web: Web) -> None:
    body = {"kind": "fake", "credentials": {**CREDS, "username": "silent"}}
    r = await web.post("a_mgr", "/api/connections/test", json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "ok": False,
        "summary": None,
        "error": {
            "code": "source_error",
            "message": "the plugin's test_connection returned nothing",
            "field": None,
        },
    }


async def test_test_connection_succeeds(web: Web) -> None:
    r = await web.post(
        "a_mgr", "/api/connections/test", json={"kind": "fake", "credentials": CREDS}
    )
    assert r.json() == {
        "ok": True,
        "summary": "Signed in to https://gps.example as ann: 3 devices",
        "error": None,
    }
    conn = await create(web)
    r = await web.post("a_mgr", f"/api/connections/{conn['id']}/test")
    assert r.json()["ok"] is True
    # overrides are for the test only
    r = await web.post(
        "a_mgr", f"/api/connections/{conn['id']}/test", json={"credentials": {"username": "bob"}}
    )
    assert "as bob" in r.json()["summary"]
    saved = web.hub.store.connection_credentials(web.hub.store.get_connection(conn["id"]))
    assert saved["username"] == "ann"
    err = error(await web.post("a_mgr", "/api/connections/test", json={"kind": "nope"}), 422)
    assert err["field"] == "kind"


# -- browse and import ------------------------------------------------------------------
async def test_browse_and_import_are_idempotent(web: Web) -> None:
    conn = await create(web)
    cid = conn["id"]
    r = await web.get("a_view", f"/api/connections/{cid}/remote-devices")
    assert r.status_code == 200, r.text
    remote = r.json()["devices"]
    assert [d["upstream_id"] for d in remote] == ["1001", "1002", "car three"]
    assert remote[0]["imei"] == "356938035643809" and remote[0]["imported_as"] is None

    r = await web.post("a_mgr", f"/api/connections/{cid}/import", json={"upstream_ids": ["1002"]})
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["existing"]) == (1, 0)

    r = await web.post("a_mgr", f"/api/connections/{cid}/import")
    body = r.json()
    assert (body["created"], body["existing"]) == (2, 1)
    by_upstream = {d["upstream_id"]: d for d in body["devices"]}
    assert by_upstream["1001"]["name"] == "Truck 1"
    assert by_upstream["1001"]["remote_id"] == "1001"
    assert by_upstream["1001"]["license_plate"] == "P-123"
    assert by_upstream["car three"]["remote_id"] is None  # spaces are not allowed
    assert all(d["connection_id"] == cid for d in body["devices"])

    r = await web.post("a_mgr", f"/api/connections/{cid}/import", json={})
    assert (r.json()["created"], r.json()["existing"]) == (0, 3)
    assert len(web.hub.store.list_devices(web.clients["a"])) == 3

    remote = (await web.get("a_view", f"/api/connections/{cid}/remote-devices")).json()["devices"]
    assert all(d["imported_as"] for d in remote)

    r = await web.post("a_mgr", f"/api/connections/{cid}/import", json={"upstream_ids": ["9"]})
    err = error(r, 422)
    assert err["field"] == "upstream_ids" and "'9'" in err["message"]


async def test_browse_not_supported(web: Web) -> None:
    r = await web.post(
        "a_mgr",
        "/api/connections",
        json={"kind": "plain", "label": "Feed", "credentials": {"api_key": "S3CRET-MARKER"}},
    )
    cid = r.json()["id"]
    assert r.json()["credentials"] == {"api_key": {"set": True, "secret": True, "value": None}}
    for r in (
        await web.get("a_view", f"/api/connections/{cid}/remote-devices"),
        await web.post("a_mgr", f"/api/connections/{cid}/import"),
    ):
        err = error(r, 400)
        assert err["code"] == "not_supported"
        assert "cannot list" in err["message"]


async def test_upstream_failures_while_browsing_are_502(web: Web) -> None:
    conn = await create(web, credentials={**CREDS, "password": "wrong"})
    err = error(await web.get("a_view", f"/api/connections/{conn['id']}/remote-devices"), 502)
    assert err["code"] == "invalid_auth"
    conn = await create(web, credentials={**CREDS, "server_url": "http://down.example"})
    err = error(await web.post("a_mgr", f"/api/connections/{conn['id']}/import"), 502)
    assert err["code"] == "cannot_connect"
    assert web.hub.store.list_devices() == []


# -- status -----------------------------------------------------------------------------
async def test_fixes_the_plugin_got_wrong_show_in_the_status(web: Web) -> None:
    conn = await create(web, credentials={**CREDS, "username": "sloppy"})
    cid = conn["id"]
    await web.post("a_mgr", f"/api/connections/{cid}/import")  # polled at once
    url = f"/api/connections/{cid}/status"
    with trio.fail_after(120):
        while (status := (await web.get("a_view", url)).json())["state"] != "ok":  # noqa: ASYNC110 - polls the API
            await trio.sleep(0.05)
    assert status["last_error"] is None
    assert re.fullmatch(
        r"polling 3 device\(s\); 3 fixes dropped since \d{4}-\d\d-\d\d \d\d:\d\d UTC: "
        r"device \S+: lat 123\.0 is not a latitude in \[-90, 90\]",
        status["state_message"],
    )
    shown = (await web.get("a_view", f"/api/connections/{cid}")).json()
    assert shown["state"] == "ok" and shown["state_message"] == status["state_message"]


async def test_status_of_connections(web: Web) -> None:
    conn = await create(web)
    cid = conn["id"]
    await web.post("a_mgr", f"/api/connections/{cid}/import")
    other = await create(web, "b_mgr")
    r = await web.get("a_view", f"/api/connections/{cid}/status")
    status = r.json()
    assert status["connection_id"] == cid and status["devices"] == 3
    assert status["running"] is True
    assert status["state"] in {"new", "ok"}
    assert status["positions_received"] == 0
    everything = (await web.get("admin", "/api/status")).json()["connections"]
    assert {s["connection_id"] for s in everything} == {cid, other["id"]}
    mine = (await web.get("a_view", "/api/status")).json()["connections"]
    assert [s["connection_id"] for s in mine] == [cid]
