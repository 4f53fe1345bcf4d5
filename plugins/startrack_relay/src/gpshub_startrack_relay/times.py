"""The time stamps of Startrack payloads.

Items carry their times as aware UTC ``datetime`` objects (location items) or as ISO 8601
text (alert items, which travel through the outbox as JSON); every helper here takes
either.  A naive ``datetime`` or text without an offset is taken as UTC.

``event_time`` and ``system_time`` sit on the delivery hot path (one call each per
location), so both are cached: ``event_time`` keeps the text of each UTC hour and adds
the minutes and seconds from a table; ``system_time`` remembers its recent answers, as
every position of one ingest batch shares its server time and its client's zone.
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger("gpshub.startrack_relay")

EpochUnit = Literal["ms", "s"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS: dict[str, timedelta] = {"ms": timedelta(milliseconds=1), "s": timedelta(seconds=1)}
_FIXED_OFFSET = type(UTC)  # datetime.timezone: UTC and fixed offsets, never a DST fold


def to_utc(value: datetime | str) -> datetime:
    """``value`` as an aware UTC ``datetime``."""
    when = datetime.fromisoformat(value) if isinstance(value, str) else value
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


@functools.lru_cache(maxsize=256)
def zone(name: str | None) -> tzinfo:
    """The IANA zone ``name``; UTC (and a warning, once per name) when it is unknown."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r: Startrack system_time is sent in UTC", name)
        return UTC


# -- event_time ------------------------------------------------------------------------------
_MINUTE_SECOND = tuple(f"{m:02d}:{s:02d}+0" for m in range(60) for s in range(60))
"""``MM:SS+0`` for each second of an hour."""
_HOURS: dict[int, str] = {}
"""``YYYY-MM-DDTHH:`` of UTC hours, by hours since 1970."""
_MAX_HOURS = 65_536  # about 7 years of hours; the cache starts over beyond


def _hour_text(value: datetime | str, hour: int) -> str:
    if len(_HOURS) >= _MAX_HOURS:
        _HOURS.clear()
    text = _HOURS[hour] = f"{to_utc(value):%Y-%m-%dT%H:}"
    return text


def event_time(value: datetime | str) -> str:
    """A fix time as Startrack's ``event_time``: UTC to the second, ``2016-09-08T17:42:14+0``."""
    if type(value) is datetime and type(value.tzinfo) is _FIXED_OFFSET:
        since = value - EPOCH  # days, and seconds into the day (0 to 86399)
        seconds = since.seconds
        hour = since.days * 24 + seconds // 3600
        text = _HOURS.get(hour)
        if text is None:
            text = _hour_text(value, hour)
        return text + _MINUTE_SECOND[seconds % 3600]
    t = to_utc(value)
    return f"{t:%Y-%m-%dT%H:%M:%S}+0"


# -- system_time -----------------------------------------------------------------------------
def _system_time(value: datetime | str, timezone: str | None) -> str:
    return to_utc(value).astimezone(zone(timezone)).isoformat(timespec="milliseconds")


_cached_system_time = functools.lru_cache(maxsize=1024)(_system_time)


def system_time(value: datetime | str, timezone: str | None) -> str:
    """A server time as Startrack's ``system_time``: in the client's zone, to the
    millisecond, with the offset: ``2016-09-08T11:42:15.411-06:00`` (``+00:00`` in UTC)."""
    # Cached only where equal keys are the same instant: text, and datetimes in UTC or a
    # fixed offset (two datetimes in one ZoneInfo zone compare equal across a DST fold).
    kind = type(value)
    if kind is str or (kind is datetime and type(value.tzinfo) is _FIXED_OFFSET):
        return _cached_system_time(value, timezone)
    return _system_time(value, timezone)


def epoch(value: datetime | str, unit: EpochUnit = "ms") -> int:
    """Whole milliseconds (or seconds) since 1970-01-01 UTC, rounded down."""
    return (to_utc(value) - EPOCH) // _UNITS[unit]
