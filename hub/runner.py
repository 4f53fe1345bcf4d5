"""One runner per connection: cadence, jitter, backoff and the error taxonomy.

* ``InvalidAuth`` marks the connection "needs re-auth" and stops polling it until its
  credentials change (saving new ones restarts the runner).
* ``BadConfig`` marks it "bad configuration" and stops, likewise until it is edited.
* ``CannotConnect``, ``UpdateFailed``, timeouts and anything unexpected (garbage from
  upstream included) back off exponentially, capped.
* ``RateLimited`` waits for its ``retry_after``.
* A connection with no device to poll is ``idle``: its credentials are checked once with
  the source's ``test_connection()`` (so wrong ones show as "needs re-auth" before any
  device is imported), and its status says why it is idle; it looks for devices again
  every interval (an import restarts it at once).

Logging: each runner logs its first outcome (the first successful poll, or why it
failed) and then every change of state (``ok``, ``idle``, ``failing``, ``rate_limited``,
``needs_reauth``, ``bad_config``), not every retry; failures at WARNING, the rest at
INFO, each record with ``connection_id``, ``kind``, ``state`` and ``previous_state``.
While a connection waits for new credentials or an edit, ``next_poll_at`` is empty.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import trio

from hub.blocking import run_blocking
from hub.dropped_fixes import DroppedFixes
from hub.errors import BadConfig, InvalidAuth, RateLimited
from hub.fix import PositionFix
from hub.logging_setup import scrub
from hub.models import ConnectionState
from hub.netguard import OutboundPolicy, guarded_transport
from hub.pipeline import PipelineClosed
from hub.positions import CursorUpdate, IngestItem
from hub.source import (
    Cursor,
    DeviceRef,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    check_upstream_urls,
    connection_summary,
    secret_strings,
)
from hub.store import UNSET
from hub.upstream_http import UpstreamClient, options_timeout

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.core import Hub

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
MAX_RETRY_AFTER = 3600.0
POLL_TIMEOUT = 120.0
ACTIVE_SPEED_KMH = 3.0
USER_AGENT = "gpshub/0.1 (+https://github.com/gpshub)"
SYNCED_KEY = "hub.synced_devices"

_TROUBLE = {
    ConnectionState.FAILING,
    ConnectionState.RATE_LIMITED,
    ConnectionState.NEEDS_REAUTH,
    ConnectionState.BAD_CONFIG,
}
_SAY = {
    ConnectionState.FAILING: "polling failed; retrying with backoff",
    ConnectionState.RATE_LIMITED: "rate limited; waiting",
    ConnectionState.NEEDS_REAUTH: "credentials rejected; paused until they change",
    ConnectionState.BAD_CONFIG: "bad configuration; paused until edited",
    ConnectionState.IDLE: "idle",
}


class StoreStateStore:
    """The ``StateStore`` a source gets: its connection's encrypted key-value rows."""

    def __init__(self, hub: Hub, connection_id: int) -> None:
        self._store = hub.store
        self._id = connection_id

    async def get(self, key: str, default: Any = None) -> Any:
        value = await run_blocking(self._store.state_get, self._id, key)
        return default if value is UNSET else value

    async def set(self, key: str, value: Any) -> None:
        await run_blocking(self._store.state_set, self._id, key, value)

    async def delete(self, key: str) -> None:
        await run_blocking(self._store.state_delete, self._id, key)


