"""Helpers shared by the Wialon plugin's tests (conftest puts this folder on
``sys.path``; the module name is unique so it cannot clash with another plugin's)."""

from __future__ import annotations

from collections.abc import Callable

from gpshub_wialon import WialonSource
from hub.source import DeviceRef
from hub.testing import EPOCH, device_refs

T0 = int(EPOCH.timestamp())


MakeSource = Callable[..., WialonSource]


def refs(*upstream_ids: str) -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...)."""
    return device_refs(upstream_ids, "unit {}")
