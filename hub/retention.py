"""Retention: what the hub deletes, and what it keeps however old it is.

Each client may keep its positions and its alerts for a number of days
(``positions_retention_days``, ``alerts_retention_days``; ``None``: forever), counted by
fix time.  Older rows are deleted in small batches, each in a transaction of its own,
so ingest never waits long for the write lock (``hub.housekeeping`` runs them, pausing
between batches).  Whatever the age, these positions are kept:

* **each device's latest position** (its ``last_fix_time``): it is the device's current
  state, what ``/api/devices/latest`` and the live feed's snapshot show;
* **positions a message still waiting in the outbox refers to**: a location owed to a
  sink, not yet read by one, or kept for a dead letter.  Such a position goes at a later
  pass, once every sink is done with the message (or a cap below dropped it).

Alerts carry their whole alert object (``payload``), which is also what the outbox
holds for their delivery, so positions may go before the alerts they raised (an
alert's ``position_id`` may then name a deleted position) and an alert may go while
its message is still owed.

Two caps bound what delivery keeps when a receiver stays away (``hub.sink_store``
already prunes, every minute, the outbox messages every sink is done with):

* ``outbox_max_owed``: messages of one client and one purpose (locations, alerts)
  still in the outbox; beyond it the oldest are dropped (those kept for a dead letter
  excepted): the sinks behind never send them.
* ``dead_letters_max_per_sink``: beyond it a sink's oldest dead letters are dropped.

Both log a warning saying what was dropped.  All of this is plain SQL that runs on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from hub import db
from hub.models import (
    alerts_t,
    clients_t,
    dead_t,
    devices_t,
    outbox_t,
    pending_t,
    positions_t,
    sinks_t,
)

KIND_OF_PURPOSE = {"locations": "location", "alerts": "alert"}


@dataclass(frozen=True, slots=True)
class ClientRetention:
    client_id: int
    positions_days: int | None
    alerts_days: int | None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one pruning transaction did: rows deleted, how long it held the write
    transaction open (seconds, from ``BEGIN IMMEDIATE`` to ``COMMIT`` on SQLite), and
    whether there may be more to delete."""

    deleted: int
    held_s: float
    more: bool


@dataclass(frozen=True, slots=True)
class Overflow:
    """Messages of ``client_id`` and ``kind`` beyond the outbox cap: those up to and
    including outbox id ``upto`` are to be dropped (``count`` of them, at most)."""

    client_id: int
    kind: str
    upto: int
    count: int
    behind: tuple[str, ...]  # the sinks that have not passed them, for the warning


