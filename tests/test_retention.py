"""Retention and the delivery caps: the pruning queries on SQLite and PostgreSQL
(``db_url``), and the housekeeping task that runs them under trio's mock clock."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import trio
from trio.testing import MockClock

from hub import db
from hub.blocking import blocking_calls_inline
from hub.clock import TrioClock
from hub.fix import PositionFix
from hub.models import alerts_t, dead_t, outbox_t, positions_t
from hub.positions import IngestItem
from hub.retention import Batch, RetentionStore, cutoff
from hub.store import Invalid, Store
from hub.testing import make_hub

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def store_fixes(store: Store, device_id: int, start: datetime, count: int, step=HOUR) -> None:  # type: ignore[no-untyped-def]
    items = [
        IngestItem(device_id, None, PositionFix(start + step * i, 14.6 + i * 1e-4, -90.5))
        for i in range(count)
    ]
    store.positions.write_batch(items, server_time=NOW)


def positions_of(store: Store, device_id: int) -> list[datetime]:
    p = positions_t
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(p.c.fix_time).where(p.c.device_id == device_id).order_by(p.c.fix_time)
        )
        return [r[0] for r in rows]


def position_id(store: Store, device_id: int, fix_time: datetime) -> int:
    p = positions_t
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(p.c.id).where(p.c.device_id == device_id, p.c.fix_time == fix_time)
            ).scalar_one()
        )


def add_outbox(store: Store, client_id: int, kind: str, ref_ids: list[int], **kw: Any) -> list[int]:
    rows = [
        {"client_id": client_id, "kind": kind, "device_id": None, "ref_id": r, "payload": {},
         "created_at": NOW, **kw}
        for r in ref_ids
    ]  # fmt: skip
    with db.write_tx(store.engine) as conn:
        conn.execute(sa.insert(outbox_t), rows)
        o = outbox_t
        return [
            int(i)
            for (i,) in conn.execute(
                sa.select(o.c.id).where(o.c.client_id == client_id).order_by(o.c.id)
            )
        ][-len(rows) :]


def add_alerts(store: Store, client_id: int, device_id: int, times: list[datetime]) -> None:
    rows = [
        {"client_id": client_id, "device_id": device_id, "rule_id": None, "position_id": None,
         "message_id": "stopped", "fix_time": t, "server_time": t, "payload": {"at": str(t)}}
        for t in times
    ]  # fmt: skip
    with db.write_tx(store.engine) as conn:
        conn.execute(sa.insert(alerts_t), rows)


def alert_times(store: Store, client_id: int) -> list[datetime]:
    a = alerts_t
    with store.engine.connect() as conn:
        q = sa.select(a.c.fix_time).where(a.c.client_id == client_id).order_by(a.c.fix_time)
        return [r[0] for r in conn.execute(q)]


def run_all(batch: Any, limit: int) -> list[Batch]:
    done = [batch(limit)]
    while done[-1].more:
        done.append(batch(limit))
    return done


@pytest.fixture
def tenants(store: Store) -> dict[str, int]:
    a = store.create_client("A", positions_retention_days=3, alerts_retention_days=5)
    b = store.create_client("B")  # keeps everything
    ids = {"a": a.id or 0, "b": b.id or 0}
    for name, client in (("moving", "a"), ("parked", "a"), ("other", "b")):
        ids[name] = store.create_device(ids[client], name=name).id or 0
    start = NOW - timedelta(days=10)
    store_fixes(store, ids["moving"], start, 10 * 24 + 1)  # hourly up to NOW
    store_fixes(store, ids["parked"], start, 24)  # silent for the last nine days
    store_fixes(store, ids["other"], start, 10 * 24 + 1)
    return ids


# -- the queries, on both databases ---------------------------------------------------------
def test_positions_past_retention_go_except_the_latest_and_those_waiting(
    store: Store, tenants: dict[str, int]
) -> None:
    retention = RetentionStore(store.engine)
    (a,) = retention.clients()
    assert (a.client_id, a.positions_days, a.alerts_days) == (tenants["a"], 3, 5)
    before = cutoff(NOW, 3)
    start = NOW - timedelta(days=10)
    # an owed location message keeps its position; an alert's message does not keep the
    # position whose id happens to equal the alert's
    owed_at, alert_ref_at = start + 5 * HOUR, start + 6 * HOUR
    add_outbox(store, tenants["a"], "location", [position_id(store, tenants["moving"], owed_at)])
    add_outbox(store, tenants["a"], "alert", [position_id(store, tenants["moving"], alert_ref_at)])
    moving_before = positions_of(store, tenants["moving"])
    other_before = positions_of(store, tenants["other"])

    pruner = retention.position_pruner(tenants["a"], before)
    first = pruner(50)
    assert first.deleted == 50 and first.more
    batches = [first, *run_all(pruner, 50)]
    assert all(b.deleted <= 50 for b in batches) and not batches[-1].more

    kept = [t for t in moving_before if t >= before] + [owed_at]
    assert positions_of(store, tenants["moving"]) == sorted(kept)
    # the parked device's latest position is its current state: it stays
    assert positions_of(store, tenants["parked"]) == [start + 23 * HOUR]
    latest = {r["device_id"]: r["fix_time"] for r in store.positions.latest()}
    assert latest[tenants["parked"]] == start + 23 * HOUR
    assert latest[tenants["moving"]] == NOW
    assert positions_of(store, tenants["other"]) == other_before  # B keeps everything
    assert sum(b.deleted for b in batches) == len(moving_before) - len(kept) + 23

    # once the message is delivered (pruned from the outbox), its position goes too
    with db.write_tx(store.engine) as conn:
        conn.execute(sa.delete(outbox_t).where(outbox_t.c.kind == "location"))
    run_all(retention.position_pruner(tenants["a"], before), 50)
    assert positions_of(store, tenants["moving"]) == sorted(t for t in kept if t >= before)


def test_a_position_queued_after_it_was_chosen_stays(
    store: Store, tenants: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    pruner = RetentionStore(store.engine).position_pruner(tenants["a"], cutoff(NOW, 3))
    chosen: list[int] = []
    choose = pruner.choose

    def then_a_replay(limit: int) -> list[int]:  # queues the first one before the delete
        chosen[:] = choose(limit)
        add_outbox(store, tenants["a"], "location", chosen[:1])
        return chosen

    monkeypatch.setattr(pruner, "choose", then_a_replay)
    assert pruner(10).deleted == 9
    p = positions_t
    with store.engine.connect() as conn:
        left = {int(i) for (i,) in conn.execute(sa.select(p.c.id).where(p.c.id.in_(chosen)))}
    assert left == {chosen[0]}


def test_alerts_past_retention_go(store: Store, tenants: dict[str, int]) -> None:
    times = [NOW - timedelta(days=d) for d in (9, 7, 6, 4, 1)]
    add_alerts(store, tenants["a"], tenants["moving"], times)
    add_alerts(store, tenants["b"], tenants["other"], times)
    retention = RetentionStore(store.engine)
    batches = run_all(lambda n: retention.prune_alerts(tenants["a"], cutoff(NOW, 5), n), 2)
    assert [b.deleted for b in batches] == [2, 1]
    assert alert_times(store, tenants["a"]) == times[3:]
    assert alert_times(store, tenants["b"]) == times


def test_retention_settings_are_checked(store: Store) -> None:
    client = store.create_client("C")
    assert (client.positions_retention_days, client.alerts_retention_days) == (None, None)
    store.update_client(client.id or 0, positions_retention_days=30)
    assert store.get_client(client.id or 0).positions_retention_days == 30
    store.update_client(client.id or 0, name="C2")  # leaves the retention alone
    assert store.get_client(client.id or 0).positions_retention_days == 30
    store.update_client(client.id or 0, positions_retention_days=None)  # forever again
    assert store.get_client(client.id or 0).positions_retention_days is None
    for bad in (0, -1, 36501, True, "7", 1.5):
        with pytest.raises(Invalid) as err:
            store.update_client(client.id or 0, alerts_retention_days=bad)
        assert err.value.field == "alerts_retention_days"
    assert RetentionStore(store.engine).clients() == []


def dead_letters(store: Store, sink_id: int, count: int) -> None:
    rows = [
        {"sink_id": sink_id, "outbox_id": 10_000 + i, "device_id": None,
         "delivery_id": f"msg_x_{i}", "attempts": 1, "status": 400, "error": "refused",
         "excerpt": "", "created_at": NOW}
        for i in range(count)
    ]  # fmt: skip
    with db.write_tx(store.engine) as conn:
        conn.execute(sa.insert(dead_t), rows)


def dead_ids(store: Store, sink_id: int) -> list[int]:
    with store.engine.connect() as conn:
        q = sa.select(dead_t.c.outbox_id).where(dead_t.c.sink_id == sink_id)
        return sorted(int(i) for (i,) in conn.execute(q))


def make_sink(store: Store, client_id: int, name: str, purpose: str = "locations") -> int:
    row = store.sinks.create(
        client_id,
        name=name,
        kind="webhook",
        format="gpshub-locations" if purpose == "locations" else "gpshub-alert",
        purpose=purpose,
        settings={"url": "https://receiver.example/hook"},
        secrets={},
    )
    return int(row.id)


def test_dead_letters_beyond_the_cap_go_oldest_first(store: Store) -> None:
    client = store.create_client("A").id or 0
    full, small = make_sink(store, client, "full"), make_sink(store, client, "small")
    dead_letters(store, full, 25)
    dead_letters(store, small, 5)
    retention = RetentionStore(store.engine)
    ((sink_id, name, over, upto),) = retention.dead_letter_overflow(10)
    assert (sink_id, name, over) == (full, "full", 15)
    batches = run_all(lambda n: retention.drop_dead_letters(sink_id, upto, n), 4)
    assert sum(b.deleted for b in batches) == 15
    assert dead_ids(store, full) == list(range(10_015, 10_025))  # the newest ten
    assert dead_ids(store, small) == list(range(10_000, 10_005))
    assert retention.dead_letter_overflow(10) == []


def test_the_outbox_beyond_the_cap_loses_its_oldest_messages(store: Store) -> None:
    a = store.create_client("A").id or 0
    b = store.create_client("B").id or 0
    behind = make_sink(store, a, "behind")
    make_sink(store, a, "alerts", purpose="alerts")
    locations = add_outbox(store, a, "location", list(range(1, 31)))
    alerts = add_outbox(store, a, "alert", list(range(1, 6)))
    others = add_outbox(store, b, "location", list(range(1, 31)))
    # a dead letter keeps its message (the dead-letter cap governs those)
    with db.write_tx(store.engine) as conn:
        conn.execute(
            sa.insert(dead_t),
            [{"sink_id": behind, "outbox_id": locations[2], "device_id": None,
              "delivery_id": "msg_x", "attempts": 1, "status": 400, "error": "", "excerpt": "",
              "created_at": NOW}],
        )  # fmt: skip
    retention = RetentionStore(store.engine)
    over = retention.outbox_overflow(20)
    assert [(o.client_id, o.kind) for o in over] == [(a, "location"), (b, "location")]
    assert over[0].upto == locations[9] and over[0].behind == (f"'behind' (#{behind})",)
    batches = run_all(lambda n: retention.drop_outbox(over[0], n), 4)
    assert sum(b.deleted for b in batches) == 9
    o = outbox_t
    with store.engine.connect() as conn:
        left = [int(i) for (i,) in conn.execute(sa.select(o.c.id).order_by(o.c.id))]
    assert left == [locations[2], *locations[10:], *alerts, *others]


def test_the_schema_change_keeps_existing_clients(db_url: str, secret_box) -> None:  # type: ignore[no-untyped-def]
    engine = db.create_engine(db_url)
    db.migrate(engine, "0005")
    t = "2026-01-01 00:00:00.000000" if engine.dialect.name == "sqlite" else NOW
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO clients (id, name, timezone, created_at) VALUES"
                " (7, 'old', 'America/Guatemala', :t)"
            ),
            {"t": t},
        )
        conn.execute(
            sa.text("INSERT INTO outbox (client_id, kind, device_id, ref_id, payload, created_at)"
                    " VALUES (7, 'location', NULL, 41, '{}', :t)"),
            {"t": t},
        )  # fmt: skip
    engine.dispose()
    store = Store.open(db_url, secret_box)
    try:
        (client,) = store.list_clients()
        assert (client.id, client.name, client.timezone) == (7, "old", "America/Guatemala")
        assert (client.positions_retention_days, client.alerts_retention_days) == (None, None)
        indexes = {ix["name"] for ix in sa.inspect(store.engine).get_indexes("outbox")}
        assert "ix_outbox_ref_id" in indexes
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(outbox_t.c.client_id, outbox_t.c.ref_id)).all() == [
                (7, 41)
            ]
    finally:
        store.close()


# -- the housekeeping task, on trio's mock clock --------------------------------------------
@pytest.fixture
def inline() -> Iterator[None]:
    with blocking_calls_inline():
        yield


EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


async def test_housekeeping_prunes_in_batches_with_pauses(
    tmp_path: Path, clock: MockClock, inline: None, caplog: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(
        tmp_path,
        clock=TrioClock(EPOCH),
        retention_every_s=3600.0,
        retention_batch_rows=10,
        retention_pause_s=5.0,
        dead_letters_max_per_sink=3,
        status_check_s=86400.0,
        delivery_poll_s=86400.0,
    )
    store = hub.store
    client = store.create_client("A", positions_retention_days=1).id or 0
    device = store.create_device(client, name="truck").id or 0
    store_fixes(store, device, EPOCH - timedelta(days=2), 48)  # hourly, one day too many
    sink = make_sink(store, client, "refused")
    dead_letters(store, sink, 5)
    caplog.set_level(logging.INFO, logger="hub.housekeeping")
    async with trio.open_nursery() as nursery:
        await nursery.start(hub.run)
        start = trio.current_time()
        await trio.sleep(59)
        assert len(positions_of(store, device)) == 48, "the first pass comes a minute in"
        await trio.sleep(2)  # the dead letters' batch ran at 60 s, then a pause of 5 s
        assert len(dead_ids(store, sink)) == 3
        assert len(positions_of(store, device)) == 48
        await trio.sleep(5)  # 66 s: the first batch of positions ran at 65 s
        assert len(positions_of(store, device)) == 38
        await trio.sleep(5)
        assert len(positions_of(store, device)) == 28
        await trio.sleep(60)
        kept = positions_of(store, device)  # older than a day at 65 s: 25 of them
        assert kept[0] > EPOCH - timedelta(days=1) and len(kept) == 23
        report = hub.housekeeping.last_pass
        assert report is not None
        assert (report.positions, report.dead_letters_dropped, report.batches) == (25, 2, 4)
        # the next pass, an hour later, finds the position that has aged since
        await trio.sleep(start + 60 + 3600 + 60 - trio.current_time())
        assert len(positions_of(store, device)) == 22
        hub.shutdown()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "sink 'refused' (#1): dropped its 2 oldest dead letters; it had 2 more than "
        "dead_letters_max_per_sink (3)"
    ]
    assert any("deleted 25 positions" in r.getMessage() for r in caplog.records)


@pytest.fixture
def clock() -> MockClock:
    return MockClock(autojump_threshold=0)
