"""Online/offline status: the hub's watcher marks silent devices offline and says so."""

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
from hub.models import Role
from hub.positions import IngestItem
from hub.testing import EPOCH, make_hub


@pytest.fixture(autouse=True)
def _inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


async def test_a_silent_device_goes_offline_and_back(tmp_path: Path, autojump_clock: Any) -> None:
    clock = TrioClock(EPOCH)
    hub = make_hub(tmp_path, clock=clock, offline_timeout_s=60, status_check_s=10)
    client = hub.store.create_client("A")
    owner = hub.store.create_user("Bo", Role.MANAGER, client.id)
    device = hub.store.create_device(client.id, name="van", offline_timeout_s=120)
    other = hub.store.create_device(client.id, name="car")  # the hub's default: 60 s
    hub.store.rules.create(client.id, owner, "lost", "offline", device_ids=[device.id])
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        with hub.live.subscribe(None) as sub:
            fixes = [
                IngestItem(d.id, None, PositionFix(clock.now(), 14.6, -90.5))
                for d in (device, other)
            ]
            await hub.pipeline.submit(fixes)
            seen = [m for t in await sub.receive_batch() for m in json.loads(t)]
            assert [m["data"].get("status") for m in seen if m["type"] == "device_status"] == [
                "online",
                "online",
            ]
            await trio.sleep(75)
            assert hub.store.get_device(other.id).status == "offline"
            assert hub.store.get_device(device.id).status == "online"  # its own timeout: 120 s
            await trio.sleep(60)
            assert hub.store.get_device(device.id).status == "offline"
            messages = [m for t in await sub.receive_batch() for m in json.loads(t)]
            kinds = [
                (m["type"], m["device_id"], m["data"].get("status") or m["data"].get("message_id"))
                for m in messages
            ]
            assert kinds == [
                ("device_status", other.id, "offline"),
                ("device_status", device.id, "offline"),
                ("alert", device.id, "offline"),
            ]
            await hub.pipeline.submit(
                [IngestItem(device.id, None, PositionFix(clock.now(), 14.6, -90.5))]
            )
            assert hub.store.get_device(device.id).status == "online"
        hub.shutdown()
    (alert,) = hub.store.rules.alerts(device_id=device.id)
    assert alert.message_id == "offline" and alert.fix_time == EPOCH + timedelta(seconds=130)


async def test_alerts_reach_the_live_feed_with_their_position(tmp_path: Path) -> None:
    hub = make_hub(tmp_path, clock=TrioClock(EPOCH))
    client = hub.store.create_client("A")
    owner = hub.store.create_user("Bo", Role.MANAGER, client.id)
    device = hub.store.create_device(client.id, name="van", license_plate="P-1")
    poi = hub.store.geofences.create(
        client.id, "Yard", {"type": "Point", "coordinates": [-90.5, 14.6]}, {"radius_m": 100}
    )
    hub.store.rules.create(client.id, owner, "yard", "enteredPoi", {"poi_ids": [poi.id]})
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        with hub.live.subscribe(client.id) as sub:
            for s, lat in ((0, 14.7), (60, 14.6)):
                fix = PositionFix(EPOCH + timedelta(seconds=s), lat, -90.5)
                await hub.pipeline.submit([IngestItem(device.id, None, fix)])
            messages = []
            while len(messages) < 4:
                messages += [m for t in await sub.receive_batch() for m in json.loads(t)]
        await hub.pipeline.close()
    assert [m["type"] for m in messages] == ["position", "device_status", "position", "alert"]
    position, alert = messages[2]["data"], messages[3]["data"]
    assert position["poi_ids"] == [poi.id] and position["alerts_count"] == 1
    assert alert["message_id"] == "enteredPoi" and alert["poi_name"] == "Yard"
    assert alert["vehicle"] == "van (P-1)" and alert["id"] > 0
