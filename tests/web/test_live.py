"""The live WebSocket feed, against the real server."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from weakref import WeakKeyDictionary

import pytest
import trio
from harness import ORIGIN, T0, Web
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
)

from hub.web import LiveOptions


@asynccontextmanager
async def live(
    web: Web, who: str | None = "a_view", query: str = "", origin: str | None = None
) -> AsyncIterator[WebSocketConnection]:
    headers = list(web.headers(who).items())
    if origin is not None:
        headers.append(("Origin", origin))
    async with open_websocket_url(web.ws_url + query, extra_headers=headers) as ws:
        yield ws


HANG_GUARD = 60.0
"""Seconds before a test gives up waiting for a message: a guard against hangs only (a
loaded machine can be slow), never a timing the test asserts."""


async def receive(ws: WebSocketConnection, timeout: float = HANG_GUARD) -> dict[str, Any]:
    """The next message, less devices' online/offline events (``receive_raw`` has them)."""
    while True:
        message = await receive_raw(ws, timeout)
        if not (message["type"] == "device_status" and "status" in message["data"]):
            return message


_unread: WeakKeyDictionary[WebSocketConnection, deque[dict[str, Any]]] = WeakKeyDictionary()


async def receive_raw(ws: WebSocketConnection, timeout: float = HANG_GUARD) -> dict[str, Any]:
    """The next message: frames are JSON arrays of messages (``?frames=array``, the
    default) or single messages (``?frames=single``)."""
    unread = _unread.setdefault(ws, deque())
    if not unread:
        with trio.fail_after(timeout):
            frame = json.loads(await ws.get_message())
        unread.extend(frame if isinstance(frame, list) else [frame])
    return unread.popleft()


async def closed_with(
    ws: WebSocketConnection, timeout: float = HANG_GUARD
) -> tuple[int, str | None]:
    """Read until the server closes; the close code and reason."""
    with trio.fail_after(timeout):
        while True:
            try:
                await ws.get_message()
            except ConnectionClosed as exc:
                return exc.reason.code, exc.reason.reason


