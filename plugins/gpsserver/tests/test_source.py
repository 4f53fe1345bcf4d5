"""The source against a served ``FakeGpsServer``, with both APIs (``mode``): connection,
browse, ranges, late messages, request counts, faults, and secrets kept out of logs."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import httpx
import pytest
import trio
from gpsserver_support import T0, MakeSource, Served, history_calls
from trio.testing import MockClock

from gpshub_gpsserver import GpsServerSource
from gpshub_gpsserver.testing import FakeGpsServer
from gpshub_gpsserver.tokenapi import TOKEN_KEY
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM
from hub.clock import TrioClock
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.logging_setup import install_redaction
from hub.source import Cursor, MemoryStateStore
from hub.testing import device_refs as refs
from hub.testing import fix_times, source_context


async def test_connection_says_which_api_it_used(
    served: Served, make_source: MakeSource, mode: str
) -> None:
    for n in range(3):
        served.fake.add_unit(f"Truck {n}")
    summary = await make_source().test_connection()
    which = "API key" if mode == "key" else "email login"
    assert summary == f"GPS-Server.net ({which}) at {served.url.removeprefix('http://')}: 3 objects"


async def test_wrong_credentials_are_invalid_auth_without_the_secret(
    served: Served, make_source: MakeSource, mode: str
) -> None:
    bad = {**served.creds(mode)}
    bad["api_key" if mode == "key" else "password"] = "not-the-secret-123"
    with pytest.raises(InvalidAuth) as err:
        await make_source(credentials=bad).test_connection()
    assert "not-the-secret-123" not in str(err.value)
    assert served.fake.request_count == 1  # one refused call: no retry loop


async def test_an_unreachable_server_cannot_connect(
    gpshub_http: httpx.AsyncClient, mode: str
) -> None:
    creds = {"api_key": "k"} if mode == "key" else {"email": "a@b.c", "password": "p"}
    server = {"server_url": "http://127.0.0.1:9"}
    ctx = source_context(GpsServerSource, {**creds, **server}, gpshub_http)
    with pytest.raises(CannotConnect):
        await GpsServerSource(ctx).test_connection()


async def test_the_hosted_default_and_the_base_url_override(
    served: Served, make_source: MakeSource, mode: str
) -> None:
    creds = {k: v for k, v in served.creds(mode).items() if k != "server_url"}
    source = make_source(credentials=creds)
    assert source.api.transport.base == "https://gps-server.net"
    overridden = make_source(credentials=creds, base_url=served.url)
    assert "0 objects" in await overridden.test_connection()


async def test_browse_lists_names_imeis_plates_and_models(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    imei = fake.add_unit("Truck 07", imei="356307042441013", plate="ABC-1234", model="Actros")
    (device,) = await make_source().list_devices()
    assert (device.upstream_id, device.imei, device.name) == (imei, imei, "Truck 07")
    assert device.license_plate == "ABC-1234"
    assert device.extra["model"] == "Actros" and device.extra["device"] == "FMB920"


async def test_ranges_have_no_gaps_and_no_repeats_at_the_boundary(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    source = make_source()
    emitted: list[float] = []
    cursor = Cursor()
    for _ in range(6):
        now = trio.current_time()
        base = T0 + now
        fake.add_fix(imei, base - 20, 1.0, 2.0)
        fake.add_fix(imei, base, 1.0, 2.0)  # exactly at "now": the next range starts here
        result = await source.poll(refs([imei]), {imei: cursor})
        emitted += fix_times(result, imei)
        cursor = result.cursors.get(imei, cursor)
        await trio.sleep(30)
    stored = sorted(t / 1 for t in fake.objects[imei].times)
    assert emitted == stored
    assert len(emitted) == len(set(emitted)) == 12


async def test_a_late_back_dated_message_is_picked_up_once(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    for k in range(5):
        fake.add_fix(imei, T0 - 100 + 20 * k, 1.0, 2.0)
    source = make_source()
    first = await source.poll(refs([imei]), {})
    cursor = first.cursors[imei]
    await trio.sleep(30)
    fake.add_fix(imei, T0 - 50, 9.0, 9.0)  # uploaded late, older than the cursor
    second = await source.poll(refs([imei]), {imei: cursor})
    assert fix_times(second, imei) == [T0 - 50]
    await trio.sleep(30)
    third = await source.poll(refs([imei]), {imei: second.cursors[imei]})
    assert third.fixes == {}
    assert history_calls(fake) == 2  # the third poll saw no news: no history call


async def test_invalid_latest_fix_units_and_sensors(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    imei = fake.add_unit("A", odometer=1500.25, engine_hours=321.5)
    fake.add_fix(imei, T0 - 60, 37.5, 23.5, speed_kmh=55.5, course=181, altitude=120,
                 satellites=11, ignition=True, params={"io66": 13800, "driver": "AB12"})  # fmt: skip
    fake.add_fix(imei, T0 - 30, 37.6, 23.6, valid=False, ignition=False)
    result = await make_source().poll(refs([imei]), {})
    first, last = result.fixes[imei]
    assert (first.speed_kmh, first.course_deg, first.altitude_m) == (55.5, 181.0, 120.0)
    assert (first.satellites, first.ignition, first.valid) == (11, True, True)
    assert first.sensors == {"io66": 13800, "driver": "AB12"}
    assert last.valid is False and last.ignition is False
    assert last.sensors == {PLATFORM_ODOMETER_KM: 1500.25, PLATFORM_ENGINE_HOURS: 321.5}
    assert first.fix_time.tzinfo is not None


async def test_requests_per_poll_are_one_plus_the_devices_with_news(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"U{n}") for n in range(25)]
    for unit in units:
        fake.add_fix(unit, T0 - 10, 1.0, 2.0)
    source = make_source(history_concurrency=3)
    cursors: dict[str, Cursor] = {}
    result = await source.poll(refs(units), cursors)
    cursors.update(result.cursors)
    assert fake.request_count <= 1 + 1 + 25  # a token login, the sync, 25 histories
    for _ in range(2):
        await trio.sleep(30)
        now = T0 + trio.current_time()
        for unit in units[:10]:
            fake.add_fix(unit, now - 1, 1.0, 2.0)
        before = fake.request_count
        result = await source.poll(refs(units), cursors)
        cursors.update(result.cursors)
        assert fake.request_count - before == 1 + 10
        assert sorted(result.fixes) == sorted(units[:10])


async def test_the_request_budget_caps_each_poll_and_serves_the_longest_owed_first(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock, mode: str
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"U{n:02d}") for n in range(23)]
    budget = 6  # a login (token mode, first poll), the locations or the sync, histories
    source = make_source(max_requests_per_poll=budget, sync_every_s=90)
    cursors: dict[str, Cursor] = {}
    emitted: dict[str, list[float]] = {u: [] for u in units}
    turns: list[list[str]] = []
    for poll in range(16):
        now = T0 + trio.current_time()
        for unit in units:  # every unit moves all the time
            fake.add_fix(unit, now - 1, 1.0, 2.0)
        if poll == 9:
            fake.expire_sessions()  # a re-login mid-run costs a request of that poll
        before = fake.request_count
        result = await source.poll(refs(units), cursors)
        assert fake.request_count - before <= budget
        assert set(result.cursors) == set(result.fixes)  # a device left waiting keeps its cursor
        cursors.update(result.cursors)
        for unit, fixes in result.fixes.items():
            emitted[unit] += [f.fix_time.timestamp() for f in fixes]
        turns.append(sorted(result.fixes))
        await trio.sleep(30)
    # round robin, the longest owed first: everyone is served within the first five polls,
    # then every device once per four to five polls, none starved, none favoured
    assert set().union(*turns[:5]) == set(units)
    served_in = {u: [k for k, turn in enumerate(turns) if u in turn] for u in units}
    assert all(max(b - a for a, b in itertools.pairwise(ks)) <= 5 for ks in served_in.values())
    counts = [len(ks) for ks in served_in.values()]
    assert max(counts) - min(counts) <= 1
    assert sum(counts) >= 16 * (budget - 1) - 3  # logins took a few requests
    for unit in units:  # each device's fixes complete, in order, once, up to its last turn
        times = emitted[unit]
        assert times == sorted(set(times))
        assert times == [float(t) for t in fake.objects[unit].times if t <= times[-1]]


async def test_histories_that_do_not_fit_arrive_late_but_complete(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"U{n}") for n in range(10)]
    # 3 histories a poll; a device first fetched at the fourth poll still gets its backfill
    # counted from the first one
    source = make_source(max_requests_per_poll=4, backfill_s=60)
    cursors: dict[str, Cursor] = {}
    emitted: dict[str, list[float]] = {u: [] for u in units}
    for poll in range(12):
        if poll < 5:  # five minutes of driving, then everyone parks
            now = T0 + trio.current_time()
            for unit in units:
                for k in range(3):
                    fake.add_fix(unit, now - 25 + 10 * k, 1.0, 2.0)
        result = await source.poll(refs(units), cursors)
        cursors.update(result.cursors)
        for unit, fixes in result.fixes.items():
            emitted[unit] += [f.fix_time.timestamp() for f in fixes]
        await trio.sleep(30)
    for unit in units:
        assert emitted[unit] == [float(t) for t in fake.objects[unit].times], unit


async def test_a_backlog_longer_than_max_window_is_fetched_a_window_per_turn(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 10, 1.0, 2.0)
    source = make_source(max_window_s=3600)
    first = await source.poll(refs([imei]), {})
    cursor = first.cursors[imei]
    fake.hold(imei)  # out of coverage for five hours, parked for the first four
    await trio.sleep(4 * 3600)
    for k in range(60):
        fake.add_fix(imei, T0 + trio.current_time(), 1.0, 2.0 + k / 1000)
        await trio.sleep(60)
    fake.release(imei)
    emitted: list[float] = []
    for _ in range(8):
        result = await source.poll(refs([imei]), {imei: cursor})
        cursor = result.cursors.get(imei, cursor)
        emitted += fix_times(result, imei)
        await trio.sleep(30)
    assert emitted == [float(t) for t in fake.objects[imei].times[1:]]


async def test_an_unshared_device_is_skipped_with_one_warning(
    served: Served, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    fake = served.fake
    a, b = fake.add_unit("A"), fake.add_unit("B")
    for unit in (a, b):
        fake.add_fix(unit, T0 - 10, 1.0, 2.0)
    fake.revoke(b)
    source = make_source()
    with caplog.at_level(logging.WARNING):
        for _ in range(2):
            result = await source.poll(refs([a, b]), {})
    assert sorted(result.fixes) == [a]
    assert sum(b in r.getMessage() for r in caplog.records) == 1


async def test_no_permission_on_history_skips_that_device(
    served: Served, make_source: MakeSource, mode: str
) -> None:
    fake = served.fake
    a, b = fake.add_unit("A"), fake.add_unit("B")
    for unit in (a, b):
        fake.add_fix(unit, T0 - 10, 1.0, 2.0)
    source = make_source()
    locations = await source.api.locations()
    fake.revoke(b)  # between the locations and the history call
    source.api.locations = lambda: _done(locations)  # type: ignore[method-assign]
    source.poller.synced_at = source.ctx.clock.now()
    result = await source.poll(refs([a, b]), {})
    assert sorted(result.fixes) == [a] and b not in result.cursors


async def _done(value: object) -> object:
    return value


async def test_an_expired_token_is_renewed_once_mid_cycle(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 10, 1.0, 2.0)
    state = MemoryStateStore()
    source = make_source(credentials=fake.credentials(served.url), state=state)
    await source.test_connection()
    assert fake.logins == 1 and state.data[TOKEN_KEY]["token"]
    fake.expire_sessions()
    result = await source.poll(refs([imei]), {})
    assert fix_times(result, imei) == [T0 - 10]
    assert fake.logins == 2
    # a restart reuses the saved token: no login
    again = make_source(credentials=fake.credentials(served.url), state=state)
    await again.test_connection()
    assert fake.logins == 2


async def test_a_renewed_token_is_logged_at_info_with_the_connection_and_no_secret(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = served.fake
    fake.token_ttl_s = 600
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 10, 1.0, 2.0)
    source = make_source(credentials=fake.credentials(served.url), label="fleet")
    with caplog.at_level(logging.DEBUG, logger="gpshub.test.gpsserver"):
        await source.poll(refs([imei]), {})  # the first login: not a renewal
        await trio.sleep(560)  # 40 s left: within the renewal margin
        await source.poll(refs([imei]), {})
        fake.expire_sessions()  # the server forgets it (a restart)
        await source.poll(refs([imei]), {})
        await trio.sleep(700)  # expired; and the login that renews it fails once
        fake.fail(502)
        with pytest.raises(CannotConnect):
            await source.poll(refs([imei]), {})
        await source.poll(refs([imei]), {})
    assert fake.logins == 4
    ours = [r for r in caplog.records if r.name == "gpshub.test.gpsserver"]
    renewals = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    assert len(renewals) == 3, renewals
    host = served.url.removeprefix("http://")
    for message in renewals:
        assert message.startswith(f"connection 'fleet' (#1): GPS-Server.net at {host}: ")
        assert "logged in again" in message
    assert "the token expires in 40 s" in renewals[0]
    assert "refused" in renewals[1]
    assert "the token expired" in renewals[2]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert fake.password not in text and not any(t in text for t in fake.tokens)


async def test_a_token_is_renewed_before_it_expires_either_way_it_is_given(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.token_ttl_s = 300
    for as_epoch in (False, True):
        fake.expires_as_epoch = as_epoch
        source = make_source(credentials=fake.credentials(served.url))
        before = fake.logins
        await source.test_connection()
        await trio.sleep(200)
        await source.test_connection()
        assert fake.logins == before + 1  # still valid for 100 s
        await trio.sleep(50)  # 50 s left: within the renewal margin
        await source.test_connection()
        assert fake.logins == before + 2
        assert fake.requests["locations.php"] == fake.request_count - fake.requests["auth.php"]


async def test_a_refused_fresh_token_is_invalid_auth(
    served: Served, make_source: MakeSource
) -> None:
    source = make_source(credentials=served.fake.credentials(served.url))
    await source.test_connection()
    served.fake.token_ttl_s = 0  # every new token is already expired
    served.fake.expire_sessions()
    with pytest.raises(InvalidAuth):
        await source.test_connection()
    assert served.fake.logins == 2


async def test_no_token_api_asks_for_the_api_key(served: Served, make_source: MakeSource) -> None:
    served.fake.token_api = False
    with pytest.raises(BadConfig) as err:
        await make_source(credentials=served.fake.credentials(served.url)).test_connection()
    assert err.value.field == "credentials.api_key"


async def test_rate_limits(served: Served, make_source: MakeSource, mode: str) -> None:
    source = make_source(call_limit_retry_s=1800)
    await source.test_connection()
    served.fake.rate_limit(retry_after=42)
    with pytest.raises(RateLimited) as err:
        await source.test_connection()
    assert err.value.retry_after == (1800 if mode == "key" else 42)


async def test_the_call_limit_mid_poll_is_a_rate_limit(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"U{n}") for n in range(4)]
    for unit in units:
        fake.add_fix(unit, T0 - 10, 1.0, 2.0)
    fake.call_limit = 3
    with pytest.raises(RateLimited):
        await make_source(credentials=fake.credentials_key(served.url)).poll(refs(units), {})


async def test_server_errors_malformed_and_empty_answers(
    served: Served, make_source: MakeSource
) -> None:
    source = make_source()
    served.fake.fail(502)
    with pytest.raises(CannotConnect):
        await source.test_connection()
    served.fake.malformed()
    with pytest.raises(UpdateFailed):
        await source.test_connection()
    key = make_source(credentials=served.fake.credentials_key(served.url))
    with pytest.raises(UpdateFailed, match="empty answer"):
        await key.api.call("")
    with pytest.raises(UpdateFailed, match="empty answer"):
        await key.api.call("NO_SUCH_COMMAND")
    assert "0 objects" in await source.test_connection()


async def test_a_slow_server_times_out_as_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    served.fake.delay = 10
    with pytest.raises(CannotConnect, match="in time"):
        await make_source(timeout_s=2).test_connection()


async def test_the_api_key_never_reaches_the_logs(
    served: Served, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG, logger="httpx")  # other tests may have quietened it
    fake = served.fake
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 10, 1.0, 2.0)
    with caplog.at_level(logging.DEBUG):
        source = make_source(credentials=fake.credentials_key(served.url))
        await source.test_connection()
        await source.poll(refs([imei]), {})
        login = make_source(credentials=fake.credentials(served.url))
        await login.poll(refs([imei]), {})
    assert any("api.php" in r.getMessage() for r in caplog.records)  # httpx did log
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert fake.api_key not in text and fake.password not in text
    assert not any(token in text for token in fake.tokens)


async def test_the_token_api_timezone_option(
    gpshub_serve: Any, gpshub_wall: TrioClock, gpshub_http: httpx.AsyncClient
) -> None:
    fake = FakeGpsServer(now=lambda: gpshub_wall.now().timestamp(), token_timezone="Europe/Athens")
    url = await gpshub_serve(fake)
    imei = fake.add_unit("A")
    fake.add_fix(imei, T0 - 60, 1.0, 2.0)
    ctx = source_context(
        GpsServerSource,
        fake.credentials(url),
        gpshub_http,
        options={"token_api_timezone": "Europe/Athens"},
        clock=gpshub_wall,
    )
    result = await GpsServerSource(ctx).poll(refs([imei]), {})
    assert fix_times(result, imei) == [T0 - 60]


def test_credentials_need_a_key_or_an_email_and_password() -> None:
    parse = GpsServerSource.parse_credentials
    assert parse({"api_key": "k"}).uses_key  # type: ignore[attr-defined]
    for raw, field in (({}, "email"), ({"email": "a@b"}, "password"),
                       ({"email": " ", "password": "p"}, "email")):  # fmt: skip
        with pytest.raises(BadConfig) as err:
            parse(raw)
        assert err.value.field == f"credentials.{field}"
    with pytest.raises(BadConfig) as err:
        GpsServerSource.parse_options({"token_api_timezone": "Mars/Base"})
    assert err.value.field == "options.token_api_timezone"
