"""Test connection and browsing against the fake on loopback, and the URL settings."""

from __future__ import annotations

import httpx
import pytest
import trio
from trio.testing import MockClock
from wialon_support import T0, MakeSource

from gpshub_wialon import WialonSource
from gpshub_wialon import protocol as p
from hub.errors import BadConfig, CannotConnect, InvalidAuth
from hub.netguard import OutboundPolicy
from hub.runner import new_http_client
from hub.source import MemoryStateStore, check_upstream_urls
from hub.testing import LOOPBACK, Served, source_context


async def test_connection_summary_names_the_user_and_counts_units(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    for i in range(27):
        served.fake.add_unit(f"Unit {i}")
    assert await make_source().test_connection() == "Wialon account 'fleet': 27 units"
    assert served.fake.requests == {p.LOGIN: 1, p.SEARCH_ITEMS: 1}


async def test_connection_checks_the_token_even_with_a_saved_session(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    state = MemoryStateStore()
    served.fake.add_unit("One")
    await make_source(state=state).list_devices()
    served.fake.revoke_token()  # the saved session still works, the token does not
    with pytest.raises(InvalidAuth, match="error 8"):
        await make_source(state=state).test_connection()


async def test_a_wrong_token_is_invalid_auth_without_the_token(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    token = "A" * 72
    with pytest.raises(InvalidAuth) as info:
        await make_source(credentials={"token": token, "server_url": served.url}).test_connection()
    assert token not in str(info.value) and "User Settings" in str(info.value)
    assert served.fake.requests == {p.LOGIN: 1}


async def test_error_4_on_login_is_bad_config_of_the_token(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    served.fake.login_error = p.ERR_INVALID_INPUT
    with pytest.raises(BadConfig) as info:
        await make_source().test_connection()
    assert info.value.field == "credentials.token"


async def test_an_unreachable_server_is_cannot_connect(gpshub_clock: MockClock) -> None:
    with trio.socket.socket() as probe:  # a port nothing listens on
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with new_http_client(LOOPBACK) as http:
        ctx = source_context(
            WialonSource, {"token": "x" * 72, "server_url": f"http://127.0.0.1:{port}"}, http
        )
        with pytest.raises(CannotConnect, match="cannot reach Wialon"):
            await WialonSource(ctx).test_connection()


async def test_a_blocked_address_is_bad_config_of_the_url_field(
    served: Served, gpshub_clock: MockClock
) -> None:
    async with new_http_client() as http:  # the default policy: public addresses only
        creds = served.fake.credentials(served.url)
        ctx = source_context(WialonSource, creds, http)
        with pytest.raises(BadConfig) as info:
            await WialonSource(ctx).test_connection()
        assert info.value.field == "credentials.server_url"
        ctx = source_context(
            WialonSource,
            {"token": creds["token"]},
            http,
            options={"base_url": served.url},
        )
        with pytest.raises(BadConfig) as info:
            await WialonSource(ctx).test_connection()
        assert info.value.field == "options.base_url"


async def test_base_url_option_wins_over_server_url(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    served.fake.add_unit("One")
    source = make_source(
        credentials={"token": served.fake.token, "server_url": "https://wialon.invalid"},
        base_url=served.url + "/",
    )
    assert source.client.url == served.url + "/wialon/ajax.html"
    assert (await source.test_connection()).endswith(": 1 unit")


async def test_a_path_that_is_no_wialon_api_is_bad_config(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    source = make_source(base_url=served.url + "/somewhere")
    with pytest.raises(BadConfig) as info:
        await source.test_connection()
    assert info.value.field == "options.base_url" and "404" in info.value.reason


async def test_requests_carry_the_session_in_the_body_not_the_url(
    served: Served, gpshub_clock: MockClock
) -> None:
    seen: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request)

    async with new_http_client(LOOPBACK) as http:
        http.event_hooks["request"].append(record)
        ctx = source_context(WialonSource, served.fake.credentials(served.url), http)
        source = WialonSource(ctx)
        await source.test_connection()
        await source.aclose()
    assert [r.url.path for r in seen] == [p.AJAX_PATH] * 3
    assert all(r.url.query == b"" for r in seen)
    assert all(r.method == "POST" for r in seen)
    bodies = [r.content.decode() for r in seen]
    assert "svc=token%2Flogin" in bodies[0] and "sid=" not in bodies[0]
    assert "sid=" in bodies[1] and "svc=core%2Fsearch_items" in bodies[1]
    assert "svc=core%2Flogout" in bodies[2]  # an unsaved connection logs out on close
    assert served.fake.sessions == {}


async def test_browse_lists_every_unit_with_imei_plate_and_extra(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    truck = fake.add_unit(
        "Truck", imei="356307042441013", plate="1234 AB-7", profile={"brand": "MAN"}
    )
    fake.add_fix(truck, T0 - 60, 1.0, 1.0)
    bare = fake.add_unit("Bare")
    hidden = fake.add_unit("Hidden")
    fake.deny(hidden)
    devices = {d.upstream_id: d for d in await make_source().list_devices()}
    assert set(devices) == {truck, bare}
    one = devices[truck]
    assert (one.name, one.imei, one.license_plate) == ("Truck", "356307042441013", "1234 AB-7")
    assert one.extra == {
        "brand": "MAN",
        "hardware_type": 9,
        "last_message_at": "2025-12-31T23:59:00+00:00",
    }
    assert (devices[bare].imei, devices[bare].license_plate) == (None, None)
    assert fake.executed[p.SEARCH_ITEMS] == 1


async def test_browse_pages_when_the_server_cuts_the_answer(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.search_page_size = 2
    ids = [fake.add_unit(f"Unit {i}") for i in range(5)]
    devices = await make_source().list_devices()
    assert [d.upstream_id for d in devices] == ids
    assert fake.requests[p.SEARCH_ITEMS] == 3


def test_the_hub_guard_checks_both_url_fields() -> None:
    creds = WialonSource.parse_credentials({"token": "t", "server_url": "http://10.1.2.3/"})
    opts = WialonSource.parse_options({"base_url": "http://192.168.1.1:8080"})
    assert creds.server_url == "http://10.1.2.3"
    with pytest.raises(BadConfig) as info:
        check_upstream_urls(OutboundPolicy(), creds, WialonSource.parse_options({}))
    assert info.value.field == "credentials.server_url"
    public = WialonSource.parse_credentials({"token": "t"})
    with pytest.raises(BadConfig) as info:
        check_upstream_urls(OutboundPolicy(), public, opts)
    assert info.value.field == "options.base_url"
    check_upstream_urls(OutboundPolicy.from_strings(("10.0.0.0/8", "192.168.0.0/16")), creds, opts)
