"""Ingest benchmark: synthetic positions for 1,000 devices through the real pipeline.

Feeds fixes (with their cursor updates, as source runners do) through ``Pipeline.submit``
into SQLite while 10 live-feed subscribers drain every message (and ``--readers`` threads
read the database, as API calls and sink workers do), and prints positions per second
end to end, peak memory and the size of SQLite's WAL file.  Then inserts the same rows
with a plain SQLAlchemy Core bulk insert into a fresh database and prints that rate and
the ratio of the two.  The process's CPU time per fix (hub, subscribers and all) is
printed too.

With ``--database-url`` (or ``GPSHUB_DATABASE_URL``) naming a PostgreSQL database, every
figure is measured on it as well (each run in a fresh schema, dropped afterwards) and
printed beside SQLite's.  ``--batch N`` measures instead fixes submitted ``N`` at a time
by one producer that awaits each submit (``--batch 1``: a push source's fix alone).

    make bench            # or: uv run python bench/ingest.py --devices 1000 --fixes 100
    uv run python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1/test
    uv run python bench/ingest.py --batch 1 --database-url ...

On a shared machine add ``--repeat 3``: the backends run in turn and the best run of
each is shown.

``--processes 1,2,3`` (with a PostgreSQL ``--database-url``) measures instead several hub
processes ingesting into one database together, as a cluster does: for each count in
turn, a fresh schema is migrated once, then that many processes (spawned) share out the
devices (each process's on a connection of its own), the producers and the live
subscribers, set up their pipelines and start at one barrier.  Each runs the live relay,
so its subscribers get every process's positions (``--no-relay``: only its own).  The
counts are printed side by side: positions/s end to end (every fix over the time from the
start to the last process's last commit), each process's rate, CPU per fix, CPU time and
the time its threads waited for a CPU (on a 2-core machine the processes and the
database server share two cores: the sum is bounded by them), the PostgreSQL server's
CPU per fix (the whole server's, read from ``/proc`` where it runs on this machine, and
its backends serving the bench) and what those backends were doing (sampled from
``pg_stat_activity``: ``CPU``, a wait event, or ``idle in tx`` — a transaction open while
its process works or waits for a CPU).  The rows stored are counted: none may be lost.

    uv run python bench/ingest.py --database-url ... --processes 1,2,3 --fixes 50
"""

from __future__ import annotations

import argparse
import gc
import multiprocessing
import os
import random
import resource
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from hub.clock import SystemClock
from hub.core import Hub
from hub.db import write_tx
from hub.fix import PositionFix
from hub.models import Position
from hub.plugins import load_plugins
from hub.positions import CursorUpdate, IngestItem
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.source import Cursor
from hub.store import Store

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
POSITION_PREFIX = '{"type":"position"'


def make_fix(device: int, n: int) -> PositionFix:
    return PositionFix(
        fix_time=EPOCH + timedelta(seconds=10 * n),
        lat=14.6 + device * 1e-4 + n * 1e-5,
        lon=-90.5 - n * 1e-5,
        altitude_m=1500.0,
        speed_kmh=float(n % 90),
        course_deg=float((n * 7) % 360),
        satellites=9,
        ignition=n % 10 != 0,
        sensors={"fuel": 0.5, "power_v": 12.6},
    )


def open_store(url: str) -> Store:
    return Store.open(url, SecretBox([SecretBox.generate_key().encode()]))


@contextmanager
def fresh_database(tmp: Path, name: str, pg_url: str | None) -> Iterator[str]:
    """The URL of a new, empty database: a SQLite file in ``tmp``, or (with ``pg_url``)
    a fresh schema of that PostgreSQL database, dropped afterwards."""
    if pg_url is None:
        yield f"sqlite:///{tmp / name}_{secrets.token_hex(4)}.db"
        return
    schema = f"bench_{name}_{secrets.token_hex(4)}"
    admin = sa.create_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in pg_url else "?"
    try:
        yield f"{pg_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def wal_size(store: Store) -> int:
    """Bytes of the SQLite database's write-ahead log (0 when there is none)."""
    if store.engine.dialect.name != "sqlite":
        return 0
    wal = Path(f"{store.engine.url.database}-wal")
    return wal.stat().st_size if wal.exists() else 0


