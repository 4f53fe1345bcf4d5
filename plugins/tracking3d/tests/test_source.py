"""The source against a served ``FakeTracking3D``: connection, browse, the feed, faults."""

from __future__ import annotations

import logging

import pytest
import trio
from tracking3d_support import T0, MakeSource, empty
from trio.testing import MockClock

from gpshub_tracking3d.client import SESSION_KEY
from hub.errors import CannotConnect, InvalidAuth, RateLimited, UpdateFailed
from hub.logging_setup import install_redaction
from hub.source import Cursor, MemoryStateStore
from hub.testing import Served, fix_times
from hub.testing import device_refs as refs


def units(served: Served, n: int = 2) -> list[str]:
    return [served.fake.add_unit(f"Truck {i}", imei=f"35630704244{i:04d}") for i in range(n)]


# -- test connection and browse ----------------------------------------------------------
async def test_connection_summarises_the_account(served: Served, make_source: MakeSource) -> None:
    units(served, 3)
    summary = await make_source().test_connection()
    assert "3D Tracking account 'fleet@example.com'" in summary
    assert summary.endswith(": 3 units")


async def test_a_wrong_password_is_invalid_auth_after_one_login(
    served: Served, make_source: MakeSource
) -> None:
    creds = {"username": served.fake.username, "password": "not-the-password"}
    source = make_source(credentials=creds)
    with pytest.raises(InvalidAuth) as err:
        await source.test_connection()
    assert "not-the-password" not in str(err.value)
    with pytest.raises(InvalidAuth):
        await source.poll(refs(units(served, 1)), empty([]))
    assert served.fake.requests["Authentication/UserAuthenticate"] == 2  # one per call
    assert served.fake.request_count == 2


async def test_unreachable_is_cannot_connect(make_source: MakeSource) -> None:
    source = make_source(base_url="http://127.0.0.1:9/api/v1.0")
    with pytest.raises(CannotConnect):
        await source.test_connection()


async def test_browse_reads_names_imeis_and_plates(served: Served, make_source: MakeSource) -> None:
    fake = served.fake
    a = fake.add_unit("Truck 07", imei="356307042441013", plate="ABC-1234")
    b = fake.add_unit("Van 2", imei="356307042441014", imei_key="IMEI", information="spare key")
    c = fake.add_unit("Trailer", unit_type="Trailer")
    devices = {d.upstream_id: d for d in await make_source().list_devices()}
    assert set(devices) == {a, b, c}
    assert (devices[a].name, devices[a].imei, devices[a].license_plate) == (
        "Truck 07",
        "356307042441013",
        "ABC-1234",
    )
    assert devices[b].imei == "356307042441014" and devices[b].license_plate is None
    assert devices[c].imei is None and devices[c].extra["unit_type"] == "Trailer"
    assert devices[a].extra["group"] == "Fleet"


