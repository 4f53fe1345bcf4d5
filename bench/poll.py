"""Polling benchmark: one account per platform with 1,000 units on its fake server.

For each platform plugin (Wialon, Flespi, Traccar, 3D Tracking, GPS-Server.net), a child
process serves the plugin's fake upstream on loopback with ``--units`` units; before each
cycle the bench moves the fake's clock on by 30 s and gives every unit ``--fixes`` new
fixes.  This process then runs one poll of the plugin the way a connection's runner does
(fetch, parse, ingest into SQLite through the pipeline, cursors committed) and prints, per
platform: HTTP requests per cycle against the target ``2 + ceil(units / batch size)`` (the
API's batch size where the plugin has no option for it: see ``API_BATCH``), wall and CPU
time per cycle (CPU of this process only: the fake's work is in the child), and fixes
ingested; then the peak memory.  The first cycle (device sync, backfill) is shown apart from the steady
ones.  A platform whose plugin is not installed is skipped.

``--silent 0.3`` parks that share of the units before the bench starts, each at a different
time over the last 20 hours (one fix, then nothing): their ranges start far apart, as a
fleet's parked vehicles' do.  The backfill then reaches a day back, and ``--warmup``
cycles (not measured) let the plugin catch up first.

    make bench        # or: uv run python bench/poll.py --units 1000 --cycles 5
    uv run python bench/poll.py --platforms traccar,flespi --silent 0.3
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio

PLATFORMS = {
    "wialon": ("gpshub_wialon", "FakeWialon"),
    "flespi": ("gpshub_flespi", "FakeFlespi"),
    "traccar": ("gpshub_traccar", "FakeTraccar"),
    "tracking3d": ("gpshub_tracking3d", "FakeTracking3D"),
    "gpsserver": ("gpshub_gpsserver", "FakeGpsServer"),
}
API_BATCH = {"tracking3d": None, "gpsserver": 1}
"""The API's batch size where the plugin has no ``batch_size`` option: ``None`` for an
account-wide feed (one request covers every unit), 1 where history is one device per
request (GPS-Server.net's ``OBJECT_GET_MESSAGES``)."""
START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC).timestamp()
INTERVAL = 30.0
PARKED_OVER_S = 20 * 3600.0  # parked units stopped at times spread over this long


# -- the child: a fake upstream with a control route ---------------------------------------
def parked(units: int, share: float) -> int:
    """How many of the units are parked (the first ones)."""
    return round(units * share)


def serve(platform: str, units: int, fixes: int, silent: float) -> None:
    """Serve the platform's fake with ``units`` units, the first ``silent`` share of them
    parked at times spread over ``PARKED_OVER_S``; print the URL, then serve forever."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Mount, Route

    from hub.testing import serve_app

    package, fake_name = PLATFORMS[platform]
    clock = {"now": START}
    fake = getattr(importlib.import_module(f"{package}.testing"), fake_name)(
        now=lambda: clock["now"]
    )
    ids = [
        fake.add_unit(f"unit {i:04d}", imei=f"35630704{i:07d}", plate=f"P-{i:04d}")
        for i in range(units)
    ]
    url: dict[str, str] = {}
    still = parked(units, silent)
    for n, unit in enumerate(ids[:still]):
        t = START - 600 - n * PARKED_OVER_S / still
        fake.add_fix(unit, t, 14.6 + n * 1e-4, -90.4, satellites=9, received=t + 2.0)
    moving = ids[still:]

    async def tick(request: Request) -> JSONResponse:
        """Move the clock to ``now`` and give each unit ``fixes`` fixes of the last cycle."""
        now = float(request.query_params["now"])
        step = INTERVAL / fixes
        for n, unit in enumerate(moving):
            for k in range(fixes):
                t = now - INTERVAL + (k + 1) * step - 2.0  # recorded 2 s before it arrives
                fake.add_fix(
                    unit,
                    t,
                    14.6 + n * 1e-4 + (now - START) * 1e-6,
                    -90.5 - k * 1e-5,
                    speed_kmh=float((n + k) % 90),
                    course=float((n * 7) % 360),
                    altitude=1500.0,
                    satellites=9,
                    ignition=True,
                    params={"fuel": 0.5, "power": 12.6},
                    received=t + 2.0,
                )
        clock["now"] = now
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"requests": fake.request_count, "by": dict(fake.requests)})

    async def config(request: Request) -> JSONResponse:
        return JSONResponse(
            {"credentials": fake.credentials(url["base"]), "options": fake.options(url["base"])}
        )

    app = Starlette(
        routes=[
            Route("/_bench/tick", tick, methods=["POST"]),
            Route("/_bench/stats", stats),
            Route("/_bench/config", config),
            Mount("/", app=fake.app),
        ]
    )

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            url["base"] = await nursery.start(serve_app, app)
            print(url["base"], flush=True)

    trio.run(main)


# -- this process: a hub polling the fake --------------------------------------------------
class SimClock:
    """The hub's wall clock: the bench moves it a cycle at a time."""

    def __init__(self) -> None:
        self.t = START

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)


