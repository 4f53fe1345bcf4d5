"""One GPS-Server.net poll: the latest locations first, then the history of the devices
that have news.

The API has no multi-device history (``OBJECT_GET_MESSAGES`` / ``history.php`` take one
IMEI), so a poll is:

1. one ``OBJECT_GET_LOCATIONS,*`` (or ``locations.php``; ``USER_GET_OBJECTS`` when the
   device list is due for a sync, every ``sync_every_s``): the latest ``dt_tracker`` and
   ``dt_server`` of every object;
2. the history since its cursor of each device whose ``dt_tracker`` or ``dt_server`` is
   newer than what its cursor has seen (``dt_server`` moves on a late, back-dated upload
   too), at most ``history_concurrency`` at a time and ``history_budget`` per poll (the
   devices waiting longest go first; the rest are fetched next poll).

So a poll costs ``1 + devices with new data`` requests: ``1 + devices`` when every one
moves.  Ranges come from ``hub.rangepoll.RangeWindow``; message rows have no receive time,
so a late message (fix time at or before the cursor, within ``late_window_s``) is told apart
by the fix times already emitted in that window (``RangeWindow(remember_fixes=True)``).  A
range longer than ``max_window_s`` (after a long outage) is fetched a window per poll.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import trio

from gpshub_gpsserver.api import Api, NoPermission
from gpshub_gpsserver.parse import Location, annotate
from hub.clock import Clock
from hub.errors import InvalidAuth, RateLimited, SourceError
from hub.rangepoll import RangeWindow
from hub.source import Cursor, DeviceRef, PollResult

SEEN = "seen"
"""Cursor state: ``[dt_tracker, dt_server]`` (epoch s) of the location last fetched up to."""
TIME_BUDGET_S = 60.0
"""No history call starts once a poll has run this long (the hub gives a poll 120 s)."""

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


@dataclass(frozen=True)
class PollSettings:
    """The options a poll needs (from ``GpsServerOptions``)."""

    late_window_s: float = 300.0
    backfill_s: float = 3600.0
    sync_every_s: float = 600.0
    history_concurrency: int = 4
    history_budget: int = 1000
    max_window_s: float = 86_400.0


def floor_s(t: datetime) -> datetime:
    """``t`` cut to whole seconds: the API's precision."""
    return t.replace(microsecond=0)


class Poller:
    """Polls one account; keeps the sync time and the warnings given between polls."""

    def __init__(self, api: Api, settings: PollSettings, clock: Clock, log: Logger) -> None:
        self.api = api
        self.settings = settings
        self.clock = clock
        self.log = log
        # history rows carry no receive time: late ones are told by the fix times emitted
        self.window = RangeWindow(settings.late_window_s, settings.backfill_s, remember_fixes=True)
        self.synced_at: datetime | None = None
        self._warned: set[str] = set()

    def _sync_due(self, now: datetime) -> bool:
        if self.synced_at is None:
            return True
        return (now - self.synced_at).total_seconds() >= self.settings.sync_every_s

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        started = trio.current_time()
        self.api.begin_cycle()
        now = floor_s(self.clock.now())
        result = PollResult()
        if self._sync_due(now):
            objects = await self.api.objects()
            locations = {loc.imei: loc for loc in objects}
            self.synced_at = now
            for ref in devices:
                loc = locations.get(ref.upstream_id.strip())
                if loc is not None and loc.remote is not None:
                    result.devices[ref.upstream_id] = loc.remote
        else:
            locations = await self.api.locations()
        due: list[tuple[str, Location, Cursor]] = []
        for ref in devices:
            uid = ref.upstream_id
            loc = locations.get(uid.strip())
            if loc is None:
                self._warn_once(uid, "is not among the account's objects (removed or unshared?)")
                continue
            self._warned.discard(uid)
            cursor = cursors.get(uid) or Cursor()
            if has_news(loc, cursor):
                due.append((uid, loc, cursor))
        due.sort(key=lambda item: _waiting_since(item[2]))
        budget = self.settings.history_budget
        if len(due) > budget:
            self.log.debug(
                "GPS-Server.net: %d devices have news, %d fetched this poll", len(due), budget
            )
        await self._fetch_all(due[:budget], now, result, started)
        return result

    async def _fetch_all(
        self,
        due: list[tuple[str, Location, Cursor]],
        now: datetime,
        result: PollResult,
        started: float,
    ) -> None:
        """The history calls, ``history_concurrency`` at a time; the first error (an auth
        error before any other) is raised once they have stopped."""
        errors: list[SourceError] = []
        limiter = trio.CapacityLimiter(self.settings.history_concurrency)

        async with trio.open_nursery() as nursery:

            async def one(uid: str, loc: Location, cursor: Cursor) -> None:
                async with limiter:
                    if errors or trio.current_time() - started > TIME_BUDGET_S:
                        return
                    try:
                        await self._fetch(uid, loc, cursor, now, result)
                    except SourceError as exc:
                        errors.append(exc)
                        nursery.cancel_scope.cancel()

            for uid, loc, cursor in due:
                nursery.start_soon(one, uid, loc, cursor)
        if errors:
            raise _worst(errors)

    async def _fetch(
        self, uid: str, loc: Location, cursor: Cursor, now: datetime, result: PollResult
    ) -> None:
        start = floor_s(self.window.start(cursor, now))
        target = max(now, loc.fix_time) if loc.fix_time is not None else now
        end = min(target, start + timedelta(seconds=self.settings.max_window_s))
        try:
            fixes = await self.api.messages(uid.strip(), start, end)
        except NoPermission as exc:
            self._warn_once(uid, f"cannot be read by this account ({exc})")
            return
        emitted, new_cursor = self.window.select(
            cursor, ((f.fix_time, None, f) for f in fixes), scanned_to=end
        )
        if end >= target:
            new_cursor.state[SEEN] = list(loc.mark)
        result.cursors[uid] = new_cursor
        if emitted:
            result.fixes[uid] = [annotate(f, loc) for f in emitted]

    def _warn_once(self, uid: str, what: str) -> None:
        if uid in self._warned:
            return
        self._warned.add(uid)
        self.log.warning("GPS-Server.net device %r %s; skipped", uid, what)


def has_news(loc: Location, cursor: Cursor) -> bool:
    """Whether the object's latest location is newer than what its cursor has seen."""
    tracker, server = loc.mark
    if not tracker and not server:
        return False  # never reported
    seen = cursor.state.get(SEEN)
    if not (isinstance(seen, list) and len(seen) == 2):
        return True
    try:
        return tracker > float(seen[0]) or server > float(seen[1])
    except (TypeError, ValueError):
        return True


def _waiting_since(cursor: Cursor) -> float:
    """Sort key: a device never fetched first, then the oldest cursor."""
    return cursor.last_fix_time.timestamp() if cursor.last_fix_time else float("-inf")


def _worst(errors: list[SourceError]) -> SourceError:
    for kind in (InvalidAuth, RateLimited):
        for exc in errors:
            if isinstance(exc, kind):
                return exc
    return errors[0]


def settings_from(options: Any) -> PollSettings:
    """``PollSettings`` from a ``GpsServerOptions``."""
    return PollSettings(
        late_window_s=options.late_window_s,
        backfill_s=options.backfill_s,
        sync_every_s=options.sync_every_s,
        history_concurrency=options.history_concurrency,
        history_budget=options.history_budget,
        max_window_s=options.max_window_s,
    )
