"""The hub's Prometheus metrics (``/metrics``).

Each ``Hub`` has its own ``CollectorRegistry``: several hubs in one process (tests) do
not share a metric, and nothing lands in the client library's global registry.

Two kinds of values:

* **Measured as they happen** (histograms and counters kept in memory, reset by a
  restart): ingest batch latency, each connection's polls by outcome and their
  latency, each sink's request latency and the messages it dead-lettered.
* **Read at scrape time**, cheaply: ingest counts and live clients from memory; per
  connection and per sink figures from a handful of grouped queries whatever the
  number of connections and sinks (their state, positions received, messages
  delivered, failed requests, owed, dead letters) and the outbox size.  Delivered and
  failed are the sink row's own counters: they agree with the API's ``stats`` and
  survive restarts.

Labels are connection and sink ids (with their kind), never devices: the number of
series grows with configuration, not with traffic.  A deleted connection's or sink's
series go away (at once when the running hub deletes it, else at the next scrape).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from hub.models import ConnectionState, SinkState, connections_t, outbox_t, sinks_t

if TYPE_CHECKING:
    from hub.core import Hub

# no ``…_created`` series next to every counter and histogram: they double the output and
# Prometheus does not need them (a process-wide switch of the client library)
disable_created_metrics()

POLL_OUTCOMES = ("ok", "idle", "failed", "timeout", "rate_limited", "invalid_auth", "bad_config")
"""``outcome`` of ``gpshub_polls_total``: ``idle`` is a round with no device to poll."""

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass(slots=True)
class _Connection:
    id: int
    kind: str
    state: str
    positions: int


@dataclass(slots=True)
class _Sink:
    id: int
    kind: str
    state: str
    probing: bool
    delivered: int
    failed: int
    owed: int = 0
    dead: int = 0


@dataclass(slots=True)
class _Snapshot:
    """What the database says at scrape time."""

    connections: list[_Connection] = field(default_factory=list)
    sinks: list[_Sink] = field(default_factory=list)
    outbox: int = 0


class HubMetrics:
    """A hub's metrics: call ``observe_*`` as things happen, ``render`` to scrape."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        self.ingest_batch_seconds = Histogram(
            "gpshub_ingest_batch_seconds",
            "Time to store one ingest transaction (the batches waiting, in one go)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.polls = Counter(
            "gpshub_polls",
            "Polls of each connection by outcome (ok, idle, failed, timeout, rate_limited, "
            "invalid_auth, bad_config)",
            ("connection_id", "kind", "outcome"),
            registry=r,
        )
        self.poll_seconds = Histogram(
            "gpshub_poll_duration_seconds",
            "Time of each connection's poll of its platform",
            ("connection_id", "kind"),
            buckets=_POLL_BUCKETS,
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "gpshub_sink_delivery_duration_seconds",
            "Time of each sink's requests to its receiver (answered or not)",
            ("sink_id", "kind"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.dead_lettered = Counter(
            "gpshub_sink_dead_lettered",
            "Messages each sink made dead letters (refused, or out of attempts)",
            ("sink_id", "kind"),
            registry=r,
        )
        r.register(_ScrapeCollector(self))
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._labels: dict[tuple[str, int], set[tuple[Any, tuple[str, ...]]]] = {}
        self._snapshot = _Snapshot()
        self.last_render_s = 0.0
        self.url: str | None = None  # where metrics_listen serves them, once it does

    # -- as things happen (the trio thread) ----------------------------------------------
    def observe_poll(
        self, connection_id: int, kind: str, outcome: str, seconds: float | None
    ) -> None:
        labels = (str(connection_id), kind)
        self._use(("connection", connection_id), self.polls, (*labels, outcome)).inc()
        if seconds is not None:
            self._use(("connection", connection_id), self.poll_seconds, labels).observe(seconds)

    def observe_delivery(self, sink_id: int, kind: str, seconds: float) -> None:
        labels = (str(sink_id), kind)
        self._use(("sink", sink_id), self.delivery_seconds, labels).observe(seconds)

    def observe_dead_letters(self, sink_id: int, kind: str, count: int) -> None:
        if count:
            labels = (str(sink_id), kind)
            self._use(("sink", sink_id), self.dead_lettered, labels).inc(count)

    def _use(self, owner: tuple[str, int], metric: Any, labels: tuple[str, ...]) -> Any:
        with self._lock:
            self._labels.setdefault(owner, set()).add((metric, labels))
        return metric.labels(*labels)

    def forget_connection(self, connection_id: int) -> None:
        """Drop a deleted connection's series."""
        self._forget(("connection", connection_id))

    def forget_sink(self, sink_id: int) -> None:
        """Drop a deleted sink's series."""
        self._forget(("sink", sink_id))

    def _forget(self, owner: tuple[str, int]) -> None:
        with self._lock:
            used = self._labels.pop(owner, set())
        for metric, labels in used:
            metric.remove(*labels)

    # -- scraping (a worker thread) -------------------------------------------------------
    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (the body and its content type) in the format ``accept`` asks
        for (Prometheus text by default, OpenMetrics when asked).  Blocking: it queries
        the database, so call it on a worker thread."""
        encoder, content_type = choose_encoder(accept or "")
        with self._render_lock:
            started = time.perf_counter()
            self._snapshot = self._read()
            self._drop_deleted(self._snapshot)
            body = encoder(self.registry)
            self.last_render_s = time.perf_counter() - started
        return body, content_type

    def _read(self) -> _Snapshot:
        store = self.hub.store
        owed_dead = store.sinks.owed_and_dead()
        c, s = connections_t, sinks_t
        with store.engine.connect() as conn:
            connections = [
                _Connection(
                    int(i),
                    kind,
                    state if enabled else ConnectionState.DISABLED,
                    int(positions or 0),
                )
                for i, kind, state, enabled, positions in conn.execute(
                    sa.select(c.c.id, c.c.kind, c.c.state, c.c.enabled, c.c.positions_received)
                )
            ]
            sinks = [
                _Sink(
                    int(i),
                    kind,
                    state if enabled else SinkState.PAUSED,
                    probe_at is not None,
                    int(delivered or 0),
                    int(failed or 0),
                    *owed_dead.get(int(i), (0, 0)),
                )
                for i, kind, state, enabled, probe_at, delivered, failed in conn.execute(
                    sa.select(
                        s.c.id,
                        s.c.kind,
                        s.c.state,
                        s.c.enabled,
                        s.c.probe_at,
                        s.c.delivered,
                        s.c.failed_attempts,
                    )
                )
            ]
            outbox = int(
                conn.execute(sa.select(sa.func.count()).select_from(outbox_t)).scalar_one()
            )
        return _Snapshot(connections, sinks, outbox)

    def _drop_deleted(self, snap: _Snapshot) -> None:
        """Series of connections and sinks deleted behind the hub's back (another process)."""
        alive = {("connection", c.id) for c in snap.connections}
        alive |= {("sink", s.id) for s in snap.sinks}
        with self._lock:
            gone = [owner for owner in self._labels if owner not in alive]
        for owner in gone:
            self._forget(owner)


class _ScrapeCollector(Collector):
    """The values read at scrape time (see the module's docstring)."""

    def __init__(self, metrics: HubMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        from hub import __version__  # not at the top: hub/__init__ imports this module

        hub = self.metrics.hub
        snap = self.metrics._snapshot
        stats = hub.pipeline.stats

        info = GaugeMetricFamily("gpshub_build_info", "The hub's version", labels=("version",))
        info.add_metric((__version__,), 1)
        yield info
        yield CounterMetricFamily(
            "gpshub_positions_ingested",
            "Positions stored: new fixes (duplicates and invalid fixes not counted)",
            value=stats.stored,
        )
        yield CounterMetricFamily(
            "gpshub_positions_duplicate",
            "Fixes dropped because the device already had a fix at that time",
            value=stats.duplicates,
        )
        rejected = CounterMetricFamily(
            "gpshub_positions_rejected",
            "Fixes not stored: invalid (a field out of range) or of an unknown device",
            labels=("reason",),
        )
        rejected.add_metric(("invalid",), stats.invalid)
        rejected.add_metric(("unknown_device",), stats.unknown_device)
        yield rejected
        yield CounterMetricFamily(
            "gpshub_ingest_transactions_failed",
            "Ingest transactions that failed (their sources retry)",
            value=stats.failed_transactions,
        )
        yield GaugeMetricFamily(
            "gpshub_live_clients",
            "Open live feed WebSockets",
            value=hub.live.subscriber_count,
        )
        yield CounterMetricFamily(
            "gpshub_live_clients_dropped",
            "Live feed subscribers disconnected for falling behind",
            value=hub.live.lagging_dropped,
        )
        yield GaugeMetricFamily(
            "gpshub_outbox_messages",
            "Messages in the delivery outbox (pruned once every sink is done with them)",
            value=snap.outbox,
        )

        conn_labels = ("connection_id", "kind")
        state = GaugeMetricFamily(
            "gpshub_connection_state",
            "Each connection's current state, as a label (the value is 1)",
            labels=(*conn_labels, "state"),
        )
        received = CounterMetricFamily(
            "gpshub_connection_positions_received",
            "Positions each connection delivered to the store (kept across restarts)",
            labels=conn_labels,
        )
        for c in snap.connections:
            labels = (str(c.id), c.kind)
            state.add_metric((*labels, c.state), 1.0)
            received.add_metric(labels, c.positions)
        yield state
        yield received

        sink_labels = ("sink_id", "kind")
        families = {
            "state": GaugeMetricFamily(
                "gpshub_sink_state",
                "Each sink's current state, as a label (the value is 1)",
                labels=(*sink_labels, "state"),
            ),
            "probing": GaugeMetricFamily(
                "gpshub_sink_probing",
                "1 while the sink's receiver is down and only probed",
                labels=sink_labels,
            ),
            "delivered": CounterMetricFamily(
                "gpshub_sink_delivered",
                "Messages (items) each sink delivered (kept across restarts)",
                labels=sink_labels,
            ),
            "failed": CounterMetricFamily(
                "gpshub_sink_failed",
                "Failed requests of each sink, refusals included (kept across restarts)",
                labels=sink_labels,
            ),
            "owed": GaugeMetricFamily(
                "gpshub_sink_owed",
                "Messages each sink still has to deliver: new ones and those being retried",
                labels=sink_labels,
            ),
            "dead": GaugeMetricFamily(
                "gpshub_sink_dead_letters",
                "Dead letters each sink keeps (until re-sent or discarded)",
                labels=sink_labels,
            ),
        }
        for s in snap.sinks:
            labels = (str(s.id), s.kind)
            families["state"].add_metric((*labels, s.state), 1.0)
            families["probing"].add_metric(labels, 1.0 if s.probing else 0.0)
            families["delivered"].add_metric(labels, s.delivered)
            families["failed"].add_metric(labels, s.failed)
            families["owed"].add_metric(labels, s.owed)
            families["dead"].add_metric(labels, s.dead)
        yield from families.values()


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` for IPv6) as a host and a port (0: any free port);
    ``ValueError`` says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(
            f"setting 'metrics_listen': {text!r} is not HOST:PORT (e.g. 127.0.0.1:9464)"
        )
    return host, int(port)
