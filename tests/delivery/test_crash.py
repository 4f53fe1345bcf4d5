"""SIGKILL a real hub process (``crash_child.py``) and prove nothing was lost.

The hub polls the burst source, with a JSON 1 relay, a JSON 2 relay and an alerts
webhook pointed at a validating receiver in this process (see ``crash.py``).  Every
stored location and every alert of a webhook rule must reach the receiver; the only
duplicates are messages that were in flight at a kill, and a message always comes back
with the same ``webhook-id``.
"""

from __future__ import annotations

import os
import random
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import trio
from crash import PATHS, describe, prepare, run_child, settled, wait_until

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub.delivery import SINGLE_CHUNK
from hub.models import SinkState
from hub.secrets import SecretBox

KILLS = 3


def child_env(key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env["GPSHUB_SECRET_KEY"] = key
    return env


async def kill(proc: trio.Process) -> None:
    proc.kill()  # SIGKILL: no clean-up of any kind
    await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def stop(proc: trio.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    with trio.fail_after(60):  # a hang guard: a busy machine is slow to finish a batch
        await proc.wait()
    assert proc.returncode == 0


async def finish(
    data_dir: Path,
    key: str,
    env: dict[str, str],
    receiver: Receiver,
    *,
    within: float,
    probe: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Run the hub until it has delivered everything (within ``within`` seconds), stop
    it with SIGTERM; what it stored."""
    proc = await run_child(data_dir, env, probe)
    try:
        with trio.move_on_after(within):
            await wait_until(data_dir, key)
    finally:
        await stop(proc)
    done, stored = settled(data_dir, key)
    assert done, describe(data_dir, key, receiver.counts)
    return stored


def check_everything_arrived(receiver: Receiver, stored: dict[str, Any], kills: int) -> None:
    """Every location reached both relays and every alert the webhook, each under one
    webhook-id; repeats only of what was in flight at a kill."""
    assert receiver.problems() == []
    assert stored["dead"] == 0
    expected = len(stored["positions"])
    for path, limit in (("/json1", kills * SINGLE_CHUNK), ("/json2", kills * 1000)):
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
    by_event: dict[int, set[str]] = defaultdict(set)
    for r in receiver.delivered("/alerts"):
        by_event[r.body["eventId"]].add(r.webhook_id or "")
    assert set(by_event) == set(stored["alerts"]) and stored["alerts"]
    assert all(len(v) == 1 for v in by_event.values())


async def test_sigkill_loses_no_location_and_no_alert(tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    env = child_env(key)
    receiver = Receiver()
    refusing_until = [0.0]

    def decide(path: str, body: Any) -> int | None:  # the alerts receiver has hiccups too
        return 503 if path == "/alerts" and trio.current_time() < refusing_until[0] else None

    receiver.decide = decide
    rng = random.Random(4)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        prepare(tmp_path, key, url)
        for k in range(KILLS):
            seen = receiver.count()
            proc = await run_child(tmp_path, env)
            try:
                with trio.fail_after(120):  # a hang guard
                    await receiver.wait_for(seen + 40)
                if k == 0:  # some alerts fail once and are owed across the restarts
                    refusing_until[0] = trio.current_time() + 1.0
                await trio.sleep(rng.uniform(0.05, 0.6))
            finally:
                await kill(proc)
        stored = await finish(tmp_path, key, env, receiver, within=180)
        nursery.cancel_scope.cancel()
    check_everything_arrived(receiver, stored, KILLS)


async def test_a_hub_killed_while_the_receiver_is_down_goes_on_probing(tmp_path: Path) -> None:
    """The receiver answers 503 until the hub has been killed three times; then it is back.
    The restarted hub must go on probing (so everything owed goes out at the first probe
    after the receiver is back, not on the messages' retry schedules, which the probes
    did not move)."""
    key = SecretBox.generate_key()
    env = child_env(key)
    probe = (0.5, 2.0)  # seconds: the first probe interval, and the longest
    receiver = Receiver()
    receiver.status = 503
    rng = random.Random(11)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        prepare(tmp_path, key, url)
        for life in range(3):  # killed three times while the receiver is down
            seen = receiver.counts
            proc = await run_child(tmp_path, env, probe)
            try:
                with trio.fail_after(120):  # a hang guard
                    if life == 0:  # until every fix is stored, all of them owed
                        await wait_until(tmp_path, key, delivered=False)
                    for path in PATHS:  # and the hub has tried each sink again
                        await receiver.wait_for(seen[path] + 3, path)
                await trio.sleep(rng.uniform(0.0, 1.0))
            finally:
                await kill(proc)
        _, during = settled(tmp_path, key)
        assert during["attempts"] == 1, "a probe is no attempt of the message it carries"
        for name, row in during["sinks"].items():
            assert row.probe_at is not None and row.state == SinkState.RETRYING, name
        receiver.status = 200
        # the retry schedule's next step is 5 minutes; the probes are 2 s apart (150 s
        # leave a busy machine time to start the hub, and are still well short of 5 min)
        stored = await finish(tmp_path, key, env, receiver, within=150, probe=probe)
        nursery.cancel_scope.cancel()
    check_everything_arrived(receiver, stored, 3)
    assert all(row.state == SinkState.OK for row in stored["sinks"].values())
