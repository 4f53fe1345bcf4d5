"""The live feed across processes (``hub.live_relay``): notices, their limit, relaying
on PostgreSQL between two hubs on one schema, catching up lost notices (positions,
alerts, statuses, a connection's state); nothing on SQLite."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
import trio

from hub.fix import PositionFix
from hub.live_relay import (
    HandledIds,
    LiveRelay,
    Notice,
    id_runs,
    make_notices,
)
from hub.livefeed import Subscriber, SubscriberLagging
from hub.models import Role
from hub.positions import IngestItem
from hub.secrets import SecretBox
from hub.testing import make_hub

T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
WAIT = 60.0  # a bound against hangs on a busy machine, not a timing


# -- notices -----------------------------------------------------------------------------
def test_id_runs_merge_consecutive_ids() -> None:
    assert id_runs([5, 3, 4, 9, 10, 12, 3]) == [[3, 5], [9, 10], [12, 12]]
    assert id_runs([]) == []


def test_a_batch_is_one_small_notice() -> None:
    (payload,) = make_notices("abc", [[1, 2000]], [[7, 7]], [(1, 2)], {"status": "online"})
    assert orjson.loads(payload) == {
        "n": "abc",
        "p": [[1, 2000]],
        "d": [[1, 2]],
        "a": [[7, 7]],
        "v": {"status": "online"},
    }
    assert make_notices("abc") == []


def test_what_does_not_fit_goes_in_several_notices_in_order() -> None:
    runs = [[i, i] for i in range(0, 20_000, 2)]  # 10,000 runs: every other id
    pairs = [(d, 1) for d in range(3000)]
    data = {"connection_id": 1, "state": "error", "last_error": "é" * 10_000}
    payloads = make_notices("abc", runs, [[1, 5]], pairs, data)
    assert len(payloads) > 2
    assert all(len(p.encode()) < 8000 for p in payloads)  # PostgreSQL's limit
    notices = [Notice.parse(p) for p in payloads]
    assert [r for n in notices for r in n.positions] == runs  # type: ignore[union-attr]
    assert [s for n in notices for s in n.statuses] == pairs  # type: ignore[union-attr]
    assert [r for n in notices for r in n.alerts] == [[1, 5]]  # type: ignore[union-attr]
    carried = {n.data["last_error"] for n in notices if n and n.statuses}  # type: ignore[index]
    assert carried == {"é" * 500}  # the error is cut short, the same in each


def test_a_payload_that_is_not_a_notice_is_ignored() -> None:
    for payload in ("", "[]", '{"p": [[1, 2]]}', '{"n": "x", "p": [["a"]]}', "{"):
        assert Notice.parse(payload) is None


def test_handled_ids_find_the_missing_and_the_floor() -> None:
    handled = HandledIds(keep_s=600)
    handled.seen = 10
    assert handled.floor(0) == 10
    handled.add([[11, 20], [25, 30], [12, 14]])
    assert handled.missing(range(9, 33)) == [9, 10, 21, 22, 23, 24, 31, 32]
    assert handled.floor(0) == 10 and handled.seen == 30
    forgetful = HandledIds(keep_s=-1)  # runs are forgotten as soon as others come
    forgetful.add([[1, 5]])
    forgetful.add([[7, 8]])
    assert forgetful.missing(range(1, 10)) == list(range(1, 10)) and forgetful.seen == 8


# -- two hubs on one PostgreSQL schema -----------------------------------------------------
def setup_fleet(hub: Any, devices: int = 2) -> dict[str, Any]:
    store = hub.store
    client = store.create_client("ACME")
    owner = store.create_user("Ana", Role.MANAGER, client.id)
    conn = store.create_connection(client.id, "x", "van", {}, enabled=False)  # not polled
    ids = [
        store.create_device(client.id, name=f"d{i}", connection_id=conn.id, upstream_id=str(i)).id
        for i in range(devices)
    ]
    return {"client": client.id, "owner": owner, "connection": conn.id, "devices": ids}


def item(device: int, seconds: float, **kw: Any) -> IngestItem:
    fix = PositionFix(T0 + timedelta(seconds=seconds), 14.6 + seconds / 1e4, -90.5, **kw)
    return IngestItem(device, None, fix)


@asynccontextmanager
async def two_hubs(tmp_path: Path, pg_url: str) -> AsyncIterator[tuple[Any, Any]]:
    key = SecretBox.generate_key().encode()
    a = make_hub(tmp_path / "a", db_url=pg_url, secret_key=key, live_tick_s=0)
    b = make_hub(tmp_path / "b", db_url=pg_url, secret_key=key, live_tick_s=0)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(a.run)
            await nursery.start(b.run)
            assert a.relay.listening.is_set() and b.relay.listening.is_set()
            yield a, b
            a.shutdown()
            b.shutdown()
    finally:
        a.store.close()
        b.store.close()


def break_listener(hub: Any) -> None:
    """End the hub's listening connection from the server's side."""
    with hub.store.engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": hub.relay.listener_pid})


async def take(sub: Subscriber, count: int) -> list[dict[str, Any]]:
    """The next ``count`` messages ``sub`` receives."""
    got: list[dict[str, Any]] = []
    with trio.fail_after(WAIT):
        while len(got) < count:
            for text in await sub.receive_batch():
                got.extend(json.loads(text))
    return got


@pytest.mark.postgres
async def test_a_hub_publishes_what_another_commits_as_its_own_would(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_hubs(tmp_path, pg_url) as (a, b):
        w = setup_fleet(a)
        d0, d1 = w["devices"]
        a.store.rules.create(w["client"], w["owner"], "ignition", "ignitionOn")
        with a.live.subscribe(None) as local, b.live.subscribe(None) as remote:
            await a.pipeline.submit([item(d0, 0, ignition=False), item(d1, 0)])
            await a.pipeline.submit([item(d0, 10, ignition=True), item(d1, 5)])
            await a.pipeline.submit([item(d1, 20), item(d0, 30, ignition=True)])
            mine = await take(local, 9)
            theirs = await take(remote, 9)
        assert theirs == mine  # the same messages, the same order
        kinds = [(m["type"], m["device_id"]) for m in theirs]
        assert kinds[:4] == [
            ("position", d0),
            ("position", d1),
            ("device_status", d0),
            ("device_status", d1),
        ]
        assert ("alert", d0) in kinds
        alert = next(m for m in theirs if m["type"] == "alert")
        assert alert["data"]["message_id"] == "ignitionOn"
        for device in (d0, d1):  # each device's positions in the order of its fixes
            times = [m["data"]["fix_time"] for m in theirs if m["device_id"] == device
                     and m["type"] == "position"]  # fmt: skip
            assert times == sorted(times) and len(times) == 3
        assert b.relay.relayed == 9 and a.relay.relayed == 0  # a skips its own notices
        # each signs its notices with its node id, as /api/cluster names the process
        assert a.relay.tag == a.cluster.node.node_id and b.relay.tag == b.cluster.node.node_id
        assert a.relay.sender.endswith(f"/{a.relay.tag}")
        assert {n["node_id"] for n in await a.cluster.describe()} == {a.relay.tag, b.relay.tag}


@pytest.mark.postgres
async def test_a_slow_subscriber_of_relayed_messages_is_dropped_as_any(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_hubs(tmp_path, pg_url) as (a, b):
        w = setup_fleet(a)
        d0, d1 = w["devices"]
        with b.live.subscribe(None, max_pending_bytes=3000) as slow, b.live.subscribe(None) as ok:
            for k in range(4):  # never read by the slow one: 10 messages, over 3,000 bytes
                await a.pipeline.submit([item(d0, k), item(d1, k)])
            got = await take(ok, 10)  # 8 positions, 2 statuses
            assert slow.lagging and not ok.lagging
            with pytest.raises(SubscriberLagging):
                await slow.receive_batch()
        assert len(got) == 10


@pytest.mark.postgres
async def test_statuses_of_many_devices_cross_in_several_notices(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_hubs(tmp_path, pg_url) as (a, b):
        w = setup_fleet(a, devices=600)
        with b.live.subscribe(None) as remote:
            sent = a.relay.notices_sent
            await a.publish_connection_status(w["connection"], "error", "x" * 20_000)
            got = await take(remote, 600)
        assert a.relay.notices_sent - sent > 1
        assert sorted(m["device_id"] for m in got) == sorted(w["devices"])
        assert {m["data"]["state"] for m in got} == {"error"}
        assert {len(m["data"]["last_error"]) for m in got} == {500}  # cut short


@pytest.mark.postgres
async def test_what_was_committed_while_not_listening_is_caught_up(
    tmp_path: Path, pg_url: str
) -> None:
    async with two_hubs(tmp_path, pg_url) as (a, b):
        w = setup_fleet(a, devices=3)
        d0, d1, d2 = w["devices"]
        with b.live.subscribe(None) as remote:
            await a.pipeline.submit([item(d0, 0), item(d1, 0)])
            assert len(await take(remote, 4)) == 4  # positions and statuses, by notice
            a.store.positions.before_commit = None  # its notices are lost
            await a.pipeline.submit([item(d0, 10), item(d1, 10)])
            await a.pipeline.submit([item(d0, 20), item(d2, 20)])  # d2 comes online
            a.store.positions.before_commit = a.relay.announce_batch
            assert b.relay.caught_up == 0
            break_listener(b)
            got = await take(remote, 7)  # 4 positions, the statuses of the last 2 minutes
            await a.pipeline.submit([item(d1, 30)])  # and notices are heard again
            got += await take(remote, 1)
        assert b.relay.reconnections == 1 and b.relay.caught_up == 7
        positions = [(m["device_id"], m["data"]["fix_time"][17:19]) for m in got
                     if m["type"] == "position"]  # fmt: skip
        assert positions == [(d0, "10"), (d1, "10"), (d0, "20"), (d2, "20"), (d1, "30")]
        statuses = [(m["device_id"], m["data"]["status"]) for m in got
                    if m["type"] == "device_status"]  # fmt: skip
        assert sorted(statuses) == [(d0, "online"), (d1, "online"), (d2, "online")]
        assert got[-1]["type"] == "position"  # after the catch-up: by notice again


@pytest.mark.postgres
async def test_a_connection_state_told_while_not_listening_is_caught_up(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    held, release = threading.Event(), threading.Event()
    holding: list[LiveRelay] = []  # whose listener waits, disconnected, until released
    mark_lost = LiveRelay._mark_lost

    def lost_and_held(relay: LiveRelay) -> None:  # in the listener thread
        mark_lost(relay)
        if relay in holding:
            held.set()
            release.wait(WAIT)

    monkeypatch.setattr(LiveRelay, "_mark_lost", lost_and_held)

    async def change(hub: Any, connection: int, state: str, error: str | None) -> None:
        """What a runner does: write the state, then tell the live feeds."""
        hub.store.set_connection_status(connection, state=state, last_error=error)
        await hub.publish_connection_status(connection, state, error)

    async with two_hubs(tmp_path, pg_url) as (a, b):
        w = setup_fleet(a)
        d0, d1 = w["devices"]
        first = w["connection"]
        other = a.store.create_connection(w["client"], "x", "car", {}, enabled=False).id
        d2 = a.store.create_device(w["client"], name="d2", connection_id=other, upstream_id="2")
        with b.live.subscribe(None) as remote:
            await change(a, first, "ok", None)
            await change(a, other, "ok", None)
            assert len(await take(remote, 3)) == 3  # by notice
            holding.append(b.relay)
            try:
                break_listener(b)
                with trio.fail_after(WAIT):
                    while not held.is_set():  # noqa: ASYNC110 - the listener thread's
                        await trio.sleep(0.05)
                sent = a.relay.notices_sent
                await change(a, first, "failing", "upstream down " + "x" * 1000)
                assert a.relay.notices_sent == sent + 1  # told while b does not listen
            finally:
                release.set()
            got = await take(remote, 2)  # the connection's state, for each of its devices
            await change(a, other, "rate_limited", None)  # and notices are heard again
            got += await take(remote, 1)
        assert b.relay.reconnections == 1 and b.relay.caught_up == 2
        told = [(m["type"], m["device_id"], m["data"]["state"]) for m in got]
        assert told == [
            ("device_status", d0, "failing"),
            ("device_status", d1, "failing"),
            ("device_status", d2.id, "rate_limited"),  # the other one's, unchanged, not again
        ]
        assert {m["data"]["connection_id"] for m in got[:2]} == {first}
        assert {m["data"]["last_error"] for m in got[:2]} == {"upstream down " + "x" * 486}


async def test_on_sqlite_the_relay_does_nothing(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, live_tick_s=0)
    assert not hub.relay.enabled and hub.store.positions.before_commit is None
    w = setup_fleet(hub)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        await hub.pipeline.submit([item(w["devices"][0], 0)])
        await hub.publish_connection_status(w["connection"], "error", "boom")
        hub.shutdown()
    hub.store.close()
    assert hub.relay.notices_sent == 0 and not hub.relay.listening.is_set()


def test_the_relay_is_enabled_only_on_postgresql(tmp_path: Path) -> None:
    relay = LiveRelay(sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}"), None)  # type: ignore[arg-type]
    assert not relay.enabled


def test_only_other_processes_notices_of_the_same_schema_are_relayed(tmp_path: Path) -> None:
    relay = LiveRelay(sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}"), None)  # type: ignore[arg-type]
    relay.scope = "t_1"

    def notice(sender: str) -> Notice:
        return Notice(sender, [[1, 1]], [], [], None)

    assert relay._theirs(notice("t_1/other"))
    assert not relay._theirs(notice(relay.sender))  # its own
    assert not relay._theirs(notice("t_2/other"))  # another installation on the database


# -- a real second process ---------------------------------------------------------------
@pytest.mark.postgres
async def test_a_websocket_on_another_process_gets_what_this_one_commits(
    tmp_path: Path, pg_url: str
) -> None:
    from test_processes import environment, serving
    from trio_websocket import open_websocket_url

    env = environment(tmp_path / "data", pg_url)
    a = make_hub(tmp_path / "a", db_url=pg_url, secret_key=env["GPSHUB_SECRET_KEY"].encode())
    w = setup_fleet(a)
    d0, d1 = w["devices"]
    a.store.rules.create(w["client"], w["owner"], "ignition", "ignitionOn")
    _, token = a.store.create_token(w["owner"].id, "ana's")
    log: list[bytes] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(a.run)
        async with serving(env, log) as url:  # hub b: `gpshub serve`
            ws_url = url.replace("http://", "ws://") + "/api/live"
            headers = [("Authorization", f"Bearer {token}")]
            async with open_websocket_url(ws_url, extra_headers=headers) as ws:
                hello = json.loads(await ws.get_message())[0]
                assert hello["type"] == "hello"
                await a.pipeline.submit([item(d0, 0, ignition=False), item(d1, 0)])
                await a.pipeline.submit([item(d0, 10, ignition=True), item(d1, 5)])
                await a.pipeline.submit([item(d1, 20), item(d0, 30, ignition=True)])
                got: list[dict[str, Any]] = []
                with trio.fail_after(WAIT):
                    while len(got) < 9:
                        got += [m for m in json.loads(await ws.get_message())
                                if m["type"] != "ping"]  # fmt: skip
        a.shutdown()
    a.store.close()
    positions = [(m["device_id"], m["data"]["fix_time"][17:19]) for m in got
                 if m["type"] == "position"]  # fmt: skip
    assert positions == [(d0, "00"), (d1, "00"), (d1, "05"), (d0, "10"), (d1, "20"), (d0, "30")]
    (alert,) = [m for m in got if m["type"] == "alert"]
    assert alert["device_id"] == d0 and alert["data"]["message_id"] == "ignitionOn"
    assert [m["device_id"] for m in got if m["type"] == "device_status"] == [d0, d1]
