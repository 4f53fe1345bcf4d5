"""The live feed's frames, modes and compression against the real server: JSON arrays by
default, single messages on request, the ``latest`` mode for maps, and permessage-deflate
compressed once per shared frame (with a raw wsproto client, which can offer it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trio
from harness import T0, Web, make_hub, running_web
from test_live import HANG_GUARD, hello_and_snapshot, live, receive
from trio_websocket import ConnectionRejected
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.extensions import PerMessageDeflate

from hub.web.ws_compression import CompressionStats


async def test_frames_are_arrays_unless_single_ones_are_asked_for(web: Web) -> None:
    device = web.device("a")
    async with live(web) as arrays, live(web, query="?frames=single") as singles:
        first = json.loads(await arrays.get_message())
        assert isinstance(first, list) and first[0]["type"] == "hello"
        assert first[0]["frames"] == "array" and first[0]["mode"] == "all"
        hello = json.loads(await singles.get_message())
        assert hello["type"] == "hello" and hello["frames"] == "single"
        await web.write_positions(device, 3)
        got: list[dict[str, Any]] = []
        with trio.fail_after(HANG_GUARD):
            while len([m for m in got if m["type"] == "position"]) < 3:
                frame = json.loads(await arrays.get_message())
                assert isinstance(frame, list)
                got += frame
            singles_got = []
            while len(singles_got) < 3:
                message = json.loads(await singles.get_message())
                assert isinstance(message, dict)
                if message["type"] == "position":
                    singles_got.append(message)
        positions = [m for m in got if m["type"] == "position"]
        assert [m["data"]["id"] for m in positions] == [m["data"]["id"] for m in singles_got]


async def test_latest_mode_by_query_sends_the_newest_position_only(web: Web) -> None:
    device = web.device("a")
    async with live(web, query="?mode=latest&max_rate_s=3600") as ws:
        hello, _ = await hello_and_snapshot(ws)
        assert (hello["mode"], hello["max_rate_s"]) == ("latest", 3600.0)
        await web.write_positions(device, 5)  # one batch
        message = await receive(ws)
        assert message["type"] == "position"
        assert message["data"]["fix_time"] == (T0 + timedelta(minutes=4)).isoformat().replace(
            "+00:00", "Z"
        )
        await web.write_positions(device, 2, start=T0 + timedelta(hours=1))
        await ws.send_message('{"type":"ping"}')
        # the newer positions wait for the interval: nothing comes before the pong
        assert await receive(ws) == {"type": "pong"}


async def test_latest_mode_by_message_and_back(web: Web) -> None:
    device = web.device("a")
    await web.write_positions(device, 1)
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        await ws.send_message(json.dumps({"type": "subscribe", "mode": "latest"}))
        reply = await receive(ws)
        assert reply == {
            "type": "subscribed",
            "device_ids": None,
            "mode": "latest",
            "max_rate_s": 1.0,
            "snapshot": 1,
        }
        await receive(ws)  # the snapshot
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": [device]}))
        assert (await receive(ws))["mode"] == "all"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?mode=fast", "mode"),
        ("?mode=latest&max_rate_s=0", "max_rate_s"),
        ("?mode=latest&max_rate_s=soon", "max_rate_s"),
        ("?max_rate_s=1", "max_rate_s"),
        ("?frames=xml", "frames"),
    ],
)
async def test_bad_subscription_options_are_a_400_at_the_handshake(
    web: Web, query: str, field: str
) -> None:
    with pytest.raises(ConnectionRejected) as rejected:
        async with live(web, query=query):
            pass
    assert rejected.value.status_code == 400
    assert json.loads(rejected.value.body)["error"]["field"] == field


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"mode": "fast"}, "mode"),
        ({"mode": "latest", "max_rate_s": -1}, "max_rate_s"),
        ({"mode": "latest", "max_rate_s": "1"}, "max_rate_s"),
        ({"mode": "all", "max_rate_s": 1}, "max_rate_s"),
        ({"device_ids": [True]}, "device_ids"),
    ],
)
async def test_a_bad_subscribe_is_an_error_naming_the_field(
    web: Web, message: dict[str, Any], field: str
) -> None:
    async with live(web) as ws:
        await hello_and_snapshot(ws)
        await ws.send_message(json.dumps({"type": "subscribe", **message}))
        err = await receive(ws)
        assert (err["type"], err["code"], err["field"]) == ("error", "bad_message", field)
        await ws.send_message('{"type":"ping"}')
        assert await receive(ws) == {"type": "pong"}  # still open


# -- permessage-deflate, with a client that offers it -------------------------------------
class RawClient:
    """A WebSocket client on wsproto, offering permessage-deflate."""

    def __init__(self, stream: trio.SocketStream, conn: WSConnection) -> None:
        self.stream = stream
        self.conn = conn
        self.extensions: list[Any] = []
        self._parts: list[str] = []

    async def _events(self) -> list[Any]:
        data = await self.stream.receive_some(65536)
        self.conn.receive_data(data or None)
        return list(self.conn.events())

    async def handshake(self, host: str, path: str, headers: list[tuple[str, str]]) -> None:
        request = Request(
            host=host,
            target=path,
            extra_headers=[(k.encode(), v.encode()) for k, v in headers],
            extensions=[PerMessageDeflate()],
        )
        await self.stream.send_all(self.conn.send(request))
        while True:
            for event in await self._events():
                if isinstance(event, AcceptConnection):
                    self.extensions = event.extensions
                    return
                assert not isinstance(event, RejectConnection), event

    async def messages(self) -> list[dict[str, Any]]:
        """The messages of the next frame."""
        with trio.fail_after(HANG_GUARD):
            while True:
                for event in await self._events():
                    if isinstance(event, Ping):
                        await self.stream.send_all(self.conn.send(event.response()))
                    elif isinstance(event, CloseConnection):
                        raise AssertionError(f"closed: {event.code} {event.reason}")
                    elif isinstance(event, TextMessage):
                        self._parts.append(event.data)
                        if event.message_finished:
                            text, self._parts = "".join(self._parts), []
                            return json.loads(text)


@asynccontextmanager
async def raw_live(web: Web, who: str = "a_view") -> AsyncIterator[RawClient]:
    url = urlsplit(web.ws_url)
    stream = await trio.open_tcp_stream(url.hostname or "", url.port or 80)
    async with stream:
        client = RawClient(stream, WSConnection(ConnectionType.CLIENT))
        await client.handshake(
            f"{url.hostname}:{url.port}", url.path, list(web.headers(who).items())
        )
        yield client


async def positions(client: RawClient, count: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while len(got) < count:
        got += [m for m in await client.messages() if m["type"] == "position"]
    return got


async def test_deflate_compresses_a_shared_frame_once(web: Web) -> None:
    device = web.device("a")
    async with raw_live(web) as one, raw_live(web, "a_mgr") as two:
        for client in (one, two):
            (deflate,) = client.extensions
            assert deflate.name == "permessage-deflate" and deflate.server_no_context_takeover
            assert (await client.messages())[0]["type"] == "hello"
        CompressionStats.reset()
        await web.write_positions(device, 20)  # one batch: one frame of 20 positions
        first, second = await positions(one, 20), await positions(two, 20)
        assert first == second and len({m["data"]["id"] for m in first}) == 20
        assert CompressionStats.reused >= 1  # the second socket got the first's bytes
        assert CompressionStats.compressed <= CompressionStats.reused + 1


@pytest.mark.parametrize("choice", ["off", "per-socket"])
async def test_compression_can_be_per_socket_or_off(tmp_path: Path, choice: str) -> None:
    hub = make_hub(tmp_path, live_compression=choice)
    async with running_web(tmp_path, hub=hub) as web:
        device = web.device("a")
        async with raw_live(web) as client:
            if choice == "off":
                assert client.extensions == []
            else:
                (deflate,) = client.extensions
                assert not deflate.server_no_context_takeover
            assert (await client.messages())[0]["type"] == "hello"
            await web.write_positions(device, 5)
            assert len(await positions(client, 5)) == 5
