"""Range polling: fetch every fix since a device's cursor, pick up late ones, emit each once.

Upstream history APIs select messages by *device* time (Wialon ``load_interval``, Flespi
messages, Traccar's route report).  Polling ``(last fix, now]`` loses a message that reaches
the platform after a newer one (a black-box upload, out-of-order delivery), and polling
``[last fix, now]`` repeats the fix at the boundary.  :class:`RangeWindow` keeps both right:

* each device is fetched from its last stored fix minus ``lookback`` (the late window),
  however long ago that fix was, but never from further back than ``max_lookback`` before
  now.  So a tracker that is silent for a while (out of coverage, buffering in its black
  box) and then uploads its buffer has every buffered fix fetched, as long as it comes back
  within ``max_lookback``.  A device that has no fix yet is fetched from ``backfill``
  before its first poll (also bounded by ``max_lookback``);
* of what comes back, a message is new when its fix time is after the last fix emitted, or
  when the platform received it after the newest receive time emitted so far.  Messages at
  exactly that receive time are told apart by their fix times, kept in the cursor.

So a back-dated message within the lookback is emitted once, on the first poll after it
arrives, and nothing at the cursor boundary is emitted twice.  Receive times come from the
platform (Wialon ``rt``, Flespi ``server.timestamp``, Traccar ``serverTime``).  Where a
platform has none, only the fix-time rule applies, unless the window is made with
``remember_fixes=True``: then the fix times emitted within the lookback are kept in the
cursor, and a message at or before the cursor that is not among them is late and new.

The price of the first rule: a silent device's range grows with its silence (up to
``max_lookback``), so each poll asks the platform for an empty, growing range for it.
:meth:`RangeWindow.silent` tells such devices apart, so a plugin can group or skip them.

An answer the platform cut short (a page limit, a request budget) is continued where it
stopped: the plugin passes ``resume_from`` and the next ``start`` is that point, with no
lookback, until an answer is complete.  Pages follow each other, so while catching up
nothing at or before the cursor is emitted; once caught up, the receive-time mark is left
as it was, so the next poll looks at the whole lookback again (the store drops repeats).

The cursor's ``state`` holds ``origin`` (epoch seconds: where a device without fixes is
fetched from), ``rt`` (the newest receive time emitted), ``rt_t`` (the fix times emitted
at that receive time) and, while catching up, ``resume`` (epoch seconds), ``seen_t``
(with ``remember_fixes``: the fix times emitted from the next range's start on), besides
whatever the plugin keeps there itself.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

from hub.source import Cursor, UpstreamUrl
from hub.upstream_http import DEFAULT_TIMEOUT_S

T = TypeVar("T")
_SILENT_AFTER = timedelta(seconds=60)  # the shortest silence that counts
K = TypeVar("K", bound=Hashable)

ORIGIN = "origin"
LEGACY_SCAN = "scan"  # written by earlier versions; no longer moves a device's range
RECEIVED = "rt"
RECEIVED_FIXES = "rt_t"
RESUME = "resume"
SEEN_FIXES = "seen_t"


def _epoch(t: datetime) -> float:
    return t.timestamp()


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class HttpOptions(BaseModel):
    """The option every networked source offers: how long one request may take.  A
    plugin's ``Options`` derive from it (with ``RangeOptions`` too, for a range-polling
    source); the hub gives ``ctx.http`` this timeout (``hub.upstream_http``)."""

    model_config = ConfigDict(extra="forbid")

    timeout_s: float = Field(
        default=DEFAULT_TIMEOUT_S,
        gt=0,
        le=120,
        allow_inf_nan=False,
        title="Request timeout (s)",
        description="How long one request to the platform may take.",
    )


class RangeOptions(BaseModel):
    """The options every range-polling source offers; a plugin subclasses it to add its
    own (a batch size, page limits).  ``RangeWindow.of(options)`` makes the window."""

    model_config = ConfigDict(extra="forbid")

    base_url: UpstreamUrl | None = Field(
        default=None,
        title="Base URL override",
        description=(
            "Send every request here instead of the platform's address (a proxy or a test "
            "server); takes precedence over a server_url credential."
        ),
    )
    late_window_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        title="Late message window (s)",
        description=(
            "How far behind a device's last fix each poll looks again for messages that "
            "reached the platform late with older times (black-box uploads). 0 disables."
        ),
    )
    backfill_s: float = Field(
        default=3600.0,
        ge=0,
        le=30 * 86_400,
        allow_inf_nan=False,
        title="Backfill (s)",
        description="History fetched for a device polled for the first time.",
    )
    max_lookback_s: float = Field(
        default=86_400.0,
        ge=0,
        le=30 * 86_400,
        allow_inf_nan=False,
        title="Longest silence caught up (s)",
        description=(
            "While a device is silent, each poll asks for everything since its last fix "
            "(minus the late window), so fixes it buffered are fetched when it uploads them; "
            "this bounds how far back that goes. Fixes a device uploads after a longer "
            "silence are fetched only from this long before now."
        ),
    )
    sync_every_s: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        title="Device sync interval (s)",
        description="How often names, IMEIs and plates are read again from the platform.",
    )


class RangeWindow:
    """Per-device range bookkeeping for one source (see the module docstring).

    ``lookback_s`` is how far behind its last fix a device is fetched again for late
    messages (0: never); ``backfill_s`` how much history a device polled the first time
    gets; ``max_lookback_s`` how far before now a silent device's range may start at most
    (never less than ``lookback_s``); ``remember_fixes`` tells late messages that have no
    receive time by the fix times already emitted (for platforms whose history has none).
    """

    def __init__(
        self,
        lookback_s: float = 300.0,
        backfill_s: float = 3600.0,
        *,
        max_lookback_s: float = 86_400.0,
        remember_fixes: bool = False,
    ) -> None:
        if lookback_s < 0 or backfill_s < 0 or max_lookback_s < 0:
            raise ValueError("lookback_s, backfill_s and max_lookback_s must not be negative")
        self.lookback = timedelta(seconds=lookback_s)
        self.backfill = timedelta(seconds=backfill_s)
        self.max_lookback = timedelta(seconds=max(max_lookback_s, lookback_s))
        self.remember_fixes = remember_fixes

    @classmethod
    def of(cls, options: RangeOptions, *, remember_fixes: bool = False) -> RangeWindow:
        """The window a source's ``RangeOptions`` ask for."""
        return cls(
            options.late_window_s,
            options.backfill_s,
            max_lookback_s=options.max_lookback_s,
            remember_fixes=remember_fixes,
        )

    def start(self, cursor: Cursor, now: datetime) -> datetime:
        """The earliest device time to fetch for the device (inclusive)."""
        resume = cursor.state.get(RESUME)
        if isinstance(resume, int | float) and not isinstance(resume, bool):
            return min(_time(resume), now)
        if cursor.last_fix_time is None:
            origin = cursor.state.get(ORIGIN)
            if isinstance(origin, int | float) and not isinstance(origin, bool):
                start = min(_time(origin), now)
            else:
                start = now - self.backfill
        else:
            start = min(cursor.last_fix_time, now) - self.lookback
        return max(start, now - self.max_lookback)

    def silent(self, cursor: Cursor, now: datetime) -> bool:
        """Whether the device's range reaches further back than a reporting device's would:
        its last fix is older than the lookback (a minute at least), or it has none.  Such
        a range is usually empty; a plugin may group silent devices apart, or skip them
        while the platform shows nothing new was received for them."""
        if RESUME in cursor.state:
            return False
        last = cursor.last_fix_time
        return last is None or last < now - max(self.lookback, _SILENT_AFTER)

    def received_floor(self, cursor: Cursor) -> float | None:
        """The newest receive time emitted for the device: nothing received earlier is new
        unless its fix time is after the cursor (for a server-side filter).  ``None`` while
        there is none yet, or while a cut answer is being continued."""
        if RESUME in cursor.state:
            return None
        value = cursor.state.get(RECEIVED)
        return float(value) if isinstance(value, int | float) else None

    def select(
        self,
        cursor: Cursor,
        messages: Iterable[tuple[datetime, float | None, T]],
        *,
        scanned_to: datetime | None,
        resume_from: datetime | None = None,
    ) -> tuple[list[T], Cursor]:
        """The messages of one device not emitted before (oldest first) and its new cursor.

        ``messages`` are ``(fix time, receive time in epoch seconds or None, payload)`` in
        any order.  ``scanned_to`` is the end of the fetched range when the answer was
        complete, ``None`` when it was cut short (more pages remain): then the receive-time
        mark does not move, so what was cut is still fetched next time, from
        ``resume_from`` when given (where the cut answer stopped).
        """
        last = cursor.last_fix_time
        resuming = RESUME in cursor.state
        floor = self.received_floor(cursor)
        at_floor = {float(t) for t in cursor.state.get(RECEIVED_FIXES) or ()}
        seen = self._seen(cursor)  # None unless remembering fix times
        fresh: dict[datetime, T] = {}
        top: float | None = None  # the newest receive time in the answer
        at_top: set[float] = set()
        for fix_time, received, payload in messages:
            if received is not None:
                if top is None or received > top:
                    top, at_top = received, set()
                if received == top:
                    at_top.add(_epoch(fix_time))
            if fix_time in fresh:
                continue
            if (
                last is None
                or fix_time > last
                or (not resuming and _late_and_new(received, floor, _epoch(fix_time), at_floor))
                or (received is None and seen is not None and _unseen(fix_time, seen))
            ):
                fresh[fix_time] = payload
        order = sorted(fresh)
        state = dict(cursor.state)
        if order and (last is None or order[-1] > last):
            last = order[-1]
        if scanned_to is None:
            if resume_from is not None:
                state[RESUME] = _epoch(resume_from)
        elif resuming:
            # caught up: the lookback behind the last fix is looked at next time
            state.pop(RESUME, None)
        else:
            # complete: every message received up to ``top`` in the window is now known
            if top is not None and (floor is None or top > floor):
                state[RECEIVED], state[RECEIVED_FIXES] = top, sorted(at_top)
            elif top is not None and top == floor:
                state[RECEIVED_FIXES] = sorted(at_floor | at_top)
        state.pop(LEGACY_SCAN, None)
        if last is None:
            if scanned_to is not None and ORIGIN not in state:
                # a device without fixes keeps being fetched from its first range's start
                state[ORIGIN] = _epoch(scanned_to - self.backfill)
        else:
            state.pop(ORIGIN, None)
        new_cursor = Cursor(last, state)
        if seen is not None:
            horizon = new_cursor.last_fix_time
            cut = _epoch(horizon - self.lookback) if horizon is not None else float("-inf")
            kept = seen[1] | {_epoch(t) for t in fresh}
            state[SEEN_FIXES] = sorted(t for t in kept if t >= cut)
        return [fresh[t] for t in order], new_cursor

    def _seen(self, cursor: Cursor) -> tuple[datetime | None, set[float]] | None:
        """With ``remember_fixes``: where the remembered fix times start (``None``: the
        device has none yet) and those times."""
        if not self.remember_fixes:
            return None
        mark = cursor.last_fix_time
        since = mark - self.lookback if mark is not None else None
        return since, {float(t) for t in cursor.state.get(SEEN_FIXES) or ()}


