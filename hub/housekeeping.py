"""The hub's upkeep in the background: retention, the delivery caps, the SQLite WAL.

``Housekeeping.run`` (started by ``Hub.run``) runs two loops on trio's clock:

* every ``retention_every_s`` (the first time a minute after start, or sooner if that
  is shorter) a **pass**: the dead-letter and outbox caps, then each client's
  positions and alerts older than its retention (``hub.retention`` says what is kept).
  Every deletion is a batch of at most ``retention_batch_rows`` rows in a transaction of
  its own, between two of the pipeline's (``Pipeline.write_turn``), followed by a pause
  of ``retention_pause_s``, so on SQLite (one writer at a time) ingest waits at most one
  short batch for the write lock.
* on SQLite, a look at the WAL (``hub.wal.WalKeeper``) after writes, at most every
  ``WAL_CHECK_S`` while they go on (a ``PASSIVE`` checkpoint: the pipeline's own
  commits do not checkpoint while this runs), and a last one once nothing has been
  written for ``WAL_IDLE_S`` (which empties it).  Its ``TRUNCATE`` checkpoint runs between two of
  the pipeline's transactions (``Pipeline.write_turn``).  The pipeline's commits and the pruning batches
  say when something was written (``wrote``); nothing wakes the loop while the hub
  is idle.

A failure is logged and tried again at the next round; it never stops the hub.  With
several processes on PostgreSQL the passes run only in the holder of the maintenance
lease (``hub.cluster``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import trio

from hub.blocking import run_blocking
from hub.cluster import MAINTENANCE
from hub.retention import Batch, RetentionStore, cutoff
from hub.wal import WalKeeper

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

FIRST_PASS_S = 60.0
WAL_CHECK_S = 2.0
WAL_IDLE_S = 30.0


@dataclass
class PassReport:
    """What one retention pass deleted."""

    positions: int = 0
    alerts: int = 0
    outbox_dropped: int = 0
    dead_letters_dropped: int = 0
    batches: int = 0
    longest_s: float = 0.0  # the longest write transaction of a batch

    @property
    def deleted(self) -> int:
        return self.positions + self.alerts + self.outbox_dropped + self.dead_letters_dropped


class Housekeeping:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.store = RetentionStore(hub.store.engine)
        engine = hub.store.engine
        self.wal = WalKeeper(engine) if engine.dialect.name == "sqlite" else None
        self.last_pass: PassReport | None = None
        self._wrote = trio.Event()

    def wrote(self) -> None:
        """Something was committed: the WAL grew (called from the trio thread)."""
        self._wrote.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._retention_loop)
            if self.wal is not None:
                nursery.start_soon(self.keep_wal)
            task_status.started()

    async def _retention_loop(self) -> None:
        every = self.hub.settings.retention_every_s
        await trio.sleep(min(FIRST_PASS_S, every))
        while True:
            try:
                if self.hub.cluster.holds(MAINTENANCE):  # once across the processes
                    await self.run_pass()
            except Exception:
                log.exception("housekeeping: a retention pass failed; trying again later")
            await trio.sleep(every)

    async def keep_wal(self) -> None:
        """Check the SQLite WAL while writes go on, and once they stop (``hub.wal``)."""
        assert self.wal is not None
        writer = self.hub.store.positions.writer
        writer.autocheckpoint = False  # the checks below checkpoint instead
        try:
            while True:
                await self._wrote.wait()
                self._wrote = trio.Event()
                await self._check_wal(idle=False)
                await trio.sleep(WAL_CHECK_S)
                if self._wrote.is_set():
                    continue
                with trio.move_on_after(WAL_IDLE_S):
                    await self._wrote.wait()
                if not self._wrote.is_set():
                    await self._check_wal(idle=True)
        finally:
            writer.autocheckpoint = True

    async def _check_wal(self, *, idle: bool) -> None:
        wal = self.wal
        assert wal is not None
        try:
            if await run_blocking(functools.partial(wal.due, idle=idle)):
                # between two of the pipeline's transactions: SQLite's write lock is free
                # then, and ingest waits for the checkpoint rather than the other way round
                async with self.hub.pipeline.write_turn:
                    await run_blocking(wal.truncate)
        except Exception:
            log.exception("housekeeping: checking the SQLite WAL failed")

    # -- one pass ------------------------------------------------------------------------------
    async def run_pass(self) -> PassReport:
        """Apply the caps, then every client's retention; what was deleted."""
        settings = self.hub.settings
        store = self.store
        report = PassReport()
        cap = settings.dead_letters_max_per_sink
        for sink_id, name, over, upto in await run_blocking(store.dead_letter_overflow, cap):
            dropped = await self._batches(
                functools.partial(store.drop_dead_letters, sink_id, upto), report
            )
            report.dead_letters_dropped += dropped
            log.warning(
                "sink %r (#%s): dropped its %d oldest dead letters; it had %d more than "
                "dead_letters_max_per_sink (%d)", name, sink_id, dropped, over, cap,
            )  # fmt: skip
        cap = settings.outbox_max_owed
        for overflow in await run_blocking(store.outbox_overflow, cap):
            dropped = await self._batches(functools.partial(store.drop_outbox, overflow), report)
            report.outbox_dropped += dropped
            if dropped:
                log.warning(
                    "client #%s: dropped the %d oldest %s messages waiting in the outbox; "
                    "more than outbox_max_owed (%d) were waiting. Sinks that will not "
                    "deliver them: %s", overflow.client_id, dropped, overflow.kind, cap,
                    ", ".join(overflow.behind) or "none",
                )  # fmt: skip
        now = self.hub.clock.now()
        for client in await run_blocking(store.clients):
            if client.positions_days is not None:
                before = cutoff(now, client.positions_days)
                pruner = await run_blocking(store.position_pruner, client.client_id, before)
                report.positions += await self._batches(pruner.delete, report, pruner.choose)
            if client.alerts_days is not None:
                before = cutoff(now, client.alerts_days)
                report.alerts += await self._batches(
                    functools.partial(store.prune_alerts, client.client_id, before), report
                )
        if report.deleted:
            log.info(
                "housekeeping: deleted %d positions and %d alerts past their retention, "
                "%d outbox messages and %d dead letters over their caps, in %d batches "
                "(the longest held the write lock %.0f ms)", report.positions, report.alerts,
                report.outbox_dropped, report.dead_letters_dropped, report.batches,
                report.longest_s * 1000,
            )  # fmt: skip
        self.last_pass = report
        return report

    async def _batches(
        self,
        delete: Callable[[Any], Batch],
        report: PassReport,
        choose: Callable[[int], Any] | None = None,
    ) -> int:
        """Delete in batches until there is no more, pausing after each batch that
        deleted something; how many rows went in all.  ``delete(choose(limit))`` is a
        batch (``delete(limit)`` without ``choose``).  Its transaction takes the
        pipeline's turn (``Pipeline.write_turn``): on SQLite, pruning and ingest then
        alternate rather than compete for the write lock, which is not fair."""
        limit = self.hub.settings.retention_batch_rows
        pause = self.hub.settings.retention_pause_s
        total = 0
        while True:
            chosen = limit if choose is None else await run_blocking(choose, limit)
            async with self.hub.pipeline.write_turn:
                done = await run_blocking(delete, chosen)
            self.wrote()
            report.batches += 1
            report.longest_s = max(report.longest_s, done.held_s)
            total += done.deleted
            if done.deleted:
                await trio.sleep(pause)
            if not done.more:
                return total
