"""Polling benchmark: one account per platform with 1,000 units on its fake server.

For each platform plugin (Wialon, Flespi, Traccar, 3D Tracking, GPS-Server.net), a child
process serves the plugin's fake upstream on loopback with ``--units`` units; before each
cycle the bench moves the fake's clock on by 30 s and gives every unit ``--fixes`` new
fixes.  This process then runs one poll of the plugin the way a connection's runner does
(fetch, parse, ingest into SQLite through the pipeline, cursors committed) and prints, per
platform: HTTP requests per cycle against the target ``2 + ceil(units / batch size)`` (the
API's batch size where the plugin has no option for it: see ``API_BATCH``), wall and CPU
time per cycle (CPU of this process only: the fake's work is in the child), and fixes
ingested; then the peak memory.  The cycles until every unit has fixes stored (the first:
device sync, backfill) are shown apart from the steady ones that follow.  A plugin with a
request budget (``max_requests_per_poll``: GPS-Server.net) fetches a large account's
histories in turn, so the bench polls until every unit has fixes, then ``--cycles - 1``
steady cycles, and prints how stale the stored fixes get (the newest stored fix of the
unit waiting longest, after each steady cycle) and how many cycles without new fixes it
takes until every fix is stored.  A platform whose plugin is not installed is skipped.

``--silent 0.3`` parks that share of the units before the bench starts, each at a different
time over the last 20 hours (one fix, then nothing): their ranges start far apart, as a
fleet's parked vehicles' do.  The backfill then reaches a day back, and ``--warmup``
cycles (not measured) let the plugin catch up first.

With ``--history-h H`` every unit also has H hours of history before the first cycle (a
fix every ``--history-every`` s, with the same readings) and the connection a backfill of
``--backfill-s`` (default 1 h): the bench then polls until every unit's newest fix is
stored ("live") and prints how many polls and how much time that took (simulated: one poll
per 30 s cycle; wall: the polls' own time), counting the cycles until then as the first
start and the rest as steady.

    make bench        # or: uv run python bench/poll.py --units 1000 --cycles 5
    uv run python bench/poll.py --platforms tracking3d --history-h 24   # a first start
    uv run python bench/poll.py --platforms traccar,flespi --silent 0.3   # parked units
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
MAX_CYCLES = 200
"""Give up on a platform that has not stored every fix after this many cycles."""


# -- the child: a fake upstream with a control route ---------------------------------------
def history_times(args: argparse.Namespace) -> list[float]:
    """The fix times of each unit's history: every ``history_every`` s up to ``START - 2``."""
    count = int(args.history_h * 3600 // args.history_every)
    return [START - 2.0 - args.history_every * k for k in reversed(range(count))]


def add_fixes(fake: Any, ids: list[str], t: float, k: int, now: float) -> None:
    """One fix of each unit at ``t`` (the ``k``-th of its cycle), received 2 s later."""
    for n, unit in enumerate(ids):
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


def parked(args: argparse.Namespace) -> int:
    """How many of the units are parked (the first ones)."""
    return round(args.units * args.silent)


def serve(platform: str, args: argparse.Namespace) -> None:
    """Serve the platform's fake with ``args.units`` units (and their history), the first
    ``--silent`` share of them parked at times spread over ``PARKED_OVER_S``; print the
    URL, then serve forever."""
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
        for i in range(args.units)
    ]
    still = parked(args)
    for n, unit in enumerate(ids[:still]):
        t = START - 600 - n * PARKED_OVER_S / still
        fake.add_fix(unit, t, 14.6 + n * 1e-4, -90.4, satellites=9, received=t + 2.0)
    moving = ids[still:]
    for t in history_times(args):
        add_fixes(fake, moving, t, 0, t + 2.0)
    url: dict[str, str] = {}

    async def tick(request: Request) -> JSONResponse:
        """Move the clock to ``now`` and give each unit ``fixes`` fixes of the last cycle."""
        now = float(request.query_params["now"])
        count = int(request.query_params.get("fixes", args.fixes))
        step = INTERVAL / max(count, 1)
        for k in range(count):
            t = now - INTERVAL + (k + 1) * step - 2.0  # recorded 2 s before it arrives
            add_fixes(fake, moving, t, k, now)
        clock["now"] = now
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"requests": fake.request_count, "by": dict(fake.requests)})

    async def config(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "credentials": fake.credentials(url["base"]),
                "options": fake.options(url["base"]),
                "parked": ids[:still],
            }
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
    live: bool
    """Whether every unit's newest fix was stored after this cycle."""
    stale: float
    """Seconds between the cycle's time and the newest stored fix of the unit waiting
    longest (``inf`` while a unit has none)."""


