"""Delivery benchmark: locations per second from the outbox to a local HTTP receiver.

A minimal keep-alive HTTP/1.1 receiver runs in its own process (on the second core when
there are two; the hub process is pinned to the first).  In the same run, to the same
receiver, the script measures:

* a plain sequential ``httpx.AsyncClient`` POST loop of real ``startrack-json1`` bodies
  (one location per request) and one of real ``startrack-json2`` bodies (1,000 each);
* gpshub delivering a full outbox (positions written with ``write_batch`` before the hub
  starts, 1,000 devices) through a ``startrack-relay`` sink in JSON 1 and in JSON 2,
  timed from ``hub.run()`` until the sink's ``delivered`` count reaches the total.

It prints locations/s, the ratio of each hub figure to its plain loop, the hub process's
CPU time per 1,000 locations and its peak RSS, then a table with the issue's targets
(JSON 1 at least 70 % of the plain loop; JSON 2 at least 20,000 locations/s).  The
targets are informational: the script exits 0 either way.

    make bench                    # ingest, then this
    uv run python bench/deliver.py --json1 20000 --json2 200000 --runs 2
    uv run python bench/deliver.py --phases      # where a round's time goes (adds overhead)
    uv run python bench/deliver.py --profile /tmp/deliver   # cProfile of the trio thread
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import json
import math
import multiprocessing
import os
import pstats
import resource
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import trio
from ingest import make_fix as ingest_fix  # bench/ is on the path of its scripts

import hub.delivery as delivery
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.testing import make_hub

LOOPBACK = ("127.0.0.0/8",)
JSON1, JSON2 = "startrack-json1", "startrack-json2"
TARGET_JSON1_RATIO = 0.70
TARGET_JSON2_RATE = 20_000.0
HEADERS = {"content-type": "application/json"}

# ---------------------------------------------------------------------------------------
# The receiver (its own process): asyncio, a raw Protocol, Content-Length framing only.
# ---------------------------------------------------------------------------------------
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


REQUESTS, LOCATIONS, BYTES = 0, 1, 2  # the receiver's counters, in shared memory


class _ReceiverProtocol(asyncio.Protocol):
    """Answers every POST with ``200 ok`` and counts it: one location, or for a JSON 2
    body (``[n, [...]]``) ``n``.  The counters live in memory shared with the bench
    (reading them costs the hub nothing); any GET (``/count``) also answers them as JSON."""

    def __init__(self, counts: Any) -> None:
        self.counts = counts
        self.buf = bytearray()
        self.need = 0  # bytes the request being received takes, once its head is read
        self.length = 0
        self.head_end = 0
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out: list[bytes] = []
        counts = self.counts
        while True:
            if not self.need:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = bytes(buf[:end]).lower()
                at = head.find(b"\r\ncontent-length:")
                length = 0
                if at >= 0:
                    stop = head.find(b"\r\n", at + 2)
                    length = int(head[at + 17 : stop if stop >= 0 else len(head)])
                if head.startswith(b"get "):  # any GET: the counters
                    body = json.dumps(
                        {
                            "requests": counts[REQUESTS],
                            "locations": counts[LOCATIONS],
                            "bytes": counts[BYTES],
                        }
                    ).encode()
                    out.append(
                        b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    del buf[: end + 4 + length]
                    continue
                self.head_end, self.length, self.need = end + 4, length, end + 4 + length
            if len(buf) < self.need:
                break  # the rest of the body is on its way
            start, length = self.head_end, self.length
            n = 1
            if length and buf[start] == 0x5B:  # "[": JSON 2, its count comes first
                comma = buf.find(b",", start, start + 24)
                if comma > 0:
                    n = int(buf[start + 1 : comma])
            counts[REQUESTS] += 1
            counts[LOCATIONS] += n
            counts[BYTES] += length
            out.append(OK)
            del buf[: self.need]
            self.need = 0
        if out:
            self.transport.write(b"".join(out) if len(out) > 1 else out[0])


def receiver_main(conn: Connection, counts: Any, lifetime_s: float, cpu: int | None) -> None:
    """The receiver process: report the port through ``conn``, serve ``lifetime_s``."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _ReceiverProtocol(counts), "127.0.0.1", 0, backlog=128
        )
        conn.send(server.sockets[0].getsockname()[1])
        conn.close()
        async with server:
            await asyncio.sleep(lifetime_s)  # stops by itself if the bench never ends it

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


