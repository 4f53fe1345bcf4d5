"""Sinks through the API: kinds, CRUD, who may configure what, validation, write-only
secrets, secret rotation, dead letters and replay."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fakesource
import httpx
import pytest
import sqlalchemy as sa
from harness import ORIGIN, T0, Web, running_web

import gpshub_startrack_relay
from hub.config import Settings
from hub.core import Hub
from hub.models import dead_t, outbox_t, sinks_t
from hub.plugins import load_plugins
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.sink_store import Progress
from hub.store import Store
from hub.webhook import active_secrets

URL = "https://receiver.example/hook"
MARKER = "s3cr3t-marker"


def alerts_body(web: Web, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Alerts",
        "kind": "webhook",
        "format": "gpshub-alert",
        "settings": {"url": URL},
        **extra,
    }


def relay_body(web: Web, client: str = "a", **extra: Any) -> dict[str, Any]:
    return {
        "client_id": web.clients[client],
        "name": "Relay",
        "kind": "webhook",
        "format": "gpshub-locations",
        "settings": {"url": URL},
        "enabled": False,
        **extra,
    }


async def create(web: Web, who: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await web.post(who, "/api/sinks", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def stored_sinks(web: Web) -> int:
    return len(web.hub.store.sinks.list())


def startrack_hub(tmp_path: Path, **settings: Any) -> Hub:
    """The harness's hub plus the Startrack relay plugin (the harness loads no entry
    points)."""
    pm, infos = load_plugins(
        extra=[("testsource", fakesource), ("startrack_relay", gpshub_startrack_relay)],
        use_entry_points=False,
    )
    store = Store.open(f"sqlite:///{tmp_path}/t.db", SecretBox([SecretBox.generate_key().encode()]))
    hub = Hub(
        store,
        Registry.collect(pm, infos),
        infos,
        settings=Settings(data_dir=tmp_path, allowed_origins=(ORIGIN,), **settings),
    )
    hub.plugin_manager = pm
    return hub


# -- kinds -------------------------------------------------------------------------------
async def test_sink_kinds_describe_settings_and_formats(web: Web) -> None:
    r = await web.get("a_view", "/api/sink-kinds")
    assert r.status_code == 200, r.text
    kinds = {k["kind"]: k for k in r.json()["kinds"]}
    assert set(kinds) == {"webhook"}  # the harness registers no plugin sinks
    webhook = kinds["webhook"]
    assert webhook["title"] == "HTTP webhook"
    assert webhook["purpose"] is None and webhook["default_format"] is None
    assert webhook["settings"]["required"] == ["url"]
    assert set(webhook["settings"]["properties"]) == {"url", "timeout_s"}
    formats = {f["kind"]: f for f in webhook["formats"]}
    assert set(formats) == {"gpshub-alert", "gpshub-locations"}
    assert formats["gpshub-locations"]["purpose"] == "locations"
    assert formats["gpshub-locations"]["max_batch"] == 500
    assert formats["gpshub-alert"]["purpose"] == "alerts"
    assert formats["gpshub-alert"]["options"]["type"] == "object"


async def test_startrack_kinds_list_only_their_formats(tmp_path: Path) -> None:
    async with running_web(tmp_path, hub=startrack_hub(tmp_path)) as web:
        r = await web.get("a_view", "/api/sink-kinds")
        kinds = {k["kind"]: k for k in r.json()["kinds"]}
        assert set(kinds) == {"webhook", "startrack-relay", "startrack-alerts"}
        relay = kinds["startrack-relay"]
        assert relay["purpose"] == "locations"
        assert relay["default_format"] == "startrack-json1"
        assert [f["kind"] for f in relay["formats"]] == ["startrack-json1", "startrack-json2"]
        alerts = kinds["startrack-alerts"]
        assert [f["kind"] for f in alerts["formats"]] == ["startrack-alert"]
        assert set(alerts["formats"][0]["options"]["properties"]) == {"date_unit", "odometer_text"}
        assert "startrack-json2" in {f["kind"] for f in kinds["webhook"]["formats"]}


# -- CRUD --------------------------------------------------------------------------------
async def test_create_list_read_change_delete(web: Web) -> None:
    created = await create(
        web, "a_mgr", alerts_body(web, settings={"url": "HTTPS://Receiver.Example/hook"})
    )
    sink_id = created["id"]
    assert created["client_id"] == web.clients["a"]
    assert created["purpose"] == "alerts" and created["kind"] == "webhook"
    assert created["format"] == "gpshub-alert"
    assert created["settings"] == {"url": URL}  # normalised
    assert created["format_options"] == {}
    assert created["headers"] == [] and created["signing"] is False
    assert created["signing_secret"] is None
    assert created["enabled"] is True and created["state"] == "new"
    assert created["failing_after_s"] is None and created["next_probe_at"] is None
    assert created["stats"] == {"pending": 0, "delivered": 0, "failed": 0, "dead_letters": 0}

    listed = (await web.get("a_view", "/api/sinks")).json()["sinks"]
    assert [s["id"] for s in listed] == [sink_id]
    assert "signing_secret" not in listed[0]
    one = (await web.get("a_view", f"/api/sinks/{sink_id}")).json()
    assert "signing_secret" not in one
    assert one["name"] == "Alerts"

    r = await web.patch(
        "a_mgr",
        f"/api/sinks/{sink_id}",
        json={
            "name": "Renamed",
            "settings": {"timeout_s": 5},
            "enabled": False,
            "failing_after_s": 120,
        },
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert changed["name"] == "Renamed"
    assert changed["settings"] == {"url": URL, "timeout_s": 5.0}  # merged
    assert changed["enabled"] is False and changed["state"] == "paused"
    assert changed["failing_after_s"] == 120
    assert changed["signing_secret"] is None

    r = await web.patch(
        "a_mgr",
        f"/api/sinks/{sink_id}",
        json={"settings": {"timeout_s": None}, "failing_after_s": None},
    )
    assert r.json()["settings"] == {"url": URL}  # null removes a key: its default applies
    assert r.json()["failing_after_s"] is None
    assert r.json()["name"] == "Renamed"

    r = await web.delete("a_mgr", f"/api/sinks/{sink_id}")
    assert r.status_code == 204, r.text
    assert (await web.get("a_mgr", f"/api/sinks/{sink_id}")).status_code == 404
    assert stored_sinks(web) == 0


async def test_a_startrack_kind_uses_its_default_format(tmp_path: Path) -> None:
    async with running_web(tmp_path, hub=startrack_hub(tmp_path)) as web:
        body = {"name": "Alerts", "kind": "startrack-alerts", "settings": {"url": URL}}
        created = await create(web, "a_mgr", {**body, "format_options": {"date_unit": "s"}})
        assert created["format"] == "startrack-alert" and created["purpose"] == "alerts"
        assert created["format_options"] == {"date_unit": "s"}
        no_format = {**relay_body(web), "kind": "startrack-relay"}
        del no_format["format"]
        relay = await create(web, "admin", no_format)
        assert relay["format"] == "startrack-json1" and relay["purpose"] == "locations"
        relay_json2 = await create(web, "admin", {**no_format, "format": "startrack-json2"})
        assert relay_json2["format"] == "startrack-json2"
        assert relay_json2["purpose"] == "locations"


async def test_a_startrack_relay_warns_about_devices_without_a_usable_imei(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_web(tmp_path, hub=startrack_hub(tmp_path)) as web:
        good = web.device("a", "good", imei="358741050302485")
        twin = web.device("a", "twin", imei="358741050302485")
        bare = web.device("a", "bare")
        web.device("b", "elsewhere", imei="12")  # another client's: not this relay's
        relay = {**relay_body(web), "kind": "startrack-relay", "format": "startrack-json2"}
        with caplog.at_level(logging.WARNING, logger="hub.web"):
            created = await create(web, "admin", relay)
        assert created["warnings"] == [
            f"device {twin} (twin): another device with a lower id has the same IMEI; "
            f"its device_id is {10**15 + twin}",
            f"device {bare} (bare): no IMEI; its device_id is {10**15 + bare}",
        ]
        logged = [r.getMessage() for r in caplog.records if "device_id" in r.getMessage()]
        assert len(logged) == 1 and f"device {twin} (twin)" in logged[0]
        # fixed: the answer to the next change says nothing more
        web.hub.store.update_device(twin, imei="358741050302486")
        web.hub.store.update_device(bare, imei="358741050302487")
        r = await web.patch("admin", f"/api/sinks/{created['id']}", json={"name": "Relay 2"})
        assert r.status_code == 200, r.text
        assert r.json()["warnings"] == []
        # a gpshub-format relay and an alerts webhook have nothing to say
        web.hub.store.update_device(good, imei=None)
        plain = await create(web, "admin", relay_body(web))
        assert plain["warnings"] == []
        alerts = {"name": "Alerts", "kind": "startrack-alerts", "settings": {"url": URL}}
        assert (await create(web, "a_mgr", alerts))["warnings"] == []


# -- who may configure what --------------------------------------------------------------
async def test_who_may_configure_what(web: Web) -> None:
    # A's manager: the alerts webhook yes, a location relay no
    alerts = await create(web, "a_mgr", alerts_body(web, enabled=False))
    e = error(await web.post("a_mgr", "/api/sinks", json=relay_body(web)), 403)
    assert e["code"] == "forbidden"
    assert "system administrator" in e["message"]
    assert stored_sinks(web) == 1
    # viewers read, never write
    e = error(await web.post("a_view", "/api/sinks", json=alerts_body(web)), 403)
    assert (await web.get("a_view", f"/api/sinks/{alerts['id']}")).status_code == 200
    # the administrator names the client
    e = error(await web.post("admin", "/api/sinks", json=alerts_body(web)), 422)
    assert e["field"] == "client_id"
    relay = await create(web, "admin", relay_body(web))
    assert relay["purpose"] == "locations"

    # A's manager reads the relay but may not change it
    rid = relay["id"]
    assert (await web.get("a_mgr", f"/api/sinks/{rid}")).status_code == 200
    for method, path, body in (
        ("PATCH", f"/api/sinks/{rid}", {"name": "mine now"}),
        ("DELETE", f"/api/sinks/{rid}", None),
        ("POST", f"/api/sinks/{rid}/rotate-secret", None),
        ("POST", f"/api/sinks/{rid}/dead-letters/resend", {}),
        ("POST", f"/api/sinks/{rid}/dead-letters/discard", {}),
        (
            "POST",
            f"/api/sinks/{rid}/replay",
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"},
        ),
    ):
        r = await web.call("a_mgr", method, path, json=body)
        assert r.status_code == 403, (method, path, r.text)
        assert "system administrator" in r.json()["error"]["message"]
    assert web.hub.store.sinks.get(rid).name == "Relay"
    r = await web.patch("admin", f"/api/sinks/{rid}", json={"name": "Relay 2"})
    assert r.status_code == 200, r.text

    # B sees none of A's sinks
    assert (await web.get("b_mgr", "/api/sinks")).json()["sinks"] == []
    for sid in (alerts["id"], rid):
        assert error(await web.get("b_mgr", f"/api/sinks/{sid}"), 404)["code"] == "not_found"
        error(await web.patch("b_mgr", f"/api/sinks/{sid}", json={"name": "x"}), 404)
        error(await web.get("b_mgr", f"/api/sinks/{sid}/dead-letters"), 404)
    e = error(
        await web.post("b_mgr", "/api/sinks", json=alerts_body(web, client_id=web.clients["a"])),
        403,
    )
    e = error(await web.get("a_mgr", "/api/sinks", params={"client_id": web.clients["b"]}), 403)
    assert e["field"] == "client_id"
    assert len((await web.get("admin", "/api/sinks")).json()["sinks"]) == 2
    only_b = await web.get("admin", "/api/sinks", params={"client_id": web.clients["b"]})
    assert only_b.json()["sinks"] == []

    # B's manager may set up B's own alerts webhook
    b_alerts = await create(web, "b_mgr", alerts_body(web, enabled=False))
    assert b_alerts["client_id"] == web.clients["b"]


async def test_a_client_has_one_alerts_webhook(web: Web) -> None:
    await create(web, "a_mgr", alerts_body(web, enabled=False))
    e = error(await web.post("a_mgr", "/api/sinks", json=alerts_body(web, name="Other")), 409)
    assert e["code"] == "conflict" and e["field"] == "kind"
    e = error(
        await web.post("admin", "/api/sinks", json=alerts_body(web, client_id=web.clients["a"])),
        409,
    )
    assert stored_sinks(web) == 1
    # a client may have several location relays
    await create(web, "admin", relay_body(web))
    await create(web, "admin", relay_body(web, name="Relay 2"))
    assert stored_sinks(web) == 3


# -- validation --------------------------------------------------------------------------
async def test_refused_configurations_name_the_field_and_store_nothing(web: Web) -> None:
    many = {f"X-H{i}": "v" for i in range(21)}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"settings": {"url": "ftp://receiver.example/"}}, "settings.url"),
        ({"settings": {"url": "http://10.0.0.1/"}}, "settings.url"),
        ({"settings": {"url": "http://127.0.0.1:8080/"}}, "settings.url"),
        ({"settings": {"url": "http://localhost/"}}, "settings.url"),
        ({"settings": {"url": "https://user:pw@receiver.example/"}}, "settings.url"),
        ({"settings": {}}, "settings.url"),
        ({"settings": {"url": URL, "timeout_s": 0}}, "settings.timeout_s"),
        ({"settings": {"url": URL, "verify": False}}, "settings.verify"),
        ({"kind": "carrier-pigeon"}, "kind"),
        ({"format": None}, "format"),
        ({"format": "morse"}, "format"),
        ({"format_options": {"pretty": True}}, "format_options.pretty"),
        ({"headers": {"Content-Type": "text/plain"}}, "headers.Content-Type"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "headers.webhook-signature"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name"),
        ({"headers": {"X-Evil": "a\r\nHost: evil"}}, "headers.X-Evil"),
        ({"headers": {"X-Long": "x" * 4097}}, "headers.X-Long"),
        ({"headers": {"X-Num": 5}}, "headers.X-Num"),
        ({"headers": {"X-A": "1", "x-a": "2"}}, "headers.x-a"),
        ({"headers": many}, "headers"),
        ({"failing_after_s": 10}, "failing_after_s"),
        ({"name": ""}, "name"),
        ({"surprise": 1}, "surprise"),
    ]
    for override, field in cases:
        r = await web.post("a_mgr", "/api/sinks", json=alerts_body(web, **override))
        e = error(r, 422)
        assert e["field"] == field, (override, e)
    assert stored_sinks(web) == 0
    # a refused header value is never quoted back
    r = await web.post(
        "a_mgr", "/api/sinks", json=alerts_body(web, headers={"X-Evil": f"{MARKER}\n"})
    )
    assert MARKER not in r.text
    # a good one, to be sure the cases above failed for their own reason only
    ok = await create(
        web, "a_mgr", alerts_body(web, headers={"Authorization": "  Bearer x  ", "X-Tab": "a\tb"})
    )
    secrets = web.hub.store.sinks.secrets_of(web.hub.store.sinks.get(ok["id"]))
    assert secrets["headers"] == {"Authorization": "Bearer x", "X-Tab": "a\tb"}


async def test_startrack_validation(tmp_path: Path) -> None:
    hub = startrack_hub(tmp_path, outbound_allow_networks=("10.0.0.0/8",))
    async with running_web(tmp_path, hub=hub) as web:
        base = {"name": "Alerts", "kind": "startrack-alerts", "settings": {"url": URL}}
        for override, field in (
            ({"format": "startrack-json1"}, "format"),
            ({"format": "gpshub-alert"}, "format"),
            ({"format_options": {"date_unit": "minutes"}}, "format_options.date_unit"),
            ({"format_options": {"odometer_text": "maybe"}}, "format_options.odometer_text"),
        ):
            e = error(await web.post("a_mgr", "/api/sinks", json={**base, **override}), 422)
            assert e["field"] == field, (override, e)
        # a relay kind with an alerts format: refused (and the purpose decides access later)
        e = error(
            await web.post(
                "admin",
                "/api/sinks",
                json={**relay_body(web), "kind": "startrack-relay", "format": "gpshub-alert"},
            ),
            422,
        )
        assert e["field"] == "format"
        assert stored_sinks(web) == 0
        # the administrator allowed 10.0.0.0/8: a receiver there is accepted
        ok = await create(web, "a_mgr", {**base, "settings": {"url": "http://10.0.0.1/alerts"}})
        assert ok["settings"]["url"] == "http://10.0.0.1/alerts"
        # changing the format to another purpose is refused
        e = error(
            await web.patch("a_mgr", f"/api/sinks/{ok['id']}", json={"format": "startrack-json1"}),
            422,
        )
        assert e["field"] == "format"


async def test_a_refused_change_changes_nothing(web: Web) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, headers={"X-Keep": "1"}, enabled=False))
    path = f"/api/sinks/{sink['id']}"
    for body, field in (
        ({"name": "New", "settings": {"url": "http://192.168.1.1/"}}, "settings.url"),
        ({"name": "New", "settings": {"timeout_s": 100}}, "settings.timeout_s"),
        ({"name": "New", "format": "gpshub-locations"}, "format"),
        ({"name": "New", "format": "morse"}, "format"),
        ({"name": "New", "format_options": {"x": 1}}, "format_options.x"),
        ({"name": "New", "headers": {"Host": "evil.example"}}, "headers.Host"),
        ({"name": "New", "failing_after_s": 59}, "failing_after_s"),
        ({"kind": "webhook"}, "kind"),
    ):
        e = error(await web.patch("a_mgr", path, json=body), 422)
        assert e["field"] == field, (body, e)
    row = web.hub.store.sinks.get(sink["id"])
    assert row.name == "Alerts" and row.settings == {"url": URL}
    assert web.hub.store.sinks.secrets_of(row) == {"headers": {"X-Keep": "1"}}


# -- secrets -----------------------------------------------------------------------------
def _put_dead_letters(
    web: Web, sink_id: int, count: int, *, kind: str = "alert", **fields: Any
) -> list[int]:
    """Outbox rows and a dead letter for each, straight through the engine, and the
    sink's cursor past them (as its worker leaves it)."""
    fields = {"error": "HTTP 400", "excerpt": "refused", **fields}
    ids = []
    with web.hub.store.engine.begin() as conn:
        for i in range(count):
            outbox_id = conn.execute(
                sa.insert(outbox_t)
                .values(
                    client_id=web.clients["a"],
                    kind=kind,
                    payload={"eventId": 1000 + i},
                    created_at=T0,
                )
                .returning(outbox_t.c.id)
            ).scalar_one()
            ids.append(
                conn.execute(
                    sa.insert(dead_t)
                    .values(
                        sink_id=sink_id,
                        outbox_id=outbox_id,
                        delivery_id=f"msg_{outbox_id}",
                        attempts=1,
                        status=400,
                        created_at=T0,
                        **fields,
                    )
                    .returning(dead_t.c.id)
                ).scalar_one()
            )
        conn.execute(sa.update(sinks_t).where(sinks_t.c.id == sink_id).values(cursor=outbox_id))
    return ids


