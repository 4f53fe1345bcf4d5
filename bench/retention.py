"""Retention benchmark: how long a pruning batch holds SQLite's write lock.

Fills a SQLite database with positions of 1,000 devices (one fix a minute over ten days
by default, some of them still waiting in the outbox), gives the client a retention of
three days, and deletes what is older in batches of each size asked for, each batch in
a transaction of its own, as the running hub does (``hub.housekeeping``).  Meanwhile a
writer thread commits small transactions, as ingest would, and records how long each
waited for the write lock.  Prints, per batch size: batches, rows per second, the
longest and the median time a batch held the write lock, and the writer's longest wait.

    uv run python bench/retention.py --devices 1000 --days 10 --batch 1000 2000 5000 10000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hub import db
from hub.models import sqlite_timestamp
from hub.retention import RetentionStore, cutoff
from hub.secrets import SecretBox
from hub.store import Store

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def fill(path: Path, devices: int, days: int, every_s: int, waiting: int) -> tuple[Store, int]:
    store = Store.open(f"sqlite:///{path}", SecretBox([SecretBox.generate_key().encode()]))
    client = store.create_client("bench").id or 0
    ids = [store.create_device(client, name=f"d{i}").id or 0 for i in range(devices)]
    per_device = days * 86400 // every_s
    start = NOW - timedelta(days=days)
    stamp = sqlite_timestamp(NOW)
    raw = store.engine.raw_connection()
    cur = raw.cursor()
    cur.execute("BEGIN IMMEDIATE")
    for d in ids:
        cur.executemany(
            "INSERT INTO positions (device_id, fix_time, server_time, lat, lon, speed_kmh,"
            " valid, sensors, event_code, poi_ids, poi_group_ids, alerts_count)"
            " VALUES (?, ?, ?, 14.6, -90.5, 42.0, 1, '{\"fuel\": 0.5}', 0, '[]', '[]', 0)",
            [
                (d, sqlite_timestamp(start + timedelta(seconds=every_s * n)), stamp)
                for n in range(per_device)
            ],
        )
        last = sqlite_timestamp(start + timedelta(seconds=every_s * (per_device - 1)))
        cur.execute("UPDATE devices SET last_fix_time = ? WHERE id = ?", (last, d))
    # messages still owed to a sink keep their (old) positions
    cur.execute(
        "INSERT INTO outbox (client_id, kind, device_id, ref_id, payload, created_at)"
        " SELECT ?, 'location', device_id, id, '{}', ? FROM positions ORDER BY id LIMIT ?",
        (client, stamp, waiting),
    )
    cur.execute("COMMIT")
    cur.close()
    raw.close()
    return store, client


def writer(store: Store, stop: threading.Event, waits: list[float]) -> None:
    """Small write transactions one after another, as the pipeline's would be."""
    while not stop.is_set():
        asked = time.perf_counter()
        with db.write_tx(store.engine) as conn:
            waits.append(time.perf_counter() - asked)
            conn.exec_driver_sql("UPDATE clients SET devices_version = devices_version + 1")
        time.sleep(0.005)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--every-s", type=int, default=600, help="seconds between fixes")
    ap.add_argument("--keep-days", type=int, default=3)
    ap.add_argument("--waiting", type=int, default=10_000, help="positions the outbox holds")
    ap.add_argument("--batch", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    args = ap.parse_args()
    print(f"{'batch':>6} {'deleted':>9} {'batches':>8} {'rows/s':>9} {'longest':>9} "
          f"{'median':>8} {'writer waited at most':>22}")  # fmt: skip
    for size in args.batch:
        with tempfile.TemporaryDirectory() as tmp:
            store, client = fill(
                Path(tmp) / "r.db", args.devices, args.days, args.every_s, args.waiting
            )
            retention = RetentionStore(store.engine)
            before = cutoff(NOW, args.keep_days)
            stop, waits = threading.Event(), []
            thread = threading.Thread(target=writer, args=(store, stop, waits))
            thread.start()
            held: list[float] = []
            deleted = 0
            t0 = time.perf_counter()
            pruner = retention.position_pruner(client, before)
            while True:
                batch = pruner(size)
                held.append(batch.held_s)
                deleted += batch.deleted
                if not batch.more:
                    break
                time.sleep(0.02)  # the pause between batches (the hub's is longer)
            elapsed = time.perf_counter() - t0 - 0.02 * (len(held) - 1)
            stop.set()
            thread.join()
            store.close()
        print(
            f"{size:>6} {deleted:>9,} {len(held):>8} {deleted / elapsed:>9,.0f} "
            f"{max(held) * 1000:>7.1f}ms {statistics.median(held) * 1000:>6.1f}ms "
            f"{max(waits) * 1000:>20.1f}ms"
        )


if __name__ == "__main__":
    main()
