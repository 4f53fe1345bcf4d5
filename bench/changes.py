"""How long a change made by another process takes to reach a running hub.

A hub runs (no web server) on a fresh SQLite file, or on ``--database-url``.  Another
store on the same database (its own engine and connections: what the CLI or another API
process is) creates ``--count`` connections one after another; for each, the bench
measures the wall time from its commit until the hub runs its runner.  It prints the
median and the largest delay per database.

    .venv/bin/python bench/changes.py
    .venv/bin/python bench/changes.py --database-url postgresql+psycopg://postgres@127.0.0.1/test

On PostgreSQL the bench works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
import trio

from hub.source import Cadence
from hub.store import Store
from hub.testing import ScriptedSource, make_hub


class Idle(ScriptedSource):
    kind = "scripted"
    cadence = Cadence(active=3600.0)  # polled once, at its start


async def measure(url: str | None, count: int) -> list[float]:
    hub = make_hub(Path(tempfile.mkdtemp()), Idle, db_url=url)
    client = hub.store.create_client("bench").id or 0
    engine_url = hub.store.engine.url.render_as_string(hide_password=False)
    other = Store.open(engine_url, hub.store.secrets, migrate=False)
    delays: list[float] = []
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            for i in range(count):
                conn = other.create_connection(client, "scripted", f"account {i}", {})
                committed = time.perf_counter()
                while conn.id not in hub.runners:  # noqa: ASYNC110 - the hub's state
                    await trio.sleep(0.002)
                delays.append(time.perf_counter() - committed)
                await trio.sleep(0.2)  # apart from the previous one
            hub.shutdown()
    finally:
        other.close()
        hub.store.close()
    return delays


def with_schema(url: str) -> tuple[str, sa.Engine, str]:
    schema = "bench_" + secrets.token_hex(4)
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}", admin, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL (default: a SQLite file)")
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args()
    url, admin, schema = with_schema(args.database_url) if args.database_url else (None, None, "")
    try:
        delays = trio.run(measure, url, args.count)
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    name = "PostgreSQL" if args.database_url else "SQLite"
    print(
        f"{name}: {len(delays)} connections made by another process; the hub ran each after"
        f" {statistics.median(delays):.3f} s (median), {max(delays):.3f} s at most"
    )


if __name__ == "__main__":
    main()