async def run_pipeline(
    store: Store,
    devices: list[int],
    conn_id: int,
    fixes: int,
    producers: int,
    per_submit: int,
    subscribers: int,
    wal_peak: list[int],
    readers: int = 0,
    batch: int = 0,
    submits: int = 0,
    ready: Callable[[], Awaitable[None]] | None = None,
    settle: Callable[[list[int]], Awaitable[None]] | None = None,
    relay: bool = False,
) -> tuple[float, float, int, list[int]]:
    """Feed the fixes; (seconds, process CPU seconds, transactions, positions each
    subscriber received).  ``batch`` > 0: one producer submits ``batch`` fixes (of the
    next devices in turn) ``submits`` times, awaiting each, with no cursors.

    With several processes (``--processes``): ``ready`` is awaited once everything is
    set up, just before the clock starts (the processes' common start); ``settle``,
    given the subscribers' counts, is awaited once this process's fixes are committed,
    instead of a short drain; ``relay`` runs the hub's live relay, so the subscribers
    also get what the other processes commit, as in a cluster."""
    pm, infos = load_plugins(use_entry_points=False)
    hub = Hub(store, Registry.collect(pm, infos), infos, clock=SystemClock())
    received = [0] * subscribers
    lagged: list[int] = []
    groups = [devices[i::producers] for i in range(producers)]

    async def subscriber(i: int, task_status: trio.TaskStatus[None]) -> None:
        with hub.live.subscribe(None) as sub:
            task_status.started()
            try:
                while True:
                    batch = await sub.receive_batch()
                    # a frame is a JSON array of messages (the feed's default format)
                    received[i] += sum(t.count(POSITION_PREFIX) for t in batch)
            except Exception:
                lagged.append(i)

    async def producer(group: list[int]) -> None:
        # like a runner: each submit carries `per_submit` fixes of every device in the
        # group and advances those devices' cursors; it waits for the commit
        for start in range(0, fixes, per_submit):
            items = [
                IngestItem(d, conn_id, make_fix(d, n))
                for d in group
                for n in range(start, min(start + per_submit, fixes))
            ]
            last = EPOCH + timedelta(seconds=10 * (min(start + per_submit, fixes) - 1))
            cursors = [CursorUpdate(d, conn_id, Cursor(last, {"page": start})) for d in group]
            await hub.pipeline.submit(items, cursors)

    async def lone_producer() -> None:
        # like a push source: each fix (or few) submitted on its own, awaited in turn
        n = 0
        for _ in range(submits):
            items = []
            for _ in range(batch):
                d = devices[n % len(devices)]
                items.append(IngestItem(d, conn_id, make_fix(d, n // len(devices))))
                n += 1
            await hub.pipeline.submit(items)

    async def watch_wal() -> None:
        while True:
            wal_peak[0] = max(wal_peak[0], wal_size(store))
            await trio.sleep(0.05)

    stop_readers = threading.Event()

    def reader(n: int) -> None:
        # like API calls and delivery workers: short read transactions, one after another
        rng = random.Random(n)
        while not stop_readers.is_set():
            with store.engine.connect() as conn:
                conn.exec_driver_sql(reader_sql, (rng.choice(devices),)).scalar()

    if store.engine.dialect.name != "sqlite":
        reader_sql = "SELECT count(*) FROM positions WHERE device_id = %s"
    else:
        reader_sql = "SELECT count(*) FROM positions WHERE device_id = ?"
    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(readers)]
    for t in threads:
        t.start()
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        if relay:
            await nursery.start(hub.relay.run)
        if store.engine.dialect.name == "sqlite":
            nursery.start_soon(watch_wal)
            nursery.start_soon(hub.housekeeping.keep_wal)  # as the running hub does
        for i in range(subscribers):
            await nursery.start(subscriber, i)
        if ready is not None:
            await ready()
        t0, cpu0 = time.perf_counter(), time.process_time()
        async with trio.open_nursery() as prod:
            if batch:
                prod.start_soon(lone_producer)
            else:
                for g in groups:
                    prod.start_soon(producer, g)
        elapsed = time.perf_counter() - t0
        if settle is not None:
            await settle(received)
        else:
            await trio.sleep(0.2)  # let subscribers drain the last batch
        cpu = time.process_time() - cpu0  # the drain's idle wait costs next to nothing
        await hub.pipeline.close()
        nursery.cancel_scope.cancel()
    stop_readers.set()
    for t in threads:
        t.join()
    expected = batch * submits if batch else len(devices) * fixes
    assert hub.pipeline.stats.stored == expected, hub.pipeline.stats
    return elapsed, cpu, hub.pipeline.stats.transactions, received if not lagged else [-1]


def plain_insert(url: str, devices: list[int], fixes: int, chunk: int) -> float:
    """The same rows through a plain Core executemany insert, in a fresh database."""
    store = open_store(url)
    client = store.create_client("plain")
    devices = [store.create_device(client.id, name=f"d{i}").id for i in devices]
    now = datetime.now(UTC)
    rows = []
    for d in devices:
        for n in range(fixes):
            f = make_fix(d, n)
            rows.append(
                {
                    "device_id": d,
                    "connection_id": None,
                    "fix_time": f.fix_time,
                    "server_time": now,
                    "lat": f.lat,
                    "lon": f.lon,
                    "altitude_m": f.altitude_m,
                    "speed_kmh": f.speed_kmh,
                    "course_deg": f.course_deg,
                    "satellites": f.satellites,
                    "valid": f.valid,
                    "ignition": f.ignition,
                    "accuracy_m": None,
                    "sensors": f.sensors,
                    "raw": None,
                    "source_ip": None,
                    "source_port": None,
                }
            )
    table = Position.__table__  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for start in range(0, len(rows), chunk):
        with write_tx(store.engine) as conn:
            conn.execute(sa.insert(table), rows[start : start + chunk])
    elapsed = time.perf_counter() - t0
    store.close()
    return len(rows) / elapsed


def make_world(url: str, devices: int) -> tuple[Store, int, list[int]]:
    store = open_store(url)
    client = store.create_client("bench")
    conn = store.create_connection(client.id, "bench", "bench", {})
    ids = [
        store.create_device(client.id, name=f"d{i}", connection_id=conn.id, upstream_id=str(i)).id
        for i in range(devices)
    ]
    return store, conn.id, ids


def add_geofences_and_rules(store: Store, devices: list[int], geofences: int, rules: int) -> None:
    """Circles, squares and corridors over the area the devices drive through, and one
    rule per device (cycling through the rule types), as a client with many would."""
    from hub.models import Role

    rng = random.Random(7)
    client_id = store.get_device(devices[0]).client_id
    items = []
    for n in range(geofences):
        lat, lon = 14.59 + rng.random() * 0.12, -90.52 + rng.random() * 0.04
        size = 0.0005 + rng.random() * 0.002
        if n % 3 == 0:
            geometry, props = (
                {"type": "Point", "coordinates": [lon, lat]},
                {"radius_m": 50 + rng.random() * 250},
            )
        elif n % 3 == 1:
            ring = [
                [lon, lat],
                [lon + size, lat],
                [lon + size, lat + size],
                [lon, lat + size],
                [lon, lat],
            ]
            geometry, props = {"type": "Polygon", "coordinates": [ring]}, {}
        else:
            geometry = {"type": "LineString", "coordinates": [[lon, lat], [lon + size, lat + size]]}
            props = {"width_m": 30.0}
        items.append({"name": f"poi {n}", "geometry": geometry, "properties": props})
    store.geofences.create_many(client_id, items)
    owner = store.create_user("bench owner", Role.MANAGER, client_id)
    kinds = [
        ("enteredPoi", {}),
        ("exitedPoi", {"confirm_fixes": 2}),
        ("overspeed", {"limit_kmh": 80, "min_duration_s": 20}),
        ("sensor", {"sensor": "fuel", "op": "<", "value": 0.2}),
        ("ignitionOn", {}),
        ("stopped", {}),
    ]
    for n in range(rules):
        kind, params = kinds[n % len(kinds)]
        store.rules.create(
            client_id, owner, f"rule {n}", kind, params, device_ids=[devices[n % len(devices)]]
        )


@dataclass
class Figures:
    """One backend's figures."""

    rate: float = 0.0  # positions/s end to end
    cpu_per_fix_ms: float = 0.0
    transactions: int = 0
    received: int = 0  # positions each subscriber received (-1: one lagged)
    plain: float = 0.0  # plain Core insert, positions/s
    rss_before: int = 0
    rss_peak: int = 0
    wal: tuple[int, int] = (0, 0)
    rules_rate: float = 0.0
    rules_cpu_per_fix_ms: float = 0.0


def measure(
    url: str, args: argparse.Namespace, with_rules: bool, figures: Figures
) -> tuple[float, float]:
    """Run the pipeline on a fresh database at ``url``: (positions/s, CPU ms per fix)."""
    store, conn_id, devices = make_world(url, args.devices)
    if with_rules:
        add_geofences_and_rules(store, devices, args.geofences, args.rules)
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wal_peak = [0]
    elapsed, cpu, txs, received = trio.run(
        run_pipeline, store, devices, conn_id, args.fixes, args.producers, args.per_submit,
        args.subscribers, wal_peak, args.readers, args.batch, args.submits,
    )  # fmt: skip
    if not with_rules:
        figures.rss_before = rss_before
        figures.rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        figures.wal = (wal_size(store), max(wal_peak[0], wal_size(store)))  # before closing
        figures.transactions, figures.received = txs, (received or [0])[0]
    store.close()
    total = args.batch * args.submits if args.batch else args.devices * args.fixes
    return total / elapsed, cpu / total * 1000


def run_backend(tmp: Path, pg_url: str | None, args: argparse.Namespace) -> Figures:
    """Every figure on SQLite (``pg_url`` None) or on that PostgreSQL database."""
    f = Figures()
    with fresh_database(tmp, "pipeline", pg_url) as url:
        f.rate, f.cpu_per_fix_ms = measure(url, args, False, f)
    if args.batch:
        return f
    with fresh_database(tmp, "plain", pg_url) as url:
        f.plain = plain_insert(url, list(range(args.devices)), args.fixes, 2000)
    with fresh_database(tmp, "rules", pg_url) as url:
        f.rules_rate, f.rules_cpu_per_fix_ms = measure(url, args, True, f)
    return f


# -- several processes on one PostgreSQL (``--processes``) ------------------------------
BARRIER_TIMEOUT_S = 300.0  # a bound against hangs (set-up, or a worker that died)
QUIET_S = 10.0  # subscribers short of their count after this long without news: lagged


def split(items: list[int], n: int) -> list[list[int]]:
    """``items`` in ``n`` consecutive parts whose sizes differ by one at most."""
    q, r = divmod(len(items), n)
    parts, start = [], 0
    for i in range(n):
        end = start + q + (i < r)
        parts.append(items[start:end])
        start = end
    return parts


def shares(total: int, n: int) -> list[int]:
    """``total`` shared out among ``n``, as evenly as can be."""
    return [len(part) for part in split(list(range(total)), n)]


@dataclass
class WorkerJob:
    """What one process ingests: its own connection and devices."""

    url: str
    key: str
    conn_id: int
    devices: list[int]
    fixes: int
    producers: int
    per_submit: int
    subscribers: int
    readers: int
    relay: bool
    total: int  # fixes of all the processes together


@dataclass
class WorkerResult:
    """One process's figures; times are ``time.monotonic()``, one clock for every
    process of a Linux machine."""

    fixes: int
    start: float  # the common start (the barrier)
    end: float  # its last fix committed
    settled: float  # its subscribers had every position (or lagged)
    cpu: float  # its own CPU seconds (every thread), from the start until settled
    queued: float  # seconds its threads were ready to run but waited for a CPU, as long
    transactions: int
    received: int  # positions the subscriber that got fewest received (-1: one lagged)


def run_queue_waits() -> dict[str, float]:
    """Seconds each thread of this process has waited for a CPU while ready to run
    (Linux's schedstat; empty where it is not available)."""
    waits = {}
    for task in Path("/proc/self/task").glob("*"):
        with suppress(OSError, IndexError, ValueError):  # a thread gone meanwhile
            waits[task.name] = int((task / "schedstat").read_text().split()[1]) / 1e9
    return waits


def worker(job: WorkerJob, barriers: list[Any], results: Any) -> None:
    """One hub process (a spawned child): its pipeline on the shared schema, started at
    the first barrier; waits at the second for every process to have committed all,
    and at the third for the parent to have read the database server's figures."""
    start, produced, done = barriers
    times: dict[str, float] = {}
    waits: list[dict[str, float]] = []
    mine = len(job.devices) * job.fixes
    want = job.total if job.relay else mine

    async def ready() -> None:
        await trio.to_thread.run_sync(start.wait, BARRIER_TIMEOUT_S)
        times["start"] = time.monotonic()
        waits.append(run_queue_waits())

    async def settle(received: list[int]) -> None:
        times["end"] = time.monotonic()
        await trio.to_thread.run_sync(produced.wait, BARRIER_TIMEOUT_S)
        # the live relay brings the other processes' positions a little later
        seen, quiet_since = -1, time.monotonic()
        while received and min(received) < want:
            if sum(received) != seen:
                seen, quiet_since = sum(received), time.monotonic()
            elif time.monotonic() - quiet_since > QUIET_S:
                break
            await trio.sleep(0.05)
        await trio.sleep(0.2)  # as the one-process run drains
        times["settled"] = time.monotonic()
        waits.append(run_queue_waits())

    store = None
    try:
        store = Store.open(job.url, SecretBox([job.key.encode()]), migrate=False)
        _, cpu, txs, received = trio.run(
            run_pipeline, store, job.devices, job.conn_id, job.fixes, job.producers,
            job.per_submit, job.subscribers, [0], job.readers, 0, 0, ready, settle, job.relay,
        )  # fmt: skip
        got = min(received) if received else want
        before, after = waits
        queued = sum(w - before.get(tid, 0.0) for tid, w in after.items())
        results.put(
            WorkerResult(
                mine, times["start"], times["end"], times["settled"], cpu, queued, txs, got
            )
        )
        done.wait(BARRIER_TIMEOUT_S)
    except BaseException:
        for b in barriers:  # the others stop at once instead of waiting for the bound
            b.abort()
        raise
    finally:
        if store is not None:
            store.close()


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command's name (state first)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _postmaster(engine: sa.Engine) -> int | None:
    """The PostgreSQL server's main process, if it runs on this machine and is visible."""
    with engine.connect() as conn:
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    stat = _proc_stat(backend)
    parent = int(stat[1]) if stat else None
    return parent if parent and _proc_stat(parent) else None


def server_cpu(postmaster: int) -> float:
    """CPU seconds the PostgreSQL server has used: its main process, its ended children
    (which it reaped) and its running ones; every client's, not just the bench's."""
    tick = os.sysconf("SC_CLK_TCK")
    stat = _proc_stat(postmaster) or []
    ticks = sum(int(v) for v in stat[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        child = _proc_stat(int(entry.name)) if entry.name.isdigit() else None
        if child and int(child[1]) == postmaster:
            ticks += int(child[11]) + int(child[12])
    return ticks / tick


def backends_cpu(engine: sa.Engine, application: str) -> dict[int, float]:
    """CPU seconds of each server process serving a connection named ``application``."""
    tick = os.sysconf("SC_CLK_TCK")
    with engine.connect() as conn:
        pids = conn.exec_driver_sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).scalars()
        cpu = {}
        for pid in pids:
            if stat := _proc_stat(pid):
                cpu[pid] = (int(stat[11]) + int(stat[12])) / tick
    return cpu


class WaitSampler:
    """What the bench's server processes are doing, sampled every ``every_s`` from
    ``pg_stat_activity`` on a thread: per sample, each backend running a statement counts
    under its wait event (``CPU`` when it waits for none); ``idle in transaction`` too."""

    def __init__(self, engine: sa.Engine, application: str, every_s: float = 0.1) -> None:
        self.engine, self.application, self.every_s = engine, application, every_s
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(BARRIER_TIMEOUT_S)

    def _run(self) -> None:
        sql = (
            "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()"
        )
        with self.engine.connect() as conn:
            while not self._stop.wait(self.every_s):
                self.samples += 1
                for state, kind, event in conn.exec_driver_sql(sql, (self.application,)):
                    if state == "active":
                        what = f"{kind}:{event}" if kind else "CPU"
                    elif state == "idle in transaction":
                        what = "idle in tx"
                    else:
                        continue
                    self.counts[what] = self.counts.get(what, 0) + 1
                conn.rollback()

    def busiest(self, n: int = 3) -> list[tuple[str, float]]:
        """The ``n`` commonest states, each with the backends in it on average."""
        top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:n]
        return [(what, count / max(1, self.samples)) for what, count in top]


@dataclass
class ProcessRun:
    """The figures of ``processes`` processes ingesting together."""

    processes: int
    wall: float  # from the common start until the last process's last commit
    workers: list[WorkerResult]
    stored: int  # rows in the positions table afterwards
    server_cpu: float | None  # the whole PostgreSQL server's CPU seconds, start to settled
    backends_cpu: float | None  # of which the bench's connections' (those still open)
    load: float  # load average over a minute, at the end
    waits: list[tuple[str, float]]  # the bench's backends: commonest states, how many in each

    @property
    def fixes(self) -> int:
        return sum(w.fixes for w in self.workers)

    @property
    def rate(self) -> float:
        return self.fixes / self.wall

    @property
    def hub_cpu(self) -> float:
        return sum(w.cpu for w in self.workers)

    @property
    def span(self) -> float:
        """From the start until the last process settled: what the CPU times cover."""
        return max(w.settled for w in self.workers) - min(w.start for w in self.workers)


def run_processes(pg_url: str, n: int, args: argparse.Namespace) -> ProcessRun:
    """``n`` processes, each with its share of the devices (on a connection of its own),
    producers and subscribers, ingesting together into one fresh schema."""
    key = SecretBox.generate_key()
    application = f"gpshub_bench_{secrets.token_hex(4)}"
    total = args.devices * args.fixes
    monitor = sa.create_engine(pg_url)
    with fresh_database(Path(tempfile.gettempdir()), "processes", pg_url) as url:
        url = f"{url}&application_name={application}"
        store = Store.open(url, SecretBox([key.encode()]))  # migrated here, once
        client = store.create_client("bench")
        jobs = []
        parts = split(list(range(args.devices)), n)
        producers, subscribers = shares(args.producers, n), shares(args.subscribers, n)
        for i, part in enumerate(parts):
            conn = store.create_connection(client.id, "bench", f"bench {i}", {})
            ids = [
                store.create_device(
                    client.id, name=f"d{d}", connection_id=conn.id, upstream_id=str(d)
                ).id
                for d in part
            ]
            jobs.append(
                WorkerJob(
                    url,
                    key,
                    conn.id,
                    ids,
                    args.fixes,
                    max(1, producers[i]),
                    args.per_submit,
                    subscribers[i],
                    args.readers,
                    args.relay,
                    total,
                )
            )
        store.close()
        ctx = multiprocessing.get_context("spawn")
        barriers = [ctx.Barrier(n + 1) for _ in range(3)]
        results = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(job, barriers, results)) for job in jobs]
        for p in procs:
            p.start()
        try:
            postmaster = _postmaster(monitor)
            sampler = WaitSampler(monitor, application)
            barriers[0].wait(BARRIER_TIMEOUT_S)
            sampler.start()
            server0 = server_cpu(postmaster) if postmaster else 0.0
            backends0 = backends_cpu(monitor, application) if postmaster else {}
            barriers[1].wait(BARRIER_TIMEOUT_S)
            sampler.stop()
            done = [results.get(timeout=BARRIER_TIMEOUT_S) for _ in procs]
            server1 = server_cpu(postmaster) if postmaster else 0.0
            backends1 = backends_cpu(monitor, application) if postmaster else {}
            barriers[2].wait(BARRIER_TIMEOUT_S)
            for p in procs:
                p.join(BARRIER_TIMEOUT_S)
        except threading.BrokenBarrierError:
            raise SystemExit("a bench process failed (its traceback is above)") from None
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
                    p.join(10)
        counter = sa.create_engine(url)
        with counter.connect() as conn:
            stored = conn.exec_driver_sql("SELECT count(*) FROM positions").scalar_one()
        counter.dispose()
    monitor.dispose()
    wall = max(w.end for w in done) - min(w.start for w in done)
    ours = sum(cpu - backends0.get(pid, 0.0) for pid, cpu in backends1.items())
    return ProcessRun(
        n, wall, done, stored,
        server1 - server0 if postmaster else None, ours if postmaster else None,
        os.getloadavg()[0], sampler.busiest(),
    )  # fmt: skip


