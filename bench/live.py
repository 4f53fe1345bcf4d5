"""Live feed benchmark: N WebSocket dashboards watching a fleet while the hub ingests.

A real hub (``Hub.open`` on SQLite in a temporary directory, the API served by hypercorn
on a free loopback port) with one client, ``--devices`` devices and a manager's API token.
A producer inside the hub process submits positions through the pipeline at a steady
``--rate`` (small groups every ``--tick-ms`` from ``--producers`` concurrent tasks, each
owning a share of the devices, so each device's fixes are in time order), while
``--clients`` WebSocket clients in a separate process (``bench/live_clients.py``) subscribe
to everything of the client on ``/api/live`` (``Authorization: Bearer`` on the handshake).

After ``--duration`` seconds the producer stops; the clients get up to ``--drain-timeout``
seconds to catch up, then close.  It prints the set-up; ingest (positions committed, the
rate achieved, batch write time and submit-to-commit time); per client the live positions
delivered of those expected (min / median / max, how many got all, duplicates, out of
order per device) or, with ``--mode latest``, whether each device's last position is the
newest committed and the most positions of one device per interval; latency from commit
(each commit's wall time is taken in the hub process as the pipeline's batch write
returns, each receive time in the clients' process: same machine, same clock) over a
sample of the position ids; the sockets the server closed, with codes and reasons; the
CPU and peak RSS of the hub process and the clients' process, and, to tell why, how late
the hub's event loop wakes a 10 ms sleep and its garbage collections.  ``--json`` prints
the same as one JSON object; the human form ends with the issue's targets, met or not.

The clients' process costs about 2-4 us of CPU per message received (orjson parsing
most of it), so 200,000 messages/s take most of one core; it warns when it came near one.

    make bench                                 # a short run: 20 s, 100 clients, 2,000/s
    uv run --no-sync python bench/live.py --duration 600          # the issue's 10 minutes
    uv run --no-sync python bench/live.py --clients 200 --rate 1000
    uv run --no-sync python bench/live.py --clients 10 --rate 200 --duration 10
    uv run --no-sync python bench/live.py --mode latest --max-rate-s 1  # a map's view
    uv run --no-sync python bench/live.py --frames single   # one message per frame
    uv run --no-sync python bench/live.py --deflate         # offer permessage-deflate
    uv run --no-sync python bench/live.py --sweep rate --values 100,200,500,1000,2000

Where p99 crosses 250 ms: ``--sweep rate`` (or ``--sweep clients``) runs the set-up once
per value (each ``--duration`` long, a fresh hub each time) and prints one line per run
and the values between which p99 latency went over ``--p99-limit-ms``.  By hand: run with
a growing ``--rate`` (or ``--clients``) and watch the ``latency`` line.

The protocol options suit both the feed of single JSON messages and the batched one
(frames that carry a JSON array of messages): ``--frames single`` adds ``?frames=single``
to the URL; ``--mode latest`` sends ``{"type": "subscribe", "mode": "latest",
"max_rate_s": …}`` after ``hello`` (``--mode-via query``: ``?mode=latest&max_rate_s=…``
instead).  ``--hub-setting NAME=VALUE`` overrides a hub setting (e.g. ``live_max_pending``).
"""

from __future__ import annotations

import argparse
import functools
import gc
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import trio

from hub.config import Settings
from hub.core import Hub
from hub.fix import PositionFix
from hub.heap import freeze_startup_heap
from hub.models import Role
from hub.positions import IngestItem, WriteResult
from hub.web.app import serve

CLIENTS_SCRIPT = Path(__file__).with_name("live_clients.py")
LAG_PROBE_S = 0.01
SAMPLES_PER_CLIENT = 5000
"""About this many latency samples per client (ids with ``id % K == 0``, K from the
expected number of positions), so memory stays bounded on long runs."""


