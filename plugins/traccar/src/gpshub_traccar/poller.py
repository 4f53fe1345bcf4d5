"""One Traccar poll: every fix since each device's cursor, from the route report.

``GET /api/reports/route`` takes many ``deviceId`` values and one ``from``/``to`` window
(``/api/positions`` takes one device only: repeating ``deviceId`` there answers the first).
So devices are grouped by where their range starts (``hub.rangepoll.group_by_start``),
``batch_size`` per call, and each call's window is bounded by ``max_window_s``:

* in steady state every device starts at "previous poll - late_window_s", so a poll is
  ``ceil(devices / batch_size)`` calls (plus one ``/api/devices`` every ``sync_every_s``);
* a silent device (no fix for longer than the late window: parked, switched off, out of
  coverage with its fixes in its black box) keeps its range from its last fix on, so the
  fixes it uploads when it is back are all fetched (``RangeWindow``).  Those ranges start
  anywhere in the last ``max_lookback_s`` and would each need a call of their own, so
  while devices are silent every poll reads ``/api/devices`` (one call for all) and
  fetches a silent device only when its ``positionId`` (the id of its latest position,
  set once that position is stored) differs from the one read before its last complete
  fetch: a silent device that stored nothing new costs nothing;
* a device whose answer reaches ``max_positions`` (Traccar cuts history silently at
  ``report.maxPositions``) or whose window was cut at ``max_window_s`` continues in the
  same poll from where it stopped, within ``page_budget`` extra calls and a time budget;
  what is left is fetched by the next poll, from where it stopped.  A window in which a
  device had no fix at all is followed by one twice as long (a device that was off for
  hours is walked through in a few calls);
* a 400 "Time period exceeds the limit" (``report.periodLimit``) halves the window and
  retries; a 400 "Device access denied" (a device unlinked upstream) re-reads the device
  list and retries without it;
* a user with ``disableReports`` gets 400 "Operation restricted" on every report: the
  poller falls back to ``GET /api/positions`` (the latest position of every device, one
  call), which misses fixes between polls, and says so once in the log.

Upstream ids are Traccar device ids; a device added by hand with its ``uniqueId`` (IMEI)
as the upstream id is matched through the device list.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import trio

from gpshub_traccar.client import TraccarClient, TraccarRequestError, floor_ms
from gpshub_traccar.parse import (
    BadShape,
    Device,
    Header,
    by_device,
    parse_devices,
    parse_headers,
    parse_positions,
    to_position,
)
from hub.clock import Clock
from hub.errors import UpdateFailed
from hub.rangepoll import RESUME, RangeWindow, group_by_start
from hub.source import Cursor, DeviceRef, PollResult, RemoteDevice

MIN_WINDOW_S = 60.0
TIME_BUDGET_S = 60.0
"""No further call starts once a poll has run this long (the hub gives a poll 120 s)."""
ONE_MS = timedelta(milliseconds=1)
LATEST = "pid"
"""Cursor state: the device's ``positionId`` as read before its last complete fetch."""
WALK_LATEST = "pid_walk"
"""Cursor state, while a range is walked through over several polls: the ``positionId``
read before the walk began."""


@dataclass(frozen=True)
class PollSettings:
    """The options a poll needs (from ``TraccarOptions``)."""

    late_window_s: float = 300.0
    backfill_s: float = 3600.0
    max_lookback_s: float = 86_400.0
    batch_size: int = 200
    sync_every_s: float = 600.0
    max_window_s: float = 3600.0
    max_positions: int = 50_000
    page_budget: int = 20


class Catalog:
    """The account's devices as last read from ``/api/devices``."""

    def __init__(self, devices: Sequence[Device], at: datetime) -> None:
        self.at = at
        self.by_id = {d.id: d for d in devices}
        self.by_unique = {d.unique_id: d.id for d in devices if d.unique_id}
        self.latest = {d.id: d.position_id for d in devices if d.position_id is not None}
        """Each device's ``positionId``, where the list gave one."""

    def resolve(self, upstream_id: str) -> int | None:
        """The Traccar id of a hub device: its upstream id, or a matching ``uniqueId``."""
        text = upstream_id.strip()
        if text.isdigit() and int(text) in self.by_id:
            return int(text)
        return self.by_unique.get(text)


