"""``WialonSource``: Wialon Hosting and Wialon Local units as gpshub devices.

Each poll loads, for every device, the position messages since its cursor with
``messages/load_interval`` — ``batch_size`` units per ``core/batch``, batches sent one
after the other — so every fix between two polls arrives, once.  The range of each device
starts ``late_window_s`` before its last fix, however long ago (at most ``max_lookback_s``
before now, so a silent unit's buffer is fetched whole when it uploads it), and of what
comes back a message is new when its time is after the last fix or Wialon registered it
(``rt``) after the newest one emitted: black-box uploads of old positions are picked up,
nothing is emitted twice (see ``hub.rangepoll``).  A batch Wialon refuses as too large
(error 6) is halved (``gpshub_wialon.batchsize``).  Unit names, IMEIs, plates and sensors
(``gpshub_wialon.sensors``: the ignition and the readings the unit defines) come from
``core/search_items`` on the first poll and every ``sync_every_s``.

Requests per cycle: ``ceil(devices / batch_size)``, plus one on sync cycles, plus one
login when the session was lost; more only while a device has a backlog of more than
``page_size`` messages (at most ``max_pages`` pages per device and poll).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gpshub_wialon import protocol as p
from gpshub_wialon.batchsize import BatchSize
from gpshub_wialon.client import BatchTooLarge, WialonClient, error_code
from gpshub_wialon.messages import message_time, parse_message, received_time, to_datetime
from gpshub_wialon.sensors import UnitSensors, parse_sensors
from gpshub_wialon.units import parse_unit, search_params
from hub.credential_fields import ApiToken
from hub.errors import UpdateFailed
from hub.rangepoll import RangeOptions, RangeWindow
from hub.source import (
    GROUP_EXTERNAL,
    Cursor,
    DeviceRef,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    UpstreamUrl,
)

MAX_BATCH = 500
"""Our cap on units per ``core/batch`` (Wialon documents none; error 6 means too large)."""
MAX_PAGE = 10_000
"""Our cap on messages per unit and request (``loadCount``)."""
MAX_SEARCH_PAGES = 100
"""A bound on ``core/search_items`` pages when the server cuts its answers."""


class WialonCredentials(BaseModel):
    """What a Wialon connection is configured with."""

    model_config = ConfigDict(extra="forbid")

    token: ApiToken = Field(
        title="API token",
        description=(
            "API token from Wialon User Settings → API. Requires Online Tracking and "
            "General Information access."
        ),
    )
    server_url: UpstreamUrl = Field(
        default=p.DEFAULT_SERVER,
        title="Server URL",
        description=f"Override for on-premise Wialon. Default: {p.DEFAULT_SERVER}",
    )


class WialonOptions(RangeOptions):
    """Tuning of a Wialon connection; the defaults suit Wialon Hosting."""

    batch_size: int = Field(
        default=100,
        ge=1,
        le=MAX_BATCH,
        title="Units per request",
        description=f"Units whose messages one core/batch request loads (at most {MAX_BATCH}).",
    )
    page_size: int = Field(
        default=MAX_PAGE,
        ge=1,
        le=MAX_PAGE,
        title="Messages per unit and request",
        description="loadCount of messages/load_interval; a longer backlog is paged.",
    )
    max_pages: int = Field(
        default=5,
        ge=1,
        le=100,
        title="Pages per unit and poll",
        description="Bounds one poll when a unit has a long backlog; the rest comes next poll.",
    )


class WialonSource(Source[WialonCredentials, WialonOptions]):
    """Units of a Wialon account (see the module docstring)."""

    kind = "wialon"
    title = "Wialon (Gurtam)"
    group = GROUP_EXTERNAL
    description = (
        "Positions and sensor data of the units of a Wialon Hosting or Wialon Local "
        "account, through the Remote API with an API token."
    )
    supports_browse = True

    def __init__(self, ctx: SourceContext[WialonCredentials, WialonOptions]) -> None:
        super().__init__(ctx)
        opts = ctx.options
        base = opts.base_url or ctx.credentials.server_url
        self.client = WialonClient(
            ctx.http,
            base,
            ctx.credentials.token.get_secret_value(),
            state=ctx.state,
            clock=ctx.clock,
            log=ctx.log,
            url_field="options.base_url" if opts.base_url else "credentials.server_url",
            context=connection_context(ctx),
        )
        self.window = RangeWindow.of(opts)
        self.batch_size = BatchSize(opts.batch_size, ctx.state, ctx.log, self.client.context)
        self.synced_at: datetime | None = None
        self.sensors: dict[str, UnitSensors] = {}
        """Each unit's sensors that reach its fixes, from the last unit list."""
        self._noted: set[str] = set()

    # -- browse and test -----------------------------------------------------------------
    async def test_connection(self) -> str:
        """A fresh login (so the token itself is checked) and a count of the units."""
        self.client.begin_cycle()
        await self.client.login()
        answer = await self.client.call(p.SEARCH_ITEMS, search_params(p.UNIT_BASE))
        items, total = search_answer(answer)
        count = max(total, len(items))
        user = self.client.user or "?"
        return f"Wialon account {user!r}: {count} unit{'' if count == 1 else 's'}"

    async def list_devices(self) -> list[RemoteDevice]:
        self.client.begin_cycle()
        return await self.units()

    async def units(self) -> list[RemoteDevice]:
        """Every unit visible to the token, paging when the server cuts the answer."""
        devices: list[RemoteDevice] = []
        sensors: dict[str, UnitSensors] = {}
        start = skipped = 0
        for _ in range(MAX_SEARCH_PAGES):
            answer = await self.client.call(p.SEARCH_ITEMS, search_params(p.UNIT_FLAGS, start))
            items, total = search_answer(answer)
            for item in items:
                device = parse_unit(item)
                if device is None:
                    skipped += 1
                    continue
                devices.append(device)
                unit, problems = parse_sensors(item)
                if unit is not None:
                    sensors[device.upstream_id] = unit
                for problem in problems:
                    self._note_once(
                        f"sensor:{device.upstream_id}:{problem}",
                        "Wialon unit %s: %s; left out",
                        device.upstream_id,
                        problem,
                    )
            start += len(items)
            if not items or start >= total:
                break
        if skipped:
            self.ctx.log.debug("skipped %d Wialon unit(s) without a usable id", skipped)
        self.sensors = sensors
        return devices

    # -- poll ----------------------------------------------------------------------------
    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        self.client.begin_cycle()
        now = self.ctx.clock.now()
        result = PollResult()
        if self._sync_due(now):
            result.devices = await self._sync(devices)
            self.synced_at = now
        time_to = math.floor(now.timestamp())
        ranges: dict[str, tuple[int, int]] = {}
        for device in devices:
            unit_id = unit_id_of(device.upstream_id)
            if unit_id is None:
                self._note_once(
                    f"id:{device.upstream_id}",
                    "device %r has upstream id %r, which is not a Wialon unit id: not polled",
                    device.name,
                    device.upstream_id,
                )
                continue
            cursor = cursors.get(device.upstream_id) or Cursor()
            ranges[device.upstream_id] = (unit_id, self._time_from(cursor, now, time_to))
        fetched = await self._fetch(ranges, time_to)
        scanned = to_datetime(time_to)
        bad = 0
        for upstream_id, (messages, resume) in fetched.items():
            cursor = cursors.get(upstream_id) or Cursor()
            candidates = []
            for message in messages:
                t = message_time(message)
                if t is None:
                    bad += 1
                    continue
                candidates.append((to_datetime(t), received_time(message), message))
            chosen, new_cursor = self.window.select(
                cursor,
                candidates,
                scanned_to=scanned if resume is None else None,
                resume_from=None if resume is None else to_datetime(resume),
            )
            fixes = []
            unit = self.sensors.get(upstream_id)
            for message in chosen:
                fix = parse_message(message, unit)
                if fix is None:
                    bad += 1
                else:
                    fixes.append(fix)
            if fixes:
                result.fixes[upstream_id] = fixes
            result.cursors[upstream_id] = new_cursor
        if bad:
            self.ctx.log.debug("skipped %d Wialon message(s) without a usable fix", bad)
        result.notices += self.batch_size.notices()
        return result

    def _time_from(self, cursor: Cursor, now: datetime, time_to: int) -> int:
        """Where a device's range starts (whole seconds, as Wialon counts them)."""
        return min(math.floor(self.window.start(cursor, now).timestamp()), time_to)

    def _sync_due(self, now: datetime) -> bool:
        if self.synced_at is None:
            return True
        return (now - self.synced_at).total_seconds() >= self.ctx.options.sync_every_s

    async def _sync(self, devices: Sequence[DeviceRef]) -> dict[str, RemoteDevice]:
        wanted = {d.upstream_id for d in devices}
        found = {u.upstream_id: u for u in await self.units() if u.upstream_id in wanted}
        for upstream_id in sorted(wanted - set(found)):
            self._note_once(
                f"gone:{upstream_id}",
                "Wialon unit %s is not visible to the token (deleted, or access removed)",
                upstream_id,
            )
        return found

    async def _fetch(
        self, ranges: Mapping[str, tuple[int, int]], time_to: int
    ) -> dict[str, tuple[list[dict[str, Any]], int | None]]:
        """The position messages of each device from its ``time_from`` to ``time_to``,
        and where to resume when that range was not loaded completely (``None`` when it
        was).  Devices whose first load failed are left out: their cursors stay and they
        are tried again next poll."""
        opts = self.ctx.options
        got: dict[str, list[dict[str, Any]]] = {}
        resume: dict[str, int | None] = {}
        pending = dict(ranges)
        try:
            for _ in range(opts.max_pages):
                if not pending:
                    break
                pending = await self._fetch_page(pending, time_to, got, resume)
        finally:
            await self.batch_size.settle()
        return {uid: (messages, resume.get(uid)) for uid, messages in got.items()}

    async def _fetch_page(
        self,
        pending: Mapping[str, tuple[int, int]],
        time_to: int,
        got: dict[str, list[dict[str, Any]]],
        resume: dict[str, int | None],
    ) -> dict[str, tuple[int, int]]:
        """One page of messages of each pending device, in batches; the devices that have
        more (and where their next page starts)."""
        page_size = self.ctx.options.page_size
        more: dict[str, tuple[int, int]] = {}
        queue = list(pending.items())
        while queue:
            size = await self.batch_size.current()
            chunk, queue = queue[:size], queue[size:]
            calls: list[tuple[str, Any]] = [
                (p.LOAD_INTERVAL, load_params(unit_id, time_from, time_to, page_size))
                for _, (unit_id, time_from) in chunk
            ]
            calls.append((p.UNLOAD, {}))
            try:
                answers = await self.client.batch(calls)
            except BatchTooLarge:
                self.batch_size.shrink(len(chunk))
                queue = chunk + queue
                continue
            for (upstream_id, (unit_id, time_from)), answer in zip(chunk, answers, strict=False):
                loaded = self._loaded(upstream_id, answer)
                if loaded is None:  # failed: resume here if earlier pages came
                    resume[upstream_id] = time_from
                    continue
                messages, count = loaded
                got.setdefault(upstream_id, []).extend(messages)
                last = max((t for m in messages if (t := message_time(m))), default=None)
                if count > len(messages) and last is not None and last < time_to:
                    # Wialon keeps one message per unit and second: go on after it
                    more[upstream_id] = (unit_id, last + 1)
                    resume[upstream_id] = last + 1
                else:
                    resume[upstream_id] = None
        return more

    def _loaded(self, upstream_id: str, answer: Any) -> tuple[list[dict[str, Any]], int] | None:
        """One ``load_interval`` answer of a batch: (messages, total loaded), or ``None``
        when that unit's load failed."""
        code = error_code(answer)
        if code == p.ERR_NO_MESSAGES:
            return [], 0
        if code == p.ERR_ACCESS_DENIED:
            self._note_once(
                f"denied:{upstream_id}",
                "Wialon denies access to the messages of unit %s (error 7): skipped",
                upstream_id,
            )
            return None
        if code is not None:
            self.ctx.log.debug(
                "Wialon could not load the messages of unit %s (%s); retried next poll",
                upstream_id,
                p.describe_error(code, answer.get("reason")),
            )
            return None
        messages = answer.get("messages") if isinstance(answer, dict) else None
        count = answer.get("count") if isinstance(answer, dict) else None
        if not isinstance(messages, list):
            self.ctx.log.debug("unusable load_interval answer for unit %s", upstream_id)
            return None
        self._noted.discard(f"denied:{upstream_id}")
        if not isinstance(count, int) or isinstance(count, bool):
            count = len(messages)
        return [m for m in messages if isinstance(m, dict)], count

    def _note_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._noted:
            self._noted.add(key)
            self.ctx.log.warning(message, *args)

    async def aclose(self) -> None:
        """Log out a session nobody can reuse (a connection not saved yet); a saved
        connection keeps its session for the next start."""
        if self.ctx.connection_id is None:
            await self.client.logout()


