"""The fixes a source sent that the hub could not store, counted for its connection's
status (``SourceRunner.dropped``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.errors import BadConfig
from hub.fix import PositionFix

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.runner")  # with the runner's other records


class DroppedFixes:
    """The fixes a connection's source sent that the hub could not store: for a device
    it was not asked about, out of range, a naive time (``PositionFix.validate``).

    A plugin's mistake, not the upstream's: the connection stays ``ok``, and its status
    says how many since the runner started, since when, and the first reason ("12 fixes
    dropped since 2026-01-01 10:02 UTC: device 7: lat 123.0 is not a latitude in [-90,
    90]").  The first drop is logged at WARNING, later ones at DEBUG.
    """

    def __init__(self, connection_id: int) -> None:
        self.connection_id = connection_id
        self.count = 0
        self.first: str | None = None  # the reason of the first one
        self.since: datetime | None = None  # when (the hub's clock)
        self._new = 0  # since the last report
        self._reason = ""  # the last poll's first reason

    def add(self, count: int, reason: str, hub: Hub, *, unknown_device: bool = False) -> None:
        """Count ``count`` fixes dropped for ``reason`` (in the pipeline's figures too:
        ``gpshub_positions_rejected``, as invalid or of an ``unknown_device``)."""
        if count <= 0:
            return
        if self.first is None:
            self.first, self.since = reason, hub.clock.now()
        if not self._new:
            self._reason = reason
        self.count += count
        self._new += count
        stats = hub.pipeline.stats
        stats.received += count
        if unknown_device:
            stats.unknown_device += count
        else:
            stats.invalid += count

    def keep(self, upstream_id: str, fixes: Iterable[Any], hub: Hub) -> list[PositionFix]:
        """The fixes of ``fixes`` that are valid; the others are counted."""
        kept: list[PositionFix] = []
        for fix in fixes:
            if not isinstance(fix, PositionFix):
                self.add(1, f"device {upstream_id}: {type(fix).__name__} is not a PositionFix", hub)
                continue
            try:
                fix.validate()
            except BadConfig as exc:
                self.add(1, f"device {upstream_id}: {exc.field} {exc.reason}", hub)
                continue
            kept.append(fix)
        return kept

    def report(self, label: str) -> None:
        """Log the fixes dropped by the last poll: the first time at WARNING."""
        if not self._new:
            return
        level = logging.WARNING if self.count == self._new else logging.DEBUG
        log.log(
            level,
            "connection %s: dropped %d fix(es) the source sent; first: %s",
            label,
            self._new,
            self._reason,
            extra={"connection_id": self.connection_id},
        )
        self._new = 0

    def note(self) -> list[str]:
        """The status's words for them (none when nothing was dropped)."""
        if not self.count or self.since is None:
            return []
        what = "1 fix" if self.count == 1 else f"{self.count} fixes"
        since = self.since.astimezone(UTC)
        return [f"{what} dropped since {since:%Y-%m-%d %H:%M} UTC: {self.first}"]
