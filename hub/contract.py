"""The deep contract of a networked source plugin: one class to subclass, naming the
plugin's fake upstream (a ``hub.fake_upstream.FakeUpstream``)::

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

Every check has a docstring saying what it holds the source to.  They run against the
fake served on loopback (``gpshub_serve``), on trio's mock clock (``gpshub_clock``) and
on a source clock set in 2041: a source reading the wall clock instead of ``ctx.clock``
asks its upstream for the wrong period and the fixes checks fail.  The secret in the
credentials is a marker (``SECRET``): no log record of any check and no error message
may contain it.

Needs pytest, pytest-trio (``trio_mode = true``) and gpshub's pytest plugin: install
``gpshub[testing]``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


@dataclass
class Upstream:
    """The served fake, its URL, the source's clock and the devices seeded on it with
    the times of their fixes."""

    fake: FakeUpstream
    url: str
    clock: TrioClock
    devices: list[DeviceRef]
    sent: dict[str, list[float]] = field(default_factory=dict)


class SourceContract(DeclarationContract):
    """Subclass it, set ``source_class`` and give the four methods below."""

    source_class: ClassVar[type[Source[Any, Any]]]

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

    # -- the fixtures and helpers of the checks -------------------------------------------
    @property
    def good_credentials(self) -> dict[str, Any]:  # type: ignore[override]
        """For the declaration checks: what ``credentials`` gives for an unserved fake."""
        return self.credentials(
            self.make_fake(lambda: FAR.timestamp(), SECRET), "https://upstream.example"
        )

    @pytest.fixture
    async def upstream(self, gpshub_serve: Any) -> Upstream:
        """The fake, served, with ``DEVICES`` devices of ``FIXES`` fixes each.  (Each
        check also takes ``gpshub_clock``: pytest-trio runs a test on the mock clock only
        when the test itself asks for it.)"""
        clock = TrioClock(FAR)
        fake = self.make_fake(lambda: clock.now().timestamp(), SECRET)
        url = await gpshub_serve(fake)
        up = Upstream(fake, url, clock, [])
        start = FAR.timestamp() - 60 * (FIXES + 1)
        for n in range(DEVICES):
            uid = self.add_device(fake, n)
            up.devices.append(DeviceRef(n + 1, uid, f"device {n + 1}"))
            up.sent[uid] = []
            for k in range(FIXES):
                self.add_fix(fake, uid, start + 60 * k, 40.0 + n / 100 + k / 1000, -74.0)
                up.sent[uid].append(start + 60 * k)
        return up

    @pytest.fixture(autouse=True)
    def _no_secret_in_logs(self, caplog: pytest.LogCaptureFixture) -> Iterator[None]:
        """Every check: no log record, at any level, carries the secret."""
        install_redaction()  # as the hub does: httpx's request lines lose their query
        caplog.set_level(logging.DEBUG)
        yield
        leaked = [r for r in caplog.records if SECRET in _record_text(r)]
        assert not leaked, f"the secret is in a log line: {_record_text(leaked[0])!r}"

    @asynccontextmanager
    async def source(self, up: Upstream, **options: Any) -> AsyncIterator[Source[Any, Any]]:
        """A new source instance for the fake, as a runner makes one: its ``ctx.http``
        names the source, has the options' timeout and reads the source's clock."""
        opts = {**self.options(up.fake, up.url), **options}
        parsed = self.source_class.parse_options(opts)
        async with source_http_client(LOOPBACK, self.source_class, parsed, up.clock) as http:
            ctx = source_context(
                self.source_class, self.credentials(up.fake, up.url), http,
                options=opts, clock=up.clock,
            )  # fmt: skip
            yield self.source_class(ctx)

    async def failure(self, up: Upstream, arm: Callable[[FakeUpstream], None]) -> SourceError:
        """What a new source's ``test_connection`` or, when that succeeds, its ``poll``
        raises while the fault ``arm`` set is on; the faults are cleared after."""
        arm(up.fake)
        try:
            async with self.source(up, **self._short_timeout()) as source:
                try:
                    await source.test_connection()
                    await source.poll(up.devices, {d.upstream_id: Cursor() for d in up.devices})
                except SourceError as exc:
                    raised = exc
                else:
                    pytest.fail("neither test_connection nor poll raised while the upstream failed")
        finally:
            up.fake.reset_faults()
        assert SECRET not in str(raised), f"the secret is in the error: {raised}"
        return raised

    def _short_timeout(self) -> dict[str, Any]:
        return {"timeout_s": 5.0} if "timeout_s" in self.source_class.Options.model_fields else {}

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

    async def test_test_connection_summarises(self, upstream: Upstream, gpshub_clock: Any) -> None:
        """``test_connection`` returns a non-empty summary of what it found (not ``None``)."""
        async with self.source(upstream) as source:
            summary = await source.test_connection()
        assert isinstance(summary, str) and summary.strip(), (
            f"test_connection returned {summary!r}: return a summary such as '2 devices'"
        )

    async def test_browse_matches_the_flag(self, upstream: Upstream, gpshub_clock: Any) -> None:
        """A source that ``supports_browse`` lists the upstream's devices, each with its
        upstream id; one that does not raises ``NotSupported`` (the API then asks the
        user for the devices' ids)."""
        async with self.source(upstream) as source:
            if not self.source_class.supports_browse:
                with pytest.raises(NotSupported):
                    await source.list_devices()
                return
            devices = await source.list_devices()
        listed = {d.upstream_id for d in devices}
        assert all(listed), "a listed device without an upstream id"
        missing = {d.upstream_id for d in upstream.devices} - listed
        assert not missing, f"devices the upstream has are not listed: {sorted(missing)}"

    async def test_a_poll_returns_the_fixes_the_upstream_has(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """A first poll (empty cursors) returns fixes: timezone-aware, in range, of the
        devices asked for, at the times the fake has them.  The source's clock is in
        2041: a source reading the wall clock asks for the wrong period."""
        result = await self._poll(upstream, {d.upstream_id: Cursor() for d in upstream.devices})
        assert result.fix_count > 0, "a poll of devices with recent fixes returned none"
        known = {d.upstream_id for d in upstream.devices}
        for uid, fixes in result.fixes.items():
            assert uid in known, f"a fix for {uid!r}, a device not asked for"
            for fix in fixes:
                fix.validate()
                assert fix.fix_time.tzinfo is not None, "fix_time must be timezone-aware"
                assert fix.fix_time.timestamp() in upstream.sent[uid], (
                    f"{uid}: a fix at {fix.fix_time}, which the upstream does not have"
                )

    async def test_a_poll_with_the_new_cursors_repeats_nothing(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """Cursors advance: a second poll with the cursors of the first returns no fix
        again, and a third returns just the fixes added since."""
        cursors = {d.upstream_id: Cursor() for d in upstream.devices}
        first = await self._poll(upstream, cursors)
        cursors = advance(cursors, first)
        seen = {(u, f.fix_time) for u, fixes in first.fixes.items() for f in fixes}
        await trio.sleep(60)
        second = await self._poll(upstream, cursors)
        again = {(u, f.fix_time) for u, fixes in second.fixes.items() for f in fixes} & seen
        assert not again, f"the second poll repeated {len(again)} fix(es), e.g. {min(again)}"
        cursors = advance(cursors, second)
        now = float(round(upstream.clock.now().timestamp()))
        for n, d in enumerate(upstream.devices):
            self.add_fix(upstream.fake, d.upstream_id, now - 30, 41.0 + n / 100, -74.0)
        await trio.sleep(60)
        third = await self._poll(upstream, cursors)
        got = sorted((u, f.fix_time.timestamp()) for u, fixes in third.fixes.items() for f in fixes)
        assert got == sorted((d.upstream_id, now - 30) for d in upstream.devices)

    async def test_refused_credentials_are_invalid_auth(
        self, upstream: Upstream, gpshub_clock: Any
    ) -> None:
        """HTTP 401 from the upstream: ``InvalidAuth`` (the user must fix the credentials;
        the hub stops retrying)."""
        exc = await self.failure(upstream, lambda f: f.fail(401, times=50))
        assert isinstance(exc, InvalidAuth), f"401 raised {type(exc).__name__}: {exc}"

    async def test_an_upstream_that_never_answers_is_cannot_connect(
        self, upstream: Upstream
    ) -> None:
        """A request that gets no answer: ``CannotConnect`` once the source's timeout
        passes (not a hang, not another error)."""
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

    async def _poll(self, up: Upstream, cursors: dict[str, Cursor]) -> PollResult:
        async with self.source(up) as source:
            result = await source.poll(up.devices, cursors)
        assert isinstance(result, PollResult)
        return result


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


def _is_text(annotation: Any) -> bool:
    return annotation is str or any(a is str for a in get_args(annotation))


def _record_text(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text += " " + str(record.exc_info[1])
    return text
