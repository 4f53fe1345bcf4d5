"""The first start and other catch-ups: only the backfill is stored, live positions show
at once, and a long backlog is read as fast as the server allows, in order."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from tracking3d_support import T0, MakeSource, add_history, all_fixes, empty

from gpshub_tracking3d import Tracking3DSource
from hub.errors import RateLimited
from hub.source import Cursor
from hub.testing import Served, fix_times
from hub.testing import device_refs as refs

HOUR = 3600.0


def units(served: Served, n: int) -> list[str]:
    return [served.fake.add_unit(f"Truck {i}") for i in range(n)]


async def poll_until_caught_up(
    source: Tracking3DSource, ids: list[str], cursors: dict[str, Cursor], limit: int = 30
) -> tuple[list[Any], dict[str, Cursor]]:
    """Poll until no cursor keeps a backfill floor (the catch-up is over)."""
    results = []
    for _ in range(limit):
        result = await source.poll(refs(ids), cursors)
        results.append(result)
        cursors = result.cursors
        if not any("floor" in c.state for c in cursors.values()):
            return results, cursors
    raise AssertionError(f"still catching up after {limit} polls")


async def test_history_older_than_the_backfill_is_never_stored_however_long_the_catch_up(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    fake.max_batch = 10
    ids = units(served, 5)
    times = add_history(fake, ids, hours=24, every=600)
    source = make_source(backfill_s=HOUR, page_budget=2)  # a catch-up over several polls
    results, _ = await poll_until_caught_up(source, ids, empty(ids))
    assert len(results) > 1
    wanted = [t for t in times if t >= T0 - HOUR]
    for uid in ids:
        assert all_fixes(results, uid) == wanted  # complete, in order, nothing older


async def test_the_first_start_skips_a_day_in_a_few_requests_and_shows_live_positions(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    fake.max_batch = 50
    ids = units(served, 20)
    times = add_history(fake, ids, hours=24, every=300)  # 5,760 records: 116 pages
    first = await make_source(backfill_s=HOUR).poll(refs(ids), empty(ids))
    wanted = [t for t in times if t >= T0 - HOUR]
    for uid in ids:
        assert fix_times(first, uid) == wanted
        assert "floor" not in first.cursors[uid].state  # live: caught up in one poll
        assert first.cursors[uid].last_fix_time.timestamp() == times[-1]
    # 2 log2(116) probes and the hour's 5 pages, not 116 pages
    assert fake.requests["Data/PositionsList"] <= 25
    assert fake.requests["Data/SensorReadingsList"] <= 25


async def test_a_server_refusing_unknown_start_ids_is_read_page_by_page(
    served: Served, make_source: MakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    fake = served.fake
    fake.max_batch = 10
    fake.strict_start_ids = True
    ids = units(served, 5)
    times = add_history(fake, ids, hours=24, every=1800)  # 240 records: 24 pages
    results, _ = await poll_until_caught_up(make_source(backfill_s=HOUR), ids, empty(ids))
    for uid in ids:
        assert all_fixes(results, uid) == [t for t in times if t >= T0 - HOUR]
        assert results[-1].fixes[uid][-1].satellites is not None
    refused = [r for r in caplog.records if "did not hand out" in r.getMessage()]
    assert len(refused) == 2  # once per feed
    assert fake.requests["Data/PositionsList"] >= 24  # every page of the day


@pytest.mark.parametrize("after", [5, 6, 8, 10])
async def test_a_429_while_catching_up_keeps_the_pages_read(
    served: Served, make_source: MakeSource, after: int
) -> None:
    fake = served.fake
    fake.max_batch = 10
    ids = units(served, 5)
    times = add_history(fake, ids, hours=1, every=300)  # all within the backfill: 6 pages
    source = make_source(backfill_s=HOUR)
    await source.test_connection()
    fake.rate_limit(times=2, retry_after=30, after=after)
    first = await source.poll(refs(ids), empty(ids))  # keeps what it read before the 429
    assert 0 < first.fix_count < len(times) * len(ids)
    with pytest.raises(RateLimited):  # still limited, nothing read yet: the runner waits
        await source.poll(refs(ids), first.cursors)
    results, _ = await poll_until_caught_up(source, ids, first.cursors)
    for uid in ids:
        assert all_fixes([first, *results], uid) == times


async def test_a_device_imported_later_gets_its_backfill_with_sensors_without_a_day_of_pages(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    fake.max_batch = 20
    a, b = units(served, 2)
    times = add_history(fake, [a, b], hours=24, every=300)  # 576 records: 29 pages
    source = make_source(backfill_s=HOUR)
    first = await source.poll(refs([a]), empty([a]))
    assert fix_times(first, a) == [t for t in times if t >= T0 - HOUR]
    fake.add_fix(a, T0, 1.0, 1.0, readings={"Fuel Level": 40})
    fake.add_fix(b, T0, 1.0, 1.0, readings={"Fuel Level": 41})
    before = fake.requests["Data/PositionsList"]
    second = await source.poll(refs([a, b]), {**first.cursors, b: Cursor()})
    assert fake.requests["Data/PositionsList"] - before <= 15  # a seek, not 29 pages
    assert fix_times(second, a) == [T0]
    assert fix_times(second, b) == [t for t in times if t >= T0 - HOUR] + [T0]
    assert all(f.satellites is not None for f in second.fixes[b])
    assert second.fixes[b][-1].sensors["fuel_level_l"] == 41.0
    assert "floor" not in second.cursors[b].state
    third = await source.poll(refs([a, b]), second.cursors)
    assert third.fix_count == 0


async def test_a_late_device_whose_catch_up_is_cut_goes_on_next_poll_while_live_data_flows(
    served: Served, make_source: MakeSource
) -> None:
    fake = served.fake
    fake.max_batch = 5
    a, b = units(served, 2)
    times = add_history(fake, [a, b], hours=1, every=120)  # 60 records: 12 pages
    source = make_source(backfill_s=2 * HOUR, page_budget=20)
    first = await source.poll(refs([a]), empty([a]))
    assert fix_times(first, a) == times
    cursors = {**first.cursors, b: Cursor()}
    tight = make_source(backfill_s=2 * HOUR, page_budget=3)
    results = []
    for k in range(8):
        fake.add_fix(a, T0 + k, 1.0, 1.0)
        fake.add_fix(b, T0 + k, 1.0, 1.0)
        result = await tight.poll(refs([a, b]), cursors)
        assert fix_times(result, a) == [T0 + k]  # the live part first, every poll
        results.append(result)
        cursors = result.cursors
    assert all_fixes(results, b) == times + [T0 + k for k in range(8)]
    assert len({c.state["start_id"] for c in cursors.values()}) == 1  # b has joined
