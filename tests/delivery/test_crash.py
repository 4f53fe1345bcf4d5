"""SIGKILL the hub while it ingests and delivers, restart it, and prove nothing was lost.

The hub runs as a real process (``crash_child.py``) polling the burst source, with a
JSON 1 relay, a JSON 2 relay and an alerts webhook pointed at a validating receiver in
this process.  It is killed with SIGKILL three times at moments of delivery, then left
to finish.  Every stored location and every alert of a webhook rule must have reached
the receiver; the only duplicates are messages that were in flight at a kill, and a
message always comes back with the same ``webhook-id``.
"""

from __future__ import annotations

import os
import random
import signal
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio
from burst import TOTAL

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub.delivery import SINGLE_CHUNK
from hub.models import alerts_t, positions_t
from hub.secrets import SecretBox
from hub.signing import generate_secret
from hub.store import Store

CHILD = Path(__file__).with_name("crash_child.py")
DEVICES = 5
KILLS = 3


def prepare(data_dir: Path, key: str, url: str) -> None:
    store = Store.open(f"sqlite:///{data_dir / 'gpshub.db'}", SecretBox([key.encode()]))
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
    """Whether the hub has stored every fix and owes nothing; what it stored."""
    store = Store.open(f"sqlite:///{data_dir / 'gpshub.db'}", SecretBox([key.encode()]))
    try:
        with store.engine.connect() as conn:
            positions = conn.execute(
                sa.select(positions_t.c.device_id, positions_t.c.fix_time)
            ).all()
            alerts = [a for (a,) in conn.execute(sa.select(alerts_t.c.id))]
        owed = sum(store.sinks.stats(row)["pending"] for row in store.sinks.list())
        dead = sum(store.sinks.stats(row)["dead_letters"] for row in store.sinks.list())
    finally:
        store.close()
    done = len(positions) == DEVICES * TOTAL and owed == 0
    return done, {"positions": positions, "alerts": alerts, "dead": dead}


def describe(data_dir: Path, key: str, receiver: Receiver) -> str:
    """Where each sink stands, for a failure message."""
    store = Store.open(f"sqlite:///{data_dir / 'gpshub.db'}", SecretBox([key.encode()]))
    try:
        sinks = [
            (row.name, row.state, row.cursor, row.last_error, store.sinks.stats(row))
            for row in store.sinks.list()
        ]
        return f"positions {store.positions.count()}, sinks {sinks}, received {receiver.counts}"
    finally:
        store.close()


async def run_child(data_dir: Path, env: dict[str, str]) -> trio.Process:
    return await trio.lowlevel.open_process([sys.executable, str(CHILD), str(data_dir)], env=env)


async def test_sigkill_loses_no_location_and_no_alert(tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env["GPSHUB_SECRET_KEY"] = key
    receiver = Receiver()
    refusing_until = [0.0]

    def decide(path: str, body: Any) -> int | None:  # the alerts receiver has hiccups too
        return 503 if path == "/alerts" and trio.current_time() < refusing_until[0] else None

    receiver.decide = decide
    rng = random.Random(4)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        prepare(tmp_path, key, url)
        for kill in range(KILLS):
            seen = receiver.count()
            proc = await run_child(tmp_path, env)
            try:
                with trio.fail_after(60):
                    await receiver.wait_for(seen + 40)
                if kill == 0:  # some alerts fail once and are owed across the restarts
                    refusing_until[0] = trio.current_time() + 1.0
                await trio.sleep(rng.uniform(0.05, 0.6))
            finally:
                proc.kill()  # SIGKILL: no clean-up of any kind
                await proc.wait()
            assert proc.returncode == -signal.SIGKILL
        proc = await run_child(tmp_path, env)
        try:
            with trio.move_on_after(180):
                while not (await trio.to_thread.run_sync(settled, tmp_path, key))[0]:  # noqa: ASYNC110 - the state is in another process
                    await trio.sleep(0.5)
        finally:
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(20):
                await proc.wait()
        done, _ = settled(tmp_path, key)
        assert done, describe(tmp_path, key, receiver)
        assert proc.returncode == 0
        nursery.cancel_scope.cancel()

    _, stored = settled(tmp_path, key)
    assert receiver.problems() == []
    assert stored["dead"] == 0

    # every location reached both relays; a repeat always carries the same webhook-id
    expected = len(stored["positions"])
    for path, limit in (("/json1", KILLS * SINGLE_CHUNK), ("/json2", KILLS * 1000)):
        ids: dict[tuple[int, str], set[str]] = defaultdict(set)
        copies = 0
        for r in receiver.delivered(path):
            objects = [r.body] if path == "/json1" else r.body[1]
            for obj in objects:
                ids[(obj["vid"], obj["event_time"])].add(r.webhook_id or "")
                copies += 1
        assert len(ids) == expected, path
        assert all(len(v) == 1 for v in ids.values()), f"{path}: a repeat with another id"
        assert copies - expected <= limit, f"{path}: {copies - expected} duplicates"
    # every alert of a webhook rule arrived, under one id
    by_event: dict[int, set[str]] = defaultdict(set)
    for r in receiver.delivered("/alerts"):
        by_event[r.body["eventId"]].add(r.webhook_id or "")
    assert set(by_event) == set(stored["alerts"]) and stored["alerts"]
    assert all(len(v) == 1 for v in by_event.values())
