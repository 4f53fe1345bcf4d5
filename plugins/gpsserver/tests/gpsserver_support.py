"""Shared test helpers: the test clock's start, a served fake, and small builders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.source import DeviceRef
from hub.testing import EPOCH

T0 = EPOCH.timestamp()
"""Where ``gpshub_wall`` starts (epoch seconds)."""

MakeSource = Callable[..., GpsServerSource]


@dataclass
class Served:
    """A fake GPS-Server.net and the base URL it is served at."""

    fake: FakeGpsServer
    url: str

    def creds(self, mode: str) -> dict[str, Any]:
        """Good credentials for ``mode`` ("key" or "token")."""
        if mode == "key":
            return self.fake.credentials_key(self.url)
        return self.fake.credentials(self.url)


def refs(ids: list[str]) -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...)."""
    return [DeviceRef(i + 1, uid, f"device {uid}") for i, uid in enumerate(ids)]


def fix_times(result: Any, uid: str) -> list[float]:
    """The fix times (epoch seconds) a poll returned for one device."""
    return [f.fix_time.timestamp() for f in result.fixes.get(uid, [])]


def history_calls(fake: FakeGpsServer) -> int:
    """History requests served, whichever API was used."""
    return fake.requests["OBJECT_GET_MESSAGES"] + fake.requests["history.php"]