class RoutePoller:
    """Polls one Traccar account; keeps what must survive between polls of this instance
    (the device list, whether reports are disabled).  Cursors hold everything else."""

    def __init__(
        self,
        client: TraccarClient,
        settings: PollSettings,
        clock: Clock,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self.log = log
        self.window = RangeWindow(
            settings.late_window_s, settings.backfill_s, max_lookback_s=settings.max_lookback_s
        )
        self.window_s = settings.max_window_s
        self.widest_s: float | None = None
        """The longest period Traccar accepts, once it refused a longer one."""
        self.catalog: Catalog | None = None
        self.synced_at: datetime | None = None
        self.missing: set[str] = set()
        self.reports_disabled = False
        self._warned_disabled = False
        self._warned_missing: set[str] = set()

    # -- the device list ---------------------------------------------------------------
    async def read_devices(self) -> Catalog:
        """Read the device list again (``Catalog.latest`` too)."""
        body = await self.client.devices()
        try:
            devices = parse_devices(body)
        except BadShape as exc:
            raise UpdateFailed(f"Traccar sent an unusable device list: {exc}") from None
        catalog = self.catalog = Catalog(devices, self.clock.now())
        self.missing = {u for u in self.missing if catalog.resolve(u) is None}
        self._warned_missing &= self.missing  # warn again if one goes away again
        return catalog

    async def sync(self) -> Catalog:
        """Read the device list for its names (and retry the route report if it was
        refused)."""
        catalog = await self.read_devices()
        self.synced_at = catalog.at
        self.reports_disabled = False
        return catalog

    def _sync_due(self, now: datetime) -> bool:
        if self.synced_at is None:
            return True
        return (now - self.synced_at).total_seconds() >= self.settings.sync_every_s

    def _resolve(self, devices: Sequence[DeviceRef]) -> dict[str, int]:
        assert self.catalog is not None
        out: dict[str, int] = {}
        for ref in devices:
            traccar_id = self.catalog.resolve(ref.upstream_id)
            if traccar_id is not None:
                out[ref.upstream_id] = traccar_id
        return out

    def _note_missing(self, devices: Sequence[DeviceRef], targets: Mapping[str, int]) -> None:
        for ref in devices:
            if ref.upstream_id in targets:
                continue
            self.missing.add(ref.upstream_id)
            if ref.upstream_id not in self._warned_missing:
                self._warned_missing.add(ref.upstream_id)
                self.log.warning(
                    "Traccar device %r is not visible to this account (removed or unlinked?);"
                    " it is not polled until it is visible again",
                    ref.upstream_id,
                )

    # -- a poll ------------------------------------------------------------------------
    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        started = trio.current_time()
        now = floor_ms(self.clock.now())
        result = PollResult()
        synced = False
        if self._sync_due(now):
            await self.sync()
            synced = True
        elif self._latest_wanted(devices, cursors, now):
            await self.read_devices()  # whether silent devices stored anything new
        targets = self._resolve(devices)
        unknown = [d for d in devices if d.upstream_id not in targets]
        if not synced and any(d.upstream_id not in self.missing for d in unknown):
            await self.sync()  # a device imported since the last sync
            synced = True
            targets = self._resolve(devices)
        self._note_missing(devices, targets)
        if synced:
            result.devices = self._remote(targets)
        if not targets:
            return result
        if not self.reports_disabled:
            current = {uid: cursors.get(uid) or Cursor() for uid in targets}
            try:
                await self._history(targets, current, now, result, started)
                return result
            except TraccarRequestError as exc:
                if not exc.reports_disabled:
                    raise
                self.reports_disabled = True
                self._warn_disabled()
        await self._latest(targets, cursors, result)
        return result

    def _latest_wanted(
        self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor], now: datetime
    ) -> bool:
        """Whether this poll needs the devices' ``positionId`` read again: a device that is
        polled is silent, and the list was not read at this instant already."""
        if self.reports_disabled or (self.catalog is not None and self.catalog.at >= now):
            return False
        return any(
            self.window.silent(cursors.get(d.upstream_id) or Cursor(), now)
            for d in devices
            if d.upstream_id not in self.missing
        )

    def _remote(self, targets: Mapping[str, int]) -> dict[str, RemoteDevice]:
        assert self.catalog is not None
        return {
            uid: dataclasses.replace(self.catalog.by_id[tid].remote, upstream_id=uid)
            for uid, tid in targets.items()
        }

    def _warn_disabled(self) -> None:
        message = (
            "Traccar refuses reports to this user (disableReports): falling back to the latest"
            " position of each device per poll; fixes between two polls are missed"
        )
        if self._warned_disabled:
            self.log.debug(message)
        else:
            self._warned_disabled = True
            self.log.warning(message)

    async def _history(
        self,
        targets: dict[str, int],
        current: dict[str, Cursor],
        now: datetime,
        result: PollResult,
        started: float,
    ) -> None:
        settings = self.settings
        assert self.catalog is not None
        latest = dict(self.catalog.latest)  # as read before any fetch of this poll
        fresh = self.catalog.at >= now
        walking = {uid for uid in targets if RESUME in current[uid].state}  # since a poll before
        pending = {
            uid: self._start(current[uid], now)
            for uid in targets
            if not (fresh and self._nothing_new(current[uid], latest.get(targets[uid]), now))
        }
        span = settings.late_window_s or 300.0
        widths: dict[str, float] = {}  # wider than window_s after an empty window
        calls = 0
        allowance: int | None = None
        resynced = False
        while pending:
            groups = group_by_start(pending, size=settings.batch_size, span_s=span)
            if allowance is None:
                allowance = len(groups) + settings.page_budget
            later: dict[str, datetime] = {}
            for start, uids in groups:
                if calls >= allowance or (calls and trio.current_time() - started > TIME_BUDGET_S):
                    self.log.debug(
                        "Traccar poll budget used (%d calls): the rest continues next poll", calls
                    )
                    return
                width = min(widths.get(u, self.window_s) for u in uids)
                end = min(now, start + timedelta(seconds=width))
                calls += 1
                try:
                    body = await self.client.route([targets[u] for u in uids], start, end)
                except TraccarRequestError as exc:
                    if exc.period_too_long and width > MIN_WINDOW_S:
                        self._limit_period(width)
                        for u in uids:
                            widths.pop(u, None)
                        later.update((u, start) for u in uids)
                        continue
                    if exc.access_denied and not resynced:
                        resynced = True
                        catalog = await self.read_devices()
                        visible = {u for u in uids if catalog.resolve(u) == targets[u]}
                        gone = [u for u in uids if u not in visible]
                        self._note_missing([DeviceRef(0, u) for u in gone], {})
                        for u in gone:
                            targets.pop(u, None)
                        later.update((u, start) for u in visible)
                        continue
                    raise
                try:
                    headers = parse_headers(body)
                except BadShape as exc:
                    raise UpdateFailed(f"Traccar sent an unusable route report: {exc}") from None
                grouped = by_device(headers)
                for uid in uids:
                    found = grouped.get(targets[uid], [])
                    resume = self._select(uid, found, current, end, now, result)
                    self._note_latest(
                        uid,
                        latest.get(targets[uid]),
                        current,
                        result,
                        cut=resume is not None,
                        walking=uid in walking,
                    )
                    if resume is not None and resume > start:
                        later[uid] = resume
                    if resume == end and not found:
                        # hours without a fix (a device that was off): stride on faster
                        widths[uid] = min(2 * width, self.widest_s or math.inf)
                    else:
                        widths.pop(uid, None)
            pending = later

    def _limit_period(self, refused_s: float) -> None:
        """Traccar refused a period of ``refused_s``: ask for half as much from now on."""
        limit = max(refused_s / 2, MIN_WINDOW_S)
        self.widest_s = limit if self.widest_s is None else min(self.widest_s, limit)
        if self.window_s > limit:
            self.window_s = limit
            self.log.info(
                "Traccar limits report periods: windows of %.0f s from now on", self.window_s
            )

    def _nothing_new(self, cursor: Cursor, latest: int | None, now: datetime) -> bool:
        """Whether a device is silent and Traccar stored no newer position for it since
        its last complete fetch: its ``positionId`` is still the one read before it."""
        return (
            latest is not None
            and cursor.state.get(LATEST) == latest
            and self.window.silent(cursor, now)
        )

    @staticmethod
    def _note_latest(
        uid: str,
        latest: int | None,
        current: dict[str, Cursor],
        result: PollResult,
        *,
        cut: bool,
        walking: bool,
    ) -> None:
        """Keep in the device's cursor the ``positionId`` read before its range was fetched
        whole: read before this poll's fetch, or, for a range walked through over several
        polls, before the poll that started the walk (a newer latest position stored
        meanwhile has another id, so the device is fetched again)."""
        state = dict(current[uid].state)
        started = state.pop(WALK_LATEST, None)
        if cut:
            if started is None and not walking and latest is not None:
                state[WALK_LATEST] = latest
            elif started is not None:
                state[WALK_LATEST] = started
        elif started is not None:
            state[LATEST] = started
        elif not walking and latest is not None:
            state[LATEST] = latest
        if state != current[uid].state:
            current[uid] = result.cursors[uid] = Cursor(current[uid].last_fix_time, state)

    def _start(self, cursor: Cursor, now: datetime) -> datetime:
        """Where a device's range starts: where a cut answer stopped, else the window's
        (whole milliseconds, as Traccar stores them)."""
        return floor_ms(self.window.start(cursor, now))

    def _select(
        self,
        uid: str,
        headers: list[Header],
        current: dict[str, Cursor],
        end: datetime,
        now: datetime,
        result: PollResult,
    ) -> datetime | None:
        """Emit one device's new fixes of one answer; where to go on from if the answer
        was cut (``max_positions``) or its window ended before ``now``, else ``None``."""
        if len(headers) >= self.settings.max_positions:
            resume: datetime | None = floor_ms(max(h.fix_time for h in headers)) + ONE_MS
        else:
            resume = end if end < now else None
        fresh, cursor = self.window.select(
            current[uid],
            ((h.fix_time, h.received, h) for h in headers),
            scanned_to=None if resume is not None else end,
            resume_from=resume,
        )
        fixes = [to_position(h).fix for h in fresh]
        current[uid] = cursor
        result.cursors[uid] = cursor
        if fixes:
            result.fixes.setdefault(uid, []).extend(fixes)
        return resume

    async def _latest(
        self, targets: Mapping[str, int], cursors: Mapping[str, Cursor], result: PollResult
    ) -> None:
        """The fallback without reports: the latest position of each device, if it is new."""
        body = await self.client.latest()
        try:
            grouped = by_device(parse_positions(body))
        except BadShape as exc:
            raise UpdateFailed(f"Traccar sent unusable positions: {exc}") from None
        for uid, traccar_id in targets.items():
            found = grouped.get(traccar_id)
            if not found:
                continue
            fix = max((p.fix for p in found), key=lambda f: f.fix_time)
            cursor = cursors.get(uid) or Cursor()
            if cursor.last_fix_time is None or fix.fix_time > cursor.last_fix_time:
                result.fixes[uid] = [fix]
                result.cursors[uid] = Cursor(fix.fix_time, dict(cursor.state))


def settings_from(options: Any) -> PollSettings:
    """``PollSettings`` from a ``TraccarOptions``."""
    return PollSettings(
        late_window_s=options.late_window_s,
        backfill_s=options.backfill_s,
        max_lookback_s=options.max_lookback_s,
        batch_size=options.batch_size,
        sync_every_s=options.sync_every_s,
        max_window_s=options.max_window_s,
        max_positions=options.max_positions,
        page_budget=options.page_budget,
    )