@dataclass
class Result:
    platform: str
    units: int
    batch: int
    budget: int | None = None
    cycles: list[Cycle] = field(default_factory=list)
    drain: int = 0
    """Cycles without new fixes until every fix was stored."""
    by_endpoint: dict[str, int] = field(default_factory=dict)
    history: int = 0
    """History fixes per unit in the fake before the first cycle."""
    backfill: float = INTERVAL
    stored: int = 0
    expected: int = 0
    exact: bool = True
    """Whether every fix must be stored (not with history beyond the backfill, where only
    3D Tracking's feed says exactly what the backfill holds)."""

    @property
    def live_at(self) -> int | None:
        """How many cycles it took until every unit's newest fix was stored."""
        return next((i + 1 for i, c in enumerate(self.cycles) if c.live), None)

    @property
    def first_full(self) -> int | None:
        """How many cycles it took until every unit had fixes stored."""
        return next((i + 1 for i, c in enumerate(self.cycles) if math.isfinite(c.stale)), None)

    @property
    def head(self) -> int | None:
        """The start-up cycles, shown apart from the steady ones: until live with
        history, else until every unit has fixes."""
        return self.live_at if self.history else self.first_full


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
        options = {**config["options"], "backfill_s": args.backfill_s}
        client = store.create_client(platform)
        conn = store.create_connection(
            client.id, platform, f"{platform} bench", config["credentials"], options
        )
        created, _ = store.import_devices(conn.id or 0, await hub.browse(conn))
        assert len(created) == args.units, f"{platform}: imported {len(created)} units"
        cls = registry.source(platform)
        opts = cls.parse_options(options)
        batch = int(getattr(opts, "batch_size", 0) or API_BATCH.get(platform) or args.units)
        result = Result(
            platform,
            args.units,
            batch,
            getattr(opts, "max_requests_per_poll", None),
            history=len(history_times(args)),
            backfill=args.backfill_s,
        )
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
            _, start_by = await requests()
            still = set(config["parked"])
            device_ids = [
                d.id
                for d in store.list_devices(connection_id=conn.id)
                if d.upstream_id not in still
            ]
            floor = START + INTERVAL - args.backfill_s  # the backfill from the first poll's time
            kept = sum(1 for t in history_times(args) if t >= floor)
            exact = args.history_h <= 0 or platform == "tracking3d"
            for _ in range(args.warmup if still else 0):
                clock.t += INTERVAL
                (await control.post("/_bench/tick", params={"now": clock.t})).raise_for_status()
                await runner._poll_once(source)
            warmup = args.warmup if still else 0

            async def cycle(fixes: int) -> Cycle:
                clock.t += INTERVAL
                tick = {"now": clock.t, "fixes": fixes}
                (await control.post("/_bench/tick", params=tick)).raise_for_status()
                before, _ = await requests()
                wall0, cpu0 = time.perf_counter(), time.process_time()
                count = await runner._poll_once(source)
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
                after, _ = await requests()
                latest = store.positions.latest(device_ids)
                times = [_aware(r["fix_time"]).timestamp() for r in latest]
                everyone = len(latest) == len(device_ids)
                live = everyone and all(t == clock.t - 2.0 for t in times)
                stale = clock.t - min(times) if everyone else math.inf
                return Cycle(after - before, wall, cpu, count or 0, live, stale)

            while len(result.cycles) < MAX_CYCLES:
                result.cycles.append(await cycle(args.fixes))
                head = result.head
                if head is not None and len(result.cycles) >= head + args.cycles - 1:
                    break
            moving = len(device_ids)
            expected = moving * (args.fixes * (warmup + len(result.cycles)) + kept) + len(still)
            while exact and store.positions.count() < expected and result.drain < MAX_CYCLES:
                await cycle(0)
                result.drain += 1
            _, by = await requests()
            result.by_endpoint = {k: v - start_by.get(k, 0) for k, v in by.items()}
            await source.aclose()
            await hub.pipeline.close()
            nursery.cancel_scope.cancel()
    result.stored, result.expected, result.exact = store.positions.count(), expected, exact
    store.close()
    return result


