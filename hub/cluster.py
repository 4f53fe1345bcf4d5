"""Several hub processes on one PostgreSQL: who runs which connection, sink and the
maintenance, under leases.

**Node.**  Each process is a node with a random ``node_id`` made at start, its host
name, pid and start time, in the ``cluster_nodes`` table with a heartbeat renewed every
round.  A node whose heartbeat is older than the lease time (``lease_s``, 30 s) is dead.

**Leases.**  ``leases`` has a row per resource — ``connection:<id>``, ``sink:<id>``,
``maintenance`` — with its owner and expiry.  Every ``lease_s / 3`` a node runs a round
(``hub.lease_store``): heartbeat, renewal of all it owns, and balancing: it aims at
``ceil(enabled connections / live nodes)`` connections (sinks likewise), takes free or
expired leases up to that, and hands back those above its share plus one (a node that
joins gets some); the maintenance lease goes to whoever takes it first.  A connection's
``SourceRunner`` and a sink's worker run only in the node holding the lease; the
maintenance (retention, the outbox pruning, the offline-status watcher) only in the
node holding ``maintenance``.

**Losing a lease.**  A round that renewed a lease at ``t`` set its expiry to
``t + lease_s``; the node itself stops using it at ``t + 3/4 lease_s`` unless a later
round renewed it (a watchdog task, independent of the rounds, whose database call may
hang): the runner is cancelled before any other node can take the lease.  Leases handed
back by balancing are stopped locally first, the pipeline drained, and only then
released.  At shutdown (SIGTERM) all leases go back at once, after the pipeline has
committed its last batch (``Hub.run``).  A killed node's leases expire; the others take
them at their next round, which is scheduled just after the soonest expiry, so a
connection moves within the lease time plus a little.

**After a move** the new holder starts the runner, which resumes from the cursors
committed with the positions (``hub.positions``); the derived state of the
connection's devices is dropped from the derivation cache in the old and in the new
holder (loaded from the database at the next batch).  A sink's new holder loads its
cursor, pending messages and in-flight batch bounds from its row: an in-flight batch
goes again with the same ``webhook-id``.

**Time** comes from the hub's ``Clock`` (so tests drive leases with trio's mock clock),
not the database's: the hosts' clocks must therefore be NTP-synchronised.  The quarter
lease between a node's own deadline and the expiry others see (7.5 s by default)
absorbs skew well beyond what NTP leaves.

**SQLite** is one process: ``LocalCluster`` holds everything, touches no table and
starts no task — today's behaviour exactly.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import trio

from hub.blocking import run_blocking
from hub.lease_store import (
    MAINTENANCE,
    LeaseStore,
    NodeRow,
    connection_resource,
    sink_resource,
)
from hub.pipeline import PipelineClosed

if TYPE_CHECKING:
    from hub.clock import Clock
    from hub.core import Hub

log = logging.getLogger(__name__)

__all__ = [
    "MAINTENANCE",
    "Cluster",
    "LocalCluster",
    "NodeIdentity",
    "PgCluster",
    "connection_resource",
    "make_cluster",
    "sink_resource",
]

KEEP_FRACTION = 0.75  # a lease is used locally until this part of its time has passed


@dataclass(frozen=True)
class NodeIdentity:
    """This process as the cluster knows it."""

    node_id: str
    host: str
    pid: int
    started_at: datetime

    @classmethod
    def new(cls) -> NodeIdentity:
        """A new identity; ``started_at`` is set again from the hub's clock at ``run``
        (a hub may be made outside ``trio.run``, where a ``TrioClock`` cannot tell)."""
        return cls(uuid.uuid4().hex[:16], socket.gethostname(), os.getpid(), datetime.now(UTC))

    def started(self, clock: Clock) -> NodeIdentity:
        return replace(self, started_at=clock.now())

    def row(self) -> NodeRow:
        return NodeRow(self.node_id, self.host, self.pid, self.started_at)


class Cluster(Protocol):
    node: NodeIdentity
    shared: bool

    def holds(self, resource: str) -> bool:
        """Whether this process runs ``resource`` now."""
        ...

    async def claim(self, resource: str) -> bool:
        """``holds``; when not, try to take the lease at once (a connection or sink just
        created or enabled), and ask the next round for it otherwise."""
        ...

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None: ...

    async def release_all(self) -> None:
        """Hand every lease back (the hub stops; its pipeline has drained)."""
        ...

    async def describe(self) -> list[dict[str, Any]]:
        """The nodes, each with its heartbeat, whether alive and the leases it holds."""
        ...


class LocalCluster:
    """SQLite: this process is the only one and holds everything."""

    shared = False

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.node = NodeIdentity.new()

    def holds(self, resource: str) -> bool:
        return True

    async def claim(self, resource: str) -> bool:
        return True

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.node = self.node.started(self.hub.clock)
        task_status.started()

    async def release_all(self) -> None:
        return None

    async def describe(self) -> list[dict[str, Any]]:
        now = self.hub.clock.now()
        held = [MAINTENANCE]
        held += [connection_resource(i) for i in sorted(self.hub.runners)]
        held += [sink_resource(i) for i in sorted(self.hub.delivery.workers)]
        return [
            {
                "node_id": self.node.node_id,
                "host": self.node.host,
                "pid": self.node.pid,
                "started_at": self.node.started_at,
                "heartbeat_at": now,
                "alive": True,
                "leases": [{"resource": r, "expires_at": None} for r in held],
            }
        ]


class PgCluster:
    """PostgreSQL: leases shared with the other processes (see the module's docstring)."""

    shared = True

    def __init__(self, hub: Hub, node: NodeIdentity | None = None) -> None:
        self.hub = hub
        self.node = node or NodeIdentity.new()
        self.lease_s = float(hub.settings.lease_s)
        self.store = LeaseStore(hub.store.engine, self.lease_s)
        self._held: dict[str, datetime] = {}  # resource -> when this node stops using it
        self._wake = trio.Event()
        self._lock = trio.Lock()  # a round, or a claim, at a time
        self._letting_go: Counter[str] = Counter()  # being stopped or handed back: not
        # to be claimed again meanwhile
        self._next_wait = self.lease_s / 3
        self.renewing = True  # False: rounds stop (a test's simulated hang or kill)
        self.rounds = 0
        self.live_nodes = 1

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    def holds(self, resource: str) -> bool:
        return resource in self._held

    async def claim(self, resource: str) -> bool:
        if resource in self._held:
            return True
        if not self.renewing or resource in self._letting_go:
            return False
        async with self._lock:
            if resource in self._held:  # taken meanwhile
                return True
            now = self.hub.clock.now()
            try:
                got = await run_blocking(self.store.claim, self.node.node_id, resource, now)
            except Exception:
                log.exception("cluster: taking the lease of %s failed", resource)
                got = False
            if not got:
                self._wake.set()  # the next round balances
                return False
            deadline = now + timedelta(seconds=self.lease_s * KEEP_FRACTION)
            if deadline <= self.hub.clock.now():
                return False
            await _forget_derived(self.hub, resource)
            self._held[resource] = deadline
            return True

    def stop_renewing(self) -> None:
        """Stop the rounds, as a hung or partitioned process would: the watchdog drops
        the leases before they expire, and the other nodes take them over."""
        self.renewing = False

    def resume_renewing(self) -> None:
        """Rounds again, at once (the hung process recovers: it rejoins as a new node)."""
        self.renewing = True
        self._wake.set()

    # -- running ---------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.node = self.node.started(self.hub.clock)
        try:
            await self._round()
        except Exception:
            log.exception("cluster: the first lease round failed; trying again")
        task_status.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._watchdog)
            while True:
                with trio.move_on_after(self._next_wait):
                    await self._wake.wait()
                self._wake = trio.Event()
                if not self.renewing:
                    continue
                try:
                    await self._round()
                except PipelineClosed:
                    return
                except Exception:
                    self._next_wait = self.lease_s / 3
                    log.exception("cluster: a lease round failed; trying again")

    async def _round(self) -> None:
        async with self._lock:
            gained, lost, shed = await self._renew_and_balance()
        self._letting_go.update(shed)
        try:
            await self._apply(gained, lost)
            if shed:
                # stopped above; what they submitted is committed before another node starts
                await self.hub.pipeline.submit([], [])
                await run_blocking(self.store.release, self.node.node_id, shed)
        finally:
            self._letting_go.subtract(shed)
            self._letting_go = +self._letting_go

    async def _renew_and_balance(self) -> tuple[set[str], set[str], set[str]]:
        now = self.hub.clock.now()
        outcome = await run_blocking(self.store.round, self.node.row(), now)
        self.rounds += 1
        self.live_nodes = outcome.live_nodes
        deadline = now + timedelta(seconds=self.lease_s * KEEP_FRACTION)
        keep = outcome.held - outcome.shed
        if deadline <= self.hub.clock.now():  # the round took too long: nothing it renewed
            keep = set()  # is safe to use (others may take the leases any moment)
        before = set(self._held)
        self._held = dict.fromkeys(keep, deadline)
        gained, lost = keep - before, before - keep
        if gained or lost:
            log.info(
                "cluster: node %s now holds %d lease(s): +%d -%d (%d live node(s))",
                self.node.node_id,
                len(keep),
                len(gained),
                len(lost),
                self.live_nodes,
            )
        wait = self.lease_s / 3
        if outcome.next_expiry is not None:
            until = (outcome.next_expiry - self.hub.clock.now()).total_seconds()
            wait = min(wait, max(until, 0.0) + min(1.0, self.lease_s / 30))
        self._next_wait = wait
        return gained, lost, outcome.shed

    async def _watchdog(self) -> None:
        """Stop using each lease at its local deadline unless a round renewed it."""
        step = self.lease_s / 12
        while True:
            now = self.hub.clock.now()
            soonest = min(self._held.values(), default=None)
            wait = step if soonest is None else (soonest - now).total_seconds()
            await trio.sleep(min(max(wait, 0.0), step))
            now = self.hub.clock.now()
            late = {r for r, d in self._held.items() if d <= now}
            if late:
                for r in late:
                    del self._held[r]
                log.warning(
                    "cluster: %d lease(s) not renewed in time; stopped here before they expire",
                    len(late),
                )
                await self._apply(set(), late)

    async def _apply(self, gained: set[str], lost: set[str]) -> None:
        self._letting_go.update(lost)
        try:
            await apply_lease_changes(self.hub, gained, lost)
        finally:
            self._letting_go.subtract(lost)
            self._letting_go = +self._letting_go  # without the zeros

    async def release_all(self) -> None:
        self._held.clear()
        try:
            await run_blocking(self.store.leave, self.node.node_id)
        except Exception:
            log.exception("cluster: handing the leases back failed; they expire instead")

    async def describe(self) -> list[dict[str, Any]]:
        return await run_blocking(self.store.snapshot, self.hub.clock.now())