async def test_secrets_never_leave_the_hub(web: Web) -> None:
    body = alerts_body(
        web,
        headers={"Authorization": f"Bearer {MARKER}", "X-Tenant": "acme"},
        signing=True,
        enabled=False,
    )
    created = await create(web, "a_mgr", body)
    secret = created["signing_secret"]
    assert secret.startswith("whsec_")
    assert created["headers"] == ["Authorization", "X-Tenant"]
    assert created["signing"] is True
    assert MARKER not in str(created)
    sid = created["id"]
    row = web.hub.store.sinks.get(sid)
    stored = web.hub.store.sinks.secrets_of(row)
    assert stored["headers"]["Authorization"] == f"Bearer {MARKER}"
    assert stored["signing"] == [{"secret": secret, "until": None}]
    assert MARKER not in row.secrets and secret not in row.secrets  # encrypted at rest

    # texts that may quote the request: a receiver echoing the headers, an error
    _put_dead_letters(web, sid, 1, **{"excerpt": f"you sent Authorization: Bearer {MARKER}"})
    with web.hub.store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE sinks SET last_error = :e WHERE id = :i"),
            {"e": f"HTTP 401: bad token Bearer {MARKER} / {secret}", "i": sid},
        )

    answers = []
    for who in ("admin", "a_mgr", "a_view"):
        answers.append(await web.get(who, "/api/sinks"))
        answers.append(await web.get(who, f"/api/sinks/{sid}"))
        answers.append(await web.get(who, f"/api/sinks/{sid}/dead-letters"))
    answers.append(await web.patch("a_mgr", f"/api/sinks/{sid}", json={"name": "Renamed"}))
    answers.append(await web.get("admin", "/openapi.json"))
    for r in answers:
        assert r.status_code == 200, r.text
        assert MARKER not in r.text, r.request.url
        assert secret not in r.text, r.request.url
    one = answers[1].json()
    assert one["headers"] == ["Authorization", "X-Tenant"] and one["signing"] is True
    assert "[redacted]" in one["last_error"]
    assert "[redacted]" in answers[2].json()["dead_letters"][0]["excerpt"]