# -- the commit log: what was stored, and when -------------------------------------------
class CommitLog:
    """Wraps the store's ``write_batch`` (which the pipeline calls on a worker thread for
    each batch) to note, once armed: the positions stored, each device's newest id, the
    batch write time, and the wall time of the commit for the sampled ids.

    The wall time is taken as ``write_batch`` returns, before the pipeline publishes the
    batch to the live feed, so the latency measured from it includes the publishing.
    (``Pipeline.after_commit`` runs after publishing.)
    """

    def __init__(self, hub: Hub) -> None:
        self.armed = False
        self.sample = 1
        self.count = 0
        self.batches = 0
        self.newest: dict[int, int] = {}
        self.commit_at: dict[int, float] = {}
        self.write_s = array("d")
        self.write_cpu_s = 0.0  # CPU time of the worker threads in write_batch
        self._lock = threading.Lock()
        positions = hub.store.positions
        original = positions.write_batch

        def write_batch(*args: Any, **kwargs: Any) -> WriteResult:
            started, cpu = time.perf_counter(), time.thread_time()
            result = original(*args, **kwargs)
            now = time.time()
            if self.armed:
                self._record(result, now, time.perf_counter() - started, time.thread_time() - cpu)
            return result

        positions.write_batch = write_batch  # type: ignore[method-assign]

    def arm(self, sample: int) -> None:
        self.sample = sample
        self.armed = True

    def _record(self, result: WriteResult, now: float, seconds: float, cpu: float) -> None:
        sample = self.sample
        with self._lock:
            self.batches += 1
            self.write_cpu_s += cpu
            self.write_s.append(seconds)
            self.count += len(result.inserted)
            newest, commit_at = self.newest, self.commit_at
            for row in result.inserted:
                pid = row["id"]
                device = row["device_id"]
                if pid > newest.get(device, 0):
                    newest[device] = pid
                if pid % sample == 0:
                    commit_at[pid] = now


# -- the producer --------------------------------------------------------------------------
@dataclass
class Produced:
    submitted: int = 0
    submits: int = 0
    submit_s: array = field(default_factory=lambda: array("d"))