def print_processes(args: argparse.Namespace, runs: list[ProcessRun]) -> None:
    total = args.devices * args.fixes

    def row(label: str, cells: list[str]) -> None:
        print(f"{label:<26}" + "".join(f"  {c:>26}" for c in cells))

    def each(values: list[str], unit: str) -> str:
        return " / ".join(values) + unit

    relay = "with the live relay" if args.relay else "without the live relay"
    print(
        f"PostgreSQL, several processes: {total:,} positions in all ({args.devices:,} devices "
        f"x {args.fixes} fixes), the devices, {args.producers} producers and "
        f"{args.subscribers} live subscribers shared out among the processes, each process "
        f"on a connection of its own, {relay}"
    )
    row("processes", [str(r.processes) for r in runs])
    row("end to end, all", [f"{r.rate:,.0f} pos/s" for r in runs])
    row("  of one process's", [f"{r.rate / runs[0].rate:.2f}" for r in runs])
    row("wall time", [f"{r.wall:.1f} s" for r in runs])
    row(
        "each process",
        [each([f"{w.fixes / (w.end - w.start):,.0f}" for w in r.workers], " pos/s") for r in runs],
    )
    row(
        "  CPU per fix",
        [each([f"{w.cpu / w.fixes * 1000:.3f}" for w in r.workers], " ms") for r in runs],
    )
    row("  CPU time", [each([f"{w.cpu:.1f}" for w in r.workers], " s") for r in runs])
    row(
        "  threads awaiting a CPU",
        [each([f"{w.queued:.1f}" for w in r.workers], " s") for r in runs],
    )
    row("hub CPU per fix, all", [f"{r.hub_cpu / r.fixes * 1000:.3f} ms" for r in runs])
    row("  cores busy", [f"{r.hub_cpu / r.span:.2f} of {os.cpu_count()}" for r in runs])
    if all(r.server_cpu is not None for r in runs):
        server = [(r.server_cpu or 0.0, r.backends_cpu or 0.0, r) for r in runs]
        row("PostgreSQL CPU per fix", [f"{c / r.fixes * 1000:.3f} ms" for c, _, r in server])
        row("  cores busy", [f"{c / r.span:.2f}" for c, _, r in server])
        row("  the bench's backends", [f"{b / r.fixes * 1000:.3f} ms" for _, b, r in server])
    waits = [r.waits + [("", 0.0)] * (3 - len(r.waits)) for r in runs]
    for k in range(3):
        label = "backends at work in" if k == 0 else ""
        row(label, [f"{w[k][0][:18]} {w[k][1]:.2f}" if w[k][0] else "" for w in waits])
    row("transactions", [f"{sum(w.transactions for w in r.workers):,}" for r in runs])
    row("stored rows", [f"{r.stored:,}" + ("" if r.stored == total else " LOST!") for r in runs])

    def received(r: ProcessRun) -> str:
        if any(w.received < 0 for w in r.workers):
            return "LAGGED, dropped!"
        short = [w.received for w in r.workers if w.received < (total if args.relay else w.fixes)]
        if short:
            return f"short: {min(short):,}"
        return f"{total:,}" if args.relay else "its process's, all"

    row("positions each sub", [received(r) for r in runs])
    row("load average (1 min)", [f"{r.load:.2f}" for r in runs])
    if any(r.stored != total for r in runs):
        raise SystemExit("positions were lost")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--fixes", type=int, default=100, help="fixes per device")
    ap.add_argument("--producers", type=int, default=10, help="concurrent producers (runners)")
    ap.add_argument("--per-submit", type=int, default=2, help="fixes per device in each submit")
    ap.add_argument("--subscribers", type=int, default=10)
    ap.add_argument("--readers", type=int, default=0, help="threads reading the database meanwhile")
    ap.add_argument("--geofences", type=int, default=1000, help="for the run with rules")
    ap.add_argument("--rules", type=int, default=1000, help="for the run with rules")
    ap.add_argument(
        "--database-url",
        default=os.environ.get("GPSHUB_DATABASE_URL"),
        help="a PostgreSQL database to measure beside SQLite (default: $GPSHUB_DATABASE_URL)",
    )
    ap.add_argument(
        "--batch",
        type=int,
        default=0,
        help="instead: one producer submits this many fixes at a time, awaiting each",
    )
    ap.add_argument("--submits", type=int, default=3000, help="with --batch: how many submits")
    ap.add_argument(
        "--repeat", type=int, default=1, help="run each backend this many times; show the best"
    )
    ap.add_argument(
        "--processes",
        help="instead: this many processes ingesting into one PostgreSQL schema together "
        "(e.g. 1,2,3: each count in turn, side by side)",
    )
    ap.add_argument(
        "--no-relay",
        dest="relay",
        action="store_false",
        help="with --processes: no live relay (subscribers get their own process's positions)",
    )
    args = ap.parse_args()
    pg_url = args.database_url
    if pg_url and not pg_url.startswith("postgresql"):
        ap.error(f"--database-url: not a PostgreSQL URL: {pg_url.split(':')[0]}:…")
    if args.processes:
        try:
            counts = [int(n) for n in args.processes.split(",")]
        except ValueError:
            ap.error(f"--processes: not a list of counts: {args.processes}")
        if not pg_url or args.batch or min(counts) < 1:
            ap.error("--processes: needs --database-url, counts of 1 or more, and no --batch")
        best: dict[int, ProcessRun] = {}
        for _ in range(args.repeat):  # in turn, so each count sees the same load
            for n in counts:
                run = run_processes(pg_url, n, args)
                if n not in best or run.rate > best[n].rate:
                    best[n] = run
        if args.repeat > 1:
            print(f"best of {args.repeat} runs of each, in turn")
        print_processes(args, [best[n] for n in counts])
        return

    backends: dict[str, str | None] = {"SQLite": None}
    if pg_url:
        backends["PostgreSQL"] = pg_url
    runs: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeat):  # in turn, so both see the same load on the machine
            for name, url in backends.items():
                f = run_backend(Path(tmp), url, args)
                if name not in runs or f.rate > runs[name].rate:
                    runs[name] = f
    if args.repeat > 1:
        print(f"best of {args.repeat} runs of each, in turn")
    print_figures(args, runs)


