"""Batches through ``PositionStore.write_batch`` on its fast paths (raw SQL on SQLite,
one ``unnest`` statement per stage on PostgreSQL): duplicates, a refused row, cursors,
devices' latest fix and last-seen time, the change log's head.  Both backends
(``db_url`` is parametrised)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from hub.changes import latest_seq
from hub.fix import PositionFix
from hub.models import devices_t, states_t
from hub.positions import CursorUpdate, IngestItem
from hub.source import Cursor
from hub.store import Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def fix(seconds: float, **kw: object) -> PositionFix:
    return PositionFix(T0 + timedelta(seconds=seconds), 14.6, -90.5, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(store: Store) -> dict[str, int]:
    a = store.create_client("Client A")
    conn = store.create_connection(a.id, "simulator", "sim A", {})
    d1 = store.create_device(a.id, name="truck 1", connection_id=conn.id, upstream_id="u1")
    d2 = store.create_device(a.id, name="truck 2", connection_id=conn.id, upstream_id="u2")
    return {"a": a.id, "conn": conn.id, "d1": d1.id, "d2": d2.id}


def device_times(store: Store, device_id: int) -> tuple[datetime | None, datetime | None]:
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(devices_t.c.last_fix_time, devices_t.c.last_seen_at).where(
                devices_t.c.id == device_id
            )
        ).one()
    return row[0], row[1]


def test_duplicates_in_the_batch_and_stored_before(store: Store, world: dict[str, int]) -> None:
    d1, d2, conn = world["d1"], world["d2"], world["conn"]
    store.positions.write_batch([IngestItem(d1, conn, fix(0))])
    plus_six = timezone(timedelta(hours=6))
    items = [
        IngestItem(d1, conn, fix(0)),  # stored before
        IngestItem(d1, conn, fix(10, speed_kmh=5)),
        IngestItem(d2, conn, fix(10)),  # same time, another device: new
        # the same instant written in another zone: a duplicate of the one before
        IngestItem(d2, conn, PositionFix((T0 + timedelta(seconds=10)).astimezone(plus_six), 1, 2)),
        IngestItem(d1, conn, fix(20, speed_kmh=7)),
        IngestItem(d1, conn, fix(10)),  # repeated in the batch
    ]
    now = T0 + timedelta(minutes=1)
    r = store.positions.write_batch(items, server_time=now)
    assert r.duplicates == 3 and r.unknown_device == 0
    assert [(x["device_id"], x["fix_time"]) for x in r.inserted] == [
        (d1, T0 + timedelta(seconds=10)),
        (d2, T0 + timedelta(seconds=10)),
        (d1, T0 + timedelta(seconds=20)),
    ]
    ids = [x["id"] for x in r.inserted]
    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)
    assert r.inserted[0]["speed_kmh"] == 5 and r.inserted[2]["speed_kmh"] == 7
    assert r.moved_latest == {d1, d2}
    assert store.positions.count() == 4
    assert store.get_connection(conn).positions_received == 4
    assert device_times(store, d1) == (T0 + timedelta(seconds=20), now)
    history, _ = store.positions.history([d1])
    assert [h["id"] for h in history][1:] == [ids[0], ids[2]]


def test_a_batch_with_one_refused_row_stores_nothing(store: Store, world: dict[str, int]) -> None:
    d1, d2, conn = world["d1"], world["d2"], world["conn"]
    first = T0 - timedelta(minutes=1)
    store.positions.write_batch([IngestItem(d1, conn, fix(-60))], server_time=first)
    before = device_times(store, d1)
    with store.engine.connect() as c:
        states = dict(c.execute(sa.select(states_t.c.device_id, states_t.c.state)).all())
    good = IngestItem(d1, conn, fix(0, speed_kmh=50))
    refused = IngestItem(d2, conn, fix(0, satellites=2**70))  # no database takes it
    with pytest.raises(Exception):  # noqa: B017 - the driver's error type varies
        store.positions.write_batch(
            [good, refused],
            [CursorUpdate(d1, conn, Cursor(T0, {"page": 2}))],
            server_time=T0,
        )
    assert store.positions.count() == 1
    assert store.load_cursors(conn) == {}
    assert device_times(store, d1) == before
    assert device_times(store, d2) == (None, None)
    assert store.get_connection(conn).positions_received == 1
    with store.engine.connect() as c:
        assert dict(c.execute(sa.select(states_t.c.device_id, states_t.c.state)).all()) == states
    # the fix goes in again alone, derived as if the failed batch had never been
    r = store.positions.write_batch([good], server_time=T0)
    assert len(r.inserted) == 1 and r.moved_latest == {d1}
    assert device_times(store, d1) == (T0, T0)


def test_a_later_cursor_of_a_device_wins(store: Store, world: dict[str, int]) -> None:
    d1, conn = world["d1"], world["conn"]
    store.positions.write_batch(
        [IngestItem(d1, conn, fix(0))],
        [
            CursorUpdate(d1, conn, Cursor(T0, {"page": 1})),
            CursorUpdate(d1, conn, Cursor(T0 + timedelta(seconds=5), {"page": 2})),
        ],
    )
    assert store.load_cursors(conn) == {d1: Cursor(T0 + timedelta(seconds=5), {"page": 2})}


def test_an_older_fix_sets_last_seen_but_not_latest(store: Store, world: dict[str, int]) -> None:
    d1, conn = world["d1"], world["conn"]
    store.positions.write_batch([IngestItem(d1, conn, fix(0))], server_time=T0)
    later = T0 + timedelta(minutes=3)
    r = store.positions.write_batch([IngestItem(d1, conn, fix(-30))], server_time=later)
    assert len(r.inserted) == 1 and r.moved_latest == set()
    assert device_times(store, d1) == (T0, later)


def test_the_change_head_is_read_with_the_batch(store: Store, world: dict[str, int]) -> None:
    d1, conn = world["d1"], world["conn"]
    store.create_device(world["a"], name="truck 3")  # a change is logged
    head = latest_seq(store.engine)
    assert head > 0
    r = store.positions.write_batch([IngestItem(d1, conn, fix(0))], change_head=True)
    assert r.change_head == head
    assert store.positions.write_batch([IngestItem(d1, conn, fix(1))]).change_head is None


@pytest.mark.postgres
def test_rows_another_writer_stored_meanwhile_are_skipped(
    pg_url: str, secret_box: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL another process may store the same fix between the batch's check
    and its insert: the insert skips it (``ON CONFLICT``) and counts it a duplicate."""
    store = Store.open(pg_url, secret_box)  # type: ignore[arg-type]
    try:
        a = store.create_client("A")
        d = store.create_device(a.id, name="d").id
        store.positions.write_batch([IngestItem(d, None, fix(20))])
        bulk = store.positions._bulk
        monkeypatch.setattr(bulk, "find_new", lambda conn, rows, **_: rows)  # the check misses it
        r = store.positions.write_batch(
            [IngestItem(d, None, fix(10)), IngestItem(d, None, fix(20))]
        )
        assert [x["fix_time"] for x in r.inserted] == [T0 + timedelta(seconds=10)]
        assert r.duplicates == 1 and r.moved_latest == set()
        assert store.positions.count(d) == 2
        assert device_times(store, d)[0] == T0 + timedelta(seconds=20)
    finally:
        store.close()


