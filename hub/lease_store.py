"""The SQL of ``hub.cluster`` (PostgreSQL only): node heartbeats and leases.

One *round* (``LeaseStore.round``) is one transaction: the node's heartbeat, the renewal
of every lease it owns, and the balancing — it takes free or expired leases up to its
share (``ceil(enabled resources / live nodes)``) and names those to hand back
(``RoundOutcome.shed``): down to its share when it holds more than its share plus one,
or more than its share while another live node holds less than its own (so a node that
joins gets its share, and no lease moves once no node is above its share).  Those stay its own, renewed, until the caller
has stopped them locally and calls ``release``: no two processes ever run one at once.

Taking a lease is one atomic statement per batch of resources::

    INSERT INTO leases ... ON CONFLICT (resource) DO UPDATE ...
    WHERE leases.expires_at <= :now OR leases.owner = :me RETURNING resource

so of two nodes racing for a resource exactly one gets it.  Every transaction that
writes leases first takes one transaction-level advisory lock (``LOCK_KEY``): rounds run
one at a time across the group — a few milliseconds every ``lease_s / 3`` per node — so
each sees the others' committed leases, and no two lock rows in opposite orders (which
PostgreSQL would end with a deadlock error).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from hub.models import cluster_nodes_t, connections_t, leases_t, sinks_t

MAINTENANCE = "maintenance"
LOCK_KEY = 0x6770_7368_7562_0001  # pg_advisory_xact_lock: "gpshub" 1, the leases
NODES_KEPT_S = 3600.0  # a dead node's row is shown this long (at least 10 leases)


def connection_resource(connection_id: int) -> str:
    return f"connection:{connection_id}"


def sink_resource(sink_id: int) -> str:
    return f"sink:{sink_id}"


@dataclass(frozen=True)
class NodeRow:
    """What a node says of itself in ``cluster_nodes``."""

    node_id: str
    host: str
    pid: int
    started_at: datetime


@dataclass
class RoundOutcome:
    held: set[str]  # the leases the node owns after the round (``shed`` included)
    shed: set[str] = field(default_factory=set)  # to stop, then ``release``
    live_nodes: int = 1
    next_expiry: datetime | None = None  # the soonest expiry of a lease of another node


def share(resources: int, live_nodes: int) -> int:
    """How many of ``resources`` one of ``live_nodes`` aims at."""
    return math.ceil(resources / max(live_nodes, 1))


class LeaseStore:
    def __init__(self, engine: sa.Engine, lease_s: float, rng: random.Random | None = None):
        self.engine = engine
        self.lease = timedelta(seconds=lease_s)
        self.rng = rng or random.Random()

    # -- one round -----------------------------------------------------------------------
    def round(self, node: NodeRow, now: datetime, *, balance: bool = True) -> RoundOutcome:
        """Heartbeat, renew, balance (see the module's docstring)."""
        me = node.node_id
        with self._locked() as conn:
            self._heartbeat(conn, node, now)
            alive = set(
                conn.execute(
                    sa.select(cluster_nodes_t.c.node_id).where(
                        cluster_nodes_t.c.heartbeat_at > now - self.lease
                    )
                ).scalars()
            )
            live = len(alive)
            mine = self._renew(conn, me, now)
            others = conn.execute(
                sa.select(leases_t.c.owner, leases_t.c.resource).where(
                    leases_t.c.owner != me, leases_t.c.expires_at > now
                )
            ).all()
            wanted = {
                "connection": {
                    connection_resource(i)
                    for (i,) in conn.execute(
                        sa.select(connections_t.c.id).where(connections_t.c.enabled)
                    )
                },
                "sink": {
                    sink_resource(i)
                    for (i,) in conn.execute(sa.select(sinks_t.c.id).where(sinks_t.c.enabled))
                },
            }
            everything = wanted["connection"] | wanted["sink"] | {MAINTENANCE}
            shed = mine - everything  # deleted or disabled: handed back at once
            for resources in wanted.values():
                aim = share(len(resources), live)
                have = sorted(mine & resources)
                held_by = Counter(owner for owner, r in others if r in resources)
                starving = any(held_by[n] < aim for n in alive - {me})
                if balance and (len(have) > aim + 1 or (len(have) > aim and starving)):
                    shed |= set(self.rng.sample(have, len(have) - aim))
                elif len(have) < aim:
                    taken = {
                        r
                        for (r,) in conn.execute(
                            sa.select(leases_t.c.resource).where(leases_t.c.expires_at > now)
                        )
                    }
                    free = sorted(resources - taken)
                    pick = self.rng.sample(free, min(aim - len(have), len(free)))
                    mine |= self._acquire(conn, me, pick, now)
            if MAINTENANCE not in mine:
                mine |= self._acquire(conn, me, [MAINTENANCE], now)
            next_expiry = conn.execute(
                sa.select(sa.func.min(leases_t.c.expires_at)).where(
                    leases_t.c.owner != me, leases_t.c.expires_at > now
                )
            ).scalar_one()
            conn.execute(
                sa.delete(cluster_nodes_t).where(
                    cluster_nodes_t.c.heartbeat_at
                    < now - max(10 * self.lease, timedelta(seconds=NODES_KEPT_S))
                )
            )
        return RoundOutcome(mine, shed, int(live), next_expiry)

    @contextmanager
    def _locked(self) -> Iterator[sa.Connection]:
        """A transaction holding the leases' advisory lock."""
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(LOCK_KEY)))
            yield conn

    def _heartbeat(self, conn: sa.Connection, node: NodeRow, now: datetime) -> None:
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # not on SQLite

        stmt = pg_insert(cluster_nodes_t).values(
            node_id=node.node_id,
            host=node.host,
            pid=node.pid,
            started_at=node.started_at,
            heartbeat_at=now,
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["node_id"], set_={"heartbeat_at": stmt.excluded.heartbeat_at}
            )
        )

    def _renew(self, conn: sa.Connection, me: str, now: datetime) -> set[str]:
        rows = conn.execute(
            sa.update(leases_t)
            .where(leases_t.c.owner == me)
            .values(expires_at=now + self.lease)
            .returning(leases_t.c.resource)
        )
        return {r for (r,) in rows}

    def _acquire(
        self, conn: sa.Connection, me: str, resources: Iterable[str], now: datetime
    ) -> set[str]:
        rows = [
            {"resource": r, "owner": me, "acquired_at": now, "expires_at": now + self.lease}
            for r in sorted(resources)
        ]
        if not rows:
            return set()
        from sqlalchemy.dialects.postgresql import insert as pg_insert  # not on SQLite

        stmt = pg_insert(leases_t).values(rows)
        stmt = stmt.on_conflict_do_update(
            index_elements=["resource"],
            set_={
                "owner": stmt.excluded.owner,
                "acquired_at": stmt.excluded.acquired_at,
                "expires_at": stmt.excluded.expires_at,
            },
            where=sa.or_(leases_t.c.expires_at <= now, leases_t.c.owner == me),
        ).returning(leases_t.c.resource)
        return {r for (r,) in conn.execute(stmt)}

    def claim(self, me: str, resource: str, now: datetime) -> bool:
        """Take one connection's or sink's lease now if it is free or expired and this
        node holds fewer than its share of that kind (a resource just created or
        enabled through this node): whether it got it."""
        kind = resource.partition(":")[0]
        table = {"connection": connections_t, "sink": sinks_t}.get(kind)
        if table is None:
            return False
        with self._locked() as conn:
            live = conn.execute(
                sa.select(sa.func.count())
                .select_from(cluster_nodes_t)
                .where(cluster_nodes_t.c.heartbeat_at > now - self.lease)
            ).scalar_one()
            enabled = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(table.c.enabled)
            ).scalar_one()
            have = conn.execute(
                sa.select(sa.func.count())
                .select_from(leases_t)
                .where(
                    leases_t.c.owner == me,
                    leases_t.c.expires_at > now,
                    leases_t.c.resource.like(f"{kind}:%"),
                    leases_t.c.resource != resource,
                )
            ).scalar_one()
            if have >= share(int(enabled), int(live)):
                return False
            return bool(self._acquire(conn, me, [resource], now))

    def acquire(self, me: str, resources: Collection[str], now: datetime) -> set[str]:
        """Take these leases if free or expired (renew them if ours): those it got."""
        with self._locked() as conn:
            return self._acquire(conn, me, resources, now)

    # -- handing back --------------------------------------------------------------------

    def release(self, me: str, resources: Collection[str]) -> None:
        """Hand these leases back (only those still ours)."""
        if not resources:
            return
        with self._locked() as conn:
            conn.execute(
                sa.delete(leases_t).where(
                    leases_t.c.owner == me, leases_t.c.resource.in_(sorted(resources))
                )
            )

    def leave(self, me: str) -> None:
        """The node stops: all its leases back at once, and its row gone."""
        with self._locked() as conn:
            conn.execute(sa.delete(leases_t).where(leases_t.c.owner == me))
            conn.execute(sa.delete(cluster_nodes_t).where(cluster_nodes_t.c.node_id == me))

    # -- looking -------------------------------------------------------------------------
    def snapshot(self, now: datetime) -> list[dict[str, Any]]:
        """Each node known, with its heartbeat, whether it is alive and the leases it
        holds (unexpired ones); newest first."""
        with self.engine.connect() as conn:
            nodes = conn.execute(
                sa.select(cluster_nodes_t).order_by(cluster_nodes_t.c.started_at.desc())
            ).all()
            leases = conn.execute(
                sa.select(leases_t).where(leases_t.c.expires_at > now).order_by(leases_t.c.resource)
            ).all()
        out = []
        for n in nodes:
            held = [row for row in leases if row.owner == n.node_id]
            out.append(
                {
                    "node_id": n.node_id,
                    "host": n.host,
                    "pid": n.pid,
                    "started_at": n.started_at,
                    "heartbeat_at": n.heartbeat_at,
                    "alive": n.heartbeat_at > now - self.lease,
                    "leases": [
                        {"resource": row.resource, "expires_at": row.expires_at} for row in held
                    ],
                }
            )
        return out
