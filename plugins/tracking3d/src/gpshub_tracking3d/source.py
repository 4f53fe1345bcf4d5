"""``Tracking3DSource``: a 3D Tracking (3dtracking.net) account as a gpshub source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from gpshub_tracking3d import wire
from gpshub_tracking3d.client import Tracking3DClient
from gpshub_tracking3d.feed import FeedPoller, FeedSettings
from gpshub_tracking3d.parse import BadShape, parse_units
from hub.credential_fields import AccountName, Password
from hub.errors import UpdateFailed
from hub.rangepoll import HttpOptions, RangeOptions
from hub.source import (
    Cadence,
    Cursor,
    DeviceRef,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    UpstreamUrl,
)


class Tracking3DCredentials(BaseModel):
    """What a 3D Tracking connection needs: an account's username and password."""

    model_config = ConfigDict(extra="forbid")

    username: AccountName = Field(
        title="Username", description="3D Tracking account username (usually your email)"
    )
    password: Password = Field(title="Password", description="3D Tracking account password")


class Tracking3DOptions(HttpOptions, RangeOptions):
    """How the account is polled; the defaults suit the hosted service."""

    base_url: UpstreamUrl = Field(
        default=wire.DEFAULT_BASE_URL,
        title="API base URL",
        description="Where the 3D Tracking REST API answers (change it for a proxy, a white"
        " label or a test server).",
    )
    late_window_s: float = Field(
        default=300.0,
        ge=0,
        le=86_400,
        allow_inf_nan=False,
        title="Late message window (s)",
        description="Not used: the delta feed delivers late (back-dated) records by itself.",
    )
    session_max_age_s: float = Field(
        default=84_600.0,
        ge=60,
        le=7 * 86_400,
        title="Session lifetime (s)",
        description="A session older than this is renewed by a new login (23.5 h).",
    )
    session_error_codes: list[int] = Field(
        default_factory=lambda: list(wire.SESSION_ERROR_CODES),
        title="Session error codes",
        description="ErrorCode values meaning the session expired (a message about the"
        " session counts too): one new login and one retry.",
    )
    page_budget: int = Field(
        default=100,
        ge=1,
        le=1000,
        title="Feed pages per poll",
        description="Data/PositionsList pages one poll may read (with the sensor reading"
        " pages that cover them); a longer backlog continues next poll.",
    )
    time_budget_s: float = Field(
        default=60.0,
        ge=5,
        le=100,
        allow_inf_nan=False,
        title="Poll time budget (s)",
        description="A poll fetches no new feed page after this long (the hub gives a poll"
        " 120 s); the rest continues next poll.",
    )
    sensor_window_s: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        allow_inf_nan=False,
        title="Sensor match window (s)",
        description="A fix gets its unit's newest sensor reading taken at or up to this"
        " long before its fix time.",
    )
    feed_page_size: int = Field(
        default=0,
        ge=0,
        title="Feed page size",
        description="The most records the server returns per feed request, if known;"
        " 0 learns it from the answers.",
    )


def _context(label: str, connection_id: int | None) -> str:
    """How log lines name a connection: ``'fleet' (#3)``."""
    number = "" if connection_id is None else f"#{connection_id}"
    if label and number:
        return f"{label!r} ({number})"
    return f"{label!r}" if label else number or "connection"


class Tracking3DSource(Source[Tracking3DCredentials, Tracking3DOptions]):
    """Positions of the units of a 3D Tracking account, from its account-wide delta feed."""

    kind = "tracking3d"
    title = "3D Tracking"
    description = (
        "Mirror the units of a 3D Tracking account: every position from the account-wide"
        " delta feed (late ones included), with digital I/O, satellites and sensor readings"
        " (fuel, temperatures, voltages, GSM) from the sensor reading feed."
    )
    cadence = Cadence(active=30.0, quiet=120.0, active_window=600.0)
    supports_browse = True

    def __init__(self, ctx: SourceContext[Tracking3DCredentials, Tracking3DOptions]) -> None:
        super().__init__(ctx)
        credentials, options = ctx.credentials, ctx.options
        self.client = Tracking3DClient(
            ctx.http,
            options.base_url,
            credentials.username,
            credentials.password.get_secret_value(),
            state=ctx.state,
            now=ctx.clock.now,
            max_age_s=options.session_max_age_s,
            session_codes=options.session_error_codes,
            timeout_s=options.timeout_s,
            log=ctx.log,
            context=_context(ctx.label, ctx.connection_id),
        )
        self.poller = FeedPoller(
            self.client,
            FeedSettings(
                backfill_s=options.backfill_s,
                page_budget=options.page_budget,
                page_size=options.feed_page_size,
                sensor_window_s=options.sensor_window_s,
                time_budget_s=options.time_budget_s,
            ),
            ctx.log,
        )
        self._synced_at: float | None = None

    async def _units(self) -> list[RemoteDevice]:
        try:
            return parse_units(await self.client.units())
        except BadShape as exc:
            raise UpdateFailed(f"3D Tracking sent an unusable unit list: {exc}") from None

    async def test_connection(self) -> str:
        """A login (or the cached session) and the unit list."""
        units = await self._units()
        count = len(units)
        return (
            f"3D Tracking account {self.ctx.credentials.username!r} at {self.client.host}:"
            f" {count} unit{'' if count == 1 else 's'}"
        )

    async def list_devices(self) -> list[RemoteDevice]:
        return await self._units()

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        result = PollResult()
        every = self.ctx.options.sync_every_s
        moment = self.ctx.clock.now().timestamp()
        if every > 0 and (self._synced_at is None or moment - self._synced_at >= every):
            ours = {d.upstream_id for d in devices}
            units = await self._units()
            result.devices = {u.upstream_id: u for u in units if u.upstream_id in ours}
            self._synced_at = moment
        return await self.poller.poll(devices, cursors, self.ctx.clock.now(), result)
