"""The deep contract (``hub.contract``) against ``FakeWialon``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gpshub_wialon import WialonSource
from gpshub_wialon.testing import FakeWialon
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream
from hub.testing import ConventionalFake


class TestWialonContract(ConventionalFake, SourceContract):
    source_class = WialonSource
    bad_credentials: ClassVar[dict[str, Any]] = {"token": "two words"}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeWialon(now=now, token=secret)
