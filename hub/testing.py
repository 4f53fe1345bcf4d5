"""Helpers for testing the hub and plugins: a hub in a temporary directory, scripted
sources, and what a source plugin's tests share.

For a plugin's tests (with the fixtures of ``hub.pytest_plugin`` and the drivers of
``hub.hub_driver``; the deep contract is ``hub.contract``):

* ``PluginPackageChecks`` (``hub.plugin_checks``): the package as the hub loads it and
  its README's settings tables, one subclass in ``test_plugin.py``.
* ``ConventionalFake``: the deep contract's fake-facing methods for a kit-style fake.
* ``Served``, ``SourceMaker``: a served fake and a plugin's ``make_source`` fixture;
  ``device_refs``, ``fix_times``, ``Poller`` (polls as the runner does) for source tests.
* ``TrackerFeed`` with ``moving_fix``, ``ReportsBeforePolls``, ``Fleet``: trackers
  reporting to a fake while a real hub polls it.

Nothing here is imported by the running hub.  It imports without pytest (only the
checks, ``Poller`` and ``Fleet.assert_stored_once`` need it), so ``serve_app`` and the
plugins' fakes also serve outside a test run, e.g. in ``bench/``.
"""

from __future__ import annotations

import logging
import secrets
import types
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import Any, ClassVar

import httpx
import trio
from pydantic import BaseModel, Field, SecretStr

from hub.clock import Clock, TrioClock
from hub.config import Settings
from hub.errors import BadConfig
from hub.fix import PositionFix
from hub.hookspecs import hookimpl
from hub.netguard import OutboundPolicy
from hub.plugin_checks import PluginPackageChecks as PluginPackageChecks
from hub.plugins import load_plugins
from hub.registry import Registry
from hub.secrets import SecretBox
from hub.source import (
    Cadence,
    Cursor,
    DeviceRef,
    MemoryStateStore,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    describe_fields,
)
from hub.store import Store

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
LOOPBACK_NETWORKS = ("127.0.0.0/8",)
"""``outbound_allow_networks`` for a hub whose sources talk to fakes on loopback."""
LOOPBACK = OutboundPolicy.from_strings(LOOPBACK_NETWORKS)
"""The outbound policy allowing loopback: ``new_http_client(LOOPBACK)`` for a source
under test talking to a fake served by ``serve_app``."""


@contextmanager
def fresh_schema(url: str, prefix: str = "t_") -> Iterator[str]:
    """``url`` (a PostgreSQL database) with its ``search_path`` set to a new, empty
    schema, dropped at the end: a database of its own for a test or a bench run."""
    import sqlalchemy as sa

    schema = prefix + secrets.token_hex(6)
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def plugin_module(
    name: str, *sources: type, sinks: Iterable[type] = (), formats: Iterable[type] = ()
) -> Any:
    """An in-process plugin module registering the given classes."""
    mod = types.ModuleType(name)

    @hookimpl
    def register_sources(register: Callable[[type], None]) -> None:
        for s in sources:
            register(s)

    @hookimpl
    def register_sinks(register: Callable[[type], None]) -> None:
        for s in sinks:
            register(s)

    @hookimpl
    def register_formats(register: Callable[[type], None]) -> None:
        for f in formats:
            register(f)

    mod.register_sources = register_sources  # type: ignore[attr-defined]
    mod.register_sinks = register_sinks  # type: ignore[attr-defined]
    mod.register_formats = register_formats  # type: ignore[attr-defined]
    return mod


def make_hub(
    tmp_path: Path,
    *sources: type,
    db_url: str | None = None,
    clock: Clock | None = None,
    use_entry_points: bool = False,
    secret_key: bytes | None = None,
    **settings: Any,
) -> Any:
    """A ``Hub`` on a SQLite file in ``tmp_path`` (or ``db_url``) with ``sources`` registered.

    Pass the same ``secret_key`` to make a second hub on the same data (a restart).
    """
    from hub.core import Hub

    extra = [("test-sources", plugin_module("test_sources", *sources))] if sources else []
    pm, infos = load_plugins(extra=extra, use_entry_points=use_entry_points)
    registry = Registry.collect(pm, infos)
    cfg = replace(Settings(data_dir=tmp_path), **settings)
    store = Store.open(
        db_url or f"sqlite:///{tmp_path / 'hub.db'}",
        SecretBox([secret_key or SecretBox.generate_key().encode()]),
    )
    return Hub(store, registry, infos, clock=clock, settings=cfg)