def test_a_fix_newer_than_the_derived_ones_skips_the_duplicate_query(
    store: Store, world: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fix later than its device's newest derived fix cannot be stored yet: the batch
    does without the query for duplicates.  A repeated or older fix, a device whose
    state is not cached, or a device changed since (another process may have written
    it) still gets the query, and a repeat is found."""
    d1, d2, conn = world["d1"], world["d2"], world["conn"]
    bulk = store.positions._bulk
    asked: list[bool] = []
    find_new = bulk.find_new

    def spy(c: object, rows: list, *, known_new: bool = False) -> list:
        asked.append(known_new)
        return find_new(c, rows, known_new=known_new)  # type: ignore[arg-type]

    monkeypatch.setattr(bulk, "find_new", spy)
    write = store.positions.write_batch
    assert len(write([IngestItem(d1, conn, fix(10))]).inserted) == 1  # not cached yet
    assert len(write([IngestItem(d1, conn, fix(20))]).inserted) == 1  # newer: no query
    r = write([IngestItem(d1, conn, fix(20)), IngestItem(d1, conn, fix(30))])  # a repeat
    assert r.duplicates == 1 and [x["fix_time"] for x in r.inserted] == [fix(30).fix_time]
    assert len(write([IngestItem(d1, conn, fix(5))]).inserted) == 1  # older: stored
    assert len(write([IngestItem(d2, conn, fix(5)), IngestItem(d1, conn, fix(40))]).inserted) == 2
    store.update_device(d1, name="renamed")  # the client's devices_version moves
    assert len(write([IngestItem(d1, conn, fix(50))]).inserted) == 1
    assert asked == [False, True, False, False, False, False]
    assert store.positions.count(d1) == 6
    assert device_times(store, d1)[0] == fix(50).fix_time
