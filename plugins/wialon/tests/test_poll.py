"""Polling against the fake on loopback: ranges, batching, paging, late messages, fields."""

from __future__ import annotations

import logging
import math
from datetime import timedelta

import pytest
import trio
from trio.testing import MockClock
from wialon_support import EPOCH, T0, MakeSource, refs

from gpshub_wialon import protocol as p
from hub import PLATFORM_ENGINE_HOURS, PLATFORM_ODOMETER_KM
from hub.rangepoll import ORIGIN, RESUME
from hub.testing import Poller, Served


async def test_first_poll_backfills_then_each_fix_comes_once(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck 1", imei="356307042441013")
    for t in (-4000, -3600, -120, -60):  # -4000 is older than the backfill
        fake.add_fix(unit, T0 + t, 53.9, 27.5, received=T0 + t)
    poller = Poller(make_source(), refs(unit))
    await poller.poll()
    assert poller.times(unit) == [T0 - 3600, T0 - 120, T0 - 60]
    assert poller.cursors[unit].last_fix_time == EPOCH - timedelta(seconds=60)

    await trio.sleep(30)
    fake.add_fix(unit, T0 + 30, 53.9, 27.5)  # exactly at the end of the range: now
    await poller.poll()
    await trio.sleep(30)
    fake.add_fix(unit, T0 + 45, 53.9, 27.5)
    fake.add_fix(unit, T0 + 60, 53.9, 27.5)
    await poller.poll()
    await trio.sleep(30)
    await poller.poll()  # nothing new
    assert poller.times(unit) == [T0 - 3600, T0 - 120, T0 - 60, T0 + 30, T0 + 45, T0 + 60]


async def test_the_boundary_second_is_neither_lost_nor_repeated(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    """A fix at the very second of a poll, and one more stored in that second after the
    poll (Wialon keeps whole seconds), each arrive exactly once."""
    fake = served.fake
    unit = fake.add_unit("Van")
    poller = Poller(make_source(late_window_s=0), refs(unit))
    fake.add_fix(unit, T0, 1.0, 2.0)
    await poller.poll()
    assert poller.times(unit) == [T0]
    await poller.poll()  # same instant: the fix at the boundary is not repeated
    assert poller.times(unit) == [T0]
    await trio.sleep(1)
    fake.add_fix(unit, T0 + 1, 1.0, 2.0)
    await poller.poll()
    await trio.sleep(29)
    await poller.poll()
    assert poller.times(unit) == [T0, T0 + 1]


async def test_units_are_batched_and_steady_cycles_cost_one_request_per_batch(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    units = [fake.add_unit(f"Unit {i:02d}") for i in range(25)]
    poller = Poller(make_source(batch_size=10, sync_every_s=600), refs(*units))
    for cycle in range(4):
        for unit in units:
            fake.add_fix(unit, T0 + 30 * cycle, 10.0, 20.0)
        before = fake.requests.copy()
        result = await poller.poll()
        spent = fake.requests - before
        if cycle == 0:  # login, unit sync, then the batches
            assert spent == {p.LOGIN: 1, p.SEARCH_ITEMS: 1, p.BATCH: 3}
            assert sorted(result.devices) == sorted(units)
        else:
            assert spent == {p.BATCH: math.ceil(25 / 10)}
            assert result.devices == {}
        await trio.sleep(30)
    assert fake.executed[p.LOAD_INTERVAL] == 4 * 25
    assert fake.executed[p.UNLOAD] == 4 * 3
    assert all(poller.times(u) == [T0, T0 + 30, T0 + 60, T0 + 90] for u in units)


async def test_units_are_synced_every_sync_interval(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Old name", imei="111", plate="AB-1")
    poller = Poller(make_source(sync_every_s=120), refs(unit))
    first = await poller.poll()
    assert first.devices[unit].name == "Old name"
    assert first.devices[unit].license_plate == "AB-1"
    fake.rename(unit, "New name")
    fake.set_plate(unit, "CD-2")
    synced = []
    for _ in range(5):
        await trio.sleep(30)
        result = await poller.poll()
        synced.append(result.devices.get(unit))
    assert [d is not None for d in synced] == [False, False, False, True, False]
    renamed = synced[3]
    assert renamed is not None
    assert (renamed.name, renamed.imei, renamed.license_plate) == ("New name", "111", "CD-2")


async def test_a_backlog_is_paged_within_a_budget_and_finished_next_poll(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Black box")
    other = fake.add_unit("Quiet")
    times = [T0 - 1000 + 10 * i for i in range(20)]
    for t in times:
        fake.add_fix(unit, t, 5.0, 5.0)
    poller = Poller(make_source(page_size=3, max_pages=4, batch_size=10), refs(unit, other))
    await poller.poll()
    assert poller.times(unit) == times[:12]  # four pages of three
    assert fake.requests[p.BATCH] == 4
    assert fake.executed[p.LOAD_INTERVAL] == 2 + 3  # the quiet unit had one page only
    assert poller.cursors[unit].state[RESUME] == times[11] + 1  # continued after page 4
    assert RESUME not in poller.cursors[other].state  # its range was complete
    assert poller.cursors[other].state[ORIGIN] == T0 - 3600  # no fix: it keeps its start
    await trio.sleep(30)
    await poller.poll()
    assert poller.times(unit) == times
    assert RESUME not in poller.cursors[unit].state


async def test_a_late_back_dated_message_is_picked_up_once(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    poller = Poller(make_source(late_window_s=300), refs(unit))
    fake.add_fix(unit, T0 - 10, 1.0, 1.0)
    await poller.poll()
    await trio.sleep(30)
    # uploaded from the black box now, dated two minutes ago: older than the cursor
    fake.add_fix(unit, T0 - 120, 1.5, 1.5, params={"late": 1})
    fake.add_fix(unit, T0 + 20, 2.0, 2.0)
    await poller.poll()
    await trio.sleep(30)
    await poller.poll()
    assert poller.times(unit) == [T0 - 10, T0 - 120, T0 + 20]
    assert poller.fixes[unit][1].sensors["late"] == 1
    # older than the late window: out of reach, as documented
    await trio.sleep(30)
    fake.add_fix(unit, T0 - 1000, 3.0, 3.0)
    await poller.poll()
    assert len(poller.fixes[unit]) == 3


async def test_fields_units_and_sensors(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    fake.add_fix(
        unit,
        T0 - 5,
        53.9205504,
        27.4921152,
        speed_kmh=62.4,
        course=359.6,
        altitude=238.2,
        satellites=11,
        ignition=True,
        inputs=0b101,
        outputs=0b10,
        params={"pwr_ext": 12.356, "fuel_lvl": 41, "io_239": 1, "driver": "Ann"},
    )
    poller = Poller(make_source(), refs(unit))
    await poller.poll()
    (fix,) = poller.fixes[unit]
    fix.validate()
    assert fix.fix_time == EPOCH - timedelta(seconds=5)
    assert fix.fix_time.utcoffset() == timedelta(0)
    assert (fix.lat, fix.lon) == (53.9205504, 27.4921152)
    assert (fix.speed_kmh, fix.course_deg, fix.altitude_m, fix.satellites) == (62, 0, 238, 11)
    assert fix.valid is True and fix.ignition is True
    assert fix.sensors == {
        "pwr_ext": 12.356,
        "fuel_lvl": 41,
        "io_239": 1,  # read as the ignition first, and kept
        "ign": 1,  # so the fake's ignition parameter stays a plain parameter
        "driver": "Ann",
        "input": 5,
        **{f"in{n}": n in (1, 3) for n in range(1, 9)},
        "output": 2,
        **{f"out{n}": n == 2 for n in range(1, 9)},
    }


async def test_invalid_fixes_are_kept_and_marked(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    fake.add_fix(unit, T0 - 40, 1.0, 1.0, satellites=9)
    fake.add_fix(unit, T0 - 30, 1.0, 1.0, valid=False)  # no satellites
    fake.add_fix(unit, T0 - 20, 1.0, 1.0, lbs=True)
    fake.add_fix(unit, T0 - 10, 1.0, 1.0, wifi=True)
    poller = Poller(make_source(), refs(unit))
    await poller.poll()
    assert [f.valid for f in poller.fixes[unit]] == [True, False, False, False]
    assert poller.fixes[unit][1].satellites == 0


async def test_only_data_messages_with_a_position_are_loaded(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    fake.add_fix(unit, T0 - 50, 1.0, 1.0)
    fake.add_message(unit, {"t": T0 - 40, "f": 0, "tp": "us", "st": "hello", "mp": "", "p": {}},
                     kind=p.MSG_SMS)  # fmt: skip
    fake.add_message(unit, {"t": T0 - 30, "f": 2, "tp": "ud", "pos": None, "i": 1, "p": {}})
    fake.add_message(unit, {"t": T0 - 20, "f": 0, "tp": "ud", "p": {}}, kind=p.MSG_USER_LOG | 1)
    fake.add_fix(unit, T0 - 10, 2.0, 2.0)
    poller = Poller(make_source(), refs(unit))
    await poller.poll()
    assert poller.times(unit) == [T0 - 50, T0 - 10]


async def test_broken_records_are_skipped_not_fatal(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    good = fake.add_fix(unit, T0 - 30, 1.0, 1.0)
    fake.add_message(unit, {**good, "t": T0 - 20, "pos": {"y": 95.0, "x": 1.0}})
    fake.add_message(unit, {**good, "t": T0 - 15, "pos": {"y": "north", "x": 1.0}})
    fake.add_fix(unit, T0 - 10, 2.0, 2.0)
    poller = Poller(make_source(), refs(unit))
    await poller.poll()
    assert poller.times(unit) == [T0 - 30, T0 - 10]


async def test_per_unit_errors_do_not_stop_the_others(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = served.fake
    ok, denied, flaky = (fake.add_unit(n) for n in ("ok", "denied", "flaky"))
    for unit in (ok, denied, flaky):
        fake.add_fix(unit, T0 - 10, 1.0, 1.0)
    fake.deny(denied)
    fake.item_error(flaky, p.ERR_PERFORMING)
    poller = Poller(make_source(), refs(ok, denied, flaky, "not-a-number"))
    with caplog.at_level(logging.WARNING, logger="gpshub.test.wialon"):
        result = await poller.poll()
        assert set(result.fixes) == {ok}
        assert set(result.cursors) == {ok}  # the others stay where they were
        await trio.sleep(30)
        result = await poller.poll()
    assert set(result.cursors) == {ok, flaky}
    assert poller.times(flaky) == [T0 - 10]
    assert caplog.text.count(f"unit {denied} (error 7)") == 1  # logged once
    assert caplog.text.count("'not-a-number'") == 1
    assert fake.executed[p.LOAD_INTERVAL] == 6  # the bad upstream id is never sent


async def test_error_1001_means_no_messages(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    fake.empty_error = True
    unit = fake.add_unit("Parked")
    poller = Poller(make_source(), refs(unit))
    result = await poller.poll()
    assert result.fixes == {} and result.cursors[unit].state[ORIGIN] == T0 - 3600
    await trio.sleep(30)
    fake.add_fix(unit, T0 - 1800, 1.0, 1.0)  # uploaded late, within the first range
    await poller.poll()
    assert poller.times(unit) == [T0 - 1800]


async def test_each_units_own_sensors_give_ignition_and_values_without_extra_requests(
    served: Served,
    make_source: MakeSource,
    gpshub_clock: MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Users name and wire the same sensors differently on each unit; some units have no
    ignition sensor.  Sensors come with the unit list: a poll costs no more requests."""
    fake = served.fake
    reefer, tractor, van, old = (fake.add_unit(n) for n in ("Reefer", "Tractor", "Van", "Old"))
    fake.add_sensor(reefer, "Ignition", "engine operation", "in2")
    fake.add_sensor(reefer, "Reefer temp", "temperature", "temp1/10", metrics="°C")
    fake.add_sensor(reefer, "CAN odometer", "mileage", "can_mileage", metrics="m")
    fake.add_sensor(tractor, "Зажигание", "engine operation", "param199:3")
    fake.add_sensor(tractor, "Бак", "fuel level", "can_fuel", table=[(0, 2.0, 0)])
    fake.add_sensor(tractor, "Моточасы", "engine hours", "engine_s", metrics="s")
    fake.add_sensor(van, "Fuel level", "fuel level", "fuel_lvl")  # no ignition sensor
    fake.add_sensor(van, "Battery", "voltage", "pwr_ext/1000", metrics="V")
    fake.add_sensor(old, "Ignition", "engine operation", "#in1")  # cannot be evaluated
    params = {"temp1": -185, "can_mileage": 1_500_000, "param199": 0b100, "can_fuel": 30,
              "engine_s": 36_000, "fuel_lvl": 55, "pwr_ext": 12_800, "io_239": 1, "ign": 0}  # fmt: skip
    for unit in (reefer, tractor, van, old):
        fake.add_fix(unit, T0 - 10, 1.0, 1.0, inputs=0b10, params=params)
    poller = Poller(make_source(sync_every_s=60), refs(reefer, tractor, van, old))
    with caplog.at_level(logging.WARNING, logger="gpshub.test.wialon"):
        await poller.poll()
        for _ in range(2):
            await trio.sleep(60)  # sync_every_s: the unit list is read again
            await poller.poll()
    assert fake.requests == {p.LOGIN: 1, p.SEARCH_ITEMS: 3, p.BATCH: 3}  # one batch a poll

    (fix,) = poller.fixes[reefer]
    assert fix.ignition is True  # in2 (its sensor), although io_239 says so too
    assert fix.sensors["reefer_temp"] == -18.5
    assert fix.sensors[PLATFORM_ODOMETER_KM] == 1500.0
    (fix,) = poller.fixes[tractor]
    assert fix.ignition is True  # bit 3 of param199
    assert fix.sensors["бак"] == 60 and fix.sensors[PLATFORM_ENGINE_HOURS] == 10
    (fix,) = poller.fixes[van]
    assert fix.ignition is True  # no sensor: io_239 comes first
    assert fix.sensors["fuel_level"] == 55 and fix.sensors["battery"] == 12.8
    (fix,) = poller.fixes[old]
    assert fix.ignition is True  # its sensor is skipped: io_239 again
    for unit in (reefer, tractor, van, old):
        fixes = poller.fixes[unit]
        assert {k: fixes[0].sensors[k] for k in params} == params  # raw parameters kept
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # once, though the unit list was read three times
    assert f"Wialon unit {old}: sensor 'Ignition' (engine operation)" in warnings[0]
    assert "previous message" in warnings[0]


async def test_a_sensor_added_in_wialon_is_used_after_the_next_sync(
    served: Served, make_source: MakeSource, gpshub_clock: MockClock
) -> None:
    fake = served.fake
    unit = fake.add_unit("Truck")
    poller = Poller(make_source(sync_every_s=120), refs(unit))
    fake.add_fix(unit, T0 - 5, 1.0, 1.0, params={"ain1": 5, "ign": 0})
    await poller.poll()
    fake.add_sensor(unit, "Engine", "engine operation", "ain1 - const1")
    for step in range(1, 5):
        await trio.sleep(30)
        fake.add_fix(unit, T0 + 30 * step, 1.0, 1.0, params={"ain1": 5, "ign": 0})
        await poller.poll()
    # ign until the unit list is read again (120 s later), then the unit's own sensor
    assert [f.ignition for f in poller.fixes[unit]] == [False, False, False, False, True]
