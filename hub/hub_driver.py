"""Real hubs for a plugin's end-to-end tests: ``HubFactory`` and ``HubDriver``.

``HubFactory`` makes hubs on one database (a SQLite file in a directory, or a PostgreSQL
URL), all with the same secret key, so a second hub is the first one restarted.
``HubDriver`` takes one connection of a source through them the way an administrator and
the runner do::

    driver = HubDriver(gpshub_hub_factory, AcmeSource, fake.credentials(url))
    stored = await driver.run(polls=3, polls_after_restart=2, before=add_fixes)
    # create, test, import, 3 polls, restart, 2 polls: {upstream id: history rows}

``RefusedCredentialsCheck`` is an end-to-end check a plugin's tests subclass.

The pytest plugin (``hub.pytest_plugin``) gives a ``HubFactory`` as ``gpshub_hub_factory``.
Nothing here is imported by the running hub.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import trio

from hub.clock import Clock
from hub.secrets import SecretBox
from hub.testing import LOOPBACK_NETWORKS, make_hub, running


class HubFactory:
    """Makes real hubs on one database, ``sources`` registered (none: the installed
    plugins, through their entry points) and loopback allowed outbound; ``close()``
    closes their stores."""

    def __init__(
        self,
        data_dir: Path,
        *,
        db_url: str | None = None,
        sources: Sequence[type] = (),
        clock: Clock | None = None,
    ) -> None:
        self.data_dir, self.db_url, self.clock = data_dir, db_url, clock
        self.sources = tuple(sources)
        self.secret_key = SecretBox.generate_key().encode()
        self.hubs: list[Any] = []
        self._closed: set[int] = set()

    def __call__(self, *sources: type, **settings: Any) -> Any:
        """A new ``Hub`` on the factory's database (not running): ``sources`` registered
        besides the factory's; ``settings`` override ``Settings`` fields."""
        classes = tuple(dict.fromkeys((*self.sources, *sources)))
        settings.setdefault("outbound_allow_networks", LOOPBACK_NETWORKS)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        hub = make_hub(
            self.data_dir,
            *classes,
            db_url=self.db_url,
            clock=self.clock,
            secret_key=self.secret_key,
            use_entry_points=not classes,
            **settings,
        )
        self.hubs.append(hub)
        return hub

    def close_hub(self, hub: Any) -> None:
        """Close the hub's store (once)."""
        if id(hub) not in self._closed:
            self._closed.add(id(hub))
            hub.store.close()

    def close(self) -> None:
        for hub in self.hubs:
            self.close_hub(hub)


Before = Callable[[int], Any]
"""Called (awaited if it returns an awaitable) with the number of the next poll (1, 2, ...
over the driver's life), e.g. to give the fake new fixes: before the hub starts for the
first poll of a ``poll()``, then as soon as the previous poll is done (a hub polls at once
when it starts, so the last poll before a restart and the first after it see the same
time)."""


