"""Satellites and sensor values from the sensor reading feed, matched to fixes by unit and
time, at the cost of account-wide requests only."""

from __future__ import annotations

import pytest
from tracking3d_support import T0, MakeSource, empty

from hub.source import Cursor, MemoryStateStore
from hub.testing import Served
from hub.testing import device_refs as refs

READINGS = {
    "Fuel Level": 55.5,
    "External Battery": 13.8,
    "GSM Signal Strength": 4,
    "Temperature": -18.5,
}


@pytest.mark.parametrize("times", ["local", "utc", "both"])
async def test_satellites_and_sensor_values_come_from_the_reading_feed(
    served: Served, make_source: MakeSource, times: str
) -> None:
    fake = served.fake
    fake.reading_times = times
    a = fake.add_unit("Truck A", sensor_names={"Fuel Level": "Diesel tank"})
    b = fake.add_unit("Truck B", sensor_names={"Fuel Level": "Fuel (L)", "Temperature": "Reefer"})
    for uid in (a, b):
        fake.add_fix(
            uid, T0 - 30, 1.0, 1.0, satellites=11, readings=READINGS, params={"Door": "closed"}
        )
    result = await make_source().poll(refs([a, b]), empty([a, b]))
    for uid in (a, b):
        (fix,) = result.fixes[uid]
        assert fix.satellites == 11
        assert fix.sensors["fuel_level_l"] == 55.5  # one key, whatever each unit calls it
        assert fix.sensors["external_battery_v"] == 13.8
        assert fix.sensors["gsm_signal_strength"] == 4.0
        assert fix.sensors["temperature_c"] == -18.5
        assert fix.sensors["door"] == "closed"  # a custom sensor: by its name
        fix.validate()


async def test_two_sensors_of_one_type_on_a_unit_keep_their_names(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    uid = fake.add_unit("Reefer")
    fake.add_reading(uid, T0 - 30, "Temperature", "-18.5", name="Front probe")
    fake.add_reading(uid, T0 - 30, "Temperature", "-17", name="Rear probe")
    fake.add_reading(uid, T0 - 30, "Fuel Level", "80", sign="%")
    fake.add_fix(uid, T0 - 30, 1.0, 1.0)
    (fix,) = (await make_source().poll(refs([uid]), empty([uid]))).fixes[uid]
    assert fix.sensors["temperature_front_probe_c"] == -18.5
    assert fix.sensors["temperature_rear_probe_c"] == -17.0
    assert fix.sensors["fuel_level_pct"] == 80.0


async def test_a_reading_at_or_shortly_before_a_fix_belongs_to_it(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    uid = fake.add_unit("Truck")
    fake.add_reading(uid, T0 - 400, "Temperature", "3")  # too old for any fix below
    fake.add_reading(uid, T0 - 130, "Fuel Level", "50")  # 30 s before the first fix
    fake.add_fix(uid, T0 - 100, 1.0, 1.0, satellites=None)
    fake.add_reading(uid, T0 - 95, "Fuel Level", "49")  # after the first, before the second
    fake.add_fix(uid, T0 - 80, 1.0, 1.0, satellites=None)
    fake.add_fix(uid, T0 - 10, 1.0, 1.0, satellites=None)  # 85 s after the last reading
    first, second, third = (await make_source().poll(refs([uid]), empty([uid]))).fixes[uid]
    assert first.sensors.get("fuel_level_l") == 50.0
    assert second.sensors.get("fuel_level_l") == 49.0
    assert "fuel_level_l" not in third.sensors  # beyond the 60 s window
    assert all("temperature_c" not in f.sensors and f.satellites is None for f in (first, third))


async def test_a_reading_ahead_of_the_fixes_waits_in_the_cursor_across_a_restart(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    uid = fake.add_unit("Truck")
    fake.add_fix(uid, T0 - 60, 1.0, 1.0)
    state = MemoryStateStore()
    first = await make_source(state=state).poll(refs([uid]), empty([uid]))
    # a reading whose fix the server has not listed yet when the poll reads readings
    fake.add_reading(uid, T0 - 5, "Fuel Level", "33")
    fake.add_reading(uid, T0 - 5, "Satellite Count", "9")
    second = await make_source(state=state).poll(refs([uid]), first.cursors)
    assert second.fix_count == 0 and "readings" in second.cursors[uid].state
    fake.add_fix(uid, T0, 1.0, 1.0, satellites=None)
    third = await make_source(state=state).poll(refs([uid]), second.cursors)  # a restart
    (fix,) = third.fixes[uid]
    assert fix.sensors["fuel_level_l"] == 33.0 and fix.satellites == 9


async def test_sensors_cost_account_wide_requests_only(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    ids = [fake.add_unit(f"Truck {i}") for i in range(50)]
    for uid in ids:
        fake.add_fix(uid, T0 - 60, 1.0, 1.0, readings=READINGS)
    source = make_source(feed_page_size=fake.max_batch)  # a short page is the end
    first = await source.poll(refs(ids), empty(ids))
    for uid in ids:
        fake.add_fix(uid, T0, 1.0, 1.0, readings=READINGS)
    start = len(fake.calls)
    second = await source.poll(refs(ids), first.cursors)
    assert all(second.fixes[uid][0].sensors["fuel_level_l"] == 55.5 for uid in ids)
    calls = fake.calls[start:]
    assert [c.name for c in calls] == ["Data/PositionsList", "Data/SensorReadingsList"]
    assert all("Uid" not in c.query for c in calls)


async def test_cursors_of_the_previous_version_start_reading_sensors_where_they_stand(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    uid = fake.add_unit("Truck")
    for k in range(100):  # an old day the reading feed need not be read through
        fake.add_fix(uid, T0 - 80_000 + k * 600, 1.0, 1.0, received=T0 - 80_000 + k * 600)
    fake.add_fix(uid, T0 - 60, 1.0, 1.0)
    first = await make_source().poll(refs([uid]), empty([uid]))
    old = {uid: Cursor(first.cursors[uid].last_fix_time, {"start_id": fake._feed.next_id})}
    fake.add_fix(uid, T0, 1.0, 1.0, satellites=12, readings={"Fuel Level": 7})
    before = fake.requests["Data/SensorReadingsList"]
    (fix,) = (await make_source().poll(refs([uid]), old)).fixes[uid]
    assert fix.satellites == 12 and fix.sensors["fuel_level_l"] == 7.0
    assert fake.requests["Data/SensorReadingsList"] - before <= 3