async def test_changing_headers_and_signing(web: Web) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, headers={"X-A": "1"}, enabled=False))
    path = f"/api/sinks/{sink['id']}"
    sinks = web.hub.store.sinks

    def secrets() -> dict[str, Any]:
        return sinks.secrets_of(sinks.get(sink["id"]))

    r = await web.patch("a_mgr", path, json={"headers": {"X-B": "2"}})
    assert r.json()["headers"] == ["X-B"]
    assert secrets() == {"headers": {"X-B": "2"}}
    r = await web.patch("a_mgr", path, json={"signing": True})
    first = r.json()["signing_secret"]
    assert first.startswith("whsec_") and r.json()["signing"] is True
    assert secrets() == {"headers": {"X-B": "2"}, "signing": [{"secret": first, "until": None}]}
    r = await web.patch("a_mgr", path, json={"signing": True})  # signs already: no new secret
    assert r.json()["signing_secret"] is None
    assert secrets()["signing"] == [{"secret": first, "until": None}]
    r = await web.patch("a_mgr", path, json={"headers": {}})
    assert r.json()["headers"] == [] and r.json()["signing"] is True
    assert secrets() == {"signing": [{"secret": first, "until": None}]}
    r = await web.patch("a_mgr", path, json={"signing": False})
    assert r.json()["signing"] is False and r.json()["signing_secret"] is None
    assert secrets() == {}