@dataclass
class Receiver:
    process: Any
    port: int
    counts: Any  # shared: requests, locations, bytes

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def locations(self) -> int:
        return int(self.counts[LOCATIONS])

    def snapshot(self) -> tuple[int, int, float]:
        """Requests and locations received so far, and the receiver's CPU seconds."""
        return int(self.counts[REQUESTS]), int(self.counts[LOCATIONS]), self.cpu()

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


def start_receiver(lifetime_s: float, cpu: int | None) -> Receiver:
    # fork before the hub starts any thread: the child is a plain asyncio process
    ctx = multiprocessing.get_context("fork")
    counts = ctx.RawArray("q", 3)
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=receiver_main,
        args=(child, counts, lifetime_s, cpu),
        name="bench-receiver",
        daemon=True,
    )
    process.start()
    child.close()
    if not parent.poll(10):
        process.kill()
        raise RuntimeError("the receiver did not start")
    return Receiver(process, int(parent.recv()), counts)


def _raw_request(path: str, body: bytes) -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(body), body)
    )


def raw_ceiling(receiver: Receiver, body: bytes, count: int, pipeline: int) -> float:
    """Requests/s the receiver answers to a raw-socket client that keeps ``pipeline``
    requests in flight on one connection (1: one at a time, like a sequential loop)."""
    request = _raw_request("/c", body)
    answer = len(OK)
    with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chunk = request * pipeline
        t0 = time.perf_counter()
        sent = 0
        while sent < count:
            sock.sendall(chunk)
            want, got = answer * pipeline, 0
            while got < want:
                data = sock.recv(1 << 20)
                if not data:
                    raise RuntimeError("the receiver closed the connection")
                got += len(data)
            sent += pipeline
        return sent / (time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------
# The hub side
# ---------------------------------------------------------------------------------------
def make_fix(device: int, n: int) -> PositionFix:
    """The ingest benchmark's fix, with the source address the relays carry."""
    return replace(ingest_fix(device, n), source_ip="198.51.100.7", source_port=5027)


@dataclass
class World:
    hub: Any
    client: int
    sink: int
    total: int
    prepare_s: float


def build_world(tmp: Path, fmt: str, total: int, devices: int, url: str) -> World:
    """A hub on SQLite with one client, ``devices`` devices, a relay sink in ``fmt`` and
    ``total`` positions written (so the outbox holds ``total`` location messages)."""
    t0 = time.perf_counter()
    tmp.mkdir(parents=True, exist_ok=True)
    hub = make_hub(
        tmp, use_entry_points=True, outbound_allow_networks=LOOPBACK, status_check_s=3600.0
    )
    store = hub.store
    client = store.create_client("bench").id
    store.update_client(client, timezone="America/Guatemala")
    ids = [
        store.create_device(
            client,
            name=f"truck {i}",
            license_plate=f"P-{i:03d}ABC",
            imei=str(358741050300000 + i),
            remote_id=f"unit-{i}",
        ).id
        for i in range(devices)
    ]
    sink = store.sinks.create(
        client,
        name=f"bench {fmt}",
        kind="startrack-relay",
        format=fmt,
        purpose="locations",
        settings={"url": url + ("/json1" if fmt == JSON1 else "/json2")},
        secrets={"headers": {}},
    )
    written, batch = 0, []
    for n in range(math.ceil(total / devices)):  # fix times in order, device after device
        for d in ids:
            if written + len(batch) >= total:
                break
            batch.append(IngestItem(d, None, make_fix(d, n)))
        if len(batch) >= 5000 or written + len(batch) >= total:
            written += len(store.positions.write_batch(batch).inserted)
            batch = []
    if written != total:
        raise RuntimeError(f"wrote {written} positions, not {total}")
    return World(hub, client, int(sink.id), total, time.perf_counter() - t0)


def sample_bodies(world: World, fmt: str, count: int) -> list[bytes]:
    """Real request bodies of ``fmt`` for the world's first outbox messages, as the hub
    would encode them: ``count`` single objects (JSON 1) or up to ``count`` batches of
    1,000 (JSON 2)."""
    sinks = world.hub.store.sinks
    row = sinks.get(world.sink)
    cls = world.hub.registry.formats[fmt]
    encoder = cls(cls.parse_options({}))
    size = cls.max_batch
    rows = sinks.fetch(row, row.cursor, min(count * size, world.total))
    items = sinks.location_items(rows, sinks.client_info(world.client))
    ordered = [items[r.id] for r in rows if r.id in items]
    return [encoder.encode(ordered[i : i + size]) for i in range(0, len(ordered), size)]


@dataclass
class Result:
    name: str
    target: int  # locations asked for
    done: int = 0  # locations delivered (the sink's count, or the loop's)
    received: int = 0  # locations the receiver counted
    requests: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0  # hub process CPU seconds (all threads)
    receiver_cpu: float = 0.0
    timed_out: bool = False
    rss_kib: int = 0
    note: str = ""

    def merge(self, other: Result) -> Result:
        """Two parts of one measurement as one."""
        return Result(
            self.name,
            self.target + other.target,
            self.done + other.done,
            self.received + other.received,
            self.requests + other.requests,
            self.elapsed + other.elapsed,
            self.cpu + other.cpu,
            self.receiver_cpu + other.receiver_cpu,
            self.timed_out or other.timed_out,
            max(self.rss_kib, other.rss_kib),
            self.note or other.note,
        )

    @property
    def rate(self) -> float:
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def cpu_per_1k_ms(self) -> float:
        return 1000.0 * self.cpu / self.done * 1000 if self.done else float("nan")

    @property
    def receiver_busy(self) -> float:
        return self.receiver_cpu / self.elapsed if self.elapsed > 0 else 0.0


async def plain_loop(
    name: str,
    receiver: Receiver,
    path: str,
    bodies: list[bytes],
    per_body: int,
    requests: int,
    timeout: float,
) -> Result:
    """A sequential keep-alive ``httpx.AsyncClient`` POST loop of pre-encoded bodies."""
    result = Result(name, requests * per_body)
    url = receiver.url + path
    async with httpx.AsyncClient(timeout=15.0) as http:
        await http.post(url, content=bodies[0], headers=HEADERS)  # connect first
        _, n0, rcpu0 = receiver.snapshot()
        cpu0, t0 = time.process_time(), time.perf_counter()
        with trio.move_on_after(timeout) as scope:
            for i in range(requests):
                response = await http.post(url, content=bodies[i % len(bodies)], headers=HEADERS)
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code}")
                result.requests += 1
        result.elapsed = time.perf_counter() - t0
        result.cpu = time.process_time() - cpu0
        result.timed_out = scope.cancelled_caught
    _, n1, rcpu1 = receiver.snapshot()
    result.received, result.receiver_cpu = n1 - n0, rcpu1 - rcpu0
    result.done = result.requests * per_body
    result.rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return result


