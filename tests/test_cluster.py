"""Leases on PostgreSQL (``hub.cluster``, ``hub.lease_store``): taking, renewing, expiry
and takeover with a clock the test sets; balancing; and two hubs in one trio run on one
schema that never poll one connection at once and hand connections over — on shutdown
(the SIGTERM path) and when one stops renewing (a simulated kill) — with every fix in
history exactly once.  On SQLite nothing of this runs and no cluster table is touched."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import trio
import trio.testing
from pydantic import BaseModel

from hub.clock import TrioClock
from hub.cluster import LocalCluster, PgCluster
from hub.fix import PositionFix
from hub.lease_store import MAINTENANCE, LeaseStore, NodeRow, connection_resource
from hub.models import cluster_nodes_t, leases_t, states_t
from hub.positions import IngestItem
from hub.secrets import SecretBox
from hub.source import Cadence, Cursor, DeviceRef, PollResult, Source
from hub.testing import EPOCH, make_hub, running

LEASE = 30.0
pg = pytest.mark.postgres


def node(name: str) -> NodeRow:
    return NodeRow(name, "host", 1, EPOCH)


def at(seconds: float) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def add_connections(hub: Any, count: int) -> list[int]:
    client = hub.store.create_client("acme").id or 0
    ids = []
    for i in range(count):
        conn = hub.store.create_connection(client, "counting", f"account {i}", {}).id or 0
        hub.store.create_device(client, name=f"unit {i}", connection_id=conn, upstream_id=f"u{i}")
        ids.append(conn)
    return ids


def tick(store: LeaseStore, who: str, seconds: float) -> set[str]:
    """One round as ``PgCluster`` does it: what the node keeps; the shed ones go back."""
    out = store.round(node(who), at(seconds))
    store.release(who, out.shed)
    return {r for r in out.held - out.shed if r != MAINTENANCE}


# -- the lease store -----------------------------------------------------------------------
@pg
def test_a_lease_is_renewed_by_its_holder_and_taken_over_once_it_expires(
    pg_url: str, tmp_path: Path
) -> None:
    hub = make_hub(tmp_path, db_url=pg_url)
    try:
        wanted = {connection_resource(i) for i in add_connections(hub, 1)}
        store = LeaseStore(hub.store.engine, LEASE)
        assert tick(store, "a", 0) == wanted  # alone: a takes everything (its share)
        for t in (10, 20, 30, 40, 50):  # renewed every third of the lease: never free
            assert tick(store, "b", t - 5) == set()
            assert tick(store, "a", t) == wanted
        # a stops renewing at 50: its leases expire at 80, not a moment before
        assert tick(store, "b", 79.9) == set()
        assert store.round(node("b"), at(79.9)).live_nodes == 2
        assert tick(store, "b", 80.0) == wanted
        assert tick(store, "a", 81) == set()  # a, back, finds them gone
        with hub.store.engine.connect() as conn:
            owners = dict(conn.execute(sa.select(leases_t.c.resource, leases_t.c.owner)).all())
        assert owners == dict.fromkeys(wanted | {MAINTENANCE}, "b")
        # released at once on shutdown: taken at the next round, long before expiry
        store.leave("b")
        assert tick(store, "a", 82) == wanted
        with hub.store.engine.connect() as conn:
            nodes = conn.execute(sa.select(cluster_nodes_t.c.node_id)).scalars().all()
        assert nodes == ["a"]
    finally:
        hub.store.close()


@pg
def test_nodes_racing_for_leases_get_each_once(pg_url: str, tmp_path: Path) -> None:
    hub = make_hub(tmp_path, db_url=pg_url)
    try:
        store = LeaseStore(hub.store.engine, LEASE)
        wanted = [f"connection:{i}" for i in range(20)]
        names = [f"n{i}" for i in range(6)]
        start = threading.Barrier(len(names))
        got: dict[str, set[str]] = {}

        def race(name: str) -> None:
            start.wait()
            got[name] = store.acquire(name, wanted, at(0))

        threads = [threading.Thread(target=race, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r for g in got.values() for r in g) == sorted(wanted)
        (winner,) = [n for n, g in got.items() if g]  # sorted rows: one takes the batch
        assert store.acquire(winner, wanted[:1], at(5)) == set(wanted[:1])  # renews
        other = next(n for n in names if n != winner)
        assert store.acquire(other, wanted[:1], at(34.9)) == set()  # not yet expired
        assert store.acquire(other, wanted[:1], at(35)) == set(wanted[:1])  # expired
    finally:
        hub.store.close()


@pg
def test_connections_spread_evenly_and_a_new_node_takes_some_over(
    pg_url: str, tmp_path: Path
) -> None:
    hub = make_hub(tmp_path, db_url=pg_url)
    try:
        wanted = {connection_resource(i) for i in add_connections(hub, 30)}
        store = LeaseStore(hub.store.engine, LEASE)
        nodes = ["a", "b", "c"]
        held: dict[str, set[str]] = {}
        t = 0.0
        for _ in range(6):  # rounds every 10 s, each node a second after the other
            for n in nodes:
                held[n] = tick(store, n, t)
                t += 1
            t += 7
        assert sorted(len(h) for h in held.values()) == [10, 10, 10]
        assert set().union(*held.values()) == wanted
        nodes.append("d")
        for _ in range(6):
            for n in nodes:
                held[n] = tick(store, n, t)
                t += 1
            t += 6
        counts = {n: len(h) for n, h in held.items()}
        assert sum(counts.values()) == 30 and set().union(*held.values()) == wanted
        assert sorted(counts.values()) == [6, 8, 8, 8]  # the share: ceil(30 / 4)
        assert counts["d"] == 6  # the newcomer took over what the others shed
    finally:
        hub.store.close()


# -- two hubs ------------------------------------------------------------------------------
STEP = 5.0  # the fake's units report every 5 s


class Counting(Source[Any, Any]):
    """A fake upstream: each unit has a fix every ``STEP`` s since ``EPOCH``; a poll
    takes a second and returns the fixes after the cursor.  Two polls of one connection
    at once are recorded in ``overlaps``."""

    kind = "counting"
    title = "Counting fake"
    cadence = Cadence(active=10.0, jitter=0.0)

    class Credentials(BaseModel):
        pass

    polls: ClassVar[Counter[int]] = Counter()
    polling: ClassVar[set[int]] = set()
    overlaps: ClassVar[list[tuple[int, float]]] = []
    silent: ClassVar[tuple[datetime, datetime] | None] = None  # no fix in [from, to)

    async def test_connection(self) -> str:
        return "ok"

    async def poll(self, devices: Sequence[DeviceRef], cursors: Any) -> PollResult:
        cid = self.ctx.connection_id or 0
        if cid in self.polling:
            self.overlaps.append((cid, trio.current_time()))
        self.polling.add(cid)
        type(self).polls[cid] += 1
        try:
            await trio.sleep(1.0)
        finally:
            self.polling.discard(cid)
        now = self.ctx.clock.now()
        fixes = {}
        for d in devices:
            last = cursors.get(d.upstream_id, Cursor()).last_fix_time or EPOCH
            k = int((last - EPOCH).total_seconds() // STEP) + 1
            out = []
            while EPOCH + timedelta(seconds=k * STEP) <= now and len(out) < 50:
                t = EPOCH + timedelta(seconds=k * STEP)
                if self.silent is None or not self.silent[0] <= t < self.silent[1]:
                    out.append(PositionFix(t, 45.0 + k % 2 * 5e-4, 9.0 + k / 1e4))  # zigzag
                k += 1
            fixes[d.upstream_id] = out
        return PollResult(fixes=fixes)


def counting() -> type[Counting]:
    attrs = {"polls": Counter(), "polling": set(), "overlaps": [], "silent": None}
    return type("Counting", (Counting,), attrs)


async def until(check: Callable[[], Any], timeout: float) -> float:
    """Wait (trio time) until ``check()``; how long it took."""
    start = trio.current_time()
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - polls what the hubs did
            await trio.sleep(1.0)
    return trio.current_time() - start


@pytest.fixture
def patient_clock() -> trio.testing.MockClock:
    """Trio's mock clock, jumping only after 50 ms of real idleness: not while the hubs
    wait for a database call on a worker thread (what ``autojump_clock`` would do)."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
