"""The deep contract (``hub.contract``) against ``FakeFindHub``: the token from the AAS
token, the device list from Nova, fresh locations pushed over the fake MCS (served with
the fake's app) after a locate request per device."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from gpshub_findhub import FindHubSource, auth
from gpshub_findhub.testing import FakeFindHub, secrets_document
from hub.contract import SourceContract
from hub.fake_upstream import FakeUpstream


class TestFindHubContract(SourceContract):
    """The secret is the AAS token.  Devices are asked every 60 s (the least
    ``locate_interval_s``), so that each poll of the checks, a minute apart, locates."""

    source_class = FindHubSource
    bad_credentials = {"secrets_json": json.dumps({**secrets_document(), "owner_key": "x"})}

    def make_fake(self, now: Callable[[], float], secret: str) -> FakeUpstream:
        return FakeFindHub(now=now, aas_token=secret)

    def prepare(self, fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """The token request answered by the fake in-process: on the mock clock a real
        one could not reach the fake served by the same thread (see conftest)."""
        monkeypatch.setattr(auth, "post_auth_form", fake.post_form)

    def credentials(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.credentials()

    def options(self, fake: Any, url: str) -> dict[str, Any]:
        return fake.options(url, locate_interval_s=60, stagger_s=0)

    def add_device(self, fake: Any, n: int) -> str:
        return fake.add_tracker(f"Tag {n}")

    def add_fix(self, fake: Any, upstream_id: str, t: float, lat: float, lon: float) -> None:
        fake.report(upstream_id, lat, lon, t=t)
