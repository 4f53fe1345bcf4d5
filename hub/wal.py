"""Keeping SQLite's write-ahead log small.

SQLite checkpoints the WAL into the database by itself every 1,000 pages (except on the
pipeline's connection while the keeper runs: ``hub.writer_connection``; the keeper's
checks checkpoint ``PASSIVE`` instead, every ``WAL_CHECK_S`` of writes, on a thread of
their own), and starts it over from the beginning when no reader still needs its frames;
``journal_size_limit`` (``hub.db``) then cuts the file back.  Under constant writes with overlapping readers
(API calls, sink workers, the live feed's snapshots) that moment may never come, and
the WAL grows without bound: every commit appends.  ``WalKeeper.check`` bounds it:

* a WAL larger than ``limit`` is checkpointed by force: ``PASSIVE`` first (it copies
  what it can without blocking anybody), then ``TRUNCATE``, which takes the write lock,
  waits for the readers of older snapshots and empties the file.  ``TRUNCATE`` blocks
  writers while it waits, so it gives up after ``wait_ms`` and is tried again at the
  next check.  SQLite's lock is not fair: under back-to-back write transactions a
  checkpoint waiting for it may never get it, so the hub runs ``TRUNCATE`` in the
  pipeline's turn, between two of its transactions (``Pipeline.write_turn``);
* once nothing has been written for a while (the caller says so: ``idle``), the WAL is
  truncated too, so an idle hub leaves nothing behind.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from hub.db import SQLITE_BUSY_TIMEOUT_MS, SQLITE_WAL_LIMIT

log = logging.getLogger(__name__)


def wal_path(engine: Engine) -> Path | None:
    """The WAL file of a SQLite engine's database (``None`` for other databases)."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        return None
    if engine.url.database == ":memory:":
        return None
    return Path(f"{engine.url.database}-wal")


def wal_size(engine: Engine) -> int:
    """Bytes of the WAL file now (0 when there is none)."""
    path = wal_path(engine)
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What ``PRAGMA wal_checkpoint`` answered: whether it was blocked (``busy``), the
    frames in the log and those checkpointed (-1 when it could not run)."""

    busy: bool
    log_frames: int
    checkpointed: int


def checkpoint(engine: Engine, mode: str = "PASSIVE", wait_ms: int = 100) -> Checkpoint:
    """Run ``PRAGMA wal_checkpoint(mode)`` on a connection of its own, waiting at most
    ``wait_ms`` for locks (``FULL``, ``RESTART`` and ``TRUNCATE`` hold off writers
    while they wait)."""
    if mode not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
        raise ValueError(f"unknown checkpoint mode {mode!r}")
    raw = engine.raw_connection()  # no transaction: a checkpoint cannot run inside one
    try:
        cur = raw.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            busy, frames, done = cur.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()
        finally:
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.close()
    finally:
        raw.close()
    return Checkpoint(bool(busy), int(frames), int(done))


class WalKeeper:
    """Looks at a SQLite database's WAL when asked (see the module's docstring)."""

    def __init__(
        self, engine: Engine, *, limit: int = SQLITE_WAL_LIMIT, wait_ms: int = 100
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.wait_ms = wait_ms
        self.truncated = 0  # checkpoints that emptied the WAL
        self.passive = 0  # PASSIVE checkpoints run
        self.longest_s = 0.0  # the longest TRUNCATE checkpoint, its waiting included

    def due(self, *, idle: bool = False) -> bool:
        """Whether the WAL is to be emptied: larger than ``limit``, or (``idle``: nothing
        was written for a while) not empty.  While writes go on (not ``idle``) the WAL
        is checkpointed ``PASSIVE`` each time, in place of the automatic checkpoint the
        pipeline's commits leave out (``hub.writer_connection``); so is one larger than
        ``limit``, so ``truncate`` has little left to copy."""
        size = wal_size(self.engine)
        if size > self.limit or (size > 0 and not idle):
            checkpoint(self.engine, "PASSIVE", self.wait_ms)
            self.passive += 1
        if size > self.limit:
            return True
        return idle and size > 0

    def truncate(self) -> Checkpoint:
        """``TRUNCATE`` checkpoint: the log is copied into the database and emptied, or
        (``busy``) a reader or a writer kept it from finishing within ``wait_ms``."""
        started = time.perf_counter()
        result = checkpoint(self.engine, "TRUNCATE", self.wait_ms)
        self.longest_s = max(self.longest_s, time.perf_counter() - started)
        if result.busy:
            log.debug("WAL checkpoint blocked (%d of %d frames); trying again later",
                      result.checkpointed, result.log_frames)  # fmt: skip
        else:
            self.truncated += 1
        return result

    def check(self, *, idle: bool = False) -> Checkpoint | None:
        """``due`` then ``truncate``: what ``truncate`` answered, if it ran."""
        return self.truncate() if self.due(idle=idle) else None