async def hub_delivery(name: str, world: World, receiver: Receiver, timeout: float) -> Result:
    """Run the hub until its sink has delivered the whole outbox (or ``timeout``)."""
    hub, sinks = world.hub, world.hub.store.sinks
    result = Result(name, world.total)

    def delivered() -> int:
        return int(sinks.get(world.sink).delivered)

    async with trio.open_nursery() as nursery:
        r0, n0, rcpu0 = receiver.snapshot()
        gc.collect()
        cpu0, t0 = time.process_time(), time.perf_counter()
        await nursery.start(hub.run)
        with trio.move_on_after(timeout) as scope:
            # polling: the receiver's counter (shared memory) costs nothing to read and
            # cannot wake us; then the stored count, read a few times, is the end
            while receiver.locations - n0 < world.total:  # noqa: ASYNC110
                await trio.sleep(0.005)
            while await trio.to_thread.run_sync(delivered) < world.total:  # noqa: ASYNC110
                await trio.sleep(0.002)
        result.elapsed = time.perf_counter() - t0
        result.cpu = time.process_time() - cpu0
        result.timed_out = scope.cancelled_caught
        hub.shutdown()
    r1, n1, rcpu1 = receiver.snapshot()
    result.done = await trio.to_thread.run_sync(delivered)
    result.received, result.requests, result.receiver_cpu = n1 - n0, r1 - r0, rcpu1 - rcpu0
    result.rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = sinks.get(world.sink)
    if row.last_error:
        result.note = f"last error: {row.last_error}"
    return result