async def hello_and_snapshot(
    ws: WebSocketConnection,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    hello = await receive(ws)
    assert hello["type"] == "hello", hello
    return hello, [await receive(ws) for _ in range(hello["snapshot"])]


async def test_hello_snapshot_then_live_positions(web: Web) -> None:
    d1 = web.device("a", name="one")
    d2 = web.device("a", name="two")
    web.device("a", name="idle")
    await web.write_positions(d1, 3)
    await web.write_positions(d2, 1)
    async with live(web) as ws:
        hello, snapshot = await hello_and_snapshot(ws)
        assert hello["user"] == {"id": web.users["a_view"], "name": "a_view", "role": "viewer"}
        assert hello["client_id"] == web.clients["a"] and hello["device_ids"] is None
        assert hello["ping_interval"] == 20.0
        assert {m["device_id"] for m in snapshot} == {d1, d2}
        assert all(m["type"] == "position" and m["snapshot"] is True for m in snapshot)
        newest = next(m for m in snapshot if m["device_id"] == d1)
        assert newest["data"]["fix_time"] == "2026-03-01T12:02:00Z"

        await web.write_positions(d2, 2, start=T0 + timedelta(hours=1))
        got = [await receive(ws), await receive(ws)]
        assert [m["type"] for m in got] == ["position", "position"]
        assert [m["device_id"] for m in got] == [d2, d2]
        assert got[0]["data"]["fix_time"] == "2026-03-01T13:00:00Z"
        assert "snapshot" not in got[0]


async def test_auth_by_first_message(web: Web) -> None:
    async with live(web, who=None) as ws:
        await ws.send_message(json.dumps({"type": "auth", "token": web.tokens["a_mgr"]}))
        hello, _ = await hello_and_snapshot(ws)
        assert hello["user"]["name"] == "a_mgr"
        await ws.send_message('{"type":"ping"}')
        assert await receive(ws) == {"type": "pong"}
        await ws.send_message('{"type":"dance"}')
        assert (await receive(ws))["code"] == "unknown_type"
        await ws.send_message("not json")
        assert (await receive(ws))["code"] == "bad_message"

    async with live(web, who=None) as ws:
        await ws.send_message(json.dumps({"type": "auth", "token": "gph_nope"}))
        assert (await receive(ws))["code"] == "invalid_token"
        assert await closed_with(ws) == (4001, "invalid token")


async def test_authentication_times_out(start_web: Any) -> None:
    async with start_web(live=LiveOptions(auth_timeout=0.2)) as web, live(web, who=None) as ws:
        assert await closed_with(ws) == (4001, "authentication timed out")


async def test_bad_header_token_is_refused_before_accepting(web: Web) -> None:
    with pytest.raises(ConnectionRejected) as rejected:
        async with live(web, who="malformed"):
            pass
    assert rejected.value.status_code == 401
    assert json.loads(rejected.value.body)["error"]["code"] == "invalid_token"


async def test_origins(web: Web) -> None:
    with pytest.raises(ConnectionRejected) as rejected:
        async with live(web, origin="https://evil.example"):
            pass
    assert rejected.value.status_code == 403
    assert json.loads(rejected.value.body)["error"]["code"] == "forbidden_origin"
    for origin in (ORIGIN, web.url, ORIGIN + ":443"):
        async with live(web, origin=origin) as ws:
            assert (await receive(ws))["type"] == "hello", origin


async def test_subset_by_query_and_by_message(web: Web) -> None:
    d1 = web.device("a", name="one")
    d2 = web.device("a", name="two")
    await web.write_positions(d2, 1)
    async with live(web, query=f"?device_ids={d1}") as ws:
        hello, snapshot = await hello_and_snapshot(ws)
        assert hello["device_ids"] == [d1] and snapshot == []
        await web.write_positions(d2, 1, start=T0 + timedelta(hours=1))
        await web.write_positions(d1, 1, start=T0 + timedelta(hours=1))
        assert (await receive(ws))["device_id"] == d1  # d2's came first and was filtered

        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": [d2]}))
        reply = await receive(ws)
        assert reply == {
            "type": "subscribed",
            "device_ids": [d2],
            "mode": "all",
            "max_rate_s": None,
            "snapshot": 1,
        }
        assert (await receive(ws))["data"]["fix_time"] == "2026-03-01T13:00:00Z"
        await web.write_positions(d1, 1, start=T0 + timedelta(hours=2))
        await web.write_positions(d2, 1, start=T0 + timedelta(hours=2))
        assert (await receive(ws))["device_id"] == d2

        theirs = web.device("b", name="theirs")
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": [d1, theirs]}))
        err = await receive(ws)
        assert err["type"] == "error" and err["code"] == "unknown_devices"
        assert err["device_ids"] == [theirs] and str(theirs) in err["message"]
        await web.write_positions(d1, 1, start=T0 + timedelta(hours=3))
        await web.write_positions(d2, 1, start=T0 + timedelta(hours=3))
        assert (await receive(ws))["device_id"] == d2  # the selection did not change

        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": "all"}))
        assert (await receive(ws))["code"] == "bad_message"
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": None}))
        reply = await receive(ws)
        assert reply["device_ids"] is None and reply["snapshot"] == 2


async def test_other_clients_devices_are_refused(web: Web) -> None:
    theirs = web.device("b", name="theirs")
    async with live(web, query=f"?device_ids={theirs},999") as ws:
        err = await receive(ws)
        assert err["code"] == "unknown_devices" and err["device_ids"] == [theirs, 999]
        assert await closed_with(ws) == (4003, "unknown device ids")
    with pytest.raises(ConnectionRejected) as rejected:
        async with live(web, query="?device_ids=one,two"):
            pass
    assert rejected.value.status_code == 400


async def test_each_client_sees_its_own_devices(web: Web) -> None:
    mine = web.device("a", name="mine")
    theirs = web.device("b", name="theirs")
    async with live(web, who="b_mgr") as b, live(web, who="admin") as admin:
        await hello_and_snapshot(b)
        await hello_and_snapshot(admin)
        await web.write_positions(mine, 1)
        await web.write_positions(theirs, 1)
        assert (await receive(b))["device_id"] == theirs
        assert [(await receive(admin))["device_id"] for _ in range(2)] == [mine, theirs]


async def test_a_device_going_online_is_announced(web: Web) -> None:
    mine = web.device("a", name="mine")
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        await web.write_positions(mine, 1)
        position, status = await receive_raw(ws), await receive_raw(ws)
        assert (position["type"], position["device_id"]) == ("position", mine)
        assert (status["type"], status["device_id"]) == ("device_status", mine)
        assert status["data"]["status"] == "online"


async def test_device_status_messages(web: Web) -> None:
    conn = web.connection("a")
    device = web.device("a", name="linked", connection_id=conn, upstream_id="u1")
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        await web.hub.publish_connection_status(conn, "failing", "upstream is down")
        message = await receive(ws)
        assert message == {
            "type": "device_status",
            "device_id": device,
            "data": {"connection_id": conn, "state": "failing", "last_error": "upstream is down"},
        }


async def test_a_lagging_subscriber_is_dropped(start_web: Any) -> None:
    async with start_web(live=LiveOptions(max_pending_bytes=2000)) as web:
        busy = web.device("a", name="busy")
        quiet = web.device("a", name="quiet")
        async with live(web) as slow, live(web, who="a_mgr", query=f"?device_ids={quiet}") as other:
            hello, _ = await hello_and_snapshot(slow)
            assert hello["max_pending_bytes"] == 2000
            await hello_and_snapshot(other)
            await web.write_positions(busy, 10)  # one batch of 10 positions > 2,000 bytes
            assert await closed_with(slow) == (4008, "subscriber fell behind")
            assert web.hub.live.lagging_dropped == 1
            assert web.hub.pipeline.stats.stored == 10  # ingest went on
            await web.write_positions(quiet, 1)
            assert (await receive(other))["device_id"] == quiet  # the others too


async def test_keep_alive_pings(start_web: Any) -> None:
    async with start_web(live=LiveOptions(ping_interval=0.05)) as web, live(web) as ws:
        await hello_and_snapshot(ws)
        assert await receive(ws) == {"type": "ping"}
        assert await receive(ws) == {"type": "ping"}


async def test_oversized_messages_close_the_socket(web: Web) -> None:
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        await ws.send_message(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        code, _ = await closed_with(ws)
        assert code == 1009


async def test_shutdown_closes_with_going_away(web: Web) -> None:
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        web.hub.shutdown()
        assert await closed_with(ws) == (1001, "server shutting down")
