"""The ingest writer's own database connection.

The pipeline writes one transaction after another, thousands a second at peak and one
per fix for a push source.  Taking a connection from the pool for each costs about as
much as SQLite spends on a one-fix transaction, and on PostgreSQL the pool's ping is a
round trip of its own.  ``WriterConnection`` keeps one connection for the writer
instead:

* **No ping.**  A connection the server dropped (PostgreSQL restarted) fails its next
  transaction with ``connection_invalidated``; ``PositionStore.write_batch`` then runs
  the batch once more on a new connection, as the pool's ping would have.
* **Its own checkpoint setting (SQLite).**  With ``autocheckpoint`` off, the writer's
  commits never copy the WAL into the database (SQLite otherwise does so, with an
  fsync, in the commit that passes 1,000 pages): the housekeeping's WAL keeper
  checkpoints instead, on a thread of its own (``hub.wal``), and a commit is only an
  append to the WAL.  That is what lets a small batch be written on the event loop's
  thread (``Pipeline``): nothing in it waits for the disk or for a lock.
* **Its own busy timeout (SQLite): 0.**  A transaction that may wait for the write lock
  sets SQLite's usual timeout for its ``BEGIN`` only; one begun ``nowait`` raises
  ``db.WriteLockBusy`` at once instead, having done nothing.
* **One user at a time.**  Should a second thread ask while a transaction is open (a
  test or a tool calling ``write_batch`` besides the pipeline), it gets a pool
  connection, as before.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.engine import Connection, Engine

from hub import db

log = logging.getLogger(__name__)

SQLITE_AUTOCHECKPOINT_PAGES = 1000  # SQLite's default


class WriterConnection:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.autocheckpoint = True
        """SQLite: whether the writer's commits checkpoint the WAL themselves (off while
        the housekeeping's WAL keeper runs)."""
        self._conn: Connection | None = None
        self._applied: bool | None = None  # the autocheckpoint setting of ``_conn``
        self._synchronous: int | None = None  # SQLite's PRAGMA synchronous: 2 is FULL
        self._lock = threading.Lock()

    @property
    def commit_is_cpu_only(self) -> bool:
        """Whether a commit on this connection neither fsyncs nor checkpoints: SQLite
        with ``synchronous`` below ``FULL`` and ``autocheckpoint`` off (known once the
        connection is made)."""
        return (
            self.sqlite
            and not self.autocheckpoint
            and self._synchronous is not None
            and self._synchronous < 2
        )

    @contextmanager
    def transaction(self, *, nowait: bool = False) -> Iterator[Connection]:
        """A write transaction on the held connection, committed on success.

        ``nowait`` (SQLite): raise ``db.WriteLockBusy`` at once, before anything is done,
        if another connection holds the write lock."""
        if not self._lock.acquire(blocking=False):
            with db.write_tx(self.engine) as conn:
                yield conn
            return
        try:
            conn = self._connection()
            conn.execution_options(gpshub_nowait=nowait)  # in place (SQLAlchemy 2)
            waits = self.sqlite and not nowait
            try:
                if waits:  # for the lock, as long as any other connection would
                    self._raw(conn).execute(f"PRAGMA busy_timeout={db.SQLITE_BUSY_TIMEOUT_MS}")
                try:
                    with conn.begin():
                        yield conn
                finally:
                    if waits:
                        self._raw(conn).execute("PRAGMA busy_timeout=0")
            except db.WriteLockBusy:
                raise
            except BaseException:
                self._drop()  # whatever state it was left in, the next batch starts afresh
                raise
        finally:
            self._lock.release()

    @staticmethod
    def _raw(conn: Connection) -> Any:
        return conn.connection.driver_connection

    def _connection(self) -> Connection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._conn = self.engine.connect().execution_options(**db.WRITE)
            self._applied = None
            if self.sqlite:
                raw = self._raw(conn)
                raw.execute("PRAGMA busy_timeout=0")  # see ``transaction``
                self._synchronous = raw.execute("PRAGMA synchronous").fetchone()[0]
        if self.sqlite and self._applied is not self.autocheckpoint:
            pages = SQLITE_AUTOCHECKPOINT_PAGES if self.autocheckpoint else 0
            self._raw(conn).execute(f"PRAGMA wal_autocheckpoint={pages}")
            self._applied = self.autocheckpoint
        return conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.invalidate()  # not back to the pool: its settings are the writer's
                conn.close()
            except Exception as exc:  # a broken connection may fail to say goodbye
                log.debug("closing the writer's connection: %s", exc)

    def close(self) -> None:
        """Give the connection up (the store is closing)."""
        with self._lock:
            self._drop()
