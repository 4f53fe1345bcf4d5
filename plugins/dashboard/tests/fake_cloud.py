"""A source kind for the Connections page's browser test: an account name and a
password (the test connection accepts only ``PASSWORD``, naming the password field
otherwise), options of each form type, and three remote devices; and ``fakefeed``, whose
devices cannot be browsed (on ``hub.testing``'s ``ListingSource`` and ``FeedSource``)."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.errors import InvalidAuth
from hub.hookspecs import hookimpl
from hub.source import RemoteDevice
from hub.testing import FeedSource, ListingSource

PASSWORD = "open sesame"
REMOTE = [
    RemoteDevice("r-1", "Truck 1", imei="356938035643809", license_plate="P-123"),
    RemoteDevice("r-2", "Van 2"),
    RemoteDevice("r-3", "Car 3"),
]


class CloudCredentials(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str = Field(title="Account", min_length=1, description="Your account at the cloud.")
    password: SecretStr = Field(title="Password", min_length=3)


class CloudOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_s: int = Field(default=60, ge=10, title="Interval", description="Seconds.")
    parked: bool = Field(default=True, title="Include parked vehicles")
    units: str = "metric"


class FakeCloud(ListingSource):
    kind = "fakecloud"
    title = "Fake cloud"
    description = "A GPS cloud that lists three devices."
    Credentials = CloudCredentials
    Options = CloudOptions
    remote = REMOTE

    def check(self) -> None:
        if self.ctx.credentials.password.get_secret_value() != PASSWORD:
            raise InvalidAuth("the cloud refused the password", field="credentials.password")

    def signed_in(self) -> str:
        return f"Signed in as {self.ctx.credentials.account}: {len(REMOTE)} devices"


class FakeFeed(FeedSource):
    kind = "fakefeed"
    title = "Fake feed"
    description = "Has no device list."


@hookimpl
def register_sources(register: Callable[[type], None]) -> None:
    register(FakeCloud)
    register(FakeFeed)
