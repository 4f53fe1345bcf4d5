"""One poll of 3D Tracking's two account-wide delta feeds: positions and sensor readings.

Both feeds are ordered by the server's record id, not by GPS time, so a late (back-dated)
record simply arrives in a later page: nothing is looked at twice.  Where each feed stands
(``start_id`` for ``Data/PositionsList``, ``readings_id`` for ``Data/SensorReadingsList``)
is not kept in the connection's state (written outside the fixes' transaction) but in the
cursor state of every polled device: the runner commits it with the fixes, so a crash
between the two neither loses nor repeats a page.  A poll goes on from the highest ids
among the cursors.

First start.  No cursor has an id yet: the position feed is skipped ahead to "now -
backfill_s" (``PagedFeed.seek``, a few requests instead of paging through the day the
feeds return by default), and each device keeps ``floor`` (that moment) in its cursor
until the position feed has been read to its end: a fix older than the floor is dropped,
so no history beyond the backfill is stored however many polls the catch-up takes.  The
reading feed is skipped ahead when the first position page needs its readings, to that
page's oldest fix less the sensor window (by then the positions have shown the account's
local-time offset, which readings without a UTC time need).

Lockstep.  Each position page is followed by the reading pages that cover it: readings
are read until one is newer than the page's latest arrival (by more than the sensor
window) or their feed ends.  A reading taken after that moment arrived after it, and the
feed is in arrival order, so the readings that came with the page's fixes are then in
hand and ``ReadingPool`` attaches them (see ``gpshub_tracking3d.readings``).  In steady
state that is one position page and the reading pages since the last poll.

Budget.  A poll fetches at most ``page_budget`` position pages and stops taking new ones
after ``time_budget_s`` (the runner gives a poll 120 s); the rest waits for the next poll.
Position pages are taken back to back, as fast as the server answers: an HTTP 429 after
some pages ends the poll early with what it has (the next poll goes on from there)
instead of losing them.  A page whose readings could not all be fetched is left for the
next poll whole.

Devices imported later (no ``start_id`` of their own while others have one) get their
recent history once: the feeds skipped ahead to "now - backfill_s" again, read for those
devices up to where the others stand, after the others' new records (so live data never
waits for them).  If the budget ends that catch-up early, those devices keep their own,
lower ids and it goes on next poll; their records from the shared part are then left for
that later read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import trio

from gpshub_tracking3d.client import Tracking3DClient
from gpshub_tracking3d.paging import PagedFeed
from gpshub_tracking3d.parse import BadShape, FeedPage, Position, by_unit, parse_feed
from gpshub_tracking3d.readings import ReadingPool, ReadingsPage, parse_readings
from hub.errors import RateLimited, UpdateFailed
from hub.source import Cursor, DeviceRef, PollResult

START_ID = "start_id"
READINGS_ID = "readings_id"
FLOOR = "floor"
CARRY = "readings"
OFFSET_KEY = "local_offset_s"
"""Connection-state key of the account's local-time offset, learned from the feed."""

READING_PAGES_PER_PAGE = 20
"""Reading pages a poll may fetch per position page of its budget (a unit reports a few
readings per position)."""


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """The options one poll follows."""

    backfill_s: float = 3600.0
    page_budget: int = 100
    page_size: int = 0
    """The server's page cap when known; 0: learn it from the answers."""
    sensor_window_s: float = 60.0
    time_budget_s: float = 60.0


@dataclass(slots=True)
class Budget:
    """What is left of one poll's requests and time."""

    pages: int
    readings: int
    deadline: float
    progress: bool = False
    """Whether a position page was taken: a 429 then ends the poll instead of failing it."""
    cut: bool = False

    def page(self) -> bool:
        if self.pages <= 0 or trio.current_time() >= self.deadline:
            self.cut = True
            return False
        self.pages -= 1
        return True

    def reading(self) -> bool:
        if self.readings <= 0:
            self.cut = True
            return False
        self.readings -= 1
        return True


@dataclass(slots=True)
class Run:
    """What reading a stretch of the feeds gave: positions in feed order, where each feed
    now stands, and whether the stretch was read to its end."""

    positions: list[Position] = field(default_factory=list)
    start_id: int | None = None
    readings_id: int | None = None
    done: bool = False
    at_end: bool = False


