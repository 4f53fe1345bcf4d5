"""Polling ``FakeFlespi`` over loopback: ranges, boundaries, batching, pages, late
messages, telemetry fallback, device sync and units."""

from __future__ import annotations

import math
import re

import pytest
import trio
from flespi_world import T0, World, at
from trio.testing import MockClock

from gpshub_flespi.source import FUTURE_SLACK_S, TELEMETRY_TS
from hub.source import Cursor, DeviceRef
from hub.testing import Poller
from hub.testing import device_refs as refs


async def test_first_poll_backfills_an_hour_then_only_new_fixes(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Truck 7", imei="356307042441013")
    now = world.now()
    for age in (7200, 3599, 1800.5, 60, 0):  # the first is older than the backfill
        fake.add_fix(unit, now - age, 14.6, -90.5)
    poller = Poller(world.source(), refs([unit]))
    result = await poller.poll()
    assert poller.times(unit) == [now - 3599, now - 1800.5, now - 60, now]
    assert result.cursors[unit].last_fix_time == at(now)

    await trio.sleep(30)
    now = world.now()
    fake.add_fix(unit, now - 10, 14.7, -90.5)
    fake.add_fix(unit, now, 14.8, -90.5)
    await poller.poll()
    assert poller.times(unit)[4:] == [now - 10, now]

    await trio.sleep(30)
    result = await poller.poll()
    assert result.fixes == {}


async def test_no_gaps_and_no_duplicates_across_many_polls(
    world: World, gpshub_clock: MockClock
) -> None:
    """Fixes arrive at every moment, including exactly at the previous poll's end and at
    the same instant as the newest fix: each is emitted exactly once."""
    fake = world.fake
    units = [fake.add_unit(f"unit {i}") for i in range(3)]
    poller = Poller(world.source(), refs(units))
    expected: dict[str, list[float]] = {u: [] for u in units}
    for step in range(12):
        now = world.now()
        for i, unit in enumerate(units):
            times = [now - 29.999999, now - 15.5 + i, now]
            if step % 3 == 0:
                times.append(now - 0.000001)
            for t in times:
                fake.add_fix(unit, t, 10.0 + step / 100, 20.0, speed_kmh=step)
                expected[unit].append(t)
        await poller.poll()
        await trio.sleep(30)
    await poller.poll()
    for unit in units:
        assert sorted(poller.times(unit)) == sorted(expected[unit])
        assert len(set(poller.times(unit))) == len(expected[unit])


async def test_fix_times_keep_microseconds_and_units_stay_metric(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Van")
    t = world.now() - 5.123456
    fake.add_fix(
        unit,
        t,
        43.955218,
        37.661918,
        speed_kmh=87.5,
        course=281,
        altitude=244,
        satellites=15,
        ignition=True,
    )
    result = await world.source().poll(refs([unit]), {})
    (fix,) = result.fixes[unit]
    assert fix.fix_time == at(t)
    assert fix.fix_time.microsecond == round((t % 1) * 1e6)
    assert (fix.lat, fix.lon) == (43.955218, 37.661918)
    assert (fix.speed_kmh, fix.course_deg, fix.altitude_m, fix.satellites) == (87.5, 281, 244, 15)
    assert fix.ignition is True
    assert fix.valid is True


async def test_sensors_keep_flespi_names_and_add_normalised_keys(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Bus", imei="111115555599999")
    fake.add_fix(
        unit,
        world.now(),
        1.0,
        2.0,
        params={
            "position.hdop": 0.3,
            "battery.voltage": 3.938,
            "gsm.operator.code": "25701",
            "gnss.status": True,
            "vehicle.mileage": 120345.6,
            "engine.motorhours": 5012.25,
            "can.tyres": {"front": 8.1, "rear": 8.4},
            "ble.beacons": [1, 2],
        },
    )
    result = await world.source().poll(refs([unit]), {})
    (fix,) = result.fixes[unit]
    assert fix.sensors == {
        "position.hdop": 0.3,
        "battery.voltage": 3.938,
        "gsm.operator.code": "25701",
        "gnss.status": True,
        "vehicle.mileage": 120345.6,
        "engine.motorhours": 5012.25,
        "can.tyres.front": 8.1,
        "can.tyres.rear": 8.4,
        "platform_odometer_km": 120345.6,
        "platform_engine_hours": 5012.25,
    }


async def test_invalid_fixes_are_kept_with_valid_false(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Tractor")
    now = world.now()
    fake.add_fix(unit, now - 2, 5.0, 6.0, valid=False, satellites=2)
    fake.add_fix(unit, now - 1, 5.0, 6.0, valid=True)
    result = await world.source().poll(refs([unit]), {})
    assert [f.valid for f in result.fixes[unit]] == [False, True]


async def test_records_that_are_not_fixes_are_skipped_not_fatal(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Odd")
    now = world.now()
    fake.add_message(unit, now - 4, {"battery.voltage": 3.9})  # no position
    fake.add_fix(unit, now - 3, 91.0, 0.0)  # latitude out of range
    fake.add_message(unit, now - 2, {"position.latitude": "x", "position.longitude": 1.0})
    fake.add_raw(unit, ["not", "an", "object"], sort_time=now - 1.5)
    fake.add_fix(unit, now - 1, 1.0, 1.0)
    result = await world.source().poll(refs([unit]), {})
    assert [f.fix_time for f in result.fixes[unit]] == [at(now - 1)]


async def test_devices_share_one_request_per_batch(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    units = [fake.add_unit(f"car {i}") for i in range(25)]
    poller = Poller(world.source(batch_size=10), refs(units))
    for _ in range(3):
        for unit in units:
            fake.add_fix(unit, world.now(), 1.0, 1.0)
        fake.requests.clear()
        await poller.poll()
        assert fake.requests["/gw/devices/messages"] == math.ceil(25 / 10)
        await trio.sleep(30)
    assert fake.requests["/gw/devices"] == 0  # synced on the first poll only
    assert all(len(poller.fixes[u]) == 3 for u in units)
    selectors = [q[1] for q in fake.queries]
    assert sorted(len(s.split(",")) for s in selectors[-3:]) == [5, 10, 10]


async def test_steady_state_requests_per_poll(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    units = [fake.add_unit(f"car {i}") for i in range(30)]
    poller = Poller(world.source(batch_size=7, sync_every_s=600), refs(units))
    counts = []
    for _ in range(25):  # 12.5 minutes: two syncs
        for unit in units:
            fake.add_fix(unit, world.now(), 1.0, 1.0)
        before = fake.request_count
        await poller.poll()
        counts.append(fake.request_count - before)
        await trio.sleep(30)
    assert counts[0] == 1 + math.ceil(30 / 7)  # the sync
    assert counts.count(1 + math.ceil(30 / 7)) == 2  # at 0 and 600 s
    assert max(counts) <= 2 + math.ceil(30 / 7)
    assert set(counts) == {math.ceil(30 / 7), 1 + math.ceil(30 / 7)}


async def test_count_is_the_key_never_limit(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    unit = fake.add_unit("one")
    await world.source(page_size=123).poll(refs([unit]), {})
    (query,) = [q for q in fake.queries if q[0] == "messages"]
    data = query[2]
    assert data is not None
    assert data["count"] == 123
    assert "limit" not in data
    assert isinstance(data["from"], float) and isinstance(data["to"], float)


async def test_full_pages_are_followed(world: World, gpshub_clock: MockClock) -> None:
    fake = world.fake
    unit = fake.add_unit("chatty")
    other = fake.add_unit("quiet")
    now = world.now()
    times = [now - 100 + i * 4 for i in range(23)]
    for t in times:
        fake.add_fix(unit, t, 1.0, 1.0)
    fake.add_fix(other, now - 50, 2.0, 2.0)
    poller = Poller(world.source(page_size=5), refs([unit, other]))
    await poller.poll()
    assert poller.times(unit) == times
    assert poller.times(other) == [now - 50]
    assert fake.requests["/gw/devices/messages"] == math.ceil(24 / 4)  # 4 new per full page


async def test_the_page_budget_bounds_a_poll_and_the_next_continues(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("backlog")
    now = world.now()
    times = [now - 3000 + 50 * i for i in range(60)]  # an hour of backlog
    for t in times:
        fake.add_fix(unit, t, 1.0, 1.0)
    poller = Poller(world.source(page_size=10, max_extra_pages=2), refs([unit]))
    first = await poller.poll()
    assert fake.requests["/gw/devices/messages"] == 3
    assert poller.times(unit) == times[:28]  # 10 + 9 + 9 new: pages overlap by one
    assert "scan" not in first.cursors[unit].state  # cut short: not marked as scanned
    for _ in range(3):
        await trio.sleep(30)
        await poller.poll()
    # Caught up, nothing lost.  The scan that follows a catch-up reads the lookback again
    # without marks (late arrivals behind the resume point); the store drops the repeats.
    assert sorted(set(poller.times(unit))) == times
    emitted = len(poller.times(unit))
    assert emitted <= len(times) + 10
    fake.requests.clear()
    for _ in range(3):
        await trio.sleep(30)
        await poller.poll()
    assert len(poller.times(unit)) == emitted  # then steady: nothing again
    assert fake.requests["/gw/devices/messages"] == 3  # one page per poll


async def test_late_back_dated_messages_are_picked_up_once(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("black box")
    now = world.now()
    fake.add_fix(unit, now - 20, 1.0, 1.0)
    fake.add_fix(unit, now, 1.1, 1.0)
    poller = Poller(world.source(), refs([unit]))
    await poller.poll()
    await trio.sleep(30)
    # Uploaded now, recorded two minutes ago (behind the cursor) and ten minutes ago
    # (behind the late window: flespi's API could serve it, this plugin does not look).
    later = world.now()
    fake.add_fix(unit, now - 120, 1.2, 1.0)
    fake.add_fix(unit, now - 600, 1.3, 1.0)
    fake.add_fix(unit, later, 1.4, 1.0)
    await poller.poll()
    assert poller.times(unit) == [now - 20, now, now - 120, later]
    for _ in range(3):
        await trio.sleep(30)
        result = await poller.poll()
        assert result.fixes == {}


async def test_already_received_messages_are_not_transferred_again(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    units = [fake.add_unit(f"u{i}") for i in range(3)]
    poller = Poller(world.source(), refs(units))
    for unit in units:
        fake.add_fix(unit, world.now(), 1.0, 1.0)
    await poller.poll()
    await trio.sleep(30)
    for unit in units:
        fake.add_fix(unit, world.now(), 1.0, 1.0)
    fake.add_fix(units[0], world.now() - 100, 1.0, 1.0)  # late
    fake.queries.clear()
    await poller.poll()
    (query,) = fake.queries
    data = query[2]
    assert data is not None
    match = re.fullmatch(r"server\.timestamp>=(.+)\|\|timestamp>(.+)", data["filter"])
    assert match is not None
    floor, beyond = match.groups()
    assert float(floor) == pytest.approx(world.now() - 30, abs=1)  # the newest receive time
    assert float(beyond) == pytest.approx(world.now() - 30 + FUTURE_SLACK_S, abs=1)  # last 'to'
    assert sum(len(v) for v in poller.fixes.values()) == 7


async def test_a_device_unknown_upstream_is_skipped_and_the_rest_kept(
    world: World, gpshub_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    fake = world.fake
    units = [fake.add_unit(f"u{i}") for i in range(3)]
    source = world.source(sync_every_s=3600)
    poller = Poller(source, refs(units))
    await poller.poll()  # synced: all three exist
    fake.remove_unit(units[1])
    for unit in (units[0], units[2]):
        fake.add_fix(unit, world.now(), 1.0, 1.0)
    for mode in ("errors", "404"):
        fake.missing_mode = mode  # type: ignore[assignment]
        caplog.clear()
        source._missing.clear()
        source._warned.clear()
        for _ in range(3):
            result = await poller.poll()
            assert units[1] not in result.cursors
            await trio.sleep(30)
        assert sorted(poller.fixes) == [units[0], units[2]]
        warnings = [r for r in caplog.records if units[1] in r.getMessage()]
        assert len(warnings) == 1, mode


async def test_a_device_removed_upstream_is_noticed_at_sync(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    units = [fake.add_unit(f"u{i}") for i in range(2)]
    fake.remove_unit(units[0])
    result = await world.source().poll(refs(units), {})
    assert set(result.cursors) == {units[1]}
    assert fake.queries[-1][1] == units[1]


async def test_new_device_with_short_ttl_shows_its_telemetry_position(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("short ttl", messages_ttl=0)
    normal = fake.add_unit("normal")
    t = world.now() - 7200  # older than the backfill: only telemetry has it
    fake.add_fix(unit, t, 3.0, 4.0, speed_kmh=12.0, params={"battery.voltage": 4.1})
    fake.add_message(unit, t - 50, {"engine.ignition.status": True})  # an older parameter
    fake.add_fix(normal, world.now(), 1.0, 1.0)
    poller = Poller(world.source(), refs([unit, normal]))
    result = await poller.poll()
    (fix,) = result.fixes[unit]
    assert (fix.fix_time, fix.lat, fix.lon, fix.speed_kmh) == (at(t), 3.0, 4.0, 12.0)
    assert fix.sensors == {"battery.voltage": 4.1}
    assert fix.ignition is None  # the ignition value came from another message
    cursor = result.cursors[unit]
    assert cursor.last_fix_time is None  # messages that arrive later are still fetched
    assert cursor.state[TELEMETRY_TS] == t
    assert fake.requests["/gw/devices/telemetry"] == 1

    await trio.sleep(30)
    result = await poller.poll()
    assert unit not in result.fixes  # the same telemetry position is not emitted twice
    assert fake.requests["/gw/devices/telemetry"] == 2  # asked again: still no messages

    await trio.sleep(30)
    moved = world.now()
    fake.add_fix(unit, moved, 3.5, 4.0)  # a new position: telemetry moves on
    result = await poller.poll()
    assert [f.fix_time for f in result.fixes[unit]] == [at(moved)]


async def test_telemetry_is_not_asked_for_devices_with_messages(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("normal")
    fake.add_fix(unit, world.now(), 1.0, 1.0)
    poller = Poller(world.source(), refs([unit]))
    await poller.poll()
    await trio.sleep(30)
    await poller.poll()  # no new message, but a fix before
    assert fake.requests["/gw/devices/telemetry"] == 0


async def test_a_device_first_seen_by_telemetry_then_by_messages(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("arrives late")
    old = world.now() - 7000
    fake.add_fix(unit, old, 1.0, 1.0)
    poller = Poller(world.source(), refs([unit]))
    await poller.poll()  # outside the backfill: from telemetry
    assert poller.times(unit) == [old]
    await trio.sleep(30)
    late = world.now() - 100  # recorded after the telemetry fix, uploaded now
    fake.add_fix(unit, late, 1.0, 1.0)
    await poller.poll()
    assert poller.times(unit) == [old, late]


async def test_names_and_plates_are_synced_on_schedule(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("Truck", imei="356307042441013", plate="ABC-1")
    source = world.source(sync_every_s=600)
    first = await source.poll(refs([unit]), {})
    remote = first.devices[unit]
    assert (remote.name, remote.imei, remote.license_plate) == (
        "Truck",
        "356307042441013",
        "ABC-1",
    )
    fake.rename(unit, "Truck 2")
    fake.set_plate(unit, "XYZ-9")
    await trio.sleep(300)
    assert (await source.poll(refs([unit]), first.cursors)).devices == {}
    await trio.sleep(300)
    synced = (await source.poll(refs([unit]), first.cursors)).devices[unit]
    assert (synced.name, synced.license_plate) == ("Truck 2", "XYZ-9")


async def test_device_ids_that_are_not_flespi_ids_are_never_sent(
    world: World, gpshub_clock: MockClock
) -> None:
    fake = world.fake
    unit = fake.add_unit("ok")
    fake.add_fix(unit, world.now(), 1.0, 1.0)
    devices = [DeviceRef(1, unit), DeviceRef(2, "all"), DeviceRef(3, "1,2"), DeviceRef(4, "{x}")]
    result = await world.source().poll(devices, {})
    assert list(result.fixes) == [unit]
    assert all(q[1] == unit for q in fake.queries)


async def test_future_device_clock_is_still_fetched(world: World, gpshub_clock: MockClock) -> None:
    """A device clock a few minutes ahead of the server: its messages are not lost to
    the server-side receive filter once their time is 'now'."""
    fake = world.fake
    unit = fake.add_unit("ahead")
    now = world.now()
    fake.add_fix(unit, now, 1.0, 1.0)
    poller = Poller(world.source(), refs([unit]))
    await poller.poll()
    fake.add_fix(unit, now + 120, 1.0, 1.0)
    await trio.sleep(30)
    await poller.poll()
    await trio.sleep(300)
    await poller.poll()
    assert poller.times(unit) == [now, now + 120]


async def test_many_devices_with_different_starts_form_groups(
    world: World, gpshub_clock: MockClock
) -> None:
    """Reporting devices share a call when their starts are close; silent ones share one
    whatever their starts, from the earliest (at most ``max_lookback_s`` back)."""
    fake = world.fake
    fresh = [fake.add_unit(f"fresh {i}") for i in range(3)]
    stale = [fake.add_unit(f"stale {i}") for i in range(2)]
    for unit in fresh + stale:
        fake.add_fix(unit, world.now() - 10, 1.0, 1.0)
    poller = Poller(world.source(), refs(fresh))
    await poller.poll()
    last = {stale[0]: T0 - 2 * 86400, stale[1]: T0 - 7200}  # silent for two days, two hours
    cursors = dict(poller.cursors)
    cursors.update({u: Cursor(at(t), {"rt": t}) for u, t in last.items()})
    fake.queries.clear()
    result = await poller.source.poll(refs(fresh + stale), cursors)
    assert sorted(result.fixes) == sorted(stale)
    windows = sorted((q[2]["from"], len(q[1].split(","))) for q in fake.queries if q[2])
    assert windows == [
        (pytest.approx(world.now() - 86400, abs=1), 2),
        (pytest.approx(world.now() - 10 - 300, abs=1), 3),
    ]
