"""The deep contract (``hub.contract``) against ``FakeTracking3D``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream


class TestTracking3DContract(SourceContract):
    source_class = Tracking3DSource
    bad_credentials = {"username": "fleet@example.com", "password": ""}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeTracking3D(now=now, password=secret)

    def credentials(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.credentials(url)

    def options(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.options(url)

    def add_device(self, fake: Any, n: int) -> str:
        return fake.add_unit(f"Truck {n}")

    def add_fix(self, fake: Any, upstream_id: str, t: float, lat: float, lon: float) -> None:
        fake.add_fix(upstream_id, t, lat, lon)