class RetentionStore:
    """The pruning statements; each batch is one short write transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def clients(self) -> list[ClientRetention]:
        """The clients that keep positions or alerts for a limited time."""
        c = clients_t
        q = sa.select(c.c.id, c.c.positions_retention_days, c.c.alerts_retention_days).where(
            sa.or_(
                c.c.positions_retention_days.is_not(None), c.c.alerts_retention_days.is_not(None)
            )
        )
        with self.engine.connect() as conn:
            return [ClientRetention(int(i), p, a) for i, p, a in conn.execute(q.order_by(c.c.id))]

    # -- positions and alerts ------------------------------------------------------------
    def position_pruner(self, client_id: int, before: datetime) -> PositionPruner:
        """Batches deleting the client's positions with a fix time before ``before``,
        except each device's latest and those the outbox refers to."""
        d = devices_t
        with self.engine.connect() as conn:
            devices = conn.execute(
                sa.select(d.c.id, d.c.last_fix_time)
                .where(d.c.client_id == client_id, d.c.last_fix_time.is_not(None))
                .order_by(d.c.id)
            ).all()
        # a device's latest position (at its last fix time) is never chosen
        return PositionPruner(self, [(int(i), min(before, last)) for i, last in devices])

    def prune_alerts(self, client_id: int, before: datetime, limit: int) -> Batch:
        """Delete up to ``limit`` of the client's alerts with a fix time before ``before``."""
        a, d = alerts_t, devices_t
        chosen = (
            sa.select(a.c.id)
            .where(
                a.c.device_id.in_(sa.select(d.c.id).where(d.c.client_id == client_id)),
                a.c.fix_time < before,
            )
            .limit(limit)
        )
        return self._delete(sa.delete(a).where(a.c.id.in_(chosen)), limit)

    def _delete(self, stmt: sa.Delete, limit: int) -> Batch:
        with db.write_tx(self.engine) as conn:
            started = time.perf_counter()  # the write lock is held from here (SQLite)
            deleted = int(conn.execute(stmt).rowcount)
        return Batch(deleted, time.perf_counter() - started, more=deleted >= limit)

    # -- the dead-letter cap ---------------------------------------------------------------
    def dead_letter_overflow(self, max_per_sink: int) -> list[tuple[int, str, int, int]]:
        """Sinks with more than ``max_per_sink`` dead letters: (sink id, name, how many
        are over, the id of the newest dead letter to drop)."""
        t = dead_t
        with self.engine.connect() as conn:
            counts = conn.execute(
                sa.select(t.c.sink_id, sa.func.count())
                .group_by(t.c.sink_id)
                .having(sa.func.count() > max_per_sink)
            ).all()
            over = []
            for sink_id, count in counts:
                upto = conn.execute(
                    sa.select(t.c.id)
                    .where(t.c.sink_id == sink_id)
                    .order_by(t.c.id.desc())
                    .offset(max_per_sink)
                    .limit(1)
                ).scalar_one()
                name = conn.execute(
                    sa.select(sinks_t.c.name).where(sinks_t.c.id == sink_id)
                ).scalar_one_or_none()
                over.append((int(sink_id), name or "", int(count) - max_per_sink, int(upto)))
        return over

    def drop_dead_letters(self, sink_id: int, upto: int, limit: int) -> Batch:
        """Delete up to ``limit`` of the sink's dead letters with an id up to ``upto``."""
        t = dead_t
        chosen = (
            sa.select(t.c.id)
            .where(t.c.sink_id == sink_id, t.c.id <= upto)
            .order_by(t.c.id)
            .limit(limit)
        )
        return self._delete(sa.delete(t).where(t.c.id.in_(chosen)), limit)

    # -- the outbox cap ----------------------------------------------------------------------
    def outbox_overflow(self, max_owed: int) -> list[Overflow]:
        """Clients and kinds with more than ``max_owed`` messages in the outbox."""
        o = outbox_t
        found: list[Overflow] = []
        with self.engine.connect() as conn:
            # a cheap first look: rows per client, through the (client_id, id) index
            crowded = [
                int(c)
                for (c,) in conn.execute(
                    sa.select(o.c.client_id)
                    .group_by(o.c.client_id)
                    .having(sa.func.count() > max_owed)
                    .order_by(o.c.client_id)
                )
            ]
            for client_id in crowded:
                for kind in ("location", "alert"):
                    mine = sa.and_(o.c.client_id == client_id, o.c.kind == kind)
                    upto = conn.execute(
                        sa.select(o.c.id)
                        .where(mine)
                        .order_by(o.c.id.desc())
                        .offset(max_owed)
                        .limit(1)
                    ).scalar_one_or_none()
                    if upto is None:
                        continue
                    count = conn.execute(
                        sa.select(sa.func.count()).where(mine, o.c.id <= upto)
                    ).scalar_one()
                    purpose = "locations" if kind == "location" else "alerts"
                    s, owed = sinks_t, pending_t
                    behind = conn.execute(
                        sa.select(s.c.id, s.c.name)
                        .where(s.c.client_id == client_id, s.c.purpose == purpose)
                        .where(
                            sa.or_(
                                s.c.cursor < upto,  # not read yet, or read and still owed:
                                sa.exists().where(
                                    owed.c.sink_id == s.c.id, owed.c.outbox_id <= upto
                                ),
                            )
                        )
                        .order_by(s.c.id)
                    ).all()
                    found.append(
                        Overflow(
                            client_id,
                            kind,
                            int(upto),
                            int(count),
                            tuple(f"{name!r} (#{i})" for i, name in behind),
                        )
                    )
        return found

    def drop_outbox(self, overflow: Overflow, limit: int) -> Batch:
        """Delete up to ``limit`` of the oldest messages ``overflow`` names, except those
        kept for a dead letter (the dead-letter cap bounds them)."""
        o = outbox_t
        chosen = (
            sa.select(o.c.id)
            .where(
                o.c.client_id == overflow.client_id,
                o.c.kind == overflow.kind,
                o.c.id <= overflow.upto,
                o.c.id.not_in(sa.select(dead_t.c.outbox_id)),
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        return self._delete(sa.delete(o).where(o.c.id.in_(chosen)), limit)


_WAITING = sa.exists().where(
    outbox_t.c.ref_id == positions_t.c.id, outbox_t.c.kind == "location"
)  # an outbox message refers to the position


class PositionPruner:
    """Deletes a client's old positions one batch at a time (``pruner(limit)``).

    It walks the client's devices in turn and each device's positions in fix-time order
    through the (device, fix time) index, from where the last batch stopped, so the
    positions it keeps are not looked at again.  The rows of a batch are chosen
    (``choose``) before the write transaction starts; the transaction (``delete``)
    deletes them, checking once more that no outbox message refers to them (a replay
    may have queued one meanwhile), so it holds the write lock only for the deletion.
    """

    def __init__(self, store: RetentionStore, devices: list[tuple[int, datetime]]) -> None:
        self.engine = store.engine
        self.devices = devices  # (device id, delete fix times before this)
        self._next = 0  # the device being walked
        self._after: datetime | None = None  # its last fix time chosen so far

    def __call__(self, limit: int) -> Batch:
        """Choose up to ``limit`` positions and delete them: one batch."""
        return self.delete(self.choose(limit))

    def delete(self, chosen: list[int]) -> Batch:
        """Delete the ``chosen`` positions no outbox message refers to, in one write
        transaction."""
        more = self._next < len(self.devices)
        if not chosen:
            return Batch(0, 0.0, more=more)
        p = positions_t
        deleted = 0
        with db.write_tx(self.engine) as conn:
            started = time.perf_counter()  # the write lock is held from here (SQLite)
            # PostgreSQL: ingest or a replay adding outbox rows that refer to these
            # positions commits first, or waits and finds them gone (SQLite: a no-op)
            db.lock_outbox(conn)
            for i in range(0, len(chosen), 1000):
                part = chosen[i : i + 1000]
                deleted += int(
                    conn.execute(sa.delete(p).where(p.c.id.in_(part), ~_WAITING)).rowcount
                )
        return Batch(deleted, time.perf_counter() - started, more=more)

    def choose(self, limit: int) -> list[int]:
        """The next ``limit`` positions to delete (fewer at the end), read outside any
        write transaction."""
        p = positions_t
        chosen: list[int] = []
        with self.engine.connect() as conn:
            while len(chosen) < limit and self._next < len(self.devices):
                device_id, bound = self.devices[self._next]
                q = sa.select(p.c.id, p.c.fix_time).where(
                    p.c.device_id == device_id, p.c.fix_time < bound, ~_WAITING
                )
                if self._after is not None:
                    q = q.where(p.c.fix_time > self._after)
                want = limit - len(chosen)
                rows = conn.execute(q.order_by(p.c.fix_time).limit(want)).all()
                chosen += [int(r[0]) for r in rows]
                if len(rows) < want:  # this device is done
                    self._next, self._after = self._next + 1, None
                else:
                    self._after = rows[-1][1]
        return chosen


def cutoff(now: datetime, days: int) -> datetime:
    """The fix time before which a client keeping ``days`` days deletes rows."""
    return now - timedelta(days=days)