def print_figures(args: argparse.Namespace, runs: dict[str, Figures]) -> None:
    names = list(runs)
    figs = list(runs.values())

    def row(label: str, cells: list[str]) -> None:
        print(f"{label:<22}" + "".join(f"{c:>22}" for c in cells))

    row("", names)
    if args.batch:
        total = args.batch * args.submits
        print(
            f"fixes:                {total:,}, {args.batch} per submit, one producer awaiting "
            f"each submit, {args.subscribers} live subscribers"
        )
        row("end to end", [f"{f.rate:,.0f} pos/s" for f in figs])
        row("CPU per fix", [f"{f.cpu_per_fix_ms:.3f} ms" for f in figs])
        row("transactions", [f"{f.transactions:,}" for f in figs])
        if len(figs) == 2:
            print(f"PostgreSQL / SQLite:  {figs[1].rate / figs[0].rate:.2f} of the rate")
        return
    total = args.devices * args.fixes
    print(
        f"positions:            {total:,} ({args.devices:,} devices x {args.fixes} fixes, "
        f"{args.producers} producers, {args.subscribers} live subscribers)"
    )
    row("end to end", [f"{f.rate:,.0f} pos/s" for f in figs])
    row("CPU per fix", [f"{f.cpu_per_fix_ms:.3f} ms" for f in figs])
    row("transactions", [f"{f.transactions:,}" for f in figs])
    row(
        "positions each sub",
        [f"{f.received:,}" if f.received == total else "LAGGED, dropped!" for f in figs],
    )
    row("plain Core insert", [f"{f.plain:,.0f} pos/s" for f in figs])
    row("pipeline / plain", [f"{f.rate / f.plain:.2f}" for f in figs])
    row("peak memory", [f"{f.rss_peak / 1024:,.0f} MiB RSS" for f in figs])
    row("  before ingest", [f"{f.rss_before / 1024:,.0f} MiB RSS" for f in figs])
    sq = runs["SQLite"]
    print(f"SQLite WAL file:      {sq.wal[0] / 2**20:,.1f} MiB after ingest "
          f"(largest seen during ingest: {sq.wal[1] / 2**20:,.1f} MiB)")  # fmt: skip
    print(f"with {args.geofences:,} geofences and {args.rules:,} rules:")
    row("  end to end", [f"{f.rules_rate:,.0f} pos/s" for f in figs])
    row("  CPU per fix", [f"{f.rules_cpu_per_fix_ms:.3f} ms" for f in figs])
    row("  of the rate without", [f"{f.rules_rate / f.rate:.2f}" for f in figs])
    if len(figs) == 2:
        print(
            f"PostgreSQL / SQLite:  {figs[1].rate / figs[0].rate:.2f} of the end-to-end rate, "
            f"{figs[1].rules_rate / figs[0].rules_rate:.2f} with rules"
        )


if __name__ == "__main__":
    main()
