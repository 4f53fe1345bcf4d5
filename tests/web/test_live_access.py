"""A live socket lasts no longer than its token, its user, its role and its client
(issue 12, item 1), and deleted devices leave subscriptions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import trio
from harness import Web
from test_live import closed_with, hello_and_snapshot, live, receive

from hub.models import ApiToken
from hub.store import Store
from hub.web import LiveOptions


@contextmanager
def other_process(web: Web) -> Iterator[Store]:
    """Another store on the hub's database: what the CLI or another API process is."""
    url = web.hub.store.engine.url.render_as_string(hide_password=False)
    other = Store.open(url, web.hub.store.secrets, migrate=False)
    try:
        yield other
    finally:
        other.close()


def token_id(web: Web, who: str) -> int:
    (row,) = web.hub.store.list_tokens([web.users[who]])
    return row.id or 0


async def still_open(ws: Any) -> None:
    await ws.send_message(json.dumps({"type": "ping"}))
    assert await receive(ws) == {"type": "pong"}


async def test_revoking_a_token_closes_its_sockets_at_once(web: Web) -> None:
    async with live(web, "a_view") as ws, live(web, "a_view") as ws2, live(web, "a_mgr") as mgr:
        for s in (ws, ws2, mgr):
            await hello_and_snapshot(s)
        r = await web.delete("a_mgr", f"/api/tokens/{token_id(web, 'a_view')}")
        assert r.status_code == 204
        assert await closed_with(ws) == (4001, "token revoked")
        assert await closed_with(ws2) == (4001, "token revoked")
        await still_open(mgr)  # another token of the same client


async def test_a_token_revoked_by_another_process_closes_the_socket(web: Web) -> None:
    async with live(web, "a_view") as ws:
        await hello_and_snapshot(ws)
        with other_process(web) as other:
            other.delete_token(token_id(web, "a_view"))
        assert await closed_with(ws, timeout=30) == (4001, "token revoked")


async def test_nothing_stored_after_a_revocation_reaches_the_socket(web: Web) -> None:
    """Revoked elsewhere, then a position is stored at once: the pipeline applies the
    revocation before it publishes the batch."""
    device = web.device("a")
    async with live(web, "a_view") as ws:
        await hello_and_snapshot(ws)
        with other_process(web) as other:
            other.delete_token(token_id(web, "a_view"))
        await web.write_positions(device, 1)
        with trio.fail_after(30):
            while True:
                try:
                    frame = json.loads(await ws.get_message())
                except Exception:
                    break
                assert all(m["type"] != "position" for m in frame), frame
        assert ws.closed.code == 4001


async def test_deleting_the_user_closes_its_sockets(web: Web) -> None:
    async with live(web, "a_view") as ws:
        await hello_and_snapshot(ws)
        r = await web.delete("admin", f"/api/users/{web.users['a_view']}")
        assert r.status_code == 204
        assert await closed_with(ws) == (4001, "user deleted")


async def test_a_role_change_closes_the_users_sockets(web: Web) -> None:
    async with live(web, "a_mgr") as ws, live(web, "a_view") as viewer:
        await hello_and_snapshot(ws)
        await hello_and_snapshot(viewer)
        r = await web.patch("admin", f"/api/users/{web.users['a_mgr']}", json={"role": "viewer"})
        assert r.status_code == 200 and r.json()["role"] == "viewer"
        assert await closed_with(ws) == (4003, "your role changed; reconnect")
        r = await web.patch("admin", f"/api/users/{web.users['a_view']}", json={"name": "ann"})
        assert r.status_code == 200
        await still_open(viewer)  # a new name is no reason to go


async def test_deleting_a_client_closes_its_sockets(web: Web) -> None:
    """The client's id may be given out again (SQLite did): its sockets are gone first."""
    async with live(web, "b_mgr") as ws, live(web, "admin") as admin:
        await hello_and_snapshot(ws)
        await hello_and_snapshot(admin)
        r = await web.delete("admin", f"/api/clients/{web.clients['b']}")
        assert r.status_code == 204
        assert await closed_with(ws) == (4001, "client deleted")
        await still_open(admin)


async def test_the_periodic_check_ends_a_socket_whose_token_expired(start_web: Any) -> None:
    """A token that stops holding with no change recorded, because it expired, is found
    out by the periodic re-check."""
    async with start_web(live=LiveOptions(reauth_interval=0.2)) as web:
        store = web.hub.store
        row, plain = store.create_token(
            web.users["a_view"], "short", expires_at=datetime.now(UTC) + timedelta(hours=1)
        )
        web.tokens["short"] = plain
        async with live(web, "short") as ws:
            await hello_and_snapshot(ws)
            with store.engine.begin() as conn:  # its time comes (no change is recorded)
                conn.execute(
                    sa.update(ApiToken)
                    .where(ApiToken.id == row.id)
                    .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
                )
            assert await closed_with(ws, timeout=30) == (4001, "token expired")


async def test_a_deleted_device_leaves_the_subscriptions_naming_it(web: Web) -> None:
    gone = web.device("a", name="gone")
    kept = web.device("a", name="kept")
    async with live(web, "a_view", query=f"?device_ids={gone},{kept}") as ws, live(web) as all_:
        await hello_and_snapshot(ws)
        await hello_and_snapshot(all_)
        assert (await web.delete("a_mgr", f"/api/devices/{gone}")).status_code == 204
        assert await receive(ws) == {
            "type": "subscription_changed",
            "reason": "devices_deleted",
            "removed": [gone],
            "device_ids": [kept],
        }
        await web.write_positions(kept, 1)
        assert (await receive(ws))["device_id"] == kept
        assert (await receive(all_))["device_id"] == kept  # a subscription to all: no notice
