"""Times the API takes (``from``, ``to``, ``since``): a date-time with an offset, or a
date alone.

* ``2026-03-01T08:00:00+01:00`` and ``2026-03-01T07:00:00Z`` are instants.
* ``2026-03-01`` is midnight at the start of that day in the client's time zone (the
  client that owns what is asked for: the device, the sink, or the caller's client; UTC
  when the system administrator asks across every client).  Where the zone skips
  midnight, it is the first instant of the day.
* A date-time without an offset (``2026-03-01T08:00``) is refused with an error saying
  that it needs one: read in the wrong zone it would be silently hours off.

Models declare such a field as ``TimeParam``; the handler turns the value into an instant
with ``resolve`` once it knows the client's zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainValidator, TypeAdapter, ValidationError, WithJsonSchema

from hub.web.errors import ApiError

if TYPE_CHECKING:
    from hub.web.routing import ApiRequest

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_OFFSET_AFTER_SPACE = re.compile(r"(T[\d:.]+) (\d{2}(:?\d{2})?)$")
_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)

NEEDS_OFFSET = (
    "has no offset: add one (Z, +01:00), or give a date alone (2026-03-01), which means "
    "midnight in the client's time zone"
)
NOT_A_TIME = (
    "not a time: give an ISO 8601 date-time with an offset (2026-03-01T08:00:00+01:00, "
    "…Z) or a date (2026-03-01)"
)
DESCRIPTION = (
    "ISO 8601 date-time with an offset or Z, or a date alone (midnight in the client's time zone)"
)


def parse_time(value: Any) -> datetime | date:
    """An aware ``datetime``, or a ``date`` still to be placed in a time zone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{value.isoformat()} {NEEDS_OFFSET}")
        return value
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise ValueError(NOT_A_TIME)
    text = _OFFSET_AFTER_SPACE.sub(r"\1+\2", value.strip())  # a query string's unencoded +
    if _DATE.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise ValueError(NOT_A_TIME) from None
    try:
        parsed = _DATETIME.validate_python(text)
    except ValidationError:
        raise ValueError(NOT_A_TIME) from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value} {NEEDS_OFFSET}")
    return parsed


TimeParam = Annotated[
    datetime | date,
    PlainValidator(parse_time),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "string", "format": "date"},
            ]
        }
    ),
]
"""A ``from``/``to``/``since`` value; ``resolve`` makes it an instant."""


def zone_of(name: str | None) -> tzinfo:
    """A client's time zone (UTC for none, or a name this Python does not know)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def resolve(
    value: datetime | date | None, zone: tzinfo, field: str, *, body: bool = False
) -> datetime | None:
    """``value`` as an aware instant: a date is midnight in ``zone``.

    An instant outside what a datetime can hold in UTC is refused naming ``field``: a 400
    for a query parameter, a 422 for a ``body`` field.
    """
    if value is None:
        return None
    try:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)
    except (OverflowError, ValueError):
        status, code = (422, "invalid") if body else (400, "bad_request")
        raise ApiError(status, code, "out of the range of dates", field) from None


def is_date(value: datetime | date | None) -> bool:
    """Whether ``value`` is a date alone (so ``resolve`` needs the client's zone)."""
    return isinstance(value, date) and not isinstance(value, datetime)


async def client_zone(
    req: ApiRequest, client_id: int | None, *values: datetime | date | None
) -> tzinfo:
    """The time zone dates among ``values`` are read in: ``client_id``'s (UTC for
    ``None``).  The client is looked up only when there is a date to place."""
    if client_id is None or not any(is_date(v) for v in values):
        return UTC
    client = await req.run(req.hub.store.get_client, client_id)
    return zone_of(client.timezone)
