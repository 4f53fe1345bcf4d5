"""``FakeFlespi`` itself, over loopback HTTP: what it emulates and its switches."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import trio
from flespi_world import World
from trio.testing import MockClock

from gpshub_flespi.testing import DEFAULT_TOKEN

AUTH = {"Authorization": f"FlespiToken {DEFAULT_TOKEN}"}


async def get(
    world: World, path: str, headers: dict[str, str] | None = None, **params: Any
) -> httpx.Response:
    query = {k: json.dumps(v) if k == "data" else v for k, v in params.items()}
    return await world.http.get(
        f"{world.url}{path}", params=query, headers=AUTH if headers is None else headers
    )


def ids(response: httpx.Response) -> list[int]:
    return [item["id"] for item in response.json()["result"]]


async def test_the_token_is_checked(world: World, gpshub_clock: MockClock) -> None:
    assert (await get(world, "/auth/info", headers={})).status_code == 401
    wrong = await get(world, "/auth/info", headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"})
    assert wrong.status_code == 401
    assert wrong.json()["errors"][0]["reason"]
    ok = await get(world, "/auth/info")
    assert ok.status_code == 200
    assert ok.json()["result"][0]["cid"] == 123456
    world.fake.expire_sessions()
    assert (await get(world, "/auth/info")).status_code == 401
    world.fake.set_token(DEFAULT_TOKEN)
    world.fake.deny_access()
    assert (await get(world, "/auth/info")).status_code == 200
    assert (await get(world, "/gw/devices/all")).status_code == 403


async def test_device_selectors_and_fields(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    a = int(fake.add_unit("Truck 1", imei="356307042441013", plate="A-1"))
    b = int(fake.add_unit("Truck 2", imei="356307099999999"))
    c = int(fake.add_unit("Van", imei="861230043907626"))
    assert ids(await get(world, "/gw/devices/all")) == [a, b, c]
    assert ids(await get(world, f"/gw/devices/{c},{a}")) == [c, a]
    assert ids(await get(world, "/gw/devices/configuration.ident=3563070*")) == [a, b]
    assert ids(await get(world, "/gw/devices/name=Truck*")) == [a, b]
    assert ids(await get(world, "/gw/devices/{metadata.plate=='A-1'}")) == [a]
    assert (await get(world, "/gw/devices/abc")).status_code == 400
    one = await get(world, f"/gw/devices/{a}", fields="id,name,metadata")
    assert one.json() == {"result": [{"id": a, "name": "Truck 1", "metadata": {"plate": "A-1"}}]}
    full = (await get(world, f"/gw/devices/{b}")).json()["result"][0]
    assert full["configuration"]["ident"] == "356307099999999"
    assert full["connected"] is True and full["messages_ttl"] == 31536000
    missing = await get(world, "/gw/devices/99")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["id"] == 99


async def test_unknown_ids_in_a_multi_selector(world: World, gpshub_clock: MockClock) -> None:
    a = int(world.fake.add_unit("a"))
    partial = await get(world, f"/gw/devices/{a},99/messages", data={})
    assert partial.status_code == 200
    assert partial.json()["errors"] == [{"id": 99, "code": 7, "reason": "device 99 not found"}]
    world.fake.missing_mode = "404"
    assert (await get(world, f"/gw/devices/{a},99/telemetry/all")).status_code == 404


async def test_messages_window_count_reverse_fields_and_merge(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    a, b = fake.add_unit("a"), fake.add_unit("b")
    base = round(world.now()) - 1000
    for t in (10.5, 20.0, 30.0):
        fake.add_fix(a, base + t, 1.0, 1.0)
    for t in (15.0, 20.0, 25.0):
        fake.add_fix(b, base + t, 2.0, 2.0)

    async def times(**data: Any) -> list[tuple[float, int]]:
        response = await get(world, f"/gw/devices/{a},{b}/messages", data=data)
        assert response.status_code == 200, response.text
        return [(m["timestamp"] - base, m["device.id"]) for m in response.json()["result"]]

    ia, ib = int(a), int(b)
    merged = [(10.5, ia), (15.0, ib), (20.0, ia), (20.0, ib), (25.0, ib), (30.0, ia)]
    assert await times() == merged
    assert await times(**{"from": base + 15.0, "to": base + 25.0}) == merged[1:5]  # inclusive ends
    assert await times(**{"from": base + 10.6, "count": 2}) == merged[1:3]
    assert await times(reverse=True, count=2) == [(30.0, ia), (25.0, ib)]
    assert await times(filter=f"device.id=={ib} && position.latitude > 1") == [
        (15.0, ib),
        (20.0, ib),
        (25.0, ib),
    ]
    response = await get(
        world, f"/gw/devices/{a}/messages", data={"fields": "timestamp,ident,position.speed"}
    )
    assert response.json()["result"][0] == {"timestamp": base + 10.5, "position.speed": 0.0}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"limit": 5}, "'limit' is not allowed"),
        ({"from": "yesterday"}, "data.from"),
        ({"count": 0}, "data.count"),
        ({"count": 1.5}, "data.count"),
        ({"reverse": "yes"}, "data.reverse"),
        ({"filter": "speed >"}, "data.filter"),
        ({"filter": 5}, "data.filter"),
        ([1, 2], "JSON object"),
    ],
)
async def test_messages_schema_errors(
    world: World, gpshub_clock: MockClock, data: Any, reason: str
) -> None:
    unit = world.fake.add_unit("a")
    response = await get(world, f"/gw/devices/{unit}/messages", data=data)
    assert response.status_code == 400
    assert reason in response.json()["errors"][0]["reason"]


async def test_bad_json_and_lenient_keys(world: World, gpshub_clock: MockClock) -> None:
    unit = world.fake.add_unit("a")
    world.fake.add_fix(unit, world.now(), 1.0, 1.0)
    url = f"{world.url}/gw/devices/{unit}/messages"
    bad = await world.http.get(url, params={"data": "{from:1"}, headers=AUTH)
    assert bad.status_code == 400
    world.fake.strict_keys = False
    ignored = await get(world, f"/gw/devices/{unit}/messages", data={"limit": 5})
    assert ignored.status_code == 200 and len(ignored.json()["result"]) == 1


async def test_ttl_removes_messages_but_not_telemetry(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("short", messages_ttl=60)
    now = world.now()
    fake.add_fix(unit, now - 120, 1.0, 1.0, params={"fuel.level": 40})
    fake.add_fix(unit, now - 30, 1.5, 1.0)
    fake.add_fix(unit, now - 90, 9.0, 9.0, params={"fuel.level": 10})  # late: older
    listed = (await get(world, f"/gw/devices/{unit}/messages", data={})).json()["result"]
    assert [m["timestamp"] for m in listed] == [now - 30]
    telemetry = (await get(world, f"/gw/devices/{unit}/telemetry/all")).json()["result"][0]
    assert telemetry["id"] == int(unit)
    values = telemetry["telemetry"]
    assert values["position.latitude"] == {"value": 1.5, "ts": now - 30}
    assert values["fuel.level"] == {"value": 10, "ts": now - 90}  # newest per parameter
    assert values["position"]["value"]["latitude"] == 1.5
    some = await get(world, f"/gw/devices/{unit}/telemetry/position.latitude,fuel.level")
    assert set(some.json()["result"][0]["telemetry"]) == {"position.latitude", "fuel.level"}
    await trio.sleep(60)
    assert (await get(world, f"/gw/devices/{unit}/messages", data={})).json()["result"] == []


async def test_a_held_unit_uploads_its_black_box_on_release(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Truck")
    t0 = world.now()
    fake.add_fix(unit, t0, 1.0, 1.0)
    fake.hold(unit)  # out of coverage
    for k in range(1, 4):
        await trio.sleep(60)
        fake.add_fix(unit, world.now(), 1.0 + k, 1.0)
    window = {"from": t0 - 1, "to": world.now() + 1}
    held = await get(world, f"/gw/devices/{unit}/messages", data=window)
    assert [m["timestamp"] for m in held.json()["result"]] == [t0]
    telemetry = await get(world, f"/gw/devices/{unit}/telemetry/all")
    assert telemetry.json()["result"][0]["telemetry"]["timestamp"]["value"] == t0
    await trio.sleep(600)
    uploaded = fake.release(unit)  # back in coverage: all at once, received now
    assert len(uploaded) == 3
    after = (await get(world, f"/gw/devices/{unit}/messages", data=window)).json()["result"]
    assert [m["timestamp"] for m in after] == [t0, t0 + 60, t0 + 120, t0 + 180]
    assert [m["server.timestamp"] for m in after[1:]] == [world.now()] * 3
    fake.add_fix(unit, world.now(), 9.0, 9.0)  # no longer held
    assert fake.message_count(unit) == 5


async def test_fault_switches(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    fake.fail(503)
    assert (await get(world, "/auth/info")).status_code == 503
    fake.rate_limit(retry_after=12)
    limited = await get(world, "/auth/info")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "12")
    fake.malformed()
    broken = await get(world, "/auth/info")
    assert broken.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        broken.json()
    fake.slow(5)
    started = trio.current_time()
    assert (await get(world, "/auth/info")).status_code == 200
    assert trio.current_time() - started >= 5
    fake.slow(0)
    fake.requests_per_minute = 2
    await trio.sleep(60 - world.now() % 60)  # the start of a minute
    codes = [(await get(world, "/auth/info")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert fake.requests == {"/auth/info": 7}
    assert fake.request_count == 7
