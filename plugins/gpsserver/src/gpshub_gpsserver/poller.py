"""One GPS-Server.net poll: the latest locations first, then the history of the devices
that have news, within a request budget.

The API has no multi-device history (``OBJECT_GET_MESSAGES`` / ``history.php`` take one
IMEI), so a poll is:

1. one ``OBJECT_GET_LOCATIONS,*`` (or ``locations.php``; ``USER_GET_OBJECTS`` in its place
   when the device list is due for a sync, every ``sync_every_s``): the latest
   ``dt_tracker`` and ``dt_server`` of every object;
2. the history since its cursor of each device whose ``dt_tracker`` or ``dt_server`` moved
   past what its cursor has seen (``dt_server`` moves on a late, back-dated upload too),
   ``history_concurrency`` at a time.

Every request of a poll counts against ``max_requests_per_poll`` (a login too), so a large
account costs at most that many requests per poll: the histories that do not fit wait for
a later poll, the one owed longest first (round robin: a device just fetched goes to the
back of the queue, so none starves).  A device that waits keeps its cursor, so nothing is
skipped and its fixes arrive late but whole and in order; a device never fetched has its
backfill counted from the poll that first saw it owed.

Ranges come from ``hub.rangepoll.RangeWindow``: from the device's last stored fix minus
``late_window_s`` however long it was silent (bounded by ``max_lookback_s``), so a black-box
upload after a silence is fetched whole.  Message rows have no receive time, so a late
message (fix time at or before the cursor, within ``late_window_s``) is told apart by the
fix times already emitted in that window (``remember_fixes``).  A range longer than
``max_window_s`` is fetched a window per turn, continued where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import trio

from gpshub_gpsserver.api import Api, NoPermission
from gpshub_gpsserver.parse import Location, annotate
from gpshub_gpsserver.transport import BudgetSpent
from hub.clock import Clock
from hub.errors import InvalidAuth, RateLimited, SourceError
from hub.rangepoll import ORIGIN, RangeWindow
from hub.source import Cursor, DeviceRef, PollResult

if TYPE_CHECKING:
    from gpshub_gpsserver.source import GpsServerOptions

SEEN = "seen"
"""Cursor state: ``[dt_tracker, dt_server]`` (epoch s) of the location last fetched up to."""
FETCHED = "fetched"
"""Cursor state: when the device's history was last fetched (epoch s), to order devices
that have been owed equally long (after a restart)."""
TIME_BUDGET_S = 60.0
"""No history call starts once a poll has run this long (the hub gives a poll 120 s)."""

Logger = logging.Logger | logging.LoggerAdapter[logging.Logger]


def floor_s(t: datetime) -> datetime:
    """``t`` cut to whole seconds: the API's precision."""
    return t.replace(microsecond=0)


