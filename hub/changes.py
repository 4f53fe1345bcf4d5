"""Change propagation: how a change made by any process reaches every running hub.

**Writing.**  Whatever writes the configuration (the store, in ``gpshub serve``, in the
CLI or in another API process) calls ``record_change(conn, kind, op, object_id,
client_id)`` inside the transaction that makes the change.  That adds a row to the
``change_log`` table, so the change and its record commit or roll back together.  On
PostgreSQL it also sends ``NOTIFY gpshub_changes``, which is delivered at commit.
Runtime bookkeeping (a connection's poll status, a sink's delivery progress, a token's
last use) is not a change and is not recorded.

**Reading.**  A running hub has one ``ChangeFeed``.  It remembers the id of the last
row it has handled (``seen``); when woken it reads the rows after it, in id order, and
hands them to the handlers subscribed to their kinds.  It is woken:

* on SQLite, by a watcher thread that reads ``PRAGMA data_version`` on a connection of
  its own every ``check_s`` (1 s).  The value changes whenever another connection
  commits, so an idle database costs one pragma a second and no query;
* on PostgreSQL, by a thread that ``LISTEN``\\ s on a connection of its own
  (``hub.pg_listen``) and wakes the feed at each notification, and also after each
  (re)connection, since notifications sent while it was disconnected are lost;
* on both, every ``fallback_s`` (30 s) whatever happened, as a safety net;
* at once by ``catch_up()``: the API calls it after every request that may have
  changed something, so changes made through this process take effect before the
  answer is sent; the pipeline calls it before it publishes a batch to the live feed
  whenever the log has rows the feed has not handled yet, so a live socket whose
  token was revoked gets nothing committed after the revocation.

The watcher threads keep their own (real) time, so a hub running under trio's mock
clock is not woken every second of mock time.

**Order.**  Ids only grow: the table has ``AUTOINCREMENT`` on SQLite (an id is never
given out again once its row is pruned), and on PostgreSQL a writer takes a
transaction-level advisory lock before it inserts, so ids become visible in the order
they were given out and a reader never steps over a row that commits late.  Rows older
than ``keep`` (a day) are pruned by running hubs.

PostgreSQL's notification channels are per database, not per schema: installations in
different schemas of one database wake each other now and then, which costs a query.

**Handlers** are idempotent: a change made through this process's API has usually
been applied by the route already (a connection's runner restarted, say) and is then
seen again in the log.  They compare what runs with what the database says rather than
replaying operations: a connection's runner is restarted when the connection's
``updated_at`` differs from the one it runs with, a sink's worker likewise, and live
sockets re-authenticate their token.  ``object_id`` is ``None`` when a change concerns
several objects of a kind (of ``client_id``): handlers then look at all of them.

Deleting a client deletes its users, tokens, connections, devices, sinks, rules and
geofences: the store records the client's ``deleted`` row and one per connection,
device and sink.
"""

from __future__ import annotations

import inspect
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
import trio
from sqlalchemy.engine import Engine

from hub import pg_listen
from hub.blocking import run_blocking
from hub.models import change_log_t, utcnow

log = logging.getLogger(__name__)

CHANNEL = "gpshub_changes"  # the PostgreSQL notification channel
CHANGES_LOCK_KEY = 0x6770_6863  # "gphc": the advisory lock of change-log writers
READ_CHUNK = 1000


class ChangeKind(StrEnum):
    CLIENT = "client"
    USER = "user"
    TOKEN = "token"  # noqa: S105 - a kind of object, not a secret
    CONNECTION = "connection"
    DEVICE = "device"
    GEOFENCE = "geofence"  # geofences and geofence groups
    RULE = "rule"
    SINK = "sink"


