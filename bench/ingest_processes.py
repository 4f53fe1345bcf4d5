"""Ingest benchmark, several processes: bench/ingest.py ``--processes 1,2,3``.

With a PostgreSQL ``--database-url``, several hub processes are measured ingesting into
one database together, as a cluster does: for each count in turn, a fresh schema is
migrated once, then that many processes (spawned) share out the
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

Each process runs ``ingest.run_pipeline``, as the one-process bench does; they are spawned
(``multiprocessing``), so this module and ``ingest`` are imported anew in each.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import tempfile
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio
from ingest import fresh_database, run_pipeline

from hub.secrets import SecretBox
from hub.store import Store

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


def measure_processes(pg_url: str, counts: list[int], args: argparse.Namespace) -> None:
    """Each count of processes in turn (``args.repeat`` times: the best run of each),
    then their figures side by side."""
    best: dict[int, ProcessRun] = {}
    for _ in range(args.repeat):  # in turn, so each count sees the same load
        for n in counts:
            run = run_processes(pg_url, n, args)
            if n not in best or run.rate > best[n].rate:
                best[n] = run
    if args.repeat > 1:
        print(f"best of {args.repeat} runs of each, in turn")
    print_processes(args, [best[n] for n in counts])
