"""Live feed across processes: latency from a commit on one hub to the message on a
WebSocket held to another hub process on the same PostgreSQL database.

Hub B is a real ``gpshub serve`` process; hub A runs in this process (no web server) and
submits ``--count`` batches of ``--batch`` fixes (one per device), ``--gap`` seconds
apart; a WebSocket client in this process, connected to B's ``/api/live``, notes when
each position arrives.  Both ends are timed by one clock.  The latency of a position is
from the moment A's transaction sends its notice (last, just before it commits) to its
arrival on B's socket; A's ``submit`` is printed too.
B routes its live messages once per ``live_tick_s`` (50 ms) under load, at once after a
quiet spell, as for local messages.

    .venv/bin/python bench/live_cluster.py
    .venv/bin/python bench/live_cluster.py --batch 100 --count 100 --gap 0.05

Works in a schema of its own (dropped at the end) of ``--database-url`` (default: the
local server's ``test`` database).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio
from trio_websocket import open_websocket_url

from hub.fix import PositionFix
from hub.models import Role
from hub.positions import IngestItem
from hub.secrets import SecretBox
from hub.testing import make_hub

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def with_schema(url: str) -> tuple[str, sa.Engine, str]:
    schema = "bench_" + secrets.token_hex(4)
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", admin, schema


async def start_serve(env: dict[str, str], nursery: trio.Nursery) -> tuple[Any, str]:
    """``gpshub serve`` on a free port; the process and its URL."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hub.cli", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    found: list[str] = []
    seen = trio.Event()

    async def read() -> None:
        out = b""
        assert proc.stdout is not None
        async for chunk in proc.stdout:
            out += chunk
            match = re.search(rb"http://127\.0\.0\.1:\d+", out)
            if match and not found:
                found.append(match.group().decode())
                seen.set()
            if len(out) > 65536:
                out = out[-1024:]

    nursery.start_soon(read)
    with trio.fail_after(60):
        await seen.wait()
    return proc, found[0]


async def measure(url: str, count: int, batch: int, gap: float) -> dict[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env.update(
        GPSHUB_DATA_DIR=tempfile.mkdtemp(),
        GPSHUB_SECRET_KEY=SecretBox.generate_key(),
        GPSHUB_DATABASE_URL=url,
        GPSHUB_LOG_LEVEL="WARNING",
    )
    hub = make_hub(
        Path(tempfile.mkdtemp()), db_url=url, secret_key=env["GPSHUB_SECRET_KEY"].encode()
    )
    store = hub.store
    client = store.create_client("bench")
    owner = store.create_user("bench", Role.MANAGER, client.id)
    devices = [store.create_device(client.id, name=f"unit {i}").id for i in range(batch)]
    _, token = store.create_token(owner.id, "bench")
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    committed: dict[int, float] = {}
    arrived: dict[int, float] = {}
    submit_s: list[float] = []
    announce = hub.relay.announce_batch

    def timed(conn: Any, result: Any, now: datetime) -> None:  # just before the commit
        at = time.perf_counter()
        for row in result.inserted:
            committed[row["id"]] = at
        announce(conn, result, now)

    hub.store.positions.before_commit = timed
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        proc, base = await start_serve(env, nursery)
        try:
            ws_url = base.replace("http://", "ws://") + "/api/live"
            headers = [("Authorization", f"Bearer {token}")]
            async with open_websocket_url(ws_url, extra_headers=headers) as ws:
                json.loads(await ws.get_message())  # hello

                async def receive() -> None:
                    while len(arrived) < count * batch:
                        text = await ws.get_message()
                        now = time.perf_counter()
                        for m in json.loads(text):
                            if m["type"] == "position":
                                arrived[m["data"]["id"]] = now

                async with trio.open_nursery() as inner:
                    inner.start_soon(receive)
                    for k in range(count):
                        items = [
                            IngestItem(d, None, PositionFix(t0 + timedelta(seconds=k), 14.6, -90.5))
                            for d in devices
                        ]
                        started = time.perf_counter()
                        result = await hub.pipeline.submit(items)
                        done = time.perf_counter()
                        submit_s.append(done - started)
                        assert len(result.inserted) == batch
                        await trio.sleep(gap)
                    with trio.fail_after(60):
                        while len(arrived) < count * batch:  # noqa: ASYNC110
                            await trio.sleep(0.05)
                    inner.cancel_scope.cancel()
        finally:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await proc.wait()
            if proc.returncode is None:
                proc.kill()
            hub.shutdown()
    store.close()
    return {
        "latency": [arrived[i] - t for i, t in committed.items()],
        "submit": submit_s,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("GPSHUB_TEST_POSTGRES_URL",
                                                                 DEFAULT_URL))  # fmt: skip
    parser.add_argument("--count", type=int, default=200, help="batches")
    parser.add_argument("--batch", type=int, default=1, help="fixes per batch (one per device)")
    parser.add_argument("--gap", type=float, default=0.1, help="seconds between batches")
    args = parser.parse_args()
    url, admin, schema = with_schema(args.database_url)
    try:
        got = trio.run(measure, url, args.count, args.batch, args.gap)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    lat = [x * 1000 for x in got["latency"]]
    sub = [x * 1000 for x in got["submit"]]
    print(f"{args.count} batches of {args.batch} fix(es), {args.gap} s apart; hub B: gpshub serve")
    print(
        f"commit on A -> message on B's WebSocket: median {statistics.median(lat):.1f} ms, "
        f"p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms ({len(lat)} positions)"
    )
    print(f"A's submit (commit and notice inside): median {statistics.median(sub):.1f} ms, "
          f"p99 {pct(sub, 0.99):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