class ChangeOp(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    DEVICES = "devices"
    """A connection's devices were added or linked to it (its runner may have new work)."""
    OFFLINE = "offline"
    """Devices went offline (PostgreSQL only: the status watcher runs in one process, the
    others drop what their derivation stage cached of them)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log."""

    seq: int
    kind: str
    op: str
    object_id: int | None  # None: several objects of the kind (of ``client_id``)
    client_id: int | None


Handler = Callable[[list[Change]], Awaitable[None] | None]


# -- writing ---------------------------------------------------------------------------------
def record_change(
    conn: sa.Connection,
    kind: ChangeKind,
    op: ChangeOp,
    object_id: int | None = None,
    client_id: int | None = None,
) -> None:
    """Record a change in the caller's transaction (see the module docstring)."""
    record_changes(conn, kind, op, [object_id], client_id)


def record_changes(
    conn: sa.Connection,
    kind: ChangeKind,
    op: ChangeOp,
    object_ids: Iterable[int | None],
    client_id: int | None = None,
) -> None:
    """``record_change`` for several objects of one kind at once."""
    now = utcnow()
    rows = [
        {
            "kind": str(kind),
            "op": str(op),
            "object_id": object_id,
            "client_id": client_id,
            "created_at": now,
        }
        for object_id in object_ids
    ]
    if not rows:
        return
    postgres = conn.dialect.name == "postgresql"
    if postgres:  # ids visible in the order they are given out (held until commit)
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHANGES_LOCK_KEY})
    conn.execute(sa.insert(change_log_t), rows)
    if postgres:
        conn.execute(sa.text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def latest_seq(engine: Engine) -> int:
    """The id of the newest row of the change log (0 when it is empty)."""
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(change_log_t.c.id))).scalar() or 0)


