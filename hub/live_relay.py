"""The live feed across processes: several hubs on one PostgreSQL database.

Each hub's ``LiveFeed`` hands out what its own pipeline commits.  On PostgreSQL the
``LiveRelay`` makes a WebSocket on any process receive what every process commits:

* **Notices.**  In each batch's transaction, last, the store sends one ``NOTIFY`` on
  ``gpshub_live`` (``announce_batch``), delivered when the batch commits and only if it
  does: a small JSON object that names rows, never carries them: the sender (its
  schema and the process's node id in the cluster, ``hub.cluster``: the channel is the
  whole database's, so other schemas' hubs hear it, and leave it), the id runs of the
  positions stored (``p``) and of the alerts raised (``a``), and status changes as
  (device, client) pairs with the status's data (``d`` and ``v``: devices come online,
  go offline, a connection's state).  A notice stays under ``NOTICE_MAX_BYTES``, well
  under PostgreSQL's 8,000-byte limit; what does not fit goes in several, in order.  The
  status watcher and a connection's state changes announce the same way (``announce``),
  just after their commit, on a connection of the relay's own in autocommit (a process
  that dies between the two loses that notice).
* **Listening.**  Every process ``LISTEN``s on a connection of its own in a thread
  (``hub.pg_listen``, as ``hub.changes`` does), skips its own notices, reads the
  rows a notice names (only while it has live subscribers), builds the very messages its
  own pipeline would (``hub.pipeline.batch_messages``) and publishes them to its
  ``LiveFeed``, notice after notice: each device's messages arrive in commit order, and
  the feed's slow-subscriber rule applies to them as to local ones.  Like the local
  publisher, it first applies the changes committed before it read the rows (a socket
  whose token was revoked gets nothing newer).
* **Catching up.**  Notices sent while the listening connection was down are lost: after
  a reconnection the relay reads the positions and alerts with ids above the lowest id
  it handled in the ``catch_up_s`` before the connection was lost, leaves out those it
  handled already (its own included: it remembers the id runs of the last
  ``catch_up_s``) and publishes the rest in id order, with the current status of the
  devices whose status changed in the ``catch_up_s`` before (again, perhaps), and the
  current state of each connection whose state differs from the last one its feed was
  told (the relay remembers, per connection, the state of its own announcements and of
  the notices it heard, and starts from the table's), for each of its devices.

On SQLite (one process) the relay does nothing: no notice, no thread, no query.
"""

from __future__ import annotations

import bisect
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
import trio
from sqlalchemy.engine import Engine

from hub import pg_listen
from hub.blocking import run_blocking
from hub.livefeed import LiveMessage
from hub.models import ConnectionState, alerts_t, connections_t, devices_t, positions_t
from hub.pipeline import batch_messages, device_status_messages, status_data
from hub.positions import POSITION_COLUMNS, WriteResult

if TYPE_CHECKING:
    from hub.changes import ChangeFeed
    from hub.core import Hub
    from hub.livefeed import LiveFeed

log = logging.getLogger(__name__)

CHANNEL = "gpshub_live"
NOTICE_MAX_BYTES = 4000  # PostgreSQL refuses a payload of 8,000 bytes or more
MAX_ERROR_CHARS = 500  # a connection's last error, as far as a notice carries it
READ_CHUNK = 1000
UNANNOUNCED_STATES = frozenset({ConnectionState.NEW, ConnectionState.DISABLED})
"""Connection states set by an edit (saved, disabled), not told to the live feeds."""
START_WAIT_S = 30.0  # how long start-up waits for the first LISTEN

Runs = list[list[int]]
Pairs = list[tuple[int, int]]
ConnectionRow = tuple[int, str, str | None]  # a connection's client, state, last error


def id_runs(ids: Iterable[int]) -> Runs:
    """Ids as sorted ``[first, last]`` runs of consecutive ids."""
    runs: Runs = []
    for i in sorted(set(ids)):
        if runs and runs[-1][1] == i - 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return runs


