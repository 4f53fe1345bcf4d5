"""SQLite's write-ahead log stays bounded: starved by readers, and when the hub idles."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import trio
from trio.testing import MockClock

from hub import db, housekeeping
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.testing import EPOCH, make_hub
from hub.wal import WalKeeper, checkpoint, wal_size

LIMIT = 256 * 1024


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = db.create_engine(db.sqlite_url(tmp_path / "w.db"))
    with db.write_tx(engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    yield engine
    engine.dispose()


def write(engine: sa.Engine, kib: int) -> None:
    for _ in range(kib // 16):
        with db.write_tx(engine) as conn:
            conn.exec_driver_sql("INSERT INTO t (v) VALUES (?)", [("x" * 1000,)] * 16)


def test_every_connection_limits_the_wal_it_leaves(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        limit = conn.exec_driver_sql("PRAGMA journal_size_limit").scalar()
    assert limit == db.SQLITE_WAL_LIMIT


def test_a_wal_starved_by_a_reader_is_truncated_once_the_reader_lets_go(
    engine: sa.Engine,
) -> None:
    keeper = WalKeeper(engine, limit=LIMIT, wait_ms=50)
    reader = engine.connect()
    reader.exec_driver_sql("SELECT count(*) FROM t").scalar()  # a read transaction, held
    write(engine, 1024)
    grown = wal_size(engine)
    assert grown > 4 * LIMIT  # SQLite could not start the log over: a reader needed it
    blocked = keeper.check()  # gives up after wait_ms rather than holding off writers
    assert blocked is not None and blocked.busy and wal_size(engine) == grown
    reader.rollback()
    reader.close()
    write(engine, 16)  # SQLite alone keeps the file (up to journal_size_limit)
    assert wal_size(engine) >= grown
    done = keeper.check()
    assert done is not None and not done.busy
    assert wal_size(engine) == 0 and keeper.truncated == 1
    write(engine, 16)
    assert 0 < wal_size(engine) <= LIMIT and keeper.check() is None  # small: left alone


def test_an_idle_wal_is_emptied(engine: sa.Engine) -> None:
    write(engine, 64)
    keeper = WalKeeper(engine, limit=LIMIT)
    assert keeper.check() is None and wal_size(engine) > 0
    result = keeper.check(idle=True)
    assert result is not None and not result.busy and wal_size(engine) == 0
    assert checkpoint(engine, "PASSIVE") == checkpoint(engine, "PASSIVE")  # nothing left
    with pytest.raises(ValueError):
        checkpoint(engine, "VACUUM")


def test_while_writes_go_on_each_check_copies_the_wal_into_the_database(
    engine: sa.Engine,
) -> None:
    keeper = WalKeeper(engine, limit=LIMIT)
    with engine.connect() as conn:  # as the pipeline's connection while the keeper runs
        conn.connection.driver_connection.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
        conn.exec_driver_sql("INSERT INTO t (v) VALUES (?)", ("x" * 4000,))
        conn.commit()
        assert keeper.due(idle=False) is False  # small: not to be emptied
    assert keeper.passive == 1
    done = checkpoint(engine, "PASSIVE")
    assert done.log_frames > 0 and done.checkpointed == done.log_frames  # nothing left


async def test_the_running_hub_empties_the_wal_once_ingest_stops(
    tmp_path: Path, clock: MockClock
) -> None:
    hub = make_hub(tmp_path, clock=TrioClock(EPOCH), status_check_s=86400.0)
    store = hub.store
    client = store.create_client("A").id or 0
    device = store.create_device(client, name="truck").id or 0
    with blocking_calls_inline():
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            for n in range(5):
                fixes = [
                    IngestItem(device, None, PositionFix(EPOCH + timedelta(minutes=n * 100 + i),
                                                         14.6, -90.5))
                    for i in range(100)
                ]  # fmt: skip
                await hub.pipeline.submit(fixes)
                await trio.sleep(1)
                # the keeper checkpoints, not the pipeline's commits (hub.writer_connection)
                assert store.positions.writer.autocheckpoint is False
            assert wal_size(store.engine) > 0
            assert hub.housekeeping.wal is not None and hub.housekeeping.wal.passive > 0
            await trio.sleep(housekeeping.WAL_CHECK_S + housekeeping.WAL_IDLE_S - 5)
            assert wal_size(store.engine) > 0, "not idle for long enough yet"
            await trio.sleep(10)
            assert wal_size(store.engine) == 0
            hub.shutdown()
    assert store.positions.writer.autocheckpoint is True  # the keeper stopped


async def test_the_hub_truncates_the_wal_between_two_pipeline_transactions(
    tmp_path: Path, clock: MockClock
) -> None:
    hub = make_hub(tmp_path, clock=TrioClock(EPOCH), status_check_s=86400.0)
    hub.housekeeping.wal = WalKeeper(hub.store.engine, limit=LIMIT)
    with db.write_tx(hub.store.engine) as conn:
        conn.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    write(hub.store.engine, 1024)
    with blocking_calls_inline():
        async with trio.open_nursery() as nursery:
            await nursery.start(hub.run)
            async with hub.pipeline.write_turn:  # as while the pipeline writes a batch
                hub.housekeeping.wrote()
                await trio.sleep(1)
                assert wal_size(hub.store.engine) > LIMIT, "it waits for its turn"
            await trio.sleep(1)
            assert wal_size(hub.store.engine) == 0
            hub.shutdown()


@pytest.fixture
def clock() -> MockClock:
    return MockClock(autojump_threshold=0)