def _unseen(fix_time: datetime, seen: tuple[datetime | None, set[float]]) -> bool:
    """Whether a fix within the remembered span was not emitted (it arrived late)."""
    since, times = seen
    return since is not None and fix_time >= since and _epoch(fix_time) not in times


def _late_and_new(
    received: float | None, floor: float | None, fix_epoch: float, at_floor: set[float]
) -> bool:
    """Whether a message at or before the cursor arrived after everything emitted.

    Without a mark yet (the first answers were cut short) it may be new: it is emitted,
    and the store drops it if it was not."""
    if received is None:
        return False
    if floor is None:
        return True
    return received > floor or (received == floor and fix_epoch not in at_floor)


def group_by_start(
    starts: Mapping[K, datetime], *, size: int, span_s: float
) -> list[tuple[datetime, list[K]]]:
    """Keys sorted by start, cut into groups of at most ``size`` whose starts lie within
    ``span_s`` of the group's first, each with its earliest start.

    For APIs whose one call has one time window for many devices: in steady state every
    device's start is near "now - lookback", so they all share one window per ``size``.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    span = timedelta(seconds=max(span_s, 0.0))
    groups: list[tuple[datetime, list[K]]] = []
    for key, start in sorted(starts.items(), key=lambda kv: kv[1]):
        if groups and len(groups[-1][1]) < size and start - groups[-1][0] <= span:
            groups[-1][1].append(key)
        else:
            groups.append((start, [key]))
    return groups
