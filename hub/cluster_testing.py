"""Scaffolding for tests and benchmarks of several real ``gpshub serve`` processes on one
PostgreSQL database (``tests/test_cluster_scenario.py``, ``bench/failover.py``).

* ``serving_process``: a real hub process on a free port, stopped (or found killed) at
  the end of the block (``serving_processes``: several, started at once);
  ``hub_environment`` the environment such processes share;
* ``TraccarAccounts``: a ``FakeTraccar`` with one user and one unit per connection, so
  the fake tells the connections apart (``FakeCall.user``); ``provision`` stores the
  client, the connections, their devices, location webhooks and an administrator token;
* ``Receiver``: a webhook receiver served on loopback that keeps every delivery;
* ``holdings`` / ``balanced``: what each live process holds, from ``GET /api/cluster``;
* ``polls`` / ``poll_problems``: from the fake's calls, each connection's polls, and
  whether two processes ever polled one connection at once.

Nothing here is imported by the running hub.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson
import trio

if TYPE_CHECKING:
    from gpshub_traccar.testing import FakeCall, FakeTraccar, FakeUser
    from hub.store import Store

WAIT = 120.0
"""Seconds: a bound against hangs on a busy machine, never a timing."""
ROUTE = "/api/reports/route"
JOIN_S = 1.0
"""Requests of one connection less than this apart belong to one poll."""


# -- processes ---------------------------------------------------------------------------
def hub_environment(
    data_dir: Path, database_url: str, secret_key: str, lease_s: float, **extra: str
) -> dict[str, str]:
    """The environment of one ``gpshub serve`` process of a group on ``database_url``
    (outbound requests to loopback allowed: the fakes and receivers are there)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPSHUB_")}
    env.update(
        GPSHUB_DATA_DIR=str(data_dir),
        GPSHUB_SECRET_KEY=secret_key,
        GPSHUB_DATABASE_URL=database_url,
        GPSHUB_LEASE_S=str(lease_s),
        GPSHUB_OUTBOUND_ALLOW_NETWORKS="127.0.0.0/8",
        GPSHUB_LOG_SUMMARY_S="0",
        COLUMNS="200",
    )
    env.update(extra)
    return env


@asynccontextmanager
async def serving_process(
    env: dict[str, str], log: list[bytes]
) -> AsyncIterator[tuple[trio.Process, str]]:
    """``gpshub serve`` on a free port until the block ends (SIGTERM, unless it was
    killed meanwhile): the process and its URL.  What it prints (it logs to stderr) is
    collected in ``log``."""
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-m", "hub.cli", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    found = trio.Event()
    url: list[str] = []

    async def read() -> None:
        assert proc.stdout is not None
        async for chunk in proc.stdout:
            log.append(chunk)
            match = re.search(rb"http://127\.0\.0\.1:\d+", b"".join(log))
            if match and not url:
                url.append(match.group().decode())
                found.set()

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            with trio.fail_after(WAIT):
                await found.wait()
            yield proc, url[0]
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


@asynccontextmanager
async def serving_processes(
    envs: Sequence[dict[str, str]], logs: Sequence[list[bytes]]
) -> AsyncIterator[list[tuple[trio.Process, str]]]:
    """``serving_process`` for each environment, started at once (each with its log):
    the processes and their URLs, in order."""
    got: dict[int, tuple[trio.Process, str]] = {}
    ready, done = trio.Event(), trio.Event()

    async def one(i: int) -> None:
        async with serving_process(envs[i], logs[i]) as served:
            got[i] = served
            if len(got) == len(envs):
                ready.set()
            await done.wait()

    async with trio.open_nursery() as nursery:
        for i in range(len(envs)):
            nursery.start_soon(one, i)
        try:
            await ready.wait()
            yield [got[i] for i in range(len(envs))]
        finally:
            done.set()


async def until(check: Callable[[], Awaitable[bool]], every_s: float = 0.5) -> None:
    """Await ``check()`` every ``every_s`` until it is true (``trio.TooSlowError`` after
    ``WAIT``): for what another process does, which no event of ours tells."""
    with trio.fail_after(WAIT):
        while not await check():  # noqa: ASYNC110 - another process acts
            await trio.sleep(every_s)


