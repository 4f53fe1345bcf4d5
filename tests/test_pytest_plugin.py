"""gpshub's pytest plugin: registered through ``pytest11``, its fixtures usable as a
plugin's tests use them (the end-to-end use is plugins/tracking3d/tests/test_kit.py)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route
from trio.testing import MockClock

from hub.clock import TrioClock
from hub.fake_upstream import FakeUpstream
from hub.hub_driver import HubDriver, HubFactory
from hub.models import ConnectionState
from hub.testing import EPOCH, FeedSource


class Hello(FakeUpstream):
    def routes(self) -> list[BaseRoute]:
        return [Route("/", lambda request: PlainTextResponse("hello"))]


class HandFeed(FeedSource):
    kind = "handfeed"


def test_the_entry_point_names_the_plugin(pytestconfig: pytest.Config) -> None:
    (ep,) = [ep for ep in entry_points(group="pytest11") if ep.name == "gpshub"]
    assert ep.value == "hub.pytest_plugin"
    assert pytestconfig.pluginmanager.has_plugin("gpshub")


async def test_the_wall_clock_follows_the_mock_clock(
    gpshub_clock: MockClock, gpshub_wall: TrioClock
) -> None:
    import trio

    assert gpshub_wall.now() == EPOCH
    await trio.sleep(3600)  # no real hour: the mock clock jumps
    assert (gpshub_wall.now() - EPOCH).total_seconds() == 3600


async def test_a_fake_served_and_reached_by_the_runner_s_client(
    gpshub_clock: MockClock, gpshub_serve: Any, gpshub_http: httpx.AsyncClient
) -> None:
    fake = Hello()
    url = await gpshub_serve(fake)
    assert url.startswith("http://127.0.0.1:")
    assert (await gpshub_http.get(url + "/")).text == "hello"
    assert fake.requests["/"] == 1
    app_url = await gpshub_serve(Hello().app)  # any ASGI app too
    assert (await gpshub_http.get(app_url + "/")).text == "hello"


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    return [HandFeed]


async def test_overridden_sources_and_devices_added_by_hand(
    gpshub_clock: MockClock, gpshub_hub_factory: HubFactory
) -> None:
    driver = HubDriver(gpshub_hub_factory, "handfeed", {"api_key": "k"})
    driver.create()
    assert await driver.test() == "feed reachable"
    driver.add_device("unit-1")
    await driver.poll(2)
    driver.restart()
    await driver.poll(1)
    assert driver.connection().state == ConnectionState.OK
    assert driver.history() == {"unit-1": []}
    assert len(gpshub_hub_factory.hubs) == 2
