"""Delivery after an outage: how long a receiver that comes back waits for what it is owed.

A real hub process (the crash tests' ``crash_child.py``: the burst source, 5 devices ×
300 fixes, a JSON 1 relay, a JSON 2 relay and an alerts webhook, see
``tests/delivery/crash.py``) starts while its receiver is down (nothing listens on its
port), stores everything, and is killed with SIGKILL during the outage and started again
at once.  When the outage ends the receiver (the Startrack plugin's validating one)
starts listening.  The script prints, per sink, the probe interval in effect when the
receiver came back and the seconds from then until the receiver got the sink's first
request and until the sink owed nothing; the target is one probe interval.  Timings are
printed, never asserted.

    uv run python bench/outage.py                          # down 120 s, killed at 45 and 90 s
    uv run python bench/outage.py --down 600 --kill-at 300,500
    uv run python bench/outage.py --probe 0.5 2            # shorter probe intervals
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "delivery"))

from crash import PATHS, open_store, prepare, run_child, wait_until

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub.delivery import PROBE_FIRST_S, PROBE_MAX_S
from hub.secrets import SecretBox


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sinks_now(data_dir: Path, key: str) -> dict[str, dict[str, Any]]:
    """Each sink's state, probe interval, next probe and messages owed."""
    store = open_store(data_dir, key)
    try:
        return {
            row.name: {
                "state": row.state,
                "interval": row.probe_interval_s,
                "probe_at": row.probe_at,
                "owed": store.sinks.stats(row)["pending"],
            }
            for row in store.sinks.list()
        }
    finally:
        store.close()


async def measure(args: argparse.Namespace, data_dir: Path) -> None:
    key = SecretBox.generate_key()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env["GPSHUB_SECRET_KEY"] = key
    port = free_port()
    prepare(data_dir, key, f"http://127.0.0.1:{port}")
    probe = tuple(args.probe) if args.probe else None
    kills = sorted(float(k) for k in args.kill_at.split(",") if k)
    receiver = Receiver()
    start = trio.current_time()
    proc = await run_child(data_dir, env, probe)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(120):
            await wait_until(data_dir, key, delivered=False)
        print(f"all fixes stored {trio.current_time() - start:.1f} s into the outage")
        for at in kills:
            await trio.sleep_until(start + at)
            proc.kill()
            await proc.wait()
            proc = await run_child(data_dir, env, probe)
            print(f"SIGKILL and restart {at:.0f} s into the outage")
        await trio.sleep_until(start + args.down)
        before = await trio.to_thread.run_sync(sinks_now, data_dir, key)
        read_at = time.time()
        await nursery.start(lambda task_status: serve_receiver(receiver, port=port,
                                                               task_status=task_status))  # fmt: skip
        back = trio.current_time()
        print(f"receiver back {back - start:.0f} s into the outage")
        done: dict[str, float] = {}
        with trio.move_on_after(args.timeout):
            while len(done) < len(before):
                now = await trio.to_thread.run_sync(sinks_now, data_dir, key)
                for name, sink in now.items():
                    if sink["owed"] == 0 and name not in done:
                        done[name] = trio.current_time() - back
                await trio.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        with trio.move_on_after(20):
            await proc.wait()
        nursery.cancel_scope.cancel()

    print(f"\n{'sink':<8} {'owed':>6} {'interval':>9} {'next probe':>11} {'1st request':>12} "
          f"{'all delivered':>14}")  # fmt: skip
    for path in PATHS:
        sink = before[path]
        first = next((t for r, t in zip(receiver.requests, receiver.times, strict=True)
                      if r.path == path), None)  # fmt: skip
        due = ""
        if sink["probe_at"] is not None:
            due = f"{sink['probe_at'].timestamp() - read_at:.0f} s"
        interval = f"{sink['interval']:.0f} s" if sink["interval"] else "up"
        first_s = f"{first - back:.1f} s" if first is not None else "none"
        total = f"{done[path]:.1f} s" if path in done else f"> {args.timeout:.0f} s"
        print(f"{path:<8} {sink['owed']:>6} {interval:>9} {due:>11} {first_s:>12} {total:>14}")
    print(f"\nprobe intervals: {probe[0] if probe else PROBE_FIRST_S:g} s doubling to "
          f"{probe[1] if probe else PROBE_MAX_S:g} s; 'next probe' is relative to the "
          "receiver's return; the target is 'all delivered' within one interval, plus the "
          "time the receiver takes to accept what is owed")  # fmt: skip
    problems = receiver.problems()
    print(f"requests received: {receiver.counts}; problems found: {len(problems)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--down", type=float, default=120.0, help="seconds the receiver is down")
    ap.add_argument(
        "--kill-at", default="45,90", help="seconds into the outage to SIGKILL and restart"
    )
    ap.add_argument("--timeout", type=float, default=900.0, help="give up after this long")
    ap.add_argument("--probe", type=float, nargs=2, metavar=("FIRST", "MAX"),
                    help="the hub's probe intervals (default: the hub's own)")  # fmt: skip
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpshub-outage-") as tmp:
        trio.run(measure, args, Path(tmp))


if __name__ == "__main__":
    main()