@dataclass
class Cycle:
    requests: int
    wall: float
    cpu: float
    fixes: int


@dataclass
class Result:
    platform: str
    units: int
    batch: int
    cycles: list[Cycle] = field(default_factory=list)
    by_endpoint: dict[str, int] = field(default_factory=dict)
    stored: int = 0
    expected: int = 0


async def measure(platform: str, url: str, args: argparse.Namespace, tmp: Path) -> Result:
    from hub.config import Settings
    from hub.core import Hub
    from hub.plugins import load_plugins
    from hub.registry import Registry
    from hub.runner import SourceRunner, StoreStateStore, new_http_client
    from hub.secrets import SecretBox
    from hub.source import SourceContext
    from hub.store import Store

    package = importlib.import_module(PLATFORMS[platform][0])
    pm, infos = load_plugins(extra=[(platform, package)], use_entry_points=False)
    registry = Registry.collect(pm, infos)
    store = Store.open(
        f"sqlite:///{tmp / f'{platform}.db'}", SecretBox([SecretBox.generate_key().encode()])
    )
    clock = SimClock()
    settings = replace(Settings(data_dir=tmp), outbound_allow_networks=("127.0.0.0/8",))
    hub = Hub(store, registry, infos, clock=clock, settings=settings)
    async with httpx.AsyncClient(base_url=url, timeout=120) as control:
        config = (await control.get("/_bench/config")).raise_for_status().json()
        backfill = INTERVAL if not args.silent else 86_400.0  # reach the parked units' fixes
        options = {**config["options"], "backfill_s": backfill}
        client = store.create_client(platform)
        conn = store.create_connection(
            client.id, platform, f"{platform} bench", config["credentials"], options
        )
        created, _ = store.import_devices(conn.id or 0, await hub.browse(conn))
        assert len(created) == args.units, f"{platform}: imported {len(created)} units"
        cls = registry.source(platform)
        opts = cls.parse_options(options)
        batch = int(getattr(opts, "batch_size", 0) or API_BATCH.get(platform) or args.units)
        result = Result(platform, args.units, batch)
        runner = SourceRunner(hub, conn.id or 0)

        async def requests() -> tuple[int, dict[str, int]]:
            body = (await control.get("/_bench/stats")).json()
            return int(body["requests"]), dict(body["by"])

        async with trio.open_nursery() as nursery, new_http_client(hub.outbound_policy) as http:
            await nursery.start(hub.pipeline.run)
            ctx: SourceContext[Any, Any] = SourceContext(
                credentials=cls.parse_credentials(config["credentials"]),
                options=opts,
                http=http,
                log=logging.getLogger(f"bench.{platform}"),
                state=StoreStateStore(hub, conn.id or 0),
                clock=clock,
                connection_id=conn.id,
            )
            source = cls(ctx)
            for _ in range(args.warmup if args.silent else 0):
                clock.t += INTERVAL
                (await control.post("/_bench/tick", params={"now": clock.t})).raise_for_status()
                await runner._poll_once(source)
            _, start_by = await requests()
            for _ in range(args.cycles):
                clock.t += INTERVAL
                (await control.post("/_bench/tick", params={"now": clock.t})).raise_for_status()
                before, _ = await requests()
                wall0, cpu0 = time.perf_counter(), time.process_time()
                count = await runner._poll_once(source)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                after, by = await requests()
                result.cycles.append(Cycle(after - before, wall, cpu, count or 0))
            result.by_endpoint = {k: v - start_by.get(k, 0) for k, v in by.items()}
            await source.aclose()
            await hub.pipeline.close()
            nursery.cancel_scope.cancel()
    stored = store.positions.count()
    still = parked(args.units, args.silent)
    warmup = args.warmup if args.silent else 0
    result.stored = stored
    result.expected = (args.units - still) * args.fixes * (warmup + args.cycles) + still
    store.close()
    return result


