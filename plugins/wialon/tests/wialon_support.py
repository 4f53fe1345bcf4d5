"""Helpers shared by the Wialon plugin's tests (conftest puts this folder on
``sys.path``; the module name is unique so it cannot clash with another plugin's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gpshub_wialon import WialonSource
from hub.contract import advance
from hub.fix import PositionFix
from hub.source import Cursor, DeviceRef, PollResult
from hub.testing import EPOCH, device_refs

T0 = int(EPOCH.timestamp())


MakeSource = Callable[..., WialonSource]


def refs(*upstream_ids: str) -> list[DeviceRef]:
    """Hub device references for upstream ids (hub ids 1, 2, ...)."""
    return device_refs(upstream_ids, "unit {}")


class Poller:
    """Polls a source the way a runner does: cursors carried from poll to poll, every
    fix collected per device."""

    def __init__(self, source: WialonSource, devices: Sequence[DeviceRef]) -> None:
        self.source = source
        self.devices = list(devices)
        self.cursors: dict[str, Cursor] = {}
        self.fixes: dict[str, list[PositionFix]] = {}

    async def poll(self) -> PollResult:
        result = await self.source.poll(self.devices, dict(self.cursors))
        for upstream_id, fixes in result.fixes.items():
            self.fixes.setdefault(upstream_id, []).extend(fixes)
        self.cursors = advance(self.cursors, result)
        return result

    def times(self, upstream_id: str) -> list[int]:
        return [int(f.fix_time.timestamp()) for f in self.fixes.get(upstream_id, [])]