# ---------------------------------------------------------------------------------------
# Where the time goes (--phases): wrappers around the worker's steps, in this process only
# ---------------------------------------------------------------------------------------
@dataclass
class Phase:
    calls: int = 0
    wall: float = 0.0
    thread_cpu: float = 0.0


@dataclass
class Phases:
    table: dict[str, Phase] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, key: str, wall: float, cpu: float) -> None:
        with self.lock:
            p = self.table.setdefault(key, Phase())
            p.calls += 1
            p.wall += wall
            p.thread_cpu += cpu

    def sync(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kw: Any) -> Any:
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kw)
            finally:
                self.add(key, time.perf_counter() - t0, time.thread_time() - c0)

        return timed

    def coro(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        async def timed(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kw)
            finally:
                self.add(key, time.perf_counter() - t0, 0.0)

        return timed


@contextlib.contextmanager
def instrumented(world: World, fmt: str) -> Iterator[Phases]:
    """Time the worker's steps: each blocking store call in its thread (``db:``), the
    same call as the trio side awaits it (``await:``, thread hop included), the
    format's ``encode``, the sink's ``deliver`` (HTTP) and the worker's own steps."""
    phases = Phases()
    sinks = world.hub.store.sinks
    fmt_cls = world.hub.registry.formats[fmt]
    sink_cls = world.hub.registry.sinks["startrack-relay"]
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: str, wrap: Callable[[str, Any], Any], key: str) -> None:
        current = getattr(owner, attr, None)
        if current is None:  # renamed since this was written: not timed
            return
        saved.append((owner, attr, vars(owner).get(attr, _MISSING)))
        setattr(owner, attr, wrap(key, current))

    worker = delivery.SinkWorker
    for attr in ("fetch", "rows", "location_items", "save_progress", "mark_inflight",
                 "client_info"):  # fmt: skip
        patch(sinks, attr, phases.sync, f"db: {attr}")
    patch(fmt_cls, "encode", phases.sync, "encode")
    patch(sink_cls, "deliver", phases.coro, "deliver (HTTP)")
    for attr in ("round", "_take_fresh", "_load_items", "_send"):
        patch(worker, attr, phases.coro, f"worker.{attr}")
    for attr in ("_settle", "_apply", "_owed_units"):
        patch(worker, attr, phases.sync, f"worker.{attr}")

    def awaiting(_key: str, blocking: Any) -> Any:
        async def awaited(fn: Any, *args: Any) -> Any:
            name = getattr(fn, "__name__", None) or getattr(fn, "func", fn).__name__
            t0 = time.perf_counter()
            try:
                return await blocking(fn, *args)
            finally:
                phases.add(f"await: {name}", time.perf_counter() - t0, 0.0)

        return awaited

    patch(delivery, "run_blocking", awaiting, "")
    try:
        yield phases
    finally:
        for owner, attr, old in reversed(saved):
            if old is _MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


_MISSING = object()


def print_phases(result: Result, phases: Phases) -> None:
    print(f"  where the time goes, {result.name} ({result.done:,} locations in "
          f"{result.elapsed:.2f} s; wall and thread CPU summed over calls, so concurrent "
          f"calls can add up to more than the elapsed time):")  # fmt: skip
    print(f"    {'step':<28}{'calls':>8}{'wall s':>9}{'% elapsed':>11}{'ms/call':>9}"
          f"{'thread CPU s':>14}")  # fmt: skip
    for key, p in sorted(phases.table.items(), key=lambda kv: -kv[1].wall):
        cpu = f"{p.thread_cpu:.2f}" if p.thread_cpu else ""
        print(f"    {key:<28}{p.calls:>8,}{p.wall:>9.2f}{100 * p.wall / result.elapsed:>10.0f}%"
              f"{1000 * p.wall / p.calls:>9.2f}{cpu:>14}")  # fmt: skip


# ---------------------------------------------------------------------------------------
# A run, and the report
# ---------------------------------------------------------------------------------------
@dataclass
class Run:
    plain1: Result
    hub1: Result
    plain2: Result
    hub2: Result