def _aware(moment: datetime) -> datetime:
    """A stored time as an aware UTC datetime (SQLite gives them back naive)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def report(results: list[Result]) -> None:
    print(
        f"{'platform':<8} {'units':>5} {'batch':>5} {'target':>6} "
        f"{'req 1st':>7} {'req/cycle':>9} {'wall ms':>8} {'CPU ms':>7} {'fixes/cycle':>11}"
    )
    for r in results:
        first, steady = r.cycles[0], r.cycles[r.head or 1 :] or r.cycles
        target = 2 + math.ceil(r.units / r.batch)
        if r.budget is not None:
            target = min(target, r.budget)
        n = len(steady)
        if r.stored != r.expected:
            missing = "FIXES MISSING" if r.exact else "beyond the backfill"
            print(f"{r.platform}: {missing}: stored {r.stored} fixes of {r.expected}")
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
        if r.history:
            report_first_start(r)
        elif r.first_full is None:
            print(f"{'':<8} some unit had no fixes after {len(r.cycles)} cycles")
        else:
            print(
                f"{'':<8} every unit has fixes after {r.first_full} cycle(s)"
                f" ({r.first_full * INTERVAL:.0f} s); then the stalest unit's newest fix is at"
                f" most {max(c.stale for c in steady):.0f} s old ({len(steady)} cycle(s)); most"
                f" requests in a cycle {max(c.requests for c in r.cycles)}; every fix stored"
                f" {r.drain} cycle(s) after the last new one"
            )


def report_first_start(r: Result) -> None:
    """How long a first start with history took until every unit's newest fix was stored."""
    history = f"{r.history} history fixes per unit, backfill {r.backfill:g} s"
    if r.live_at is None:
        print(f"{'':<8} first start ({history}): not live after {len(r.cycles)} polls")
        return
    head = r.cycles[: r.live_at]
    print(
        f"{'':<8} first start ({history}): live after {r.live_at} poll(s), i.e."
        f" {r.live_at * INTERVAL:.0f} s simulated at a poll per {INTERVAL:.0f} s;"
        f" {sum(c.wall for c in head):.1f} s wall, {sum(c.cpu for c in head):.1f} s CPU,"
        f" {sum(c.requests for c in head)} requests, {sum(c.fixes for c in head)} fixes"
        f" until then ({', '.join(str(c.requests) for c in head)} per poll)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--units", type=int, default=1000)
    parser.add_argument("--fixes", type=int, default=1, help="new fixes per unit per cycle")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--platforms", default=",".join(PLATFORMS))
    parser.add_argument(
        "--history-h", type=float, default=0.0, help="hours of history each unit has at start"
    )
    parser.add_argument(
        "--history-every", type=float, default=300.0, help="seconds between history fixes"
    )
    parser.add_argument(
        "--backfill-s",
        type=float,
        default=None,
        help="the connections' backfill (default: one cycle, 1 h with --history-h, a day"
        " with --silent)",
    )
    parser.add_argument(
        "--silent", type=float, default=0.0, help="share of the units parked at different times"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="cycles not measured first (with --silent)"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backfill_s is None:
        args.backfill_s = 86_400.0 if args.silent else 3600.0 if args.history_h > 0 else INTERVAL
    if args.serve:
        serve(args.serve, args)
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
             "--fixes", str(args.fixes), "--history-h", str(args.history_h),
             "--history-every", str(args.history_every), "--silent", str(args.silent)],
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
            f"{parked(args)} of {args.units} units parked at times spread over"
            f" {PARKED_OVER_S / 3600:.0f} h; {args.warmup} warm-up cycles not shown"
        )
    report(results)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the polling process (all platforms, one after another): {peak:.0f} MiB")
    if any(r.exact and r.stored != r.expected for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