def make_fix(index: int, seq: int, when: datetime) -> PositionFix:
    """A vehicle ``index`` creeping north-east from its own starting point."""
    return PositionFix(
        fix_time=when,
        lat=14.5 + (index % 100) * 1e-3 + seq * 1e-6,
        lon=-90.6 + (index // 100) * 1e-3 + seq * 1e-6,
        altitude_m=1500.0,
        speed_kmh=float(seq % 90),
        course_deg=45.0,
        satellites=9,
        ignition=True,
        sensors={"fuel": 0.5, "power_v": 12.6},
    )


async def produce(
    hub: Hub, devices: list[int], rate: float, duration: float, producers: int, tick: float
) -> Produced:
    """Submit ``rate`` positions/s for ``duration`` s: each producer task owns every
    ``producers``-th device, submits what is due every ``tick`` s (waiting for the commit,
    as source runners do) and cycles through its devices in order."""
    out = Produced()
    index = {d: i for i, d in enumerate(devices)}
    start = trio.current_time()
    end = start + duration

    async def producer(group: list[int], phase: float) -> None:
        # phase: a fraction of a position, so that at low rates the producers take turns
        # rather than all submitting on the same tick
        share = rate * len(group) / len(devices)
        done = 0
        cursor = 0
        seq = 0
        last = datetime.now(UTC)
        next_tick = start
        while True:
            now = trio.current_time()
            due = int(share * (min(now, end) - start) + phase) - done
            if due > 0:
                items = []
                wall = datetime.now(UTC)
                for _ in range(due):
                    device = group[cursor]
                    cursor += 1
                    if cursor == len(group):
                        cursor, seq = 0, seq + 1
                    last = max(wall, last + timedelta(microseconds=1))
                    items.append(IngestItem(device, None, make_fix(index[device], seq, last)))
                t0 = time.perf_counter()
                await hub.pipeline.submit(items)
                out.submit_s.append(time.perf_counter() - t0)
                out.submits += 1
                out.submitted += due
                done += due
            if now >= end:
                return
            next_tick = max(next_tick + tick, trio.current_time())
            await trio.sleep_until(min(next_tick, end))

    async with trio.open_nursery() as nursery:
        for n in range(producers):
            group = devices[n::producers]
            if group:
                nursery.start_soon(producer, group, n / producers)
    return out


# -- the clients' process --------------------------------------------------------------------
class Lines:
    """JSON lines from a stream (the clients' process's standard output)."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self.stream = stream
        self.buf = bytearray()

    async def next(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            data = await self.stream.receive_some(1 << 16)
            if not data:
                raise RuntimeError("the clients' process ended early (see its errors above)")
            self.buf += data
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return orjson.loads(line)


def clients_command(args: argparse.Namespace, url: str, token: str, out: Path, sample: int) -> list:
    ws_url = url.replace("http://", "ws://") + "/api/live"
    cmd = [
        sys.executable, str(CLIENTS_SCRIPT), "--url", ws_url, "--token", token,
        "--clients", str(args.clients), "--out", str(out), "--sample", str(sample),
        "--mode", args.mode, "--max-rate-s", str(args.max_rate_s), "--mode-via", args.mode_via,
        "--frames", args.frames,
    ]  # fmt: skip
    return cmd + (["--deflate"] if args.deflate else [])


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def memory_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (the peak) of this process, from ``/proc/self/status``
    (``ru_maxrss`` would count a parent's memory across ``exec``)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, file=sys.stderr, flush=True)


# -- one run ----------------------------------------------------------------------------------
@dataclass
class World:
    hub: Hub
    devices: list[int]
    token: str
    log: CommitLog


def make_world(args: argparse.Namespace, data_dir: Path) -> World:
    overrides = dict(parse_setting(s) for s in args.hub_setting)
    hub = Hub.open(Settings(data_dir=data_dir, **overrides))
    store = hub.store
    client = store.create_client("bench fleet").id or 0
    devices = [
        store.create_device(client, name=f"vehicle {i:04d}").id or 0 for i in range(args.devices)
    ]
    user = store.create_user("fleet dashboard", Role.MANAGER, client).id or 0
    token = store.create_token(user, "live bench")[1]
    return World(hub, devices, token, CommitLog(hub))


def parse_setting(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--hub-setting {text!r}: expected NAME=VALUE")
    for kind in (int, float):
        try:
            return name, kind(value)
        except ValueError:
            pass
    return name, value


async def seed(hub: Hub, devices: list[int]) -> None:
    """One position per device, so that each client's snapshot has the whole fleet."""
    when = datetime.now(UTC) - timedelta(minutes=1)
    items = [IngestItem(d, None, make_fix(i, 0, when)) for i, d in enumerate(devices)]
    for start in range(0, len(items), 1000):
        await hub.pipeline.submit(items[start : start + 1000])


async def drive(args: argparse.Namespace, world: World, out: Path) -> dict[str, Any]:
    """Serve, connect the clients, produce, drain; the figures measured in this process."""
    hub = world.hub
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(
            functools.partial(hub.run, serve=functools.partial(serve, hub, "127.0.0.1", 0))
        )
        freeze_startup_heap()  # as gpshub serve does once it serves
        try:
            result = await measure(args, world, url, out)
        finally:
            hub.shutdown()
    return result


async def measure(args: argparse.Namespace, world: World, url: str, out: Path) -> dict[str, Any]:
    hub, log = world.hub, world.log
    if args.seed:
        await seed(hub, world.devices)
    sample = max(1, round(args.rate * args.duration / SAMPLES_PER_CLIENT))
    log.arm(sample)
    say(args, f"live bench: {args.clients} clients connecting to {url} …")
    proc = await trio.lowlevel.open_process(
        clients_command(args, url, world.token, out, sample),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None
    lines = Lines(proc.stdout)
    try:
        ready = await lines.next()
        say(args, f"  {ready['ready']} clients ready in {ready['ready_s']:.1f} s; producing …")
        stats0 = hub.pipeline.stats
        tx0, dup0 = stats0.transactions, stats0.duplicates
        cpu0, t0 = cpu_seconds(), time.time()
        await proc.stdin.send_all(b'{"cmd":"go"}\n')
        lag = array("d")
        gc_pauses = GcPauses()
        gc.callbacks.append(gc_pauses)
        gc_pauses.armed = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(progress, args, log, cpu0, t0)
            nursery.start_soon(watch_loop_lag, lag)
            produced = await produce(
                hub, world.devices, args.rate, args.duration, args.producers, args.tick_ms / 1000
            )
            nursery.cancel_scope.cancel()
        cpu1, t1 = cpu_seconds(), time.time()
        if produced.submitted and not log.batches:
            raise RuntimeError(
                "no batch went through store.positions.write_batch: the pipeline stores "
                "positions some other way now; CommitLog must wrap that instead"
            )
        gc_pauses.armed = False
        gc.callbacks.remove(gc_pauses)
        rss_end = memory_mib("VmRSS")
        drain = {
            "cmd": "drain",
            "expected": log.count,
            "newest": log.newest,
            "timeout": args.drain_timeout,
        }
        await proc.stdin.send_all(orjson.dumps(drain, option=orjson.OPT_NON_STR_KEYS) + b"\n")
        say(args, "  producer stopped; draining …")
        with trio.fail_after(args.drain_timeout + 60):
            await lines.next()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            with trio.CancelScope(shield=True):
                await proc.wait()
    return {
        "ready": ready,
        "produced": produced,
        "t0": t0,
        "seconds": t1 - t0,
        "hub_cpu_s": cpu1 - cpu0,
        "hub_rss_end_mib": rss_end,
        "transactions": hub.pipeline.stats.transactions - tx0,
        "duplicates": hub.pipeline.stats.duplicates - dup0,
        "sample": sample,
        "loop_lag": lag,
        "gc": gc_pauses.summary(),
    }


class GcPauses:
    """The hub process's garbage collections while armed: (generation, seconds) each."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0
        self.armed = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if not self.armed:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def summary(self) -> dict[str, Any]:
        full = sorted(s for g, s in self.pauses if g == 2)
        return {
            "collections": len(self.pauses),
            "total_ms": ms(sum(s for _, s in self.pauses)),
            "max_ms": ms(max((s for _, s in self.pauses), default=0.0)),
            "full": len(full),
            "full_max_ms": ms(full[-1] if full else None),
        }


async def watch_loop_lag(lag: array) -> None:
    """How late a 10 ms sleep wakes up in the hub's trio loop: how long the loop was busy
    (or blocked) before it could run a ready task."""
    while True:
        before = trio.current_time()
        await trio.sleep(LAG_PROBE_S)
        lag.append(trio.current_time() - before - LAG_PROBE_S)


async def progress(args: argparse.Namespace, log: CommitLog, cpu0: float, t0: float) -> None:
    every = 10.0 if args.duration > 30 else 5.0
    while True:
        await trio.sleep(every)
        elapsed = time.time() - t0
        say(
            args,
            f"  {elapsed:4.0f} s: {log.count:,} committed ({log.count / elapsed:,.0f}/s), "
            f"hub CPU {100 * (cpu_seconds() - cpu0) / elapsed:.0f}%",
        )


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="gpshub-live-bench-") as tmp:
        data_dir, out = Path(tmp) / "data", Path(tmp) / "clients"
        out.mkdir()
        say(args, f"live bench: setting up {args.devices:,} devices …")
        world = make_world(args, data_dir)
        try:
            hub_side = trio.run(drive, args, world, out)
        finally:
            world.hub.store.close()
        peak_rss = memory_mib("VmHWM")
        clients = orjson.loads((out / "clients.json").read_bytes())
        samples = load_samples(out, clients["clients"])
    return summarise(args, world.log, hub_side, clients, samples, peak_rss)


def load_samples(out: Path, clients: list[dict[str, Any]]) -> list[tuple[array, array]]:
    samples = []
    for c in clients:
        ids, times = array("q"), array("d")
        ids.frombytes((out / f"c{c['index']}.ids").read_bytes())
        times.frombytes((out / f"c{c['index']}.t").read_bytes())
        samples.append((ids, times))
    return samples


# -- figures ---------------------------------------------------------------------------------
def pct(values: list[float], p: float) -> float | None:
    """The ``p``-th percentile (nearest rank) of sorted ``values``."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def quantiles_ms(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": ms(pct(values, 50)),
        "p99": ms(pct(values, 99)),
        "max": ms(values[-1] if values else None),
    }


def summarise(
    args: argparse.Namespace,
    log: CommitLog,
    hub_side: dict[str, Any],
    clients: dict[str, Any],
    samples: list[tuple[array, array]],
    peak_rss_mib: float,
) -> dict[str, Any]:
    cs = clients["clients"]
    seconds = hub_side["seconds"]
    produced: Produced = hub_side["produced"]
    expected = log.count
    t0 = hub_side["t0"]

    # latency from commit, over the sampled ids every client received
    commit_at = log.commit_at
    fifth = args.duration / 5
    lat: list[float] = []
    by_fifth: list[list[float]] = [[] for _ in range(5)]
    client_p99: list[float] = []
    for ids, times in samples:
        mine = []
        for pid, t in zip(ids, times, strict=True):
            at = commit_at.get(pid)
            if at is None:
                continue
            mine.append(t - at)
            by_fifth[min(4, max(0, int((at - t0) / fifth)))].append(t - at)
        lat += mine
        if mine:
            mine.sort()
            client_p99.append(pct(mine, 99) or 0.0)
    lat.sort()
    for part in by_fifth:
        part.sort()

    received = sorted(c["received"] for c in cs)
    complete = sum(
        1 for c in cs if c["new"] == expected and c["dup"] == 0 and c["ooo"] == 0 and c["ready"]
    )
    closes = Counter(
        f"{c['close_code']} {c['close_reason']!r}" for c in cs if c["closed_by_server_at"]
    )
    close_times = sorted(c["closed_by_server_at"] - t0 for c in cs if c["closed_by_server_at"])
    frames = sum(c["frames_since_go"] for c in cs)
    wire = sum(c["wire_bytes_since_go"] for c in cs)
    json_bytes = sum(c["json_bytes_since_go"] for c in cs)
    all_frames = sum(c["frames"] for c in cs)
    messages = sum(c["messages"] for c in cs)
    deflate = [c["deflate"] for c in cs]
    types: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for c in cs:
        types.update(c["types"])
        errors.update(c["errors"])
    writes = sorted(log.write_s)
    submits = sorted(produced.submit_s)
    live_s = clients["wall_producing_s"] + clients["drain_s"]
    n = len(cs) or 1
    result: dict[str, Any] = {
        "setup": {
            "rate": args.rate,
            "devices": args.devices,
            "clients": args.clients,
            "duration_s": args.duration,
            "mode": args.mode,
            "max_rate_s": args.max_rate_s if args.mode == "latest" else None,
            "mode_via": args.mode_via if args.mode == "latest" else None,
            "frames": args.frames,
            "deflate_offered": args.deflate,
            "deflate_accepted": sum(1 for d in deflate if d),
            "producers": args.producers,
            "tick_ms": args.tick_ms,
            "snapshot_seeded": args.seed,
            "hub_settings": dict(parse_setting(s) for s in args.hub_setting),
            "clients_ready": hub_side["ready"]["ready"],
            "clients_ready_s": round(hub_side["ready"]["ready_s"], 2),
            "client_errors": sorted({c["error"] for c in cs if c["error"]})[:5],
        },
        "ingest": {
            "committed": expected,
            "submitted": produced.submitted,
            "duplicates": hub_side["duplicates"],
            "seconds": round(seconds, 2),
            "rate": round(expected / seconds, 1),
            "transactions": hub_side["transactions"],
            "batch_write_ms": quantiles_ms(writes),
            "submit_to_commit_ms": quantiles_ms(submits),
        },
        "delivery": {
            "expected": expected if args.mode == "all" else None,
            "received": {
                "min": received[0] if received else 0,
                "median": statistics.median(received) if received else 0,
                "max": received[-1] if received else 0,
            },
            "clients_complete": complete if args.mode == "all" else None,
            "duplicates": sum(c["dup"] for c in cs),
            "clients_with_duplicates": sum(1 for c in cs if c["dup"]),
            "out_of_order": sum(c["ooo"] for c in cs),
            "clients_out_of_order": sum(1 for c in cs if c["ooo"]),
            "frames_per_client_s": round(frames / n / live_s, 1),
            "messages_per_frame": round(messages / all_frames, 2) if all_frames else None,
            "wire_kib_per_client_s": round(wire / n / live_s / 1024, 1),
            "json_kib_per_client_s": round(json_bytes / n / live_s / 1024, 1),
            "other_messages": {k: round(v / n, 1) for k, v in types.items()},
            "error_messages": dict(errors),
            "subscribe_replies": dict(Counter(str(c["subscribe_reply"]) for c in cs))
            if args.mode == "latest"
            else None,
        },
        "latency_ms": {
            "samples": len(lat),
            "sample_every": hub_side["sample"],
            "p50": ms(pct(lat, 50)),
            "p90": ms(pct(lat, 90)),
            "p99": ms(pct(lat, 99)),
            "max": ms(lat[-1] if lat else None),
            "client_p99_median": ms(statistics.median(client_p99) if client_p99 else None),
            "client_p99_worst": ms(max(client_p99) if client_p99 else None),
            "p99_by_fifth": [ms(pct(part, 99)) for part in by_fifth],
        },
        "drops": {
            "closed_by_server": sum(closes.values()),
            "close_codes": dict(closes),
            "first_at_s": round(close_times[0], 1) if close_times else None,
            "last_at_s": round(close_times[-1], 1) if close_times else None,
            "connections_lost": sum(1 for c in cs if c["lost"]),
        },
        "drain": {
            "seconds": round(clients["drain_s"], 2),
            "clients_caught_up": clients["caught_up"],
            "clients_closed": clients["over_before_drain_end"],
        },
        "cpu": {
            "hub_cpu_s": round(hub_side["hub_cpu_s"], 2),
            "hub_pct_of_core": round(100 * hub_side["hub_cpu_s"] / seconds, 1),
            "batch_write_pct_of_core": round(100 * log.write_cpu_s / seconds, 1),
            "hub_loop_lag_ms": quantiles_ms(sorted(hub_side["loop_lag"])),
            "hub_gc": hub_side["gc"],
            "hub_peak_rss_mib": round(peak_rss_mib, 1),
            "hub_rss_end_mib": round(hub_side["hub_rss_end_mib"], 1),
            "clients_cpu_s": round(clients["cpu_producing_s"], 2),
            "clients_pct_of_core": round(
                100 * clients["cpu_producing_s"] / clients["wall_producing_s"], 1
            ),
            "clients_peak_rss_mib": round(clients["peak_rss_mib"], 1),
        },
    }
    if args.mode == "latest":
        stale = [c["stale_devices"] for c in cs]
        gaps = [c["min_gap"] for c in cs if c["min_gap"] is not None]
        result["latest"] = {
            "clients_all_newest": sum(1 for s in stale if s == 0),
            "stale_devices_worst_client": max(stale) if stale else None,
            "max_per_device_per_interval": max((c["max_per_window"] for c in cs), default=0),
            "min_gap_s": round(min(gaps), 3) if gaps else None,
        }
    result["verdict"] = verdict(args, result)
    return result


def verdict(args: argparse.Namespace, r: dict[str, Any]) -> dict[str, bool]:
    """The issue's targets for this run."""
    lat = r["latency_ms"]
    out = {
        "no_client_dropped": r["drops"]["closed_by_server"] == 0
        and r["drops"]["connections_lost"] == 0
        and r["setup"]["clients_ready"] == args.clients,
        "p99_under_250ms": lat["p99"] is not None and lat["p99"] < 250,
        "p50_under_100ms": lat["p50"] is not None and lat["p50"] < 100,
    }
    if args.mode == "all":
        out["all_delivered_once_in_order"] = r["delivery"]["clients_complete"] == args.clients
    else:
        out["every_device_newest"] = r["latest"]["clients_all_newest"] == args.clients
    return out


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:,.0f} ms"


