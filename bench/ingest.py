"""Ingest benchmark: synthetic positions for 1,000 devices through the real pipeline.

Feeds fixes (with their cursor updates, as source runners do) through ``Pipeline.submit``
into SQLite while 10 live-feed subscribers drain every message (and ``--readers`` threads
read the database, as API calls and sink workers do), and prints positions per second
end to end, peak memory and the size of SQLite's WAL file.  Then inserts the same rows
with a plain SQLAlchemy Core bulk insert into a fresh database and prints that rate and
the ratio of the two.  The process's CPU time per fix (hub, subscribers and all) is
printed too.

With ``--database-url`` (or ``GPSHUB_DATABASE_URL``) naming a PostgreSQL database, every
figure is measured on it as well (each run in a fresh schema, dropped afterwards) and
printed beside SQLite's.  ``--batch N`` measures instead fixes submitted ``N`` at a time
by one producer that awaits each submit (``--batch 1``: a push source's fix alone).

    make bench            # or: uv run python bench/ingest.py --devices 1000 --fixes 100
    uv run python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    uv run python bench/ingest.py --batch 1 --database-url ...

On a shared machine add ``--repeat 3``: the backends run in turn and the best run of
each is shown.

``--processes 1,2,3`` (with a PostgreSQL ``--database-url``) measures instead several hub
processes ingesting into one database together, side by side (``bench/ingest_processes.py``
says how and what is printed).

    uv run python bench/ingest.py --database-url ... --processes 1,2,3 --fixes 50
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import trio

from hub.clock import SystemClock
from hub.core import Hub
from hub.db import write_tx
from hub.fix import PositionFix
from hub.models import Position
from hub.plugins import load_plugins
from hub.positions import CursorUpdate, IngestItem
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.source import Cursor
from hub.store import Store
from hub.testing import fresh_schema

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
POSITION_PREFIX = '{"type":"position"'


def make_fix(device: int, n: int) -> PositionFix:
    return PositionFix(
        fix_time=EPOCH + timedelta(seconds=10 * n),
        lat=14.6 + device * 1e-4 + n * 1e-5,
        lon=-90.5 - n * 1e-5,
        altitude_m=1500.0,
        speed_kmh=float(n % 90),
        course_deg=float((n * 7) % 360),
        satellites=9,
        ignition=n % 10 != 0,
        sensors={"fuel": 0.5, "power_v": 12.6},
    )


def open_store(url: str) -> Store:
    return Store.open(url, SecretBox([SecretBox.generate_key().encode()]))


@contextmanager
def fresh_database(tmp: Path, name: str, pg_url: str | None) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file in ``tmp``, or (with ``pg_url``)
    a fresh schema of that PostgreSQL database, dropped afterwards."""
    if pg_url is None:
        yield f"sqlite:///{tmp / name}_{secrets.token_hex(4)}.db"
        return
    with fresh_schema(pg_url, f"bench_{name}_") as url:
        yield url