def new_http_client(
    policy: OutboundPolicy | None = None,
    *,
    upstream: str = "the upstream",
    timeout_s: float | None = None,
    now: Callable[[], datetime] | None = None,
) -> UpstreamClient:
    """The HTTP client a source gets (``ctx.http``): guarded against server-side request
    forgery (only public addresses, or the networks the administrator allows), no
    redirects, our user agent; an ``UpstreamClient`` naming ``upstream`` (the source's
    title) in its errors, with the connection's request timeout (``timeout_s``; 30 s,
    at most 10 s to connect, without) and the source's clock (``now``)."""
    return UpstreamClient(
        upstream=upstream,
        timeout_s=timeout_s,
        now=now,
        transport=guarded_transport(policy or OutboundPolicy()),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


def source_http_client(
    policy: OutboundPolicy, source_class: type[Source[Any, Any]], options: object, clock: Clock
) -> UpstreamClient:
    """``new_http_client`` for a source of ``source_class`` with these ``options``."""
    return new_http_client(
        policy,
        upstream=str(source_class.title or source_class.kind),
        timeout_s=options_timeout(options),
        now=clock.now,
    )


def backoff_delay(failures: int, interval: float, rng: random.Random) -> float:
    """Exponential backoff from ``interval`` up to ``MAX_BACKOFF``, with equal jitter."""
    ceiling = min(MAX_BACKOFF, max(interval, 1.0) * 2 ** max(failures - 1, 0))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class SourceRunner:
    def __init__(self, hub: Hub, connection_id: int, rng: random.Random | None = None) -> None:
        self.hub = hub
        self.connection_id = connection_id
        self.rng = rng or random.Random()
        self.failures = 0
        self.polls = 0
        self.state: str = ConnectionState.NEW
        self._last_active: float | None = None
        self._secrets: list[str] = []
        self._version: datetime | None = None  # the connection's updated_at we run with
        self._synced: dict[str, Any] | None = None  # upstream properties last applied
        self._account: str | None = None  # the idle check's summary, once it succeeded
        self._idle_failures = 0
        self._idle_next = 0.0  # trio time of the next account check after a failed one
        self._idle_note = ""
        self.devices = 0  # how many the last poll covered
        self.notices: list[str] = []  # the last poll's remarks for the status
        self.peer: tuple[str, int] | None = None  # the upstream's address, last answer
        self.kind = ""
        self.label = f"#{connection_id}"
        self._reported: str | None = None  # the state last logged (None: nothing yet)
        self._poll_s: float | None = None  # how long the last call of poll() took
        self._state_at_start: str | None = None  # the stored state when the runner started
        self._polled: frozenset[int] = frozenset()  # the devices the last poll covered
        self._poked = trio.Event()
        self.dropped = DroppedFixes(connection_id)
        """The fixes the source sent that could not be stored, since the runner started."""

    @property
    def version(self) -> datetime | None:
        """The ``updated_at`` of the connection as this runner loaded it."""
        return self._version

    def poke(self) -> None:
        """Devices were linked to or unlinked from the connection: poll at once, rather
        than at the next interval, if the devices to poll are no longer those of the
        last poll (a poke that changes nothing, say the same change seen twice, costs
        one query and no request upstream)."""
        self._poked.set()

    async def _wait_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` (trio time), or until a poke changed the devices."""
        while True:
            with trio.move_on_at(deadline):
                await self._poked.wait()
            if not self._poked.is_set():
                return
            self._poked = trio.Event()
            refs = await run_blocking(self.hub.store.device_refs, self.connection_id)
            if frozenset(r.device_id for r in refs) != self._polled:
                return

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        hub = self.hub
        conn = await run_blocking(hub.store.get_connection, self.connection_id)
        self._version = conn.updated_at
        self.kind, self._state_at_start = conn.kind, conn.state
        label = self.label = f"{conn.label!r} (#{conn.id}, {conn.kind})"
        clog = logging.LoggerAdapter(
            logging.getLogger(f"gpshub.source.{conn.kind}"), {"connection_id": conn.id}
        )
        task_status.started()
        try:
            source_cls = hub.registry.source(conn.kind)
        except KeyError as exc:
            await self._set_state(
                ConnectionState.FAILING, str(exc.args[0]), say="its source is missing; not polled"
            )
            return
        try:
            raw = await run_blocking(hub.store.connection_credentials, conn)
            credentials = source_cls.parse_credentials(raw)
            options = source_cls.parse_options(conn.options)
            check_upstream_urls(hub.outbound_policy, credentials, options)
        except BadConfig as exc:
            await self._set_state(ConnectionState.BAD_CONFIG, f"bad configuration: {exc}")
            return
        async with source_http_client(hub.outbound_policy, source_cls, options, hub.clock) as http:
            http.event_hooks["response"].append(self._note_peer)
            ctx: SourceContext[Any, Any] = SourceContext(
                credentials=credentials,
                options=options,
                http=http,
                log=clog,
                state=StoreStateStore(hub, self.connection_id),
                clock=hub.clock,
                connection_id=self.connection_id,
                label=conn.label,
            )
            source = source_cls(ctx)
            self._secrets = secret_strings(credentials)
            try:
                await self._loop(source, label)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await source.aclose()

    async def _loop(self, source: Source[Any, Any], label: str) -> None:
        cadence = source.cadence
        while True:
            started = trio.current_time()
            try:
                self._poll_s = None
                try:
                    with trio.fail_after(POLL_TIMEOUT):
                        count = await self._poll_once(source)
                except Exception as exc:
                    self._observe(_outcome(exc))
                    raise
                self._observe("idle" if count is None else "ok")
                if count is None:
                    await self._check_account(source, label, cadence.active)
            except InvalidAuth as exc:
                await self._set_state(
                    ConnectionState.NEEDS_REAUTH, f"invalid credentials: {exc}", next_poll_at=None
                )
                return
            except BadConfig as exc:
                await self._set_state(
                    ConnectionState.BAD_CONFIG, f"bad configuration: {exc}", next_poll_at=None
                )
                return
            except PipelineClosed:
                return
            except RateLimited as exc:
                self.failures += 1
                wait = exc.retry_after
                if wait is None or not math.isfinite(wait) or wait < 0:
                    wait = backoff_delay(self.failures, cadence.active, self.rng)
                wait = min(wait, MAX_RETRY_AFTER)
                await self._fail(ConnectionState.RATE_LIMITED, f"rate limited: {exc}", label, wait)
                await trio.sleep(wait)
                continue
            except trio.TooSlowError:
                self.failures += 1
                wait = backoff_delay(self.failures, cadence.active, self.rng)
                await self._fail(
                    ConnectionState.FAILING,
                    f"poll timed out after {POLL_TIMEOUT:.0f} s",
                    label,
                    wait,
                )
                await trio.sleep(wait)
                continue
            except Exception as exc:  # CannotConnect, UpdateFailed, httpx errors, garbage
                self.failures += 1
                wait = backoff_delay(self.failures, cadence.active, self.rng)
                await self._fail(ConnectionState.FAILING, _describe(exc), label, wait, exc)
                await trio.sleep(wait)
                continue
            interval = self._interval(cadence)
            interval *= 1 + self.rng.uniform(-cadence.jitter, cadence.jitter)
            if count is None:  # no devices to poll: say why
                await self._idle(label, interval)
                await self._wait_until(started + interval)
                continue
            if self._reported is None:
                say = f"first successful poll, {count} new fix(es)"
            elif self.failures:
                say = f"recovered after {self.failures} failed poll(s)"
            else:
                say = "ok"
            self.failures = 0
            now = self.hub.clock.now()
            await self._set_state(
                ConnectionState.OK,
                None,
                message="; ".join(
                    [f"polling {self.devices} device(s)", *self.notices, *self.dropped.note()]
                ),
                say=say,
                last_poll_at=now,
                last_success_at=now,
                next_poll_at=now + timedelta(seconds=interval),
            )
            log.debug("connection %s: %d new fix(es)", label, count)
            await self._wait_until(started + interval)

    async def _note_peer(self, response: httpx.Response) -> None:
        """Remember the address the upstream answered from: fixes without a source
        address of their own get it (it is where the hub received them from)."""
        stream = response.extensions.get("network_stream")
        addr = stream.get_extra_info("server_addr") if stream is not None else None
        if isinstance(addr, tuple) and len(addr) >= 2:
            self.peer = (str(addr[0]), int(addr[1]))

    async def _check_account(self, source: Source[Any, Any], label: str, interval: float) -> None:
        """While idle, check the credentials with the source's ``test_connection()``: once,
        and again with backoff after a check that could not reach the upstream.
        ``InvalidAuth`` and ``BadConfig`` propagate like a poll's."""
        if self._account is not None or trio.current_time() < self._idle_next:
            return
        try:
            with trio.fail_after(POLL_TIMEOUT):
                summary = connection_summary(await source.test_connection())
        except (InvalidAuth, BadConfig):
            raise
        except Exception as exc:
            self._idle_failures += 1
            wait = backoff_delay(self._idle_failures, interval, self.rng)
            self._idle_next = trio.current_time() + wait
            self._idle_note = f"the account could not be checked: {_describe(exc)}"
            if self._idle_failures == 1:
                log.info("connection %s: %s", label, self._idle_note)
            return
        self._account = scrub(str(summary), self._secrets)
        self._idle_failures, self._idle_note = 0, f"account: {self._account}"

    async def _idle(self, label: str, interval: float) -> None:
        message = "no devices to poll: import or link devices of the account"
        if self._idle_note:
            message += f"; {self._idle_note}"
        now = self.hub.clock.now()
        await self._set_state(
            ConnectionState.IDLE,
            None,
            message=message,
            next_poll_at=now + timedelta(seconds=interval),
        )

    def _interval(self, cadence: Any) -> float:
        if not cadence.adaptive:
            return float(cadence.active)
        if self._last_active is None:  # a new runner: active until proven quiet, that is
            self._last_active = trio.current_time()  # for one active window from now
        quiet = trio.current_time() - self._last_active > cadence.active_window
        return float(cadence.quiet if quiet else cadence.active)

    async def _poll_once(self, source: Source[Any, Any]) -> int | None:
        """One poll; the number of new fixes, or ``None`` when there is no device."""
        store = self.hub.store
        refs, stored = await run_blocking(self._load, store)
        self.devices = len(refs)
        self._polled = frozenset(r.device_id for r in refs)
        if not refs:
            return None
        by_upstream = {r.upstream_id: r for r in refs}
        cursors = {r.upstream_id: stored.get(r.device_id, Cursor()) for r in refs}
        polled = time.perf_counter()
        try:
            result = await source.poll(refs, cursors)
        finally:
            self._poll_s = time.perf_counter() - polled
        self.polls += 1
        if not isinstance(result, PollResult):
            raise TypeError(f"poll() returned {type(result).__name__}, not PollResult")
        self.notices = [str(n) for n in result.notices]
        items: list[IngestItem] = []
        updates: list[CursorUpdate] = []
        active = result.active
        valid: dict[str, list[PositionFix]] = {}
        for upstream_id, fixes in result.fixes.items():
            ref = by_upstream.get(str(upstream_id))
            if ref is None:  # not one of ours (or no longer: unlinked during the poll)
                self.dropped.add(
                    sum(1 for _ in fixes),
                    f"device {upstream_id}: not one of the devices polled",
                    self.hub,
                    unknown_device=True,
                )
                continue
            kept = valid[ref.upstream_id] = self.dropped.keep(ref.upstream_id, fixes, self.hub)
            for fix in kept:
                if fix.source_ip is None and self.peer is not None:
                    fix.source_ip, fix.source_port = self.peer
                items.append(IngestItem(ref.device_id, self.connection_id, fix))
                if active is None and (
                    fix.ignition or (fix.speed_kmh is not None and fix.speed_kmh > ACTIVE_SPEED_KMH)
                ):
                    active = True
        for ref in refs:
            new = result.cursors.get(ref.upstream_id)
            fixes = valid.get(ref.upstream_id)
            if new is None and fixes:
                old = cursors[ref.upstream_id]
                newest = max(f.fix_time for f in fixes)
                if old.last_fix_time is None or newest > old.last_fix_time:
                    new = Cursor(newest, old.state)
            if new is not None:
                updates.append(CursorUpdate(ref.device_id, self.connection_id, new))
        if active:
            self._last_active = trio.current_time()
        if items or updates:
            await self.hub.pipeline.submit(items, updates, validated=True)
        self.dropped.report(self.label)
        if result.devices:
            await self._sync_devices(result.devices, by_upstream)
        return len(items)

    async def _sync_devices(
        self, remote: Mapping[str, RemoteDevice], ours: Mapping[str, DeviceRef]
    ) -> None:
        """Apply the upstream names, IMEIs and plates that changed since the last sync.

        What was last applied is kept in the connection's state, so a property edited in
        the hub stays until the upstream's value changes (a restart does not undo it).
        """
        state = StoreStateStore(self.hub, self.connection_id)
        if self._synced is None:
            saved = await state.get(SYNCED_KEY, {})
            self._synced = dict(saved) if isinstance(saved, dict) else {}
        changes: dict[str, dict[str, str]] = {}
        synced = dict(self._synced)
        for upstream_id, device in remote.items():
            key = str(upstream_id)
            if key not in ours or not isinstance(device, RemoteDevice):
                continue
            now = {
                "name": device.name,
                "imei": device.imei,
                "license_plate": device.license_plate,
            }
            now = {k: str(v).strip() for k, v in now.items() if v is not None and str(v).strip()}
            before = synced.get(key) or {}
            fields = {k: v for k, v in now.items() if before.get(k) != v}
            if fields:
                changes[key] = fields
            synced[key] = now
        if changes:
            count = await run_blocking(self.hub.store.sync_devices, self.connection_id, changes)
            if count:
                log.info(
                    "connection #%d: %d device(s) updated from upstream", self.connection_id, count
                )
        if synced != self._synced:
            await state.set(SYNCED_KEY, synced)
            self._synced = synced

    def _load(self, store: Any) -> tuple[list[DeviceRef], Mapping[int, Cursor]]:
        return store.device_refs(self.connection_id), store.load_cursors(self.connection_id)

    async def _fail(
        self, state: str, message: str, label: str, wait: float, exc: BaseException | None = None
    ) -> None:
        if self.failures > 1 and state == self.state:
            log.debug(
                "connection %s: still failing (%s), attempt %d", label, message, self.failures
            )
        now = self.hub.clock.now()
        await self._set_state(
            state,
            message,
            exc=exc if exc is not None and not _expected(exc) else None,
            last_poll_at=now,
            next_poll_at=now + timedelta(seconds=wait),
        )

    async def _set_state(
        self,
        state: str,
        error: str | None,
        *,
        message: str | None = None,
        say: str | None = None,
        exc: BaseException | None = None,
        **fields: datetime | None,
    ) -> None:
        """Record the state; ``message`` says why (the error when not given).

        The runner's first outcome and every change of state are logged: ``say`` (else
        the state's own words), then ``message``, with the traceback of ``exc``.
        """
        error = scrub(error, self._secrets)  # plugins may quote what they were given
        message = scrub(message, self._secrets) if message is not None else error
        changed = state != self.state
        self._log_state(state, say, message, exc)
        self.state = state
        with trio.CancelScope(shield=True):
            written = await run_blocking(
                lambda: self.hub.store.set_connection_status(
                    self.connection_id,
                    if_version=self._version,
                    state=state,
                    last_error=error,
                    state_message=message,
                    **fields,
                )
            )
        if changed and written:
            await self.hub.publish_connection_status(self.connection_id, state, error)

    def _observe(self, outcome: str | None) -> None:
        """Count a poll's outcome (``None``: not a poll's, e.g. the hub shutting down)."""
        if outcome is not None:
            self.hub.metrics.observe_poll(self.connection_id, self.kind, outcome, self._poll_s)

    def _log_state(
        self, state: str, say: str | None, message: str | None, exc: BaseException | None
    ) -> None:
        previous = self._reported if self._reported is not None else self._state_at_start
        if self._reported is not None and state == self._reported:
            return
        self._reported = state
        text = say or _SAY.get(state, state)
        log.log(
            logging.WARNING if state in _TROUBLE else logging.INFO,
            "connection %s: %s%s",
            self.label,
            text,
            f" ({message})" if message else "",
            exc_info=exc,
            extra={
                "connection_id": self.connection_id,
                "kind": self.kind,
                "state": state,
                "previous_state": previous,
            },
        )


def _outcome(exc: BaseException) -> str | None:
    """A failed poll's ``outcome`` label (see ``hub.metrics.POLL_OUTCOMES``)."""
    if isinstance(exc, PipelineClosed):
        return None
    if isinstance(exc, InvalidAuth):
        return "invalid_auth"
    if isinstance(exc, BadConfig):
        return "bad_config"
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, trio.TooSlowError):
        return "timeout"
    return "failed"


def _expected(exc: BaseException) -> bool:
    from hub.errors import SourceError

    return isinstance(exc, SourceError | httpx.HTTPError)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.HTTPError):
        # never the URL: it may carry a token in its query string
        return f"{type(exc).__name__}: {text.split(' for url ')[0]}"
    return text if _expected(exc) else f"{type(exc).__name__}: {text}"
