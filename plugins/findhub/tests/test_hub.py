"""The plugin in a real hub, through its API, on the mock clock: save the connection from a
secrets.json, test it, import, poll; positions with their own timestamps, each once, also
after the same push again and after a restart; a refused token stops the connection; a
secrets.json without owner_key is saved and said to give no coordinates."""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import trio
from findhub_support import T0
from trio.testing import MockClock

from gpshub_findhub.source import PIDS_KEY, FindHubSource
from gpshub_findhub.testing import FakeFindHub, secrets_document
from hub.clock import TrioClock
from hub.hub_driver import HubDriver, HubFactory
from hub.models import ConnectionState, Role
from hub.testing import LOOPBACK_NETWORKS, make_hub
from hub.testing import running as running_hub
from hub.web import create_app, serve


@dataclass
class Api:
    hub: Any
    http: httpx.AsyncClient
    client_id: int

    async def post(self, path: str, body: Any = None) -> httpx.Response:
        return await self.http.post(path, json=body)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)


@asynccontextmanager
async def running(hubs: HubFactory) -> AsyncIterator[Api]:
    """A hub of ``hubs`` (the same data and key as the one before: a restart) serving its
    API, and a manager of client "acme" calling it."""
    hub = hubs()
    store = hub.store
    clients = {c.name: c for c in store.list_clients()}
    client = clients.get("acme") or store.create_client("acme")
    users = {u.name: u for u in store.list_users()} if hasattr(store, "list_users") else {}
    user = users.get("ann") or store.create_user("ann", Role.MANAGER, client.id)
    token = store.create_token(user.id, "test")[1]
    app = create_app(hub)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0, app=app))
        )
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=600
        ) as http:
            try:
                yield Api(hub, http, client.id or 0)
            finally:
                hub.shutdown()
    hubs.close_hub(hub)


def history(hub: Any, connection_id: int) -> dict[str, list[tuple[float, float, float]]]:
    """(fix time, lat, lon) of every stored position, per upstream id, oldest first."""
    out = {}
    for device in hub.store.list_devices(connection_id=connection_id):
        rows, _ = hub.store.positions.history([device.id], limit=10_000)
        out[device.upstream_id] = [(r["fix_time"].timestamp(), r["lat"], r["lon"]) for r in rows]
    return out


