"""A device's status on a map: ``moving``, ``stopped``, ``ignition_off``, ``offline`` or
``no_data``, from its newest position alone, so that every client computes it alike.

The rule, in order (the first that holds wins):

1. ``no_data``: the device has no position.
2. ``offline``: its newest fix is older than its offline timeout (the device's
   ``offline_timeout_s``, else the hub's setting of that name, 600 s by default):
   ``now - fix_time > timeout``.
3. ``moving``: the fix's speed is above ``MOVING_KMH`` (5 km/h, the same threshold the
   hub's motion events and stop rules use); a fix without a speed is not moving.
4. ``ignition_off``: the fix says the ignition is off (``ignition`` is ``false``).
5. ``stopped``: anything else.

A page recomputes it for a live position with the same inputs: the position's
``fix_time``, ``speed_kmh`` and ``ignition``, the device's timeout and the time now
(``GET /api/dashboard-settings`` gives the thresholds and the server's clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from hub.derive import MotionRules

MOVING_KMH = MotionRules().moving_kmh
"""Above this speed (km/h) a fix is moving."""


class MapStatus(StrEnum):
    MOVING = "moving"
    STOPPED = "stopped"
    IGNITION_OFF = "ignition_off"
    OFFLINE = "offline"
    NO_DATA = "no_data"


def map_status(
    fix_time: datetime | None,
    speed_kmh: float | None,
    ignition: bool | None,
    *,
    now: datetime,
    offline_after_s: float,
) -> MapStatus:
    """The status of a device whose newest fix is this one (``fix_time`` None: none)."""
    if fix_time is None:
        return MapStatus.NO_DATA
    if (now - fix_time).total_seconds() > offline_after_s:
        return MapStatus.OFFLINE
    if speed_kmh is not None and speed_kmh > MOVING_KMH:
        return MapStatus.MOVING
    if ignition is False:
        return MapStatus.IGNITION_OFF
    return MapStatus.STOPPED


def count_by_status(statuses: Iterable[str]) -> dict[str, int]:
    """How many of each status, every status present (0 when none)."""
    counts = {s.value: 0 for s in MapStatus}
    for status in statuses:
        counts[MapStatus(status).value] += 1
    return counts
