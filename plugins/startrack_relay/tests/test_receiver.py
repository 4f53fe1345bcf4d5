"""The recording receiver on loopback, and the plugin's sinks delivering to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import orjson
import pytest
import trio

from gpshub_startrack_relay import (
    StartrackAlert,
    StartrackAlerts,
    StartrackJson1,
    StartrackJson2,
    StartrackRelay,
)
from gpshub_startrack_relay.testing import Receiver, serve_receiver
from hub import Delivery, DeliveryFailed, DeliveryRejected
from hub.signing import generate_secret, verify
from hub.sink import SinkContext

MakeItem = Callable[..., dict[str, Any]]


@pytest.fixture
async def served() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        yield receiver, url
        nursery.cancel_scope.cancel()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def test_records_a_json1_post(
    served: tuple[Receiver, str], http: httpx.AsyncClient, make_location: MakeItem
) -> None:
    receiver, url = served
    assert url.startswith("http://127.0.0.1:")
    body = StartrackJson1().encode([make_location()])
    response = await http.post(
        f"{url}/json1",
        content=body,
        headers={"content-type": "application/json", "webhook-id": "msg_1"},
    )
    assert response.status_code == 200 and response.text == "ok"
    (got,) = receiver.received("/json1")
    webhook_id, parsed, problems = got
    assert webhook_id == "msg_1"
    assert parsed == orjson.loads(body)
    assert problems == [] == receiver.problems()
    assert receiver.count() == 1 and receiver.counts == {"/json1": 1, "/json2": 0, "/alerts": 0}
    (request,) = receiver.requests
    assert request.raw == body and request.status == 200
    assert request.headers["content-type"] == "application/json"


async def test_records_problems_of_bad_bodies(
    served: tuple[Receiver, str], http: httpx.AsyncClient
) -> None:
    receiver, url = served
    await http.post(f"{url}/json2", content=b"[2, []]")
    await http.post(f"{url}/alerts", content=b"not json")
    assert receiver.received("/json2")[0].problems == [
        "[0] n is 2 but the list holds 0 objects",
        "[1] the list of objects is empty",
    ]
    (alert,) = receiver.received("/alerts")
    assert alert.body is None and alert.problems[0].startswith("the body is not JSON")
    assert receiver.problems()[0] == "/json2 #1: [0] n is 2 but the list holds 0 objects"
    assert receiver.problems()[-1].startswith("/alerts #1: the body is not JSON")


async def test_refuses_null_where_startrack_types_a_value(
    served: tuple[Receiver, str], http: httpx.AsyncClient, make_location: MakeItem
) -> None:
    receiver, url = served
    obj = orjson.loads(StartrackJson1().encode([make_location()]))
    await http.post(f"{url}/json1", content=orjson.dumps({**obj, "ip": None, "device_id": None}))
    assert receiver.problems() == [
        "/json1 #1: device_id must be an integer, not null",
        "/json1 #1: ip must be text, not null",
    ]


async def test_checks_device_ids_across_the_run(
    served: tuple[Receiver, str], http: httpx.AsyncClient, make_location: MakeItem
) -> None:
    """One device_id per vid, and no device_id for two vids, whatever the format."""
    receiver, url = served

    def item(vid: int, imei: str) -> dict[str, Any]:
        return make_location(device_id=vid, device={"id": vid, "imei": imei})

    await http.post(f"{url}/json1", content=StartrackJson1().encode([item(1, "11")]))
    await http.post(f"{url}/json2", content=StartrackJson2().encode([item(2, "22")]))
    assert receiver.problems() == [] and receiver.device_ids == {1: 11, 2: 22}
    await http.post(f"{url}/json1", content=StartrackJson1().encode([item(1, "12")]))
    await http.post(f"{url}/json2", content=StartrackJson2().encode([item(3, "22")]))
    assert receiver.problems() == [
        "/json1 #2: vid 1 came with device_id 11 before, now 12",
        "/json2 #2: [1][0]: device_id 22 is vid 2's, not vid 3's",
    ]


async def test_failure_switches(served: tuple[Receiver, str], http: httpx.AsyncClient) -> None:
    receiver, url = served
    receiver.status, receiver.retry_after = 429, "7"
    response = await http.post(f"{url}/json1", content=b"{}")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.text == "receiver answers 429"
    receiver.status, receiver.retry_after = 400, None
    response = await http.post(f"{url}/json1", content=b"{}")
    assert response.status_code == 400 and "retry-after" not in response.headers
    receiver.status = 200
    await http.post(f"{url}/json1", content=b"{}")
    assert receiver.count("/json1") == 3 and len(receiver.delivered("/json1")) == 1
    assert [r.status for r in receiver.requests] == [429, 400, 200]


async def test_hang_until_released(served: tuple[Receiver, str], http: httpx.AsyncClient) -> None:
    receiver, url = served
    receiver.hang = release = trio.Event()
    answers: list[int] = []

    async def post() -> None:
        answers.append((await http.post(f"{url}/alerts", content=b"{}")).status_code)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(post)
        with trio.fail_after(5):
            await receiver.wait_for(1, "/alerts")
        await trio.sleep(0.05)
        assert answers == []  # recorded on arrival, not answered yet
        release.set()
    assert answers == [200]


async def test_hang_for_a_delay_times_the_client_out(
    served: tuple[Receiver, str], http: httpx.AsyncClient
) -> None:
    receiver, url = served
    receiver.hang = 2.0
    with pytest.raises(httpx.TimeoutException):
        await http.post(f"{url}/json1", content=b"{}", timeout=0.2)
    assert receiver.count("/json1") == 1


async def test_stopped_receiver_refuses_connections(http: httpx.AsyncClient) -> None:
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        url = await nursery.start(serve_receiver, receiver)
        nursery.cancel_scope.cancel()
    with pytest.raises(httpx.ConnectError):
        await http.post(f"{url}/json1", content=b"{}")


# -- the plugin's sinks, delivering to the receiver -----------------------------------------
def context(http: httpx.AsyncClient, **secrets: Any) -> SinkContext:
    return SinkContext(sink_id=1, client_id=1, http=http, secrets=secrets)


async def test_relay_delivers_signed_json2(
    served: tuple[Receiver, str], http: httpx.AsyncClient, make_location: MakeItem
) -> None:
    receiver, url = served
    secret = generate_secret()
    sink = StartrackRelay(
        StartrackRelay.Settings(url=f"{url}/json2"),
        context(http, signing=[{"secret": secret, "until": None}], headers={"x-api-key": "k"}),
    )
    body = StartrackJson2().encode([make_location(), make_location(speed_kmh=15.0)])
    await sink.deliver(Delivery(id="out_41", body=body, items=2))
    (request,) = receiver.requests
    assert request.received.problems == []
    assert request.received.webhook_id == "out_41" and request.received.body[0] == 2
    assert request.headers["x-api-key"] == "k"
    verify(secret, request.headers, request.raw)  # raises if the signature does not match


async def test_alerts_sink_maps_answers_to_outcomes(
    served: tuple[Receiver, str], http: httpx.AsyncClient, make_alert_entered: MakeItem
) -> None:
    receiver, url = served
    sink = StartrackAlerts(StartrackAlerts.Settings(url=f"{url}/alerts"), context(http))
    delivery = Delivery(id="alert_512", body=StartrackAlert().encode([make_alert_entered()]))
    receiver.status, receiver.retry_after = 503, "30"
    with pytest.raises(DeliveryFailed) as failed:
        await sink.deliver(delivery)
    assert failed.value.retry_after == 30.0
    receiver.status, receiver.retry_after = 422, None
    with pytest.raises(DeliveryRejected):
        await sink.deliver(delivery)
    receiver.status = 200
    await sink.deliver(delivery)
    assert [r.webhook_id for r in receiver.received("/alerts")] == ["alert_512"] * 3
    assert receiver.problems() == []
