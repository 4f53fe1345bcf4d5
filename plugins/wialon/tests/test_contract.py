"""The checks every gpshub source must pass, run against the fake (in process)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from wialon_support import EPOCH, T0

from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.clock import TrioClock
from hub.source import DeviceRef, SourceContext
from hub.testing import SourceContract, source_context

FAKE = FakeWialon(token="C" * 72)
"""Its clock is set per context; the units and fixes stay the same."""
UNITS = [FAKE.add_unit(f"Unit {i}", imei=f"35000000000000{i}") for i in range(3)]
for _i, _unit in enumerate(UNITS):
    for _t in range(-300, 0, 60):
        FAKE.add_fix(_unit, T0 + _t, 50.0 + _i, 8.0, speed_kmh=20.0, satellites=_i * 4)


class TestWialonSourceContract(SourceContract):
    source_class = WialonSource
    good_credentials: ClassVar[dict[str, Any]] = {"token": FAKE.token}
    bad_credentials: ClassVar[dict[str, Any]] = {"token": "two words"}
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(i + 1, u) for i, u in enumerate(UNITS)]

    async def make_context(self, http: httpx.AsyncClient) -> SourceContext[Any, Any]:
        clock = TrioClock(EPOCH)
        FAKE.now = lambda: clock.now().timestamp()
        asgi = httpx.AsyncClient(transport=httpx.ASGITransport(app=FAKE.app))
        return source_context(
            WialonSource,
            self.good_credentials,
            asgi,
            options={"base_url": "http://fake-wialon.test"},
            clock=clock,
        )
