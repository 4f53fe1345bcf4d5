"""Test connection, browse and every fault switch of the fake, through the plugin."""

from __future__ import annotations

import socket

import httpx
import pytest
import trio
from flespi_world import World
from trio.testing import MockClock

from gpshub_flespi.client import FlespiClient
from gpshub_flespi.testing import DEFAULT_TOKEN
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.testing import device_refs as refs


async def test_connection_summary(world: World, gpshub_clock: MockClock) -> None:
    for i in range(3):
        world.fake.add_unit(f"unit {i}")
    summary = await world.source().test_connection()
    assert summary == "flespi account 123456 (token 'gpshub'): 3 devices"
    assert world.fake.requests == {"/auth/info": 1, "/gw/devices": 1}


async def test_connection_with_a_wrong_token(world: World, gpshub_clock: MockClock) -> None:
    wrong = "W" * 64
    with pytest.raises(InvalidAuth) as err:
        await world.source({"token": wrong}).test_connection()
    assert "401" in str(err.value)
    assert wrong not in str(err.value)
    assert world.fake.request_count == 1


async def test_a_token_without_device_access(world: World, gpshub_clock: MockClock) -> None:
    world.fake.deny_access()
    with pytest.raises(InvalidAuth) as err:
        await world.source().test_connection()
    assert "gw/devices" in str(err.value)
    with pytest.raises(InvalidAuth):
        await world.source().poll(refs(["4200001"]), {})


async def test_an_unreachable_server(world: World, gpshub_clock: MockClock) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = world.source(base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(CannotConnect) as err:
        await source.test_connection()
    assert f"127.0.0.1:{port}" in str(err.value)
    with pytest.raises(CannotConnect):
        await source.poll(refs(["4200001"]), {})


async def test_the_token_goes_in_the_header_never_in_a_url(
    world: World, gpshub_clock: MockClock
) -> None:
    unit = world.fake.add_unit("u")
    world.fake.add_fix(unit, world.now(), 1.0, 1.0)
    source = world.source()
    await source.test_connection()
    await source.list_devices()
    await source.poll(refs([unit]), {})
    assert world.fake.urls
    assert not any(DEFAULT_TOKEN in url for url in world.fake.urls)
    assert set(world.fake.authorizations) == {f"FlespiToken {DEFAULT_TOKEN}"}


async def test_browse_lists_every_device_with_imei_and_plate(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    a = fake.add_unit("Truck 07", imei="356307042441013", plate="ABC-1234")
    b = fake.add_unit("Van", metadata={"license_plate": "V-2"})
    c = fake.add_unit("Bike", metadata={"registration_plate": "B 3", "colour": "red"})
    d = fake.add_unit("   ")
    devices = {r.upstream_id: r for r in await world.source().list_devices()}
    assert list(devices) == [a, b, c, d]
    assert (devices[a].name, devices[a].imei, devices[a].license_plate) == (
        "Truck 07",
        "356307042441013",
        "ABC-1234",
    )
    assert (devices[b].imei, devices[b].license_plate) == (None, "V-2")
    assert devices[c].license_plate == "B 3"
    assert devices[d].name == f"flespi device {d}"
    assert devices[a].extra == {"device_type_id": 744, "connected": True}
    (query,) = [u for u in fake.urls if u.startswith("/gw/devices/all")]
    assert "fields=id%2Cname%2Cconfiguration%2Cmetadata%2Cdevice_type_id%2Cconnected" in query


async def test_rate_limit_gives_retry_after(world: World, gpshub_clock: MockClock) -> None:
    world.fake.rate_limit(times=2, retry_after=42)
    source = world.source()
    with pytest.raises(RateLimited) as err:
        await source.test_connection()
    assert err.value.retry_after == 42
    with pytest.raises(RateLimited):
        await source.poll(refs(["4200001"]), {})
    assert await source.test_connection()  # the budget is back


async def test_rate_limit_without_retry_after(world: World, gpshub_clock: MockClock) -> None:
    world.fake.rate_limit(retry_after=None)
    with pytest.raises(RateLimited) as err:
        await world.source().list_devices()
    assert err.value.retry_after is None


async def test_the_per_minute_budget(world: World, gpshub_clock: MockClock) -> None:
    world.fake.requests_per_minute = 3
    source = world.source()
    for _ in range(3):
        await source.list_devices()
    with pytest.raises(RateLimited) as err:
        await source.list_devices()
    assert err.value.retry_after is not None and 0 < err.value.retry_after <= 60
    await trio.sleep(err.value.retry_after)
    await source.list_devices()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_cannot_connect(
    world: World, gpshub_clock: MockClock, status: int
) -> None:
    world.fake.fail(status)
    with pytest.raises(CannotConnect) as err:
        await world.source().list_devices()
    assert str(status) in str(err.value)
    assert await world.source().list_devices() == []


async def test_malformed_answers_are_update_failed(world: World, gpshub_clock: MockClock) -> None:
    unit = world.fake.add_unit("u")
    world.fake.malformed(times=2)
    with pytest.raises(UpdateFailed):
        await world.source().poll(refs([unit]), {})
    with pytest.raises(UpdateFailed):
        await world.source().test_connection()
    await world.source().poll(refs([unit]), {})


async def test_slow_answers_time_out_as_cannot_connect(
    world: World, gpshub_clock: MockClock
) -> None:
    world.fake.slow(60)
    started = trio.current_time()
    with pytest.raises(CannotConnect) as err:
        await world.source().test_connection()
    assert "in time" in str(err.value)
    assert trio.current_time() - started < 60
    world.fake.slow(0)
    assert await world.source().test_connection()


async def test_a_revoked_token_mid_run(world: World, gpshub_clock: MockClock) -> None:
    unit = world.fake.add_unit("u")
    source = world.source()
    await source.poll(refs([unit]), {})
    world.fake.expire_sessions()
    before = world.fake.request_count
    with pytest.raises(InvalidAuth):
        await source.poll(refs([unit]), {})
    assert world.fake.request_count == before + 1  # one refusal, no retry loop


async def test_a_bad_request_quotes_flespi_reason(world: World, gpshub_clock: MockClock) -> None:
    unit = world.fake.add_unit("u")
    client = FlespiClient(world.http, DEFAULT_TOKEN, base_url=world.url)
    with pytest.raises(UpdateFailed) as err:
        await client.messages([unit], {"from": 0, "limit": 5})
    assert "400" in str(err.value)
    assert "'limit' is not allowed" in str(err.value)
    with pytest.raises(UpdateFailed, match="filter"):
        await client.messages([unit], {"filter": "server.timestamp >="})


async def test_a_blocked_base_url_is_bad_config() -> None:
    from hub.netguard import OutboundPolicy, guarded_client

    async with guarded_client(OutboundPolicy()) as http:
        client = FlespiClient(http, "t", base_url="http://127.0.0.1:9")
        with pytest.raises(BadConfig) as err:
            await client.devices()
    assert err.value.field == "options.base_url"


async def test_the_default_base_url_is_flespi_io() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": []})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        await FlespiClient(http, "secret").devices()
    assert str(seen[0].url).startswith("https://flespi.io/gw/devices/all?fields=")
    assert seen[0].headers["authorization"] == "FlespiToken secret"
