"""The time stamps of Startrack payloads.

Items carry their times as aware UTC ``datetime`` objects (location items) or as ISO 8601
text (alert items, which travel through the outbox as JSON); every helper here takes
either.  A naive ``datetime`` or text without an offset is taken as UTC.
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


def event_time(value: datetime | str) -> str:
    """A fix time as Startrack's ``event_time``: UTC to the second, ``2016-09-08T17:42:14+0``."""
    t = to_utc(value)
    return f"{t:%Y-%m-%dT%H:%M:%S}+0"


def system_time(value: datetime | str, timezone: str | None) -> str:
    """A server time as Startrack's ``system_time``: in the client's zone, to the
    millisecond, with the offset: ``2016-09-08T11:42:15.411-06:00`` (``+00:00`` in UTC)."""
    return to_utc(value).astimezone(zone(timezone)).isoformat(timespec="milliseconds")


def epoch(value: datetime | str, unit: EpochUnit = "ms") -> int:
    """Whole milliseconds (or seconds) since 1970-01-01 UTC, rounded down."""
    return (to_utc(value) - EPOCH) // _UNITS[unit]
