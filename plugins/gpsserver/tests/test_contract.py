"""The checks every gpshub source must pass, run against a served ``FakeGpsServer``."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from gpsserver_support import Served

from gpshub_gpsserver import GpsServerSource
from hub.source import DeviceRef, SourceContext
from hub.testing import EPOCH, SourceContract, source_context

START = EPOCH.timestamp()  # where source_context's clock starts
IMEIS = ["356307040000011", "356307040000012"]


class TestGpsServerSourceContract(SourceContract):
    source_class = GpsServerSource
    good_credentials: ClassVar[dict[str, Any]] = {
        "email": "fleet@example.com",
        "password": "secret",
    }
    bad_credentials: ClassVar[dict[str, Any]] = {
        "email": "fleet@example.com",
        "password": "secret",
        "server_url": "gps-server.example.com",
    }
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(1, IMEIS[0], "A"), DeviceRef(2, IMEIS[1], "B")]

    served: Served

    def _use(self, served: Served) -> None:
        """Point the checks at a fake with two objects and a few fixes each."""
        self.served = served
        for n, imei in enumerate(IMEIS):
            served.fake.add_unit(f"Truck {n}", imei=imei)
            for k in range(3):
                served.fake.add_fix(imei, START - 600 + 60 * k, 40.0 + k / 100, -74.0, speed_kmh=30)

    async def test_test_connection_summarises(self, served: Served) -> None:
        self._use(served)
        await super().test_test_connection_summarises()

    async def test_browse_matches_the_flag(self, served: Served) -> None:
        self._use(served)
        await super().test_browse_matches_the_flag()

    async def test_poll_returns_valid_fixes(self, served: Served) -> None:
        self._use(served)
        await super().test_poll_returns_valid_fixes()

    async def make_context(self, http: httpx.AsyncClient) -> SourceContext[Any, Any]:
        return source_context(
            self.source_class, self.served.fake.credentials(self.served.url), http
        )
