"""How long migration 0006 (AUTOINCREMENT on SQLite, a copy of each table) takes.

Builds a SQLite database at revision 0005 holding ``--positions`` positions (with raw
upstream records, sensors, some in geofences) of ``--devices`` devices, plus alerts and
outbox rows, then times the upgrade to 0006 and prints the database and WAL sizes
before and after.

    uv run python bench/migrate_ids.py                 # 1,000,000 positions
    uv run python bench/migrate_ids.py --positions 100000 --keep /tmp/m.db
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from hub import db
from hub.models import sqlite_timestamp

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def build(path: Path, devices: int, positions: int) -> None:
    engine = db.create_engine(db.sqlite_url(path))
    db.migrate(engine, "0005")
    engine.dispose()
    now = sqlite_timestamp(EPOCH)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute("BEGIN")
    con.execute("INSERT INTO clients (id, name, created_at) VALUES (1, 'fleet', ?)", (now,))
    con.execute(
        "INSERT INTO connections (id, client_id, kind, label, credentials, options, enabled,"
        " state, positions_received, created_at, updated_at)"
        " VALUES (1, 1, 'simulator', 'sim', '', '{}', 1, 'ok', 0, ?, ?)",
        (now, now),
    )
    con.executemany(
        "INSERT INTO devices (id, client_id, name, tags, connection_id, upstream_id,"
        " created_at, updated_at) VALUES (?, 1, ?, '[]', 1, ?, ?, ?)",
        [(d, f"truck {d}", f"u{d}", now, now) for d in range(1, devices + 1)],
    )
    rng = random.Random(6)
    per_device = positions // devices

    def rows():  # type: ignore[no-untyped-def]
        n = 0
        for k in range(per_device):  # arrival order: every device's k-th fix together
            fix = sqlite_timestamp(EPOCH + timedelta(seconds=10 * k))
            for d in range(1, devices + 1):
                n += 1
                inside = rng.random() < 0.1
                raw = {"t": 1767225600 + 10 * k, "pos": {"x": -90.5, "y": 14.6, "s": k % 90}}
                yield (
                    n, d, 1, fix, fix, 14.6 + d * 1e-4, -90.5 - k * 1e-5, 1500.0,
                    float(k % 90), float(k * 7 % 360), 9, 1, k % 10 != 0, None,
                    orjson.dumps({"fuel": 0.5, "power_v": 12.6}).decode(),
                    orjson.dumps(raw).decode(), k * 0.01, k / 360,
                    "[1]" if inside else "[]", "[1]" if inside else "[]",
                )  # fmt: skip

    con.executemany(
        "INSERT INTO positions (id, device_id, connection_id, fix_time, server_time, lat, lon,"
        " altitude_m, speed_kmh, course_deg, satellites, valid, ignition, accuracy_m, sensors,"
        " raw, odometer_km, hours, poi_ids, poi_group_ids)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    alerts = positions // 100
    payload = orjson.dumps({"messageId": "overspeed", "urId": 1, "deviceId": 1}).decode()
    con.executemany(
        "INSERT INTO alerts (id, client_id, device_id, position_id, message_id, fix_time,"
        " server_time, payload) VALUES (?, 1, ?, ?, 'overspeed', ?, ?, ?)",
        [(i, 1 + i % devices, i * 100, now, now, payload) for i in range(1, alerts + 1)],
    )
    con.executemany(
        "INSERT INTO outbox (client_id, kind, device_id, ref_id, payload, created_at)"
        " VALUES (1, 'location', ?, ?, '{}', ?)",
        [(1 + i % devices, positions - i, now) for i in range(min(positions, 10_000))],
    )
    con.execute("COMMIT")
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def size_mb(path: Path) -> float:
    return path.stat().st_size / 1e6 if path.exists() else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--keep", type=Path, help="build the database here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "migrate.db"
        wal = path.with_name(path.name + "-wal")
        started = time.perf_counter()
        build(path, args.devices, args.positions)
        print(f"built {args.positions:,} positions of {args.devices:,} devices at 0005 in "
              f"{time.perf_counter() - started:.1f} s: {size_mb(path):.0f} MB")  # fmt: skip
        engine = db.create_engine(db.sqlite_url(path))
        started = time.perf_counter()
        db.migrate(engine, "0006")
        took = time.perf_counter() - started
        print(f"migration 0005 -> 0006: {took:.1f} s "
              f"({args.positions / took:,.0f} positions/s); database {size_mb(path):.0f} MB, "
              f"WAL {size_mb(wal):.0f} MB after it")  # fmt: skip
        with engine.connect() as conn:
            seq = conn.exec_driver_sql(
                "SELECT seq FROM sqlite_sequence WHERE name = 'positions'"
            ).scalar()
        print(f"positions' sequence: {seq:,}")
        engine.dispose()


if __name__ == "__main__":
    main()
