"""The time zones a client may have: IANA zone names, as the tz database has them.

``zoneinfo.available_timezones()`` lists every TZif file it finds, which on many systems
includes entries that are no zone: ``localtime`` (a link to the machine's own zone, which
means something else on every host), ``posixrules`` and ``Factory`` (a placeholder
meaning "no zone set").  Those are refused; so is anything not in the database.
"""

from __future__ import annotations

from functools import cache
from zoneinfo import available_timezones

__all__ = ["NOT_ZONES", "iana_zones", "is_iana_zone"]

NOT_ZONES = frozenset({"localtime", "posixrules", "posix", "right", "Factory"})


@cache
def iana_zones() -> frozenset[str]:
    """Every IANA zone name of the tz database installed (system or ``tzdata``)."""
    return frozenset(
        name
        for name in available_timezones()
        if name not in NOT_ZONES and not name.startswith(("posix/", "right/"))
    )


def is_iana_zone(name: str) -> bool:
    return name in iana_zones()
