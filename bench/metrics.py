"""``/metrics`` scrape time: 1,000 devices, 50 connections and 50 sinks.

A hub on SQLite with 10 clients, each with 100 devices, 5 connections and 5 location
sinks, and the in-memory series a running hub has (every connection's polls by outcome
and their latency, every sink's request latency).  ``GET /metrics`` is timed through the
real API (hypercorn, token check included), and ``HubMetrics.render`` alone: first with
nothing owed (sinks that keep up), then after 10 positions per device with every sink
paused, so that each owes its client's 1,000 messages (counting them is the part of a
scrape that grows: with a receiver down, with its backlog).  Prints the median and the
slowest scrape, and the size of the exposition.

    make bench            # or: uv run python bench/metrics.py --scrapes 50
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import trio

from hub.blocking import run_blocking
from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.models import Role
from hub.plugins import load_plugins
from hub.positions import IngestItem
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.store import Store
from hub.web import serve

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def build(tmp: Path, args: argparse.Namespace) -> tuple[Hub, str, list[int]]:
    pm, infos = load_plugins()  # the installed plugins: simulator, Startrack's sinks …
    registry = Registry.collect(pm, infos)
    store = Store.open(
        f"sqlite:///{tmp / 'hub.db'}", SecretBox([SecretBox.generate_key().encode()])
    )
    settings = Settings(data_dir=tmp, log_summary_s=0.0, status_check_s=3600.0)
    hub = Hub(store, registry, infos, settings=settings)
    admin = store.create_user("admin", Role.ADMIN, None)
    token = store.create_token(admin.id or 0, "bench")[1]
    per_client = args.devices // args.clients
    devices: list[int] = []
    for c in range(args.clients):
        client = store.create_client(f"client {c}").id or 0
        conns = [
            store.create_connection(
                client, "simulator", f"fleet {c}.{k}", {"waypoints": "14.6,-90.5\n14.7,-90.6"},
                enabled=False,
            ).id or 0
            for k in range(args.connections // args.clients)
        ]  # fmt: skip
        for s in range(args.sinks // args.clients):
            store.sinks.create(
                client,
                name=f"relay {c}.{s}",
                kind="startrack-relay",
                format="startrack-json1",
                purpose="locations",
                settings={"url": f"https://relay{s}.example/json1"},
                enabled=False,
            )
        for d in range(per_client):
            devices.append(
                store.create_device(
                    client,
                    name=f"unit {c}.{d}",
                    connection_id=conns[d % len(conns)],
                    upstream_id=f"u{c}-{d}",
                ).id
                or 0
            )
    # what a running hub has in memory: every connection polled, every sink delivering
    for conn in store.list_connections():
        for outcome in ("ok", "failed", "timeout"):
            hub.metrics.observe_poll(conn.id or 0, conn.kind, outcome, 0.3)
    for sink in store.sinks.list():
        hub.metrics.observe_delivery(sink.id or 0, sink.kind, 0.05)
    return hub, token, devices


async def feed(hub: Hub, devices: list[int], fixes: int) -> None:
    for n in range(fixes):
        items = [
            IngestItem(d, None, PositionFix(EPOCH + timedelta(seconds=10 * n), 14.6, -90.5))
            for d in devices
        ]
        await hub.pipeline.submit(items)


def figures(times: list[float]) -> str:
    ms = sorted(t * 1000 for t in times)
    return f"median {statistics.median(ms):.1f} ms, slowest {ms[-1]:.1f} ms"


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        hub, token, devices = build(Path(tmp), args)
        async with trio.open_nursery() as nursery:
            url = await nursery.start(
                functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0))
            )
            print(
                f"metrics: {len(devices):,} devices, {args.connections} connections, "
                f"{args.sinks} sinks; {args.scrapes} scrapes each"
            )
            await scrapes(hub, url, token, args, "nothing owed")
            await feed(hub, devices, args.fixes)
            owed = len(devices) // args.clients * args.fixes
            await scrapes(hub, url, token, args, f"{owed:,} owed per sink")
            hub.shutdown()
        hub.store.close()


async def scrapes(hub: Hub, url: str, token: str, args: argparse.Namespace, what: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    http_times: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as http:
        r = await http.get("/metrics")  # warm up
        r.raise_for_status()
        for _ in range(args.scrapes):
            started = time.perf_counter()
            r = await http.get("/metrics")
            http_times.append(time.perf_counter() - started)
    render_times = []
    for _ in range(args.scrapes):
        await run_blocking(hub.metrics.render)
        render_times.append(hub.metrics.last_render_s)
    lines = [line for line in r.text.splitlines() if line and not line.startswith("#")]
    print(f"  {what}:")
    print(f"    GET /metrics:     {figures(http_times)} (token checked)")
    print(f"    render alone:     {figures(render_times)}")
    print(f"    exposition:       {len(r.text) / 1024:,.0f} KiB, {len(lines):,} series")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--sinks", type=int, default=50)
    ap.add_argument("--fixes", type=int, default=10, help="positions per device (the outbox)")
    ap.add_argument("--scrapes", type=int, default=50)
    trio.run(main, ap.parse_args())
