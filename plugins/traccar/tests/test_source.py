"""``TraccarSource`` against ``FakeTraccar`` over real loopback HTTP, on the mock clock."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable

import httpx
import pytest
import trio
from trio.testing import MockClock

from gpshub_traccar import TraccarSource
from gpshub_traccar.testing import FakeTraccar
from hub.clock import TrioClock
from hub.errors import BadConfig, CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.runner import new_http_client
from hub.source import describe_fields
from hub.testing import Poller, Served, fix_times, source_context
from hub.testing import device_refs as refs

MakeSource = Callable[..., TraccarSource]
"""The ``make_source`` fixture: a new source for the served fake."""


def add_units(fake: FakeTraccar, n: int) -> list[str]:
    return [fake.add_unit(f"Unit {i}", imei=f"86{i:013d}") for i in range(n)]


async def advance(seconds: float) -> None:
    await trio.sleep(seconds)


def now_s(gpshub_wall: TrioClock) -> float:
    return gpshub_wall.now().timestamp()


# -- the class as the hub sees it ------------------------------------------------------


def test_declares_the_seed_fields() -> None:
    assert (TraccarSource.kind, TraccarSource.title) == ("traccar", "Traccar")
    assert TraccarSource.supports_browse is True
    assert TraccarSource.cadence.active == 30.0
    fields = {f.name: f for f in describe_fields(TraccarSource.Credentials)}
    assert list(fields) == ["server_url", "username", "password"]
    assert all(f.required for f in fields.values())
    assert fields["server_url"].description == (
        "Full URL of your Traccar server, e.g. https://demo.traccar.org"
    )
    assert fields["username"].description == "Traccar account email or username"
    assert fields["password"].description == "Traccar account password"
    assert [f.name for f in fields.values() if f.secret] == ["password"]
    options = {f.name: f.default for f in describe_fields(TraccarSource.Options)}
    assert options["base_url"] is None
    assert (options["late_window_s"], options["backfill_s"], options["sync_every_s"]) == (
        300.0,
        3600.0,
        600.0,
    )
    assert options["batch_size"] == 200


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (
            {"server_url": "ftp://t.example.com", "username": "a", "password": "b"},
            "credentials.server_url",
        ),
        (
            {"server_url": "https://t.example.com", "username": " ", "password": "b"},
            "credentials.username",
        ),
        (
            {"server_url": "https://t.example.com", "username": "a", "password": ""},
            "credentials.password",
        ),
        ({"server_url": "https://t.example.com", "username": "a"}, "credentials.password"),
    ],
)
def test_bad_credentials_name_the_field(raw: dict[str, str], field: str) -> None:
    with pytest.raises(BadConfig) as err:
        TraccarSource.parse_credentials(raw)
    assert err.value.field == field


def test_options_are_bounded() -> None:
    with pytest.raises(BadConfig) as err:
        TraccarSource.parse_options({"batch_size": 401})
    assert err.value.field == "options.batch_size"
    with pytest.raises(BadConfig):
        TraccarSource.parse_options({"base_url": "not a url"})
    with pytest.raises(BadConfig):
        TraccarSource.parse_options({"batch": 3})
    assert TraccarSource.parse_options({"base_url": "http://proxy:8082/"}).base_url == (
        "http://proxy:8082"
    )


# -- test connection and browse --------------------------------------------------------


async def test_connection_summary(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    add_units(served.fake, 3)
    summary = await make_source().test_connection()
    host = served.url.removeprefix("http://")
    assert summary == f"Traccar 6.6 at {host}: 'admin@example.com' sees 3 devices"
    auth = {c.path: c.auth for c in served.fake.calls}
    assert auth == {"/api/server": None, "/api/devices": "basic", "/api/reports/route": "basic"}


async def test_connection_notes_disabled_reports(served: Served, make_source: MakeSource) -> None:
    viewer = served.fake.add_user("viewer@example.com", "pw", disable_reports=True)
    served.fake.add_unit("Van", users=[viewer])
    summary = await make_source(
        credentials=served.fake.credentials(served.url, viewer)
    ).test_connection()
    assert "sees 1 device;" in summary
    assert "reports are disabled for this user" in summary


async def test_wrong_password_is_invalid_auth(served: Served, make_source: MakeSource) -> None:
    creds = {**served.fake.credentials(served.url), "password": "hunter2-wrong"}
    with pytest.raises(InvalidAuth) as err:
        await make_source(credentials=creds).test_connection()
    assert "hunter2-wrong" not in str(err.value)


async def test_unreachable_is_cannot_connect(make_source: MakeSource) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    creds = {"server_url": f"http://127.0.0.1:{port}", "username": "a", "password": "b"}
    with pytest.raises(CannotConnect):
        await make_source(credentials=creds).test_connection()


async def test_something_else_at_the_url_is_bad_config(
    served: Served, make_source: MakeSource
) -> None:
    served.fake.html(times=1)
    with pytest.raises(BadConfig) as err:
        await make_source().test_connection()
    assert err.value.field == "credentials.server_url"
    assert "instead of JSON" in err.value.reason


async def test_a_blocked_address_is_bad_config(served: Served) -> None:
    async with new_http_client() as http:  # no network allowed beyond public ones
        ctx = source_context(TraccarSource, served.fake.credentials(served.url), http)
        with pytest.raises(BadConfig) as err:
            await TraccarSource(ctx).test_connection()
    assert err.value.field == "credentials.server_url"
    assert "loopback" in err.value.reason


async def test_base_url_overrides_the_server_url(served: Served, make_source: MakeSource) -> None:
    creds = {
        "server_url": "https://traccar.invalid",
        "username": "admin@example.com",
        "password": "admin",
    }
    source = make_source(credentials=creds, base_url=served.url)
    assert "sees 0 devices" in await source.test_connection()


async def test_browse_lists_every_device_with_imei_and_plate(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    van = fake.add_unit("Van 12", imei="860123456789012", plate="KHI-2045", model="FMB920")
    fake.add_unit("Truck", attributes={"registration": "TR-1"}, category="truck")
    fake.add_unit("Phone", imei="my-phone")
    fake.add_fix(van, now_s_default(fake), 1.0, 1.0)
    devices = await make_source().list_devices()
    assert [(d.upstream_id, d.name, d.imei, d.license_plate) for d in devices] == [
        (van, "Van 12", "860123456789012", "KHI-2045"),
        ("2", "Truck", "860000000000002", "TR-1"),
        ("3", "Phone", "my-phone", None),
    ]
    assert devices[0].extra["model"] == "FMB920" and devices[0].extra["status"] == "online"
    assert devices[1].extra["category"] == "truck"


def now_s_default(fake: FakeTraccar) -> float:
    return fake.now()


async def test_browse_as_a_plain_user_lists_its_devices(
    served: Served, make_source: MakeSource
) -> None:
    driver = served.fake.add_user("driver@example.com", "pw")
    served.fake.add_unit("Theirs")
    mine = served.fake.add_unit("Mine", users=[driver])
    devices = await make_source(
        credentials=served.fake.credentials(served.url, driver)
    ).list_devices()
    assert [d.upstream_id for d in devices] == [mine]


@pytest.mark.parametrize("status", [400, 403])
async def test_a_refused_list_of_all_devices_falls_back_to_the_users_own(
    served: Served,
    make_source: MakeSource,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    status: int,
) -> None:
    fake = served.fake
    fake.all_refusal = status  # Traccar 4 to a user who manages no one (400), a proxy (403)
    driver = fake.add_user("driver@example.com", "pw")
    mine = fake.add_unit("Mine", users=[driver])
    fake.add_unit("Theirs")
    credentials = fake.credentials(served.url, driver)
    assert "sees 1 device" in await make_source(credentials=credentials).test_connection()
    assert [d.upstream_id for d in await make_source(credentials=credentials).list_devices()] == [
        mine
    ]
    source = make_source(credentials=credentials, sync_every_s=0)
    poller = Poller(source, refs([mine]))
    for _ in range(3):  # every poll reads the device list (sync_every_s=0)
        fake.add_fix(mine, now_s(gpshub_wall) - 1, 1.0, 1.0)
        await poller.poll()
        await advance(30)
    assert len(poller.times(mine)) == 3
    polled = [c for c in fake.calls if c.path == "/api/devices"][2 * 2 :]
    assert [(c.params("all"), c.status) for c in polled] == [(["true"], status)] + [([], 200)] * 3


async def test_a_wrong_password_is_not_taken_for_a_refused_list(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    source = make_source(credentials={**served.fake.credentials(served.url), "password": "no"})
    with pytest.raises(InvalidAuth):
        await source.list_devices()
    assert served.fake.request_count == 1
    assert not source.client.own_devices_only


# -- ranges, batching, pages -----------------------------------------------------------


async def test_polls_ranges_with_no_gap_and_no_duplicate(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    fake.add_fix(unit, t - 7200, 1.0, 1.0)  # older than the backfill: not fetched
    fake.add_fix(unit, t - 3000, 1.0, 1.0)
    fake.add_fix(unit, t, 1.0, 1.0)  # exactly at the first poll's end
    poller = Poller(make_source(), refs([unit]))
    first = await poller.poll()
    assert fix_times(first, unit) == [t - 3000, t]
    assert first.cursors[unit].last_fix_time is not None
    for step in range(1, 5):
        fake.add_fix(unit, t + 30 * step - 29.999, 1.0, 1.0)  # right after the previous end
        fake.add_fix(unit, t + 30 * step - 1, 1.0, 1.0)
        await advance(30)
        again = await poller.poll()
        assert fix_times(again, unit) == [t + 30 * step - 29.999, t + 30 * step - 1]
    assert poller.times(unit) == sorted(set(poller.times(unit)))
    assert len(poller.times(unit)) == 10
    quiet = await poller.poll()
    assert quiet.fixes == {}


async def test_batches_devices_into_few_requests(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    ids = add_units(fake, 25)
    poller = Poller(make_source(batch_size=10, sync_every_s=120), refs(ids))
    for cycle in range(6):
        for uid in ids:
            fake.add_fix(uid, now_s(gpshub_wall) - 5, 1.0, 1.0, speed_kmh=10)
        before = fake.requests.copy()
        result = await poller.poll()
        served_now = fake.requests - before
        assert served_now["/api/reports/route"] == math.ceil(25 / 10)
        assert served_now["/api/devices"] == (1 if cycle in (0, 4) else 0)  # every 120 s
        assert sum(served_now.values()) <= 2 + math.ceil(25 / 10)
        assert sorted(result.fixes) == sorted(ids)
        assert all(len(v) == 1 for v in result.fixes.values())
        await advance(30)
    for call in fake.calls:
        if call.path == "/api/reports/route":
            assert 1 <= len(call.params("deviceId")) <= 10
    assert all(len(poller.times(d.upstream_id)) == 6 for d in poller.devices)


async def test_cut_answers_continue_in_pages(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.max_positions = 50  # Traccar's report.maxPositions
    a, b = add_units(fake, 2)
    t = now_s(gpshub_wall)
    for k in range(120):
        fake.add_fix(a, t - 3000 + k * 10, 1.0, 1.0)
    fake.add_fix(b, t - 100, 2.0, 2.0)
    poller = Poller(make_source(max_positions=50), refs([a, b]))
    await poller.poll()
    assert poller.times(a) == [t - 3000 + k * 10 for k in range(120)]
    assert poller.times(b) == [t - 100]
    assert fake.requests["/api/reports/route"] == 3  # 50 + 50 + 20 (+ b in the first)


async def test_the_page_budget_leaves_the_rest_for_the_next_poll(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.max_positions = 40
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    for k in range(100):
        fake.add_fix(unit, t - 1000 + k * 5, 1.0, 1.0)
    poller = Poller(make_source(max_positions=40, page_budget=1), refs([unit]))
    await poller.poll()
    assert len(poller.times(unit)) == 80
    assert fake.requests["/api/reports/route"] == 2
    await advance(30)
    await poller.poll()
    assert poller.times(unit) == [t - 1000 + k * 5 for k in range(100)]


async def test_long_backlogs_go_in_bounded_windows(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    hours = [t - 3600 * h - 60 for h in (4, 3, 2, 1, 0)]
    for when in hours:
        fake.add_fix(unit, when, 1.0, 1.0)
    poller = Poller(make_source(backfill_s=5 * 3600, max_window_s=3600), refs([unit]))
    await poller.poll()
    assert poller.times(unit) == hours
    routes = [c for c in fake.calls if c.path == "/api/reports/route"]
    assert len(routes) == 5
    assert all(c.params("from") and c.params("to") for c in routes)


async def test_a_long_silent_range_is_walked_on_across_polls(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    """A range longer than the poll's budget of windows goes on where it stopped at the
    next poll, even through hours without a fix, instead of starting over."""
    fake = served.fake
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    fake.add_fix(unit, t - 10 * 3600, 1.0, 1.0)  # then switched off for nine hours
    fake.add_fix(unit, t - 1800, 2.0, 2.0)  # and back for the last half hour
    source = make_source(backfill_s=11 * 3600, max_window_s=3600, page_budget=1)
    poller = Poller(source, refs([unit]))
    for _ in range(8):
        await poller.poll()
        await advance(30)
    # (the lookback is looked at again once caught up: the store drops that repeat)
    assert sorted(set(poller.times(unit))) == [t - 10 * 3600, t - 1800]
    assert fake.requests["/api/reports/route"] <= 2 * 8  # two per poll, until it caught up


async def test_silent_devices_cost_one_device_list_per_poll_not_a_report_each(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    """Parked devices, silent since different times, are not asked for history while
    ``positionId`` shows Traccar stored nothing new for them: the device list, one call,
    says so for all of them.  One that stores a fix is fetched at the next poll."""
    fake = served.fake
    ids = add_units(fake, 30)
    moving, parked = ids[:10], ids[10:]
    t = now_s(gpshub_wall)
    for i, uid in enumerate(parked):  # parked 10 min to 20 h ago
        fake.add_fix(uid, t - 600 - i * 3600, 1.0, 1.0)
    poller = Poller(make_source(batch_size=10, backfill_s=86_400, sync_every_s=3600), refs(ids))
    for _ in range(8):  # the backfill of a day, within the page budget, and a look back
        for uid in moving:
            fake.add_fix(uid, now_s(gpshub_wall) - 1, 1.0, 1.0)
        await poller.poll()
        await advance(30)
    emitted = {uid: set(poller.times(uid)) for uid in parked}  # the store drops repeats
    assert all(len(times) == 1 for times in emitted.values())
    for _ in range(3):
        for uid in moving:
            fake.add_fix(uid, now_s(gpshub_wall) - 1, 1.0, 1.0)
        before = fake.requests.copy()
        await poller.poll()
        served_now = fake.requests - before
        assert dict(served_now) == {"/api/reports/route": 1, "/api/devices": 1}, served_now
        await advance(30)
    back = parked[7]  # parked 7 h 10 min ago
    fake.add_fix(back, now_s(gpshub_wall) - 5, 3.0, 3.0)  # out of its parking space
    before = fake.requests.copy()
    result = await poller.poll()
    # the moving ten in one call; the 7 h 15 min of its range in windows of 1, 2, 4 h, then
    # the rest: empty windows are followed by wider ones
    assert (fake.requests - before)["/api/reports/route"] == 1 + 4
    assert set(fix_times(result, back)) - emitted[back] == {now_s(gpshub_wall) - 5}
    assert all(set(poller.times(uid)) == emitted[uid] for uid in parked if uid != back)


async def test_a_server_period_limit_shrinks_the_window(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.period_limit_s = 1000  # report.periodLimit
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    fake.add_fix(unit, t - 3500, 1.0, 1.0)
    fake.add_fix(unit, t - 10, 1.0, 1.0)
    source = make_source()
    poller = Poller(source, refs([unit]))
    await poller.poll()
    assert poller.times(unit) == [t - 3500, t - 10]
    assert source.poller.window_s == 900.0  # 3600 halved twice
    fake.add_fix(unit, t + 20, 1.0, 1.0)
    await advance(30)
    before = fake.requests["/api/reports/route"]
    await poller.poll()
    assert poller.times(unit)[-1] == t + 20
    assert fake.requests["/api/reports/route"] - before == 1


async def test_late_back_dated_positions_are_picked_up_once(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall)
    fake.add_fix(unit, t - 60, 1.0, 1.0)
    poller = Poller(make_source(), refs([unit]))
    await poller.poll()
    await advance(30)
    fake.add_fix(unit, t + 20, 1.0, 1.0)
    fake.add_fix(unit, t - 200, 1.0, 1.0)  # a black-box upload: older than the cursor
    fake.add_fix(unit, t - 4000, 1.0, 1.0)  # beyond the late window: Traccar cannot say
    late = await poller.poll()
    assert fix_times(late, unit) == [t - 200, t + 20]
    for _ in range(3):
        await advance(30)
        assert (await poller.poll()).fixes == {}
    assert poller.times(unit) == [t - 60, t - 200, t + 20]


async def test_fixes_marked_invalid_are_kept(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    fake.add_fix(unit, now_s(gpshub_wall) - 20, 0.0, 0.0, valid=False, satellites=0)
    fake.add_fix(unit, now_s(gpshub_wall) - 10, 10.0, 10.0)
    result = await make_source().poll(refs([unit]), {})
    assert [f.valid for f in result.fixes[unit]] == [False, True]


async def test_units_and_fields_are_converted(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    t = now_s(gpshub_wall) - 5
    fake.add_fix(
        unit,
        t,
        37.98381,
        23.727539,
        speed_kmh=72.0,
        course=270.0,
        altitude=112.0,
        satellites=11,
        ignition=True,
        accuracy=4.5,
        params={
            "distance": 42.17,
            "totalDistance": 1523344.6,
            "odometer": 2000000,
            "hours": 7200000,
            "fuel": 61.5,
            "io200": 0,
        },
    )
    (fix,) = (await make_source().poll(refs([unit]), {})).fixes[unit]
    assert fix.fix_time.timestamp() == pytest.approx(t)
    assert fix.fix_time.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert fix.speed_kmh == pytest.approx(72.0)  # 38.88 knots on the wire
    assert (fix.lat, fix.lon, fix.altitude_m, fix.course_deg) == (37.98381, 23.727539, 112.0, 270.0)
    assert (fix.satellites, fix.ignition, fix.accuracy_m) == (11, True, 4.5)
    assert fix.sensors == {
        "distance": 42.17,
        "totalDistance": 1523344.6,
        "odometer": 2000000,
        "hours": 7200000,
        "fuel": 61.5,
        "io200": 0,
        "platform_odometer_km": 2000.0,
        "platform_engine_hours": 2.0,
    }


# -- devices: ids, names, access ----------------------------------------------------------


async def test_names_and_plates_are_synced_on_the_first_poll_and_every_interval(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (unit,) = add_units(fake, 1)
    fake.set_attribute(unit, "licensePlate", "AB-1")
    poller = Poller(make_source(sync_every_s=600), refs([unit]))
    first = await poller.poll()
    assert (first.devices[unit].name, first.devices[unit].license_plate) == ("Unit 0", "AB-1")
    fake.rename_unit(unit, "Renamed")
    await advance(300)
    assert (await poller.poll()).devices == {}
    await advance(300)
    later = await poller.poll()
    assert later.devices[unit].name == "Renamed"


async def test_a_device_imported_since_the_last_sync_is_found(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (first,) = add_units(fake, 1)
    source = make_source()
    await source.poll(refs([first]), {})
    second = fake.add_unit("New")
    fake.add_fix(second, now_s(gpshub_wall) - 1, 1.0, 1.0)
    result = await source.poll(refs([first, second]), {})
    assert fix_times(result, second) == [now_s(gpshub_wall) - 1]
    assert fake.requests["/api/devices"] == 2


async def test_devices_added_by_imei_are_matched(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Van", imei="860123456789012")
    fake.add_fix(unit, now_s(gpshub_wall) - 1, 1.0, 1.0)
    result = await make_source().poll(refs(["860123456789012"]), {})
    assert fix_times(result, "860123456789012") == [now_s(gpshub_wall) - 1]
    assert result.devices["860123456789012"].name == "Van"


async def test_a_device_gone_upstream_is_skipped_with_one_warning(
    served: Served,
    make_source: MakeSource,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = served.fake
    driver = fake.add_user("driver@example.com", "pw")
    a = fake.add_unit("A", users=[driver])
    b = fake.add_unit("B", users=[driver])
    source = make_source(credentials=fake.credentials(served.url, driver))
    poller = Poller(source, refs([a, b, "999"]))
    caplog.set_level(logging.WARNING, logger="gpshub.test.traccar")
    for unit in (a, b):  # reporting, not silent: no device list read for them
        fake.add_fix(unit, now_s(gpshub_wall) - 5, 1.0, 1.0)
    await poller.poll()
    fake.revoke(b, driver)  # unlinked after the sync: the report answers "access denied"
    t = now_s(gpshub_wall)
    fake.add_fix(a, t + 10, 1.0, 1.0)
    await advance(30)
    result = await poller.poll()
    assert fix_times(result, a) == [t + 10]
    for _ in range(3):
        await advance(30)
        await poller.poll()
    warned = [r.getMessage() for r in caplog.records if "not visible" in r.getMessage()]
    assert len(warned) == 2 and "'999'" in warned[0] and f"'{b}'" in warned[1]
    assert fake.requests["/api/devices"] == 2  # the first sync and the one after the 400


async def test_disabled_reports_fall_back_to_the_latest_positions(
    served: Served,
    make_source: MakeSource,
    gpshub_wall: TrioClock,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = served.fake
    viewer = fake.add_user("viewer@example.com", "pw", disable_reports=True)
    a = fake.add_unit("A", users=[viewer])
    b = fake.add_unit("B", users=[viewer])
    fake.add_fix(a, now_s(gpshub_wall) - 20, 1.0, 1.0)
    fake.add_fix(a, now_s(gpshub_wall) - 10, 1.5, 1.0)
    caplog.set_level(logging.WARNING, logger="gpshub.test.traccar")
    poller = Poller(make_source(credentials=fake.credentials(served.url, viewer)), refs([a, b]))
    first = await poller.poll()
    assert fix_times(first, a) == [now_s(gpshub_wall) - 10]  # the latest only
    assert b not in first.fixes
    for _ in range(3):
        await advance(30)
        before = fake.request_count
        assert (await poller.poll()).fixes == {}
        assert fake.request_count - before == 1  # one /api/positions per poll
    fake.add_fix(b, now_s(gpshub_wall) - 3, 2.0, 2.0)
    assert fix_times(await poller.poll(), b) == [now_s(gpshub_wall) - 3]
    warnings = [r for r in caplog.records if "disableReports" in r.getMessage()]
    assert len(warnings) == 1 and "missed" in warnings[0].getMessage()
    assert fake.requests["/api/reports/route"] == 1


async def test_non_numeric_unknown_ids_cost_no_report(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    result = await make_source().poll(refs(["van-7"]), {})
    assert result.fixes == {} and result.cursors == {}
    assert served.fake.requests["/api/reports/route"] == 0


# -- faults ---------------------------------------------------------------------------------


async def test_429_is_rate_limited_with_retry_after(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    (unit,) = add_units(served.fake, 1)
    source = make_source()
    await source.poll(refs([unit]), {})
    served.fake.rate_limit(times=1, retry_after=45)
    with pytest.raises(RateLimited) as err:
        await source.poll(refs([unit]), {})
    assert err.value.retry_after == 45.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_is_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock, status: int
) -> None:
    (unit,) = add_units(served.fake, 1)
    served.fake.fail(status, times=1)
    with pytest.raises(CannotConnect, match=str(status)):
        await make_source().poll(refs([unit]), {})


async def test_malformed_and_html_answers_are_update_failed(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    (unit,) = add_units(served.fake, 1)
    source = make_source()
    served.fake.malformed(times=1)
    with pytest.raises(UpdateFailed, match="broken JSON"):
        await source.poll(refs([unit]), {})
    await source.poll(refs([unit]), {})  # synced now
    served.fake.html(times=1)
    with pytest.raises(UpdateFailed, match="instead of JSON"):
        await source.poll(refs([unit]), {})


async def test_slow_answers_time_out_as_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    (unit,) = add_units(served.fake, 1)
    served.fake.delay = 20
    with pytest.raises(CannotConnect, match="did not answer in time"):
        await make_source(timeout_s=5).poll(refs([unit]), {})


async def test_a_failed_poll_loses_nothing(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    ids = add_units(fake, 3)
    poller = Poller(make_source(batch_size=1), refs(ids))
    await poller.poll()
    for uid in ids:
        fake.add_fix(uid, now_s(gpshub_wall) + 10, 1.0, 1.0)
    await advance(30)
    fake.fail(502, times=1, path="/api/reports/route", after=1)  # the second of three
    with pytest.raises(CannotConnect):
        await poller.poll()
    await advance(30)
    await poller.poll()
    assert all(len(poller.times(uid)) == 1 for uid in ids)


async def test_sessions_play_no_part(
    served: Served, make_source: MakeSource, gpshub_wall: TrioClock, gpshub_clock: MockClock
) -> None:
    (unit,) = add_units(served.fake, 1)
    poller = Poller(make_source(), refs([unit]))
    for _ in range(3):
        served.fake.expire_sessions()
        served.fake.add_fix(unit, now_s(gpshub_wall) - 1, 1.0, 1.0)
        await poller.poll()
        await advance(30)
    assert len(poller.times(unit)) == 3
    assert {c.auth for c in served.fake.calls} == {"basic"}
    assert served.fake.requests["/api/session"] == 0


async def test_a_wrong_password_is_asked_once_per_poll(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    (unit,) = add_units(served.fake, 1)
    source = make_source()
    await source.poll(refs([unit]), {})
    served.fake.change_password("changed")
    before = served.fake.request_count
    with pytest.raises(InvalidAuth):
        await source.poll(refs([unit]), {})
    assert served.fake.request_count - before == 1


async def test_the_http_client_failure_never_escapes_raw(
    served: Served, gpshub_clock: MockClock
) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(1.0)) as http:
        ctx = source_context(
            TraccarSource,
            {"server_url": "http://127.0.0.1:9", "username": "a", "password": "b"},
            http,
        )
        source = TraccarSource(ctx)
        for call in (source.test_connection(), source.list_devices(), source.poll(refs(["1"]), {})):
            with pytest.raises(CannotConnect):
                await call