async def test_rotating_the_signing_secret(web: Web) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, signing=True, enabled=False))
    old = sink["signing_secret"]
    before = datetime.now(UTC)
    r = await web.post("a_mgr", f"/api/sinks/{sink['id']}/rotate-secret")
    assert r.status_code == 200, r.text
    new = r.json()["signing_secret"]
    assert new.startswith("whsec_") and new != old
    sinks = web.hub.store.sinks
    signing = sinks.secrets_of(sinks.get(sink["id"]))["signing"]
    assert [s["secret"] for s in signing] == [new, old]
    assert signing[0]["until"] is None
    until = datetime.fromisoformat(signing[1]["until"])
    assert (
        before + timedelta(hours=23, minutes=59) < until <= datetime.now(UTC) + timedelta(hours=24)
    )
    # both sign meanwhile; after a day only the new one
    assert active_secrets(signing, datetime.now(UTC)) == [new, old]
    assert active_secrets(signing, until + timedelta(seconds=1)) == [new]
    # another rotation keeps the oldest one's deadline, not a fresh day
    newest = (await web.post("a_mgr", f"/api/sinks/{sink['id']}/rotate-secret")).json()
    signing2 = sinks.secrets_of(sinks.get(sink["id"]))["signing"]
    assert [s["secret"] for s in signing2] == [newest["signing_secret"], new, old]
    assert signing2[2]["until"] == signing[1]["until"]
    # the answers never show it again
    assert newest["signing_secret"] not in (await web.get("a_mgr", "/api/sinks")).text

    unsigned = await create(web, "admin", relay_body(web))
    e = error(await web.post("admin", f"/api/sinks/{unsigned['id']}/rotate-secret"), 422)
    assert e["field"] == "signing"
    assert sinks.secrets_of(sinks.get(unsigned["id"])) == {}