def load_params(unit_id: int, time_from: int, time_to: int, count: int) -> dict[str, Any]:
    """``messages/load_interval`` for the data messages with a position."""
    return {
        "itemId": unit_id,
        "timeFrom": time_from,
        "timeTo": time_to,
        "flags": p.POSITION_FLAGS,
        "flagsMask": p.POSITION_MASK,
        "loadCount": count,
    }


def connection_context(ctx: SourceContext[Any, Any]) -> str:
    """How log messages name the connection: ``Wialon connection 'Fleet' (#3)``."""
    if ctx.connection_id is None:
        return "Wialon connection (not saved)"
    label = f" {ctx.label!r}" if ctx.label else ""
    return f"Wialon connection{label} (#{ctx.connection_id})"


def search_answer(answer: Any) -> tuple[list[Any], int]:
    """The items and ``totalItemsCount`` of a ``core/search_items`` answer."""
    items = answer.get("items") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        raise UpdateFailed("Wialon's unit search answer has no list of items")
    total = answer.get("totalItemsCount")
    if not isinstance(total, int) or isinstance(total, bool):
        total = len(items)
    return items, total


def unit_id_of(upstream_id: str) -> int | None:
    """A Wialon unit id (a positive integer) from a hub upstream id."""
    text = str(upstream_id).strip()
    if not text.isdigit():
        return None
    value = int(text)
    return value if value > 0 else None
