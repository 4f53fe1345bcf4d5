"""The Nova client against the fake: requests as Google's app sends them, errors mapped."""

from __future__ import annotations

import pytest
from findhub_support import World
from trio.testing import MockClock

from gpshub_findhub.nova import EXECUTE_ACTION, LIST_DEVICES, NovaClient, snippet
from hub.errors import InvalidAuth, RateLimited, UpdateFailed


async def client(world: World) -> NovaClient:
    return await world.source().nova()


async def test_list_devices_decodes_the_account(world: World, gpshub_clock: MockClock) -> None:
    tag = world.fake.add_tracker("Keys", manufacturer="Chipolo", model="ONE Point")
    phone = world.fake.add_phone("Pixel")
    devices = {d.canonic_id: d for d in await (await client(world)).list_devices()}
    assert set(devices) == {tag, phone}
    assert devices[tag].name == "Keys" and devices[tag].model == "ONE Point"
    assert devices[tag].encrypted_eik and not devices[phone].encrypted_eik
    assert world.fake.requests[LIST_DEVICES] == 1


async def test_locate_is_accepted_and_parsed_by_the_fake(
    world: World, gpshub_clock: MockClock
) -> None:
    tag = world.fake.add_tracker("Keys")
    nova = await client(world)
    await nova.locate(
        canonic_id=tag,
        request_uuid="6666",
        client_uuid="bbbb",
        fcm_token="FCMTOKEN",
        high_traffic_time=1732120060,
    )
    (call,) = world.fake.locates
    assert (call.canonic_id, call.request_uuid, call.client_uuid, call.fcm_token) == (
        tag,
        "6666",
        "bbbb",
        "FCMTOKEN",
    )


async def test_a_401_refreshes_the_token_once_and_retries(
    world: World, gpshub_clock: MockClock
) -> None:
    nova = await client(world)
    await nova.list_devices()
    world.fake.fail(401)
    await nova.list_devices()
    assert world.fake.tokens_issued == 2
    assert world.fake.requests[LIST_DEVICES] == 3


async def test_an_expired_token_is_replaced(world: World, gpshub_clock: MockClock) -> None:
    nova = await client(world)
    await nova.list_devices()
    world.fake.expire_sessions()
    await nova.list_devices()
    assert world.fake.tokens_issued == 2


async def test_a_second_401_is_invalid_auth(world: World, gpshub_clock: MockClock) -> None:
    world.fake.fail(401, times=2)
    with pytest.raises(InvalidAuth):
        await (await client(world)).list_devices()
    assert world.fake.requests[LIST_DEVICES] == 2 and world.fake.tokens_issued == 2


async def test_429_is_rate_limited_with_retry_after(world: World, gpshub_clock: MockClock) -> None:
    world.fake.rate_limit(retry_after=42, path=EXECUTE_ACTION)
    nova = await client(world)
    with pytest.raises(RateLimited) as err:
        await nova.locate(
            canonic_id="x", request_uuid="r", client_uuid="c", fcm_token="t", high_traffic_time=1
        )
    assert err.value.retry_after == 42


async def test_an_html_error_page_is_update_failed_with_a_snippet(
    world: World, gpshub_clock: MockClock
) -> None:
    world.fake.platform_error(status=500)
    with pytest.raises(UpdateFailed) as err:
        await (await client(world)).list_devices()
    message = str(err.value)
    assert "HTTP 500" in message and "That’s an error" in message
    assert "<" not in message and len(message) < 200


async def test_a_body_that_is_no_protobuf_is_update_failed(
    world: World, gpshub_clock: MockClock
) -> None:
    world.fake.add_tracker("Keys")
    world.fake.malformed()
    with pytest.raises(UpdateFailed) as err:
        await (await client(world)).list_devices()
    assert "does not decode" in str(err.value)


def test_snippet_strips_tags_and_shortens() -> None:
    page = "<html><head><title>Error 502</title></head><body>" + "x" * 500 + "</body></html>"
    text = snippet(page)
    assert text.startswith("Error 502 xxx") and text.endswith("…") and len(text) == 81


async def test_the_token_endpoint_is_vetted_by_the_outbound_guard() -> None:
    """The token request does not go through httpx: the hub's policy is read from the
    client it gives the source and applied to the auth host before the request."""
    import httpx

    from gpshub_findhub.nova import outbound_policy, vet_endpoint
    from hub.errors import BadConfig
    from hub.netguard import OutboundPolicy
    from hub.runner import new_http_client
    from hub.testing import LOOPBACK

    async with new_http_client(OutboundPolicy()) as strict:
        assert outbound_policy(strict) == OutboundPolicy()
        with pytest.raises(BadConfig) as err:
            await vet_endpoint(strict, "localhost", 443, "options.auth_url")
        assert err.value.field == "options.auth_url" and "loopback" in str(err.value)
    async with new_http_client(LOOPBACK) as allowed:
        await vet_endpoint(allowed, "localhost", 443, "options.auth_url")
    async with httpx.AsyncClient() as unguarded:  # a test's own client: nothing to apply
        assert outbound_policy(unguarded) is None