def report(results: list[Result]) -> None:
    print(
        f"{'platform':<8} {'units':>5} {'batch':>5} {'target':>6} "
        f"{'req 1st':>7} {'req/cycle':>9} {'wall ms':>8} {'CPU ms':>7} {'fixes/cycle':>11}"
    )
    for r in results:
        first, steady = r.cycles[0], r.cycles[1:] or r.cycles
        target = 2 + math.ceil(r.units / r.batch)
        n = len(steady)
        print(
            f"{r.platform:<8} {r.units:>5} {r.batch:>5} {target:>6} {first.requests:>7} "
            f"{sum(c.requests for c in steady) / n:>9.1f} "
            f"{1000 * sum(c.wall for c in steady) / n:>8.0f} "
            f"{1000 * sum(c.cpu for c in steady) / n:>7.0f} "
            f"{sum(c.fixes for c in steady) / n:>11.0f}"
        )
        print(
            f"{'':<8} first cycle: wall {1000 * first.wall:.0f} ms, CPU {1000 * first.cpu:.0f} ms,"
            f" {first.fixes} fixes; requests by endpoint over all cycles: {r.by_endpoint}"
        )
        if r.stored != r.expected:
            print(f"{'':<8} FIXES MISSING: stored {r.stored} fixes of {r.expected}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--fixes", type=int, default=1, help="new fixes per unit per cycle")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--platforms", default=",".join(PLATFORMS))
    parser.add_argument(
        "--silent", type=float, default=0.0, help="share of the units parked at different times"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="cycles not measured first (with --silent)"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.units, args.fixes, args.silent)
        return
    results = []
    for platform in args.platforms.split(","):
        if importlib.util.find_spec(PLATFORMS[platform][0]) is None:
            print(
                f"{platform}: {PLATFORMS[platform][0]} is not installed; skipped", file=sys.stderr
            )
            continue
        child = subprocess.Popen(
            [sys.executable, __file__, "--serve", platform, "--units", str(args.units),
             "--fixes", str(args.fixes), "--silent", str(args.silent)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert child.stdout is not None
            url = child.stdout.readline().strip()
            with tempfile.TemporaryDirectory() as tmp:
                results.append(trio.run(measure, platform, url, args, Path(tmp)))
        finally:
            child.terminate()
            child.wait(10)
        print(json.dumps({"done": platform}), file=sys.stderr)
    if args.silent:
        print(
            f"{parked(args.units, args.silent)} of {args.units} units parked at times spread"
            f" over {PARKED_OVER_S / 3600:.0f} h; {args.warmup} warm-up cycles not shown"
        )
    report(results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the polling process (all platforms, one after another): {peak:.0f} MiB")
    if any(r.stored != r.expected for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
