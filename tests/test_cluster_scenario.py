"""Three real ``gpshub serve`` processes on one PostgreSQL schema (issue 16): thirty Traccar
connections (a fake Traccar, one account per connection) and three location webhooks to a
receiver served by the test.

Once the leases settle (ten connections and one sink each): a WebSocket on hub B receives
a fix that hub C polled; a rule created through hub A raises an alert for a fix hub B
polled.  Hub A is killed with SIGKILL just after a new fix for every unit: its
connections and its sink move to B and C within the lease time (and a generous bound),
then another fix for every unit.  In the end history holds every fix the fake has exactly
once, every position reached every receiver (a repeat only with the webhook-id it came
with first: the in-flight batch of the killed sink), and the fake's calls show that no
two processes ever polled one connection at once (``hub.cluster_testing.poll_problems``;
``test_poll_problems_show_a_double_poll`` shows the check fails on one).

The seconds from the kill until the connections were held again are printed, not asserted.
"""

from __future__ import annotations

import json
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from gpshub_traccar.testing import FakeCall, FakeTraccar
from hub.cluster_testing import (
    ROUTE,
    WAIT,
    Poll,
    Receiver,
    TraccarAccounts,
    hub_environment,
    poll_problems,
    provision,
    serving_processes,
    until,
    wait_balanced,
)
from hub.secrets import SecretBox
from hub.store import Store

LEASE_S = 6.0
ACCOUNTS = 30
HUBS = 3
POLL_S = 30.0  # the Traccar source's cadence (minus up to 10 % jitter)
MIN_GAP_S = POLL_S * 2 / 3
LIMIT_KMH = 100.0
WATCHED_LAT = 41.5  # the fix B's WebSocket waits for
RULE_LEARNT_S = 10.0  # ample time for B to see a rule created through A


async def collect(ws: WebSocketConnection, into: list[dict[str, Any]]) -> None:
    """Keep every message the socket receives (frames are arrays of messages)."""
    try:
        while True:
            into.extend(json.loads(await ws.get_message()))
    except ConnectionClosed:
        pass


async def polled_since(
    fake: FakeTraccar, accounts: TraccarAccounts, among: set[int], since: float
) -> int:
    """An account of ``among`` whose route report was asked for at or after ``since``
    (trio time), waiting for one if need be: it is not polled again until an interval
    (less jitter) after that."""
    emails = {accounts.users[i].email: i for i in among}
    with trio.fail_after(WAIT):
        while True:
            for call in reversed(fake.calls):
                if call.path == ROUTE and call.user in emails and call.started >= since:
                    return emails[call.user]
            await trio.sleep(0.2)


