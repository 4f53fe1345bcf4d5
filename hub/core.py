"""The ``Hub``: owns the store, the plugins, the pipeline, the runners and the web server.

``Hub.run`` is the root of the trio task tree::

    Hub.run
    ├── Pipeline.run          the writer: batches → one transaction → live feed
    └── producers             cancelled first at shutdown
        ├── ChangeFeed.run    changes made by any process (``hub.changes``)
        ├── Cluster.run       leases: which connections and sinks this process runs
        ├── LiveFeed.run      the live feed's ticker: routes messages once per tick
        ├── LiveRelay.run     PostgreSQL: other processes' live messages (``hub.live_relay``)
        ├── SourceRunner × N  one per enabled connection, each in its own cancel scope
        ├── DeliveryService   a worker per enabled sink
        ├── Housekeeping      retention, the delivery caps, the SQLite WAL
        └── hypercorn         the Starlette app (optional)

At shutdown the producers are cancelled, then the pipeline is closed: the batches in
flight are committed before ``run`` returns.

Changes to connections, sinks, devices, tokens, users and clients reach the running
hub through its ``ChangeFeed``, whichever process made them (the CLI, another API
process): runners and sink workers are started, stopped or restarted to match the
database, and live sockets whose token, user or client changed re-authenticate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import trio

from hub.blocking import run_blocking
from hub.changes import Change, ChangeFeed, ChangeKind, ChangeOp
from hub.clock import Clock, SystemClock
from hub.cluster import MAINTENANCE, connection_resource, make_cluster
from hub.config import Settings
from hub.delivery import DeliveryService
from hub.housekeeping import Housekeeping
from hub.live_relay import LiveRelay
from hub.livefeed import LiveFeed, LiveMessage
from hub.logging_setup import install_redaction
from hub.metrics import HubMetrics
from hub.models import Connection, ConnectionState
from hub.netguard import OutboundPolicy
from hub.pipeline import Pipeline
from hub.plugins import PluginInfo, load_plugins
from hub.positions import WriteResult
from hub.registry import Registry
from hub.runner import SourceRunner, source_http_client
from hub.source import (
    MemoryStateStore,
    RemoteDevice,
    Source,
    SourceContext,
    check_upstream_urls,
    connection_summary,
)
from hub.store import Store
from hub.summary import OperationsSummary

log = logging.getLogger(__name__)


@dataclass
class _RunnerHandle:
    scope: trio.CancelScope
    runner: SourceRunner


class Hub:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        plugins: dict[str, PluginInfo] | None = None,
        *,
        clock: Clock | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.plugins = plugins or {}
        self.clock: Clock = clock or SystemClock()
        self.settings = settings or Settings()
        self.live = LiveFeed(self.settings.live_tick_s)
        self.pipeline = Pipeline(
            store, self.live, self.clock, linger_s=self.settings.ingest_linger_s
        )
        self.outbound_policy = OutboundPolicy.from_strings(self.settings.outbound_allow_networks)
        self.delivery = DeliveryService(self)
        self.metrics = HubMetrics(self)
        self.pipeline.metrics = self.metrics
        self.housekeeping = Housekeeping(self)
        self.pipeline.after_commit = self._after_commit
        self.changes = ChangeFeed(
            store.engine,
            check_s=self.settings.change_check_s,
            fallback_s=self.settings.change_fallback_s,
        )
        self.pipeline.changes = self.changes
        self.cluster = make_cluster(self)  # before the relay: its node id signs the notices
        self.relay = LiveRelay.for_hub(self)  # PostgreSQL: live messages of other processes
        self.changes.subscribe(self.live.apply_changes, LiveFeed.CHANGE_KINDS)
        self.changes.subscribe(self._connections_changed, {ChangeKind.CONNECTION})
        self.changes.subscribe(self.delivery.apply_changes, {ChangeKind.SINK})
        self.changes.subscribe(self._forget_cached, {ChangeKind.CLIENT, ChangeKind.DEVICE})
        store.positions.derivation.geocoder = registry.geocoder
        self.runners: dict[int, _RunnerHandle] = {}
        self._producers: trio.Nursery | None = None
        self._producers_scope: trio.CancelScope | None = None
        self.plugin_manager: Any = None
        self._syncing = trio.Lock()
        install_redaction()

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        extra_plugins: Iterable[tuple[str, ModuleType | object]] = (),
        use_entry_points: bool = True,
        clock: Clock | None = None,
    ) -> Hub:
        """Load plugins, open (and migrate) the store: everything but running."""
        pm, infos = load_plugins(
            settings.disable_plugins, extra_plugins, use_entry_points=use_entry_points
        )
        registry = Registry.collect(pm, infos)
        store = Store.for_settings(settings)
        hub = cls(store, registry, infos, clock=clock, settings=settings)
        hub.plugin_manager = pm
        return hub

    # -- running ---------------------------------------------------------------------
    async def run(
        self,
        *,
        serve: Any = None,
        task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until ``shutdown()``.  ``serve(task_status=...)`` starts the web server."""
        # before anything writes the outbox: ids a restored backup's original used are skipped
        await run_blocking(self.store.sinks.skip_outbox_ids, self.clock.now())
        async with trio.open_nursery() as root:
            await root.start(self.pipeline.run)
            bound: Any = None
            try:
                async with trio.open_nursery() as producers:
                    self._producers = producers
                    self._producers_scope = producers.cancel_scope
                    # before the connections are read: a change made meanwhile is seen
                    await producers.start(self.changes.run)
                    await producers.start(self.cluster.run)  # the leases of this process
                    connections = await run_blocking(
                        lambda: self.store.list_connections(enabled_only=True)
                    )
                    for conn in connections:
                        if conn.state not in (
                            ConnectionState.NEEDS_REAUTH,
                            ConnectionState.BAD_CONFIG,
                        ) and self._leased_not_running(conn.id or 0):
                            await self._start_runner(conn.id or 0)
                    await producers.start(self.live.run)
                    await producers.start(self.relay.run)
                    producers.start_soon(self._watch_status)
                    producers.start_soon(OperationsSummary(self).run)
                    await producers.start(self.delivery.run)
                    await producers.start(self.housekeeping.run)
                    if serve is not None:
                        bound = await producers.start(serve)
                    task_status.started(bound)
                    await trio.sleep_forever()  # until shutdown() cancels the producers
            finally:
                self._producers = None
                self.runners.clear()
                with trio.CancelScope(shield=True):
                    await self.pipeline.close()
                    await self.cluster.release_all()  # after the last batch committed

    @property
    def running(self) -> bool:
        """True between start-up and shutdown (what readiness reports)."""
        return self._producers is not None

    def shutdown(self) -> None:
        """Stop the runners and the server; the pipeline then drains and ``run`` returns."""
        if self._producers_scope is not None:
            self._producers_scope.cancel()

    async def sync_connection(self, connection_id: int, *, restart_idle: bool = False) -> None:
        """Make the connection's runner match the database (idempotent): start one for an
        enabled connection that has none, stop the runner of a deleted or disabled one
        (or one waiting for new credentials or an edit), restart one whose connection
        was changed since it started.  ``restart_idle``: the connection got devices (or lost
        some): restart an idle runner, and have a polling one poll them at once."""
        async with self._syncing:  # one at a time: a runner starts before the next looks
            await self._sync_connection(connection_id, restart_idle)

    async def _sync_connection(self, connection_id: int, restart_idle: bool) -> None:
        if self._producers is None:
            return
        extra = {"connection_id": connection_id}
        try:
            conn: Connection | None = await run_blocking(self.store.get_connection, connection_id)
        except LookupError:
            conn = None
        wanted = (
            conn is not None
            and conn.enabled
            and conn.state not in (ConnectionState.NEEDS_REAUTH, ConnectionState.BAD_CONFIG)
        )
        wanted = wanted and await self.cluster.claim(connection_resource(connection_id))
        handle = self.runners.get(connection_id)
        if handle is not None:
            runner = handle.runner
            current = conn is not None and runner.version == conn.updated_at
            if wanted and current and not (restart_idle and runner.state == ConnectionState.IDLE):
                if restart_idle:
                    runner.poke()  # its new devices are polled now, not at the next interval
                return
            del self.runners[connection_id]
            handle.scope.cancel()
        if conn is None:
            self.metrics.forget_connection(connection_id)
            if handle is not None:
                log.info("connection #%s: deleted; no longer polled", connection_id, extra=extra)
            return
        label = f"{conn.label!r} (#{connection_id}, {conn.kind})"
        if wanted and self._producers is not None:
            if handle is None:
                log.info("connection %s: polling starts", label, extra=extra)
            await self._start_runner(connection_id)
        elif handle is not None:
            why = "disabled" if not conn.enabled else f"{conn.state}, waiting for an edit"
            if conn.enabled and not self.cluster.holds(connection_resource(connection_id)):
                why = "another process holds its lease"
            log.info("connection %s: stopped (%s)", label, why, extra=extra)

    async def _connections_changed(self, changes: list[Change]) -> None:
        """The change feed's handler of connection changes."""
        if self._producers is None:
            return
        ids: dict[int, bool] = {}  # connection -> whether it got devices
        everything = False
        for c in changes:
            if c.object_id is None:
                everything = True
            else:
                ids[c.object_id] = ids.get(c.object_id, False) or c.op == ChangeOp.DEVICES
        if everything:
            rows = await run_blocking(self.store.list_connections)
            for i in {c.id or 0 for c in rows} | set(self.runners):
                ids.setdefault(i, False)
        for connection_id, got_devices in sorted(ids.items()):
            await self.sync_connection(connection_id, restart_idle=got_devices)

    def _forget_cached(self, changes: list[Change]) -> None:
        """Deleted clients and devices leave the pipeline's caches (an id given out
        again must not find what its former owner left there)."""
        gone = [  # and devices another process marked offline: their state is reloaded
            c
            for c in changes
            if c.op in (ChangeOp.DELETED, ChangeOp.OFFLINE) and c.object_id is not None
        ]
        self.pipeline.forget(
            clients={c.object_id for c in gone if c.kind == ChangeKind.CLIENT},
            devices={c.object_id for c in gone if c.kind == ChangeKind.DEVICE},
        )

    def _leased_not_running(self, connection_id: int) -> bool:
        """This process holds the connection's lease and has not started its runner
        (the cluster's first round may have)."""
        held = self.cluster.holds(connection_resource(connection_id))
        return held and connection_id not in self.runners

    async def _start_runner(self, connection_id: int) -> None:
        assert self._producers is not None
        runner = SourceRunner(self, connection_id)
        scope = trio.CancelScope()
        self.runners[connection_id] = _RunnerHandle(scope, runner)

        async def guarded(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with scope:
                try:
                    await runner.run(task_status=task_status)
                except Exception:
                    log.exception(
                        "runner of connection %s crashed; it is not restarted", connection_id
                    )
            handle = self.runners.get(connection_id)
            if handle is not None and handle.runner is runner:
                del self.runners[connection_id]

        await self._producers.start(guarded)

    async def reload_connection(self, connection_id: int) -> None:
        """Apply a change to a connection made through this hub: ``sync_connection``,
        restarting an idle runner too (devices were linked to it: poll them now).

        Idempotent, like the change feed's handling of the same change: whichever of the
        two comes first starts the runner, the other finds it running as it should."""
        await self.sync_connection(connection_id, restart_idle=True)

    async def _watch_status(self) -> None:
        """Every ``status_check_s``: devices silent past their timeout go offline."""
        while True:
            await trio.sleep(self.settings.status_check_s)
            if self.cluster.holds(MAINTENANCE):  # once across the processes
                await self.check_status()

    async def check_status(self) -> None:
        from hub.pipeline import alert_messages, status_data, status_messages

        now = self.clock.now()
        try:
            went, alerts = await run_blocking(
                self.store.positions.mark_offline, now, self.settings.offline_timeout_s
            )
        except Exception:
            log.exception("looking for offline devices failed; trying again later")
            return
        self.live.publish(status_messages(went, "offline", now) + alert_messages(alerts))
        await self.relay.announce(alerts=[a["eventId"] for a in alerts], statuses=went,
                                  data=status_data("offline", now))  # fmt: skip
        if alerts:
            self.delivery.notify({a["clientId"] for a in alerts})

    def _after_commit(self, result: WriteResult) -> None:
        self.housekeeping.wrote()
        if result.outbox_clients:
            self.delivery.notify(result.outbox_clients)

    # -- the live feed ---------------------------------------------------------------
    async def publish_connection_status(
        self, connection_id: int, state: str, error: str | None
    ) -> None:
        def load() -> tuple[Connection, list[int]]:
            conn = self.store.get_connection(connection_id)
            return conn, [d.device_id for d in self.store.device_refs(connection_id)]

        try:
            conn, device_ids = await run_blocking(load)
        except LookupError:
            return
        data = {"connection_id": connection_id, "state": state, "last_error": error}
        self.live.publish(
            [LiveMessage.make("device_status", conn.client_id, d, data) for d in device_ids]
        )
        await self.relay.announce(statuses=[(d, conn.client_id) for d in device_ids], data=data)

    # -- sources outside the runners (test connection, browse) -------------------------
    def source_class(self, kind: str) -> type[Source[Any, Any]]:
        return self.registry.source(kind)

    async def with_source(
        self,
        kind: str,
        credentials: dict[str, Any],
        options: dict[str, Any] | None,
        action: Any,
        connection_id: int | None = None,
        label: str = "",
    ) -> Any:
        """Make a short-lived source instance and ``await action(source)``.

        Credentials are validated first (``BadConfig`` names the field).  With a
        ``connection_id`` the source sees that connection's saved state (sessions).
        """
        from hub.runner import StoreStateStore

        cls = self.source_class(kind)
        creds = cls.parse_credentials(credentials)
        opts = cls.parse_options(options)
        check_upstream_urls(self.outbound_policy, creds, opts)
        async with source_http_client(self.outbound_policy, cls, opts, self.clock) as http:
            ctx: SourceContext[Any, Any] = SourceContext(
                credentials=creds,
                options=opts,
                http=http,
                log=logging.getLogger(f"gpshub.source.{kind}"),
                state=StoreStateStore(self, connection_id) if connection_id else MemoryStateStore(),
                clock=self.clock,
                connection_id=connection_id,
                label=label,
            )
            source = cls(ctx)
            try:
                return await action(source)
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(5):
                    await source.aclose()

    async def test_connection(
        self,
        kind: str,
        credentials: dict[str, Any],
        options: dict[str, Any] | None = None,
        **kw: Any,
    ) -> str:
        async def action(source: Source[Any, Any]) -> str:
            return connection_summary(await source.test_connection())

        return str(await self.with_source(kind, credentials, options, action, **kw))

    async def browse(self, connection: Connection) -> list[RemoteDevice]:
        creds = await run_blocking(self.store.connection_credentials, connection)

        async def action(source: Source[Any, Any]) -> list[RemoteDevice]:
            return list(await source.list_devices())

        return await self.with_source(
            connection.kind,
            creds,
            connection.options,
            action,
            connection_id=connection.id,
            label=connection.label,
        )