def report(r: dict[str, Any]) -> str:
    s, i, d, lat, dr, cpu = (
        r["setup"], r["ingest"], r["delivery"], r["latency_ms"], r["drops"], r["cpu"]
    )  # fmt: skip
    deflate = "not offered"
    if s["deflate_offered"]:
        deflate = f"offered, accepted on {s['deflate_accepted']} of {s['clients']} sockets"
    mode = s["mode"]
    if mode == "latest":
        mode += f" (max_rate_s {s['max_rate_s']:g}, by {s['mode_via']})"
    lines = [
        f"live feed: {s['clients']} clients x {s['rate']:,.0f} positions/s over "
        f"{s['devices']:,} devices for {s['duration_s']:g} s",
        f"set-up:    mode {mode}, frames {s['frames']}, permessage-deflate {deflate}; "
        f"{s['clients_ready']} clients ready in {s['clients_ready_s']:.1f} s "
        f"(snapshot {'of every device' if s['snapshot_seeded'] else 'empty'})",
    ]
    if s["client_errors"]:
        lines.append(f"           client errors: {'; '.join(s['client_errors'])}")
    lines += [
        f"ingest:    {i['committed']:,} positions committed in {i['seconds']:.1f} s "
        f"({i['rate']:,.0f}/s), {i['transactions']:,} transactions; batch write "
        f"p50 {fmt_ms(i['batch_write_ms']['p50'])} / p99 {fmt_ms(i['batch_write_ms']['p99'])}; "
        f"submit to commit p50 {fmt_ms(i['submit_to_commit_ms']['p50'])} / "
        f"p99 {fmt_ms(i['submit_to_commit_ms']['p99'])}",
    ]
    rec = d["received"]
    if mode == "all":
        lines.append(
            f"delivery:  live positions per client min {rec['min']:,} / median "
            f"{rec['median']:,.0f} / max {rec['max']:,} of {d['expected']:,}; "
            f"{d['clients_complete']} of {s['clients']} clients got every one, once, in order"
        )
    else:
        lt = r["latest"]
        gap = "-" if lt["min_gap_s"] is None else f"{lt['min_gap_s']:.3f} s"
        lines.append(
            f"delivery:  positions per client min {rec['min']:,} / median {rec['median']:,.0f} "
            f"/ max {rec['max']:,}; {lt['clients_all_newest']} of {s['clients']} clients end "
            f"with every device's newest (worst: {lt['stale_devices_worst_client']} stale); at "
            f"most {lt['max_per_device_per_interval']} per device per interval (the fleet sent "
            f"{s['rate'] * s['max_rate_s'] / s['devices']:g}), shortest gap {gap}; subscribe "
            f"answered: {d['subscribe_replies']}"
        )
    lines.append(
        f"           duplicates {d['duplicates']:,} ({d['clients_with_duplicates']} clients), "
        f"out of order {d['out_of_order']:,} ({d['clients_out_of_order']} clients); "
        f"{d['frames_per_client_s']:,.0f} frames/s and {d['wire_kib_per_client_s']:,.0f} KiB/s "
        f"per client ({d['json_kib_per_client_s']:,.0f} KiB/s of JSON), "
        f"{d['messages_per_frame'] or 0:.1f} messages per frame"
    )
    others = ", ".join(f"{k} x{v:,}" for k, v in sorted(d["other_messages"].items()))
    lines.append(f"           other messages per client on average: {others or 'none'}")
    if d["error_messages"]:
        lines.append(f"           error messages: {d['error_messages']}")
    lines += [
        f"latency:   from commit p50 {fmt_ms(lat['p50'])}, p90 {fmt_ms(lat['p90'])}, "
        f"p99 {fmt_ms(lat['p99'])}, max {fmt_ms(lat['max'])} ({lat['samples']:,} samples: "
        f"ids divisible by {lat['sample_every']}); per client p99 median "
        f"{fmt_ms(lat['client_p99_median'])}, worst {fmt_ms(lat['client_p99_worst'])}",
        "           p99 by fifth of the run (by commit time): "
        + " / ".join(fmt_ms(v) for v in lat["p99_by_fifth"])
        + ("" if d["clients_complete"] != 0 else "; of the positions delivered only"),
    ]
    if dr["closed_by_server"]:
        codes = ", ".join(f"{k} x{v}" for k, v in dr["close_codes"].items())
        lines.append(
            f"drops:     {dr['closed_by_server']} clients closed by the server: {codes}, "
            f"{dr['first_at_s']}-{dr['last_at_s']} s after the start"
        )
    else:
        lines.append("drops:     no client closed by the server")
    if dr["connections_lost"]:
        lines.append(f"           {dr['connections_lost']} connections lost without a close")
    dn = r["drain"]
    lines += [
        f"drain:     {dn['clients_caught_up']} of {s['clients']} clients had everything "
        f"{dn['seconds']:.1f} s after the producer stopped "
        f"({dn['clients_closed']} sockets closed by then)",
        f"cpu:       hub process {cpu['hub_cpu_s']:.1f} s over {i['seconds']:.0f} s = "
        f"{cpu['hub_pct_of_core']:.0f}% of one core ({cpu['batch_write_pct_of_core']:.0f}% in batch "
        f"writes; the producer is in it too), peak RSS "
        f"{cpu['hub_peak_rss_mib']:,.0f} MiB; clients process {cpu['clients_pct_of_core']:.0f}% "
        f"of one core, peak RSS {cpu['clients_peak_rss_mib']:,.0f} MiB",
        f"           hub event loop lag (a {LAG_PROBE_S * 1000:.0f} ms sleep waking late): p50 "
        f"{fmt_ms(cpu['hub_loop_lag_ms']['p50'])}, p99 {fmt_ms(cpu['hub_loop_lag_ms']['p99'])}, "
        f"max {fmt_ms(cpu['hub_loop_lag_ms']['max'])}; garbage collections "
        f"{cpu['hub_gc']['collections']:,} taking {fmt_ms(cpu['hub_gc']['total_ms'])} "
        f"(longest {fmt_ms(cpu['hub_gc']['max_ms'])}; {cpu['hub_gc']['full']} full)",
        "targets:   "
        + ", ".join(
            f"{k.replace('_', ' ')}: {'yes' if v else 'NO'}" for k, v in r["verdict"].items()
        ),
    ]
    if cpu["clients_pct_of_core"] > 85:
        lines.append("WARNING:   the clients process was near one full core: it may be the limit")
    return "\n".join(lines)


