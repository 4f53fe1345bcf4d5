"""The deep contract of a source plugin: one class to subclass.

A networked source subclasses ``SourceContract``, naming the plugin's fake upstream (a
``hub.fake_upstream.FakeUpstream``)::

    from hub.contract import SourceContract

    class TestAcmeContract(SourceContract):
        source_class = AcmeSource

        def make_fake(self, now, secret):
            return FakeAcme(now=now, api_key=secret)

        def credentials(self, fake, url):
            return {"server_url": url, "api_key": fake.api_key}

        def add_device(self, fake, n):
            return fake.add_unit(f"van {n}")           # its upstream id

        def add_fix(self, fake, upstream_id, t, lat, lon):
            fake.add_fix(upstream_id, t, lat, lon)     # t: epoch seconds

A source without an upstream server (a simulator: it makes its fixes itself) subclasses
``BaseSourceContract``, the checks every source passes, with credentials that work::

    from hub.contract import BaseSourceContract

    class TestSimulatorContract(BaseSourceContract):
        source_class = SimulatorSource
        good_credentials = {"waypoints": DEMO_ROUTE}

Every check has a docstring saying what it holds the source to.  They run on trio's mock
clock (``gpshub_clock``) and on a source clock set in 2041: a source reading the wall
clock instead of ``ctx.clock`` asks its upstream for the wrong period, or dates its own
fixes wrongly, and the fixes checks fail.  A networked source's checks run against its
fake served on loopback (``gpshub_serve``); the secret in its credentials is a marker
(``SECRET``): no log record of any check and no error message may contain it.

Needs pytest, pytest-trio (``trio_mode = true``) and gpshub's pytest plugin: install
``gpshub[testing]``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, get_args

import pytest
import trio

from hub.clock import TrioClock
from hub.errors import (
    CannotConnect,
    InvalidAuth,
    NotSupported,
    RateLimited,
    SourceError,
    UpdateFailed,
)
from hub.fake_upstream import FakeUpstream
from hub.fix import PositionFix
from hub.logging_setup import install_redaction
from hub.runner import source_http_client
from hub.source import Cursor, DeviceRef, PollResult, Source, url_fields
from hub.testing import LOOPBACK, DeclarationContract, source_context

FAR = datetime(2041, 6, 1, 12, 0, tzinfo=UTC)
"""Where the source's clock stands during the checks: far from any wall clock."""
SECRET = "gpshub-contract-secret-7Qz"  # noqa: S105 - a marker, not a credential
"""The secret the credentials carry (``make_fake`` gets it): never in a log or an error."""
DEVICES = 2
FIXES = 3  # per device, a minute apart, ending two minutes before the clock's time
GIVE_UP_S = 600.0
"""How long (on the mock clock: no real time) a failing request may keep a source busy
before the fault checks call it a hang."""

FixKey = tuple[str, datetime]
"""A fix as the checks compare them: its device's upstream id and its time."""


@dataclass
class Setting:
    """What a check runs the source with: its clock, the devices it polls, and the
    credentials and options of the connection."""

    clock: TrioClock
    devices: list[DeviceRef]
    credentials: dict[str, Any]
    options: dict[str, Any]


@dataclass
class Upstream(Setting):
    """A networked source's setting: the served fake, its URL, and the times of the fixes
    seeded on it (and added since) per device."""

    fake: FakeUpstream = field(kw_only=True)
    url: str = field(kw_only=True)
    sent: dict[str, list[float]] = field(default_factory=dict, kw_only=True)