# -- the upstream and the hub's configuration ----------------------------------------------
class TraccarAccounts:
    """A ``FakeTraccar`` with ``count`` accounts, each a user of its own seeing one unit
    of its own: account ``i`` is connection ``i``'s."""

    def __init__(self, fake: FakeTraccar, count: int) -> None:
        self.fake = fake
        self.users: list[FakeUser] = []
        self.units: list[str] = []
        for i in range(count):
            user = fake.add_user(f"driver{i}@example.com", f"secret-{i}", name=f"driver {i}")
            self.users.append(user)
            self.units.append(fake.add_unit(f"van {i}", users=[user]))

    def history(self, start: float, count: int, step_s: float = 10.0) -> None:
        """``count`` fixes per unit from ``start``, ``step_s`` apart."""
        for unit in self.units:
            for k in range(count):
                self.fake.add_fix(unit, start + step_s * k, 37.9 + k / 1e4, 23.7)

    def fix_ms(self, i: int) -> list[int]:
        """Account ``i``'s unit's fix times (epoch ms) the fake has."""
        return list(self.fake.devices[int(self.units[i])].fix_ms)

    def account_of(self, email: str) -> int:
        return next(i for i, u in enumerate(self.users) if u.email == email)


@dataclass
class Provisioned:
    """What ``provision`` stored: ids by account (connection ``connections[i]`` polls
    ``devices[i]``), the sinks, an administrator's token."""

    client: int
    connections: list[int]
    devices: list[int]
    sinks: list[int]
    token: str

    def account(self, connection: int) -> int:
        return self.connections.index(connection)


def provision(
    store: Store,
    accounts: TraccarAccounts,
    upstream_url: str,
    sink_urls: Sequence[str] = (),
) -> Provisioned:
    """A client with one Traccar connection and device per account, a ``gpshub-locations``
    webhook to each of ``sink_urls``, and an administrator's API token."""
    from hub.roles import Role

    client = store.create_client("acme").id or 0
    connections, devices = [], []
    for i, (user, unit) in enumerate(zip(accounts.users, accounts.units, strict=True)):
        credentials = accounts.fake.credentials(upstream_url, user)
        conn = store.create_connection(client, "traccar", f"account {i}", credentials).id or 0
        connections.append(conn)
        device = store.create_device(client, name=f"van {i}", connection_id=conn, upstream_id=unit)
        devices.append(device.id or 0)
    sinks = [
        int(
            store.sinks.create(
                client,
                name=f"relay {n}",
                kind="webhook",
                format="gpshub-locations",
                purpose="locations",
                settings={"url": url},
            ).id
            or 0
        )
        for n, url in enumerate(sink_urls)
    ]
    admin = store.create_user("admin", Role.ADMIN, None).id or 0
    token = store.create_token(admin, "cluster test")[1]
    return Provisioned(client, connections, devices, sinks, token)