# -- sweeps and the command line ---------------------------------------------------------------
def sweep(args: argparse.Namespace) -> list[dict[str, Any]]:
    runs = []
    for value in args.values:
        one = argparse.Namespace(**vars(args))
        setattr(one, args.sweep, type(getattr(args, args.sweep))(value))
        r = run_once(one)
        runs.append(r)
        if not args.json:
            lat = r["latency_ms"]
            print(
                f"{args.sweep} {value:>8g}: p50 {fmt_ms(lat['p50']):>8}, p99 "
                f"{fmt_ms(lat['p99']):>8}, received min {r['delivery']['received']['min']:,}, "
                f"dropped {r['drops']['closed_by_server']}, hub CPU "
                f"{r['cpu']['hub_pct_of_core']:.0f}%",
                flush=True,
            )
    if not args.json:
        limit = args.p99_limit_ms
        over = [
            v
            for v, r in zip(args.values, runs, strict=True)
            if (r["latency_ms"]["p99"] or 1e12) >= limit or r["drops"]["closed_by_server"]
        ]
        under = [v for v in args.values if v not in over]
        if not over:
            print(
                f"p99 stayed under {limit:g} ms (and nobody was dropped) up to {args.values[-1]:g}"
            )
        else:
            below = max((v for v in under if v < over[0]), default=None)
            print(
                f"p99 reached {limit:g} ms (or clients were dropped) at {args.sweep} {over[0]:g}"
                + (f"; it was under at {below:g}" if below is not None else "")
            )
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rate", type=float, default=2000, help="positions per second (2,000)")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=100, help="WebSocket clients (100)")
    ap.add_argument("--duration", type=float, default=20, help="seconds of producing (20)")
    ap.add_argument("--mode", choices=("all", "latest"), default="all")
    ap.add_argument("--max-rate-s", type=float, default=1.0, help="for --mode latest")
    ap.add_argument(
        "--mode-via",
        choices=("message", "query"),
        default="message",
        help="ask for --mode latest with a subscribe message or in the URL's query",
    )
    ap.add_argument(
        "--frames",
        choices=("array", "single"),
        default="array",
        help="single: ask for one message per frame (?frames=single)",
    )
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    ap.add_argument("--producers", type=int, default=10, help="concurrent producer tasks")
    ap.add_argument(
        "--tick-ms",
        type=float,
        default=20,
        help="each producer submits what is due this often (20 ms: one transaction of about "
        "40 positions per tick at 2,000/s; at 5 ms the producers drift apart into ~300 "
        "transactions/s of ~7 positions, which alone take a core of the hub at 2,000/s)",
    )
    ap.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="store a position per device first, so each snapshot has the whole fleet",
    )
    ap.add_argument("--drain-timeout", type=float, default=10, help="seconds to catch up")
    ap.add_argument(
        "--hub-setting", action="append", default=[], metavar="NAME=VALUE", help="repeatable"
    )
    ap.add_argument("--sweep", choices=("rate", "clients"), help="one run per --values")
    ap.add_argument("--values", default="100,200,500,1000,2000", help="for --sweep")
    ap.add_argument("--p99-limit-ms", type=float, default=250, help="for --sweep")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--quiet", action="store_true", help="no progress on standard error")
    args = ap.parse_args(argv)
    args.values = [float(v) for v in args.values.split(",")]
    return args


def main() -> None:
    args = parse_args()
    if args.sweep:
        runs = sweep(args)
        if args.json:
            print(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode())
        return
    r = run_once(args)
    print(orjson.dumps(r, option=orjson.OPT_INDENT_2).decode() if args.json else report(r))


if __name__ == "__main__":
    main()
