"""Change propagation (``hub.changes``): a change made through another connection to the
database (another process, here a second ``Store`` with its own engine) reaches the
running hub, on SQLite and on PostgreSQL.  ``test_processes.py`` does the same with
real processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import trio

from hub.changes import (
    Change,
    ChangeFeed,
    ChangeKind,
    latest_seq,
    prune_changes,
    read_changes,
)
from hub.fix import PositionFix
from hub.models import ConnectionState, change_log_t, devices_t
from hub.positions import IngestItem
from hub.source import Cadence
from hub.store import Store
from hub.testing import EPOCH, ScriptedSource, make_hub, running

FAST = {"change_check_s": 0.05, "change_fallback_s": 30.0}


async def until(check: Callable[[], Any], timeout: float = 30.0) -> None:
    """Wait until ``check()`` is true; the bound only guards against a hang."""
    with trio.fail_after(timeout):
        while not check():  # noqa: ASYNC110 - polls what the hub did
            await trio.sleep(0.05)


@contextmanager
def other_process(hub: Any) -> Iterator[Store]:
    """A second store on the hub's database: its own engine and connections."""
    other = Store.open(str(hub.store.engine.url.render_as_string(hide_password=False)),
                       hub.store.secrets, migrate=False)  # fmt: skip
    try:
        yield other
    finally:
        other.close()


def scripted(cadence: float = 3600.0) -> type[ScriptedSource]:
    """A source polled every ``cadence`` s (an hour: only a (re)start polls it in a test)."""
    attrs = {"kind": "scripted", "script": [], "calls": [], "cadence": Cadence(active=cadence)}
    return type("Scripted", (ScriptedSource,), attrs)


# -- the log -------------------------------------------------------------------------------
def test_writes_are_logged_in_order_and_ids_only_grow(store: Store) -> None:
    client = store.create_client("acme").id or 0
    user = store.create_user("ana", "viewer", client).id or 0
    token, _ = store.create_token(user)
    conn = store.create_connection(client, "scripted", "account", {}).id
    device = store.create_device(client, name="truck", connection_id=conn, upstream_id="t1").id
    store.delete_token(token.id or 0)
    store.delete_device(device or 0)
    changes = read_changes(store.engine, 0)
    assert [(c.kind, c.op, c.object_id) for c in changes] == [
        ("client", "created", client),
        ("user", "created", user),
        ("token", "created", token.id),
        ("connection", "created", conn),
        ("device", "created", device),
        ("connection", "devices", conn),  # it has a device to poll now
        ("token", "deleted", token.id),
        ("device", "deleted", device),
    ]
    assert [c.seq for c in changes] == sorted({c.seq for c in changes})
    newest = latest_seq(store.engine)
    assert prune_changes(store.engine, timedelta(0)) == len(changes)
    store.update_client(client, name="ACME")
    (after,) = read_changes(store.engine, 0)
    assert after.seq > newest, "an id is never given out again, even once pruned"
    # what runs is no change: a runner's status, a token's use
    store.set_connection_status(conn or 0, state=ConnectionState.OK)
    assert read_changes(store.engine, after.seq) == []


def test_deleting_a_client_records_what_goes_with_it(store: Store) -> None:
    client = store.create_client("acme").id or 0
    conn = store.create_connection(client, "scripted", "account", {}).id
    device = store.create_device(client, name="truck").id
    sink = store.sinks.create(
        client, name="relay", kind="webhook", format="gpshub-locations", purpose="locations",
        settings={"url": "https://example.com/"},
    ).id  # fmt: skip
    start = latest_seq(store.engine)
    store.delete_client(client)
    assert {(c.kind, c.op, c.object_id) for c in read_changes(store.engine, start)} == {
        ("connection", "deleted", conn),
        ("device", "deleted", device),
        ("sink", "deleted", sink),
        ("client", "deleted", client),
    }


# -- the feed ------------------------------------------------------------------------------
async def test_a_feed_hears_of_changes_made_elsewhere(db_url: str, tmp_path: Path) -> None:
    hub = make_hub(tmp_path, db_url=db_url)
    feed = ChangeFeed(hub.store.engine, check_s=0.05)
    heard: list[Change] = []
    feed.subscribe(heard.extend, {ChangeKind.CLIENT})
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with other_process(hub) as other:
            client = other.create_client("acme").id
            other.create_user("ana", "viewer", client)  # not a kind it asked for
        await until(lambda: heard)
        assert [(c.kind, c.op, c.object_id) for c in heard] == [("client", "created", client)]
        nursery.cancel_scope.cancel()
    hub.store.close()