def very_patient_clock() -> trio.testing.MockClock:
    """``patient_clock`` for a test whose premise is a race a busy machine could lose:
    a database call taking longer than 50 ms lets the clock jump to another node's
    lease round, which may take the connection first."""
    return trio.testing.MockClock(autojump_threshold=0.25)


@pg
async def test_two_hubs_share_connections_and_hand_them_over(
    pg_url: str, tmp_path: Path, patient_clock: Any
) -> None:
    src = counting()
    clock = TrioClock(EPOCH)
    key = SecretBox.generate_key().encode()

    def new_hub(name: str) -> Any:
        return make_hub(tmp_path / name, src, db_url=pg_url, clock=clock, secret_key=key,
                        lease_s=LEASE, change_fallback_s=5.0)  # fmt: skip

    a, b = new_hub("a"), new_hub("b")
    ids = set(add_connections(a, 6))
    stores = [a.store, b.store]

    def polled_by(*hubs: Any) -> bool:
        running_ = [set(h.runners) for h in hubs]
        return set().union(*running_) == ids and sum(map(len, running_)) == len(ids)

    try:
        async with running(a):
            await until(lambda: set(a.runners) == ids, 15)  # alone: a polls all
            async with running(b):
                assert isinstance(b.cluster, PgCluster)
                await until(lambda: polled_by(a, b) and len(b.runners) == 3, 3 * LEASE)
                await trio.sleep(60)
                assert polled_by(a, b) and len(a.runners) == len(b.runners) == 3
                # a stops (SIGTERM's path): its leases go back at once
                a.shutdown()
                moved = await until(lambda: set(b.runners) == ids, LEASE)
                assert moved <= LEASE / 3 + 2  # b's next round, not the lease's expiry
            # b is gone too (shut down): a new process on the same schema
        c = new_hub("c")
        stores.append(c.store)
        d = new_hub("d")
        stores.append(d.store)
        async with running(c):
            await until(lambda: set(c.runners) == ids, 15)
            async with running(d):
                await until(lambda: polled_by(c, d) and len(d.runners) == 3, 3 * LEASE)
                await trio.sleep(30)
                # c hangs (a simulated kill): it stops renewing; its runners stop before
                # its leases expire, then d takes them over
                c.cluster.stop_renewing()
                stopped = trio.current_time()
                await until(lambda: not c.runners, LEASE)
                assert trio.current_time() - stopped < LEASE
                await until(lambda: set(d.runners) == ids, 2 * LEASE)
                assert trio.current_time() - stopped <= LEASE + LEASE / 30 + 2
                await trio.sleep(30)
                # c recovers and takes some back: what it cached of them is stale by now
                c.cluster.resume_renewing()
                await until(lambda: polled_by(c, d) and len(c.runners) == 3, 2 * LEASE)
                await trio.sleep(30)
        assert src.overlaps == []  # never two polls of one connection at once
        # every fix the fake had, up to the last cursor, is in history exactly once
        for conn_id in ids:
            (device,) = a.store.list_devices(connection_id=conn_id)
            rows, _ = a.store.positions.history([device.id], limit=100_000)
            times = [r["fix_time"] for r in rows]
            cursor = a.store.load_cursors(conn_id)[device.id].last_fix_time
            assert cursor is not None and times and max(times) >= cursor
            steps = int((max(times) - EPOCH).total_seconds() // STEP)
            assert sorted(times) == [EPOCH + timedelta(seconds=STEP * k) for k in
                                     range(1, steps + 1)]  # fmt: skip
        # derivation after the failovers equals derivation without one: the same fixes
        # through one hub, at once
        (tmp_path / "ref").mkdir()
        ref = make_hub(tmp_path / "ref", clock=clock)
        stores.append(ref.store)
        ref_client = ref.store.create_client("acme").id or 0
        async with running(ref):
            for conn_id in sorted(ids):
                (device,) = a.store.list_devices(connection_id=conn_id)
                rows, _ = a.store.positions.history([device.id], limit=100_000)
                twin = ref.store.create_device(ref_client, name=device.name).id or 0
                fixes = [PositionFix(r["fix_time"], r["lat"], r["lon"]) for r in rows]
                await ref.pipeline.submit([IngestItem(twin, None, f) for f in fixes])
                again, _ = ref.store.positions.history([twin], limit=100_000)
                assert derived(again) == derived(rows)
                assert state_of(ref, twin) == state_of(a, device.id)
    finally:
        for s in stores:
            s.close()


def derived(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What derivation added to each position."""
    keys = ("fix_time", "event_code", "odometer_km", "hours")
    return sorted(tuple(round(r[k], 6) if isinstance(r[k], float) else r[k] for k in keys)
                  for r in rows)  # fmt: skip


def state_of(hub: Any, device_id: int) -> dict[str, Any]:
    """A device's derived state as stored, floats rounded."""
    with hub.store.engine.connect() as conn:
        state = conn.execute(
            sa.select(states_t.c.state).where(states_t.c.device_id == device_id)
        ).scalar_one()
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in state.items()}


async def test_on_sqlite_one_process_holds_everything_and_no_table_is_touched(
    tmp_path: Path,
) -> None:
    src = counting()
    hub = make_hub(tmp_path, src)
    ids = set(add_connections(hub, 2))
    try:
        assert isinstance(hub.cluster, LocalCluster)
        async with running(hub):
            await until(lambda: set(hub.runners) == ids, 10)
            assert await hub.cluster.claim(connection_resource(1))
            nodes = await hub.cluster.describe()
            held = {x["resource"] for x in nodes[0]["leases"]}
            assert held == {MAINTENANCE} | {connection_resource(i) for i in ids}
        with hub.store.engine.connect() as conn:
            for t in (leases_t, cluster_nodes_t):
                assert conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() == 0
    finally:
        hub.store.close()


@pg
async def test_sinks_move_with_their_in_flight_batch_and_lose_nothing(
    pg_url: str, tmp_path: Path, patient_clock: Any
) -> None:
    from gpshub_startrack_relay.testing import Receiver, serve_receiver

    clock = TrioClock(EPOCH)
    key = SecretBox.generate_key().encode()

    def new_hub(name: str) -> Any:
        return make_hub(tmp_path / name, db_url=pg_url, clock=clock, secret_key=key,
                        use_entry_points=True, lease_s=LEASE, change_fallback_s=5.0,
                        outbound_allow_networks=("127.0.0.0/8",), status_check_s=3600.0,
                        delivery_poll_s=2.0)  # fmt: skip

    a, b = new_hub("a"), new_hub("b")
    store = a.store
    client = store.create_client("ACME").id or 0
    devices = [
        store.create_device(client, name=f"truck {i}", license_plate=f"P-{i}00ABC",
                            imei=f"35874105030248{i}", remote_id=f"unit-{i}").id or 0
        for i in range(3)
    ]  # fmt: skip
    receiver = Receiver()
    sent: list[tuple[int, datetime]] = []

    async def feed(hub: Any, start: int, count: int) -> None:
        items = []
        for d in devices:
            for i in range(start, start + count):
                t = EPOCH + timedelta(seconds=10 * i)
                items.append(
                    IngestItem(d, None, PositionFix(t, 14.6 + i / 1e4, -90.5, speed_kmh=30.0))
                )
                sent.append((d, t))
        await hub.pipeline.submit(items)

    def per_sink() -> dict[int, Counter[tuple[int, str]]]:
        """Each sink's delivered objects (vid, event time), counted."""
        out: dict[int, Counter[tuple[int, str]]] = {s: Counter() for s in sinks}
        for r in receiver.delivered("/json2"):
            sink_id = int(str(r.webhook_id).split("_")[2])
            out[sink_id].update((o["vid"], o["event_time"]) for o in r.body[1])
        return out

    def all_delivered() -> bool:
        return all(len(c) == len(sent) for c in per_sink().values())

    try:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_receiver, receiver)
            sinks = [
                store.sinks.create(client, name=f"relay {i}", kind="startrack-relay",
                                   format="startrack-json2", purpose="locations",
                                   settings={"url": url + "/json2"}, secrets={"headers": {}}).id
                for i in range(4)
            ]  # fmt: skip
            async with running(a):
                await until(lambda: set(a.delivery.workers) == set(sinks), 15)
                async with running(b):
                    await until(lambda: len(b.delivery.workers) == 2, 3 * LEASE)
                    await until(lambda: len(a.delivery.workers) == 2, LEASE)
                    assert not set(a.delivery.workers) & set(b.delivery.workers)
                    await feed(a, 0, 10)
                    await until(all_delivered, 60)
                    # b's receiver hangs with a batch of each sink in flight; b hangs too
                    gate = trio.Event()
                    receiver.hang = gate
                    before = len(receiver.requests)
                    await feed(b, 10, 10)
                    await until(lambda: len(receiver.requests) >= before + 4, 60)
                    in_flight = {
                        int(str(r.received.webhook_id).split("_")[2]): r.received.webhook_id
                        for r in receiver.requests[before:]
                    }
                    moved = set(b.delivery.workers)
                    assert len(moved) == 2 and moved <= set(in_flight)
                    b.cluster.stop_renewing()
                    await until(lambda: not b.delivery.workers, LEASE)
                    receiver.hang = None
                    gate.set()
                    await until(lambda: set(a.delivery.workers) == set(sinks), 2 * LEASE)
                    await until(all_delivered, 120)
            nursery.cancel_scope.cancel()
        counts = per_sink()
        for sink_id in sinks:
            assert len(counts[sink_id]) == len(sent)  # every location reached every sink
        for sink_id in moved:  # b's in-flight batch went again, with the same id
            again = [r for r in receiver.delivered("/json2") if r.webhook_id == in_flight[sink_id]]
            assert again, f"sink {sink_id}: its in-flight batch was not sent again"
            assert sum(r.received.webhook_id == in_flight[sink_id] for r in receiver.requests) >= 2
            assert max(counts[sink_id].values()) <= 2  # at most that round twice
    finally:
        a.store.close()
        b.store.close()