def make_notices(
    sender: str,
    positions: Sequence[Sequence[int]] = (),
    alerts: Sequence[Sequence[int]] = (),
    statuses: Sequence[tuple[int, int]] = (),
    data: dict[str, Any] | None = None,
    limit: int = NOTICE_MAX_BYTES,
) -> list[str]:
    """The payloads telling of positions, status changes (``statuses`` with ``data``)
    and alerts, in that order, each at most ``limit`` bytes (usually one)."""
    if data is not None and "last_error" in data and isinstance(data["last_error"], str):
        data = {**data, "last_error": data["last_error"][:MAX_ERROR_CHARS]}
    head = orjson.dumps({"n": sender, "v": data}) if statuses else orjson.dumps({"n": sender})
    budget = limit - len(head) - 40  # the keys and brackets of the lists
    notices: list[str] = []
    current: dict[str, list[Any]] = {}
    used = 0
    for key, items in (("p", positions), ("d", statuses), ("a", alerts)):
        for item in items:
            size = len(orjson.dumps(item)) + 1
            if used + size > budget and current:
                notices.append(_encode(sender, current, data))
                current, used = {}, 0
            current.setdefault(key, []).append(item)
            used += size
    if current:
        notices.append(_encode(sender, current, data))
    return notices


def _encode(sender: str, parts: dict[str, list[Any]], data: dict[str, Any] | None) -> str:
    body: dict[str, Any] = {"n": sender, **parts}
    if "d" in parts:
        body["v"] = data
    return orjson.dumps(body).decode()