async def test_save_test_import_poll_restart_each_position_once(
    gpshub_hub_factory: HubFactory,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    fake: FakeFindHub,
    served: str,
) -> None:
    wall = gpshub_wall
    tags = [fake.add_tracker(name) for name in ("Keys", "Bag", "Bike")]
    phone = fake.add_phone("Pixel")
    fake.report(tags[0], 52.52, 13.405, alt=34, accuracy=12, t=T0 - 300)
    fake.report(tags[1], 48.4, 9.9, alt=-3, accuracy=40, t=T0 - 200, status="crowdsourced")
    fake.report(tags[2], 47.37, 8.54, accuracy=0, t=T0 - 100, status="aggregated")
    fake.report(tags[2], 47.37, 8.54, t=T0 - 98, status="semantic", place_name="Home")
    fake.report(phone, 51.5, -0.12, accuracy=8, t=T0 - 50)
    body = {"kind": "findhub", "label": "Find Hub", "options": fake.options(served)}

    async with running(gpshub_hub_factory) as api:
        # a broken secrets.json is refused, naming the key
        broken = secrets_document()
        broken["fcm_credentials"]["gcm"]["android_id"] = "12x"
        r = await api.post(
            "/api/connections", {**body, "credentials": {"secrets_json": json.dumps(broken)}}
        )
        assert r.status_code == 422, r.text
        assert (
            r.json()["error"]["field"] == "credentials.secrets_json.fcm_credentials.gcm.android_id"
        )
        r = await api.post("/api/connections", {**body, "credentials": {"secrets_json": "{,}"}})
        assert r.status_code == 422 and "line 1, column 2" in r.json()["error"]["message"]
        assert "aas_et" not in r.text

        credentials = fake.credentials()
        test = {"kind": "findhub", "options": body["options"], "credentials": credentials}
        r = await api.post("/api/connections/test", test)
        assert r.json().get("summary") == (
            "Find Hub account a…@gmail.com: 4 devices (3 trackers, 1 phone);"
            " fresh locations: yes; decryption: yes"
        ), r.text
        r = await api.post("/api/connections", {**body, "credentials": credentials})
        assert r.status_code == 201, r.text
        conn = r.json()
        assert conn["credentials"]["secrets_json"] == {"set": True, "secret": True, "value": None}
        remote = (await api.get(f"/api/connections/{conn['id']}/remote-devices")).json()["devices"]
        assert sorted(d["name"] for d in remote) == ["Bag", "Bike", "Keys", "Pixel"]
        r = await api.post(f"/api/connections/{conn['id']}/import", {})
        assert r.json()["created"] == 4

        await trio.sleep(200)  # the first poll after the import, and its answers
        stored = history(api.hub, conn["id"])
        assert stored[tags[0]] == [(T0 - 300, 52.52, 13.405)]
        assert stored[tags[1]] == [(T0 - 200, 48.4, 9.9)]
        assert stored[tags[2]] == [(T0 - 100, 47.37, 8.54)]
        assert stored[phone] == [(T0 - 50, 51.5, -0.12)]
        devices = {d.upstream_id: d for d in api.hub.store.list_devices(connection_id=conn["id"])}
        (row,), _ = api.hub.store.positions.history([devices[tags[2]].id], limit=10)
        assert row["sensors"] == {
            "report_status": "aggregated",
            "is_own_report": False,
            "place_name": "Home",
        }
        assert row["accuracy_m"] is None  # Google's 0: unknown
        (row,), _ = api.hub.store.positions.history([devices[tags[0]].id], limit=10)
        assert (row["altitude_m"], row["accuracy_m"]) == (34, 12)

        for cid in tags:  # the same updates pushed again: nothing new
            fake.push_update(cid)
        fake.report(tags[0], 52.53, 13.41, t=wall.now().timestamp() - 20)
        await trio.sleep(400)
        stored = history(api.hub, conn["id"])
        assert [t for t, _, _ in stored[tags[0]]] == [T0 - 300, wall.now().timestamp() - 420]
        assert all(len(stored[cid]) == 1 for cid in (*tags[1:], phone))
        status = (await api.get(f"/api/connections/{conn['id']}/status")).json()
        assert status["state"] == "ok", status
        logins_before = len(fake.mcs.logins)

    saved_ids = None
    async with running(gpshub_hub_factory) as api:  # a restart: same data, same key
        saved_ids = await _state(api.hub, conn["id"], PIDS_KEY)
        for cid in tags:
            fake.push_update(cid)  # queued while the hub was down: served again
        await trio.sleep(700)
        after = history(api.hub, conn["id"])
        assert after == stored  # nothing replayed, nothing twice
        assert len(fake.mcs.logins) > logins_before
        assert set(saved_ids) <= set(fake.mcs.logins[logins_before].received_persistent_ids)
        assert (await api.get(f"/api/connections/{conn['id']}/status")).json()["state"] == "ok"


async def _state(hub: Any, connection_id: int, key: str) -> Any:
    from hub.runner import StoreStateStore

    return await StoreStateStore(hub, connection_id).get(key)


async def test_the_driver_keeps_every_report_once_over_a_restart(
    gpshub_hub_factory: HubFactory, gpshub_clock: MockClock, fake: FakeFindHub, served: str
) -> None:
    """Create, test, import, 3 polls, restart, 2 polls: a new report before each poll
    (every poll locates: ``locate_interval_s`` 60 s), each stored once."""
    tags = [fake.add_tracker(name) for name in ("Keys", "Bag")]
    sent: dict[str, list[float]] = {cid: [] for cid in tags}

    def before(n: int) -> None:
        t = round(fake.now()) - 60 + n  # distinct at a restart too
        for i, cid in enumerate(tags):
            fake.report(cid, 52.0 + n / 100, 13.0 + i / 100, t=t)
            sent[cid].append(t)

    options = fake.options(served, locate_interval_s=60, stagger_s=0)
    driver = HubDriver(gpshub_hub_factory, FindHubSource, fake.credentials(), options)
    stored = await driver.run(polls=3, polls_after_restart=2, before=before)
    for cid in tags:
        times = [row["fix_time"].timestamp() for row in stored[cid]]
        assert times == sent[cid], (cid, times, sent[cid])
    assert driver.connection().state == ConnectionState.OK