async def test_a_sink_shows_that_its_receiver_is_down(web: Web) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, enabled=False))
    probe_at = T0 + timedelta(minutes=5)
    down = {"state": "retrying", "probe_at": probe_at, "probe_interval_s": 300.0,
            "failing_since": T0, "last_error": "HTTP 503"}  # fmt: skip
    web.hub.store.sinks.save_progress(sink["id"], Progress(failed_attempts=4, status=down))
    one = (await web.get("a_view", f"/api/sinks/{sink['id']}")).json()
    assert one["state"] == "retrying" and one["last_error"] == "HTTP 503"
    assert datetime.fromisoformat(one["next_probe_at"]) == probe_at
    assert one["stats"]["failed"] == 4


# -- dead letters ------------------------------------------------------------------------
async def test_dead_letters_list_resend_discard(web: Web) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, enabled=False))
    sid = sink["id"]
    ids = _put_dead_letters(web, sid, 3)
    path = f"/api/sinks/{sid}/dead-letters"

    page = (await web.get("a_view", path, params={"limit": 2})).json()
    assert [d["id"] for d in page["dead_letters"]] == ids[:2]
    first = page["dead_letters"][0]
    assert set(first) == {
        "id", "outbox_id", "device_id", "delivery_id", "attempts", "status", "error",
        "excerpt", "created_at",
    }  # fmt: skip
    assert first["status"] == 400 and first["excerpt"] == "refused"
    assert page["next_after_id"] == ids[1]
    rest = (await web.get("a_view", path, params={"after_id": page["next_after_id"]})).json()
    assert [d["id"] for d in rest["dead_letters"]] == ids[2:]
    empty = (await web.get("a_view", path, params={"after_id": ids[2]})).json()
    assert empty == {"dead_letters": [], "next_after_id": ids[2]}
    assert (await web.get("a_view", f"/api/sinks/{sid}")).json()["stats"]["dead_letters"] == 3
    error(await web.get("a_view", path, params={"limit": 0}), 400)

    error(await web.post("a_view", f"{path}/resend", json={"ids": None}), 403)
    r = await web.post("a_mgr", f"{path}/resend", json={"ids": [ids[0]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"queued": 1}
    with web.hub.store.engine.connect() as conn:
        aimed = conn.execute(sa.select(outbox_t.c.payload).where(outbox_t.c.sink_id == sid)).all()
    assert [p for (p,) in aimed] == [{"eventId": 1000}]
    left = (await web.get("a_mgr", path)).json()["dead_letters"]
    assert [d["id"] for d in left] == ids[1:]
    assert (await web.get("a_mgr", f"/api/sinks/{sid}")).json()["stats"]["pending"] == 1

    r = await web.post("a_mgr", f"{path}/discard", json={"ids": [ids[1], 999999]})
    assert r.json() == {"discarded": 1}
    r = await web.post("a_mgr", f"{path}/discard")  # no body: all
    assert r.json() == {"discarded": 1}
    assert (await web.get("a_mgr", path)).json()["dead_letters"] == []
    assert (await web.post("a_mgr", f"{path}/resend", json={})).json() == {"queued": 0}
    error(await web.post("a_mgr", f"{path}/resend", json={"ids": ["x"]}), 422)
    error(await web.post("b_mgr", f"{path}/discard"), 404)


# -- replay ------------------------------------------------------------------------------
async def test_replay_queues_the_range_again(web: Web) -> None:
    relay = await create(web, "admin", relay_body(web))
    rid = relay["id"]
    truck = web.device("a", name="Truck")
    van = web.device("a", name="Van")
    foreign = web.device("b", name="B's truck")
    await web.write_positions(truck, 5)  # T0 … T0 + 4 min
    await web.write_positions(van, 2, start=T0 + timedelta(seconds=30))
    path = f"/api/sinks/{rid}/replay"

    def iso(t: datetime) -> str:
        return t.isoformat()

    three = {"from": iso(T0), "to": iso(T0 + timedelta(minutes=2, seconds=30))}
    r = await web.post("admin", path, json=three)
    assert r.status_code == 200, r.text
    assert r.json() == {"queued": 5}  # truck at 0, 1, 2 min; van at 0:30, 1:30
    r = await web.post("admin", path, json={**three, "device_ids": [truck]})
    assert r.json() == {"queued": 3}
    r = await web.post("admin", path, json={"from": iso(T0), "to": iso(T0 + timedelta(hours=1))})
    assert r.json() == {"queued": 7}
    with web.hub.store.engine.connect() as conn:
        aimed = conn.execute(
            sa.select(sa.func.count()).where(outbox_t.c.sink_id == rid)
        ).scalar_one()
    assert aimed == 15

    for body, field in (
        ({"from": iso(T0), "to": iso(T0)}, "to"),
        ({"from": iso(T0), "to": iso(T0 - timedelta(hours=1))}, "to"),
        ({"from": "2026-03-01T12:00:00", "to": iso(T0)}, "from"),
        ({"from": iso(T0)}, "to"),
        ({**three, "device_ids": [truck, foreign]}, "device_ids"),
        ({**three, "device_ids": [987654]}, "device_ids"),
    ):
        e = error(await web.post("admin", path, json=body), 422)
        assert e["field"] == field, (body, e)
    error(await web.post("b_mgr", path, json=three), 404)

    # an alerts webhook replays alerts (there are none here)
    alerts = await create(web, "a_mgr", alerts_body(web, enabled=False))
    r = await web.post("a_mgr", f"/api/sinks/{alerts['id']}/replay", json=three)
    assert r.json() == {"queued": 0}


@pytest.mark.parametrize("who", ["a_view", "b_mgr"])
async def test_nobody_else_changes_an_alerts_webhook(web: Web, who: str) -> None:
    sink = await create(web, "a_mgr", alerts_body(web, enabled=False))
    r = await web.delete(who, f"/api/sinks/{sink['id']}")
    assert r.status_code == (403 if who == "a_view" else 404), r.text
    assert stored_sinks(web) == 1