# -- a webhook receiver ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivery:
    path: str
    webhook_id: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """Answers 200 to every POST and keeps it; serve with ``nursery.start(receiver.serve)``
    and give each sink a path of its own (``f"{url}/sink/{n}"``)."""

    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        async def keep(request: Request) -> Response:
            self.deliveries.append(
                Delivery(
                    request.url.path,
                    request.headers.get("webhook-id", ""),
                    orjson.loads(await request.body()),
                )
            )
            return Response(b"")

        self.app = Starlette(routes=[Route("/{path:path}", keep, methods=["POST"])])

    async def serve(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        from hub.testing import serve_app

        await serve_app(self.app, task_status=task_status)

    def locations(self, path: str) -> dict[int, set[str]]:
        """Each position id delivered to ``path`` -> the webhook-ids it came with."""
        out: dict[int, set[str]] = {}
        for d in self.deliveries:
            if d.path == path:
                for location in d.body["locations"]:
                    out.setdefault(location["id"], set()).add(d.webhook_id)
        return out


# -- the cluster as the API shows it -------------------------------------------------------
@dataclass(frozen=True)
class Held:
    connections: frozenset[int]
    sinks: frozenset[int]


async def holdings(http: httpx.AsyncClient, base: str) -> dict[int, Held]:
    """Each live process's pid -> what it holds (``GET /api/cluster``)."""
    body = (await http.get(base + "/api/cluster", timeout=WAIT)).json()

    def ids(node: dict[str, Any], kind: str) -> frozenset[int]:
        prefix = kind + ":"
        return frozenset(
            int(x["resource"][len(prefix) :])
            for x in node["leases"]
            if x["resource"].startswith(prefix)
        )

    return {
        n["pid"]: Held(ids(n, "connection"), ids(n, "sink")) for n in body["nodes"] if n["alive"]
    }


def balanced(
    held: dict[int, Held], pids: Iterable[int], connections: Iterable[int], sinks: Iterable[int]
) -> bool:
    """Exactly the processes ``pids`` are alive, together they hold every connection and
    sink, and none holds more than its share (``ceil(total / processes)``)."""
    pids, connections, sinks = set(pids), set(connections), set(sinks)
    if set(held) != pids:
        return False
    for wanted, of in ((connections, lambda h: h.connections), (sinks, lambda h: h.sinks)):
        share = math.ceil(len(wanted) / len(pids))
        if set().union(*(of(h) for h in held.values())) != wanted:
            return False
        if any(len(of(h)) > share for h in held.values()):
            return False
    return True


async def wait_balanced(
    http: httpx.AsyncClient,
    base: str,
    pids: Iterable[int],
    connections: Iterable[int],
    sinks: Iterable[int],
) -> dict[int, Held]:
    """Poll ``GET /api/cluster`` until ``balanced`` (within ``WAIT``)."""
    pids, connections, sinks = list(pids), list(connections), list(sinks)
    with trio.fail_after(WAIT):
        while True:
            held = await holdings(http, base)
            if balanced(held, pids, connections, sinks):
                return held
            await trio.sleep(0.5)


# -- who polled what, when ----------------------------------------------------------------
@dataclass
class Poll:
    """Requests of one account less than ``JOIN_S`` apart: one poll (or polls at once)."""

    user: str
    calls: list[FakeCall]

    @property
    def started(self) -> float:
        return self.calls[0].started

    @property
    def ended(self) -> float:
        return max(c.ended for c in self.calls)

    @property
    def routes(self) -> int:
        return sum(c.path == ROUTE for c in self.calls)

    def __str__(self) -> str:
        return ", ".join(f"{c.path} {c.started:.3f}-{c.ended:.3f} {c.status}" for c in self.calls)


def polls(calls: Iterable[FakeCall]) -> dict[str, list[Poll]]:
    """Each user's requests grouped into polls, in order."""
    by_user: dict[str, list[Poll]] = {}
    for call in sorted((c for c in calls if c.user is not None), key=lambda c: c.started):
        user = call.user or ""
        found = by_user.setdefault(user, [])
        if found and call.started - found[-1].ended < JOIN_S:
            found[-1].calls.append(call)
        else:
            found.append(Poll(user, [call]))
    return by_user


def poll_problems(
    calls: Iterable[FakeCall],
    *,
    min_gap_s: float,
    since: float = -math.inf,
    exempt: Callable[[str, Poll, Poll], bool] = lambda user, a, b: False,
) -> list[str]:
    """Signs that two processes polled one account at once, from the fake's calls:

    * two requests of one account overlapping in time (one process polls an account
      one request after the other), at any time;
    * from ``since`` on (once the leases settled: a lease handed back while its poll
      was under way may be polled by the next holder within ``JOIN_S`` of the abandoned
      request), a poll with two route reports (one process asks once per poll for a
      single unit: two processes polling in step look like this);
    * two polls starting less than ``min_gap_s`` apart, the first from ``since`` on
      (the runner polls every interval, 30 s minus 10 % jitter: two processes each on
      their own cadence leave a gap of at most half an interval between their polls),
      unless ``exempt(user, earlier, later)`` (a lease that moved)."""
    calls = list(calls)
    problems: list[str] = []
    by_user: dict[str, list[FakeCall]] = {}
    for c in calls:
        if c.user is not None:
            by_user.setdefault(c.user, []).append(c)
    for user, mine in by_user.items():
        mine.sort(key=lambda c: c.started)
        busy_until = -math.inf
        for c in mine:
            if c.started < busy_until:
                problems.append(f"{user}: {c.path} at {c.started:.3f} overlaps another request")
            busy_until = max(busy_until, c.ended)
    for user, found in polls(calls).items():
        for p in found:
            if p.routes > 1 and p.started >= since:
                problems.append(f"{user}: {p.routes} route reports in one poll: {p}")
        for a, b in itertools.pairwise(found):
            gap = b.started - a.started
            if a.started >= since and gap < min_gap_s and not exempt(user, a, b):
                problems.append(f"{user}: polls {gap:.1f} s apart at {a.started:.3f}")
    return problems
