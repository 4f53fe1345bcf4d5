"""The checks every gpshub source must pass, run against a served ``FakeFindHub``."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
from findhub_support import World

from gpshub_findhub import FindHubSource
from gpshub_findhub.testing import secrets_document
from hub.source import DeviceRef, SourceContext
from hub.testing import EPOCH, SourceContract, source_context

TAG = "677db4d7-0000-234b-ab3f-14c14efd1b80"
BAG = "677db4d7-0000-234b-ab3f-14c14efd1b81"


class TestFindHubSourceContract(SourceContract):
    source_class = FindHubSource
    good_credentials: ClassVar[dict[str, Any]] = {"secrets_json": json.dumps(secrets_document())}
    bad_credentials: ClassVar[dict[str, Any]] = {
        "secrets_json": json.dumps({**secrets_document(), "owner_key": "not hex"})
    }
    devices: ClassVar[list[DeviceRef]] = [DeviceRef(1, TAG, "Keys"), DeviceRef(2, BAG, "Bag")]

    world: World

    def _use(self, world: World) -> None:
        """Point the checks at a fake with two trackers that have a report each."""
        self.world = world
        t = EPOCH.timestamp() - 60  # where source_context's clock starts
        for cid, name in ((TAG, "Keys"), (BAG, "Bag")):
            world.fake.add_tracker(name, canonic_id=cid)
            world.fake.report(cid, 52.52, 13.405, t=t)

    # the network checks, given the fake (the base class's tests take no fixtures)
    async def test_test_connection_summarises(self, world: World) -> None:
        self._use(world)
        await super().test_test_connection_summarises()

    async def test_browse_matches_the_flag(self, world: World) -> None:
        self._use(world)
        await super().test_browse_matches_the_flag()

    async def test_poll_returns_valid_fixes(self, world: World) -> None:
        self._use(world)
        await super().test_poll_returns_valid_fixes()
        assert len(world.fake.locates) == 2

    async def make_context(self, http: httpx.AsyncClient) -> SourceContext[Any, Any]:
        return source_context(
            self.source_class,
            self.world.fake.credentials(),
            http,
            options=self.world.fake.options(self.world.url, stagger_s=0),
        )
