"""The ingest pipeline: validate, store in batches, then publish to the live feed.

Producers (source runners, or anything else that feeds fixes) ``submit`` a batch and
wait until it is committed: that is what lets a runner advance its cursors only after
the positions they cover are stored.  The channel in between is bounded, so producers
block when the writer falls behind (the policy is "block", never "drop").  The writer
takes whatever batches are waiting, up to ``max_rows`` fixes, and stores them in one
transaction on a worker thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import trio

from hub.alerts import alert_json
from hub.blocking import run_blocking
from hub.db import WriteLockBusy
from hub.errors import BadConfig
from hub.livefeed import LiveFeed, LiveMessage
from hub.positions import CursorUpdate, IngestItem, WriteResult, live_position

if TYPE_CHECKING:
    from hub.changes import ChangeFeed
    from hub.clock import Clock
    from hub.metrics import HubMetrics
    from hub.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PipelineStats:
    received: int = 0
    invalid: int = 0
    stored: int = 0
    duplicates: int = 0
    unknown_device: int = 0
    batches: int = 0
    transactions: int = 0
    inline_transactions: int = 0  # of ``transactions``: written on the event loop's thread
    failed_transactions: int = 0


@dataclass(slots=True)
class _Batch:
    items: list[IngestItem]
    cursors: list[CursorUpdate]
    done: trio.Event = field(default_factory=trio.Event)
    result: WriteResult | None = None
    error: BaseException | None = None


class PipelineClosed(RuntimeError):
    """The hub is shutting down and accepts no more fixes."""


class Pipeline:
    def __init__(
        self,
        store: Store,
        live: LiveFeed,
        clock: Clock,
        *,
        max_pending_batches: int = 64,
        max_rows: int = 2000,
        linger_s: float = 0.0,
        inline_rows: int = 16,
    ) -> None:
        self.store = store
        self.live = live
        self.clock = clock
        self.max_rows = max_rows
        self.linger_s = linger_s
        """Under load from several producers (the last transaction took more than one
        batch), a transaction begins at least this long after the previous one began, so
        that the batches arriving meanwhile share it (a transaction has a fixed cost of a
        few milliseconds).  A lone producer, or a batch after a quiet spell, never waits."""
        self.inline_rows = inline_rows
        """A batch of at most this many fixes and cursors is written on the event loop's
        thread when that costs CPU only (SQLite, its commits leaving the WAL to the
        housekeeping: ``WriterConnection.commit_is_cpu_only``) and no other connection
        holds the write lock (else it waits on a worker thread, as larger batches do).
        Handing a transaction to a worker thread and back costs more CPU (0.2 ms or so
        on a small virtual machine) than SQLite spends writing one fix; for a push
        source, whose fixes come one by one, it was a third of the cost of each.  A
        small batch is over in well under a millisecond."""
        self._closing = False
        self._last_write = -math.inf
        self._last_group = 0
        self.stats = PipelineStats()
        self._sending_invalid: set[int | None] = set()  # connections logged as such
        self._send, self._receive = trio.open_memory_channel[_Batch](max_pending_batches)
        self.after_commit: Callable[[WriteResult], None] | None = None
        self.metrics: HubMetrics | None = None  # the hub's: batch latency
        # held while a batch is written: other writers of this process that must not
        # wait on SQLite's busy handler take their turn here, in order (hub.housekeeping)
        self.write_turn = trio.Lock()
        self.changes: ChangeFeed | None = None
        """With a change feed, a batch is published live only once every change committed
        before it has been handled: a socket whose token was revoked gets nothing newer."""

    def forget(self, *, clients: set[int] | None = None, devices: set[int] | None = None) -> None:
        """Drop what the derivation stage cached of deleted clients and devices."""
        self.store.positions.derivation.invalidate(clients or set(), devices or set())

    async def submit(
        self,
        items: Sequence[IngestItem],
        cursors: Sequence[CursorUpdate] = (),
        *,
        validated: bool = False,
    ) -> WriteResult:
        """Queue fixes (and the cursors they advance); return once they are committed.

        Invalid fixes are dropped here, with one log line naming the field, unless the
        producer has ``validated`` them (a source runner does, to show the ones it dropped
        in its connection's status).  Raises ``PipelineClosed`` during shutdown and
        re-raises a failed transaction's error (nothing of the batch is stored then, and
        no cursor moves).
        """
        if validated:
            self.stats.received += len(items)
            valid = list(items)
        else:
            valid = self._validate(items)
        batch = _Batch(valid, list(cursors))
        if self._writes_now(batch):
            # the writer would take it at once and write it on this thread: this task
            # writes it instead, a task switch and a round of the scheduler sooner
            with trio.CancelScope(shield=True):  # begun, it is committed (as the writer's)
                async with self.write_turn:
                    self._last_write, self._last_group = trio.current_time(), 1
                    await self._write([batch])
        else:
            try:
                await self._send.send(batch)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise PipelineClosed("the hub is shutting down") from None
            await batch.done.wait()
        if batch.error is not None:
            raise batch.error
        assert batch.result is not None
        return batch.result

    def _writes_inline(self, rows: int) -> bool:
        """Whether a batch of ``rows`` fixes and cursors is written on this thread
        (``inline_rows``)."""
        return rows <= self.inline_rows and self.store.positions.writer.commit_is_cpu_only

    def _writes_now(self, batch: _Batch) -> bool:
        """Whether ``submit`` writes ``batch`` itself: it is written on this thread, and
        the writer waits for a batch with none queued (so none goes before it) and
        nothing else holds the write turn."""
        if not self._writes_inline(len(batch.items) + len(batch.cursors)):
            return False
        if self._closing or self.write_turn.locked():
            return False
        stats = self._receive.statistics()
        return stats.current_buffer_used == 0 and stats.tasks_waiting_receive == 1

    def _validate(self, items: Sequence[IngestItem]) -> list[IngestItem]:
        """The valid fixes of ``items``.  Invalid ones are counted and logged once per
        connection until that connection sends a clean batch again."""
        self.stats.received += len(items)
        out: list[IngestItem] = []
        first: dict[int | None, tuple[IngestItem, BadConfig, int]] = {}
        for it in items:
            try:
                it.fix.validate()
            except BadConfig as exc:
                seen = first.get(it.connection_id)
                first[it.connection_id] = (it, exc, 1) if seen is None else (*seen[:2], seen[2] + 1)
                continue
            out.append(it)
        self.stats.invalid += len(items) - len(out)
        for conn_id in {it.connection_id for it in items} - set(first):
            if conn_id in self._sending_invalid:
                self._sending_invalid.discard(conn_id)
                log.info("connection %s: its fixes are valid again", conn_id)
        for conn_id, (it, exc, count) in first.items():
            level = logging.DEBUG if conn_id in self._sending_invalid else logging.WARNING
            self._sending_invalid.add(conn_id)
            log.log(
                level,
                "connection %s: dropped %d invalid fix(es); first: device %s, %s",
                conn_id,
                count,
                it.device_id,
                exc,
            )
        return out

    async def close(self) -> None:
        """Stop accepting batches; the writer finishes those already queued and returns."""
        self._closing = True
        await self._send.aclose()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer loop; returns when the pipeline is closed and drained."""
        task_status.started()
        async with self._receive:
            while True:
                try:
                    first = await self._receive.receive()
                except trio.EndOfChannel:
                    return
                if self.linger_s > 0 and self._last_group > 1:
                    with trio.CancelScope(shield=True):  # the batch received is written
                        await trio.sleep_until(self._last_write + self.linger_s)
                self._last_write = trio.current_time()
                group = [first]
                rows = len(first.items) + len(first.cursors)
                while rows < self.max_rows:
                    try:
                        nxt = self._receive.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    group.append(nxt)
                    rows += len(nxt.items) + len(nxt.cursors)
                self._last_group = len(group)
                # the batches in flight are committed even while the hub shuts down
                with trio.CancelScope(shield=True):
                    async with self.write_turn:
                        await self._write(group)

    async def _write(self, group: list[_Batch]) -> None:
        items = [it for b in group for it in b.items]
        cursors = [c for b in group for c in b.cursors]
        now = self.clock.now()
        self.stats.batches += len(group)
        started = time.perf_counter()
        try:
            try:
                written = None
                if self._writes_inline(len(items) + len(cursors)):
                    try:  # on this thread: see ``inline_rows``
                        written = self._write_sync(items, cursors, now, nowait=True)
                        self.stats.inline_transactions += 1
                    except WriteLockBusy:
                        pass  # another connection writes: wait for it on a worker thread
                if written is None:
                    written = await run_blocking(self._write_sync, items, cursors, now)
                result, messages, head = written
            finally:
                if self.metrics is not None:
                    self.metrics.ingest_batch_seconds.observe(time.perf_counter() - started)
        except Exception as exc:
            self.stats.failed_transactions += 1
            log.exception("storing %d fixes failed; their sources will retry", len(items))
            for b in group:
                b.error = exc
                b.done.set()
            return
        self.stats.transactions += 1
        self.stats.stored += len(result.inserted)
        self.stats.duplicates += result.duplicates
        self.stats.unknown_device += result.unknown_device
        if self.changes is not None and self.changes.behind(head):
            try:
                await self.changes.catch_up()
            except Exception:
                log.exception("reading the change log before publishing failed")
        self.live.publish(messages)
        if self.after_commit is not None:
            self.after_commit(result)
        for b in group:
            b.result = result
            b.done.set()

    def _write_sync(
        self,
        items: list[IngestItem],
        cursors: list[CursorUpdate],
        now: datetime,
        nowait: bool = False,
    ) -> tuple[WriteResult, list[LiveMessage], int]:
        """Store the batch; its live messages; the change log's head once it is stored
        (0 without subscribers or a change feed)."""
        want_head = self.changes is not None and self.live.subscriber_count > 0
        positions = self.store.positions
        result = positions.write_batch(items, cursors, now, change_head=want_head, nowait=nowait)
        head = 0
        messages: list[LiveMessage] = []
        if self.live.subscriber_count:
            messages = batch_messages(result, now)
            if messages and self.changes is not None:
                # read with the batch (hub.positions): the same as ChangeFeed.head, without
                # another connection
                head = result.change_head if result.change_head is not None else self.changes.head()
        return result, messages, head


