"""Paging through one of 3D Tracking's account-wide ``StartId`` feeds, and skipping ahead.

``Data/PositionsList`` and ``Data/SensorReadingsList`` work alike: an answer holds the
records from ``StartId`` on, in the order the server received them, at most a page of
them, and the ``StartId`` to ask next.  Without ``StartId`` the answer starts about 24 h
back.  A page shorter than the longest seen (or than the configured cap) is the end.

Skipping ahead (``seek``).  The first start wants only the records that arrived since
"now - backfill", but the feed's default window starts a day back: paging through a day
of a large account to reach the last hour would take hundreds of requests.  The ids are
an increasing sequence, so any number is a place in the feed: ``seek`` asks from ids ever
further ahead (doubling the stride) until it overshoots the target time, then halves the
interval between the last id known to be before the target and the first beyond it,
about ``2 log2(pages)`` requests for the whole day (some 16 for 300 pages).  It keeps the
invariant that every record before its lower bound arrived before the target, so nothing
that arrived later is skipped; what the page at the found place holds from before the
target is dropped by the caller.  Should the server refuse an id it did not hand out, the
feed is read page by page from the start of its window instead (logged once).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from gpshub_tracking3d.client import ApiError


class Page(Protocol):
    """What paging needs of a parsed answer."""

    @property
    def size(self) -> int:
        """Records in the answer, usable or not."""
        ...

    @property
    def start_id(self) -> int | None:
        """The ``StartId`` to ask next."""
        ...

    @property
    def newest(self) -> float | None:
        """The latest time (epoch seconds) among its usable records."""
        ...


P = TypeVar("P", bound=Page)


class PagedFeed(Generic[P]):
    """One ``StartId`` feed: its pages, its page cap as learned, and ``seek``."""

    def __init__(
        self,
        name: str,
        fetch: Callable[[int | None], Awaitable[P]],
        page_size: int,
        log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self.name = name
        self._fetch = fetch
        self.learned = max(page_size, 0)
        """The page cap: configured, or the longest page seen so far."""
        self.log = log
        self.seekable = True
        self.requests = 0

    async def page(self, start_id: int | None) -> P:
        """The answer from ``start_id`` (``None``: the feed's default window)."""
        self.requests += 1
        return await self._fetch(start_id)

    def step(self, start_id: int | None, page: P) -> tuple[int | None, bool]:
        """After reading ``page`` from ``start_id``: the next ``StartId`` and whether the
        feed ended there (empty, short, or not advancing)."""
        advanced = page.start_id is not None and (start_id is None or page.start_id > start_id)
        following = page.start_id if advanced else start_id
        end = page.size == 0 or not advanced or (self.learned > 0 and page.size < self.learned)
        self.learned = max(self.learned, page.size)
        return following, end

    @staticmethod
    def _before(page: P, target: float) -> bool:
        """Whether every record of ``page`` arrived before ``target`` (a page without a
        usable time counts as not before: the safe side)."""
        return page.size > 0 and page.newest is not None and page.newest < target

    async def _probe(self, at: int, target: float, fetched: dict[int, P]) -> int | None:
        """Read the page at ``at``: the id after it when all of it arrived before
        ``target`` (and the feed went on), else ``None`` (the page is kept in ``fetched``
        when it has records)."""
        page = await self.page(at)
        self.learned = max(self.learned, page.size)
        if self._before(page, target) and page.start_id is not None and page.start_id > at:
            return page.start_id
        if page.size:
            fetched[at] = page
        return None

    async def seek(self, target: float) -> tuple[int | None, P | None]:
        """Where to read from so that every record that arrived at or after ``target`` is
        read: a ``StartId`` (``None``: the default window) and the page there if it was
        fetched on the way.  See the module docstring."""
        first = await self.page(None)
        following, end = self.step(None, first)
        if end or not self.seekable or not self._before(first, target) or following is None:
            return None, first
        low, high = following, None  # every record before `low` arrived before the target
        cap = max(first.size, 1)
        fetched: dict[int, P] = {}
        stride = cap
        try:
            while high is None:  # gallop: ever longer strides until past the target
                after = await self._probe(low + stride, target, fetched)
                if after is None:
                    high = low + stride
                else:
                    low, stride = after, stride * 2
            while high - low > cap:  # then halve the gap
                middle = (low + high) // 2
                after = await self._probe(middle, target, fetched)
                if after is None:
                    high = middle
                else:
                    low = min(after, high)
        except ApiError as exc:
            self.seekable = False
            self.log.info(
                "3D Tracking %s: the server refused a StartId it did not hand out (%s);"
                " reading it page by page instead",
                self.name,
                exc,
            )
            return low, None
        return low, fetched.get(low)
