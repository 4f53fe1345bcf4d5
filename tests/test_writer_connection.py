"""The pipeline's own connection (``hub.writer_connection``): small batches written on
the event loop's thread when that costs CPU only, a busy SQLite lock waited for on a
worker thread instead, and a connection the server dropped replaced without losing the
batch.  Real threads and a real clock: nothing here runs inline by decree."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio
import trio.testing

from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.positions import IngestItem
from hub.testing import EPOCH, make_hub


def fix(device: int, seconds: float) -> IngestItem:
    return IngestItem(device, None, PositionFix(EPOCH + timedelta(seconds=seconds), 14.6, -90.5))


def world(tmp_path: Path, db_url: str | None = None) -> tuple[Any, int]:
    hub = make_hub(tmp_path, clock=TrioClock(EPOCH), db_url=db_url)
    client = hub.store.create_client("A").id or 0
    return hub, hub.store.create_device(client, name="truck").id or 0


async def test_a_lone_fix_is_written_on_the_loop_and_a_busy_lock_waited_for_elsewhere(
    tmp_path: Path,
) -> None:
    hub, device = world(tmp_path)
    stats = hub.pipeline.stats
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        nursery.start_soon(hub.housekeeping.keep_wal)  # the WAL is the keeper's: see below
        await trio.testing.wait_all_tasks_blocked()
        assert hub.store.positions.writer.autocheckpoint is False
        await hub.pipeline.submit([fix(device, 0)])  # the first makes the connection
        await hub.pipeline.submit([fix(device, 1)])
        assert (stats.transactions, stats.inline_transactions) == (2, 1)

        # another process holds SQLite's write lock: the fix waits on a worker thread
        # while the loop goes on, and is stored once the lock is free
        other = sqlite3.connect(tmp_path / "hub.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        stored = trio.Event()

        async def submit() -> None:
            await hub.pipeline.submit([fix(device, 2)])
            stored.set()

        nursery.start_soon(submit)
        ticks = 0
        for _ in range(10):  # the loop is free meanwhile
            await trio.sleep(0.01)
            ticks += 1
        assert ticks == 10 and not stored.is_set()
        other.execute("COMMIT")
        other.close()
        with trio.fail_after(30):  # a bound against hangs, not a timing
            await stored.wait()
        assert (stats.transactions, stats.inline_transactions, stats.stored) == (3, 1, 3)
        await hub.pipeline.submit([fix(device, 3)])  # the lock is free: on the loop again
        assert stats.inline_transactions == 2
        assert hub.store.positions.count() == 4
        nursery.cancel_scope.cancel()
    assert hub.store.positions.writer.autocheckpoint is True
    hub.store.close()


async def test_without_the_wal_keeper_or_with_full_sync_nothing_is_written_on_the_loop(
    tmp_path: Path,
) -> None:
    # the commits would checkpoint (keeper not running), or fsync (synchronous=FULL)
    hub, device = world(tmp_path)
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        for n in range(3):
            await hub.pipeline.submit([fix(device, n)])
        assert hub.pipeline.stats.inline_transactions == 0
        writer = hub.store.positions.writer
        writer.autocheckpoint = False
        with hub.store.engine.connect() as conn:  # what Store.open(synchronous="FULL") sets
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
        assert sync == 1  # NORMAL: so the next is written on the loop
        await hub.pipeline.submit([fix(device, 3)])
        assert hub.pipeline.stats.inline_transactions == 1
        writer._synchronous = 2  # as FULL would have it
        await hub.pipeline.submit([fix(device, 4)])
        assert hub.pipeline.stats.inline_transactions == 1
        nursery.cancel_scope.cancel()
    hub.store.close()


async def test_a_large_batch_is_written_on_a_worker_thread(tmp_path: Path) -> None:
    hub, device = world(tmp_path)
    hub.store.positions.writer.autocheckpoint = False
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        await hub.pipeline.submit([fix(device, 0)])
        await hub.pipeline.submit([fix(device, 1 + n) for n in range(100)])
        assert (hub.pipeline.stats.transactions, hub.pipeline.stats.inline_transactions) == (2, 0)
        nursery.cancel_scope.cancel()
    hub.store.close()


@pytest.mark.postgres
async def test_a_connection_the_server_dropped_is_replaced_and_the_batch_stored(
    tmp_path: Path, pg_url: str
) -> None:
    hub, device = world(tmp_path, pg_url)
    positions = hub.store.positions
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.pipeline.run)
        await hub.pipeline.submit([fix(device, 0)])
        pid = positions.writer._conn.connection.driver_connection.info.backend_pid
        with hub.store.engine.connect() as conn:  # as a server restart would
            conn.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        result = await hub.pipeline.submit([fix(device, 1), fix(device, 2)])
        assert len(result.inserted) == 2
        assert positions.writer._conn.connection.driver_connection.info.backend_pid != pid
        assert hub.pipeline.stats.failed_transactions == 0
        nursery.cancel_scope.cancel()
    assert positions.count() == 3
    hub.store.close()