@dataclass(slots=True)
class _Outcome:
    """How a poll's reading ended for each device: its fixes in feed order, its two ids
    and its floor, and whether it is caught up (the floor can go)."""

    fixes: dict[str, list[Position]]
    start_ids: dict[str, int | None]
    readings_ids: dict[str, int | None]
    floors: dict[str, float]
    caught_up: set[str]


@dataclass(slots=True)
class _ReadingsAt:
    """Where a stretch of reading stands in the reading feed, and for whom it reads."""

    start_id: int | None
    stop: int | None
    units: set[str]
    floors: Mapping[str, float]
    sought: bool = True
    """Whether ``start_id`` is known (else the feed is skipped ahead when first needed)."""
    newest: float | None = None
    done: bool = False


def _id(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _epoch(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _reached(at: int | None, stop: int | None) -> bool:
    return at is not None and stop is not None and at >= stop


class FeedPoller:
    """Reads both feeds for a connection's devices (see the module docstring)."""

    def __init__(
        self,
        client: Tracking3DClient,
        settings: FeedSettings,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.client = client
        self.settings = settings
        self.log = log
        self.positions: PagedFeed[FeedPage] = PagedFeed(
            "position feed", self._position_page, settings.page_size, log
        )
        self.readings: PagedFeed[ReadingsPage] = PagedFeed(
            "sensor reading feed", self._reading_page, settings.page_size, log
        )
        self.offsets: dict[str, float] = {}
        self.offset: float | None = None
        self._saved_offset: float | None = None
        self._loaded = False
        self._guessed = False

    # -- the two feeds -------------------------------------------------------------------
    async def _position_page(self, start_id: int | None) -> FeedPage:
        body = await self.client.positions(start_id)
        try:
            page = parse_feed(body)
        except BadShape as exc:
            raise UpdateFailed(f"3D Tracking sent an unusable position feed: {exc}") from None
        for position in page.positions:
            if position.local_offset is not None:
                self.offsets[position.unit] = self.offset = position.local_offset
        return page

    async def _reading_page(self, start_id: int | None) -> ReadingsPage:
        body = await self.client.readings(start_id)
        try:
            return parse_readings(body, self._offset_of)
        except BadShape as exc:
            raise UpdateFailed(f"3D Tracking sent unusable sensor readings: {exc}") from None

    def _offset_of(self, unit: str) -> float:
        offset = self.offsets.get(unit, self.offset)
        if offset is None:
            if not self._guessed:
                self._guessed = True
                self.log.info(
                    "3D Tracking: a sensor reading has only a local time and the position"
                    " feed has shown no local time yet; read as UTC until it does"
                )
            return 0.0
        return offset

    async def _load_offset(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        saved = _epoch(await self.client.state.get(OFFSET_KEY))
        self._saved_offset = saved
        if self.offset is None:
            self.offset = saved

    async def _save_offset(self) -> None:
        if self.offset is not None and self.offset != self._saved_offset:
            await self.client.state.set(OFFSET_KEY, self.offset)
            self._saved_offset = self.offset

    # -- a poll --------------------------------------------------------------------------
    async def poll(
        self,
        devices: Sequence[DeviceRef],
        cursors: Mapping[str, Cursor],
        now: datetime,
        result: PollResult,
    ) -> PollResult:
        await self._load_offset()
        ours = [d.upstream_id for d in devices]
        states = {u: (cursors.get(u) or Cursor()).state for u in ours}
        pool = ReadingPool(self.settings.sensor_window_s)
        for unit in ours:
            pool.load(unit, states[unit].get(CARRY))
        outcome = await self._read(ours, states, now, pool)
        await self._save_offset()
        for unit in ours:
            old = cursors.get(unit) or Cursor()
            last = old.last_fix_time
            for position in outcome.fixes.get(unit, ()):
                pool.attach(unit, position.fix)
                result.add(unit, position.fix)
                if last is None or position.fix.fix_time > last:
                    last = position.fix.fix_time
            state: dict[str, Any] = dict(old.state)
            for key, value in (
                (START_ID, outcome.start_ids.get(unit)),
                (READINGS_ID, outcome.readings_ids.get(unit)),
            ):
                if value is not None:
                    state[key] = value
            if unit in outcome.floors and unit not in outcome.caught_up:
                state[FLOOR] = outcome.floors[unit]
            else:
                state.pop(FLOOR, None)
            carry = pool.carry(unit, None if last is None else last.timestamp())
            if carry:
                state[CARRY] = carry
            else:
                state.pop(CARRY, None)
            result.cursors[unit] = Cursor(last, state)
        return result

    async def _read(
        self,
        ours: list[str],
        states: Mapping[str, Mapping[str, Any]],
        now: datetime,
        pool: ReadingPool,
    ) -> _Outcome:
        """Read both feeds for the devices: the shared part first, then the catch-up of
        devices behind the others (see the module docstring)."""
        settings = self.settings
        pos_ids = {u: _id(states[u].get(START_ID)) for u in ours}
        rd_ids = {u: _id(states[u].get(READINGS_ID)) for u in ours}
        floors = {u: f for u in ours if (f := _epoch(states[u].get(FLOOR))) is not None}
        budget = Budget(
            settings.page_budget,
            settings.page_budget * READING_PAGES_PER_PAGE,
            trio.current_time() + settings.time_budget_s,
        )
        seen: set[tuple[str, datetime]] = set()
        fresh_floor = now.timestamp() - settings.backfill_s
        for unit in ours:
            if pos_ids[unit] is None:  # new: nothing before the backfill, from anywhere
                floors[unit] = fresh_floor
        pos_main = max((i for i in pos_ids.values() if i is not None), default=None)
        rd_main = max((i for i in rd_ids.values() if i is not None), default=None)
        pos_from, pos_page = pos_main, None
        if pos_main is None:  # the first start: skip ahead (the readings when needed)
            pos_from, pos_page = await self.positions.seek(fresh_floor)
        main = await self._run(
            set(ours), floors, (pos_from, pos_page, None), (rd_main, None), budget, seen, pool
        )
        main_units = {u for u in ours if pos_main is None or pos_ids[u] == pos_main}
        behind: dict[int | None, list[str]] = {}
        for unit in ours:
            if unit not in main_units:
                behind.setdefault(pos_ids[unit], []).append(unit)
        outcome = _Outcome(
            fixes=by_unit(main.positions),
            start_ids=dict.fromkeys(main_units, main.start_id),
            readings_ids=dict.fromkeys(main_units, main.readings_id),
            floors=floors,
            caught_up=set(main_units) if main.at_end else set(),
        )
        for start, group in sorted(behind.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
            run = await self._catch_up(
                start, group, rd_ids, floors, fresh_floor, (pos_from, rd_main), budget, seen, pool
            )
            earlier = by_unit(run.positions)
            for unit in group:
                if run.done:  # joined the others: what the shared read took follows
                    later = outcome.fixes.get(unit, [])
                    outcome.start_ids[unit], outcome.readings_ids[unit] = (
                        main.start_id,
                        main.readings_id,
                    )
                    if main.at_end:
                        outcome.caught_up.add(unit)
                else:  # goes on next poll from its own ids; the shared part waits
                    later = []
                    outcome.start_ids[unit], outcome.readings_ids[unit] = (
                        run.start_id,
                        run.readings_id,
                    )
                outcome.fixes[unit] = [*earlier.get(unit, ()), *later]
        if budget.cut:
            self.log.info(
                "3D Tracking: the feed is behind; this poll's budget is used (%d position"
                " page(s)), the rest follows next poll",
                settings.page_budget - budget.pages,
            )
        return outcome

    async def _catch_up(
        self,
        start: int | None,
        group: list[str],
        rd_ids: Mapping[str, int | None],
        floors: Mapping[str, float],
        fresh_floor: float,
        stops: tuple[int | None, int | None],
        budget: Budget,
        seen: set[tuple[str, datetime]],
        pool: ReadingPool,
    ) -> Run:
        """Read both feeds for devices behind the others, up to where this poll's shared
        read began (``stops``: its two start ids)."""
        pos_stop, rd_stop = stops
        pos_from, pos_page = start, None
        if start is None:  # imported since: their recent history, once
            pos_from, pos_page = await self.positions.seek(fresh_floor)
        own = [i for i in (rd_ids.get(u) for u in group) if i is not None]
        rd_from = min(own) if start is not None and own else None  # None: seek when needed
        return await self._run(
            set(group),
            floors,
            (pos_from, pos_page, pos_stop),
            (rd_from, rd_stop),
            budget,
            seen,
            pool,
        )

    async def _run(
        self,
        units: set[str],
        floors: Mapping[str, float],
        pos: tuple[int | None, FeedPage | None, int | None],
        rd: tuple[int | None, int | None],
        budget: Budget,
        seen: set[tuple[str, datetime]],
        pool: ReadingPool,
    ) -> Run:
        """Read the position feed from ``pos`` (start id, a page already fetched there,
        where to stop) with the readings that cover each page from ``rd`` (start id, or
        ``None`` to skip ahead to the first page's fixes; where to stop), for ``units``."""
        start_id, page, stop = pos
        readings = _ReadingsAt(rd[0], rd[1], units, floors, sought=rd[0] is not None)
        readings.done = _reached(readings.start_id, readings.stop)
        run = Run(start_id=start_id)
        if _reached(start_id, stop):
            run.done = True
        while not run.done:
            if page is None:
                if not budget.page():
                    break
                try:
                    page = await self.positions.page(run.start_id)
                except RateLimited as exc:
                    if not budget.progress:
                        raise
                    self._rate_limited(exc, budget)
                    break
            if page.positions and not await self._cover(page, readings, budget, pool):
                break  # the page waits for the next poll, whole
            for position in page.positions:
                self._take(position, units, floors, seen, run.positions)
            run.start_id, end = self.positions.step(run.start_id, page)
            page = None
            budget.progress = True
            run.at_end = end
            run.done = end or _reached(run.start_id, stop)
        run.readings_id = readings.start_id
        return run

    async def _cover(
        self, positions: FeedPage, at: _ReadingsAt, budget: Budget, pool: ReadingPool
    ) -> bool:
        """Read readings until one is newer than the page's latest arrival by more than
        the sensor window, or their stretch ends; ``False`` when the budget or a 429
        stopped it first.  Where the stretch has no start yet, the reading feed is first
        skipped ahead to the page's oldest fix (less the window, not before the floor)."""
        window = self.settings.sensor_window_s
        target = positions.newest
        try:
            if not at.sought:
                oldest = min(p.fix.fix_time.timestamp() for p in positions.positions)
                floors = [at.floors[u] for u in at.units if u in at.floors]
                start = max(oldest, min(floors, default=oldest)) - window
                at.start_id, first = await self.readings.seek(start)
                at.sought = True
                if first is not None:
                    self._add_readings(first, at, pool)
            while (
                target is not None
                and not at.done
                and (at.newest is None or at.newest <= target + window)
            ):
                if not budget.reading():
                    return False
                self._add_readings(await self.readings.page(at.start_id), at, pool)
        except RateLimited as exc:
            if not budget.progress:
                raise
            self._rate_limited(exc, budget)
            return False
        return True

    def _add_readings(self, page: ReadingsPage, at: _ReadingsAt, pool: ReadingPool) -> None:
        window = self.settings.sensor_window_s
        for reading in page.readings:
            floor = at.floors.get(reading.unit, -math.inf) - window
            if reading.unit in at.units and reading.t >= floor:
                pool.add(reading)
        if page.newest is not None and (at.newest is None or page.newest > at.newest):
            at.newest = page.newest
        at.start_id, end = self.readings.step(at.start_id, page)
        at.done = end or _reached(at.start_id, at.stop)

    def _rate_limited(self, exc: RateLimited, budget: Budget) -> None:
        budget.pages = budget.readings = 0
        self.log.info("3D Tracking: %s; this poll keeps what it read, the rest follows", exc)

    @staticmethod
    def _take(
        position: Position,
        units: set[str],
        floors: Mapping[str, float],
        seen: set[tuple[str, datetime]],
        out: list[Position],
    ) -> None:
        if position.unit not in units:
            return
        floor = floors.get(position.unit)
        if floor is not None and position.fix.fix_time.timestamp() < floor:
            return
        key = (position.unit, position.fix.fix_time)
        if key in seen:
            return
        seen.add(key)
        out.append(position)