def measure_format(
    tmp: Path, fmt: str, args: argparse.Namespace, receiver: Receiver, run: int
) -> tuple[Result, Result, World]:
    total = args.json1 if fmt == JSON1 else args.json2
    world = build_world(tmp / f"{fmt}-{run}", fmt, total, args.devices, receiver.url)
    label = "JSON 1" if fmt == JSON1 else "JSON 2"
    print(f"  {label}: {total:,} positions written in {world.prepare_s:.1f} s; delivering…",
          flush=True)  # fmt: skip
    # the plain loop runs half before the hub and half after it, so a drift in the
    # machine's speed (a shared host) weighs on both sides alike
    if fmt == JSON1:
        bodies, path, per_body, requests = (
            sample_bodies(world, fmt, min(total, 1000)),
            "/json1",
            1,
            total,
        )
    else:
        bodies, path, per_body = sample_bodies(world, fmt, 5), "/json2", 1000
        requests = max(total // 1000, 500)  # at least half a second
    first = requests // 2
    name = f"plain loop {label}"
    before = trio.run(plain_loop, name, receiver, path, bodies, per_body, first, args.timeout)
    profiler = cProfile.Profile() if args.profile else None
    phases_cm = instrumented(world, fmt) if args.phases else contextlib.nullcontext()
    with phases_cm as phases:
        if profiler is not None:
            profiler.enable()
        hub = trio.run(hub_delivery, f"gpshub {label}", world, receiver, args.timeout)
        if profiler is not None:
            profiler.disable()
    after = trio.run(plain_loop, name, receiver, path, bodies, per_body, requests - first,
                     args.timeout)  # fmt: skip
    plain = before.merge(after)
    hub.note = (hub.note + " " if hub.note else "") + f"body {len(bodies[0]):,} B"
    if phases is not None:
        print_phases(hub, phases)
    if profiler is not None:
        path = f"{args.profile}-{fmt}-{run}.prof"
        profiler.dump_stats(path)
        print(f"  cProfile of the trio thread: {path}; top by own time:")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(18)
    world.hub.store.close()
    return plain, hub, world


def fmt_result(r: Result, base: Result | None = None) -> str:
    ratio = f"  ratio {r.rate / base.rate:.2f}" if base is not None and base.rate else ""
    timeout = f"  TIMED OUT after {r.elapsed:.0f} s" if r.timed_out else ""
    extra = ""
    if r.received != r.done:
        extra = f"  (receiver counted {r.received:,})"
    note = f"  [{r.note}]" if r.note else ""
    return (
        f"    {r.name:<20}{r.rate:>10,.0f} locations/s  {r.done:>8,} in {r.elapsed:6.2f} s "
        f"{r.requests:>7,} requests  CPU {r.cpu_per_1k_ms:6.1f} ms/1k  receiver busy "
        f"{100 * r.receiver_busy:3.0f}%{ratio}{timeout}{extra}{note}"
    )


def report(runs: list[Run], ceilings: dict[str, float], rss_start: int) -> None:
    def best(pick: Callable[[Run], Result]) -> Result:
        return max((pick(r) for r in runs), key=lambda r: r.rate)

    p1, h1 = best(lambda r: r.plain1), best(lambda r: r.hub1)
    p2, h2 = best(lambda r: r.plain2), best(lambda r: r.hub2)
    ratio1 = h1.rate / p1.rate if p1.rate else 0.0
    ratio2 = h2.rate / p2.rate if p2.rate else 0.0
    same_run = [r.hub1.rate / r.plain1.rate for r in runs if r.plain1.rate]
    ok1 = ratio1 >= TARGET_JSON1_RATIO and not h1.timed_out
    ok2 = h2.rate >= TARGET_JSON2_RATE and not h2.timed_out
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print()
    print(f"delivery, best of {len(runs)} run{'s' if len(runs) > 1 else ''} "
          f"({h1.target:,} locations in JSON 1, {h2.target:,} in JSON 2):")  # fmt: skip
    print(f"  {'':<22}{'locations/s':>12}{'ratio':>8}{'CPU ms/1k':>11}   {'target':<28}result")
    print(f"  {'plain loop JSON 1':<22}{p1.rate:>12,.0f}{'':>8}{p1.cpu_per_1k_ms:>11.1f}")
    print(f"  {'gpshub JSON 1':<22}{h1.rate:>12,.0f}{ratio1:>8.2f}{h1.cpu_per_1k_ms:>11.1f}   "
          f"{'>= 0.70 of the plain loop':<28}{'PASS' if ok1 else 'MISS'}")  # fmt: skip
    print(f"  {'plain loop JSON 2':<22}{p2.rate:>12,.0f}{'':>8}{p2.cpu_per_1k_ms:>11.1f}")
    print(f"  {'gpshub JSON 2':<22}{h2.rate:>12,.0f}{ratio2:>8.2f}{h2.cpu_per_1k_ms:>11.1f}   "
          f"{'>= 20,000 locations/s':<28}{'PASS' if ok2 else 'MISS'}")  # fmt: skip
    if len(runs) > 1:
        print(f"  JSON 1 ratio within each run: {', '.join(f'{x:.2f}' for x in same_run)}")
    print(f"  receiver ceiling (raw socket client, JSON 1 bodies): "
          f"{ceilings['seq']:,.0f} requests/s one at a time, {ceilings['pipe']:,.0f} "
          f"pipelined; JSON 2: {ceilings['json2']:,.0f} locations/s one at a time")  # fmt: skip
    print(f"  peak memory: {peak / 1024:,.0f} MiB RSS ({rss_start / 1024:,.0f} MiB at start; "
          f"after JSON 1 {h1.rss_kib / 1024:,.0f}, after JSON 2 {h2.rss_kib / 1024:,.0f})")  # fmt: skip
    print("  (targets are informational; timings are never asserted)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json1", type=int, default=10_000, help="locations delivered in JSON 1")
    ap.add_argument("--json2", type=int, default=200_000, help="locations delivered in JSON 2")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1, help="repeat, print each run and the best")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds any one phase may take")
    ap.add_argument("--no-pin", action="store_true", help="do not pin hub and receiver to cores")
    ap.add_argument("--phases", action="store_true", help="time the worker's steps (overhead)")
    ap.add_argument("--profile", metavar="PREFIX", help="cProfile the hub's trio thread")
    args = ap.parse_args()

    cores = sorted(os.sched_getaffinity(0))
    pin = not args.no_pin and len(cores) >= 2
    lifetime = 120.0 + args.runs * 6 * args.timeout  # the receiver ends by itself after it
    receiver = start_receiver(lifetime, cores[1] if pin else None)
    if pin:
        os.sched_setaffinity(0, {cores[0]})  # before any thread: they inherit it
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"receiver: {receiver.url} (pid {receiver.process.pid}); "
          + (f"hub on core {cores[0]}, receiver on core {cores[1]}" if pin else "not pinned"))  # fmt: skip
    runs: list[Run] = []
    try:
        probe = b"{" + b"x" * 598 + b"}"  # about a JSON 1 body's size
        ceilings = {
            "seq": raw_ceiling(receiver, probe, 20_000, 1),
            "pipe": raw_ceiling(receiver, probe, 100_000, 64),
            "json2": 1000 * raw_ceiling(receiver, b"[1000," + b"x" * 200_000 + b"]", 300, 1),
        }
        print(f"receiver ceiling: {ceilings['seq']:,.0f} requests/s one at a time, "
              f"{ceilings['pipe']:,.0f} pipelined, {ceilings['json2']:,.0f} locations/s "
              f"in 200 KB JSON 2 bodies")  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="gpshub-bench-") as tmp:
            for k in range(args.runs):
                print(f"run {k + 1}:", flush=True)
                plain1, hub1, _ = measure_format(Path(tmp), JSON1, args, receiver, k)
                print(fmt_result(plain1))
                print(fmt_result(hub1, plain1), flush=True)
                plain2, hub2, _ = measure_format(Path(tmp), JSON2, args, receiver, k)
                print(fmt_result(plain2))
                print(fmt_result(hub2, plain2), flush=True)
                runs.append(Run(plain1, hub1, plain2, hub2))
        report(runs, ceilings, rss_start)
    finally:
        receiver.stop()


if __name__ == "__main__":
    main()
