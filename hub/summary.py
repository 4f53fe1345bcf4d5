"""The one-line summary ``gpshub serve`` logs at INFO every ``log_summary_s`` (a minute).

For example::

    summary of the last minute: 1204 positions in (3 duplicates), 1180 delivered,
    2 failed requests; now 24 owed, 2 live clients; connections: 5 ok, 1 failing

Figures "in the last …" are what happened since the previous summary; "now" figures are
read when the line is written.  The record also carries them as structured fields
(``positions_in``, ``duplicates``, ``delivered``, ``failed_requests``, ``dead_lettered``,
``owed``, ``live_clients``, ``connections``, and the totals since start
``positions_in_total`` and ``delivered_total``) for ``--log-format json``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import trio

from hub.blocking import run_blocking
from hub.models import ConnectionState, connections_t

if TYPE_CHECKING:
    from hub.core import Hub

log = logging.getLogger("hub.summary")


class OperationsSummary:
    """Logs the summary line; ``run`` loops, ``log_once`` writes one line."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._before = (0, 0, 0, 0, 0)  # the first line counts from the hub's start

    def _totals(self) -> tuple[int, int, int, int, int]:
        stats, delivery = self.hub.pipeline.stats, self.hub.delivery
        return (
            stats.stored,
            stats.duplicates,
            delivery.delivered,
            delivery.failed_requests,
            delivery.dead_lettered,
        )

    async def run(self) -> None:
        every = self.hub.settings.log_summary_s
        if every <= 0:
            return
        while True:
            await trio.sleep(every)
            try:
                await self.log_once(every)
            except Exception:
                log.exception("the summary could not be made; trying again later")

    async def log_once(self, span_s: float) -> None:
        now = self._totals()
        stored, duplicates, delivered, failed, dead = (
            a - b for a, b in zip(now, self._before, strict=True)
        )
        self._before = now
        owed, states = await run_blocking(self._read)
        live = self.hub.live.subscriber_count
        parts = [f"{stored} positions in"]
        if duplicates:
            parts[0] += f" ({duplicates} duplicates)"
        parts.append(f"{delivered} delivered")
        if failed:
            parts.append(f"{failed} failed requests")
        if dead:
            parts.append(f"{dead} dead letters")
        connections = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
        extra: dict[str, Any] = {
            "interval_s": span_s,
            "positions_in": stored,
            "duplicates": duplicates,
            "delivered": delivered,
            "failed_requests": failed,
            "dead_lettered": dead,
            "owed": owed,
            "live_clients": live,
            "connections": dict(states),
            "positions_in_total": now[0],
            "delivered_total": now[2],
        }
        log.info(
            "summary of the last %s: %s; now %d owed, %d live client%s; connections: %s",
            _span(span_s),
            ", ".join(parts),
            owed,
            live,
            "" if live == 1 else "s",
            connections or "none",
            extra=extra,
        )

    def _read(self) -> tuple[int, Counter[str]]:
        store = self.hub.store
        owed = sum(o for o, _ in store.sinks.owed_and_dead().values())
        c = connections_t
        states: Counter[str] = Counter()
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.c.state, c.c.enabled, sa.func.count()).group_by(c.c.state, c.c.enabled)
            )
            for state, enabled, n in rows:
                states[state if enabled else ConnectionState.DISABLED.value] += int(n)
        return owed, states


def _span(seconds: float) -> str:
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return "minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} s"
