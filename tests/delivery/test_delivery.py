"""Delivery end to end: a hub, sinks, and a validating receiver on loopback."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio
from trio.testing import MockClock
from world import World, until, world

from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub.fix import PositionFix
from hub.models import SinkState, pending_t
from hub.positions import IngestItem
from hub.signing import verify
from hub.testing import EPOCH


def ordered_per_vehicle(bodies: list[Any]) -> bool:
    """Every vehicle's event times arrive in order (repeats allowed)."""
    last: dict[int, str] = {}
    for obj in bodies:
        if obj["event_time"] < last.get(obj["vid"], ""):
            return False
        last[obj["vid"]] = obj["event_time"]
    return True


def owed_rows(w: World) -> int:
    with w.hub.store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(pending_t)).scalar_one())


def json2_objects(receiver: Receiver) -> list[Any]:
    return [o for r in receiver.delivered("/json2") for o in r.body[1]]


async def test_locations_and_alerts_arrive_in_every_format(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        w.sink(url + "/json1", headers={"Authorization": "Bearer relay-token"})
        w.sink(url + "/json2", format="startrack-json2")
        alerts = w.alerts_sink(url + "/alerts", signing=True)
        w.ignition_rule()
        await nursery.start(w.hub.run)
        stored = await w.feed(40)
        n_alerts = len(w.hub.store.rules.alerts(client_id=w.client))
        assert stored == 120 and n_alerts > 0
        await until(
            lambda: (
                receiver.count("/json1") == stored
                and len(json2_objects(receiver)) == stored
                and receiver.count("/alerts") == n_alerts
            )
        )
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert receiver.problems() == []
    json1 = [r.body for r in receiver.delivered("/json1")]
    assert ordered_per_vehicle(json1) and ordered_per_vehicle(json2_objects(receiver))
    ids = [r.webhook_id for r in receiver.received()]
    assert len(ids) == len(set(ids)), "no duplicates when nothing crashed"
    assert {o["vid"] for o in json1} == set(w.devices)
    first = next(o for o in json1 if o["vid"] == w.devices[0])
    assert first["device_id"] == 358741050302480 and first["license_plate"] == "P-000ABC"
    assert first["system_time"].endswith("-06:00") and first["ip"] == "198.51.100.7"
    assert all(r.headers["authorization"] == "Bearer relay-token" for r in receiver.requests
               if r.path == "/json1")  # fmt: skip
    secret = w.hub.store.sinks.secrets_of(w.hub.store.sinks.get(alerts))["signing"][0]["secret"]
    for r in receiver.requests:
        if r.path == "/alerts":
            verify(secret, r.headers, r.raw, now=float(r.headers["webhook-timestamp"]))
        else:
            assert "webhook-signature" not in r.headers
    stats = w.stats(alerts)
    assert stats == {"pending": 0, "delivered": n_alerts, "failed": 0, "dead_letters": 0}


async def test_every_device_gets_its_own_numeric_device_id_and_no_nulls(
    tmp_path: Path, clock: MockClock
) -> None:
    """Devices without an IMEI, with one IMEI between two, a text IMEI or a long
    numeric ident, no plate and no remote id, and fixes from an unknown address: the
    strict receiver finds no null and no device_id used twice, in JSON 1 and JSON 2."""
    w = world(tmp_path, devices=1)  # device 0: IMEI 358741050302480, plate, remote id
    store = w.hub.store
    odd = {
        "no imei": None,
        "same imei": "358741050302480",
        "text imei": "SN-77/A",
        "long ident": "89883030000012345678",
    }
    for name, imei in odd.items():
        w.devices.append(store.create_device(w.client, name=name, imei=imei).id)
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        w.sink(url + "/json1")
        w.sink(url + "/json2", format="startrack-json2")
        await nursery.start(w.hub.run)
        items = [
            IngestItem(d, None, PositionFix(EPOCH + timedelta(seconds=10 * i), 14.6, -90.5))
            for d in w.devices
            for i in range(3)
        ]
        stored = len((await w.hub.pipeline.submit(items)).inserted)
        await until(lambda: receiver.count("/json1") == stored == len(json2_objects(receiver)))
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert stored == 15 and receiver.problems() == []
    first, *others = w.devices
    assert receiver.device_ids == {
        first: 358741050302480,
        **{vid: 10**15 + vid for vid in others},
    }
    json1 = [r.body for r in receiver.delivered("/json1")]
    assert {(o["ip"], o["port"]) for o in json1} == {("", -1)}
    assert {o["remote_id"] for o in json1 if o["vid"] in others} == {""}


async def test_a_receiver_that_is_down_gets_everything_once_it_is_back(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path, sink_failing_after_s=300)
    with trio.socket.socket() as probe:  # a port nothing listens on, for now
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    sink = w.sink(url + "/json1")
    batched = w.sink(url + "/json2", format="startrack-json2")
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        await nursery.start(w.hub.run)
        stored = await w.feed(30)
        await trio.sleep(300)
        owed = owed_rows(w)  # the first round's messages, taken before it went down
        stored += await w.feed(30)
        await trio.sleep(300)  # ten minutes down in all
        row = w.hub.store.sinks.get(sink)
        assert row.state == SinkState.FAILING and "ConnectError" in (row.last_error or "")
        assert w.stats(sink)["pending"] == stored and w.stats(batched)["pending"] == stored
        assert owed_rows(w) == owed  # what arrives during an outage waits in the outbox
        came_back = trio.current_time()
        await nursery.start(lambda task_status: serve_receiver(receiver, port=port,
                                                               task_status=task_status))  # fmt: skip
        await until(
            lambda: receiver.count("/json1") >= stored and len(json2_objects(receiver)) >= stored
        )
        assert trio.current_time() - came_back <= 300 + 30  # within one probe interval
        await until(lambda: w.stats(sink)["pending"] == 0 and w.stats(batched)["pending"] == 0)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    ids = [r.webhook_id for r in receiver.received("/json1")]
    assert len(ids) == len(set(ids)) == stored
    assert ordered_per_vehicle([r.body for r in receiver.received("/json1")])
    assert w.hub.store.sinks.get(sink).state == SinkState.OK


async def test_500_is_retried_on_the_schedule(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path, devices=1)
    receiver = Receiver()
    receiver.status = 500
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(1)
        await until(lambda: receiver.count() == 2)
        receiver.status = 200
        await until(lambda: w.stats(sink)["delivered"] == 1)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    gap = receiver.times[1] - receiver.times[0]
    assert 4.0 <= gap <= 6.5  # 5 s ± 20 %
    assert receiver.received()[0].webhook_id == receiver.received()[-1].webhook_id
    assert w.stats(sink) == {"pending": 0, "delivered": 1, "failed": 2, "dead_letters": 0}


async def test_429_waits_for_retry_after(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path, devices=1)
    receiver = Receiver()
    receiver.status, receiver.retry_after = 429, "120"
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(1)
        await until(lambda: receiver.count() == 1)
        receiver.status, receiver.retry_after = 200, None
        await until(lambda: w.stats(sink)["delivered"] == 1)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert 120 <= receiver.times[1] - receiver.times[0] <= 130


async def test_a_hanging_receiver_times_out_and_holds_up_no_other_sink(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    slow, fast = Receiver(), Receiver()
    slow.hang = trio.Event()
    async with trio.open_nursery() as nursery:
        slow_url = await nursery.start(serve_receiver, slow)
        fast_url = await nursery.start(serve_receiver, fast)
        hanging = w.sink(slow_url + "/json1", timeout_s=5)
        w.sink(fast_url + "/json2", format="startrack-json2")
        await nursery.start(w.hub.run)
        started = trio.current_time()
        for _ in range(5):  # ingest is not held up either
            await w.feed(10)
        assert trio.current_time() - started < 1
        await until(lambda: len(json2_objects(fast)) == 150, timeout=10)
        await until(
            lambda: "no answer within 5 s" in (w.hub.store.sinks.get(hanging).last_error or "")
        )
        slow.hang.set()
        slow.hang = None
        await until(lambda: w.stats(hanging)["pending"] == 0)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert {r.webhook_id for r in slow.delivered("/json1")} == {
        r.webhook_id for r in slow.received("/json1")
    }
    assert len({r.webhook_id for r in slow.received("/json1")}) == 150


async def test_a_refused_message_is_a_dead_letter_and_the_rest_go_on(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    refused_vid = w.devices[1]
    receiver.decide = lambda path, body: 422 if body and body["vid"] == refused_vid else None
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(5)
        await until(lambda: w.stats(sink)["pending"] == 0)
        stats = w.stats(sink)
        assert stats["delivered"] == 10 and stats["dead_letters"] == 5
        assert stats["failed"] == 5  # a refused request is a failed one
        (letter, *_) = w.hub.store.sinks.dead_letters(sink)
        assert letter.status == 422 and "receiver answers 422" in letter.excerpt
        assert letter.device_id == refused_vid and letter.delivery_id.startswith("msg_")
        receiver.decide = None
        assert (
            w.hub.store.sinks.resend_dead(w.hub.store.sinks.get(sink), None, w.hub.clock.now()) == 5
        )
        w.hub.delivery.notify()
        await until(lambda: w.stats(sink)["delivered"] == 15)
        assert w.stats(sink)["dead_letters"] == 0
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    again = [r.body for r in receiver.delivered("/json1") if r.body["vid"] == refused_vid]
    assert len(again) == 5 and ordered_per_vehicle(again)


async def test_one_devices_failing_message_blocks_only_that_device(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    stuck = w.devices[0]
    receiver.decide = lambda path, body: 503 if body and body["vid"] == stuck else None
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        for _ in range(3):
            await w.feed(4)
            await trio.sleep(30)
        others = [o for o in w.devices if o != stuck]
        delivered = [r.body["vid"] for r in receiver.delivered("/json1")]
        assert sorted(set(delivered)) == sorted(others) and len(delivered) == 24, (
            len(delivered),
            [
                (r.body["vid"], r.body["event_time"], r.webhook_id)
                for r in receiver.received("/json1")
            ],
        )
        tried = {r.webhook_id for r in receiver.received("/json1") if r.body["vid"] == stuck}
        assert len(tried) == 1  # only its first message was tried: the others wait behind it
        receiver.decide = None
        await until(lambda: w.stats(sink)["pending"] == 0, timeout=3600)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    mine = [r.body for r in receiver.delivered("/json1") if r.body["vid"] == stuck]
    assert len(mine) == 12 and ordered_per_vehicle(mine)
    assert w.hub.store.sinks.get(sink).state == SinkState.OK


async def test_a_batch_in_flight_is_sent_again_with_the_same_id_after_a_restart(
    tmp_path: Path, clock: MockClock
) -> None:
    w = world(tmp_path)
    receiver = Receiver()
    receiver.hang = trio.Event()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json2", format="startrack-json2")
        await nursery.start(w.hub.run)
        await w.feed(5)
        await until(lambda: receiver.count() == 1)
        await w.feed(5)  # arrives while the first batch is in flight
        w.hub.shutdown()
        await trio.sleep(1)
        assert w.hub.store.sinks.get(sink).inflight_upto is not None
        receiver.hang.set()
        receiver.hang = None
        await nursery.start(w.restart().run)
        await until(lambda: w.stats(sink)["pending"] == 0)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    first, again, *rest = receiver.received()
    assert first.webhook_id == again.webhook_id and first.body == again.body
    assert first.body[0] == 15
    assert sum(r.body[0] for r in rest) == 15


async def test_the_guard_refuses_a_private_receiver(tmp_path: Path, clock: MockClock) -> None:
    w = world(tmp_path, devices=1, outbound_allow_networks=())
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        sink = w.sink(url + "/json1")
        await nursery.start(w.hub.run)
        await w.feed(1)
        await until(lambda: w.hub.store.sinks.get(sink).last_error is not None)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert "refused to connect to 127.0.0.1" in (w.hub.store.sinks.get(sink).last_error or "")
    assert receiver.count() == 0


@pytest.mark.parametrize("format", ["startrack-json1", "startrack-json2"])
async def test_replay_sends_a_past_range_to_one_sink(
    tmp_path: Path, format: str, clock: MockClock
) -> None:
    w = world(tmp_path, devices=2)
    receiver, other = Receiver(), Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        other_url = await nursery.start(serve_receiver, other)
        path = "/json1" if format == "startrack-json1" else "/json2"
        sink = w.sink(url + path, format=format)
        w.sink(other_url + path, format=format)
        await nursery.start(w.hub.run)
        await w.feed(10)
        await until(lambda: w.stats(sink)["pending"] == 0)
        row = w.hub.store.sinks.get(sink)
        queued = w.hub.store.sinks.replay(
            row, EPOCH, EPOCH + timedelta(seconds=50), [w.devices[0]], w.hub.clock.now()
        )
        assert queued == 5
        w.hub.delivery.notify()
        await until(lambda: w.stats(sink)["delivered"] == 25)
        await trio.sleep(5)
        w.hub.shutdown()
        nursery.cancel_scope.cancel()
    assert w.stats(sink)["delivered"] == 25 and other.count() == receiver.count() - (
        5 if format == "startrack-json1" else 1
    )