@asynccontextmanager
async def running(hub: Any, *, close_store: bool = False) -> AsyncIterator[Any]:
    """Run ``hub`` for the ``async with`` block (it has started when the block begins)
    and shut it down after (its pipeline drained); with ``close_store``, close its store
    too (not when the test reads the database afterwards)::

        async with running(make_hub(tmp_path)) as hub:
            ...
    """
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            try:
                yield hub
            finally:
                hub.shutdown()
    finally:
        if close_store:
            hub.store.close()


async def serve_app(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an ASGI ``app`` (a fake upstream, a receiver) with hypercorn on ``host``
    until cancelled; report its base URL (``http://127.0.0.1:PORT``) once bound::

        url = await nursery.start(serve_app, fake.app)
    """
    import hypercorn.trio
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("gpshub.testing.server")
    config.graceful_timeout = 0.5
    config.include_server_header = False
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, app, config)
        task_status.started(binds[0])
        await trio.sleep_forever()


class Fleet:
    """Units of a platform's fake reporting the way trackers do: each every 10, 20 or 30 s
    in turn, a fix recorded 1 s before it is sent (``fake.add_fix(unit, t, lat, lon)``).
    ``sent`` keeps each unit's fix times in order, the ones its fake held back included."""

    def __init__(self, fake: Any, clock: Clock, units: list[str]) -> None:
        self.fake, self.clock, self.units = fake, clock, units
        self.sent: dict[str, list[float]] = {u: [] for u in units}
        self._due = dict.fromkeys(units, 0.0)
        self._gaps = {u: 10 * (1 + i % 3) for i, u in enumerate(units)}

    async def run(self, seconds: float) -> None:
        """Report for ``seconds`` (trio time), looking every 10 s which unit is due."""
        for _ in range(round(seconds / 10)):
            now = self.clock.now().timestamp()
            for n, unit in enumerate(self.units):
                if now < self._due[unit]:
                    continue
                t = now - 1
                self.fake.add_fix(unit, t, 40.0 + n / 100 + len(self.sent[unit]) / 1e4, 10.0)
                self.sent[unit].append(t)
                self._gaps[unit] = 10 + self._gaps[unit] % 30  # 10, 20, 30, 10, ...
                self._due[unit] = now + self._gaps[unit]
            await trio.sleep(10)

    async def black_box(
        self,
        unit: str,
        *,
        on_window: Callable[[], Any] | None = None,
        on_back: Callable[[], Any] | None = None,
    ) -> Any:
        """A unit out of coverage for 20 minutes, while the others report: 2 minutes
        reporting, then ``fake.hold(unit)`` (its fixes go to its black box); after 400 s
        (its last stored fix is now older than a late window) ``on_window()``; 800 s later
        ``on_back()`` and ``fake.release(unit)``: the 20 minutes arrive at once; then
        2 minutes reporting and 65 s for two more polls.  What ``release`` returned."""
        await self.run(120)
        self.fake.hold(unit)
        await self.run(400)
        if on_window is not None:
            on_window()
        await self.run(800)
        if on_back is not None:
            on_back()
        uploaded = self.fake.release(unit)
        await self.run(120)
        await trio.sleep(65)
        return uploaded

    def assert_stored_once(self, hub: Any, connection_id: int) -> None:
        """Every fix each unit sent is in the hub's history of the connection: all of
        them, in order, once; the connection is OK."""
        import pytest

        from hub.models import ConnectionState

        for unit, stored in self.stored(hub, connection_id).items():
            assert stored == pytest.approx(self.sent[unit]), unit
        conn = hub.store.get_connection(connection_id)
        assert conn.state == ConnectionState.OK, conn.last_error

    def stored(self, hub: Any, connection_id: int) -> dict[str, list[float]]:
        """Each unit's fix times in the hub's history (of the connection), oldest first."""
        devices = {d.upstream_id: d for d in hub.store.list_devices(connection_id=connection_id)}
        out = {}
        for unit in self.units:
            rows, _ = hub.store.positions.history([devices[unit].id], limit=100_000)
            out[unit] = [r["fix_time"].timestamp() for r in rows]
        return out


class ScriptedSource(Source[Any, Any]):
    """A source whose polls follow a script: each step is a ``PollResult``, an exception
    to raise, or a callable ``(devices, cursors) -> PollResult``.  The last step repeats.

    Subclass it with a ``script`` class attribute (a list shared by the instances).
    """

    kind = "scripted"
    title = "Scripted test source"

    class Credentials(BaseModel):
        name: str = "scripted"

    cadence = Cadence(active=10.0, jitter=0.0)
    script: ClassVar[list[Any]] = []
    calls: ClassVar[list[tuple[float, Sequence[DeviceRef], dict[str, Cursor]]]] = []

    async def test_connection(self) -> str:
        return "scripted source ready"

    async def poll(self, devices: Sequence[DeviceRef], cursors: Any) -> PollResult:
        type(self).calls.append((trio.current_time(), list(devices), dict(cursors)))
        step = (
            self.script[min(len(self.calls) - 1, len(self.script) - 1)]
            if self.script
            else PollResult()
        )
        if isinstance(step, BaseException) or (
            isinstance(step, type) and issubclass(step, BaseException)
        ):
            raise step
        if callable(step):
            return step(devices, cursors)
        return step


class ListingSource(Source[Any, Any]):
    """A test source of a cloud that lists ``remote`` devices (browsing) and polls
    nothing (an hour apart).  ``check()`` raises what its credentials call for (a wrong
    password, say) before a test connection and a listing; ``signed_in()`` is what a
    test connection that works says.  Subclass it with ``kind``, ``title``,
    ``Credentials`` (``Options``), ``remote`` and those two."""

    cadence = Cadence(active=3600.0, jitter=0.0)
    supports_browse = True
    remote: ClassVar[list[RemoteDevice]] = []

    def check(self) -> None:
        return None

    def signed_in(self) -> str:
        return f"Signed in: {len(self.remote)} devices"

    async def test_connection(self) -> str:
        self.check()
        return self.signed_in()

    async def list_devices(self) -> list[RemoteDevice]:
        self.check()
        return list(self.remote)

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        return PollResult()


class FeedCredentials(BaseModel):
    api_key: SecretStr = Field(title="API key")


class FeedSource(Source[FeedCredentials, BaseModel]):
    """A test source whose devices cannot be listed (added by hand): an API key, and
    polls of nothing an hour apart.  Subclass it with ``kind`` and ``title``."""

    kind = "feed"
    title = "Test feed"
    description = "Has no device list: add its devices by hand with their upstream id."
    Credentials = FeedCredentials
    cadence = Cadence(active=3600.0, jitter=0.0)

    async def test_connection(self) -> str:
        return "feed reachable"

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        return PollResult()


def source_context(
    source_class: type[Source[Any, Any]],
    credentials: dict[str, Any],
    http: httpx.AsyncClient,
    *,
    options: dict[str, Any] | None = None,
    clock: Clock | None = None,
    state: MemoryStateStore | None = None,
    connection_id: int | None = None,
    label: str = "",
) -> SourceContext[Any, Any]:
    """A ``SourceContext`` for a source under test (call inside ``trio.run``).  Pass the
    same ``state`` to a second source to share what the first saved (a hub restart);
    ``connection_id`` ``None`` is a connection not saved yet (a Test Connection)."""
    return SourceContext(
        credentials=source_class.parse_credentials(credentials),
        options=source_class.parse_options(options),
        http=http,
        log=logging.getLogger(f"gpshub.test.{source_class.kind}"),
        state=state if state is not None else MemoryStateStore(),
        clock=clock or TrioClock(EPOCH),
        connection_id=connection_id,
        label=label,
    )


@dataclass
class Served:
    """A fake upstream and the base URL it is served at (``await gpshub_serve(fake)``);
    it unpacks as ``fake, url = served``."""

    fake: Any
    url: str

    def __iter__(self) -> Iterator[Any]:
        return iter((self.fake, self.url))


class SourceMaker:
    """A plugin's ``make_source`` fixture: ``make_source(**options)`` is a new instance of
    ``source_class`` for the ``served`` fake, as a runner makes one (a second instance is
    what a hub restart makes): the fake's credentials (or ``credentials()``'s) and
    options, ``options`` over them, the test's HTTP client and clock.  A call may give
    ``credentials``, ``state`` (share one for a restart), ``connection_id``, ``label``."""

    def __init__(
        self,
        source_class: type[Source[Any, Any]],
        served: Served,
        http: httpx.AsyncClient,
        clock: Clock,
        *,
        credentials: Callable[[], dict[str, Any]] | None = None,
        connection_id: int | None = None,
        label: str = "",
    ) -> None:
        self.source_class, self.served, self.http, self.clock = source_class, served, http, clock
        self.credentials = credentials or (lambda: served.fake.credentials(served.url))
        self.connection_id, self.label = connection_id, label

    def __call__(
        self,
        *,
        credentials: dict[str, Any] | None = None,
        state: MemoryStateStore | None = None,
        connection_id: int | EllipsisType | None = ...,
        label: str | None = None,
        **options: Any,
    ) -> Any:
        fake, url = self.served.fake, self.served.url
        ctx = source_context(
            self.source_class,
            credentials if credentials is not None else self.credentials(),
            self.http,
            options={**fake.options(url), **options},
            clock=self.clock,
            state=state,
            connection_id=self.connection_id if connection_id is ... else connection_id,
            label=self.label if label is None else label,
        )
        return self.source_class(ctx)


def device_refs(upstream_ids: Iterable[str], name: str = "device {}") -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...), each named ``name``
    with its upstream id in place of ``{}``."""
    return [DeviceRef(n, uid, name.format(uid)) for n, uid in enumerate(upstream_ids, start=1)]


def fix_times(result: PollResult, upstream_id: str) -> list[float]:
    """The fix times (epoch seconds) a poll returned for one device, in its order."""
    return [f.fix_time.timestamp() for f in result.fixes.get(upstream_id, [])]


class Poller:
    """Polls a source the way a runner does: the cursors carried from poll to poll (the
    source's own, else the old one moved forward to the device's newest fix), every fix
    validated and collected per device in ``fixes``.  (Uses ``hub.contract``, so pytest.)"""

    def __init__(self, source: Source[Any, Any], devices: Sequence[DeviceRef]) -> None:
        self.source = source
        self.devices = list(devices)
        self.cursors: dict[str, Cursor] = {}
        self.fixes: dict[str, list[PositionFix]] = {}

    async def poll(self) -> PollResult:
        """One poll of every device with the cursors so far; its result."""
        from hub.contract import advance

        cursors = {d.upstream_id: self.cursors.get(d.upstream_id, Cursor()) for d in self.devices}
        result = await self.source.poll(self.devices, cursors)  # one for each, as a runner
        for upstream_id, fixes in result.fixes.items():
            for fix in fixes:
                fix.validate()
            self.fixes.setdefault(upstream_id, []).extend(fixes)
        self.cursors = advance(self.cursors, result)
        return result

    def times(self, upstream_id: str) -> list[float]:
        """The fix times (epoch seconds) of the device's fixes so far, as they came."""
        return [f.fix_time.timestamp() for f in self.fixes.get(upstream_id, [])]


class ReportsBeforePolls:
    """A ``before`` for ``HubDriver.run``/``poll``: before each poll every unit reports
    one fix, 2 s old and at least 1 s after the one before (a restarted hub polls at
    once, so two polls may come in the same second), through ``report(n, unit, poll, t)``
    (``n`` the unit's place in ``units``, ``t`` the fix time in whole epoch seconds).
    ``sent`` keeps each unit's fix times."""

    def __init__(
        self, clock: Clock, units: Sequence[str], report: Callable[[int, str, int, int], None]
    ) -> None:
        self.clock, self.units, self.report = clock, list(units), report
        self.sent: dict[str, list[int]] = {u: [] for u in self.units}

    def __call__(self, poll: int) -> None:
        last = max((times[-1] for times in self.sent.values() if times), default=0)
        t = max(int(self.clock.now().timestamp()) - 2, last + 1)
        for n, unit in enumerate(self.units):
            self.report(n, unit, poll, t)
            self.sent[unit].append(t)


def moving_fix(n: int, step: int) -> dict[str, Any]:
    """The fields of unit ``n``'s fix in round ``step`` of trackers on the move, for
    ``fake.add_fix(unit, t, **moving_fix(n, step))``: at latitude 40 + n/100 + step/10,000
    (units apart, each a little further north each round), longitude -74, 36 km/h, the
    course turning 7° a round, 7 satellites, ignition on, every fifth fix (rounds 3, 8,
    13, ...) invalid.  A test overrides what its platform reports otherwise."""
    return {
        "lat": 40.0 + n / 100 + step / 10_000,
        "lon": -74.0,
        "speed_kmh": 36.0,
        "course": (step * 7) % 360,
        "satellites": 7,
        "ignition": True,
        "valid": step % 5 != 3,
    }


class TrackerFeed:
    """Units reporting together, the way trackers feed a platform: every ``every``
    seconds (trio time) ``report(n, unit, step, now)`` is called for each unit (``n`` its
    place in ``units``, ``step`` the round, from 0, ``now`` the wall clock's epoch seconds);
    ``report`` gives the fake its fix.  ``run()`` continues where the last one stopped."""

    def __init__(
        self,
        clock: Clock,
        units: Sequence[str],
        report: Callable[[int, str, int, float], None],
        *,
        every: float = 10.0,
    ) -> None:
        self.clock, self.units, self.report, self.every = clock, list(units), report, every
        self.step = 0

    async def run(self, seconds: float) -> None:
        """Report for ``seconds``: a round at once, then one every ``every`` seconds."""
        for _ in range(round(seconds / self.every)):
            now = self.clock.now().timestamp()
            for n, unit in enumerate(self.units):
                self.report(n, unit, self.step, now)
            self.step += 1
            await trio.sleep(self.every)


class ConventionalFake:
    """The fake-facing methods of ``hub.contract.SourceContract`` for a fake that follows
    the kit's conventions (``fake.credentials(url)``, ``fake.options(url)``,
    ``fake.add_unit(name)``, ``fake.add_fix(upstream_id, t, lat, lon)``): put it before
    the contract, give ``make_fake``::

        class TestAcmeContract(ConventionalFake, SourceContract):
            source_class = AcmeSource

            def make_fake(self, now, secret):
                return FakeAcme(now=now, token=secret)
    """

    def credentials(self, fake: Any, url: str) -> dict[str, Any]:
        """What ``fake.credentials(url)`` gives."""
        result: dict[str, Any] = fake.credentials(url)
        return result

    def options(self, fake: Any, url: str) -> dict[str, Any]:
        """What ``fake.options(url)`` gives."""
        result: dict[str, Any] = fake.options(url)
        return result

    def add_device(self, fake: Any, n: int) -> str:
        """``fake.add_unit("device N")``: its upstream id."""
        upstream_id: str = fake.add_unit(f"device {n}")
        return upstream_id

    def add_fix(self, fake: Any, upstream_id: str, t: float, lat: float, lon: float) -> None:
        """``fake.add_fix(upstream_id, t, lat, lon)``."""
        fake.add_fix(upstream_id, t, lat, lon)


class DeclarationContract:
    """What a source class declares, checked without a network: its kind, title,
    cadence, credential and option models (shared by both contracts)."""

    source_class: ClassVar[type[Source[Any, Any]]]
    good_credentials: ClassVar[dict[str, Any]]
    bad_credentials: ClassVar[dict[str, Any]] = {}

    def test_declares_the_contract(self) -> None:
        """``kind`` is a non-empty word, ``title`` a text, ``cadence`` a ``Cadence``,
        ``Credentials`` a pydantic model; a source without browse says so in its
        ``description``."""
        cls = self.source_class
        assert isinstance(cls.kind, str) and cls.kind and cls.kind == cls.kind.strip()
        assert isinstance(cls.title, str) and cls.title
        assert isinstance(cls.cadence, Cadence) and cls.cadence.active > 0
        assert issubclass(cls.Credentials, BaseModel)
        assert isinstance(cls.supports_browse, bool)
        if not cls.supports_browse:
            assert cls.description, "a source without browse must say so in its description"

    def test_credential_fields_are_described(self) -> None:
        """At least one credential field; each has a name and a label, and a secret one
        shows no default."""
        fields = describe_fields(self.source_class.Credentials)
        assert fields, "a source needs at least one credential field"
        for f in fields:
            assert f.label and f.name
            if f.secret:
                assert f.default is None, f"secret field {f.name} must not expose a default"

    def test_good_credentials_parse(self) -> None:
        """The example credentials (``good_credentials``) pass the model."""
        self.source_class.parse_credentials(self.good_credentials)

    def test_missing_credentials_name_the_field(self) -> None:
        """Credentials without their required fields are refused with ``BadConfig``
        naming the field (``credentials.…``), so a form can point at it."""
        import pytest

        required = [f.name for f in describe_fields(self.source_class.Credentials) if f.required]
        if not required:
            pytest.skip("no required credential")
        with pytest.raises(BadConfig) as err:
            self.source_class.parse_credentials({})
        assert err.value.field.startswith("credentials.")

    def test_bad_credentials_name_the_field(self) -> None:
        """The example of bad credentials (``bad_credentials``, if given) is refused
        with ``BadConfig`` naming the field."""
        import pytest

        if not self.bad_credentials:
            pytest.skip("no bad_credentials example given")
        with pytest.raises(BadConfig) as err:
            self.source_class.parse_credentials(self.bad_credentials)
        assert err.value.field.startswith("credentials.")