# -- the feed ------------------------------------------------------------------------------
async def test_first_poll_is_bounded_by_the_backfill_and_then_follows_the_feed(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    ids = units(served)
    fake.add_fix(ids[0], T0 - 7200, 1.0, 1.0, received=T0 - 7199)  # within 24 h, before backfill
    for k in range(3):
        for uid in ids:
            fake.add_fix(uid, T0 - 300 + 60 * k, 2.0 + k, 3.0, received=T0 - 299 + 60 * k)
    source = make_source()
    first = await source.poll(refs(ids), empty(ids))
    assert [fix_times(first, uid) for uid in ids] == [[T0 - 300, T0 - 240, T0 - 180]] * 2
    start_ids = {c.state["start_id"] for c in first.cursors.values()}
    assert start_ids == {fake._feed.next_id}
    assert set(first.devices) == set(ids)  # synced on the first poll
    assert first.cursors[ids[0]].last_fix_time.timestamp() == T0 - 180

    fake.add_fix(ids[1], T0 - 120, 5.0, 5.0)
    before = fake.request_count
    second = await source.poll(refs(ids), first.cursors)
    assert fix_times(second, ids[1]) == [T0 - 120] and ids[0] not in second.fixes
    assert fake.request_count - before == 2  # a short page of each feed: no empty request
    assert second.cursors[ids[0]].last_fix_time == first.cursors[ids[0]].last_fix_time

    third = await source.poll(refs(ids), second.cursors)
    assert third.fix_count == 0
    assert third.cursors[ids[1]].state["start_id"] == second.cursors[ids[1]].state["start_id"]


async def test_the_cursor_boundary_neither_repeats_nor_skips(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    (uid,) = units(served, 1)
    source = make_source()
    cursors = empty([uid])
    got: list[float] = []
    for step in range(6):
        fake.add_fix(uid, T0 - 60 + step, 1.0, 1.0)
        fake.add_fix(uid, T0 - 60 + step + 0.5, 1.0, 1.0)
        result = await source.poll(refs([uid]), cursors)
        got += fix_times(result, uid)
        cursors = result.cursors
    assert got == sorted(got) and len(got) == len(set(got)) == 12


async def test_a_late_back_dated_record_is_picked_up_once(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    (uid,) = units(served, 1)
    fake.add_fix(uid, T0 - 10, 1.0, 1.0)
    source = make_source()
    first = await source.poll(refs([uid]), empty([uid]))
    fake.add_fix(uid, T0 - 5000, 9.0, 9.0)  # a black-box upload, far behind the cursor
    second = await source.poll(refs([uid]), first.cursors)
    assert fix_times(second, uid) == [T0 - 5000]
    assert second.cursors[uid].last_fix_time.timestamp() == T0 - 10  # the cursor stays
    third = await source.poll(refs([uid]), second.cursors)
    assert third.fix_count == 0


async def test_records_of_other_units_are_ignored(served: Served, make_source: MakeSource) -> None:
    fake = served.fake
    mine, other = units(served)
    fake.add_fix(mine, T0 - 10, 1.0, 1.0)
    fake.add_fix(other, T0 - 10, 1.0, 1.0)
    result = await make_source().poll(refs([mine]), empty([mine]))
    assert set(result.fixes) == {mine} and set(result.cursors) == {mine}


async def test_pages_are_followed_and_the_budget_bounds_a_poll(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    fake.max_batch = 5
    (uid,) = units(served, 1)
    for k in range(12):
        fake.add_fix(uid, T0 - 100 + k, 1.0, 1.0)
    source = make_source()
    result = await source.poll(refs([uid]), empty([uid]))
    assert len(fix_times(result, uid)) == 12
    assert fake.requests["Data/PositionsList"] == 3  # 5 + 5 + 2 (short: the end)

    for k in range(12):
        fake.add_fix(uid, T0 + k, 1.0, 1.0)
    tight = make_source(page_budget=2)
    cut = await tight.poll(refs([uid]), result.cursors)
    assert fix_times(cut, uid) == [T0 + k for k in range(10)]
    rest = await tight.poll(refs([uid]), cut.cursors)
    assert fix_times(rest, uid) == [T0 + 10, T0 + 11]


async def test_a_device_imported_later_gets_its_recent_history_once(
    served: Served, make_source: MakeSource
) -> None:
    """Importing in two steps must not lose the second batch's history: a device without
    a StartId of its own reads the feed's default window once (bounded by the backfill),
    then shares the feed with the others."""
    fake = served.fake
    a, b = units(served)
    fake.add_fix(a, T0 - 10, 1.0, 1.0)
    fake.add_fix(b, T0 - 7200, 1.0, 1.0)  # beyond the backfill
    fake.add_fix(b, T0 - 10, 1.0, 1.0)
    source = make_source()
    first = await source.poll(refs([a]), empty([a]))
    fake.add_fix(b, T0 - 5, 2.0, 2.0)
    second = await source.poll(refs([a, b]), {**first.cursors, b: Cursor()})
    assert fix_times(second, b) == [T0 - 10, T0 - 5]
    assert fix_times(second, a) == []  # nothing of the others twice
    fake.add_fix(b, T0, 2.0, 2.0)
    third = await source.poll(refs([a, b]), second.cursors)
    assert fix_times(third, b) == [T0]


async def test_values_are_converted(served: Served, make_source: MakeSource) -> None:
    fake = served.fake
    (uid,) = units(served, 1)
    fake.add_fix(
        uid,
        T0 - 30,
        37.98,
        23.72,
        speed_kmh=40.0,
        course=270.0,
        satellites=11,
        ignition=True,
        params={"Ext. power": 13.8, "GSM": 4, "Door": "closed"},
        inputs={"Input1": True, "Output1": False},
        odometer_km=152334.6,
        engine_s=7200,
        address="Ermou 12",
    )
    fake.add_fix(uid, T0 - 20, 37.98, 23.72, speed_kmh=80.0, speed_measure="mph", ignition=False)
    fake.add_fix(uid, T0 - 10, 37.98, 23.72, speed_kmh=18.52, speed_measure="knots", valid=False)
    result = await make_source().poll(refs([uid]), empty([uid]))
    first, mph, knots = result.fixes[uid]
    assert first.fix_time.timestamp() == T0 - 30 and first.fix_time.tzinfo is not None
    assert first.speed_kmh == pytest.approx(40.0) and first.course_deg == 270.0
    assert first.satellites == 11 and first.ignition is True and first.altitude_m is None
    assert first.sensors["ext_power"] == 13.8 and first.sensors["gsm"] == 4.0
    assert first.sensors["door"] == "closed" and first.sensors["address"] == "Ermou 12"
    assert first.sensors["input1"] is True and first.sensors["output1"] is False
    assert first.sensors["platform_odometer_km"] == pytest.approx(152334.6)
    assert first.sensors["platform_engine_hours"] == pytest.approx(2.0)
    assert "satellites" not in first.sensors
    assert mph.speed_kmh == pytest.approx(80.0) and mph.ignition is False
    assert knots.speed_kmh == pytest.approx(18.52) and knots.ignition is None
    assert knots.valid is False and first.valid is True
    for fix in result.fixes[uid]:
        fix.validate()


async def test_satellites_come_from_the_reading_feed_when_the_feed_has_none(
    served: Served, make_source: MakeSource
) -> None:
    assert served.fake.feed_readings is False  # as public clients show the feed
    (uid,) = units(served, 1)
    served.fake.add_fix(uid, T0 - 10, 1.0, 1.0, satellites=9)
    (fix,) = (await make_source().poll(refs([uid]), empty([uid]))).fixes[uid]
    assert fix.satellites == 9


# -- the session ---------------------------------------------------------------------------
async def test_the_session_is_reused_after_a_restart_and_renewed_when_old(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    (uid,) = units(served, 1)
    state = MemoryStateStore()
    await make_source(state=state).test_connection()
    assert fake.logins == 1 and SESSION_KEY in state.data
    await make_source(state=state).poll(refs([uid]), empty([uid]))  # a restart
    assert fake.logins == 1
    await trio.sleep(84_600)
    fake.session_ttl_s = 10 * 86_400  # still good upstream: renewed by age, not by an error
    await make_source(state=state).test_connection()
    assert fake.logins == 2
    other = make_source(
        state=state, credentials={"username": "other@example.com", "password": "x-y-z"}
    )
    with pytest.raises(InvalidAuth):  # another user's cached session is not used
        await other.test_connection()


async def test_an_expired_session_gets_one_login_and_one_retry(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    (uid,) = units(served, 1)
    source = make_source(feed_page_size=100)  # a short page ends the poll
    first = await source.poll(refs([uid]), empty([uid]))
    fake.expire_sessions()
    fake.add_fix(uid, T0 - 5, 1.0, 1.0)
    before = fake.requests.copy()
    second = await source.poll(refs([uid]), first.cursors)
    assert fix_times(second, uid) == [T0 - 5]
    spent = fake.requests - before
    assert spent == {
        "Data/PositionsList": 2,
        "Authentication/UserAuthenticate": 1,
        "Data/SensorReadingsList": 1,
    }


async def test_a_session_error_right_after_a_login_does_not_loop(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    units(served, 1)
    source = make_source()
    await source.test_connection()
    fake.expire_sessions()
    fake.session_ttl_s = -1.0  # every session is refused at once
    with pytest.raises(UpdateFailed, match="fresh session"):
        await source.test_connection()
    assert fake.logins == 2


async def test_a_password_changed_upstream_stops_at_the_relogin(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    units(served, 1)
    source = make_source()
    await source.test_connection()
    fake.change_password("new-password")
    fake.expire_sessions()
    with pytest.raises(InvalidAuth):
        await source.test_connection()
    assert fake.requests["Authentication/UserAuthenticate"] == 2


async def test_no_secret_reaches_the_logs(
    served: Served, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    install_redaction()
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # other tests may have quietened it
    fake = served.fake
    (uid,) = units(served, 1)
    fake.add_fix(uid, T0 - 5, 1.0, 1.0)
    state = MemoryStateStore()
    source = make_source(state=state)
    await source.poll(refs([uid]), empty([uid]))
    old_sid = state.data[SESSION_KEY]["session_id"]
    fake.expire_sessions()
    await source.poll(refs([uid]), empty([uid]))
    new_sid = state.data[SESSION_KEY]["session_id"]
    assert any(r.name == "httpx" for r in caplog.records)  # httpx logged its requests
    for secret in (fake.password, old_sid, new_sid):
        assert secret not in caplog.text


async def test_a_session_renewal_logs_one_info_line_naming_the_connection(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    install_redaction()
    caplog.set_level(logging.INFO, logger="gpshub.test.tracking3d")
    fake = served.fake
    (uid,) = units(served, 1)
    state = MemoryStateStore()
    source = make_source(state=state)
    first = await source.poll(refs([uid]), empty([uid]))
    assert not [r for r in caplog.records if r.levelno == logging.INFO]  # the first login

    def renewals() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelno == logging.INFO and "logging in again" in r.getMessage()
        ]

    old_sid = state.data[SESSION_KEY]["session_id"]
    fake.expire_sessions()
    second = await source.poll(refs([uid]), first.cursors)
    (line,) = renewals()
    assert "#1" in line and "fleet@example.com" in line and "expired session" in line
    await trio.sleep(84_600)  # 23.5 h later
    fake.session_ttl_s = 10 * 86_400
    await source.poll(refs([uid]), second.cursors)
    assert len(renewals()) == 2 and "h old" in renewals()[1] and "#1" in renewals()[1]
    new_sid = state.data[SESSION_KEY]["session_id"]
    for secret in (fake.password, old_sid, new_sid, fake.user_id_guid):
        assert all(secret not in text for text in renewals())


# -- faults --------------------------------------------------------------------------------
async def test_429_is_rate_limited_with_retry_after(
    served: Served, make_source: MakeSource
) -> None:
    (uid,) = units(served, 1)
    source = make_source()
    await source.test_connection()
    served.fake.rate_limit(retry_after=45)
    with pytest.raises(RateLimited) as err:
        await source.poll(refs([uid]), empty([uid]))
    assert err.value.retry_after == 45


async def test_5xx_is_cannot_connect(served: Served, make_source: MakeSource) -> None:
    (uid,) = units(served, 1)
    served.fake.fail(503)
    with pytest.raises(CannotConnect):
        await make_source().poll(refs([uid]), empty([uid]))


async def test_broken_json_is_update_failed(served: Served, make_source: MakeSource) -> None:
    (uid,) = units(served, 1)
    source = make_source()
    await source.test_connection()
    served.fake.malformed()
    with pytest.raises(UpdateFailed, match="broken JSON"):
        await source.poll(refs([uid]), empty([uid]))


async def test_an_error_envelope_is_update_failed_without_a_relogin(
    served: Served, make_source: MakeSource
) -> None:
    (uid,) = units(served, 1)
    source = make_source()
    await source.test_connection()
    served.fake.platform_error(code=50021, message="Permission denied")
    with pytest.raises(UpdateFailed, match="denied permission"):
        await source.poll(refs([uid]), empty([uid]))
    served.fake.platform_error(code=50500, message="Database unavailable")
    with pytest.raises(UpdateFailed, match="Database unavailable"):
        await source.poll(refs([uid]), empty([uid]))
    assert served.fake.logins == 1


async def test_a_slow_answer_times_out_as_cannot_connect(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    (uid,) = units(served, 1)
    source = make_source(timeout_s=5)
    await source.test_connection()
    served.fake.delay = 30
    with pytest.raises(CannotConnect, match="in time"):
        await source.poll(refs([uid]), empty([uid]))