@pg
async def test_maintenance_runs_in_one_process_at_a_time(
    pg_url: str, tmp_path: Path, patient_clock: Any
) -> None:
    clock = TrioClock(EPOCH)
    key = SecretBox.generate_key().encode()
    settings = {"lease_s": LEASE, "status_check_s": 10.0, "retention_every_s": 10.0}
    hubs = [
        make_hub(tmp_path / n, db_url=pg_url, clock=clock, secret_key=key, **settings)
        for n in ("a", "b")
    ]
    work: dict[str, Counter[int]] = {"status": Counter(), "retention": Counter()}

    def counted(hub: Any, i: int) -> None:
        check_status, run_pass = hub.check_status, hub.housekeeping.run_pass

        async def status() -> None:
            work["status"][i] += 1
            await check_status()

        async def retention() -> Any:
            work["retention"][i] += 1
            return await run_pass()

        hub.check_status, hub.housekeeping.run_pass = status, retention

    for i, hub in enumerate(hubs):
        counted(hub, i)
    a, b = hubs
    try:
        async with running(a), running(b):
            await trio.sleep(120)
            assert set(work["status"]) == set(work["retention"]) == {0}  # a came first
            assert work["status"][0] >= 10
            a.shutdown()  # hands the maintenance lease back
            await until(lambda: work["status"][1] and work["retention"][1], LEASE)
            await trio.sleep(60)
        assert work["status"][1] >= 5 and work["retention"][1] >= 5
    finally:
        for hub in hubs:
            hub.store.close()


