"""The deep contract (``hub.contract``) against ``FakeTraccar``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.contract import SourceContract
from hub.testing import ConventionalFake


class TestTraccarContract(ConventionalFake, SourceContract):
    source_class = TraccarSource
    bad_credentials: ClassVar[dict[str, Any]] = {
        "server_url": "demo.traccar.org",
        "username": "admin@example.com",
        "password": "admin",
    }

    def make_fake(self, now: Callable[[], float], secret: str) -> Any:
        return FakeTraccar(now=now, password=secret)

    def add_fix(self, fake: Any, upstream_id: str, t: float, lat: float, lon: float) -> None:
        fake.add_fix(upstream_id, t, lat, lon, speed_kmh=30.0)
