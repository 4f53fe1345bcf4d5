"""Changes made by other processes reach a running ``gpshub serve`` (issue 12, item 7):
real processes on one SQLite file, then on PostgreSQL.

The serving hub is a subprocess; the CLI, in other processes, adds a connection, links a
device to it and later revokes a token.  The connection is polled and the live socket
held to the serving process is closed, each within a generous bound (the hub looks for
changes every second).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, open_websocket_url

from hub.cluster_testing import serving_process
from hub.secrets import SecretBox

ROUTE = "14.60,-90.50\n14.61,-90.51\n14.62,-90.50\n"
WAIT = 90.0  # seconds: a bound against hangs on a busy machine, not a timing


def environment(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env.update(
        GPSHUB_DATA_DIR=str(data_dir),
        GPSHUB_SECRET_KEY=SecretBox.generate_key(),
        COLUMNS="200",
    )
    if database_url:
        env["GPSHUB_DATABASE_URL"] = database_url
    return env


def run(env: dict[str, str], *argv: str) -> str:
    """A process to its end; its output."""
    done = subprocess.run(
        [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=WAIT
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def gpshub(env: dict[str, str], *argv: str) -> str:
    return run(env, "-m", "hub.cli", *argv)


@asynccontextmanager
async def serving(env: dict[str, str], log: list[bytes]) -> AsyncIterator[str]:
    """``serving_process``'s URL."""
    async with serving_process(env, log) as (_, url):
        yield url


async def the_change_reaches_the_serving_hub(tmp_path: Path, database_url: str | None) -> None:
    env = environment(tmp_path / "data", database_url)
    gpshub(env, "client", "add", "ACME")
    token = re.findall(
        r"gph_\w+",
        gpshub(env, "token", "create", "--client", "ACME", "--user", "ana", "--role", "viewer",
               "--name", "ana's"),
    )[0]  # fmt: skip
    (tmp_path / "route.txt").write_text(ROUTE)
    headers = {"Authorization": f"Bearer {token}"}
    log: list[bytes] = []
    async with serving(env, log) as url:
        out = gpshub(
            env, "connection", "add", "--client", "ACME", "--kind", "simulator",
            "--label", "van", "-c", f"waypoints=@{tmp_path / 'route.txt'}", "--no-test",
        )  # fmt: skip
        connection = int(re.findall(r"connection (\d+)", out)[0])
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=WAIT) as http:

            async def status() -> dict[str, object]:
                return (await http.get(f"/api/connections/{connection}/status")).json()

            with trio.fail_after(WAIT):  # the running hub took the connection on
                while (await status())["state"] == "new":  # noqa: ASYNC110 - another process
                    await trio.sleep(0.2)
            assert (await status())["state"] == "idle", b"".join(log).decode()
            gpshub(env, "device", "add", "van", "--client", "ACME",
                   "--connection-id", str(connection), "--upstream-id", "van-1")  # fmt: skip
            with trio.fail_after(WAIT):  # and polls the device linked to it since
                while not (await http.get("/api/devices/latest")).json()["positions"]:  # noqa: ASYNC110
                    await trio.sleep(0.2)

        ws_url = url.replace("http://", "ws://") + "/api/live"
        async with open_websocket_url(ws_url, extra_headers=list(headers.items())) as ws:
            hello = json.loads(await ws.get_message())[0]  # a frame: an array of messages
            assert hello["type"] == "hello"
            (ana,) = [t for t in json.loads(gpshub(env, "token", "list", "--json"))
                      if t["name"] == "ana's"]  # fmt: skip
            gpshub(env, "token", "revoke", str(ana["id"]))
            with trio.fail_after(WAIT):
                reason = await closing(ws)
            assert (reason.code, reason.reason) == (4001, "token revoked")


async def closing(ws: WebSocketConnection) -> CloseReason:
    """Read until the server closes the socket; why it did."""
    while True:
        try:
            await ws.get_message()
        except ConnectionClosed as exc:
            return exc.reason


async def test_sqlite(tmp_path: Path) -> None:
    await the_change_reaches_the_serving_hub(tmp_path, None)


@pytest.mark.postgres
async def test_postgresql(tmp_path: Path, pg_url: str) -> None:
    await the_change_reaches_the_serving_hub(tmp_path, pg_url)