@pg
async def test_a_device_marked_offline_elsewhere_comes_back_online_where_it_is_polled(
    pg_url: str, tmp_path: Path, very_patient_clock: Any
) -> None:
    """The status watcher runs in the maintenance lease's holder (a); the device's
    connection is polled by b: b drops what it cached of the device when a marks it
    offline, so its next fix is "back online" and the device online again."""
    src = counting()
    clock = TrioClock(EPOCH)
    key = SecretBox.generate_key().encode()
    settings = {"lease_s": LEASE, "status_check_s": 10.0, "offline_timeout_s": 60,
                "change_check_s": 0.05}  # fmt: skip
    a = make_hub(tmp_path / "a", src, db_url=pg_url, clock=clock, secret_key=key, **settings)
    b = make_hub(tmp_path / "b", src, db_url=pg_url, clock=clock, secret_key=key, **settings)

    def device_row() -> Any:
        (device,) = a.store.list_devices()
        return device

    try:
        async with running(a), running(b):
            assert a.cluster.holds(MAINTENANCE)
            (conn,) = add_connections(b, 1)
            await b.reload_connection(conn)  # what the API does: b takes it (its share)
            assert set(b.runners) == {conn} and not a.runners
            await until(lambda: device_row().status == "online", 60)
            now = clock.now()
            src.silent = (now, now + timedelta(seconds=200))
            await until(lambda: device_row().status == "offline", 200)
            await until(lambda: device_row().status == "online", 200)
            assert set(b.runners) == {conn} and a.cluster.holds(MAINTENANCE)
        rows, _ = a.store.positions.history([device_row().id], limit=100_000)
        back = [r for r in rows if r["fix_time"] >= src.silent[1]]
        assert back and min(back, key=lambda r: r["fix_time"])["event_code"] == 6  # BACK_ONLINE
    finally:
        a.store.close()
        b.store.close()
