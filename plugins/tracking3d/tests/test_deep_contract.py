"""The deep contract (``hub.contract``) against ``FakeTracking3D``."""

from __future__ import annotations

from collections.abc import Callable

from gpshub_tracking3d import Tracking3DSource
from gpshub_tracking3d.testing import FakeTracking3D
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream
from hub.testing import ConventionalFake


class TestTracking3DContract(ConventionalFake, SourceContract):
    source_class = Tracking3DSource
    bad_credentials = {"username": "fleet@example.com", "password": ""}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeTracking3D(now=now, password=secret)
