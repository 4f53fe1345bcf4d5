"""The small interface both GPS-Server.net transports offer the poller.

``KeyApi`` (``keyapi.py``, the documented ``/api/api.php`` user API) and ``TokenApi``
(``tokenapi.py``, the inferred v4 Bearer-token flow) both implement it, so the poller
and the source do not care which one a connection uses.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gpshub_gpsserver.parse import Location
from hub.errors import UpdateFailed
from hub.fix import PositionFix

__all__ = ["Api", "NoPermission"]


class NoPermission(UpdateFailed):
    """The account may not read this IMEI (``ERROR: no permission to access this IMEI``)."""


class Api(Protocol):
    """One account on one server."""

    mode: str
    """How it authenticates, for messages: ``"API key"`` or ``"email login"``."""
    host: str

    def begin_cycle(self, max_requests: int | None = None) -> None:
        """A new poll, browse or test starts: renews the per-cycle login allowance and
        the request budget (``max_requests``, every request counted, logins too;
        ``None``: no limit).  A request beyond it raises ``BudgetSpent``."""

    @property
    def requests_left(self) -> int | None:
        """Requests this cycle may still make (``None``: no limit)."""
        ...

    async def objects(self) -> list[Location]:
        """Every object of the account with its metadata (``remote``) and latest location."""
        ...

    async def locations(self) -> dict[str, Location]:
        """The latest location of every object, by IMEI (one request)."""
        ...

    async def messages(self, imei: str, start: datetime, end: datetime) -> list[PositionFix]:
        """The fixes of one object with ``start <= dt_tracker <= end`` (whole seconds),
        oldest first; ``NoPermission`` when the account may not read it."""
        ...
