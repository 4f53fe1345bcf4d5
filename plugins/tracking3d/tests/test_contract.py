"""The checks every gpshub source must pass, run against a served ``FakeTracking3D``."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from tracking3d_support import Served

from gpshub_tracking3d import Tracking3DSource
from hub.source import DeviceRef, SourceContext
from hub.testing import EPOCH, SourceContract, source_context

START = EPOCH.timestamp()


class TestTracking3DSourceContract(SourceContract):
    source_class = Tracking3DSource
    good_credentials: ClassVar[dict[str, Any]] = {
        "username": "fleet@example.com",
        "password": "secret",
    }
    bad_credentials: ClassVar[dict[str, Any]] = {"username": "fleet@example.com", "password": ""}

    served: Served

    def _use(self, served: Served) -> None:
        self.served = served
        uids = [served.fake.add_unit(name) for name in ("Truck 1", "Truck 2")]
        self.devices = [DeviceRef(i + 1, uid, f"Truck {i + 1}") for i, uid in enumerate(uids)]
        for uid in uids:
            for k in range(3):
                served.fake.add_fix(uid, START - 600 + 60 * k, 40.0 + k / 100, -74.0)

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
        fake, url = self.served.fake, self.served.url
        return source_context(
            self.source_class, fake.credentials(url), http, options=fake.options(url)
        )
