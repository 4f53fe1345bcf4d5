"""``GpsServerSource``: a GPS-Server.net account (hosted, white-label or self-hosted)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gpshub_gpsserver.api import Api
from gpshub_gpsserver.keyapi import KeyApi
from gpshub_gpsserver.poller import Poller
from gpshub_gpsserver.tokenapi import TokenApi
from gpshub_gpsserver.transport import Transport
from hub.errors import BadConfig
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

HOSTED_URL = "https://gps-server.net"
"""The hosted service, used when ``server_url`` is blank."""


class GpsServerCredentials(BaseModel):
    """An account: email and password (the v4 token login), or a user API key."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(
        default=None, title="Email", description="Email address used to log in to GPS-Server.net"
    )
    password: SecretStr | None = Field(
        default=None, title="Password", description="Account password"
    )
    server_url: UpstreamUrl | None = Field(
        default=None,
        title="Server URL",
        description=(
            "Leave blank for the hosted service. Enter the base URL for white-label /"
            " self-hosted instances."
        ),
    )
    api_key: SecretStr | None = Field(
        default=None,
        title="API key",
        description=(
            "User API key from the web interface's user settings; when given it is used"
            " instead of email and password"
        ),
    )

    @field_validator("email", "server_url", "api_key", "password", mode="before")
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        """A blank form field is a missing one; email and URL lose surrounding spaces."""
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and not text.strip():
            return None
        return value

    @field_validator("email", mode="after")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _one_way_in(self) -> GpsServerCredentials:
        """Either an API key, or an email and a password (``BadConfig`` names the gap)."""
        if self.api_key is not None:
            return self
        if self.email is None:
            raise BadConfig(
                "credentials.email", "enter the account's email and password, or an API key"
            )
        if self.password is None:
            raise BadConfig("credentials.password", "enter the account's password, or an API key")
        return self

    @property
    def uses_key(self) -> bool:
        return self.api_key is not None


class GpsServerOptions(HttpOptions, RangeOptions):
    """How the account is polled (and ``timeout_s``, a request's timeout)."""

    history_concurrency: int = Field(
        default=4,
        ge=1,
        le=16,
        title="Parallel history requests",
        description="History requests (one per device with news) in flight at once.",
    )
    max_requests_per_poll: int = Field(
        default=60,
        ge=3,
        le=10_000,
        title="Requests per poll",
        description="At most this many requests per poll, every one counted (a login, the"
        " locations or the device sync, the histories); devices whose history does not fit"
        " are fetched in later polls, the one owed longest first, and their fixes arrive late"
        " but complete.",
    )
    max_window_s: float = Field(
        default=86_400.0,
        ge=60,
        le=30 * 86_400,
        allow_inf_nan=False,
        title="Longest history request (s)",
        description="The longest period one history request asks for; a longer backlog is"
        " fetched a period per poll.",
    )
    call_limit_retry_s: float = Field(
        default=3600.0,
        ge=1,
        le=86_400,
        allow_inf_nan=False,
        title="Wait after the API call limit (s)",
        description="How long to pause after 'ERROR: API call limit exceeded' (the server"
        " does not say when its per-user counter resets).",
    )
    client_id: str = Field(
        default="",
        title="Login client id",
        description="client_id sent with the email login (v4 servers that want one).",
    )
    token_api_timezone: str = Field(
        default="UTC",
        title="Email-login API time zone",
        description="Time zone of the times the email-login (v4) API sends and takes, e.g."
        " Europe/Athens; the API-key API always uses UTC.",
    )

    @field_validator("token_api_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value.strip()


class GpsServerSource(Source[GpsServerCredentials, GpsServerOptions]):
    """Every fix of the objects of a GPS-Server.net account, from their message history."""

    kind = "gpsserver"
    title = "GPS-Server.net"
    description = (
        "Mirror the objects of a GPS-Server.net account (hosted, white-label or self-hosted):"
        " every message since the last poll, with the device's params as sensors."
    )
    supports_browse = True

    def __init__(self, ctx: SourceContext[GpsServerCredentials, GpsServerOptions]) -> None:
        super().__init__(ctx)
        self.api = make_api(ctx)
        self.poller = Poller(self.api, ctx.options, ctx.clock, ctx.log)

    async def test_connection(self) -> str:
        self.api.begin_cycle()
        objects = await self.api.objects()
        count = len(objects)
        noun = "object" if count == 1 else "objects"
        return f"GPS-Server.net ({self.api.mode}) at {self.api.host}: {count} {noun}"

    async def list_devices(self) -> list[RemoteDevice]:
        self.api.begin_cycle()
        return [loc.remote for loc in await self.api.objects() if loc.remote is not None]

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        return await self.poller.poll(devices, cursors)


def make_api(ctx: SourceContext[GpsServerCredentials, GpsServerOptions]) -> Api:
    """The transport the credentials ask for: the API key when given, else the login."""
    credentials, options = ctx.credentials, ctx.options
    if options.base_url:
        base, field = options.base_url, "options.base_url"
    else:
        base, field = credentials.server_url or HOSTED_URL, "credentials.server_url"
    transport = Transport(
        ctx.http, base, now=ctx.clock.now, url_field=field, timeout_s=options.timeout_s
    )
    if credentials.api_key is not None:
        return KeyApi(
            transport,
            credentials.api_key.get_secret_value(),
            call_limit_retry_s=options.call_limit_retry_s,
        )
    if credentials.email is None or credentials.password is None:  # the validator's job
        raise BadConfig("credentials.email", "enter the email and password, or an API key")
    return TokenApi(
        transport,
        credentials.email,
        credentials.password.get_secret_value(),
        client_id=options.client_id,
        zone=ZoneInfo(options.token_api_timezone),
        state=ctx.state,
        clock=ctx.clock,
        log=ctx.log,
        context=describe(ctx),
    )


def describe(ctx: SourceContext[Any, Any]) -> str:
    """The connection, for log lines: ``connection 'fleet' (#3)`` (empty for a test of
    unsaved credentials)."""
    if ctx.connection_id is None:
        return ""
    if not ctx.label:
        return f"connection #{ctx.connection_id}"
    return f"connection {ctx.label!r} (#{ctx.connection_id})"
