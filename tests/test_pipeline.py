"""The ingest pipeline and the live feed it publishes to."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.pipeline import Pipeline, PipelineClosed
from hub.positions import CursorUpdate, IngestItem
from hub.source import Cursor
from hub.testing import EPOCH, make_hub


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


@pytest.fixture
def hub(tmp_path: Path, db_url: str) -> Any:
    """A hub on SQLite and on PostgreSQL (``db_url`` is parametrised)."""
    h = make_hub(tmp_path, clock=TrioClock(EPOCH), db_url=db_url)
    a = h.store.create_client("A")
    b = h.store.create_client("B")
    conn = h.store.create_connection(a.id, "x", "x", {})
    h.store.create_device(a.id, name="a1", connection_id=conn.id, upstream_id="1")
    h.store.create_device(a.id, name="a2", connection_id=conn.id, upstream_id="2")
    h.store.create_device(b.id, name="b1")
    return h


def item(device: int, seconds: float, **kw: Any) -> IngestItem:
    return IngestItem(device, 1, PositionFix(EPOCH + timedelta(seconds=seconds), 1.0, 2.0, **kw))


async def test_submit_returns_after_commit_and_publishes(hub: Any) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        with (
            hub.live.subscribe(client_id=None) as everyone,
            hub.live.subscribe(client_id=1, device_ids=[2]) as one,
        ):
            result = await hub.pipeline.submit(
                [item(1, 0), item(2, 0), item(3, 0), item(1, 0)],
                [CursorUpdate(1, 1, Cursor(EPOCH, {"k": 1}))],
            )
            assert len(result.inserted) == 3 and result.duplicates == 1
            assert hub.store.positions.count() == 3  # committed before submit returned
            assert hub.store.load_cursors(1)[1].state == {"k": 1}
            (frame,) = await everyone.receive_batch()  # one frame: a JSON array
            msgs = json.loads(frame)
            assert [(m["type"], m["device_id"]) for m in msgs] == [
                ("position", 1),
                ("position", 2),
                ("position", 3),
                ("device_status", 1),  # each device's first fix: it is online
                ("device_status", 2),
                ("device_status", 3),
            ]
            assert msgs[0]["data"]["fix_time"] == "2026-01-01T00:00:00Z"
            assert msgs[3]["data"]["status"] == "online"
            (frame,) = await one.receive_batch()
            assert [m["device_id"] for m in json.loads(frame)] == [2, 2]
        await hub.pipeline.close()
    assert hub.pipeline.stats.stored == 3


async def test_invalid_fixes_are_dropped_with_the_field_named(
    hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        result = await hub.pipeline.submit([item(1, 0), item(1, 1, speed_kmh=float("nan"))])
        await hub.pipeline.close()
    assert len(result.inserted) == 1 and hub.pipeline.stats.invalid == 1
    assert "speed_kmh" in caplog.text


async def test_producers_block_when_the_channel_is_full(hub: Any, autojump_clock: Any) -> None:
    pipeline = Pipeline(hub.store, hub.live, hub.clock, max_pending_batches=1)
    sent: list[int] = []

    async def produce(n: int) -> None:
        await pipeline.submit([item(1, n)])
        sent.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(produce, n)
        await trio.sleep(5)
        assert sent == []  # nobody writes yet: every producer waits
        await nursery.start(pipeline.run)
        await trio.sleep(1)
        assert sorted(sent) == [0, 1, 2]
        await pipeline.close()


async def test_shutdown_commits_the_batches_in_flight(hub: Any) -> None:
    results: list[int] = []

    async def produce() -> None:
        results.append(len((await hub.pipeline.submit([item(1, 0), item(2, 0)])).inserted))

    async with trio.open_nursery() as outer:
        outer.start_soon(hub.pipeline.run)
        async with trio.open_nursery() as producers:
            producers.start_soon(produce)
            await trio.lowlevel.checkpoint()
        await hub.pipeline.close()
    assert results == [2] and hub.store.positions.count() == 2
    with pytest.raises(PipelineClosed):
        await hub.pipeline.submit([item(1, 5)])


async def test_a_failed_transaction_fails_its_producers_and_moves_no_cursor(hub: Any) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        with pytest.raises(Exception):  # noqa: B017
            await hub.pipeline.submit(
                [item(1, 0, sensors={"bad": object()})], [CursorUpdate(1, 1, Cursor(EPOCH))]
            )
        assert hub.store.load_cursors(1) == {}
        assert len((await hub.pipeline.submit([item(1, 0)])).inserted) == 1  # and goes on
        await hub.pipeline.close()


async def test_invalid_fixes_are_logged_once_per_connection_until_clean(
    hub: Any, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="hub.pipeline")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        for n in range(3):
            await hub.pipeline.submit([item(1, n, course_deg=400.0)])
        await hub.pipeline.submit([item(1, 10)])
        await hub.pipeline.submit([item(1, 11, course_deg=400.0)])
        await hub.pipeline.close()
    levels = [(r.levelname, "valid again" in r.getMessage()) for r in caplog.records]
    assert levels == [("WARNING", False), ("INFO", True), ("WARNING", False)]
    assert hub.pipeline.stats.invalid == 4


async def test_under_load_batches_linger_into_shared_transactions(
    hub: Any, autojump_clock: Any
) -> None:
    """Several producers at once: a transaction begins at most once per ``linger_s`` and
    takes what arrived meanwhile.  A lone producer never waits."""
    pipeline = Pipeline(hub.store, hub.live, hub.clock, linger_s=0.05)

    async def produce(producer: int, count: int) -> None:
        for n in range(count):
            await pipeline.submit([item(1, 100 * producer + n)])

    async with trio.open_nursery() as nursery:
        await nursery.start(pipeline.run)
        start = trio.current_time()
        await produce(0, 5)
        assert trio.current_time() == start  # no sleep: the clock did not move
        assert pipeline.stats.transactions == 5
        async with trio.open_nursery() as producers:
            for producer in range(1, 11):
                producers.start_soon(produce, producer, 5)
        assert pipeline.stats.stored == 55
        assert pipeline.stats.transactions - 5 < 50  # they shared transactions
        assert trio.current_time() - start >= 0.05  # paced by the linger
        await pipeline.close()
