"""The deep contract (``hub.contract``) against ``FakeFlespi``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from gpshub_flespi import FlespiSource
from gpshub_flespi.testing import FakeFlespi
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream
from hub.testing import ConventionalFake


class TestFlespiContract(ConventionalFake, SourceContract):
    source_class = FlespiSource
    bad_credentials: ClassVar[dict[str, Any]] = {"token": "two words"}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeFlespi(now=now, token=secret)  # type: ignore[return-value]