class Poller:
    """Polls one account; keeps the sync time, the queue of owed histories and the
    warnings given between polls."""

    def __init__(self, api: Api, options: GpsServerOptions, clock: Clock, log: Logger) -> None:
        self.api = api
        self.options = options
        self.clock = clock
        self.log = log
        # history rows carry no receive time: late ones are told by the fix times emitted
        self.window = RangeWindow.of(options, remember_fixes=True)
        self.synced_at: datetime | None = None
        self.owed: dict[str, datetime] = {}
        """Devices whose history is owed, and since when (the poll that first saw news)."""
        self._behind = False
        self._warned: set[str] = set()

    def _sync_due(self, now: datetime) -> bool:
        if self.synced_at is None:
            return True
        return (now - self.synced_at).total_seconds() >= self.options.sync_every_s

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        started = trio.current_time()
        self.api.begin_cycle(self.options.max_requests_per_poll)
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
        due = self._due(devices, cursors, locations, now)
        room = self.api.requests_left
        turn = due if room is None else due[:room]
        self._note_backlog(len(due), len(turn))
        await self._fetch_all(turn, now, result, started)
        return result

    def _due(
        self,
        devices: Sequence[DeviceRef],
        cursors: Mapping[str, Cursor],
        locations: Mapping[str, Location],
        now: datetime,
    ) -> list[tuple[str, Location, Cursor]]:
        """The devices with news, the history owed longest first."""
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
        owed = {uid: self.owed.get(uid, now) for uid, _, _ in due}
        self.owed = owed  # a device without news (or gone) owes nothing any more
        due = [(uid, loc, self._first_range(cursor, owed[uid])) for uid, loc, cursor in due]
        due.sort(key=lambda item: (owed[item[0]], _fetched_at(item[2]), item[0]))
        return due

    def _first_range(self, cursor: Cursor, owed_since: datetime) -> Cursor:
        """A device never fetched gets its backfill counted from the poll that first saw
        it owed, not from the later poll whose budget has room for it."""
        if cursor.last_fix_time is not None or cursor.state:
            return cursor
        origin = owed_since - timedelta(seconds=self.options.backfill_s)
        return Cursor(None, {ORIGIN: origin.timestamp()})

    def _note_backlog(self, due: int, fetched: int) -> None:
        """One INFO line when histories start to wait for later polls, one when caught up."""
        behind = fetched < due
        if behind:
            self.log.debug(
                "GPS-Server.net: %d devices have news, %d fetched this poll (max_requests_per_poll"
                " %d)",
                due,
                fetched,
                self.options.max_requests_per_poll,
            )
        if behind != self._behind:
            self._behind = behind
            if behind:
                self.log.info(
                    "GPS-Server.net: more devices have news than max_requests_per_poll (%d)"
                    " allows; their histories are fetched in turn and arrive late",
                    self.options.max_requests_per_poll,
                )
            else:
                self.log.info("GPS-Server.net: every device's history is fetched again each poll")

    async def _fetch_all(
        self,
        due: list[tuple[str, Location, Cursor]],
        now: datetime,
        result: PollResult,
        started: float,
    ) -> None:
        """The history calls, ``history_concurrency`` at a time, until the request budget
        is spent; the first error (an auth error before any other) is raised once they
        have stopped."""
        errors: list[SourceError] = []
        spent = False
        limiter = trio.CapacityLimiter(self.options.history_concurrency)

        async with trio.open_nursery() as nursery:

            async def one(uid: str, loc: Location, cursor: Cursor) -> None:
                nonlocal spent
                async with limiter:
                    if errors or spent or trio.current_time() - started > TIME_BUDGET_S:
                        return
                    try:
                        await self._fetch(uid, loc, cursor, now, result)
                    except BudgetSpent:
                        spent = True  # a login took a request: the rest wait
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
        end = min(target, start + timedelta(seconds=self.options.max_window_s))
        try:
            fixes = await self.api.messages(uid.strip(), start, end)
        except NoPermission as exc:
            self.owed.pop(uid, None)
            self._warn_once(uid, f"cannot be read by this account ({exc})")
            return
        self.owed.pop(uid, None)  # served: to the back of the queue
        rows = ((f.fix_time, None, f) for f in fixes)
        if end >= target:
            emitted, new_cursor = self.window.select(cursor, rows, scanned_to=end)
            new_cursor.state[SEEN] = list(loc.mark)
        else:  # a backlog longer than max_window_s: continued from ``end`` next turn
            emitted, new_cursor = self.window.select(cursor, rows, scanned_to=None, resume_from=end)
        new_cursor.state[FETCHED] = now.timestamp()
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


def _fetched_at(cursor: Cursor) -> float:
    """When the device's history was last fetched; never: first."""
    value = cursor.state.get(FETCHED)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return float("-inf")


def _worst(errors: list[SourceError]) -> SourceError:
    for kind in (InvalidAuth, RateLimited):
        for exc in errors:
            if isinstance(exc, kind):
                return exc
    return errors[0]
