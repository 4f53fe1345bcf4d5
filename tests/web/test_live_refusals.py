"""How the live feed refuses, case by case, as its docstring and the README say: what can
be judged at the handshake gets an HTTP status there; what can be judged only after
first-message authentication gets an ``error`` message, then a close code; a subscribe
that names devices that are not yours gets an ``error`` and changes nothing."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Any

import fakesource
import pytest
from harness import T0, Web, make_hub
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from test_live import closed_with, hello_and_snapshot, live, receive
from trio_websocket import ConnectionRejected, open_websocket_url

from hub.hookspecs import hookimpl
from hub.plugins import load_plugins
from hub.registry import Registry


def auth(web: Web, who: str) -> str:
    return json.dumps({"type": "auth", "token": web.tokens[who]})


@pytest.mark.parametrize("header", ["Bearer gph_nope", "Basic YTpi", "Bearer"])
async def test_a_bad_header_token_is_a_401_at_the_handshake(web: Web, header: str) -> None:
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(web.ws_url, extra_headers=[("Authorization", header)]):
            pass
    assert rejected.value.status_code == 401
    assert json.loads(rejected.value.body)["error"]["code"] == "invalid_token"


async def test_first_message_auth_refusals_close_with_4001(web: Web) -> None:
    async with live(web, who=None) as ws:
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": None}))
        assert (await receive(ws))["code"] == "unauthorized"
        assert await closed_with(ws) == (4001, "unauthorized")
    async with live(web, who=None) as ws:
        await ws.send_message(json.dumps({"type": "auth", "token": "gph_nope"}))
        assert (await receive(ws))["code"] == "invalid_token"
        assert await closed_with(ws) == (4001, "invalid token")


@pytest.mark.parametrize("by_message", [False, True])
async def test_query_ids_that_are_not_yours_close_with_4003(web: Web, by_message: bool) -> None:
    mine = web.device("a", name="mine")
    theirs = web.device("b", name="theirs")
    query = f"?device_ids={mine},{theirs}"
    async with live(web, who=None if by_message else "a_view", query=query) as ws:
        if by_message:
            await ws.send_message(auth(web, "a_view"))
        err = await receive(ws)
        assert err["type"] == "error" and err["code"] == "unknown_devices"
        assert err["device_ids"] == [theirs]
        assert await closed_with(ws) == (4003, "unknown device ids")
    with pytest.raises(ConnectionRejected) as rejected:
        async with live(web, query="?device_ids=mine"):
            pass
    assert rejected.value.status_code == 400
    assert json.loads(rejected.value.body)["error"]["field"] == "device_ids"


async def test_a_subscribe_naming_other_devices_is_an_error_and_changes_nothing(
    web: Web,
) -> None:
    mine = web.device("a", name="mine")
    theirs = web.device("b", name="theirs")
    async with live(web, who=None, query=f"?device_ids={mine}") as ws:
        await ws.send_message(auth(web, "a_view"))
        hello, _ = await hello_and_snapshot(ws)
        assert hello["device_ids"] == [mine]
        await ws.send_message(json.dumps({"type": "subscribe", "device_ids": [theirs]}))
        err = await receive(ws)
        assert err == {
            "type": "error",
            "code": "unknown_devices",
            "message": f"not your devices: {theirs}; selection unchanged",
            "device_ids": [theirs],
        }
        await web.write_positions(theirs, 1)
        await web.write_positions(mine, 1, start=T0)
        got = await receive(ws)
        assert (got["type"], got["device_id"]) == ("position", mine)  # still open, same selection


def ws_plugin() -> types.ModuleType:
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.scope["state"]["principal"].name)
        await ws.close()

    module = types.ModuleType("wsextras")

    @hookimpl
    def register_routes(hub: Any) -> list[Any]:
        return [WebSocketRoute("/echo", echo)]

    module.register_routes = register_routes  # type: ignore[attr-defined]
    return module


async def test_a_plugins_websocket_refuses_a_bad_token_with_401_too(
    tmp_path: Path, start_web: Any
) -> None:
    hub = make_hub(tmp_path)
    pm, infos = load_plugins(
        extra=[("testsource", fakesource), ("wsextras", ws_plugin())], use_entry_points=False
    )
    hub.registry = Registry.collect(pm, infos)
    hub.plugin_manager = pm
    async with start_web(hub=hub) as web:
        url = web.ws_url.replace("/api/live", "/api/plugins/wsextras/echo")
        for who in (None, "malformed"):
            headers = list(web.headers(who).items())
            with pytest.raises(ConnectionRejected) as rejected:
                async with open_websocket_url(url, extra_headers=headers):
                    pass
            assert rejected.value.status_code == 401, who
        headers = list(web.headers("a_view").items())
        async with open_websocket_url(url, extra_headers=headers) as ws:
            assert await ws.get_message() == "a_view"
