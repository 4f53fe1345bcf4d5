"""The checks every gpshub source must pass, run against a served ``FakeTraccar``."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from traccar_support import Served

from gpshub_traccar import TraccarSource
from hub.source import DeviceRef, SourceContext
from hub.testing import EPOCH, SourceContract, source_context

START = EPOCH.timestamp()  # where source_context's clock starts


class TestTraccarSourceContract(SourceContract):
    source_class = TraccarSource
    good_credentials: ClassVar[dict[str, Any]] = {
        "server_url": "https://demo.traccar.org",
        "username": "admin@example.com",
        "password": "admin",
    }
    bad_credentials: ClassVar[dict[str, Any]] = {
        "server_url": "demo.traccar.org",
        "username": "admin@example.com",
        "password": "admin",
    }
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(1, "1", "Van 1"), DeviceRef(2, "2", "Van 2")]

    served: Served

    def _use(self, served: Served) -> None:
        """Point the checks at a fake with two devices and a few fixes each."""
        self.served = served
        for name in ("Van 1", "Van 2"):
            unit = served.fake.add_unit(name)
            for k in range(3):
                served.fake.add_fix(
                    unit, START - 600 + 60 * k, 40.0 + k / 100, -74.0, speed_kmh=30.0
                )

    # the network checks, given the fake (the base class's tests take no fixtures)
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