def make_cluster(hub: Hub) -> Cluster:
    """``PgCluster`` on PostgreSQL, ``LocalCluster`` on SQLite."""
    if hub.store.engine.dialect.name == "postgresql":
        return PgCluster(hub)
    return LocalCluster(hub)


async def apply_lease_changes(hub: Hub, gained: set[str], lost: set[str]) -> None:
    """Start what this node now holds and stop what it lost.  A connection's devices'
    derived state is dropped from the derivation cache first (also when gained: what
    this node cached when it last held it is stale): the next batch loads it."""
    for resource in sorted(gained | lost):
        kind, _, ident = resource.partition(":")
        try:
            if kind == "connection":
                await _forget_derived(hub, resource)
                await hub.sync_connection(int(ident))
                if resource in lost:  # what its last batch cached
                    await _forget_derived(hub, resource)
            elif kind == "sink":
                await hub.delivery.sync(int(ident))
        except Exception:
            log.exception("cluster: applying the lease of %s failed", resource)


async def _forget_derived(hub: Hub, resource: str) -> None:
    """Drop the derived state the derivation stage cached of a connection's devices."""
    kind, _, ident = resource.partition(":")
    if kind == "connection":
        refs = await run_blocking(hub.store.device_refs, int(ident))
        hub.pipeline.forget(devices={r.device_id for r in refs})
