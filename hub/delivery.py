"""Delivery: one worker per enabled sink reads the outbox from its own cursor.

What it promises (at least once, in order per device, nothing lost):

* A message is taken from the outbox only in the transaction that records what became
  of it: delivered (the cursor moves past it), refused (a dead letter), or still owed
  (a ``sink_pending`` row).  A crash re-sends what was in flight, with the same
  ``webhook-id``: one per message for single-object formats, and for batches the id of
  the batch, whose bounds are written down before it is sent.  Ids carry the hub's id
  (``msg_<hub>_<n>``, ``batch_<hub>_…``), so two hubs never share one.
* A failed message is retried on the Standard Webhooks schedule (5 s, 5 min, 30 min,
  2 h, 5 h, 10 h, 14 h, 20 h, 24 h, each ±20 %), never before the answer's
  ``Retry-After``; after the tenth attempt (about three days) it is a dead letter.
  Refusals (4xx but 408 and 429) are dead letters at once.
* Each device's messages go out in outbox order: while a device has a message owed,
  its newer ones queue behind it; other devices go on.
* The worker is *up* (delivering) or *down* (probing).  A receiver that fails three
  requests in a row (one batch) is down: the worker stops sending and probes it with
  one request at growing intervals (5 s doubling to 5 min), never before the last
  answer's ``Retry-After``.  A probe is not an attempt of the messages it carries:
  while the receiver is down their schedules stand still.  The first success makes
  the worker up again and retries everything owed at once.  New messages wait in the
  outbox meanwhile, costing nothing.  Whether a sink is down, and its probe interval,
  are kept in its row (``probe_at``, ``probe_interval_s``): a restarted hub goes on
  probing where the last one stopped.
* A sink's state is ``retrying`` from its first failed request, ``ok`` again at the
  first success, and ``failing`` once it has failed continuously for its failing
  period (15 min by default).  A slow or dead receiver holds only its own worker:
  ingest writes the outbox and never waits for delivery.

With several processes on PostgreSQL a sink's worker runs only in the process holding
the sink's lease (``hub.cluster``); a new holder loads the sink's cursor, owed messages
and in-flight batch bounds from its row, so an in-flight batch goes again with its id.
The outbox pruning runs in the holder of the maintenance lease.

Each change of a sink's state is logged (the first success at INFO, ``retrying`` and
``failing`` at WARNING, ``ok`` again at INFO), as are the receiver going down and coming
back, with ``sink_id`` and ``state`` in each record.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import trio

from hub.blocking import run_blocking
from hub.changes import Change
from hub.cluster import MAINTENANCE, sink_resource
from hub.errors import DeliveryFailed, DeliveryRejected
from hub.formats import Format
from hub.logging_setup import MaskingAdapter, scrub
from hub.models import SinkRow, SinkState
from hub.sink import Delivery, Sink, SinkContext
from hub.sink_store import OutboxRow, PendingRow, Progress
from hub.webhook import MAX_RETRY_AFTER_S

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger(__name__)

SCHEDULE_S = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
"""Seconds to wait after the n-th failed attempt of a message (n = 1…9)."""
MAX_ATTEMPTS = len(SCHEDULE_S) + 1
JITTER = 0.2
EXCERPT_CHARS = 500  # what a dead letter keeps of the answer, after secrets are masked
DOWN_AFTER = 3  # failed requests in a row that make a receiver "down" (a failed batch: one)
PROBE_FIRST_S, PROBE_MAX_S = 5.0, 300.0
SINGLE_CHUNK = 64  # messages one round takes for single-object formats
ERROR_BACKOFF_S = 30.0


def retry_delay(attempts: int, rng: random.Random, retry_after: float | None = None) -> float:
    """Seconds before the next attempt of a message that has failed ``attempts`` times."""
    base = SCHEDULE_S[min(attempts, len(SCHEDULE_S)) - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    return max(base, retry_after or 0.0)


@dataclass(slots=True)
class _Entry:
    """One message of a request: its outbox row and, when owed already, its pending row."""

    outbox_id: int
    device_id: int | None
    owed: PendingRow | None = None


@dataclass(slots=True)
class _Unit:
    """One request: its id and its messages, in outbox order."""

    id: str
    entries: list[_Entry]
    outcome: str = "held"  # held (not sent) | ok | failed | rejected | skipped
    error: str = ""
    status: int | None = None
    excerpt: str = ""
    retry_after: float | None = None
    items: int = 0

    @property
    def devices(self) -> set[int | None]:
        return {e.device_id for e in self.entries}


@dataclass
class _Round:
    probing: bool  # the receiver is down: this round's one request is a probe
    progress: Progress = field(default_factory=Progress)
    sent: int = 0
    succeeded: int = 0
    failed: int = 0


class SinkWorker:
    """Delivers one sink's messages (see the module's docstring).

    Its state is the sink's row: ``probe_at`` set means the receiver is down (probing),
    unset that it is up (delivering); each round writes the changes with its outcome.
    """

    def __init__(self, hub: Hub, sink_id: int, rng: random.Random | None = None) -> None:
        self.hub = hub
        self.store = hub.store.sinks
        self.sink_id = sink_id
        self.rng = rng or random.Random()
        self.lanes: dict[int | None, list[PendingRow]] = {}
        self.in_a_row = 0  # failed requests in a row
        self.probes = 0  # probes sent with owed messages (they take turns)
        self.wake = trio.Event()
        self.row: SinkRow
        self.sink: Sink
        self.format: Format
        self.hub_id = ""
        self._secrets: list[str] = []
        self._client: dict[str, Any] = {}
        self._broken = False
        self.version: datetime | None = None  # the sink's updated_at, as this worker loaded it
        self.label = f"sink #{sink_id}"

    @property
    def down(self) -> bool:
        """Whether the receiver is down: the worker only probes it."""
        return self.row.probe_at is not None

    # -- set-up ------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        hub = self.hub
        self.row = await run_blocking(self.store.get, self.sink_id)
        self.version = self.row.updated_at
        self.hub_id = await run_blocking(self.store.hub_id)
        secrets = await run_blocking(self.store.secrets_of, self.row)
        pending = await run_blocking(self.store.pending, self.sink_id)
        for p in pending:
            self.lanes.setdefault(p.device_id, []).append(p)
        task_status.started()
        label = self.label = f"sink {self.row.name!r} (#{self.sink_id})"
        try:
            sink_cls = hub.registry.sinks[self.row.kind]
            format_cls = hub.registry.formats[self.row.format]
            settings = sink_cls.Settings.model_validate(self.row.settings)
            self.format = format_cls(format_cls.parse_options(self.row.format_options))
        except Exception as exc:  # an uninstalled plugin, settings it no longer accepts
            message = f"cannot deliver: {type(exc).__name__}: {exc}"
            log.warning("%s: %s", label, message, extra=self._extra(SinkState.FAILING))
            await run_blocking(
                functools.partial(
                    self.store.save_progress,
                    self.sink_id,
                    Progress(status={"state": SinkState.FAILING, "last_error": message}),
                )
            )
            return
        self._secrets = _secret_values(secrets)
        concurrency = int(getattr(settings, "concurrency", 0) or sink_cls.concurrency)
        self.concurrency = max(1, concurrency if self.format.max_batch == 1 else 1)
        # a batch carries many devices' messages: its failure is the receiver's
        self.down_after = DOWN_AFTER if self.format.max_batch == 1 else 1
        if self.down:
            log.info("%s: the receiver was down; probing it", label, extra=self._extra())
        from hub.netguard import guarded_client

        async with guarded_client(
            hub.outbound_policy,
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        ) as http:
            self.sink = sink_cls(
                settings,
                SinkContext(
                    sink_id=self.sink_id,
                    client_id=self.row.client_id,
                    http=http,
                    secrets=secrets,
                    log=MaskingAdapter(
                        logging.getLogger("gpshub.sink"),
                        {"sink": label, "sink_id": self.sink_id},
                        self._secrets,
                    ),
                    clock=hub.clock,
                ),
            )
            try:
                await self._loop(label)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await self.sink.aclose()

    async def _loop(self, label: str) -> None:
        while True:
            try:
                self._client = await run_blocking(self.store.client_info, self.row.client_id)
                worked = await self.round()
                if self._broken:
                    log.info("%s: working again", label, extra=self._extra())
                    self._broken = False
            except Exception:
                if not self._broken:
                    log.exception(
                        "%s: a delivery round failed; retrying", label, extra=self._extra()
                    )
                self._broken = True
                await trio.sleep(ERROR_BACKOFF_S)
                continue
            if not worked:
                await self._idle()

    async def _idle(self) -> None:
        """Wait for the probe (while down), else for new messages or the next retry due."""
        now = self.hub.clock.now()
        probe_at = self.row.probe_at
        if probe_at is not None and probe_at > now:
            with trio.move_on_after((probe_at - now).total_seconds()):
                await trio.sleep_forever()  # new messages wait for the probe
            return
        wait = self.hub.settings.delivery_poll_s
        due = self._next_due() if probe_at is None else None
        if due is not None:
            wait = min(wait, max((due - now).total_seconds(), 0.0))
        with trio.move_on_after(wait):
            await self.wake.wait()
        self.wake = trio.Event()

    def notify(self) -> None:
        self.wake.set()

    def _heads(self) -> list[PendingRow]:
        return sorted((lane[0] for lane in self.lanes.values() if lane), key=lambda p: p.outbox_id)

    def _next_due(self) -> datetime | None:
        """When the next owed message is due."""
        times = [p.next_attempt_at for p in self._heads() if p.next_attempt_at is not None]
        return min(times) if times else None

    # -- one round ---------------------------------------------------------------------------
    async def round(self) -> bool:
        """Send what is due; record the outcome in one transaction.  Whether it sent."""
        now = self.hub.clock.now()
        rnd = _Round(probing=self.down)
        if rnd.probing:
            if self.row.probe_at is not None and now < self.row.probe_at:
                return False
            units, fresh = await self._probe()
        else:
            units = self._owed_units(now)
            fresh = await self._take_fresh(units, probe=False)
        if not units and not fresh:
            return False
        await self._load_items(units, fresh)
        await self._send(units, rnd)
        now = self.hub.clock.now()
        self._settle(units, fresh, rnd, now)
        progress = rnd.progress
        with trio.CancelScope(shield=True):
            await run_blocking(self.store.save_progress, self.sink_id, progress)
        self.hub.delivery.count(progress)
        self.hub.metrics.observe_dead_letters(self.sink_id, self.row.kind, len(progress.dead))
        self._log_state(progress.status.get("state"), units, now)
        self._apply(progress)
        return True

    def _extra(self, state: str | None = None) -> dict[str, Any]:
        """A log record's structured fields."""
        return {"sink_id": self.sink_id, "kind": self.row.kind, "state": state or self.row.state}

    def _log_state(self, state: str | None, units: list[_Unit], now: datetime) -> None:
        """Log a change of the sink's state (``state``: the one this round sets)."""
        before = self.row.state
        if state is None or state == before:
            return
        extra = {**self._extra(state), "previous_state": before}
        errors = [u.error for u in units if u.outcome == "failed"]
        if state == SinkState.OK:
            what = "first delivery succeeded" if before == SinkState.NEW else "delivering again"
            log.info("%s: %s", self.label, what, extra=extra)
        elif state == SinkState.RETRYING:
            log.warning(
                "%s: delivery failed (%s); retrying",
                self.label,
                errors[-1] if errors else "?",
                extra=extra,
            )
        elif state == SinkState.FAILING:
            since = self.row.failing_since or now
            log.warning(
                "%s is failing: nothing delivered for %.0f s (%s)",
                self.label,
                (now - since).total_seconds(),
                errors[-1] if errors else "?",
                extra=extra,
            )
        else:
            log.info("%s: %s", self.label, state, extra=extra)

    def _owed_units(self, now: datetime) -> list[_Unit]:
        """Requests for owed messages that are due: each due lane from its head on."""
        limit = SINGLE_CHUNK * max(self.format.max_batch, 1)
        chosen: list[_Entry] = []
        for lane in self.lanes.values():
            if not lane or not _due(lane[0], now):
                continue
            group = lane[0].delivery_id
            for p in lane:
                if len(chosen) >= limit:
                    break
                if not (_due(p, now) or p.attempts == 0 or (group and p.delivery_id == group)):
                    break
                chosen.append(_Entry(p.outbox_id, p.device_id, p))
        chosen.sort(key=lambda e: e.outbox_id)
        return self._units_of(chosen)

    async def _probe(self) -> tuple[list[_Unit], list[OutboxRow]]:
        """The one request of a probe: a fresh message (of a device with nothing owed),
        else an owed one, each device's in turn (so one message the receiver cannot take
        does not keep the sink down), whatever their schedules."""
        units: list[_Unit] = []
        fresh = await self._take_fresh(units, probe=True)
        heads = self._heads()
        if not units and heads:
            head = heads[self.probes % len(heads)]
            self.probes += 1
            units = self._units_of(self._group(head))[:1]
        return units, fresh

    def _group(self, head: PendingRow) -> list[_Entry]:
        """An owed message and, for a batch, the rest of the batch it failed in."""
        if self.format.max_batch == 1 or not head.delivery_id:
            return [_Entry(head.outbox_id, head.device_id, head)]
        rows = [
            p for lane in self.lanes.values() for p in lane if p.delivery_id == head.delivery_id
        ]
        return [
            _Entry(p.outbox_id, p.device_id, p) for p in sorted(rows, key=lambda p: p.outbox_id)
        ]

    def _units_of(self, entries: list[_Entry]) -> list[_Unit]:
        """Owed messages as requests: one each, or batches that keep a failed batch's id."""
        size = max(self.format.max_batch, 1)
        if size == 1:
            return [_Unit((e.owed and e.owed.delivery_id) or self._msg_id(e), [e]) for e in entries]
        groups: dict[str, list[_Entry]] = {}
        loose: list[_Entry] = []
        for e in entries:
            if e.owed is not None and e.owed.delivery_id:
                groups.setdefault(e.owed.delivery_id, []).append(e)
            else:
                loose.append(e)
        units = [_Unit(i, g) for i, g in groups.items()]
        for i in range(0, len(loose), size):
            part = loose[i : i + size]
            units.append(_Unit(self._batch_id(part, owed=True), part))
        units.sort(key=lambda u: u.entries[0].outbox_id)
        return units

    def _msg_id(self, entry: _Entry) -> str:
        return f"msg_{self.hub_id}_{entry.outbox_id}"

    def _batch_id(self, entries: Sequence[_Entry], owed: bool = False) -> str:
        first, last = entries[0].outbox_id, entries[-1].outbox_id
        tail = f"{first}_{last}_{len(entries)}{'r' if owed else ''}"
        return f"batch_{self.hub_id}_{self.sink_id}_{tail}"

    async def _take_fresh(self, units: list[_Unit], *, probe: bool) -> list[OutboxRow]:
        """New outbox messages, appended to ``units`` as requests; those of devices with
        messages owed queue behind them.  A probe takes one request's worth."""
        size = max(self.format.max_batch, 1)
        limit = SINGLE_CHUNK if size == 1 and not probe else size
        upto = self.row.inflight_upto if size > 1 else None
        rows = await run_blocking(self.store.fetch, self.row, self.row.cursor, limit, upto)
        if not rows:
            return []
        entries = [_Entry(r.id, r.device_id) for r in rows if not self.lanes.get(r.device_id)]
        if probe:
            if not entries:
                return []  # all behind owed messages: they stay in the outbox meanwhile
            if size == 1:  # one message probes; the rest stay in the outbox
                entries = entries[:1]
                rows = [r for r in rows if r.id <= entries[0].outbox_id]
        if not entries:
            return rows
        if size == 1:
            units.extend(_Unit(self._msg_id(e), [e]) for e in entries)
        else:
            if self.row.inflight_upto != rows[-1].id:  # a restart sends this same batch
                await run_blocking(self.store.mark_inflight, self.sink_id, rows[-1].id)
                self.row.inflight_upto = rows[-1].id
            units.append(_Unit(self._batch_id(entries), entries))
        return rows

    async def _load_items(self, units: list[_Unit], fresh: list[OutboxRow]) -> None:
        """The item of every message to send; those whose position is gone are skipped."""
        ids = [e.outbox_id for u in units for e in u.entries]
        rows = {r.id: r for r in fresh}
        missing = [i for i in ids if i not in rows]
        if missing:
            rows.update(await run_blocking(self.store.rows, self.sink_id, missing))
        ordered = [rows[i] for i in ids if i in rows]
        if self.row.purpose == "locations":
            self._items = await run_blocking(
                self.store.location_items, ordered, self._client, self.format.fields
            )
        else:
            self._items = {
                r.id: {**r.payload, "eventId": r.ref_id, "client": self._client} for r in ordered
            }

    # -- sending -----------------------------------------------------------------------------
    async def _send(self, units: list[_Unit], rnd: _Round) -> None:
        if self.concurrency == 1:
            stopped: set[int | None] = set()
            for u in units:
                if stopped & u.devices or self._should_hold(rnd):
                    continue
                await self._attempt(u, rnd)
                if u.outcome == "failed":
                    stopped |= u.devices
            return
        lanes: dict[int | None, list[_Unit]] = {}
        for u in units:
            lanes.setdefault(u.entries[0].device_id, []).append(u)
        limiter = trio.CapacityLimiter(self.concurrency)

        async def lane(todo: list[_Unit]) -> None:
            for u in todo:
                if self._should_hold(rnd):
                    return
                async with limiter:
                    if self._should_hold(rnd):
                        return
                    await self._attempt(u, rnd)
                if u.outcome == "failed":
                    return  # the device's later messages wait behind this one

        async with trio.open_nursery() as nursery:
            for todo in lanes.values():
                nursery.start_soon(lane, todo)

    def _should_hold(self, rnd: _Round) -> bool:
        """Stop sending this round: the receiver failed enough requests in a row."""
        return rnd.failed > 0 and self.in_a_row >= self.down_after

    async def _attempt(self, unit: _Unit, rnd: _Round) -> None:
        items = [self._items[e.outbox_id] for e in unit.entries if e.outbox_id in self._items]
        unit.items = len(items)
        if not items:
            unit.outcome = "skipped"
            return
        try:
            body = self.format.encode(items)
        except Exception as exc:
            unit.outcome = "rejected"
            unit.error = self._scrub(f"the format failed: {type(exc).__name__}: {exc}")
            return
        head = unit.entries[0].owed
        if head is not None and head.delivery_id != unit.id and self.format.max_batch > 1:
            # a batch of owed messages: its id must survive a crash too
            ids = [e.outbox_id for e in unit.entries]
            await run_blocking(self.store.label_pending, self.sink_id, ids, unit.id)
            for e in unit.entries:
                if e.owed is not None:
                    e.owed.delivery_id = unit.id
        rnd.sent += 1
        delivery = Delivery(unit.id, body, self.format.content_type, len(items))
        started = time.perf_counter()
        try:
            try:
                await self.sink.deliver(delivery)
            finally:
                elapsed = time.perf_counter() - started
                self.hub.metrics.observe_delivery(self.sink_id, self.row.kind, elapsed)
        except DeliveryFailed as exc:
            unit.outcome, unit.retry_after, unit.status = "failed", exc.retry_after, exc.status
            unit.error = self._scrub(str(exc) or "delivery failed")
            rnd.failed += 1
            self.in_a_row += 1
        except DeliveryRejected as exc:
            unit.outcome, unit.status = "rejected", exc.status
            unit.error = self._scrub(str(exc) or "rejected")
            unit.excerpt = self._scrub(exc.excerpt)[:EXCERPT_CHARS]
            rnd.succeeded += 1  # the receiver is up: it answered
            self.in_a_row = 0
        except Exception as exc:  # a plugin's bug: retried like a failure, never a crash
            unit.outcome, unit.error = "failed", f"{type(exc).__name__}: {self._scrub(str(exc))}"
            rnd.failed += 1
            self.in_a_row += 1
        else:
            unit.outcome = "ok"
            rnd.succeeded += 1
            self.in_a_row = 0

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets) or ""

    # -- what became of each message -------------------------------------------------------
    def _settle(
        self, units: list[_Unit], fresh: list[OutboxRow], rnd: _Round, now: datetime
    ) -> None:
        progress = rnd.progress
        done: set[int] = set()
        for u in units:
            done |= {e.outbox_id for e in u.entries}
            if u.outcome in ("ok", "skipped"):
                progress.delivered += u.items if u.outcome == "ok" else 0
                progress.removed += [e.outbox_id for e in u.entries if e.owed is not None]
            elif u.outcome == "rejected":
                progress.failed_attempts += 1
                self._bury(u, progress, now, u.error)
            elif u.outcome == "failed":
                progress.failed_attempts += 1
                self._failed(u, progress, now, counted=not rnd.probing)
            else:  # held: not sent (the receiver went down, or the device is blocked)
                self._hold(u, progress)
        for r in fresh:  # fresh messages of blocked devices queue behind their lane
            if r.id not in done:
                progress.pending.append(PendingRow(r.id, r.device_id))
        if fresh:
            progress.cursor = fresh[-1].id
            progress.clear_inflight = self.format.max_batch > 1
        self._status(units, rnd, now)

    def _failed(self, unit: _Unit, progress: Progress, now: datetime, *, counted: bool) -> None:
        """Keep a failed request's messages owed; an attempt of theirs when ``counted``
        (a probe is not: their schedules stand still while the receiver is down)."""
        before = max((e.owed.attempts if e.owed else 0) for e in unit.entries)
        attempts = before + 1 if counted else before
        if attempts >= MAX_ATTEMPTS:
            self._bury(unit, progress, now, f"gave up after {attempts} attempts: {unit.error}")
            return
        later = None
        if counted:
            later = now + timedelta(seconds=retry_delay(attempts, self.rng, _wait(unit)))
        for e in unit.entries:
            owed = e.owed
            progress.pending.append(
                PendingRow(
                    e.outbox_id,
                    e.device_id,
                    attempts=attempts,
                    next_attempt_at=later if counted or owed is None else owed.next_attempt_at,
                    first_failed_at=(owed.first_failed_at if owed else None) or now,
                    delivery_id=unit.id,
                    last_error=unit.error,
                )
            )

    def _bury(self, unit: _Unit, progress: Progress, now: datetime, error: str) -> None:
        for e in unit.entries:
            if e.owed is not None:
                progress.removed.append(e.outbox_id)
            progress.dead.append(
                {
                    "outbox_id": e.outbox_id,
                    "device_id": e.device_id,
                    "delivery_id": unit.id,
                    "attempts": (e.owed.attempts if e.owed else 0) + 1,
                    "status": unit.status,
                    "error": error,
                    "excerpt": unit.excerpt,
                    "created_at": now,
                }
            )

    def _hold(self, unit: _Unit, progress: Progress) -> None:
        """Messages not sent stay owed as they were; fresh ones become owed (untried)."""
        for e in unit.entries:
            if e.owed is None:
                progress.pending.append(PendingRow(e.outbox_id, e.device_id))

    def _status(self, units: list[_Unit], rnd: _Round, now: datetime) -> None:
        """The sink's state after a round: up or down (probing), and what the API shows."""
        status = rnd.progress.status
        if rnd.sent:
            status["last_attempt_at"] = now
        if rnd.succeeded:
            status.update(last_success_at=now, failing_since=None, state=SinkState.OK)
            if rnd.failed == 0:
                status["last_error"] = None
            if self.down:
                self._recovered(rnd.progress, now)
            return
        if not rnd.failed:
            return
        failed = [u for u in units if u.outcome == "failed"]
        since = self.row.failing_since or now
        limit = self.row.failing_after_s or self.hub.settings.sink_failing_after_s
        failing = (now - since).total_seconds() >= limit
        status.update(
            failing_since=since,
            last_error=failed[-1].error,
            state=SinkState.FAILING if failing else SinkState.RETRYING,
        )
        if self.down:  # a failed probe: the next one waits twice as long
            interval = min((self.row.probe_interval_s or PROBE_FIRST_S) * 2, PROBE_MAX_S)
        elif self.in_a_row >= self.down_after:
            interval = PROBE_FIRST_S
            log.info(
                "%s: the receiver is down (%s); probing",
                self.label,
                failed[-1].error,
                extra=self._extra(),
            )
        else:
            return
        wait = max(interval, *(_wait(u) or 0.0 for u in failed))
        status.update(probe_at=now + timedelta(seconds=wait), probe_interval_s=interval)

    def _recovered(self, progress: Progress, now: datetime) -> None:
        """The receiver answers again: the worker is up, and what it owes is retried now,
        not on schedule."""
        log.info("%s: the receiver is back; retrying what is owed", self.label, extra=self._extra())
        progress.status.update(probe_at=None, probe_interval_s=None)
        self.probes = 0
        touched = {p.outbox_id for p in progress.pending} | set(progress.removed)
        for lane in self.lanes.values():
            if lane and lane[0].outbox_id not in touched and lane[0].next_attempt_at:
                head = lane[0]
                progress.pending.append(
                    PendingRow(
                        head.outbox_id,
                        head.device_id,
                        head.attempts,
                        now,
                        head.first_failed_at,
                        head.delivery_id,
                        head.last_error,
                    )
                )

    def _apply(self, progress: Progress) -> None:
        """Mirror a saved round in memory: the lanes, the cursor and the status."""
        gone = set(progress.removed) | {p.outbox_id for p in progress.pending}
        for lane in self.lanes.values():
            lane[:] = [p for p in lane if p.outbox_id not in gone]
        for p in progress.pending:
            self.lanes.setdefault(p.device_id, []).append(p)
        for device, lane in list(self.lanes.items()):
            if lane:
                lane.sort(key=lambda p: p.outbox_id)
            else:
                del self.lanes[device]
        if progress.cursor is not None:
            self.row.cursor = progress.cursor
        if progress.clear_inflight:
            self.row.inflight_upto = None
        for key, value in progress.status.items():
            setattr(self.row, key, value)


