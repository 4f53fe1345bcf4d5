"""Ingest benchmark: synthetic positions for 1,000 devices through the real pipeline.

Feeds fixes (with their cursor updates, as source runners do) through ``Pipeline.submit``
into SQLite while 10 live-feed subscribers drain every message (and ``--readers`` threads
read the database, as API calls and sink workers do), and prints positions per second
end to end, peak memory and the size of SQLite's WAL file.  Then inserts the same rows
with a plain SQLAlchemy Core bulk insert into a fresh database and prints that rate and
the ratio of the two.

    make bench            # or: uv run python bench/ingest.py --devices 1000 --fixes 100
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import tempfile
import threading
import time
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


def open_store(path: Path) -> Store:
    return Store.open(f"sqlite:///{path}", SecretBox([SecretBox.generate_key().encode()]))


def wal_size(store: Store) -> int:
    """Bytes of the SQLite database's write-ahead log (0 when there is none)."""
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
) -> tuple[float, int, list[int]]:
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
                    received[i] += sum(t.startswith(POSITION_PREFIX) for t in batch)
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
                conn.exec_driver_sql(
                    "SELECT count(*) FROM positions WHERE device_id = ?", (rng.choice(devices),)
                ).scalar()

    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(readers)]
    for t in threads:
        t.start()
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        nursery.start_soon(watch_wal)
        nursery.start_soon(hub.housekeeping.keep_wal)  # as the running hub does
        for i in range(subscribers):
            await nursery.start(subscriber, i)
        t0 = time.perf_counter()
        async with trio.open_nursery() as prod:
            for g in groups:
                prod.start_soon(producer, g)
        elapsed = time.perf_counter() - t0
        await trio.sleep(0.2)  # let subscribers drain the last batch
        await hub.pipeline.close()
        nursery.cancel_scope.cancel()
    stop_readers.set()
    for t in threads:
        t.join()
    assert hub.pipeline.stats.stored == len(devices) * fixes, hub.pipeline.stats
    return elapsed, hub.pipeline.stats.transactions, received if not lagged else [-1]


def plain_insert(path: Path, devices: list[int], fixes: int, chunk: int) -> float:
    """The same rows through a plain Core executemany insert, in a fresh database."""
    store = open_store(path)
    client = store.create_client("plain")
    for i in devices:
        store.create_device(client.id, name=f"d{i}")
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


def make_world(path: Path, devices: int) -> tuple[Store, int, list[int]]:
    store = open_store(path)
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


def measure(
    tmp: Path, name: str, args: argparse.Namespace, with_rules: bool
) -> tuple[float, int, list[int], int, int, tuple[int, int]]:
    store, conn_id, devices = make_world(tmp / f"{name}.db", args.devices)
    if with_rules:
        add_geofences_and_rules(store, devices, args.geofences, args.rules)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wal_peak = [0]
    elapsed, txs, received = trio.run(
        run_pipeline, store, devices, conn_id, args.fixes, args.producers, args.per_submit,
        args.subscribers, wal_peak, args.readers,
    )  # fmt: skip
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wal = (wal_size(store), max(wal_peak[0], wal_size(store)))  # before closing: then it goes
    store.close()
    return args.devices * args.fixes / elapsed, txs, received, rss_before, rss_peak, wal


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
    args = ap.parse_args()

    total = args.devices * args.fixes
    with tempfile.TemporaryDirectory() as tmp:
        rate, txs, received, rss_before, rss_peak, wal = measure(Path(tmp), "pipeline", args, False)
        plain = plain_insert(
            Path(tmp) / "plain.db", list(range(1, args.devices + 1)), args.fixes, 2000
        )
        rules_rate, *_ = measure(Path(tmp), "rules", args, True)

    lagged = "" if received[0] == total else "  (a subscriber lagged and was dropped!)"
    print(
        f"positions:            {total:,} ({args.devices:,} devices x {args.fixes} fixes, "
        f"{args.producers} producers)"
    )
    print(f"live subscribers:     {args.subscribers}, positions each: {received[0]:,}{lagged}")
    print(f"pipeline end to end:  {rate:,.0f} positions/s ({txs} transactions), no rules")
    print(f"plain Core insert:    {plain:,.0f} positions/s (same rows, 2,000 per transaction)")
    print(f"ratio:                {rate / plain:.2f}")
    print(f"peak memory:          {rss_peak / 1024:,.0f} MiB RSS "
          f"({rss_before / 1024:,.0f} MiB before ingest)")  # fmt: skip
    print(f"SQLite WAL file:      {wal[0] / 2**20:,.1f} MiB after ingest "
          f"(largest seen during ingest: {wal[1] / 2**20:,.1f} MiB)")  # fmt: skip
    print(
        f"with rules:           {rules_rate:,.0f} positions/s with {args.geofences:,} geofences "
        f"and {args.rules:,} rules; {rules_rate / rate:.2f} of the rate without"
    )


if __name__ == "__main__":
    main()
