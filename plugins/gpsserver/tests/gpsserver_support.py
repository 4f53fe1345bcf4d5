"""Shared test helpers: the test clock's start, a served fake, and small builders
(``refs`` and ``fix_times`` come from ``hub.testing``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.testing import EPOCH
from hub.testing import Served as ServedFake

T0 = EPOCH.timestamp()
"""Where ``gpshub_wall`` starts (epoch seconds)."""

MakeSource = Callable[..., GpsServerSource]


class Served(ServedFake):
    """A fake GPS-Server.net and the base URL it is served at."""

    fake: FakeGpsServer

    def creds(self, mode: str) -> dict[str, Any]:
        """Good credentials for ``mode`` ("key" or "token")."""
        if mode == "key":
            return self.fake.credentials_key(self.url)
        return self.fake.credentials(self.url)


def history_calls(fake: FakeGpsServer) -> int:
    """History requests served, whichever API was used."""
    return fake.requests["OBJECT_GET_MESSAGES"] + fake.requests["history.php"]