def _wait(unit: _Unit) -> float | None:
    """A failed request's ``Retry-After``, capped (a day: a sink's word is not law)."""
    return None if unit.retry_after is None else min(unit.retry_after, MAX_RETRY_AFTER_S)


def _due(p: PendingRow, now: datetime) -> bool:
    return p.next_attempt_at is None or p.next_attempt_at <= now


def _secret_values(secrets: dict[str, Any]) -> list[str]:
    values = [str(v) for v in (secrets.get("headers") or {}).values()]
    values += [str(s.get("secret")) for s in secrets.get("signing") or []]
    return [v for v in values if len(v) >= 4]


@dataclass
class _WorkerHandle:
    scope: trio.CancelScope
    worker: SinkWorker


class DeliveryService:
    """Runs a worker per enabled sink and prunes the outbox of what all sinks are done with."""

    PRUNE_EVERY_S = 60.0

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.workers: dict[int, _WorkerHandle] = {}
        self._nursery: trio.Nursery | None = None
        self._syncing = trio.Lock()
        # since start, all sinks: items delivered, failed requests, dead letters made
        self.delivered = 0
        self.failed_requests = 0
        self.dead_lettered = 0

    def count(self, progress: Progress) -> None:
        """Add a saved round's outcome to the totals (the summary's figures)."""
        self.delivered += progress.delivered
        self.failed_requests += progress.failed_attempts
        self.dead_lettered += len(progress.dead)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for row in await run_blocking(lambda: self.hub.store.sinks.list(enabled_only=True)):
                    if self.hub.cluster.holds(sink_resource(row.id or 0)):
                        await self._start(row.id or 0)
                nursery.start_soon(self._prune_loop)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None
            self.workers.clear()

    async def _start(self, sink_id: int) -> None:
        assert self._nursery is not None
        worker = SinkWorker(self.hub, sink_id)
        scope = trio.CancelScope()
        self.workers[sink_id] = _WorkerHandle(scope, worker)

        async def guarded(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                try:
                    await worker.run(task_status=task_status)
                except Exception:
                    log.exception("the worker of sink %s crashed; it is not restarted", sink_id)
            handle = self.workers.get(sink_id)
            if handle is not None and handle.worker is worker:
                del self.workers[sink_id]

        await self._nursery.start(guarded)

    async def reload(self, sink_id: int) -> None:
        """Apply a change to a sink made through this hub (see ``sync``)."""
        await self.sync(sink_id)

    async def sync(self, sink_id: int) -> None:
        """Make the sink's worker match the database: start, stop or restart it when
        the sink was created, disabled, deleted or changed since the worker loaded it
        (by any process); leave it alone otherwise."""
        async with self._syncing:  # one at a time: a worker starts before the next looks
            await self._sync(sink_id)

    async def _sync(self, sink_id: int) -> None:
        if self._nursery is None:
            return
        extra = {"sink_id": sink_id}
        try:
            row: SinkRow | None = await run_blocking(self.hub.store.sinks.get, sink_id)
        except LookupError:
            row = None
        handle = self.workers.get(sink_id)
        if handle is not None:
            held = self.hub.cluster.holds(sink_resource(sink_id))
            if row is not None and row.enabled and held and handle.worker.version == row.updated_at:
                return
            del self.workers[sink_id]
            handle.scope.cancel()
        if row is None:
            self.hub.metrics.forget_sink(sink_id)
            if handle is not None:
                log.info("sink #%s: deleted; its worker stopped", sink_id, extra=extra)
            return
        label = f"sink {row.name!r} (#{sink_id})"
        if row.enabled and await self.hub.cluster.claim(sink_resource(sink_id)):
            if handle is None:
                log.info("%s: delivery starts", label, extra=extra)
            await self._start(sink_id)
        elif handle is not None and not row.enabled:
            log.info("%s: paused (disabled)", label, extra=extra)
        elif handle is not None:
            log.info("%s: another process holds its lease", label, extra=extra)

    async def apply_changes(self, changes: list[Change]) -> None:
        """The change feed's handler of sink changes (``hub.changes``)."""
        ids = {c.object_id for c in changes}
        if None in ids:  # several sinks: look at all of them
            rows = await run_blocking(self.hub.store.sinks.list)
            ids = {r.id for r in rows} | set(self.workers)
        for sink_id in sorted(i for i in ids if i is not None):
            await self.sync(sink_id)

    def notify(self, client_ids: set[int] | None = None) -> None:
        """New outbox messages (of these clients): wake their workers."""
        for handle in self.workers.values():
            row = getattr(handle.worker, "row", None)
            if client_ids is None or row is None or row.client_id in client_ids:
                handle.worker.notify()

    async def _prune_loop(self) -> None:
        while True:
            await trio.sleep(self.PRUNE_EVERY_S)
            if not self.hub.cluster.holds(MAINTENANCE):  # once across the processes
                continue
            try:
                await run_blocking(self.hub.store.sinks.prune_outbox)
            except Exception:
                log.exception("pruning the outbox failed; trying again later")