async def test_a_refused_aas_token_stops_polling_without_a_login_loop(
    gpshub_hub_factory: HubFactory, gpshub_clock: MockClock, fake: FakeFindHub, served: str
) -> None:
    tag = fake.add_tracker("Keys")
    driver = HubDriver(gpshub_hub_factory, FindHubSource, fake.credentials(), fake.options(served))
    driver.create()
    driver.add_device(tag, "Keys")
    fake.auth_error = "BadAuthentication"
    async with running_hub(driver.hub):
        await trio.sleep(1200)
    state = driver.connection()
    assert state.state == ConnectionState.NEEDS_REAUTH
    assert "generate a new secrets.json" in (state.last_error or "")
    assert fake.requests["/auth"] == 1
    assert fake.aas_token not in (state.last_error or "")


async def test_a_secrets_json_without_owner_key_is_saved_and_says_no_coordinates(
    gpshub_hub_factory: HubFactory, gpshub_clock: MockClock, fake: FakeFindHub, served: str
) -> None:
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=T0 - 60)
    body = {
        "kind": "findhub",
        "label": "Find Hub",
        "credentials": fake.credentials(owner_key=None),
        "options": fake.options(served),
    }
    async with running(gpshub_hub_factory) as api:
        r = await api.post(
            "/api/connections/test", {k: body[k] for k in ("kind", "credentials", "options")}
        )
        assert (
            "decryption: no — secrets.json has no owner_key (no coordinates)" in r.json()["summary"]
        )
        r = await api.post("/api/connections", body)
        assert r.status_code == 201, r.text
        conn = r.json()
        await api.post(f"/api/connections/{conn['id']}/import", {})
        await trio.sleep(200)
        status = (await api.get(f"/api/connections/{conn['id']}/status")).json()
        assert status["state"] == "ok", status
        assert "no coordinates" in status["state_message"]
        assert history(api.hub, conn["id"]) == {tag: []}
        assert len(fake.locates) == 1


async def test_on_the_real_clock_the_token_request_goes_over_http(
    tmp_path: Path, gpshub_serve: Any
) -> None:
    """No stand-in: the hub's own threads, gpsoauth's adapter posting to the fake's
    ``/auth``; the first poll starts with the connection."""
    import time

    from hub.clock import SystemClock

    fake = FakeFindHub()
    url = await gpshub_serve(fake)
    tag = fake.add_tracker("Keys")
    fake.report(tag, 52.52, 13.405, t=time.time() - 60)
    hub = make_hub(
        tmp_path, FindHubSource, clock=SystemClock(), outbound_allow_networks=LOOPBACK_NETWORKS
    )
    client = hub.store.create_client("acme")
    conn = hub.store.create_connection(
        client.id, "findhub", "Find Hub", fake.credentials(), fake.options(url, stagger_s=0)
    )
    hub.store.import_devices(conn.id, await hub.browse(conn))
    async with trio.open_nursery() as inner:
        await inner.start(hub.run)
        with trio.fail_after(30):  # a hang guard, not a timing assertion
            while True:
                if any(history(hub, conn.id).values()):
                    break
                await trio.sleep(0.05)
        hub.shutdown()
    assert history(hub, conn.id)[tag][0][1:] == (52.52, 13.405)
    assert fake.requests["/auth"] == 1 and fake.auth_forms[0]["Email"] == "alice@gmail.com"
    hub.store.close()
