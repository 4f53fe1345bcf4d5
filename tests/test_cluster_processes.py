"""Three real ``gpshub serve`` processes on one PostgreSQL schema share nine Traccar
connections (a fake Traccar served by the test); one is killed with SIGKILL: its
connections move to the two others within the lease time, and every fix the fake had
ends up in history exactly once.  Prints the seconds from the kill to the first poll of
a moved connection (a figure, not asserted beyond a bound against hangs)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest
import trio
from test_processes import serving_process

from gpshub_traccar.testing import FakeTraccar
from hub.roles import Role
from hub.secrets import SecretBox
from hub.store import Store

pytestmark = pytest.mark.postgres

LEASE_S = 6.0
UNITS = 9
WAIT = 120.0  # a bound against hangs on a busy machine, not a timing


async def test_a_killed_process_connections_move_and_no_fix_is_lost(
    tmp_path: Path, pg_url: str
) -> None:
    key = SecretBox.generate_key()
    fake = FakeTraccar()
    units = [fake.add_unit(f"van {i}") for i in range(UNITS)]
    start = time.time() - 300
    for unit in units:  # five minutes of history before the hubs start
        for k in range(30):
            fake.add_fix(unit, start + 10 * k, 37.9 + k / 1e4, 23.7)
    store = Store.open(pg_url, SecretBox([key.encode()]))
    logs: list[list[bytes]] = [[], [], []]
    try:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(fake.serve)
            client = store.create_client("acme").id or 0
            devices: dict[int, int] = {}  # connection -> device
            for i, unit in enumerate(units):
                conn = store.create_connection(client, "traccar", f"account {i}",
                                               fake.credentials(url)).id or 0  # fmt: skip
                devices[conn] = store.create_device(client, name=f"van {i}", connection_id=conn,
                                                    upstream_id=unit).id or 0  # fmt: skip
            admin = store.create_user("admin", Role.ADMIN, None).id or 0
            token = store.create_token(admin, "test")[1]

            def env(n: int) -> dict[str, str]:
                e = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
                e.update(GPSHUB_DATA_DIR=str(tmp_path / f"hub{n}"), GPSHUB_SECRET_KEY=key,
                         GPSHUB_DATABASE_URL=pg_url, GPSHUB_LEASE_S=str(LEASE_S),
                         GPSHUB_OUTBOUND_ALLOW_NETWORKS="127.0.0.0/8", GPSHUB_LOG_SUMMARY_S="0")  # fmt: skip
                return e

            async with (
                serving_process(env(0), logs[0]) as (p0, _),
                serving_process(env(1), logs[1]) as (_, url1),
                serving_process(env(2), logs[2]) as (_, url2),
                httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http,
            ):

                async def cluster(base: str) -> dict[str, set[int]]:
                    """Each live process's pid -> the connections it holds."""
                    body = (await http.get(base + "/api/cluster", timeout=WAIT)).json()
                    return {
                        n["pid"]: {
                            int(x["resource"].split(":")[1])
                            for x in n["leases"]
                            if x["resource"].startswith("connection:")
                        }
                        for n in body["nodes"]
                        if n["alive"]
                    }

                async def settle(base: str, pids: int, each: int) -> dict[str, set[int]]:
                    with trio.fail_after(WAIT):
                        while True:
                            held = await cluster(base)
                            counts = sorted(len(h) for h in held.values())
                            if len(held) == pids and counts == [each] * pids:
                                return held
                            await trio.sleep(0.5)

                held = await settle(url1, 3, UNITS // 3)
                moving = held[p0.pid]
                moving_units = {units[list(devices).index(c)] for c in moving}
                # a new fix for every unit, then the kill
                for unit in units:
                    fake.add_fix(unit, time.time() - 1, 38.0, 23.8)
                seen = len(fake.calls)
                p0.kill()
                killed = trio.current_time()
                with trio.fail_after(WAIT):
                    while True:
                        held = await cluster(url2)
                        if p0.pid not in held and set().union(*held.values()) == set(devices):
                            break
                        await trio.sleep(0.5)
                moved_s = trio.current_time() - killed
                assert max(len(h) for h in held.values()) <= 5  # ceil(9 / 2): none above
                expected = {u: [ms / 1000 for ms in fake.devices[int(u)].fix_ms] for u in units}

                def stored(device: int) -> list[float]:
                    rows, _ = store.positions.history([device], limit=10_000)
                    return sorted(r["fix_time"].timestamp() for r in rows)

                with trio.fail_after(WAIT):  # the survivors poll every 30 s
                    while any(len(stored(devices[c])) < len(expected[units[i]])  # noqa: ASYNC110
                              for i, c in enumerate(devices)):  # fmt: skip
                        await trio.sleep(1)
                first = next(
                    i
                    for i, c in enumerate(fake.calls[seen:])
                    if c.path == "/api/reports/route" and set(c.params("deviceId")) & moving_units
                )
                assert first is not None
                print(f"\nfailover: the killed process's {len(moving)} connections held by the "
                      f"others {moved_s:.1f} s after SIGKILL (lease {LEASE_S:.0f} s)")  # fmt: skip
            for i, (_conn, device) in enumerate(devices.items()):
                times = stored(device)
                assert len(times) == len(set(times))  # each fix once
                assert times == pytest.approx(sorted(expected[units[i]]), abs=0.002)  # none lost
            nursery.cancel_scope.cancel()
    finally:
        store.close()