@pytest.mark.postgres
async def test_three_hubs_share_the_work_and_survive_a_kill(tmp_path: Path, pg_url: str) -> None:
    key = SecretBox.generate_key()
    fake = FakeTraccar()
    fake.slow(0.05)  # each request takes a while: two at once overlap in fake.calls
    accounts = TraccarAccounts(fake, ACCOUNTS)
    accounts.history(time.time() - 300, 30)  # five minutes before the hubs start
    receiver = Receiver()
    store = Store.open(pg_url, SecretBox([key.encode()]))
    logs: list[list[bytes]] = [[] for _ in range(HUBS)]
    try:
        async with trio.open_nursery() as nursery:
            upstream = await nursery.start(fake.serve)
            receiving = await nursery.start(receiver.serve)
            paths = [f"/sink/{n}" for n in range(HUBS)]
            setup = provision(store, accounts, upstream, [receiving + p for p in paths])
            devices, units = setup.devices, accounts.units
            async with AsyncExitStack() as stack:
                envs = [
                    hub_environment(tmp_path / f"hub{n}", pg_url, key, LEASE_S) for n in range(HUBS)
                ]
                hubs = await stack.enter_async_context(serving_processes(envs, logs))
                (a, url_a), (b, url_b), (c, _) = hubs
                http = await stack.enter_async_context(
                    httpx.AsyncClient(
                        headers={"Authorization": f"Bearer {setup.token}"}, timeout=WAIT
                    )
                )
                held = await wait_balanced(
                    http, url_b, [p.pid for p, _ in hubs], setup.connections, setup.sinks
                )
                settled = trio.current_time()
                assert all(len(h.connections) == 10 and len(h.sinks) == 1 for h in held.values())

                # a WebSocket on B, a rule through A
                ws = await stack.enter_async_context(
                    open_websocket_url(
                        url_b.replace("http://", "ws://") + "/api/live",
                        extra_headers=[("Authorization", f"Bearer {setup.token}")],
                    )
                )
                live: list[dict[str, Any]] = []
                nursery.start_soon(collect, ws, live)
                r = await http.post(
                    url_a + "/api/rules",
                    json={"client_id": setup.client, "name": "speeding", "type": "overspeed",
                          "params": {"limit_kmh": LIMIT_KMH}},
                )  # fmt: skip
                assert r.status_code == 201, r.text
                rule = r.json()["id"]
                # B learns of the rule through the change log (every second): a unit of
                # B's whose next poll is at least RULE_LEARNT_S away
                speeder = await polled_since(
                    fake,
                    accounts,
                    {setup.account(x) for x in held[b.pid].connections},
                    trio.current_time() + RULE_LEARNT_S - POLL_S * 0.9,
                )
                watched = setup.account(min(held[c.pid].connections))
                moving = held[a.pid]

                # a fix for every unit (two for the speeder, the second too fast), the kill
                now = time.time()
                for i, unit in enumerate(units):
                    fake.add_fix(unit, now - 2, WATCHED_LAT if i == watched else 38.0, 23.8)
                fake.add_fix(units[speeder], now - 1, 38.001, 23.8, speed_kmh=LIMIT_KMH + 50)
                a.kill()
                killed = trio.current_time()
                await wait_balanced(http, url_b, [b.pid, c.pid], setup.connections, setup.sinks)
                moved_s = trio.current_time() - killed
                now = time.time()
                for unit in units:  # and another fix for every unit
                    fake.add_fix(unit, now - 1, 38.1, 23.9)

                async def seen_on_b() -> bool:  # C's fix on B's socket
                    return any(
                        m["type"] == "position"
                        and m["device_id"] == devices[watched]
                        and m["data"]["lat"] == WATCHED_LAT
                        for m in live
                    )

                async def alerted() -> bool:  # for the fix B polled
                    page = await http.get(
                        url_b + "/api/alerts",
                        params={"client_id": setup.client, "rule_id": rule,
                                "device_id": devices[speeder]},
                    )  # fmt: skip
                    return bool(page.json()["alerts"])

                await until(seen_on_b)
                await until(alerted)
                expected = {devices[i]: accounts.fix_ms(i) for i in range(ACCOUNTS)}

                def stored() -> dict[int, list[int]]:
                    rows, _ = store.positions.history(devices, limit=100_000)
                    out: dict[int, list[int]] = {d: [] for d in devices}
                    for row in rows:
                        out[row["device_id"]].append(round(row["fix_time"].timestamp() * 1000))
                    return out

                async def caught_up() -> bool:  # the survivors poll every 30 s
                    return all(len(v) >= len(expected[d]) for d, v in stored().items())

                await until(caught_up, 1.0)
                history = stored()
                ids = {row["id"] for row in store.positions.history(devices, limit=100_000)[0]}

                async def delivered() -> bool:  # every position to every receiver
                    return all(set(receiver.locations(p)) >= ids for p in paths)

                await until(delivered)
                print(
                    f"\nfailover: hub A's {len(moving.connections)} connections and its sink held"
                    f" by B and C {moved_s:.1f} s after SIGKILL (lease {LEASE_S:.0f} s)"
                )
            nursery.cancel_scope.cancel()
    finally:
        store.close()

    for device, times in history.items():
        assert len(times) == len(set(times)), device  # each fix once
        assert sorted(times) == expected[device], device  # none lost
    for sink, path in zip(setup.sinks, paths, strict=True):
        delivered = receiver.locations(path)
        assert set(delivered) == ids, path  # every position, none unknown
        assert all(len(w) == 1 for w in delivered.values()), path  # a repeat: the same id
        if sink not in moving.sinks:  # a sink that stayed put repeats nothing
            sent = [d.webhook_id for d in receiver.deliveries if d.path == path]
            assert len(sent) == len(set(sent)), path

    moved_users = {accounts.users[setup.account(x)].email for x in moving.connections}

    def failover(user: str, earlier: Poll, later: Poll) -> bool:
        """A's last poll of a moved connection (perhaps sent as the signal landed: a
        second's grace) and its new holder's first."""
        return user in moved_users and earlier.started < killed + 1.0 <= later.started

    problems = poll_problems(fake.calls, min_gap_s=MIN_GAP_S, since=settled, exempt=failover)
    early = [p for p in poll_problems(fake.calls, min_gap_s=0) if p not in problems]
    print(f"before the leases settled at {settled:.3f} (not asserted): {early}")
    assert not problems, (f"settled at {settled:.3f}, A killed at {killed:.3f}", problems)


def call(user: str, started: float, path: str = ROUTE, took: float = 0.01) -> FakeCall:
    return FakeCall("GET", path, (), "basic", 200, user, started, started + took)


def test_poll_problems_show_a_double_poll() -> None:
    """The check above can fail: on polls one interval apart it finds nothing; on two
    processes polling one account (in step, overlapping, or each on its own cadence) it
    finds them."""
    steady = [call("a", t) for t in (0.0, 29.0, 57.5, 88.0)]
    steady += [call("b", t) for t in (3.0, 32.0, 62.0)]
    steady.insert(0, call("a", -0.2, "/api/devices"))  # a first poll reads the devices too
    assert poll_problems(steady, min_gap_s=MIN_GAP_S) == []

    interleaved = steady + [call("a", t) for t in (14.0, 44.0, 73.0)]
    assert len(poll_problems(interleaved, min_gap_s=MIN_GAP_S)) >= 3
    in_step = [*steady, call("a", 29.3)]
    assert any(
        "route reports in one poll" in p for p in poll_problems(in_step, min_gap_s=MIN_GAP_S)
    )
    assert not poll_problems(in_step, min_gap_s=MIN_GAP_S, since=30.0)  # before they settled
    overlapping = [*steady, call("b", 32.0, took=1.0), call("b", 32.5)]
    assert any("overlaps" in p for p in poll_problems(overlapping, min_gap_s=MIN_GAP_S))
    # a moved lease: a short gap at the failover only, when exempt
    moved = [*steady, call("b", 38.0)]
    assert poll_problems(moved, min_gap_s=MIN_GAP_S)
    assert not poll_problems(
        moved, min_gap_s=MIN_GAP_S, exempt=lambda user, x, y: x.started < 35 <= y.started
    )
