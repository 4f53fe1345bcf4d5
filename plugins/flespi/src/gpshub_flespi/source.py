"""``FlespiSource``: devices and their messages from a flespi account (flespi.io REST API).

A poll:

1. on the first poll and every ``sync_every_s``: ``GET /gw/devices/all`` once, for names,
   IMEIs (``configuration.ident``) and plates (``metadata``) (``PollResult.devices``) and
   to learn which of our devices no longer exist upstream;
2. each device's range comes from its cursor (``hub.rangepoll.RangeWindow``: from the
   last fix minus ``late_window_s``, however long ago, up to ``max_lookback_s``;
   ``backfill_s`` the first time); reporting devices whose ranges start close together
   share one ``/gw/devices/{ids}/messages`` call (``batch_size`` ids per selector), with
   a ``server.timestamp`` filter so messages already received are not transferred again
   while late, back-dated ones still are; full pages are followed up to a per-poll page
   budget;
3. silent devices (no fix for longer than the late window) have ranges starting anywhere
   in the last ``max_lookback_s``; they share calls whatever their starts, ``batch_size``
   per call from the earliest start, because the filter makes the long window cheap: a
   complete fetch leaves in the cursor the receive time up to which it saw everything
   (``SEEN``), so the next call transfers only what flespi received since (a black-box
   upload, all of it);
4. devices never seen with a message get one batched ``/telemetry/all`` call, so a
   device whose messages TTL is short still shows its position at once; that fix does
   not move the cursor.

In steady state that is ``ceil(reporting / batch_size) + ceil(silent / batch_size)``
requests per poll, plus one every ``sync_every_s`` and one while a new device has no
messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, SecretStr

from gpshub_flespi.client import (
    DevicesNotFound,
    FlespiClient,
    chunks,
)
from gpshub_flespi.fetch import fetch_group
from gpshub_flespi.messages import parse_device, parse_telemetry
from hub import (
    CannotConnect,
    Cursor,
    DeviceRef,
    HttpOptions,
    PollResult,
    RangeOptions,
    RangeWindow,
    RateLimited,
    RemoteDevice,
    Source,
    SourceContext,
    UpdateFailed,
    group_by_start,
)
from hub.credential_fields import one_word
from hub.rangepoll import RESUME

FLESPI_ID = re.compile(r"[1-9][0-9]{0,18}")
TELEMETRY_TS = "telemetry_ts"
"""Cursor state: the ``ts`` of the telemetry position last emitted for the device."""
FUTURE_SLACK_S = 900.0
"""How far past "now" a window reaches, for device and server clocks running ahead."""
MAX_BATCH = 1000  # ids per selector: 1000 ids of 7-8 digits keep the URL under 8 KB
SEEN = "seen"
"""Cursor state ``[received, to]`` (epoch seconds), left by a complete fetch: every message
in the device's range that flespi received before ``received`` with a ``timestamp`` up to
``to`` has been seen, so later calls need not transfer it again."""
SETTLE_S = 300.0
"""How long before a complete fetch a message must have reached flespi to count as seen
by it: room for flespi's storage delay and for the hub's and flespi's clocks to differ."""


FlespiToken = Annotated[
    SecretStr,
    AfterValidator(one_word("the token is empty", "a flespi token is one word, without spaces")),
]


class FlespiCredentials(BaseModel):
    token: FlespiToken = Field(
        title="Token",
        description="Standard or ACL token with read access to gw/devices",
    )


class FlespiOptions(RangeOptions, HttpOptions):
    """How the account is polled; the defaults suit flespi.io."""

    batch_size: int = Field(
        250,
        ge=1,
        le=MAX_BATCH,
        title="Devices per request",
        description=f"Device ids in one messages selector (at most {MAX_BATCH}).",
    )
    page_size: int = Field(
        10000,
        ge=1,
        le=100000,
        title="Messages per page",
        description="The 'count' of one messages request; a full page is followed by the next.",
    )
    max_extra_pages: int = Field(
        20,
        ge=0,
        le=1000,
        title="Extra pages per poll",
        description=(
            "Pages a poll may fetch beyond the first of each batch, to catch up after a "
            "gap; what remains is fetched by the next polls."
        ),
    )


