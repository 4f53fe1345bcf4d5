"""The checks every gpshub source must pass, run against ``FakeFlespi``.

The contract's context gets an HTTP client wired to the fake's ASGI app in process (the
other tests serve it on loopback)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from flespi_world import EPOCH

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import DEFAULT_TOKEN, FakeFlespi
from hub.clock import TrioClock
from hub.source import DeviceRef, SourceContext
from hub.testing import SourceContract, source_context

URL = "http://flespi.test"


class TestFlespiSourceContract(SourceContract):
    source_class = FlespiSource
    good_credentials: ClassVar[dict[str, Any]] = {"token": DEFAULT_TOKEN}
    bad_credentials: ClassVar[dict[str, Any]] = {"token": "two words"}
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(1, "4200001"), DeviceRef(2, "4200002")]

    async def make_context(self, http: httpx.AsyncClient) -> SourceContext[Any, Any]:
        wall = TrioClock(EPOCH)
        fake = FakeFlespi(now=lambda: wall.now().timestamp())
        for n in range(2):
            unit = fake.add_unit(f"unit {n}", imei=f"35630704244101{n}")
            fake.add_fix(unit, wall.now().timestamp() - 60, 14.6, -90.5 + n)
        in_process = httpx.AsyncClient(transport=httpx.ASGITransport(app=fake.app))
        return source_context(
            FlespiSource, fake.credentials(URL), in_process, options=fake.options(URL), clock=wall
        )

    async def test_the_contract_poll_gets_the_fixes(self) -> None:
        async with httpx.AsyncClient() as http:
            ctx = await self.make_context(http)
            result = await FlespiSource(ctx).poll(self.devices, {})
            await ctx.http.aclose()
        assert sorted(result.fixes) == ["4200001", "4200002"]
