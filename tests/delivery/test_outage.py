"""A receiver that is down: probing, restarts while down, Retry-After, the sink's state.

The hub runs under the mock clock; ``test_crash.py`` kills a real hub process during an
outage.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
from test_delivery import ordered_per_vehicle
from trio.testing import MockClock
from world import World, until, world

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub import delivery
from hub.delivery import PROBE_MAX_S, SCHEDULE_S
from hub.models import SinkState, pending_t


def max_attempts(w: World) -> int:
    with w.hub.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(pending_t.c.attempts))).scalar() or 0)


def owed(w: World, *sinks: int) -> int:
    return sum(w.stats(s)["pending"] for s in sinks)


async def test_a_restart_while_the_receiver_is_down_goes_on_probing(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    receiver.status = 503
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        relay = w.sink(url + "/json1")
        batched = w.sink(url + "/json2", format="startrack-json2")
        alerts = w.alerts_sink(url + "/alerts")
        w.ignition_rule()
        await nursery.start(w.hub.run)
        await w.feed(12)
        await trio.sleep(700)  # down for a while: the probes are five minutes apart by now
        assert max_attempts(w) == 1, "a probe is no attempt of the message it carries"
        rows = [w.hub.store.sinks.get(s) for s in (relay, batched, alerts)]
        assert all(r.probe_at is not None and r.probe_interval_s == PROBE_MAX_S for r in rows)
        w.hub.shutdown()
        await trio.sleep(1)
        await nursery.start(w.restart().run)
        await trio.sleep(120)
        assert max_attempts(w) == 1
        receiver.status = 200
        back = trio.current_time()
        await until(lambda: owed(w, relay, batched, alerts) == 0, timeout=3 * 3600)
        # everything owed goes out at the first probe, not on its retry schedule
        assert trio.current_time() - back <= PROBE_MAX_S + 10
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert receiver.problems() == []
    assert ordered_per_vehicle([r.body for r in receiver.delivered("/json1")])
    assert len(receiver.delivered("/alerts")) == len(w.hub.store.rules.alerts(client_id=w.client))
    assert all(w.hub.store.sinks.get(s).state == SinkState.OK for s in (relay, batched, alerts))
    assert all(w.hub.store.sinks.get(s).probe_at is None for s in (relay, batched, alerts))


async def test_an_outage_longer_than_the_retry_schedule_loses_nothing(
    tmp_path: Path, clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fewer wake-ups in four days of mock time (each costs the clock's jump threshold)
    monkeypatch.setattr(delivery, "PROBE_MAX_S", 4 * 3600.0)
    monkeypatch.setattr(delivery.DeliveryService, "PRUNE_EVERY_S", 4 * 3600.0)
    w = world(tmp_path)
    receiver = Receiver()
    receiver.status = 502
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        relay = w.sink(url + "/json1", timeout_s=5)
        await nursery.start(w.hub.run)
        stored = await w.feed(3)
        await trio.sleep(sum(SCHEDULE_S) * 1.3)  # the schedule would have given up by now
        assert w.stats(relay)["dead_letters"] == 0 and max_attempts(w) == 1
        receiver.status = 200
        await until(lambda: owed(w, relay) == 0, timeout=5 * 3600, step=60)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert len({r.webhook_id for r in receiver.delivered("/json1")}) == stored


async def test_probes_wait_for_retry_after(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    receiver.status, receiver.retry_after = 429, "60"
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        relay = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(2)
        await until(lambda: receiver.count() == 3)  # the first round: one per device
        await trio.sleep(900)
        times = receiver.times[2:]
        assert len(times) >= 5
        assert all(b - a >= 60 for a, b in itertools.pairwise(times)), times
        assert w.hub.store.sinks.get(relay).probe_at is not None
        receiver.status, receiver.retry_after = 200, None
        await until(lambda: owed(w, relay) == 0)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()


async def test_a_sink_is_retrying_from_its_first_failure(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path, devices=1, sink_failing_after_s=300)
    receiver = Receiver()
    receiver.status = 503
    sinks = w.hub.store.sinks
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        relay = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(1)
        await until(lambda: sinks.get(relay).last_attempt_at is not None)
        row = sinks.get(relay)
        assert row.state == SinkState.RETRYING and row.failing_since is not None
        await trio.sleep(400)
        assert sinks.get(relay).state == SinkState.FAILING
        receiver.status = 200
        await until(lambda: sinks.get(relay).state == SinkState.OK, timeout=3600)
        assert sinks.get(relay).failing_since is None
        receiver.status = 500
        await w.feed(1)
        await until(lambda: sinks.get(relay).state == SinkState.RETRYING)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert w.stats(relay)["failed"] == receiver.count() - len(receiver.delivered())