async def test_the_fallback_reads_what_no_one_announced(db_url: str, tmp_path: Path) -> None:
    """A row that comes with no notification (one lost across a reconnect) is read by
    the periodic fallback."""
    hub = make_hub(tmp_path, db_url=db_url)
    feed = ChangeFeed(hub.store.engine, check_s=0.05, fallback_s=0.2)
    heard: list[Change] = []
    feed.subscribe(heard.extend, {ChangeKind.SINK})
    async with trio.open_nursery() as nursery:
        await nursery.start(feed.run)
        with hub.store.engine.begin() as conn:  # no NOTIFY
            conn.execute(
                sa.insert(change_log_t).values(kind="sink", op="updated", created_at=EPOCH)
            )
        await until(lambda: heard)
        assert heard[0].kind == "sink" and heard[0].object_id is None
        nursery.cancel_scope.cancel()
    hub.store.close()


def worker_of(hub: Any, sink_id: int) -> Any:
    """The sink's worker once it has started, else ``None``."""
    handle = hub.delivery.workers.get(sink_id)
    return handle.worker if handle is not None and handle.worker.version else None


# -- the hub -------------------------------------------------------------------------------
async def test_connections_changed_elsewhere_are_polled_or_stopped(
    db_url: str, tmp_path: Path
) -> None:
    src = scripted()
    hub = make_hub(tmp_path, src, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    async with running(hub, close_store=True):
        with other_process(hub) as other:
            conn = other.create_connection(client, "scripted", "account", {}).id or 0
            other.create_device(client, name="truck", connection_id=conn, upstream_id="t1")
            await until(lambda: src.calls)  # a new connection is polled
            first = hub.runners[conn].runner
            other.update_connection(conn, enabled=False)
            await until(lambda: conn not in hub.runners)
            other.update_connection(conn, enabled=True)
            await until(lambda: conn in hub.runners and len(src.calls) == 2)
            second = hub.runners[conn].runner
            assert second is not first
            other.update_connection(conn, label="renamed")  # an edit restarts it
            await until(lambda: conn in hub.runners and hub.runners[conn].runner is not second)
            other.delete_connection(conn)
            await until(lambda: conn not in hub.runners)


async def test_a_device_linked_elsewhere_wakes_an_idle_connection(
    db_url: str, tmp_path: Path
) -> None:
    src = scripted()  # an idle runner would look again in an hour
    hub = make_hub(tmp_path, src, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    conn = hub.store.create_connection(client, "scripted", "account", {}).id or 0
    async with running(hub, close_store=True):
        await until(lambda: hub.store.get_connection(conn).state == ConnectionState.IDLE)
        with other_process(hub) as other:
            device = other.create_device(client, name="t", connection_id=conn, upstream_id="u1")
        await until(lambda: src.calls)
        assert [d.device_id for d in src.calls[0][1]] == [device.id]


async def test_sinks_changed_elsewhere_start_and_stop_their_workers(
    db_url: str, tmp_path: Path
) -> None:
    hub = make_hub(tmp_path, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    async with running(hub, close_store=True):
        with other_process(hub) as other:
            sink = other.sinks.create(
                client, name="relay", kind="webhook", format="gpshub-locations",
                purpose="locations", settings={"url": "https://example.com/"},
            ).id or 0  # fmt: skip
            await until(lambda: worker_of(hub, sink))
            worker = worker_of(hub, sink)
            other.sinks.update(sink, settings={"url": "https://example.com/v2"})
            await until(lambda: worker_of(hub, sink) not in (None, worker))
            assert worker_of(hub, sink).row.settings["url"].endswith("/v2")
            other.sinks.update(sink, enabled=False)
            await until(lambda: sink not in hub.delivery.workers)


async def test_a_device_edited_elsewhere_counts_from_the_next_batch(
    db_url: str, tmp_path: Path
) -> None:
    """The pipeline caches devices per client; another process's edit is seen."""
    hub = make_hub(tmp_path, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    device = hub.store.create_device(client, name="truck").id or 0

    async def fix(minute: int) -> dict[str, Any]:
        t = EPOCH + timedelta(minutes=minute)
        await hub.pipeline.submit([IngestItem(device, None, PositionFix(t, 14.6, -90.5))])
        rows, _ = hub.store.positions.history([device])
        return rows[-1]

    async with running(hub, close_store=True):
        assert (await fix(0))["virtual_odometer_km"] == 0
        with other_process(hub) as other:
            other.set_virtual_counters(device, odometer_km=1234.0)
        assert (await fix(1))["virtual_odometer_km"] == 1234.0


async def test_a_deleted_devices_id_given_out_again_starts_afresh(
    db_url: str, tmp_path: Path
) -> None:
    """Nothing the pipeline cached of a deleted device (its client, its counters) goes to
    a device that gets its id later, even in another client (the id is forced here)."""
    hub = make_hub(tmp_path, db_url=db_url, **FAST)
    a = hub.store.create_client("A").id or 0
    b = hub.store.create_client("B").id or 0
    device = hub.store.create_device(a, name="old").id or 0

    async def fix(minute: int, lat: float) -> dict[str, Any]:
        t = EPOCH + timedelta(minutes=minute)
        await hub.pipeline.submit([IngestItem(device, None, PositionFix(t, lat, -90.5))])
        rows, _ = hub.store.positions.history([device])
        return rows[-1]

    async with running(hub, close_store=True):
        await fix(0, 14.60)
        assert (await fix(1, 14.61))["odometer_km"] > 1  # about 1.1 km
        with other_process(hub) as other:
            other.delete_device(device)
            with other.engine.begin() as conn:
                conn.execute(sa.insert(devices_t).values(id=device, client_id=b, name="new"))
        row = await fix(2, 14.62)
        assert row["odometer_km"] == 0
        assert hub.store.get_device(device).client_id == b


async def test_a_device_linked_to_a_polling_connection_is_polled_at_once(
    db_url: str, tmp_path: Path
) -> None:
    """A connection that polls once an hour polls its new device now, once: the change
    seen again (the route's reload, then the feed) adds no poll."""
    src = scripted()
    hub = make_hub(tmp_path, src, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    conn = hub.store.create_connection(client, "scripted", "account", {}).id or 0
    first = hub.store.create_device(client, name="a", connection_id=conn, upstream_id="u1")
    async with running(hub, close_store=True):
        await until(lambda: hub.store.get_connection(conn).state == ConnectionState.OK)
        runner = hub.runners[conn].runner
        with other_process(hub) as other:
            second = other.create_device(client, name="b", connection_id=conn, upstream_id="u2")
        await until(lambda: len(src.calls) == 2)
        assert sorted(d.device_id for d in src.calls[1][1]) == [first.id, second.id]
        assert hub.runners[conn].runner is runner  # polled by the same runner, not restarted
        await hub.reload_connection(conn)  # the same change applied once more
        await hub.changes.catch_up()
        await trio.sleep(0.3)
        assert len(src.calls) == 2


async def test_changes_made_through_this_hub_apply_once(db_url: str, tmp_path: Path) -> None:
    """The hub's own changes are seen again in the log: a runner is not restarted twice."""
    src = scripted()
    hub = make_hub(tmp_path, src, db_url=db_url, **FAST)
    client = hub.store.create_client("acme").id or 0
    conn = hub.store.create_connection(client, "scripted", "account", {}, enabled=False).id or 0
    hub.store.create_device(client, name="t", connection_id=conn, upstream_id="u1")
    async with running(hub, close_store=True):
        hub.store.update_connection(conn, enabled=True)
        await hub.reload_connection(conn)  # what the API route does
        runner = hub.runners[conn].runner
        await hub.changes.catch_up()
        assert hub.changes.seen == latest_seq(hub.store.engine)  # the change was handled
        await trio.sleep(0.3)  # the watcher's rounds too
        assert hub.runners[conn].runner is runner
        assert len(src.calls) == 1


def test_the_migration_keeps_the_data(db_url: str, secret_box: Any) -> None:
    """0009 adds the change log to a filled database of the schema before it (and can be
    undone, keeping the data)."""
    from alembic.script import ScriptDirectory

    from hub import db

    engine = db.create_engine(db_url)
    script = ScriptDirectory.from_config(db.alembic_config(engine))
    before = script.get_revision("0009").down_revision
    assert isinstance(before, str)
    db.migrate(engine, before)
    now = "'2026-01-01 00:00:00.000000'" if engine.dialect.name == "sqlite" else "now()"
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"INSERT INTO clients (id, name, created_at) VALUES (7, 'old', {now})")
        )
        conn.execute(
            sa.text(f"INSERT INTO users (id, name, role, client_id, created_at)"
                    f" VALUES (3, 'ana', 'viewer', 7, {now})")
        )  # fmt: skip
    engine.dispose()
    store = Store.open(db_url, secret_box)
    assert [(c.id, c.name) for c in store.list_clients()] == [(7, "old")]
    assert read_changes(store.engine, 0) == []
    store.delete_user(3)
    assert [(c.kind, c.op, c.object_id) for c in read_changes(store.engine, 0)] == [
        ("user", "deleted", 3)
    ]
    from alembic import command

    command.downgrade(db.alembic_config(store.engine), before)
    assert "change_log" not in sa.inspect(store.engine).get_table_names()
    assert [c.name for c in store.list_clients()] == ["old"]
    store.close()
