"""The live feed's fan-out (``hub.livefeed``): frames once per tick, shared frames,
selections, the byte bound and the ``latest`` mode; under trio's MockClock."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import trio

from hub.livefeed import (
    FeedMode,
    FrameFormat,
    LiveFeed,
    LiveMessage,
    SubscriberLagging,
)


def pos(client: int, device: int, n: int) -> LiveMessage:
    body = {"type": "position", "device_id": device, "data": {"n": n}}
    return LiveMessage(client, device, json.dumps(body, separators=(",", ":")), "position")


def alert(client: int, device: int, n: int) -> LiveMessage:
    body = {"type": "alert", "device_id": device, "data": {"n": n}}
    return LiveMessage(client, device, json.dumps(body, separators=(",", ":")), "alert")


def decode(frames: list[str]) -> list[tuple[str, int, int]]:
    """(type, device, n) of every message in array frames."""
    return [
        (m["type"], m["device_id"], m["data"]["n"]) for text in frames for m in json.loads(text)
    ]


async def test_one_frame_per_tick_shared_by_every_subscriber_of_everything(
    autojump_clock: Any,
) -> None:
    feed = LiveFeed(tick_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with feed.subscribe(1) as a, feed.subscribe(1) as b, feed.subscribe(None) as admin:
            feed.publish([pos(1, 10, 0)])  # after a quiet spell: routed at once
            assert decode(await a.receive_batch()) == [("position", 10, 0)]
            assert decode(await b.receive_batch()) == [("position", 10, 0)]
            for n in range(1, 4):  # within one tick
                feed.publish([pos(1, 10, n), pos(2, 20, n)])
                await trio.sleep(0.01)
            first_a, first_b = await a.receive_batch(), await b.receive_batch()
            assert decode(first_a) == [("position", 10, n) for n in range(1, 4)]
            assert first_a[0] is first_b[0]  # the same string: built once for both
            assert len(decode(await admin.receive_batch())) == 1 + 6
        nursery.cancel_scope.cancel()


async def test_messages_wait_at_most_one_tick(autojump_clock: Any) -> None:
    feed = LiveFeed(tick_s=0.05)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with feed.subscribe(1) as sub:
            feed.publish([pos(1, 10, 0)])
            await sub.receive_batch()
            sent = trio.current_time()
            feed.publish([pos(1, 10, 1)])
            await sub.receive_batch()
            waited = trio.current_time() - sent
            assert 0 < waited <= 0.05 + 1e-9
        nursery.cancel_scope.cancel()


async def test_a_selection_gets_its_devices_in_order_and_nothing_else() -> None:
    feed = LiveFeed(tick_s=0)  # no ticker: routed at once
    with feed.subscribe(1, device_ids=[11, 12]) as few, feed.subscribe(2) as other:
        feed.publish([pos(1, 10, 0), pos(1, 11, 0), pos(1, 12, 0), pos(1, 11, 1), pos(2, 11, 9)])
        got = decode(await few.receive_batch())
        assert sorted(got) == [("position", 11, 0), ("position", 11, 1), ("position", 12, 0)]
        assert [n for _, d, n in got if d == 11] == [0, 1]  # each device's in order
        assert decode(await other.receive_batch()) == [("position", 11, 9)]
        few.set_devices([10])
        feed.publish([pos(1, 11, 2), pos(1, 10, 1)])
        assert decode(await few.receive_batch()) == [("position", 10, 1)]


async def test_a_large_selection_is_filtered_too() -> None:
    feed = LiveFeed(tick_s=0)
    with feed.subscribe(1, device_ids=range(1000)) as many:
        feed.publish([pos(1, 5, 0), pos(1, 5000, 0)])  # fewer devices heard than selected
        assert decode(await many.receive_batch()) == [("position", 5, 0)]


async def test_the_backlog_is_bounded_in_bytes_and_publishing_never_waits() -> None:
    feed = LiveFeed(tick_s=0)
    size = len(pos(1, 1, 0).text) + 1
    with feed.subscribe(None, max_pending_bytes=3 * size) as slow, feed.subscribe(None) as fast:
        feed.publish([pos(1, 1, 0), pos(1, 1, 1)])  # fits
        assert not slow.lagging
        for n in range(2, 5):
            feed.publish([pos(1, 1, n)])
        with pytest.raises(SubscriberLagging, match="bytes"):
            await slow.receive_batch()
        assert slow.dropped == 3  # the two pending and the one that did not fit
        assert len(decode(await fast.receive_batch())) == 5
    assert feed.lagging_dropped == 1 and feed.subscriber_count == 0


async def test_single_frames_for_clients_that_ask() -> None:
    feed = LiveFeed(tick_s=0)
    with feed.subscribe(1, frames=FrameFormat.SINGLE) as sub:
        feed.publish([pos(1, 1, 0), pos(1, 2, 0)])
        feed.publish([pos(1, 1, 1)])
        texts = await sub.receive_batch()
        assert [json.loads(t)["data"]["n"] for t in texts] == [0, 0, 1]


async def test_a_subscriber_behind_by_several_ticks_gets_them_in_one_frame() -> None:
    feed = LiveFeed(tick_s=0)
    with feed.subscribe(1) as sub:
        for n in range(3):
            feed.publish([pos(1, 1, n)])
        (frame,) = await sub.receive_batch()
        assert decode([frame]) == [("position", 1, n) for n in range(3)]


async def test_latest_mode_sends_the_newest_position_per_device_per_interval(
    autojump_clock: Any,
) -> None:
    feed = LiveFeed(tick_s=0.05)
    received: list[tuple[float, list[tuple[str, int, int]]]] = []

    async def read(sub: Any) -> None:
        while True:
            got = decode(await sub.receive_batch())
            received.append((trio.current_time(), got))

    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with feed.subscribe(1, mode=FeedMode.LATEST, max_rate_s=1.0) as sub:
            nursery.start_soon(read, sub)
            start = trio.current_time()
            for n in range(100):  # 5 s of a busy fleet: 2 devices, 20 positions/s each
                feed.publish([pos(1, 1, n), pos(1, 2, n)])
                if n == 50:
                    feed.publish([alert(1, 1, n)])
                await trio.sleep(0.05)
            await trio.sleep(2)
            positions = [(t, m) for t, got in received for m in got if m[0] == "position"]
            # at most one position per device per second, always the newest at the time
            for device in (1, 2):
                times = [t for t, m in positions if m[1] == device]
                assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(times))
                assert [m[2] for _, m in positions if m[1] == device][-1] == 99
            assert len(positions) <= 2 * 7
            # other messages are not held back for the interval
            (when,) = [t for t, got in received if ("alert", 1, 50) in got]
            assert when - start < 50 * 0.05 + 0.2
            # a held position is never older than the interval when it goes
            assert sub.pending_bytes == 0 and not sub.latest
        nursery.cancel_scope.cancel()


async def test_latest_mode_never_falls_behind(autojump_clock: Any) -> None:
    """A socket that reads slowly in latest mode holds one position per device, however
    busy the fleet: never dropped."""
    feed = LiveFeed(tick_s=0.05)
    size = len(pos(1, 1, 0).text)
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with feed.subscribe(1, max_pending_bytes=50 * size, mode=FeedMode.LATEST) as sub:
            for n in range(2000):
                feed.publish([pos(1, d, n) for d in range(10)])
                await trio.sleep(0.01)
            assert not sub.lagging and len(sub.latest) == 10
            got = decode(await sub.receive_batch())
            assert sorted(got) == [("position", d, 1999) for d in range(10)]
        nursery.cancel_scope.cancel()


async def test_switching_modes_forgets_devices_no_longer_watched() -> None:
    feed = LiveFeed(tick_s=0)
    with feed.subscribe(1, mode=FeedMode.LATEST, max_rate_s=1.0) as sub:
        feed.publish([pos(1, 1, 0), pos(1, 2, 0)])
        sub.set_devices([2], FeedMode.LATEST, 1.0)
        assert decode(await sub.receive_batch()) == [("position", 2, 0)]
        sub.set_devices(None, FeedMode.ALL)
        feed.publish([pos(1, 1, 1)])
        assert decode(await sub.receive_batch()) == [("position", 1, 1)]