def wal_size(store: Store) -> int:
    """Bytes of the SQLite database's write-ahead log (0 when there is none)."""
    if store.engine.dialect.name != "sqlite":
        return 0
    wal = Path(f"{store.engine.url.database}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def run_pipeline(
    store: Store,
    devices: list[int],
    conn_id: int,
    fixes: int,
    producers: int,
    per_submit: int,
    subscribers: int,
    wal_peak: list[int],
    readers: int = 0,
    batch: int = 0,
    submits: int = 0,
    ready: Callable[[], Awaitable[None]] | None = None,
    settle: Callable[[list[int]], Awaitable[None]] | None = None,
    relay: bool = False,
) -> tuple[float, float, int, list[int]]:
    """Feed the fixes; (seconds, process CPU seconds, transactions, positions each
    subscriber received).  ``batch`` > 0: one producer submits ``batch`` fixes (of the
    next devices in turn) ``submits`` times, awaiting each, with no cursors.

    With several processes (``--processes``): ``ready`` is awaited once everything is
    set up, just before the clock starts (the processes' common start); ``settle``,
    given the subscribers' counts, is awaited once this process's fixes are committed,
    instead of a short drain; ``relay`` runs the hub's live relay, so the subscribers
    also get what the other processes commit, as in a cluster."""
    pm, infos = load_plugins(use_entry_points=False)
    hub = Hub(store, Registry.collect(pm, infos), infos, clock=SystemClock())
    received = [0] * subscribers
    lagged: list[int] = []
    groups = [devices[i::producers] for i in range(producers)]

    async def subscriber(i: int, task_status: trio.TaskStatus[None]) -> None:
        with hub.live.subscribe(None) as sub:
            task_status.started()
            try:
                while True:
                    batch = await sub.receive_batch()
                    # a frame is a JSON array of messages (the feed's default format)
                    received[i] += sum(t.count(POSITION_PREFIX) for t in batch)
            except Exception:
                lagged.append(i)

    async def producer(group: list[int]) -> None:
        # like a runner: each submit carries `per_submit` fixes of every device in the
        # group and advances those devices' cursors; it waits for the commit
        for start in range(0, fixes, per_submit):
            items = [
                IngestItem(d, conn_id, make_fix(d, n))
                for d in group
                for n in range(start, min(start + per_submit, fixes))
            ]
            last = EPOCH + timedelta(seconds=10 * (min(start + per_submit, fixes) - 1))
            cursors = [CursorUpdate(d, conn_id, Cursor(last, {"page": start})) for d in group]
            await hub.pipeline.submit(items, cursors)

    async def lone_producer() -> None:
        # like a push source: each fix (or few) submitted on its own, awaited in turn
        n = 0
        for _ in range(submits):
            items = []
            for _ in range(batch):
                d = devices[n % len(devices)]
                items.append(IngestItem(d, conn_id, make_fix(d, n // len(devices))))
                n += 1
            await hub.pipeline.submit(items)

    async def watch_wal() -> None:
        while True:
            wal_peak[0] = max(wal_peak[0], wal_size(store))
            await trio.sleep(0.05)

    stop_readers = threading.Event()

    def reader(n: int) -> None:
        # like API calls and delivery workers: short read transactions, one after another
        rng = random.Random(n)
        while not stop_readers.is_set():
            with store.engine.connect() as conn:
                conn.exec_driver_sql(reader_sql, (rng.choice(devices),)).scalar()

    if store.engine.dialect.name != "sqlite":
        reader_sql = "SELECT count(*) FROM positions WHERE device_id = %s"
    else:
        reader_sql = "SELECT count(*) FROM positions WHERE device_id = ?"
    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(readers)]
    for t in threads:
        t.start()
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        await nursery.start(hub.live.run)  # the ticker, as the running hub has it
        if relay:
            await nursery.start(hub.relay.run)
        if store.engine.dialect.name == "sqlite":
            nursery.start_soon(watch_wal)
            nursery.start_soon(hub.housekeeping.keep_wal)  # as the running hub does
        for i in range(subscribers):
            await nursery.start(subscriber, i)
        if ready is not None:
            await ready()
        t0, cpu0 = time.perf_counter(), time.process_time()
        async with trio.open_nursery() as prod:
            if batch:
                prod.start_soon(lone_producer)
            else:
                for g in groups:
                    prod.start_soon(producer, g)
        elapsed = time.perf_counter() - t0
        if settle is not None:
            await settle(received)
        else:
            await trio.sleep(0.2)  # let subscribers drain the last batch
        cpu = time.process_time() - cpu0  # the drain's idle wait costs next to nothing
        await hub.pipeline.close()
        nursery.cancel_scope.cancel()
    stop_readers.set()
    for t in threads:
        t.join()
    expected = batch * submits if batch else len(devices) * fixes
    assert hub.pipeline.stats.stored == expected, hub.pipeline.stats
    return elapsed, cpu, hub.pipeline.stats.transactions, received if not lagged else [-1]


def plain_insert(url: str, devices: list[int], fixes: int, chunk: int) -> float:
    """The same rows through a plain Core executemany insert, in a fresh database."""
    store = open_store(url)
    client = store.create_client("plain")
    devices = [store.create_device(client.id, name=f"d{i}").id for i in devices]
    now = datetime.now(UTC)
    rows = []
    for d in devices:
        for n in range(fixes):
            f = make_fix(d, n)
            rows.append(
                {
                    "device_id": d,
                    "connection_id": None,
                    "fix_time": f.fix_time,
                    "server_time": now,
                    "lat": f.lat,
                    "lon": f.lon,
                    "altitude_m": f.altitude_m,
                    "speed_kmh": f.speed_kmh,
                    "course_deg": f.course_deg,
                    "satellites": f.satellites,
                    "valid": f.valid,
                    "ignition": f.ignition,
                    "accuracy_m": None,
                    "sensors": f.sensors,
                    "raw": None,
                    "source_ip": None,
                    "source_port": None,
                }
            )
    table = Position.__table__  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for start in range(0, len(rows), chunk):
        with write_tx(store.engine) as conn:
            conn.execute(sa.insert(table), rows[start : start + chunk])
    elapsed = time.perf_counter() - t0
    store.close()
    return len(rows) / elapsed


def make_world(url: str, devices: int) -> tuple[Store, int, list[int]]:
    store = open_store(url)
    client = store.create_client("bench")
    conn = store.create_connection(client.id, "bench", "bench", {})
    ids = [
        store.create_device(client.id, name=f"d{i}", connection_id=conn.id, upstream_id=str(i)).id
        for i in range(devices)
    ]
    return store, conn.id, ids


def add_geofences_and_rules(store: Store, devices: list[int], geofences: int, rules: int) -> None:
    """Circles, squares and corridors over the area the devices drive through, and one
    rule per device (cycling through the rule types), as a client with many would."""
    from hub.models import Role

    rng = random.Random(7)
    client_id = store.get_device(devices[0]).client_id
    items = []
    for n in range(geofences):
        lat, lon = 14.59 + rng.random() * 0.12, -90.52 + rng.random() * 0.04
        size = 0.0005 + rng.random() * 0.002
        if n % 3 == 0:
            geometry, props = (
                {"type": "Point", "coordinates": [lon, lat]},
                {"radius_m": 50 + rng.random() * 250},
            )
        elif n % 3 == 1:
            ring = [
                [lon, lat],
                [lon + size, lat],
                [lon + size, lat + size],
                [lon, lat + size],
                [lon, lat],
            ]
            geometry, props = {"type": "Polygon", "coordinates": [ring]}, {}
        else:
            geometry = {"type": "LineString", "coordinates": [[lon, lat], [lon + size, lat + size]]}
            props = {"width_m": 30.0}
        items.append({"name": f"poi {n}", "geometry": geometry, "properties": props})
    store.geofences.create_many(client_id, items)
    owner = store.create_user("bench owner", Role.MANAGER, client_id)
    kinds = [
        ("enteredPoi", {}),
        ("exitedPoi", {"confirm_fixes": 2}),
        ("overspeed", {"limit_kmh": 80, "min_duration_s": 20}),
        ("sensor", {"sensor": "fuel", "op": "<", "value": 0.2}),
        ("ignitionOn", {}),
        ("stopped", {}),
    ]
    for n in range(rules):
        kind, params = kinds[n % len(kinds)]
        store.rules.create(
            client_id, owner, f"rule {n}", kind, params, device_ids=[devices[n % len(devices)]]
        )


@dataclass
class Figures:
    """One backend's figures."""

    rate: float = 0.0  # positions/s end to end
    cpu_per_fix_ms: float = 0.0
    transactions: int = 0
    received: int = 0  # positions each subscriber received (-1: one lagged)
    plain: float = 0.0  # plain Core insert, positions/s
    rss_before: int = 0
    rss_peak: int = 0
    wal: tuple[int, int] = (0, 0)
    rules_rate: float = 0.0
    rules_cpu_per_fix_ms: float = 0.0


def measure(
    url: str, args: argparse.Namespace, with_rules: bool, figures: Figures
) -> tuple[float, float]:
    """Run the pipeline on a fresh database at ``url``: (positions/s, CPU ms per fix)."""
    store, conn_id, devices = make_world(url, args.devices)
    if with_rules:
        add_geofences_and_rules(store, devices, args.geofences, args.rules)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wal_peak = [0]
    elapsed, cpu, txs, received = trio.run(
        run_pipeline, store, devices, conn_id, args.fixes, args.producers, args.per_submit,
        args.subscribers, wal_peak, args.readers, args.batch, args.submits,
    )  # fmt: skip
    if not with_rules:
        figures.rss_before = rss_before
        figures.rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures.wal = (wal_size(store), max(wal_peak[0], wal_size(store)))  # before closing
        figures.transactions, figures.received = txs, (received or [0])[0]
    store.close()
    total = args.batch * args.submits if args.batch else args.devices * args.fixes
    return total / elapsed, cpu / total * 1000


def run_backend(tmp: Path, pg_url: str | None, args: argparse.Namespace) -> Figures:
    """Every figure on SQLite (``pg_url`` None) or on that PostgreSQL database."""
    f = Figures()
    with fresh_database(tmp, "pipeline", pg_url) as url:
        f.rate, f.cpu_per_fix_ms = measure(url, args, False, f)
    if args.batch:
        return f
    with fresh_database(tmp, "plain", pg_url) as url:
        f.plain = plain_insert(url, list(range(args.devices)), args.fixes, 2000)
    with fresh_database(tmp, "rules", pg_url) as url:
        f.rules_rate, f.rules_cpu_per_fix_ms = measure(url, args, True, f)
    return f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--fixes", type=int, default=100, help="fixes per device")
    ap.add_argument("--producers", type=int, default=10, help="concurrent producers (runners)")
    ap.add_argument("--per-submit", type=int, default=2, help="fixes per device in each submit")
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--readers", type=int, default=0, help="threads reading the database meanwhile")
    ap.add_argument("--geofences", type=int, default=1000, help="for the run with rules")
    ap.add_argument("--rules", type=int, default=1000, help="for the run with rules")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("GPSHUB_DATABASE_URL"),
        help="a PostgreSQL database to measure beside SQLite (default: $GPSHUB_DATABASE_URL)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=0,
        help="instead: one producer submits this many fixes at a time, awaiting each",
    )
    ap.add_argument("--submits", type=int, default=3000, help="with --batch: how many submits")
    ap.add_argument(
        "--repeat", type=int, default=1, help="run each backend this many times; show the best"
    )
    ap.add_argument(
        "--processes",
        help="instead: this many processes ingesting into one PostgreSQL schema together "
        "(e.g. 1,2,3: each count in turn, side by side)",
    )
    ap.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="with --processes: no live relay (subscribers get their own process's positions)",
    )
    args = ap.parse_args()
    pg_url = args.database_url
    if pg_url and not pg_url.startswith("postgresql"):
        ap.error(f"--database-url: not a PostgreSQL URL: {pg_url.split(':')[0]}:…")
    if args.processes:
        try:
            counts = [int(n) for n in args.processes.split(",")]
        except ValueError:
            ap.error(f"--processes: not a list of counts: {args.processes}")
        if not pg_url or args.batch or min(counts) < 1:
            ap.error("--processes: needs --database-url, counts of 1 or more, and no --batch")
        from ingest_processes import measure_processes  # bench/, beside this script

        measure_processes(pg_url, counts, args)
        return

    backends: dict[str, str | None] = {"SQLite": None}
    if pg_url:
        backends["PostgreSQL"] = pg_url
    runs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # in turn, so both see the same load on the machine
            for name, url in backends.items():
                f = run_backend(Path(tmp), url, args)
                if name not in runs or f.rate > runs[name].rate:
                    runs[name] = f
    if args.repeat > 1:
        print(f"best of {args.repeat} runs of each, in turn")
    print_figures(args, runs)


