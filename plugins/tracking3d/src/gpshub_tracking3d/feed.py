"""One poll of the account-wide delta feed ``Data/PositionsList``.

The feed is ordered by the server's record id, not by GPS time, so a late (back-dated)
record simply arrives in a later page: nothing is looked at twice.  The ``StartId`` to ask
next is not kept in the connection's state (which is written outside the fixes'
transaction) but in the cursor state of every polled device (``{"start_id": N}``): the
runner commits it with the fixes, so a crash between the two neither loses nor repeats a
page.  The next poll starts from the highest ``start_id`` among the cursors.

Pages are fetched while the last one was not empty, at most ``page_budget`` per poll (the
rest waits for the next poll).  The loop also stops on a page shorter than the longest one
seen (or than ``feed_page_size`` when configured): the server's page cap is at least that,
so a shorter page means the feed was exhausted, which saves the trailing empty request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gpshub_tracking3d.client import Tracking3DClient
from gpshub_tracking3d.parse import BadShape, Position, parse_feed
from hub.errors import UpdateFailed
from hub.source import Cursor, DeviceRef, PollResult

START_ID = "start_id"


@dataclass(frozen=True, slots=True)
class FeedSettings:
    """The options one poll follows."""

    backfill_s: float = 3600.0
    page_budget: int = 20
    page_size: int = 0
    """The server's page cap when known; 0: learn it from the answers."""


def start_id_of(cursors: Mapping[str, Cursor]) -> int | None:
    """The highest ``start_id`` kept in the cursors, or ``None`` when none has one."""
    best: int | None = None
    for cursor in cursors.values():
        value = cursor.state.get(START_ID)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            best = value if best is None else max(best, value)
    return best


class FeedPoller:
    """Reads the delta feed for a connection's devices (see the module docstring)."""

    def __init__(
        self,
        client: Tracking3DClient,
        settings: FeedSettings,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.client = client
        self.settings = settings
        self.log = log
        self.learned_page = settings.page_size
        self.last_pages = 0

    async def poll(
        self,
        devices: Sequence[DeviceRef],
        cursors: Mapping[str, Cursor],
        now: datetime,
        result: PollResult,
    ) -> PollResult:
        ours = {d.upstream_id for d in devices}
        start_id = start_id_of(cursors)
        backfill = now - timedelta(seconds=self.settings.backfill_s)
        seen: set[tuple[str, datetime]] = set()
        budget = max(self.settings.page_budget, 1)
        pages = 0
        if start_id is not None:
            # devices imported since the feed began (no start_id of their own) get their
            # recent history from the feed's default window, once; the rest is shared
            new = {u for u in ours if START_ID not in (cursors.get(u) or Cursor()).state}
            if new:
                _, pages = await self._read(None, new, backfill, seen, result, budget, start_id)
        floor = backfill if start_id is None else None
        next_id, used = await self._read(start_id, ours, floor, seen, result, budget - pages)
        pages += used
        self.last_pages = pages
        for ref in devices:
            old = cursors.get(ref.upstream_id) or Cursor()
            fixes = result.fixes.get(ref.upstream_id) or []
            last = old.last_fix_time
            if fixes:
                newest = max(f.fix_time for f in fixes)
                last = newest if last is None or newest > last else last
            state: dict[str, Any] = dict(old.state)
            if next_id is not None:
                state[START_ID] = next_id
            result.cursors[ref.upstream_id] = Cursor(last, state)
        return result

    async def _read(
        self,
        start_id: int | None,
        ours: set[str],
        floor: datetime | None,
        seen: set[tuple[str, datetime]],
        result: PollResult,
        budget: int,
        stop_at: int | None = None,
    ) -> tuple[int | None, int]:
        """Read feed pages from ``start_id`` (``None``: the server's default window) into
        ``result``, within ``budget`` pages, until the feed is exhausted or past
        ``stop_at``; the next ``StartId`` and the pages used."""
        next_id = start_id
        pages = 0
        while pages < budget:
            body = await self.client.positions(next_id)
            pages += 1
            try:
                page = parse_feed(body)
            except BadShape as exc:
                raise UpdateFailed(f"3D Tracking sent an unusable position feed: {exc}") from None
            for position in page.positions:
                self._take(position, ours, floor, seen, result)
            advanced = page.start_id is not None and (next_id is None or page.start_id > next_id)
            if advanced:
                next_id = page.start_id
            if page.size == 0 or not advanced:
                break
            if stop_at is not None and next_id is not None and next_id >= stop_at:
                break
            if self.learned_page and page.size < self.learned_page:
                break
            self.learned_page = max(self.learned_page, page.size)
        else:
            self.log.debug("3D Tracking feed: page budget of %d used; the rest next poll", budget)
        return next_id, pages

    @staticmethod
    def _take(
        position: Position,
        ours: set[str],
        floor: datetime | None,
        seen: set[tuple[str, datetime]],
        result: PollResult,
    ) -> None:
        if position.unit not in ours:
            return
        if floor is not None and position.fix.fix_time < floor:
            return
        key = (position.unit, position.fix.fix_time)
        if key in seen:
            return
        seen.add(key)
        result.add(position.unit, position.fix)
