"""The crash harness: a hub data directory with a client, burst devices and three sinks
(JSON 1 and JSON 2 relays, an alerts webhook) pointed at one receiver, a real hub process
on it (``crash_child.py``), and what the database says from outside that process.

Used by ``test_crash.py`` and ``bench/outage.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio
from burst import TOTAL

from hub.models import alerts_t, pending_t, positions_t
from hub.secrets import SecretBox
from hub.signing import generate_secret
from hub.store import Store

CHILD = Path(__file__).with_name("crash_child.py")
DEVICES = 5
PATHS = ("/json1", "/json2", "/alerts")


def open_store(data_dir: Path, key: str) -> Store:
    return Store.open(f"sqlite:///{data_dir / 'gpshub.db'}", SecretBox([key.encode()]))


def prepare(data_dir: Path, key: str, url: str) -> None:
    store = open_store(data_dir, key)
    client = store.create_client("Crash test").id
    owner = store.create_user("Ana", "manager", client)
    conn = store.create_connection(client, "burst", "burst", {})
    for i in range(DEVICES):
        store.create_device(
            client, name=f"unit {i}", imei=f"86000000000000{i}", connection_id=conn.id,
            upstream_id=f"b-{i}",
        )  # fmt: skip
    for path, kind, fmt, purpose in (
        ("/json1", "startrack-relay", "startrack-json1", "locations"),
        ("/json2", "startrack-relay", "startrack-json2", "locations"),
        ("/alerts", "startrack-alerts", "startrack-alert", "alerts"),
    ):
        store.sinks.create(
            client, name=path, kind=kind, format=fmt, purpose=purpose,
            settings={"url": url + path},
            secrets={"signing": [{"secret": generate_secret(), "until": None}]},
        )  # fmt: skip
    for rtype in ("ignitionOn", "ignitionOff"):
        store.rules.create(client, owner, rtype, rtype, webhook=True)
    store.close()


def settled(data_dir: Path, key: str) -> tuple[bool, dict[str, Any]]:
    """Whether the hub has stored every fix and owes nothing; what it stored, and where
    its sinks stand (``sinks``: name → row; ``attempts``: the most any owed message had)."""
    store = open_store(data_dir, key)
    try:
        with store.engine.connect() as conn:
            positions = conn.execute(
                sa.select(positions_t.c.device_id, positions_t.c.fix_time)
            ).all()
            alerts = [a for (a,) in conn.execute(sa.select(alerts_t.c.id))]
            attempts = conn.execute(sa.select(sa.func.max(pending_t.c.attempts))).scalar()
        rows = store.sinks.list()
        owed = sum(store.sinks.stats(row)["pending"] for row in rows)
        dead = sum(store.sinks.stats(row)["dead_letters"] for row in rows)
    finally:
        store.close()
    done = len(positions) == DEVICES * TOTAL and owed == 0
    return done, {
        "positions": positions,
        "alerts": alerts,
        "dead": dead,
        "owed": owed,
        "attempts": attempts or 0,
        "sinks": {row.name: row for row in rows},
    }


def describe(data_dir: Path, key: str, counts: dict[str, int]) -> str:
    """Where each sink stands, for a failure message."""
    store = open_store(data_dir, key)
    try:
        sinks = [
            (row.name, row.state, row.cursor, row.last_error, store.sinks.stats(row))
            for row in store.sinks.list()
        ]
        return f"positions {store.positions.count()}, sinks {sinks}, received {counts}"
    finally:
        store.close()


async def run_child(
    data_dir: Path, env: dict[str, str], probe: tuple[float, float] | None = None
) -> trio.Process:
    """Start a hub process on ``data_dir``; ``probe``: its (first, longest) probe interval."""
    args = [sys.executable, str(CHILD), str(data_dir)]
    if probe is not None:
        args += [str(probe[0]), str(probe[1])]
    return await trio.lowlevel.open_process(args, env=env)


async def wait_until(data_dir: Path, key: str, *, delivered: bool = True) -> None:
    """Return once the hub in another process has stored every fix and (``delivered``)
    delivered everything."""
    while True:
        done, stored = await trio.to_thread.run_sync(settled, data_dir, key)
        if done or (not delivered and len(stored["positions"]) == DEVICES * TOTAL):
            return
        await trio.sleep(0.5)
