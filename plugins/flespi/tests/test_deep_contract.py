"""The deep contract (``hub.contract``) against ``FakeFlespi``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import FakeFlespi
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream


class TestFlespiContract(SourceContract):
    source_class = FlespiSource
    bad_credentials: ClassVar[dict[str, Any]] = {"token": "two words"}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeFlespi(now=now, token=secret)  # type: ignore[return-value]

    def credentials(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.credentials(url)

    def options(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.options(url)

    def add_device(self, fake: Any, n: int) -> str:
        return fake.add_unit(f"unit {n}", imei=f"35630704244101{n}")

    def add_fix(self, fake: Any, upstream_id: str, t: float, lat: float, lon: float) -> None:
        fake.add_fix(upstream_id, t, lat, lon)