class HubDriver:
    """One connection of a source in real hubs, end to end (see the module docstring).

    ``source`` is the source class (registered in the hubs made) or its ``kind`` (when the
    factory registers it).  Each ``poll()`` runs the hub until its runner has polled so
    many times and shuts it down, its pipeline drained: what was polled is stored.
    A poll that does not come within ``poll_limit_s`` of trio time (default: an hour, or
    four of the source's longest intervals) fails the test with the connection's state
    and last error.
    """

    def __init__(
        self,
        hubs: HubFactory,
        source: type | str,
        credentials: dict[str, Any],
        options: dict[str, Any] | None = None,
        *,
        label: str = "test connection",
        poll_limit_s: float | None = None,
    ) -> None:
        self.hubs = hubs
        self.extra = (source,) if isinstance(source, type) else ()
        self.kind: str = source if isinstance(source, str) else str(source.kind)
        self.credentials, self.options = credentials, options
        self.label, self.poll_limit_s = label, poll_limit_s
        self.hub: Any = hubs(*self.extra)
        self.connection_id: int | None = None
        self.client_id: int | None = None
        self.polls = 0
        """Polls made so far, over restarts."""

    # -- the administrator's steps ---------------------------------------------------
    def create(self) -> Any:
        """Create a client and the connection through the store; the connection."""
        store = self.hub.store
        client = store.create_client("test client")
        conn = store.create_connection(
            client.id, self.kind, self.label, self.credentials, self.options
        )
        self.client_id, self.connection_id = client.id, conn.id
        return conn

    async def test(self) -> str:
        """The source's ``test_connection()`` summary, as the hub's API gets it."""
        return await self.hub.test_connection(self.kind, self.credentials, self.options)

    async def import_devices(self) -> list[Any]:
        """Browse the account and import every device; the devices created."""
        conn = self.connection()
        created, _ = self.hub.store.import_devices(conn.id, await self.hub.browse(conn))
        return list(created)

    def add_device(self, upstream_id: str, name: str | None = None) -> Any:
        """Add a device by hand (a source that cannot browse)."""
        return self.hub.store.create_device(
            self.client_id,
            name=name or f"device {upstream_id}",
            connection_id=self.connection_id,
            upstream_id=upstream_id,
        )

    async def connect(self) -> Any:
        """``create()`` the connection and, when the source browses, import every
        device; the connection."""
        conn = self.create()
        if self.hub.source_class(self.kind).supports_browse:
            await self.import_devices()
        return conn

    # -- running -----------------------------------------------------------------------
    async def poll(self, times: int = 1, *, before: Before | None = None) -> None:
        """Run the hub until its runner has polled ``times`` times (the mock clock jumps
        the cadence between polls), calling ``before`` before each; then shut it down."""
        hub = self.hub
        cadence = hub.source_class(self.kind).cadence
        longest = max(cadence.active, cadence.quiet or 0.0)
        limit = self.poll_limit_s or max(3600.0, 4 * longest)
        step = max(cadence.active / 50, 0.05)  # a runner's poll is seen this late at most
        async with trio.open_nursery() as nursery:
            if before is not None:
                await _call(before, self.polls + 1)
            await nursery.start(hub.run)
            try:
                for k in range(times):
                    if k and before is not None:
                        await _call(before, self.polls + 1)
                    await self._wait_for_poll(k + 1, times, step, limit)
                    self.polls += 1
            finally:
                hub.shutdown()

    async def _wait_for_poll(self, target: int, times: int, step: float, limit: float) -> None:
        with trio.move_on_after(limit):
            while self._runner_polls() < target:  # noqa: ASYNC110 - polls what the runner did
                await trio.sleep(step)
            return
        conn = self.connection()
        raise AssertionError(
            f"connection {self.kind!r} polled {target - 1} of {times} time(s) within"
            f" {limit:g} s: {conn.state}: {conn.last_error or conn.state_message}"
        )

    def _runner_polls(self) -> int:
        handle = self.hub.runners.get(self.connection_id)
        return 0 if handle is None else int(handle.runner.polls)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Any]:
        """Run the hub for the ``async with`` block (started when it begins), then shut it
        down, its pipeline drained; the hub::

            async with driver.running():
                await feed.run(90)  # the trackers report while the hub polls
                await trio.sleep(65)  # two more polls
        """
        async with running(self.hub) as hub:
            yield hub

    async def run_for(
        self,
        seconds: float,
        feed: Callable[[float], Awaitable[Any]] | None = None,
        *,
        settle_s: float = 0.0,
    ) -> None:
        """Run the hub for ``seconds`` of trio time, then ``settle_s`` more (for the polls
        that fetch the last of a feed), then shut it down, its pipeline drained; with
        ``feed`` (e.g. a ``TrackerFeed``'s ``run``), ``await feed(seconds)`` is the first
        ``seconds``::

            await driver.run_for(90, feed.run, settle_s=65)
        """
        async with self.running():
            if feed is None:
                await trio.sleep(seconds)
            else:
                await feed(seconds)
            await trio.sleep(settle_s)

    async def assert_stops_for_new_credentials(
        self, upstream_id: str, secret: str, *, seconds: float = 600.0
    ) -> Any:
        """With credentials the upstream refuses: create the connection, add a device by
        hand, run the hub for ``seconds``; the connection then waits for new credentials
        (``NEEDS_REAUTH``, not retried) and its error does not show ``secret``.  The
        connection, for the plugin's own checks (how many requests the fake saw)."""
        from hub.models import ConnectionState

        self.create()
        self.add_device(upstream_id)
        await self.run_for(seconds)
        conn = self.connection()
        assert conn.state == ConnectionState.NEEDS_REAUTH, (conn.state, conn.last_error)
        assert secret not in (conn.last_error or ""), "the secret is in the connection's error"
        return conn

    def restart(self) -> Any:
        """Close the hub's store and make a new hub on the same data; the new hub."""
        self.hubs.close_hub(self.hub)
        self.hub = self.hubs(*self.extra)
        return self.hub

    async def run(
        self, *, polls: int = 3, polls_after_restart: int = 2, before: Before | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """Create, test, import (when the source browses), poll, restart, poll again;
        the history stored per upstream id."""
        self.create()
        summary = await self.test()
        assert isinstance(summary, str) and summary.strip(), summary
        if self.hub.source_class(self.kind).supports_browse:
            await self.import_devices()
        await self.poll(polls, before=before)
        self.restart()
        await self.poll(polls_after_restart, before=before)
        return self.history()

    # -- reading -------------------------------------------------------------------------
    def connection(self) -> Any:
        """The connection as stored now (``state``, ``last_error``, ``state_message``)."""
        if self.connection_id is None:
            raise RuntimeError("create() the connection first")
        return self.hub.store.get_connection(self.connection_id)

    def assert_ok(self) -> Any:
        """The connection is ``OK`` (else: its state and last error); the connection."""
        from hub.models import ConnectionState

        conn = self.connection()
        assert conn.state == ConnectionState.OK, f"{conn.state}: {conn.last_error}"
        return conn

    def devices(self) -> dict[str, Any]:
        """The connection's devices by upstream id."""
        found = self.hub.store.list_devices(connection_id=self.connection_id)
        return {d.upstream_id: d for d in found}

    def history(self) -> dict[str, list[dict[str, Any]]]:
        """Every stored position of each device, oldest first, by upstream id."""
        out = {}
        for upstream_id, device in self.devices().items():
            rows, _ = self.hub.store.positions.history([device.id], limit=1_000_000)
            out[upstream_id] = rows
        return out


async def _call(fn: Before, number: int) -> None:
    result = fn(number)
    if inspect.isawaitable(result):
        await result


class RefusedCredentialsCheck:
    """An end-to-end check for a plugin's ``test_hub.py``: with credentials its upstream
    refuses, a connection in a real hub makes ``requests`` requests (one by default:
    ``fake.request_count``), then waits for new credentials (``NEEDS_REAUTH``, not
    retried), and its error shows none of the refused values.  Subclass it with
    ``fake_class`` (made reading the test's wall clock and served), ``source_class`` and
    ``refused`` (what replaces the fake's good credentials, e.g. a wrong password)::

        class TestRefusedCredentials(RefusedCredentialsCheck):
            fake_class, source_class = FakeAcme, AcmeSource
            refused = {"password": "wrong-one"}

    ``check_refused(fake, connection)`` adds the plugin's own checks.  The fake follows
    the kit's conventions (``credentials(url)``, ``options(url)``, ``add_unit(name)``).
    """

    fake_class: ClassVar[Callable[..., Any]]
    source_class: ClassVar[type]
    refused: ClassVar[dict[str, str]]
    requests: ClassVar[int] = 1

    def check_refused(self, fake: Any, connection: Any) -> None:
        """The plugin's own checks of the stopped connection (none by default)."""

    async def test_refused_credentials_stop_the_connection_without_retrying(
        self, gpshub_clock: Any, gpshub_served: Any, gpshub_hub_factory: HubFactory
    ) -> None:
        """One refused request, then the connection waits for new credentials."""
        fake, url = await gpshub_served(self.fake_class)
        unit = fake.add_unit("device 1")
        credentials = {**fake.credentials(url), **self.refused}
        driver = HubDriver(gpshub_hub_factory, self.source_class, credentials, fake.options(url))
        secret, *others = self.refused.values()
        conn = await driver.assert_stops_for_new_credentials(unit, secret)
        assert not [v for v in others if v in (conn.last_error or "")], conn.last_error
        assert fake.request_count == self.requests, (
            f"{fake.request_count} requests with refused credentials; {self.requests} expected"
        )
        self.check_refused(fake, conn)
