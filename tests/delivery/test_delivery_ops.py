"""Delivery as an operator sees it: each sink's state changes in the log, and its
figures in ``/metrics`` (delivered, failed, owed, dead letters, latency)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families
from trio.testing import MockClock
from world import until, world

from gpshub_startrack_relay.testing import Receiver, serve_receiver


def series(hub: object, name: str, sink: int) -> float | None:
    text = hub.metrics.render()[0].decode()  # type: ignore[attr-defined]
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels.get("sink_id") == str(sink):
                return s.value
    return None


async def test_sink_state_changes_are_logged_once_each(
    tmp_path: Path, clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    w = world(tmp_path, devices=1)
    receiver = Receiver()
    caplog.set_level(logging.INFO, logger="hub.delivery")
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(1)
        await until(lambda: w.stats(sink)["delivered"] == 1)
        receiver.status = 500
        await w.feed(1)
        await until(lambda: receiver.count() >= 4)  # a few retries: logged once
        receiver.status = 200
        await until(lambda: w.stats(sink)["delivered"] == 2)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    changes = [
        (r.levelname, r.state, r.previous_state)
        for r in caplog.records
        if getattr(r, "sink_id", None) == sink and hasattr(r, "previous_state")
    ]
    assert changes == [
        ("INFO", "ok", "new"),
        ("WARNING", "retrying", "ok"),
        ("INFO", "ok", "retrying"),
    ]
    texts = [r.getMessage() for r in caplog.records if getattr(r, "sink_id", None) == sink]
    assert any("first delivery succeeded" in t for t in texts)
    assert any("500" in t and "retrying" in t for t in texts)


async def test_sink_metrics(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    refused = w.devices[1]
    receiver.decide = lambda path, body: 422 if body and body["vid"] == refused else None
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        paused = w.hub.store.sinks.create(
            w.client,
            name="paused",
            kind="startrack-relay",
            format="startrack-json1",
            purpose="locations",
            settings={"url": url + "/json1"},
            enabled=False,
        ).id
        await nursery.start(w.hub.run)
        await w.feed(4)
        await until(lambda: w.stats(sink)["pending"] == 0)
        hub = w.hub
        assert series(hub, "gpshub_sink_delivered_total", sink) == 8
        assert series(hub, "gpshub_sink_failed_total", sink) == 4  # the refusals
        assert series(hub, "gpshub_sink_dead_letters", sink) == 4
        assert series(hub, "gpshub_sink_dead_lettered_total", sink) == 4
        assert series(hub, "gpshub_sink_delivery_duration_seconds_count", sink) == 12
        assert series(hub, "gpshub_sink_owed", sink) == 0
        assert series(hub, "gpshub_sink_owed", paused) == 12  # waits for its enabling
        w.hub.store.sinks.discard_dead(sink, None)
        assert series(hub, "gpshub_sink_dead_letters", sink) == 0
        w.hub.store.sinks.delete(sink)
        await w.hub.delivery.reload(sink)
        assert series(hub, "gpshub_sink_delivered_total", sink) is None
        assert series(hub, "gpshub_sink_delivery_duration_seconds_count", sink) is None
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