@dataclass(slots=True)
class Notice:
    """A notice as received: the rows and status changes it tells of."""

    sender: str
    positions: Runs
    alerts: Runs
    statuses: Pairs
    data: dict[str, Any] | None

    @classmethod
    def parse(cls, payload: str) -> Notice | None:
        """The notice, or ``None`` for a payload that is not one (logged)."""
        try:
            body = orjson.loads(payload)
            return cls(
                str(body["n"]),
                [[int(lo), int(hi)] for lo, hi in body.get("p", ())],
                [[int(lo), int(hi)] for lo, hi in body.get("a", ())],
                [(int(d), int(c)) for d, c in body.get("d", ())],
                body.get("v") if isinstance(body.get("v"), dict) else None,
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("ignoring a live notice that is not one (%s): %.80r", exc, payload)
            return None


class HandledIds:
    """The id runs of one table handled in the last ``keep_s`` seconds (thread-safe),
    kept in order of their first id too, so that looking ids up costs a bisection."""

    LOOK_BACK = 16  # runs looked at before an id: they overlap only when handled twice

    def __init__(self, keep_s: float) -> None:
        self.keep_s = keep_s
        self.seen = 0  # the highest id handled (or present at start)
        self._runs: deque[tuple[float, int, int]] = deque()  # in the order added
        self._starts: list[int] = []  # the runs' first ids, sorted
        self._ends: list[int] = []  # and their last ids, in the same order
        self._lock = threading.Lock()

    def add(self, runs: Iterable[Sequence[int]]) -> None:
        now = time.monotonic()
        with self._lock:
            for lo, hi in runs:
                self._runs.append((now, lo, hi))
                k = bisect.bisect_right(self._starts, lo)
                self._starts.insert(k, lo)
                self._ends.insert(k, hi)
                self.seen = max(self.seen, hi)
            while self._runs and self._runs[0][0] < now - self.keep_s:
                _, lo, hi = self._runs.popleft()
                k = bisect.bisect_left(self._starts, lo)
                while self._ends[k] != hi:
                    k += 1
                del self._starts[k], self._ends[k]

    def floor(self, since: float) -> int:
        """The lowest id handled from ``since`` (monotonic) on, less one; ``seen``
        when nothing was handled since then."""
        with self._lock:
            los = [lo for t, lo, _ in self._runs if t >= since]
            return min(los) - 1 if los else self.seen

    def missing(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` not handled (by the runs kept)."""
        out = []
        with self._lock:
            starts, ends = self._starts, self._ends
            for i in ids:
                k = bisect.bisect_right(starts, i) - 1
                stop = max(-1, k - self.LOOK_BACK)
                while k > stop and ends[k] < i:
                    k -= 1
                if k == stop:
                    out.append(i)
        return out


_SHOWN_POSITION = [c for c in POSITION_COLUMNS if c != "raw"]


def read_positions(conn: sa.Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The stored positions with these ids, as ``write_batch`` reports them (without
    ``raw``), each with its device's ``client_id``; oldest fix first."""
    p = positions_t
    cols = [p.c[c] for c in _SHOWN_POSITION]
    q = (
        sa.select(*cols, devices_t.c.client_id.label("_client"))
        .join(devices_t, devices_t.c.id == p.c.device_id)
        .where(p.c.id.in_(ids))
    )
    rows = [dict(r._mapping) for r in conn.execute(q)]
    rows.sort(key=lambda r: (r["fix_time"], r["id"]))
    return rows


def read_alerts(conn: sa.Connection, ids: list[int]) -> list[dict[str, Any]]:
    """The stored alerts with these ids as the pipeline reports them, in id order."""
    a = alerts_t
    q = sa.select(a.c.id, a.c.client_id, a.c.payload).where(a.c.id.in_(ids)).order_by(a.c.id)
    return [
        {"eventId": int(i), **(payload or {}), "clientId": int(c)}
        for i, c, payload in conn.execute(q)
    ]


def _ids_of(runs: Runs) -> list[int]:
    return [i for lo, hi in runs for i in range(lo, hi + 1)]


class LiveRelay:
    """See the module docstring.  ``enabled`` only on PostgreSQL."""

    def __init__(
        self,
        engine: Engine,
        live: LiveFeed,
        *,
        changes: ChangeFeed | None = None,
        write_turn: trio.Lock | None = None,
        catch_up_s: float = 120.0,
        check_s: float = 1.0,
        retry_s: float = 1.0,
        tag: str | None = None,
    ) -> None:
        self.engine = engine
        self.live = live
        self.changes = changes
        self.write_turn = write_turn  # held while catching up: no own batch half-recorded
        self.enabled = engine.dialect.name == "postgresql"
        self.tag = tag or secrets.token_hex(6)
        """This process in its notices: the cluster's node id in a hub (``for_hub``)."""
        self.scope: str | None = None  # the schema: notices of other schemas are not ours
        self.check_s = check_s
        self.retry_s = retry_s
        self.catch_up_s = catch_up_s
        self.positions = HandledIds(catch_up_s)
        self.alerts = HandledIds(catch_up_s)
        self.listening = trio.Event()
        """Set once the first ``LISTEN`` is in place (what tests wait for)."""
        self.listener_pid: int | None = None  # the listening connection's server process
        self.notices_sent = 0
        self.notices_received = 0
        self.relayed = 0  # messages published from other processes' notices
        self.caught_up = 0  # of which read when catching up
        self.reconnections = 0
        self._sending: Any = None  # a psycopg connection, made on first use
        self._send_lock = threading.Lock()
        self._running = False  # the connection notices go on is kept while running
        self._inbox: list[Notice | None] = []  # None: the listener (re)connected
        self._ready = trio.Event()
        self._lost_at: float | None = None
        self._lost_wall: datetime | None = None
        self._states: dict[int, str] = {}  # connection -> the state this feed was told
        self._states_lock = threading.Lock()

    @classmethod
    def for_hub(cls, hub: Hub) -> LiveRelay:
        """The hub's relay, hooked to its pipeline (does nothing on SQLite)."""
        relay = cls(
            hub.store.engine,
            hub.live,
            changes=hub.changes,
            write_turn=hub.pipeline.write_turn,
            check_s=hub.settings.change_check_s,
            tag=hub.cluster.node.node_id,  # what the logs and /api/cluster call it
        )
        if relay.enabled:
            hub.store.positions.before_commit = relay.announce_batch
        return relay

    # -- telling ---------------------------------------------------------------------
    def announce_batch(self, conn: sa.Connection, result: WriteResult, now: datetime) -> None:
        """Tell the other processes of a batch, in its transaction (the store calls it
        last): PostgreSQL delivers the notice when, and only if, the batch commits."""
        clients = result.clients
        statuses = [(d, clients[d]) for d in result.came_online]
        p_runs = id_runs(int(r["id"]) for r in result.inserted)
        a_runs = id_runs(int(a["eventId"]) for a in result.alerts)
        if not (p_runs or a_runs or statuses):
            return
        self.positions.add(p_runs)  # ours: never read back when catching up
        self.alerts.add(a_runs)
        raw = conn.connection.driver_connection  # psycopg's: no SQLAlchemy on the hot path
        assert raw is not None
        if self.scope is None:
            row = raw.execute("SELECT current_schema()").fetchone()
            self.scope = str(row[0]) if row else ""
        data = status_data("online", now) if statuses else None
        for payload in make_notices(self.sender, p_runs, a_runs, statuses, data):
            raw.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload), prepare=True)
            self.notices_sent += 1

    async def announce(
        self,
        *,
        alerts: Iterable[int] = (),
        statuses: Iterable[tuple[int, int]] = (),
        data: dict[str, Any] | None = None,
    ) -> None:
        """Tell the other processes of status changes (``statuses``: (device, client)
        pairs, ``data``: the message's) and alerts committed outside the pipeline."""
        alerts, statuses = list(alerts), list(statuses)
        if self.enabled and (alerts or statuses):
            await run_blocking(
                lambda: self.announce_sync(alerts=alerts, statuses=statuses, data=data)
            )

    def announce_sync(
        self,
        *,
        positions: Iterable[int] = (),
        alerts: Iterable[int] = (),
        statuses: Iterable[tuple[int, int]] = (),
        data: dict[str, Any] | None = None,
    ) -> None:
        if not self.enabled:
            return
        p_runs, a_runs = id_runs(positions), id_runs(alerts)
        self.positions.add(p_runs)  # ours: never read back when catching up
        self.alerts.add(a_runs)
        pairs = list(statuses)
        if pairs:
            self._told(data)  # this process's feed published it
        if not (p_runs or a_runs or pairs):
            return
        with self._send_lock:  # notices go out in the order of the commits
            try:
                self._send(p_runs, a_runs, pairs, data)
            except Exception as exc:
                if self._sending is not None:
                    self._sending.close()
                    self._sending = None
                log.warning("could not tell the other processes' live feeds (%s)", exc)

    def _send(self, p_runs: Runs, a_runs: Runs, pairs: Pairs, data: dict[str, Any] | None) -> None:
        """``NOTIFY`` on a connection of its own, in autocommit: one round trip a notice
        (a pooled connection's checkout, transaction and reset cost three)."""
        if self._sending is None:
            import psycopg

            cargs, cparams = self.engine.dialect.create_connect_args(self.engine.url)
            conn = psycopg.connect(*cargs, **cparams, autocommit=True)
            row = conn.execute("SELECT current_schema()").fetchone()
            self.scope = str(row[0]) if row else ""
            self._sending = conn
        for payload in make_notices(self.sender, p_runs, a_runs, pairs, data):
            self._sending.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload), prepare=True)
            self.notices_sent += 1
        if not self._running:  # before the relay runs or after (the pipeline drains)
            self._sending.close()
            self._sending = None

    def close(self) -> None:
        """Close the connection notices are sent on (a new one is made when needed)."""
        with self._send_lock:
            if self._sending is not None:
                self._sending.close()
                self._sending = None

    @property
    def sender(self) -> str:
        """What notices of this process are signed with: its schema and its tag."""
        return f"{self.scope}/{self.tag}"

    def _theirs(self, notice: Notice) -> bool:
        """Whether a notice is another process's, in this installation's schema
        (notification channels are per database: other schemas' hubs hear it too)."""
        scope, _, tag = notice.sender.rpartition("/")
        return scope == self.scope and tag != self.tag

    # -- listening -------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and publish what other processes commit, until cancelled."""
        if not self.enabled:
            task_status.started()
            return
        token = trio.lowlevel.current_trio_token()
        stop = threading.Event()

        def deliver(items: list[Notice | None]) -> None:  # from the listener thread
            self._inbox.extend(items)
            self._ready.set()

        def hand_over(items: list[Notice | None]) -> bool:
            try:
                token.run_sync_soon(deliver, items)
            except trio.RunFinishedError:
                return False
            return True

        self._running = True
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._in_thread, stop, hand_over)
                nursery.start_soon(self._work)
                # a socket opened once the hub serves gets what any process commits
                with trio.move_on_after(START_WAIT_S):
                    await self.listening.wait()
                task_status.started()
        finally:
            stop.set()
            self._running = False
            self.close()

    async def _work(self) -> None:
        while True:
            await self._ready.wait()
            self._ready = trio.Event()
            items, self._inbox = self._inbox, []
            group: list[Notice] = []  # notices that came in while others were read: together
            for item in items:
                if item is not None:
                    group.append(item)
                    continue
                await self._guarded(self._handle(group))
                group = []
                await self._guarded(self._connected())
            await self._guarded(self._handle(group))

    async def _guarded(self, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            log.exception("relaying live messages of another process failed")

    async def _in_thread(
        self, stop: threading.Event, hand_over: Callable[[list[Notice | None]], bool]
    ) -> None:
        limiter = trio.CapacityLimiter(1)  # its own: the listener takes no store thread
        while not stop.is_set():
            try:
                await trio.to_thread.run_sync(
                    self._listen, stop, hand_over, abandon_on_cancel=True, limiter=limiter
                )
                return
            except Exception:
                log.exception("the live listener stopped; starting it again")
                self._mark_lost()
                await trio.sleep(self.retry_s)

    def _listen(self, stop: threading.Event, hand_over: Callable[[list[Any]], bool]) -> None:
        """``LISTEN`` on a connection of its own (``hub.pg_listen``): hand over ``None``
        at each (re)connection, then the other processes' notices of this schema."""

        def connected(conn: Any) -> bool:
            row = conn.execute("SELECT current_schema()").fetchone()
            self.scope = str(row[0]) if row else ""
            self.listener_pid = conn.info.backend_pid
            return hand_over([None])

        def notified(payload: str) -> bool:
            notice = Notice.parse(payload)
            if notice is None or not self._theirs(notice):
                return True
            return hand_over([notice])

        pg_listen.listen(
            self.engine,
            CHANNEL,
            stop,
            what="other processes' live messages",
            log=log,
            connected=connected,
            notified=notified,
            lost=self._mark_lost,
            check_s=self.check_s,
            retry_s=self.retry_s,
        )

    def _mark_lost(self) -> None:
        """The listening connection broke: what was committed from now on is caught up."""
        self._lost_at = time.monotonic()
        self._lost_wall = datetime.now(UTC)

    async def _connected(self) -> None:
        """The listener (re)connected: mark the start, or catch up what was missed."""
        if not self.listening.is_set():
            p, a = await run_blocking(self._heads)
            self.positions.seen, self.alerts.seen = p, a
            await run_blocking(self._read_states)
            self.listening.set()
            return
        self.reconnections += 1
        lost_at = self._lost_at if self._lost_at is not None else time.monotonic()
        since = lost_at - self.catch_up_s
        since_wall = (self._lost_wall or datetime.now(UTC)) - timedelta(seconds=self.catch_up_s)
        if not self.live.subscriber_count:
            p, a = await run_blocking(self._heads)  # nobody to tell: start afresh
            self.positions.add([[p, p]] if p else [])
            self.alerts.add([[a, a]] if a else [])
            await run_blocking(self._read_states)
            return
        if self.write_turn is not None:
            async with self.write_turn:  # no own batch committed but not yet recorded
                messages = await run_blocking(self._read_missed, since, since_wall)
        else:
            messages = await run_blocking(self._read_missed, since, since_wall)
        self.caught_up += len(messages)
        await self._publish(messages, head=None)

    def _heads(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            p = conn.execute(sa.select(sa.func.max(positions_t.c.id))).scalar()
            a = conn.execute(sa.select(sa.func.max(alerts_t.c.id))).scalar()
        return int(p or 0), int(a or 0)

    def _told(self, data: dict[str, Any] | None) -> None:
        """Remember a connection's state told to this process's feed (status data that
        are not a connection's are not remembered)."""
        if data is not None and isinstance(data.get("connection_id"), int) and "state" in data:
            with self._states_lock:
                self._states[data["connection_id"]] = str(data["state"])

    def _read_states(self, conn: sa.Connection | None = None) -> dict[int, ConnectionRow]:
        """Every connection's client, state and last error, taken from now on as what
        this feed has been told."""
        c = connections_t
        q = sa.select(c.c.id, c.c.client_id, c.c.state, c.c.last_error)
        if conn is None:
            with self.engine.connect() as own:
                rows = own.execute(q).all()
        else:
            rows = conn.execute(q).all()
        current = {int(i): (int(client), str(st), err) for i, client, st, err in rows}
        with self._states_lock:
            self._states = {i: st for i, (_, st, _) in current.items()}
        return current

    def _connection_messages(self, conn: sa.Connection) -> list[LiveMessage]:
        """The current state of the connections whose state this feed was not told (a
        notice lost), for each of their devices, as ``Hub.publish_connection_status``
        sends it; oldest connection first.  Not the states an edit sets (a runner never
        announces them, nor does a catch-up)."""
        with self._states_lock:
            told = dict(self._states)
        current = self._read_states(conn)
        changed = {
            i: row
            for i, row in current.items()
            if row[1] != told.get(i) and row[1] not in UNANNOUNCED_STATES
        }
        if not changed:
            return []
        d = devices_t
        linked = sa.and_(d.c.connection_id.in_(list(changed)), d.c.upstream_id != "")
        devices = conn.execute(  # those it polls (``Store.device_refs``)
            sa.select(d.c.id, d.c.connection_id)
            .where(linked, d.c.upstream_id.is_not(None))
            .order_by(d.c.connection_id, d.c.id)
        )
        messages: list[LiveMessage] = []
        for device, connection in devices:
            client, state, error = changed[int(connection)]
            if isinstance(error, str):
                error = error[:MAX_ERROR_CHARS]  # as a notice would have carried it
            data = {"connection_id": int(connection), "state": state, "last_error": error}
            messages += device_status_messages([(int(device), client)], data)
        return messages

    def _read_missed(self, since: float, since_wall: datetime) -> list[LiveMessage]:
        """The messages of the positions and alerts not handled, in id order, the
        current status of the devices whose status changed from ``since_wall`` on, and
        that of the connections whose state this feed was not told."""
        floor_p, floor_a = self.positions.floor(since), self.alerts.floor(since)
        with self.engine.connect() as conn:
            p_ids = self.positions.missing(
                conn.execute(
                    sa.select(positions_t.c.id).where(positions_t.c.id > floor_p).order_by("id")
                ).scalars()
            )
            a_ids = self.alerts.missing(
                conn.execute(
                    sa.select(alerts_t.c.id).where(alerts_t.c.id > floor_a).order_by("id")
                ).scalars()
            )
            messages: list[LiveMessage] = []
            for k in range(0, len(p_ids), READ_CHUNK):
                chunk = read_positions(conn, p_ids[k : k + READ_CHUNK])
                chunk.sort(key=lambda r: r["id"])
                messages += self._position_messages(chunk)
            d = devices_t
            changed = conn.execute(
                sa.select(d.c.id, d.c.client_id, d.c.status, d.c.status_at)
                .where(d.c.status_at >= since_wall)
                .order_by(d.c.status_at, d.c.id)
            )
            for device, client, status, status_at in changed:
                messages += device_status_messages(
                    [(int(device), int(client))], status_data(str(status), status_at)
                )
            messages += self._connection_messages(conn)
            for k in range(0, len(a_ids), READ_CHUNK):
                messages += self._alert_messages(read_alerts(conn, a_ids[k : k + READ_CHUNK]))
        self.positions.add(id_runs(p_ids))
        self.alerts.add(id_runs(a_ids))
        return messages

    async def _handle(self, notices: list[Notice]) -> None:
        if not notices:
            return
        self.notices_received += len(notices)
        for notice in notices:
            if notice.statuses:
                self._told(notice.data)
        if not self.live.subscriber_count:
            for notice in notices:
                self.positions.add(notice.positions)
                self.alerts.add(notice.alerts)
            return
        messages, head = await run_blocking(self._read_notices, notices)
        await self._publish(messages, head)

    def _read_notices(self, notices: list[Notice]) -> tuple[list[LiveMessage], int]:
        """The notices' messages (of rows not handled yet), in their order, and the
        change log's head; one query for the rows of all."""
        wanted: list[tuple[list[int], list[int]]] = []
        for notice in notices:
            wanted.append(
                (
                    self.positions.missing(_ids_of(notice.positions)),
                    self.alerts.missing(_ids_of(notice.alerts)),
                )
            )
            self.positions.add(notice.positions)
            self.alerts.add(notice.alerts)
        p_all = [i for p_ids, _ in wanted for i in p_ids]
        a_all = [i for _, a_ids in wanted for i in a_ids]
        rows: dict[int, dict[str, Any]] = {}
        alerts: dict[int, dict[str, Any]] = {}
        if p_all or a_all:
            with self.engine.connect() as conn:
                for k in range(0, len(p_all), READ_CHUNK):
                    rows.update(
                        (r["id"], r) for r in read_positions(conn, p_all[k : k + READ_CHUNK])
                    )
                for k in range(0, len(a_all), READ_CHUNK):
                    chunk = read_alerts(conn, a_all[k : k + READ_CHUNK])
                    alerts.update((a["eventId"], a) for a in chunk)
        messages: list[LiveMessage] = []
        now = datetime.now(UTC)
        for notice, (p_ids, a_ids) in zip(notices, wanted, strict=True):
            result = WriteResult()
            result.inserted = sorted(
                (rows[i] for i in p_ids if i in rows), key=lambda r: (r["fix_time"], r["id"])
            )
            result.clients = {r["device_id"]: r["_client"] for r in result.inserted}
            result.alerts = [alerts[i] for i in a_ids if i in alerts]
            mine = batch_messages(result, now)
            if notice.statuses and notice.data is not None:
                # after the positions, before the alerts: as the local publisher orders them
                n = len(result.inserted)
                mine[n:n] = device_status_messages(notice.statuses, notice.data)
            messages += mine
        head = self.changes.head() if messages and self.changes is not None else 0
        return messages, head

    def _position_messages(self, rows: list[dict[str, Any]]) -> list[LiveMessage]:
        result = WriteResult()
        result.clients = {r["device_id"]: r.pop("_client") for r in rows}
        result.inserted = rows
        return batch_messages(result, datetime.now(UTC))

    def _alert_messages(self, alerts: list[dict[str, Any]]) -> list[LiveMessage]:
        result = WriteResult()
        result.alerts = alerts
        return batch_messages(result, datetime.now(UTC))

    async def _publish(self, messages: list[LiveMessage], head: int | None) -> None:
        if not messages:
            return
        changes = self.changes
        if changes is not None and (head is None or changes.behind(head)):
            try:
                await changes.catch_up()
            except Exception:
                log.exception("reading the change log before relaying live messages failed")
        self.relayed += len(messages)
        self.live.publish(messages)