class BaseSourceContract(DeclarationContract):
    """The checks every source passes, networked or not.  Subclass it directly for a
    source without an upstream (one that makes its fixes itself), with
    ``good_credentials`` (and ``good_options``, ``device_ids``); a networked source
    subclasses ``SourceContract`` instead, which adds the checks against its fake."""

    source_class: ClassVar[type[Source[Any, Any]]]
    good_options: ClassVar[dict[str, Any]] = {}
    """Options of the connection (none by default)."""
    device_ids: ClassVar[Sequence[str]] = tuple(f"device-{n + 1}" for n in range(DEVICES))
    """The upstream ids of the devices polled (and listed by browse, if it can)."""
    max_fix_age_s: ClassVar[float] = 3600.0
    """How long before the source's clock a fix of a source without an upstream may be."""

    # -- the fixtures and helpers of the checks -------------------------------------------
    @pytest.fixture
    async def setting(self) -> Setting:
        """The source's clock in 2041, the ``device_ids`` and the good credentials.
        (Each async check also takes ``gpshub_clock``: pytest-trio runs a test on the
        mock clock only when the test itself asks for it.)"""
        devices = [
            DeviceRef(n + 1, uid, f"device {n + 1}") for n, uid in enumerate(self.device_ids)
        ]
        return Setting(
            TrioClock(FAR), devices, dict(self.good_credentials), dict(self.good_options)
        )

    @pytest.fixture(autouse=True)
    def _no_secret_in_logs(self, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
        """Every check: no log record, at any level, carries the secret."""
        install_redaction()  # as the hub does: httpx's request lines lose their query
        caplog.set_level(logging.DEBUG)
        yield
        leaked = [r for r in caplog.records if SECRET in _record_text(r)]
        assert not leaked, f"the secret is in a log line: {_record_text(leaked[0])!r}"

    @asynccontextmanager
    async def source(self, setting: Setting, **options: Any) -> AsyncIterator[Source[Any, Any]]:
        """A new source instance for the setting, as a runner makes one: its
        ``ctx.http`` names the source, has the options' timeout and reads the source's
        clock; ``options`` override the setting's."""
        opts = {**setting.options, **options}
        parsed = self.source_class.parse_options(opts)
        async with source_http_client(LOOPBACK, self.source_class, parsed, setting.clock) as http:
            ctx = source_context(
                self.source_class, setting.credentials, http, options=opts, clock=setting.clock
            )
            yield self.source_class(ctx)

    def check_fix_time(self, setting: Setting, upstream_id: str, fix: PositionFix) -> None:
        """A fix of a source without an upstream is dated on the source's clock: not
        after its time, at most ``max_fix_age_s`` before the checks began."""
        now = setting.clock.now()
        earliest = FAR - timedelta(seconds=self.max_fix_age_s)
        assert earliest <= fix.fix_time <= now, (
            f"{upstream_id}: a fix at {fix.fix_time} while the source's clock reads {now}:"
            " take the time from ctx.clock"
        )

    def add_new_fixes(self, setting: Setting) -> list[tuple[str, float]] | None:
        """Between the second and third polls of the cursors check: the fixes the
        upstream gets (upstream id, epoch seconds), which the third poll returns exactly;
        ``None`` (here): the source makes its fixes itself."""
        return None

    async def _poll(self, setting: Setting, cursors: dict[str, Cursor]) -> PollResult:
        async with self.source(setting) as source:
            result = await source.poll(setting.devices, cursors)
        assert isinstance(result, PollResult)
        known = {d.upstream_id for d in setting.devices}
        for uid, fixes in result.fixes.items():
            assert uid in known, f"a fix for {uid!r}, a device not asked for"
            for fix in fixes:
                fix.validate()
                assert fix.fix_time.tzinfo is not None, "fix_time must be timezone-aware"
                self.check_fix_time(setting, uid, fix)
        return result

    # -- the checks -------------------------------------------------------------------------
    def test_url_fields_are_upstream_urls(self) -> None:
        """A credential or option that holds a URL is typed ``UpstreamUrl``: its syntax is
        checked and the hub checks its address against the outbound policy."""
        for model in (self.source_class.Credentials, self.source_class.Options):
            marked = set(url_fields(model))
            for name, info in model.model_fields.items():
                if "url" in name.lower() and _is_text(info.annotation):
                    assert name in marked, (
                        f"{model.__name__}.{name} holds a URL: type it hub.UpstreamUrl"
                    )

    async def test_test_connection_summarises(self, setting: Setting, gpshub_clock: Any) -> None:
        """``test_connection`` returns a non-empty summary of what it found (not ``None``)."""
        async with self.source(setting) as source:
            summary = await source.test_connection()
        assert isinstance(summary, str) and summary.strip(), (
            f"test_connection returned {summary!r}: return a summary such as '2 devices'"
        )

    async def test_browse_matches_the_flag(self, setting: Setting, gpshub_clock: Any) -> None:
        """A source that ``supports_browse`` lists the upstream's devices, each with its
        upstream id; one that does not raises ``NotSupported`` (the API then asks the
        user for the devices' ids)."""
        async with self.source(setting) as source:
            if not self.source_class.supports_browse:
                with pytest.raises(NotSupported):
                    await source.list_devices()
                return
            devices = await source.list_devices()
        listed = {d.upstream_id for d in devices}
        assert all(listed), "a listed device without an upstream id"
        missing = {d.upstream_id for d in setting.devices} - listed
        assert not missing, f"devices the upstream has are not listed: {sorted(missing)}"

    async def test_a_poll_returns_the_fixes_the_upstream_has(
        self, setting: Setting, gpshub_clock: Any
    ) -> None:
        """A first poll (empty cursors) returns fixes: valid, timezone-aware, of the
        devices asked for, at the times the upstream has them (``check_fix_time``).  The
        source's clock is in 2041: a source reading the wall clock asks for the wrong
        period, or dates its fixes in the wrong year."""
        result = await self._poll(setting, {d.upstream_id: Cursor() for d in setting.devices})
        assert result.fix_count > 0, "a poll of devices with recent fixes returned none"

    async def test_a_poll_with_the_new_cursors_repeats_nothing(
        self, setting: Setting, gpshub_clock: Any
    ) -> None:
        """Cursors advance: a second poll a minute later with the cursors of the first
        returns no fix again, and a third, another minute on, returns no fix of the first
        two; with an upstream, just the fixes it got since (``add_new_fixes``)."""
        cursors = {d.upstream_id: Cursor() for d in setting.devices}
        first = await self._poll(setting, cursors)
        cursors = advance(cursors, first)
        seen = _keys(first)
        await trio.sleep(60)
        second = await self._poll(setting, cursors)
        again = _keys(second) & seen
        assert not again, f"the second poll repeated {len(again)} fix(es), e.g. {min(again)}"
        cursors = advance(cursors, second)
        seen |= _keys(second)
        added = self.add_new_fixes(setting)
        await trio.sleep(60)
        third = await self._poll(setting, cursors)
        if added is None:
            again = _keys(third) & seen
            assert not again, f"the third poll repeated {len(again)} fix(es), e.g. {min(again)}"
            return
        got = sorted((u, f.fix_time.timestamp()) for u, fixes in third.fixes.items() for f in fixes)
        assert got == sorted(added)


class SourceContract(BaseSourceContract):
    """The deep contract of a networked source: the checks every source passes, against
    its fake, and the faults an upstream has.  Subclass it, set ``source_class`` and give
    the four methods below (``options`` too when the fake needs some)."""

    # -- what the plugin gives ----------------------------------------------------------
    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        """The fake, reading time from ``now`` and accepting ``secret`` as the
        credentials' secret (password, token…)."""
        raise NotImplementedError

    def credentials(self, fake: FakeUpstream, url: str) -> dict[str, Any]:
        """Credentials the fake served at ``url`` accepts."""
        raise NotImplementedError

    def options(self, fake: FakeUpstream, url: str) -> dict[str, Any]:
        """Options for that fake (none by default)."""
        return {}

    def add_device(self, fake: FakeUpstream, n: int) -> str:
        """Add a device to the fake; its upstream id."""
        raise NotImplementedError

    def add_fix(
        self, fake: FakeUpstream, upstream_id: str, t: float, lat: float, lon: float
    ) -> None:
        """Add a fix at ``t`` (epoch seconds) for the device."""
        raise NotImplementedError

    def prepare(self, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch) -> None:
        """Point at the fake what the source sends outside ``ctx.http`` (nothing by
        default): a third-party library's own requests, e.g. a blocking token request
        that on the mock clock could not reach a fake served by the test's own thread,
        answered by the fake in-process with ``monkeypatch.setattr``.  Undone after
        each check."""

    # -- the fixtures and helpers of the checks -------------------------------------------
    @property
    def good_credentials(self) -> dict[str, Any]:  # type: ignore[override]
        """For the declaration checks: what ``credentials`` gives for an unserved fake."""
        return self.credentials(
            self.make_fake(lambda: FAR.timestamp(), SECRET), "https://upstream.example"
        )

    @pytest.fixture
    async def upstream(self, gpshub_serve: Any, monkeypatch: pytest.MonkeyPatch) -> Upstream:
        """The fake, served (and ``prepare``d), with ``DEVICES`` devices of ``FIXES``
        fixes each."""
        clock = TrioClock(FAR)
        fake = self.make_fake(lambda: clock.now().timestamp(), SECRET)
        self.prepare(fake, monkeypatch)
        url = await gpshub_serve(fake)
        up = Upstream(
            clock, [], self.credentials(fake, url), self.options(fake, url), fake=fake, url=url
        )
        start = FAR.timestamp() - 60 * (FIXES + 1)
        for n in range(DEVICES):
            uid = self.add_device(fake, n)
            up.devices.append(DeviceRef(n + 1, uid, f"device {n + 1}"))
            up.sent[uid] = []
            for k in range(FIXES):
                self.add_fix(fake, uid, start + 60 * k, 40.0 + n / 100 + k / 1000, -74.0)
                up.sent[uid].append(start + 60 * k)
        return up

    @pytest.fixture
    def setting(self, upstream: Upstream) -> Setting:
        """The checks every source passes run against the served fake."""
        return upstream

    def check_fix_time(self, setting: Setting, upstream_id: str, fix: PositionFix) -> None:
        """A fix is at a time the fake has a fix of the device."""
        assert isinstance(setting, Upstream)
        assert fix.fix_time.timestamp() in setting.sent[upstream_id], (
            f"{upstream_id}: a fix at {fix.fix_time}, which the upstream does not have"
        )

    def add_new_fixes(self, setting: Setting) -> list[tuple[str, float]]:
        """A fix for each device half a minute before the source's clock."""
        assert isinstance(setting, Upstream)
        now = float(round(setting.clock.now().timestamp()))
        for n, d in enumerate(setting.devices):
            self.add_fix(setting.fake, d.upstream_id, now - 30, 41.0 + n / 100, -74.0)
            setting.sent[d.upstream_id].append(now - 30)
        return [(d.upstream_id, now - 30) for d in setting.devices]

    async def failure(self, up: Upstream, arm: Callable[[FakeUpstream], None]) -> SourceError:
        """What a new source's ``test_connection`` or, when that succeeds, its ``poll``
        raises while the fault ``arm`` set is on; the faults are cleared after.  Still
        busy after ``GIVE_UP_S`` of the source's time: the check fails (a hang)."""
        arm(up.fake)
        try:
            with trio.move_on_after(GIVE_UP_S) as waited:
                raised = await self._first_error(up)
        finally:
            up.fake.reset_faults()
        if waited.cancelled_caught:
            pytest.fail(f"the source was still waiting after {GIVE_UP_S:g} s: a hang")
        assert SECRET not in str(raised), f"the secret is in the error: {raised}"
        return raised

    async def _first_error(self, up: Upstream) -> SourceError:
        async with self.source(up, **self._short_timeout()) as source:
            try:
                await source.test_connection()
                await source.poll(up.devices, {d.upstream_id: Cursor() for d in up.devices})
            except SourceError as exc:
                return exc
        pytest.fail("neither test_connection nor poll raised while the upstream failed")

    def _short_timeout(self) -> dict[str, Any]:
        return {"timeout_s": 5.0} if "timeout_s" in self.source_class.Options.model_fields else {}

    # -- the checks -------------------------------------------------------------------------
    async def test_refused_credentials_are_invalid_auth(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """HTTP 401 from the upstream: ``InvalidAuth`` (the user must fix the credentials;
        the hub stops retrying)."""
        exc = await self.failure(upstream, lambda f: f.fail(401, times=50))
        assert isinstance(exc, InvalidAuth), f"401 raised {type(exc).__name__}: {exc}"

    async def test_an_upstream_that_never_answers_is_cannot_connect(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """A request that gets no answer: ``CannotConnect`` once the source's timeout
        passes (not a hang, not another error).  httpx's timeouts are trio deadlines, so
        on the mock clock the wait costs no real time."""
        exc = await self.failure(upstream, lambda f: f.hang(times=50))
        assert isinstance(exc, CannotConnect), f"a timeout raised {type(exc).__name__}: {exc}"

    async def test_rate_limiting_is_rate_limited_with_retry_after(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """HTTP 429 with ``Retry-After: 120``: ``RateLimited`` carrying ``retry_after``
        (the runner waits that long)."""
        exc = await self.failure(upstream, lambda f: f.rate_limit(times=50, retry_after=120))
        assert isinstance(exc, RateLimited), f"429 raised {type(exc).__name__}: {exc}"
        assert exc.retry_after is not None and 100 <= exc.retry_after <= 130, (
            f"retry_after={exc.retry_after}: read it from the Retry-After header"
        )

    async def test_garbage_is_update_failed(self, upstream: Upstream, gpshub_clock: Any) -> None:
        """A body that does not parse: ``UpdateFailed`` (not a ``ValueError`` or
        ``KeyError`` escaping the plugin)."""
        exc = await self.failure(upstream, lambda f: f.malformed(times=50))
        assert isinstance(exc, UpdateFailed), f"garbage raised {type(exc).__name__}: {exc}"


def advance(cursors: dict[str, Cursor], result: PollResult) -> dict[str, Cursor]:
    """The cursors after ``result`` as the runner keeps them: the source's own, else the
    old one moved to the device's newest fix."""
    out = dict(cursors)
    for uid, fixes in result.fixes.items():
        if uid not in result.cursors and fixes:
            newest = max(f.fix_time for f in fixes)
            old = out.get(uid) or Cursor()
            if old.last_fix_time is None or newest > old.last_fix_time:
                out[uid] = Cursor(newest, old.state)
    out.update(result.cursors)
    return out


def _keys(result: PollResult) -> set[FixKey]:
    return {(u, f.fix_time) for u, fixes in result.fixes.items() for f in fixes}


def _is_text(annotation: Any) -> bool:
    return annotation is str or any(a is str for a in get_args(annotation))


def _record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += " " + str(record.exc_info[1])
    return text
