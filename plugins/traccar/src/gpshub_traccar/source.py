"""``TraccarSource``: a self-hosted (or demo) Traccar server as a gpshub source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from gpshub_traccar.client import BrokenAnswer, TraccarClient, TraccarRequestError, floor_ms
from gpshub_traccar.parse import BadShape, parse_devices
from gpshub_traccar.poller import RoutePoller, settings_from
from hub.credential_fields import AccountName, Password
from hub.errors import BadConfig, UpdateFailed
from hub.rangepoll import HttpOptions, RangeOptions
from hub.source import (
    Cursor,
    DeviceRef,
    PollResult,
    RemoteDevice,
    Source,
    SourceContext,
    UpstreamUrl,
)

MAX_BATCH = 400
"""Device ids per route-report call at most: ~18 bytes each keeps the URL within Jetty's
default 8 KiB request header limit."""


class TraccarCredentials(BaseModel):
    """What a Traccar connection needs: the server and an account on it."""

    model_config = ConfigDict(extra="forbid")

    server_url: UpstreamUrl = Field(
        title="Server URL",
        description="Full URL of your Traccar server, e.g. https://demo.traccar.org",
    )
    username: AccountName = Field(title="Username", description="Traccar account email or username")
    password: Password = Field(title="Password", description="Traccar account password")


class TraccarOptions(HttpOptions, RangeOptions):
    """How the account is polled; the defaults suit a Traccar server with default limits."""

    batch_size: int = Field(
        default=200,
        ge=1,
        le=MAX_BATCH,
        title="Devices per request",
        description=f"Device ids per route-report request (at most {MAX_BATCH}, for the"
        " URL length).",
    )
    max_window_s: float = Field(
        default=3600.0,
        ge=60,
        le=7 * 86_400,
        title="Longest report period (s)",
        description="The longest period one route-report request asks for; a longer"
        " backlog is fetched in steps. Halved automatically when the server's"
        " report.periodLimit is lower.",
    )
    max_positions: int = Field(
        default=50_000,
        ge=1,
        title="Positions per device per answer",
        description="The server's report.maxPositions: an answer this long for a device is"
        " taken as cut short and continued from its last position.",
    )
    page_budget: int = Field(
        default=20,
        ge=0,
        le=1000,
        title="Extra requests per poll",
        description="Requests one poll may add to continue cut-short answers and backlogs;"
        " the rest waits for the next poll.",
    )


class TraccarSource(Source[TraccarCredentials, TraccarOptions]):
    """Positions of the devices of a Traccar account, fetched from its route report."""

    kind = "traccar"
    title = "Traccar"
    description = (
        "Mirror the devices of a Traccar server (self-hosted or demo): every position since"
        " the last poll from the route report, with Traccar's attributes as sensors."
    )
    supports_browse = True

    def __init__(self, ctx: SourceContext[TraccarCredentials, TraccarOptions]) -> None:
        super().__init__(ctx)
        credentials, options = ctx.credentials, ctx.options
        self.client = TraccarClient(
            ctx.http,
            options.base_url or credentials.server_url,
            credentials.username,
            credentials.password.get_secret_value(),
            url_field="options.base_url" if options.base_url else "credentials.server_url",
            timeout_s=options.timeout_s,
            now=ctx.clock.now,
            log=ctx.log,
        )
        self.poller = RoutePoller(self.client, settings_from(options), ctx.clock, ctx.log)

    async def test_connection(self) -> str:
        """Check the server (``/api/server``), the credentials (``/api/devices``) and whether
        the user may run reports (a route report for no device)."""
        client = self.client
        try:
            server = await client.server()
        except BrokenAnswer:
            raise  # a Traccar server's answer, garbled on the way: try again
        except UpdateFailed as exc:
            raise BadConfig(client.url_field, f"no Traccar server answers there: {exc}") from None
        version = server.get("version") if isinstance(server, Mapping) else None
        try:
            devices = parse_devices(await client.devices())
        except BadShape as exc:
            raise UpdateFailed(f"Traccar sent an unusable device list: {exc}") from None
        summary = (
            f"Traccar {version or '(version unknown)'} at {client.host}:"
            f" {self.ctx.credentials.username!r} sees {_count(len(devices), 'device')}"
        )
        now = floor_ms(self.ctx.clock.now())
        try:
            await client.route([], now, now)
        except TraccarRequestError as exc:
            if exc.reports_disabled:
                summary += (
                    "; reports are disabled for this user, so only the latest position of each"
                    " device is fetched per poll (fixes between polls are missed)"
                )
        except UpdateFailed:
            pass
        return summary

    async def list_devices(self) -> list[RemoteDevice]:
        try:
            devices = parse_devices(await self.client.devices())
        except BadShape as exc:
            raise UpdateFailed(f"Traccar sent an unusable device list: {exc}") from None
        return [d.remote for d in devices]

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        return await self.poller.poll(devices, cursors)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
