"""The deep contract (``hub.contract``) against ``FakeGpsServer``, with each API: the
email login (v4 token) and the user API key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream
from hub.testing import ConventionalFake


class TestGpsServerLoginContract(ConventionalFake, SourceContract):
    source_class = GpsServerSource
    bad_credentials = {"email": "fleet@example.com", "password": "secret", "server_url": "x"}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeGpsServer(now=now, password=secret, api_key=secret)


class TestGpsServerKeyContract(TestGpsServerLoginContract):
    """The key API: its call limit is an ``ERROR:`` line with no retry time, so the wait
    is the ``call_limit_retry_s`` option (set here to the 120 s the check expects)."""

    def credentials(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.credentials_key(url)

    def options(self, fake: Any, url: str) -> dict[str, Any]:
        return {"call_limit_retry_s": 120}