def read_changes(engine: Engine, after: int, limit: int = READ_CHUNK) -> list[Change]:
    """Up to ``limit`` changes with an id above ``after``, oldest first."""
    t = change_log_t
    q = (
        sa.select(t.c.id, t.c.kind, t.c.op, t.c.object_id, t.c.client_id)
        .where(t.c.id > after)
        .order_by(t.c.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [Change(int(i), k, o, obj, c) for i, k, o, obj, c in conn.execute(q)]


def prune_changes(engine: Engine, keep: timedelta) -> int:
    """Delete rows older than ``keep``; how many."""
    from hub import db

    with db.write_tx(engine) as conn:
        q = sa.delete(change_log_t).where(change_log_t.c.created_at < utcnow() - keep)
        return int(conn.execute(q).rowcount or 0)


# -- reading ---------------------------------------------------------------------------------
class ChangeFeed:
    """Hands the changes any process records to this process's handlers.

    ``subscribe`` handlers, then ``run`` the feed (a background task); ``catch_up``
    applies what is new at once.  Usable on its own by anything that needs to follow
    changes (several hubs on one database, for instance).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        check_s: float = 1.0,
        fallback_s: float = 30.0,
        keep: timedelta = timedelta(days=1),
    ) -> None:
        self.engine = engine
        self.check_s = check_s
        self.fallback_s = fallback_s
        self.keep = keep
        self.seen: int | None = None
        """The id of the last change handled (``None`` until the feed starts)."""
        self.handled = 0
        self.wakeups = 0
        self._handlers: list[tuple[frozenset[str], Handler]] = []
        self._lock = trio.Lock()
        self._poked = trio.Event()
        self._pruned_at: float | None = None
        self._failing = False

    def subscribe(self, handler: Handler, kinds: Collection[ChangeKind]) -> None:
        """Call ``handler`` (sync or async) with each run of new changes of ``kinds``.

        Handlers run one after another, in subscription order; an exception is logged
        and does not stop the others.  They must not wait for the pipeline.
        """
        self._handlers.append((frozenset(str(k) for k in kinds), handler))

    def head(self) -> int:
        """The newest id in the log (blocking)."""
        return latest_seq(self.engine)

    def behind(self, head: int) -> bool:
        """Whether the log has rows up to ``head`` that have not been handled yet."""
        return self.seen is not None and head > self.seen

    async def start(self) -> None:
        """Begin after the changes already in the log: a starting hub reads everything."""
        async with self._lock:
            if self.seen is None:
                self.seen = await run_blocking(self.head)

    async def catch_up(self) -> int:
        """Read and handle every change recorded since the last call; how many."""
        async with self._lock:
            if self.seen is None:
                return 0  # not started: nothing runs that changes could concern
            count = 0
            while True:
                changes = await run_blocking(read_changes, self.engine, self.seen)
                if not changes:
                    break
                self.seen = changes[-1].seq
                count += len(changes)
                await self._dispatch(changes)
                if len(changes) < READ_CHUNK:
                    break
            self.handled += count
        await self._prune_now_and_then()
        return count

    async def _dispatch(self, changes: list[Change]) -> None:
        for kinds, handler in self._handlers:
            mine = [c for c in changes if c.kind in kinds]
            if not mine:
                continue
            try:
                result = handler(mine)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handling %d change(s) failed", len(mine))

    async def _prune_now_and_then(self) -> None:
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < 3600:
            return
        self._pruned_at = now
        try:
            await run_blocking(prune_changes, self.engine, self.keep)
        except Exception:
            log.warning("pruning the change log failed; trying again later", exc_info=True)

    def poke(self) -> None:
        """Wake the feed (from the trio thread)."""
        self._poked.set()

    # -- the background task ---------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow the log until cancelled (see the module docstring)."""
        await self.start()
        token = trio.lowlevel.current_trio_token()
        stop = threading.Event()

        def wake() -> None:  # from the watcher thread
            token.run_sync_soon(self.poke)

        watcher = (
            self._watch_postgres
            if self.engine.dialect.name == "postgresql"
            else (self._watch_sqlite)
        )
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._in_thread, watcher, stop, wake)
                task_status.started()
                while True:
                    await self._poked.wait()
                    self._poked = trio.Event()
                    self.wakeups += 1
                    await self._catch_up_logged()
        finally:
            stop.set()

    async def _catch_up_logged(self) -> None:
        try:
            await self.catch_up()
        except Exception as exc:
            if not self._failing:
                log.warning("reading the change log failed (%s); trying again", exc)
            self._failing = True
            await trio.sleep(min(5.0, self.fallback_s))
            self.poke()
            return
        if self._failing:
            log.info("reading the change log works again")
            self._failing = False

    async def _in_thread(
        self,
        watcher: Callable[[threading.Event, Callable[[], None]], None],
        stop: threading.Event,
        wake: Callable[[], None],
    ) -> None:
        # a limiter of its own: the watcher does not take a worker thread from the store
        try:
            await trio.to_thread.run_sync(
                watcher, stop, wake, abandon_on_cancel=True, limiter=trio.CapacityLimiter(1)
            )
        except Exception:
            log.exception("the change watcher stopped; changes are read every %s s only",
                          self.fallback_s)  # fmt: skip
            while True:
                await trio.sleep(self.fallback_s)
                self.poke()

    def _watch_sqlite(self, stop: threading.Event, wake: Callable[[], None]) -> None:
        """Wake the feed when ``PRAGMA data_version`` moves (another connection committed),
        and every ``fallback_s`` anyway."""
        path = self.engine.url.database
        conn: sqlite3.Connection | None = None
        if path and path != ":memory:" and not path.startswith("file:"):
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        last: Any = None
        fallback_at = time.monotonic() + self.fallback_s
        try:
            while not stop.wait(self.check_s):
                changed = False
                if conn is not None:
                    try:
                        version = conn.execute("PRAGMA data_version").fetchone()[0]
                    except sqlite3.Error as exc:
                        log.debug("PRAGMA data_version failed: %s", exc)
                        version = None
                    changed = version is not None and version != last
                    last = version if version is not None else last
                if changed or time.monotonic() >= fallback_at:
                    fallback_at = time.monotonic() + self.fallback_s
                    if not _wake(wake):
                        return
        finally:
            if conn is not None:
                conn.close()

    def _watch_postgres(self, stop: threading.Event, wake: Callable[[], None]) -> None:
        """``LISTEN`` for notifications on a connection of its own (``hub.pg_listen``);
        wake the feed at each, after each (re)connection and every ``fallback_s``."""
        fallback_at = time.monotonic() + self.fallback_s

        def woken() -> bool:
            nonlocal fallback_at
            fallback_at = time.monotonic() + self.fallback_s
            return _wake(wake)

        def idle() -> bool:
            return time.monotonic() < fallback_at or woken()

        pg_listen.listen(
            self.engine,
            CHANNEL,
            stop,
            what="changes",
            log=log,
            connected=lambda _conn: woken(),  # what was notified while disconnected is lost
            notified=lambda _payload: woken(),
            idle=idle,
            check_s=self.check_s,
        )


def _wake(wake: Callable[[], None]) -> bool:
    """Wake the feed; ``False`` once the trio run is over."""
    try:
        wake()
    except trio.RunFinishedError:
        return False
    return True
