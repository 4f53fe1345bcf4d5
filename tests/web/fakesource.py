"""Two in-test source kinds for the web tests: ``fake`` (with browse) and ``plain``, on
``hub.testing``'s ``ListingSource`` and ``FeedSource``.

``fake`` decides what happens from its credentials, so a test can provoke each error:

* ``server_url`` containing "down": ``CannotConnect``;
* password "wrong": ``InvalidAuth``; "named-wrong": ``InvalidAuth`` naming the password field; "slow": ``RateLimited``; "bad-config": ``BadConfig``;
* password starting with "leak-": ``UpdateFailed`` whose message quotes the password
  (a careless plugin: the API must scrub it);
* password "boom": an unexpected ``RuntimeError`` quoting the password;
* user name "silent": ``test_connection`` returns ``None`` (a plugin's mistake);
* user name "sloppy": each poll returns a fix out of range for each device (another).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.fix import PositionFix
from hub.hookspecs import hookimpl
from hub.source import Cursor, DeviceRef, PollResult, RemoteDevice, UpstreamUrl
from hub.testing import FeedSource, ListingSource

REMOTE = [
    RemoteDevice("1001", "Truck 1", imei="356938035643809", license_plate="P-123"),
    RemoteDevice("1002", "Van 2"),
    RemoteDevice("car three", "Car 3"),  # not a valid remote id: imported without one
]


class FakeCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    server_url: UpstreamUrl = Field(
        default="https://fake.example", title="Server URL", description="Where the cloud is."
    )
    username: str = Field(title="User name", min_length=1)
    password: SecretStr = Field(title="Password", min_length=3)


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    units: str = "metric"


class FakeSource(ListingSource):
    kind = "fake"
    title = "Fake GPS cloud"
    description = "A cloud that lists its devices."
    Credentials = FakeCredentials
    Options = FakeOptions
    remote = REMOTE

    def check(self) -> None:
        creds = self.ctx.credentials
        password = creds.password.get_secret_value()
        if "down" in creds.server_url:
            raise CannotConnect(f"{creds.server_url} does not answer")
        if password == "wrong":
            raise InvalidAuth("user name or password rejected")
        if password == "named-wrong":
            raise InvalidAuth("password rejected", field="credentials.password")
        if password == "slow":
            raise RateLimited("too many logins", retry_after=60)
        if password == "bad-config":
            raise BadConfig("credentials.server_url", "this is not a fake cloud")
        if password.startswith("leak-"):
            raise UpdateFailed(f"upstream refused the password {password}")
        if password == "boom":
            raise RuntimeError(f"crashed on {password}")

    async def poll(self, devices: Sequence[DeviceRef], cursors: Mapping[str, Cursor]) -> PollResult:
        result = PollResult()
        if self.ctx.credentials.username == "sloppy":
            for d in devices:
                result.add(d.upstream_id, PositionFix(self.ctx.clock.now(), 123.0, 0.0))
        return result

    def signed_in(self) -> str:
        creds = self.ctx.credentials
        if creds.username == "silent":
            return None  # type: ignore[return-value]
        return f"Signed in to {creds.server_url} as {creds.username}: {len(REMOTE)} devices"


class PlainSource(FeedSource):
    kind = "plain"
    title = "Plain tracker feed"


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(FakeSource)
    register(PlainSource)