def batch_messages(result: WriteResult, now: datetime) -> list[LiveMessage]:
    """The live messages of a stored batch: its positions (in ``result.inserted``'s
    order), the devices it brought online, its alerts."""
    clients = result.clients
    messages = [
        LiveMessage.make(
            "position", clients[row["device_id"]], row["device_id"], live_position(row)
        )
        for row in result.inserted
    ]
    messages += status_messages([(d, clients[d]) for d in result.came_online], "online", now)
    messages += alert_messages(result.alerts)
    return messages


def status_messages(
    devices: list[tuple[int, int]], status: str, when: datetime
) -> list[LiveMessage]:
    """``device_status`` messages for (device id, client id) pairs whose status changed."""
    return device_status_messages(devices, status_data(status, when))


def status_data(status: str, when: datetime) -> dict[str, Any]:
    """The ``data`` of a ``device_status`` message for a device gone online or offline."""
    return {"status": status, "status_at": when.isoformat()}


def device_status_messages(
    devices: Iterable[tuple[int, int]], data: dict[str, Any]
) -> list[LiveMessage]:
    """``device_status`` messages with ``data`` for (device id, client id) pairs."""
    return [LiveMessage.make("device_status", client, device, data) for device, client in devices]


def alert_messages(alerts: list[dict[str, Any]]) -> list[LiveMessage]:
    """``alert`` messages: each alert as the API shows it (``hub.alerts.alert_json``)."""
    return [LiveMessage.make("alert", a["clientId"], a["deviceId"], alert_json(a)) for a in alerts]