class FlespiSource(Source[FlespiCredentials, FlespiOptions]):
    kind = "flespi"
    title = "Flespi Cloud"
    description = (
        "Positions and parameters of the devices of a flespi account: every message since "
        "the last poll, late ones included, many devices per request."
    )
    supports_browse = True

    def __init__(self, ctx: SourceContext[FlespiCredentials, FlespiOptions]) -> None:
        super().__init__(ctx)
        self.client = FlespiClient(
            ctx.http,
            ctx.credentials.token.get_secret_value(),
            base_url=ctx.options.base_url,
            log=ctx.log,
            clock=ctx.clock,
            timeout_s=ctx.options.timeout_s,
        )
        self._synced_at: datetime | None = None
        self._missing: set[str] = set()  # our devices flespi does not have (logged once)
        self._warned: set[str] = set()

    # -- test connection and browse ----------------------------------------------------
    async def test_connection(self) -> str:
        info = await self.client.token_info()
        count = len(await self.client.devices("id"))
        cid, label = info.get("cid"), info.get("info")
        summary = f"flespi account {cid}" if cid is not None else "flespi token accepted"
        if isinstance(label, str) and label.strip():
            summary += f" (token {label.strip()!r})"
        return f"{summary}: {count} device{'' if count == 1 else 's'}"

    async def list_devices(self) -> list[RemoteDevice]:
        devices = []
        bad = 0
        for item in await self.client.devices():
            device = parse_device(item)
            if device is None:
                bad += 1
            else:
                devices.append(device)
        if bad:
            self.ctx.log.debug("skipped %d device item(s) without an id", bad)
        return devices

    # -- poll ------------------------------------------------------------------------------
    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        opts = self.ctx.options
        now = self.ctx.clock.now()
        result = PollResult()
        wanted: dict[str, Cursor] = {}
        for ref in devices:
            uid = ref.upstream_id
            if FLESPI_ID.fullmatch(uid):
                wanted[uid] = cursors.get(uid) or Cursor()
            else:
                self._warn_once(
                    f"id:{uid}", "device %r: %r is not a flespi device id", ref.name, uid
                )
        if not wanted:
            return result
        if self._synced_at is None or now - self._synced_at >= timedelta(seconds=opts.sync_every_s):
            await self._sync(wanted, result, now)

        window = RangeWindow.of(opts)
        reporting: dict[str, datetime] = {}
        silent: dict[str, datetime] = {}
        for uid, cursor in wanted.items():
            if uid in self._missing:
                continue
            quiet = window.silent(cursor, now) and filter_floor(window, cursor) is not None
            (silent if quiet else reporting)[uid] = window.start(cursor, now)
        groups = sorted(
            group_by_start(reporting, size=opts.batch_size, span_s=opts.late_window_s or 300.0)
            + group_by_start(
                silent, size=opts.batch_size, span_s=window.max_lookback.total_seconds()
            ),
            key=lambda group: group[0],
        )
        budget = len(groups) + opts.max_extra_pages
        to = now.timestamp() + FUTURE_SLACK_S
        seen = [now.timestamp() - SETTLE_S, to]
        unseen: list[str] = []  # never had a message, none in this window either
        skipped = 0
        for start, ids in groups:
            if budget <= 0:
                break  # these wait for the next poll (their starts are then the oldest)
            floors = [filter_floor(window, wanted[uid]) for uid in ids]
            floor = None if None in floors else min(f for f in floors if f is not None)
            seen_to = [mark[1] for uid in ids if (mark := seen_mark(wanted[uid])) is not None]
            try:
                fetched = await fetch_group(
                    self.client,
                    ids,
                    start=start.timestamp(),
                    to=to,
                    floor=floor,
                    beyond=min(seen_to) if seen_to else None,
                    page_size=opts.page_size,
                    max_pages=budget,
                    log=self.ctx.log,
                )
            except DevicesNotFound:
                self._synced_at = None  # learn which devices went away on the next poll
                raise
            budget -= fetched.pages
            skipped += fetched.skipped
            for uid, reason in fetched.missing.items():
                self._mark_missing(uid, reason)
            scanned_to = now if fetched.complete else None
            resume_from = None if fetched.complete else datetime.fromtimestamp(fetched.reached, UTC)
            for uid in ids:
                if uid in fetched.missing:
                    continue
                fixes, cursor = window.select(
                    wanted[uid],
                    fetched.by_device.get(uid, ()),
                    scanned_to=scanned_to,
                    resume_from=resume_from,
                )
                state = dict(cursor.state)
                if fetched.complete and RESUME not in wanted[uid].state:
                    state[SEEN] = seen
                else:  # cut short, or caught up: the next fetch looks at the whole range
                    state.pop(SEEN, None)
                cursor = result.cursors[uid] = Cursor(cursor.last_fix_time, state)
                if fixes:
                    result.fixes[uid] = fixes
                elif fetched.complete and wanted[uid].last_fix_time is None:
                    unseen.append(uid)
        if skipped:
            self.ctx.log.debug("skipped %d message(s) that are not fixes", skipped)
        if unseen:
            await self._telemetry_fallback(unseen, result)
        return result

    async def _sync(self, wanted: Mapping[str, Cursor], result: PollResult, now: datetime) -> None:
        """Read the device list: properties into ``result.devices``, and which of our
        devices flespi does not have (skipped until they reappear)."""
        upstream: dict[str, RemoteDevice] = {}
        for item in await self.client.devices():
            device = parse_device(item)
            if device is not None:
                upstream[device.upstream_id] = device
        result.devices = {uid: upstream[uid] for uid in wanted if uid in upstream}
        for uid in wanted:
            if uid in upstream:
                if uid in self._missing:
                    self._missing.discard(uid)
                    self._warned.discard(f"missing:{uid}")
                    self.ctx.log.info("flespi device %s is back; polling it again", uid)
            else:
                self._mark_missing(uid, "not in the account's device list")
        self._synced_at = now

    async def _telemetry_fallback(self, ids: list[str], result: PollResult) -> None:
        """One fix per device from its telemetry, for devices without messages yet.

        The fix is returned but the cursor's last fix time stays unset, so messages that
        reach flespi later with earlier timestamps are still fetched; the telemetry ``ts``
        is kept in the cursor so the same fix is not emitted twice.
        """
        for chunk in chunks(ids, self.ctx.options.batch_size):
            try:
                answer = await self.client.telemetry(chunk)
            except DevicesNotFound as exc:
                for uid in exc.ids & set(chunk):
                    self._mark_missing(uid, str(exc))
                continue
            except (CannotConnect, UpdateFailed, RateLimited) as exc:
                self.ctx.log.warning("flespi telemetry unavailable this poll: %s", exc)
                return
            for uid, reason in answer.failed.items():
                if uid in chunk:
                    self._mark_missing(uid, reason)
            wanted = set(chunk)
            for item in answer.result:
                parsed = parse_telemetry(item)
                if parsed is None:
                    continue
                uid, fix, ts = parsed
                cursor = result.cursors.get(uid)
                if uid not in wanted or cursor is None or uid in result.fixes:
                    continue
                if cursor.state.get(TELEMETRY_TS) == ts:
                    continue  # emitted already
                result.fixes[uid] = [fix]
                result.cursors[uid] = Cursor(
                    cursor.last_fix_time, {**cursor.state, TELEMETRY_TS: ts}
                )

    def _mark_missing(self, uid: str, reason: str) -> None:
        """Skip ``uid`` until a sync finds it again; say so once."""
        self._missing.add(uid)
        self._warn_once(f"missing:{uid}", "flespi device %s skipped: %s", uid, reason)

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.ctx.log.warning(message, *args)


def seen_mark(cursor: Cursor) -> tuple[float, float] | None:
    """The cursor's ``SEEN`` mark, if it has a usable one."""
    mark = cursor.state.get(SEEN)
    if (
        isinstance(mark, list | tuple)
        and len(mark) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in mark)
    ):
        return float(mark[0]), float(mark[1])
    return None


def filter_floor(window: RangeWindow, cursor: Cursor) -> float | None:
    """The receive time a fetch for the device may filter on (``server.timestamp>=``):
    the newest one emitted (``RangeWindow.received_floor``) or the device's ``SEEN``
    mark, whichever is later; ``None`` (no filter) while a cut answer is continued or
    while the device has neither."""
    if RESUME in cursor.state:
        return None
    emitted = window.received_floor(cursor)
    mark = seen_mark(cursor)
    if mark is None:
        return emitted
    return mark[0] if emitted is None else max(emitted, mark[0])
