"""The outbox cap drops messages a sink still owes, delivery goes on without them, and
retention keeps the positions of the messages still owed until they are delivered."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
from trio.testing import MockClock
from world import World, until, world

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub import delivery
from hub.models import outbox_t


def outbox_ids(w: World) -> list[int]:
    with w.hub.store.engine.connect() as conn:
        return [int(i) for (i,) in conn.execute(sa.select(outbox_t.c.id).order_by(outbox_t.c.id))]


async def test_the_outbox_cap_and_retention_while_a_receiver_is_down(
    tmp_path: Path,
    clock: MockClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # fewer wake-ups in a day of mock time (each costs the clock's jump threshold)
    monkeypatch.setattr(delivery, "PROBE_MAX_S", 4 * 3600.0)
    monkeypatch.setattr(delivery.DeliveryService, "PRUNE_EVERY_S", 3600.0)
    w = world(tmp_path, outbox_max_owed=10, retention_batch_rows=7)
    store = w.hub.store
    store.update_client(w.client, positions_retention_days=1)
    receiver = Receiver()
    receiver.status = 503
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        relay = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        assert await w.feed(10) == 30  # 30 messages, ten fixes of three devices
        ids = outbox_ids(w)
        assert len(ids) == 30
        await trio.sleep(120)  # the first housekeeping pass (a minute in) applies the cap
        assert outbox_ids(w) == ids[20:]
        # a day later, positions past the retention go but for those still owed, which
        # include each device's latest
        await trio.sleep(86400 + 3600)
        assert store.positions.count() == 10
        receiver.status = 200
        await until(lambda: w.stats(relay)["pending"] == 0, timeout=5 * 3600, step=60)
        # delivered, the messages leave the outbox, and the next pass takes their positions
        await trio.sleep(2 * 3600 + 120)
        assert store.positions.count() == 3
        assert {r["device_id"] for r in store.positions.latest()} == set(w.devices)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert receiver.problems() == []
    hub_id = store.sinks.hub_id()
    delivered = {r.webhook_id for r in receiver.delivered("/json1")}
    assert delivered == {f"msg_{hub_id}_{i}" for i in ids[20:]}
    warnings = [r.getMessage() for r in caplog.records
                if r.levelno == logging.WARNING and r.name == "hub.housekeeping"]  # fmt: skip
    assert len(warnings) == 1
    assert warnings[0].startswith(f"client #{w.client}: dropped the 20 oldest location messages")
    assert f"(#{relay})" in warnings[0]
