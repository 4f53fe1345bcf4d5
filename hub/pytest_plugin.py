"""gpshub's pytest plugin: fixtures for a plugin's tests (install ``gpshub[testing]``).

Registered through the ``pytest11`` entry point, so installing gpshub with its ``testing``
extra makes these fixtures available to every test; their names start with ``gpshub_`` so
they clash with nothing of a project's own.  Async tests need pytest-trio (``trio_mode =
true``, or ``@pytest.mark.trio``).

* ``gpshub_clock``: trio's ``MockClock`` (it jumps ahead once the run loop has been idle
  for 20 ms of real time, so loopback requests finish first and waits cost nothing), with
  the hub's blocking calls run inline.  A test runs on it when it takes it as an argument.
* ``gpshub_wall``: wall time from ``gpshub_epoch`` (``hub.testing.EPOCH``; override the
  fixture for another date) following trio's clock: the hubs' and the sources' clock;
  give a fake ``now=lambda: gpshub_wall.now().timestamp()``.
* ``gpshub_hub_factory``: a ``hub.hub_driver.HubFactory``: ``gpshub_hub_factory(MySource)``
  is a real hub (not running) on a temporary SQLite database, or on a fresh PostgreSQL
  schema with ``--gpshub-postgres URL`` (or ``GPSHUB_TEST_POSTGRES_URL``); loopback allowed
  outbound; a second call is the same data restarted; stores closed after the test.
  ``gpshub_sources`` (override it in a conftest) names the source classes every hub gets.
* ``gpshub_serve``: ``url = await gpshub_serve(fake)`` serves a ``FakeUpstream`` (or any
  ASGI app, or an object with an ``app``) on loopback in the test's nursery.
* ``gpshub_served``: ``served = await gpshub_served(FakeAcme)``: the fake made to read
  ``gpshub_wall``, served (``served.fake``, ``served.url``).
* ``gpshub_http``: the HTTP client a runner gives a source, loopback allowed.

A plugin's conftest makes its ``served`` and ``make_source`` fixtures with
``served_fixture(FakeAcme)`` and ``make_source_fixture(AcmeSource)`` (from this module).

End to end, ``hub.hub_driver.HubDriver(gpshub_hub_factory, MySource, credentials)`` creates
a connection, tests it, imports its devices, polls, restarts the hub and polls again.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import httpx
    import trio
    from trio.testing import MockClock

    from hub.clock import TrioClock
    from hub.hub_driver import HubFactory
    from hub.testing import Served, SourceMaker

POSTGRES_ENV = "GPSHUB_TEST_POSTGRES_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gpshub")
    group.addoption(
        "--gpshub-postgres",
        metavar="URL",
        default=None,
        help=f"gpshub_hub_factory: hubs on PostgreSQL at URL, a fresh schema per test"
        f" (default: ${POSTGRES_ENV}, else SQLite)",
    )


@pytest.fixture
def gpshub_clock() -> Iterator[MockClock]:
    """Trio's mock clock, autojumping after 20 ms idle, blocking calls inline."""
    from trio.testing import MockClock

    from hub.blocking import blocking_calls_inline

    with blocking_calls_inline():
        yield MockClock(autojump_threshold=0.02)


@pytest.fixture
def gpshub_epoch() -> datetime:
    """Where ``gpshub_wall`` starts: ``hub.testing.EPOCH`` (override it in a conftest
    for tests written for another date)."""
    from hub.testing import EPOCH

    return EPOCH


@pytest.fixture
def gpshub_wall(gpshub_clock: MockClock, gpshub_epoch: datetime) -> TrioClock:
    """Wall time from ``gpshub_epoch``, following trio's clock."""
    from hub.clock import TrioClock

    return TrioClock(gpshub_epoch)


@pytest.fixture
def gpshub_sources() -> Sequence[type]:
    """The source classes every hub of ``gpshub_hub_factory`` registers (override it);
    none: the installed plugins, loaded through their entry points."""
    return ()


@pytest.fixture
def gpshub_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where ``gpshub_hub_factory`` keeps its data: SQLite in ``tmp_path``, or a fresh
    PostgreSQL schema when one is asked for."""
    url = request.config.getoption("--gpshub-postgres") or os.environ.get(POSTGRES_ENV)
    if not url:
        yield f"sqlite:///{tmp_path / 'gpshub' / 'hub.db'}"
        return
    from hub.testing import fresh_schema

    with fresh_schema(url) as schema_url:
        yield schema_url


@pytest.fixture
def gpshub_hub_factory(
    tmp_path: Path,
    gpshub_database_url: str,
    gpshub_wall: TrioClock,
    gpshub_sources: Sequence[type],
) -> Iterator[HubFactory]:
    """Real hubs on one database (see the module docstring)."""
    from hub.hub_driver import HubFactory

    factory = HubFactory(
        tmp_path / "gpshub", db_url=gpshub_database_url, sources=gpshub_sources, clock=gpshub_wall
    )
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture
async def gpshub_serve(nursery: trio.Nursery) -> Callable[[Any], Awaitable[str]]:
    """``await gpshub_serve(fake)``: serve it on loopback until the test ends; its URL."""
    from hub.testing import serve_app

    async def serve(target: Any) -> str:
        app = target if callable(target) else target.app
        url: str = await nursery.start(serve_app, app)
        return url

    return serve


@pytest.fixture
def gpshub_served(
    gpshub_serve: Callable[[Any], Awaitable[str]], gpshub_wall: TrioClock
) -> Callable[..., Awaitable[Served]]:
    """``served = await gpshub_served(FakeAcme, **kwargs)``: a ``FakeAcme(now=...,
    **kwargs)`` reading ``gpshub_wall``, served on loopback; ``served.fake``,
    ``served.url``."""
    from hub.testing import Served

    async def serve(fake_class: Callable[..., Any], **kwargs: Any) -> Served:
        fake = fake_class(now=lambda: gpshub_wall.now().timestamp(), **kwargs)
        return Served(fake, await gpshub_serve(fake))

    return serve


@pytest.fixture
async def gpshub_http() -> AsyncIterator[httpx.AsyncClient]:
    """The HTTP client a runner gives a source (guarded, loopback allowed, timeouts)."""
    from hub.runner import new_http_client
    from hub.testing import LOOPBACK

    async with new_http_client(LOOPBACK) as client:
        yield client


# -- fixtures a plugin's conftest makes ---------------------------------------------------
def served_fixture(fake_class: Callable[..., Any], **kwargs: Any) -> Any:
    """A ``served`` fixture for a plugin's conftest: ``served = served_fixture(FakeAcme)``
    is ``await gpshub_served(FakeAcme, **kwargs)`` (``served.fake``, ``served.url``)."""

    @pytest.fixture(name="served")
    async def served(gpshub_served: Callable[..., Awaitable[Served]]) -> Served:
        return await gpshub_served(fake_class, **kwargs)

    return served


def make_source_fixture(source_class: type, **maker: Any) -> Any:
    """A ``make_source`` fixture for a plugin's conftest, on its ``served`` fixture:
    ``make_source = make_source_fixture(AcmeSource)`` is a ``hub.testing.SourceMaker``
    for the served fake (``maker``: its ``connection_id``, ``label``)."""

    @pytest.fixture(name="make_source")
    def make_source(
        served: Served, gpshub_http: httpx.AsyncClient, gpshub_wall: TrioClock
    ) -> SourceMaker:
        from hub.testing import SourceMaker

        return SourceMaker(source_class, served, gpshub_http, gpshub_wall, **maker)

    return make_source