def print_figures(args: argparse.Namespace, runs: dict[str, Figures]) -> None:
    names = list(runs)
    figs = list(runs.values())

    def row(label: str, cells: list[str]) -> None:
        print(f"{label:<22}" + "".join(f"{c:>22}" for c in cells))

    row("", names)
    if args.batch:
        total = args.batch * args.submits
        print(
            f"fixes:                {total:,}, {args.batch} per submit, one producer awaiting "
            f"each submit, {args.subscribers} live subscribers"
        )
        row("end to end", [f"{f.rate:,.0f} pos/s" for f in figs])
        row("CPU per fix", [f"{f.cpu_per_fix_ms:.3f} ms" for f in figs])
        row("transactions", [f"{f.transactions:,}" for f in figs])
        if len(figs) == 2:
            print(f"PostgreSQL / SQLite:  {figs[1].rate / figs[0].rate:.2f} of the rate")
        return
    total = args.devices * args.fixes
    print(
        f"positions:            {total:,} ({args.devices:,} devices x {args.fixes} fixes, "
        f"{args.producers} producers, {args.subscribers} live subscribers)"
    )
    row("end to end", [f"{f.rate:,.0f} pos/s" for f in figs])
    row("CPU per fix", [f"{f.cpu_per_fix_ms:.3f} ms" for f in figs])
    row("transactions", [f"{f.transactions:,}" for f in figs])
    row(
        "positions each sub",
        [f"{f.received:,}" if f.received == total else "LAGGED, dropped!" for f in figs],
    )
    row("plain Core insert", [f"{f.plain:,.0f} pos/s" for f in figs])
    row("pipeline / plain", [f"{f.rate / f.plain:.2f}" for f in figs])
    row("peak memory", [f"{f.rss_peak / 1024:,.0f} MiB RSS" for f in figs])
    row("  before ingest", [f"{f.rss_before / 1024:,.0f} MiB RSS" for f in figs])
    sq = runs["SQLite"]
    print(f"SQLite WAL file:      {sq.wal[0] / 2**20:,.1f} MiB after ingest "
          f"(largest seen during ingest: {sq.wal[1] / 2**20:,.1f} MiB)")  # fmt: skip
    print(f"with {args.geofences:,} geofences and {args.rules:,} rules:")
    row("  end to end", [f"{f.rules_rate:,.0f} pos/s" for f in figs])
    row("  CPU per fix", [f"{f.rules_cpu_per_fix_ms:.3f} ms" for f in figs])
    row("  of the rate without", [f"{f.rules_rate / f.rate:.2f}" for f in figs])
    if len(figs) == 2:
        print(
            f"PostgreSQL / SQLite:  {figs[1].rate / figs[0].rate:.2f} of the end-to-end rate, "
            f"{figs[1].rules_rate / figs[0].rules_rate:.2f} with rules"
        )


if __name__ == "__main__":
    main()
