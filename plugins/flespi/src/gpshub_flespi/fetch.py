"""Fetching the messages of a group of devices: one selector, one time window, pages.

flespi's ``/gw/devices/{id1,id2,...}/messages`` merges the messages of every selected
device ordered by ``timestamp``, and ``count`` limits the whole answer.  So a full page
means more may follow: the next page starts at the last timestamp received (inclusive,
the repeats are dropped), until a page comes back short or the poll's page budget is
spent, in which case the scan is *incomplete*: every device of the group is treated as
possibly cut (``RangeWindow.select(scanned_to=None)``) and ``reached`` says where the
next poll can go on from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gpshub_flespi.client import DevicesNotFound, FlespiClient
from gpshub_flespi.messages import parse_message
from hub.fix import PositionFix
from hub.upstream_values import number

Item = tuple[datetime, float | None, PositionFix]
"""What ``RangeWindow.select`` takes: fix time, receive time (epoch s), the fix."""


@dataclass(slots=True)
class GroupFetch:
    """What the pages of one group brought."""

    by_device: dict[str, list[Item]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # device id -> flespi's reason
    complete: bool = False
    reached: float = 0.0  # the timestamp the next page would start at (when incomplete)
    pages: int = 0
    skipped: int = 0  # records that are not fixes (no position, malformed)


def received_filter(floor: float, beyond: float | None = None) -> str:
    """The flespi expression keeping what was received at or after ``floor`` (and, with
    ``beyond``, whatever has a ``timestamp`` after it)."""
    kept = f"server.timestamp>={floor!r}"
    return kept if beyond is None else f"{kept}||timestamp>{beyond!r}"


async def fetch_group(
    client: FlespiClient,
    ids: Sequence[str],
    *,
    start: float,
    to: float,
    floor: float | None,
    beyond: float | None = None,
    page_size: int,
    max_pages: int,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
) -> GroupFetch:
    """The messages of ``ids`` with ``start <= timestamp <= to`` (received at or after
    ``floor`` when given, or with a ``timestamp`` after ``beyond``), in at most
    ``max_pages`` requests."""
    out = GroupFetch()
    remaining = list(ids)
    seen: set[tuple[str, datetime, float | None]] = set()
    frm = start
    while remaining:
        if out.pages >= max_pages:
            out.reached = frm
            return out  # the budget is spent: incomplete
        data: dict[str, Any] = {"from": frm, "to": to, "count": page_size}
        if floor is not None:
            data["filter"] = received_filter(floor, beyond)
        out.pages += 1
        try:
            answer = await client.messages(remaining, data)
        except DevicesNotFound as exc:
            gone = exc.ids & set(remaining)
            if not gone and len(remaining) == 1:
                gone = set(remaining)
            if not gone:
                raise
            for key in gone:
                out.missing[key] = str(exc)
            remaining = [i for i in remaining if i not in gone]
            continue
        if answer.failed:
            for key, reason in answer.failed.items():
                if key in remaining:
                    out.missing[key] = reason
            remaining = [i for i in remaining if i not in out.missing]
        wanted = set(remaining)
        newest = frm
        for record in answer.result:
            if isinstance(record, Mapping):
                t = number(record.get("timestamp"))
                if t is not None and t > newest:
                    newest = t
            message = parse_message(record)
            if message is None:
                out.skipped += 1
                continue
            if message.device_id not in wanted:
                continue
            key = (message.device_id, message.fix.fix_time, message.received)
            if key in seen:
                continue
            seen.add(key)
            out.by_device.setdefault(message.device_id, []).append(
                (message.fix.fix_time, message.received, message.fix)
            )
        if len(answer.result) < page_size:
            out.complete = True
            return out
        if newest <= frm:
            # A whole page at one instant: step past it rather than ask for it again.
            log.warning(
                "flespi returned %d messages at the same timestamp %s; skipping past it",
                len(answer.result),
                frm,
            )
            newest = frm + 1e-6
        frm = newest
    out.complete = True
    return out
