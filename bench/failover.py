"""Failover: how soon a killed hub process's connections are polled by the others.

Starts a fake Traccar (one account and unit per connection, five minutes of history
each) and ``--processes`` real ``gpshub serve`` processes on one PostgreSQL schema,
waits until the connections are spread evenly (``GET /api/cluster``), adds a fix for
every unit and kills the first process with SIGKILL.  Prints the seconds from the kill
to the first poll of one of its connections (from the fake's calls), until all of them
were polled again and until ``/api/cluster`` shows them all held again (checked every
half second), then, once the survivors caught up, the positions lost and duplicated
(both expected 0).  Timings are printed, never asserted: the expected move is within the
lease time plus a little.

    .venv/bin/python bench/failover.py
    .venv/bin/python bench/failover.py --lease-s 30 --processes 4 --connections 100

Works in a schema of its own (dropped at the end) of ``--database-url`` (default: the
local server's ``test`` database).
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import httpx
import trio

from gpshub_traccar.testing import FakeTraccar
from hub.cluster_testing import (
    WAIT,
    TraccarAccounts,
    hub_environment,
    provision,
    serving_processes,
    until,
    wait_balanced,
)
from hub.secrets import SecretBox
from hub.store import Store
from hub.testing import fresh_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def stored_fixes(store: Store, devices: list[int]) -> dict[int, list[int]]:
    """Each device's stored fix times (epoch ms)."""
    rows, _ = store.positions.history(devices, limit=10_000_000)
    out: dict[int, list[int]] = {d: [] for d in devices}
    for row in rows:
        out[row["device_id"]].append(round(row["fix_time"].timestamp() * 1000))
    return out


async def run(args: argparse.Namespace) -> None:
    key = SecretBox.generate_key()
    fake = FakeTraccar()
    accounts = TraccarAccounts(fake, args.connections)
    accounts.history(time.time() - 300, 30)
    with (
        fresh_schema(args.database_url, "bench_") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        store = Store.open(url, SecretBox([key.encode()]))
        try:
            async with trio.open_nursery() as nursery:
                upstream = await nursery.start(fake.serve)
                setup = provision(store, accounts, upstream)
                envs = [
                    hub_environment(Path(tmp) / f"hub{n}", url, key, args.lease_s)
                    for n in range(args.processes)
                ]
                logs: list[list[bytes]] = [[] for _ in envs]
                started = trio.current_time()
                async with (
                    serving_processes(envs, logs) as hubs,
                    httpx.AsyncClient(
                        headers={"Authorization": f"Bearer {setup.token}"}, timeout=WAIT
                    ) as http,
                ):
                    pids = [p.pid for p, _ in hubs]
                    held = await wait_balanced(http, hubs[-1][1], pids, setup.connections, [])
                    print(
                        f"{args.processes} processes, {args.connections} connections, lease"
                        f" {args.lease_s:g} s: spread evenly"
                        f" {trio.current_time() - started:.1f} s after the start"
                    )
                    victim = hubs[0][0]
                    moving = held[victim.pid].connections
                    moved_users = {accounts.users[setup.account(c)].email for c in moving}
                    now = time.time()
                    for unit in accounts.units:
                        fake.add_fix(unit, now - 1, 38.0, 23.8)
                    victim.kill()
                    killed = trio.current_time()
                    await wait_balanced(http, hubs[-1][1], pids[1:], setup.connections, [])
                    held_s = trio.current_time() - killed
                    expected = {
                        setup.devices[i]: accounts.fix_ms(i) for i in range(len(accounts.units))
                    }

                    async def caught_up() -> bool:
                        stored = stored_fixes(store, setup.devices)
                        return all(len(v) >= len(expected[d]) for d, v in stored.items())

                    with contextlib.suppress(trio.TooSlowError):  # then count what is lost
                        await until(caught_up)
                    firsts: dict[str, float] = {}
                    for call in fake.calls:
                        if call.user in moved_users and call.started >= killed:
                            firsts.setdefault(call.user, call.started - killed)
                    stored = stored_fixes(store, setup.devices)
                    lost = sum(len(set(expected[d]) - set(v)) for d, v in stored.items())
                    duplicated = sum(len(v) - len(set(v)) for v in stored.values())
                    print(f"SIGKILL of a process holding {len(moving)} connections:")
                    if firsts:
                        print(f"  first poll of a moved connection  {min(firsts.values()):6.1f} s")
                    if len(firsts) == len(moving):
                        print(f"  all of them polled again          {max(firsts.values()):6.1f} s")
                    else:
                        print(f"  polled again: {len(firsts)} of {len(moving)}")
                    print(f"  all held again (/api/cluster)     {held_s:6.1f} s")
                    print(f"  positions lost {lost}, duplicated {duplicated} (expected 0 and 0)")
                nursery.cancel_scope.cancel()
        finally:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lease-s", type=float, default=6.0)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--connections", type=int, default=30)
    parser.add_argument("--database-url", default=DEFAULT_URL)
    args = parser.parse_args()
    if args.processes < 2:
        parser.error("--processes: at least 2 (one is killed)")
    trio.run(run, args)


if __name__ == "__main__":
    main()
