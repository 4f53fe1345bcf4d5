"""Ids are never given out again, and a deleted device leaves the rules that named it
(SQLite and PostgreSQL; the upgrade to 0006 on a filled database)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hub import db
from hub.fix import PositionFix
from hub.models import (
    Role,
    alerts_t,
    cursors_t,
    dead_t,
    metadata,
    positions_t,
    sqlite_timestamp,
    states_t,
)
from hub.positions import CursorUpdate, IngestItem
from hub.secrets import SecretBox
from hub.source import Cursor
from hub.store import Store

T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
DEPOT = {"type": "Point", "coordinates": [-90.5, 14.6]}
MIGRATION = Path(__file__).parents[1] / "hub/migrations/versions/0006_ids_never_reused.py"


def _migration() -> Any:
    spec = importlib.util.spec_from_file_location("migration_0006", MIGRATION)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ID_TABLES = (*_migration().TABLES, "outbox")
LATER_ID_TABLES = ("change_log", "browser_sessions")  # made after 0006, AUTOINCREMENT


def put(store: Store, device: int, seconds: float, **kw: Any) -> list[dict[str, Any]]:
    fix = PositionFix(T0 + timedelta(seconds=seconds), 14.61, -90.5, **kw)
    return store.positions.write_batch(
        [IngestItem(device, None, fix)], server_time=T0 + timedelta(seconds=seconds)
    ).alerts


def newest_deleted_then_created(make: Callable[[], int], delete: Callable[[int], None]) -> None:
    make()
    newest = make()
    delete(newest)
    again = make()
    assert again > newest, f"id {newest} was given out again"


def test_no_id_is_given_out_again_after_a_delete(store: Store) -> None:
    counter = iter(range(1000))

    def name() -> str:
        return f"n{next(counter)}"

    newest_deleted_then_created(lambda: store.create_client(name()).id or 0, store.delete_client)
    a = store.create_client("A").id or 0
    newest_deleted_then_created(
        lambda: store.create_user(name(), Role.MANAGER, a).id or 0, store.delete_user
    )
    owner = store.create_user("owner", Role.MANAGER, a)
    newest_deleted_then_created(
        lambda: store.create_token(owner.id or 0)[0].id or 0, store.delete_token
    )
    newest_deleted_then_created(
        lambda: store.create_connection(a, "simulator", name(), {}).id or 0,
        store.delete_connection,
    )
    newest_deleted_then_created(
        lambda: store.create_device(a, name=name()).id or 0, store.delete_device
    )
    geo = store.geofences
    newest_deleted_then_created(lambda: geo.create_group(a, name()).id or 0, geo.delete_group)
    newest_deleted_then_created(
        lambda: geo.create(a, name(), DEPOT, {"radius_m": 100}).id or 0, geo.delete
    )
    newest_deleted_then_created(
        lambda: store.rules.create(a, owner, name(), "ignitionOn").id or 0, store.rules.delete
    )

    def sink() -> int:
        row = store.sinks.create(
            a, name=name(), kind="webhook", format="gpshub-location", purpose="locations",
            settings={"url": "https://receiver.example/hook"},
        )  # fmt: skip
        return row.id or 0

    newest_deleted_then_created(sink, store.sinks.delete)
    keep = sink()

    def dead_letter() -> int:
        with db.write_tx(store.engine) as conn:
            return conn.execute(
                sa.insert(dead_t)
                .values(sink_id=keep, outbox_id=1, delivery_id="d", error="refused", excerpt="")
                .returning(dead_t.c.id)
            ).scalar_one()

    newest_deleted_then_created(dead_letter, lambda i: store.sinks.discard_dead(keep, [i]))


def test_positions_and_alerts_of_a_deleted_device_lend_their_ids_to_nobody(
    store: Store,
) -> None:
    """The arrival cursor of ``/api/positions`` is a position id: a position stored after
    the newest ones were deleted still comes after the cursor a client kept."""
    a = store.create_client("A").id or 0
    owner = store.create_user("owner", Role.MANAGER, a)
    store.rules.create(a, owner, "ignition", "ignitionOn")
    kept = store.create_device(a, name="kept").id or 0
    gone = store.create_device(a, name="gone").id or 0
    put(store, kept, 0, ignition=False)
    put(store, gone, 0, ignition=False)
    (alert,) = put(store, gone, 10, ignition=True)
    _, _, resume = store.positions.since(a)
    assert resume is not None
    store.delete_device(gone)
    (later,) = put(store, kept, 10, ignition=True)
    rows, _, _ = store.positions.since(a, cursor=resume)
    assert [r["device_id"] for r in rows] == [kept]  # not hidden behind the cursor
    assert later["eventId"] > alert["eventId"]


# -- a deleted device leaves the rules that named it -------------------------------------


@pytest.fixture
def fleet(store: Store) -> dict[str, Any]:
    a = store.create_client("A").id or 0
    b = store.create_client("B").id or 0
    owner = store.create_user("owner", Role.MANAGER, a)
    conn = store.create_connection(a, "simulator", "sim", {})
    d1 = store.create_device(a, name="truck 1", connection_id=conn.id, upstream_id="u1").id
    d2 = store.create_device(a, name="truck 2", tags=["north"]).id
    return {"a": a, "b": b, "owner": owner, "conn": conn.id, "d1": d1, "d2": d2}


def test_a_deleted_device_leaves_the_rules_that_named_it(
    store: Store, fleet: dict[str, Any]
) -> None:
    a, owner, d1, d2 = fleet["a"], fleet["owner"], fleet["d1"], fleet["d2"]
    both = store.rules.create(a, owner, "both", "ignitionOn", device_ids=[d1, d2])
    only = store.rules.create(a, owner, "only truck 2", "ignitionOn", device_ids=[d2])
    tagged = store.rules.create(a, owner, "north", "ignitionOn", device_ids=[d2], tags=["north"])
    everyone = store.rules.create(a, owner, "all", "ignitionOn")
    version = store.get_client(a).rules_version
    store.delete_device(d2)
    assert store.rules.get(both.id).device_ids == [d1]
    emptied = store.rules.get(only.id)
    assert emptied.device_ids == [] and emptied.enabled  # none, not all
    assert emptied.updated_at > only.updated_at
    assert store.rules.get(tagged.id).device_ids == []
    assert store.rules.get(tagged.id).tags == ["north"]
    assert store.rules.get(everyone.id).device_ids is None
    assert store.get_client(a).rules_version > version  # pipelines reload the rules

    # the issue: the id went to another client's new device, and the rule followed it
    newcomer = store.create_device(fleet["b"], name="theirs").id or 0
    assert newcomer != d2
    assert all(newcomer not in (r.device_ids or ()) for r in store.rules.list(a))


def test_a_rule_whose_devices_are_all_deleted_fires_for_no_device(
    store: Store, fleet: dict[str, Any]
) -> None:
    a, owner, d1, d2 = fleet["a"], fleet["owner"], fleet["d1"], fleet["d2"]
    store.rules.create(a, owner, "only truck 2", "ignitionOn", device_ids=[d2])
    put(store, d1, 0, ignition=False)
    store.delete_device(d2)
    assert put(store, d1, 10, ignition=True) == []  # it did not become a rule for all
    d3 = store.create_device(a, name="truck 3").id or 0
    put(store, d3, 0, ignition=False)
    assert put(store, d3, 10, ignition=True) == []


def test_a_deleted_device_leaves_no_state_cursor_or_history_behind(
    store: Store, fleet: dict[str, Any]
) -> None:
    a, owner, d1 = fleet["a"], fleet["owner"], fleet["d1"]
    store.rules.create(a, owner, "ignition", "ignitionOn")
    fix = PositionFix(T0, 14.61, -90.5, ignition=False)
    cursor = CursorUpdate(d1, fleet["conn"], Cursor(T0, {"page": 1}))
    store.positions.write_batch([IngestItem(d1, fleet["conn"], fix)], [cursor])
    assert put(store, d1, 10, ignition=True)
    assert store.load_cursors(fleet["conn"])
    store.delete_device(d1)
    with store.engine.connect() as conn:
        for table in (states_t, cursors_t, positions_t, alerts_t):
            count = sa.select(sa.func.count()).select_from(table)
            assert conn.execute(count.where(table.c.device_id == d1)).scalar() == 0, table


def test_rules_and_devices_after_a_connection_or_a_client_is_deleted(
    store: Store, fleet: dict[str, Any]
) -> None:
    a, owner, d1 = fleet["a"], fleet["owner"], fleet["d1"]
    rule = store.rules.create(a, owner, "truck 1", "ignitionOn", device_ids=[d1])
    store.delete_connection(fleet["conn"])  # its devices stay, unlinked: so do the rules
    assert store.get_device(d1).connection_id is None
    assert store.rules.get(rule.id).device_ids == [d1]
    b_owner = store.create_user("b", Role.MANAGER, fleet["b"])
    theirs = store.create_device(fleet["b"], name="theirs").id or 0
    other = store.rules.create(fleet["b"], b_owner, "theirs", "ignitionOn", device_ids=[theirs])
    store.delete_client(a)  # its rules go with it; nobody else's rule named its devices
    assert [r.id for r in store.rules.list()] == [other.id]
    assert store.rules.get(other.id).device_ids == [theirs]


# -- the schema --------------------------------------------------------------------------


def test_every_table_whose_ids_leave_the_database_has_autoincrement(tmp_path: Path) -> None:
    with_ids = {
        t.name for t in metadata.sorted_tables if [c.name for c in t.primary_key.columns] == ["id"]
    }
    assert with_ids == {*ID_TABLES, *LATER_ID_TABLES}
    for name in with_ids:
        assert metadata.tables[name].dialect_options["sqlite"]["autoincrement"], name
    box = SecretBox([SecretBox.generate_key().encode()])
    store = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}", box)  # created by migrations
    with store.engine.connect() as conn:
        ddl = dict(
            conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'").all()
        )
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()
    for name in with_ids:
        assert "AUTOINCREMENT" in ddl[name].upper(), name
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)  # straight from the models
    with engine.connect() as conn:
        ddl = dict(
            conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'").all()
        )
    for name in with_ids:
        assert "AUTOINCREMENT" in ddl[name].upper(), name


def test_autoincrement_ddl_keeps_everything_else() -> None:
    m = _migration()
    ddl = (
        "CREATE TABLE \"t\" (\n\tid INTEGER NOT NULL, \n\tx VARCHAR(20) DEFAULT 'a,b' NOT NULL, "
        "y INTEGER, \n\tCONSTRAINT pk_t PRIMARY KEY (id), \n\tCONSTRAINT uq_t_x UNIQUE (x)\n)"
    )
    out = m.autoincrement_ddl(ddl, "_0006_t")
    assert out == (
        'CREATE TABLE "_0006_t" (\n\tid INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT, \n\t'
        "x VARCHAR(20) DEFAULT 'a,b' NOT NULL, y INTEGER, \n\tCONSTRAINT uq_t_x UNIQUE (x)\n)"
    )
    with pytest.raises(RuntimeError, match="unexpected"):
        m.autoincrement_ddl("CREATE TABLE t (k TEXT PRIMARY KEY)", "_0006_t")


# -- the upgrade to 0006 on a filled database --------------------------------------------


def fill_0005(engine: sa.Engine) -> None:
    """Rows in every table of the 0005 schema, with traces of deleted rows whose ids were
    the highest: device 12 (in a rule, as before the fix), position 50, alert 30, rule 5,
    geofence 8, geofence group 4, connection 7, outbox id 120."""
    sqlite = engine.dialect.name == "sqlite"

    def ts(seconds: float = 0) -> Any:
        when = T0 + timedelta(seconds=seconds)
        return sqlite_timestamp(when) if sqlite else when

    m = sa.MetaData()
    m.reflect(engine)
    t = m.tables
    now = ts()
    alert = {"messageId": "ignitionOn", "deviceId": 1, "urId": 5, "ruleOwnerId": 2}
    rows: list[tuple[str, list[dict[str, Any]]]] = [
        ("clients", [{"id": 1, "name": "A", "created_at": now},
                     {"id": 2, "name": "B", "created_at": now}]),
        ("users", [{"id": 1, "client_id": None, "name": "admin", "role": "admin",
                    "created_at": now},
                   {"id": 2, "client_id": 1, "name": "ana", "role": "manager",
                    "created_at": now}]),
        ("api_tokens", [{"id": 1, "user_id": 1, "name": "", "prefix": "gph_abc",
                         "token_hash": "f" * 64, "created_at": now}]),
        ("connections", [{"id": 1, "client_id": 1, "kind": "simulator", "label": "sim",
                          "credentials": "", "options": {}, "enabled": True, "state": "ok",
                          "positions_received": 5, "created_at": now, "updated_at": now}]),
        ("devices", [{"id": i, "client_id": 1 if i < 3 else 2, "name": f"truck {i}",
                      "tags": ["north"], "connection_id": 1 if i < 3 else None,
                      "upstream_id": f"u{i}" if i < 3 else None, "remote_id": f"r{i}",
                      "created_at": now, "updated_at": now} for i in (1, 2, 3)]),
        ("plugin_state", [{"connection_id": 1, "key": "session", "value": "x",
                           "updated_at": now}]),
        ("positions", [{"id": i, "device_id": 1 + i % 2, "connection_id": 7 if i == 1 else 1,
                        "fix_time": ts(i), "server_time": ts(i), "lat": 14.6, "lon": -90.5,
                        "valid": True, "sensors": {"fuel": i}, "raw": {"n": i},
                        "poi_ids": [1, 6] if i == 3 else [],
                        "poi_group_ids": [4] if i == 3 else []} for i in range(1, 6)]),
        ("source_cursors", [{"device_id": 1, "connection_id": 1, "last_fix_time": ts(5),
                             "state": {"page": 2}, "updated_at": now}]),
        ("device_state", [{"device_id": 1, "updated_at": now,
                           "state": {"inside": [8], "rules": {"5": {"on": True}}}}]),
        ("geofence_groups", [{"id": 1, "client_id": 1, "name": "depots", "created_at": now}]),
        ("geofences", [{"id": i, "client_id": 1, "name": f"g{i}", "contact": "", "kind": "circle",
                        "geometry": DEPOT, "properties": {"radius_m": 100},
                        "created_at": now, "updated_at": now} for i in (1, 2)]),
        ("geofence_group_members", [{"geofence_id": 1, "group_id": 1}]),
        ("alert_rules", [{"id": 1, "client_id": 1, "owner_id": 2, "owner_name": "ana",
                          "name": "in", "type": "enteredPoi",
                          "params": {"poi_ids": [1], "group_ids": [1]}, "device_ids": [2, 12],
                          "enabled": True, "webhook": False, "created_at": now,
                          "updated_at": now},
                         {"id": 2, "client_id": 1, "owner_id": None, "owner_name": "old",
                          "name": "all", "type": "ignitionOn", "params": {},
                          "device_ids": None, "enabled": True, "webhook": True,
                          "created_at": now, "updated_at": now}]),
        ("alerts", [{"id": i, "client_id": 1, "device_id": 1, "rule_id": 2, "position_id":
                     40 if i == 2 else i, "message_id": "ignitionOn", "fix_time": ts(i),
                     "server_time": ts(i), "payload": alert} for i in (1, 2)]),
        ("sinks", [{"id": 1, "client_id": 1, "name": "relay", "kind": "webhook",
                    "format": "gpshub-location", "purpose": "locations", "settings": {},
                    "format_options": {}, "secrets": "", "enabled": True, "cursor": 100,
                    "inflight_upto": 120, "state": "ok", "delivered": 3, "failed_attempts": 0,
                    "created_at": now, "updated_at": now}]),
        ("outbox", [{"id": 101, "client_id": 1, "kind": "location", "device_id": 9,
                     "ref_id": 50, "payload": {}, "created_at": now, "sink_id": None},
                    {"id": 102, "client_id": 1, "kind": "alert", "device_id": 1, "ref_id": 30,
                     "payload": {**alert, "poiIds": [2]}, "created_at": now, "sink_id": 1}]),
        ("sink_pending", [{"sink_id": 1, "outbox_id": 101, "device_id": 9, "attempts": 2,
                           "next_attempt_at": ts(60), "delivery_id": "d1"}]),
        ("dead_letters", [{"id": 1, "sink_id": 1, "outbox_id": 99, "device_id": 1,
                           "delivery_id": "d0", "attempts": 5, "status": 400, "error": "no",
                           "excerpt": "", "created_at": now}]),
    ]  # fmt: skip
    with db.write_tx(engine) as conn:
        for name, values in rows:
            conn.execute(sa.insert(t[name]), values)
        if not sqlite:  # as if the rows had been created one by one
            for name in ID_TABLES:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'),"
                        f" (SELECT max(id) FROM {name}))"
                    )
                )


def snapshot(engine: sa.Engine) -> dict[str, Any]:
    """Every row of every table, and on SQLite each table's columns, indexes and
    foreign keys as SQLite reports them."""
    inspector = sa.inspect(engine)
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for name in sorted(inspector.get_table_names()):
            if name in ("alembic_version", "sqlite_sequence"):
                continue
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            order = [table.c.id] if "id" in table.c else list(table.primary_key.columns)
            out[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]
            if engine.dialect.name != "sqlite":
                continue
            indexes = []
            for _, index, unique, origin, partial in conn.exec_driver_sql(
                f'PRAGMA index_list("{name}")'
            ):
                if origin == "pk":
                    continue
                columns = [c[2] for c in conn.exec_driver_sql(f'PRAGMA index_info("{index}")')]
                indexes.append((index, unique, origin, partial, columns))
            out[f"{name}/indexes"] = sorted(indexes)
            out[f"{name}/foreign keys"] = sorted(
                tuple(r)[2:] for r in conn.exec_driver_sql(f'PRAGMA foreign_key_list("{name}")')
            )
            out[f"{name}/columns"] = [
                tuple(r) for r in conn.exec_driver_sql(f'PRAGMA table_info("{name}")')
            ]
    return out


def test_upgrading_a_filled_database_to_0006(db_url: str, secret_box: SecretBox) -> None:
    engine = db.create_engine(db_url)
    db.migrate(engine, "0005")
    fill_0005(engine)
    before = snapshot(engine)
    db.migrate(engine, "0006")
    assert db.current_revision(engine) == "0006"
    assert snapshot(engine) == before  # rows, columns, indexes and foreign keys
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            ddl = dict(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master").all())
            sequences = dict(conn.exec_driver_sql("SELECT name, seq FROM sqlite_sequence").all())
        assert all("AUTOINCREMENT" in ddl[name] for name in ID_TABLES)
        assert sequences == {
            "clients": 2, "users": 2, "api_tokens": 1, "connections": 7, "devices": 12,
            "positions": 50, "geofence_groups": 4, "geofences": 8, "alert_rules": 5,
            "alerts": 30, "sinks": 1, "dead_letters": 1, "outbox": 120,
        }  # fmt: skip
    engine.dispose()

    store = Store.open(db_url, secret_box)  # the head schema from here on
    a = 1
    owner = store.get_user(2)
    conn_id = store.create_connection(a, "simulator", "new", {}).id or 0
    device = store.create_device(a, name="new").id or 0
    group = store.geofences.create_group(a, "new").id or 0
    fence = store.geofences.create(a, "new", DEPOT, {"radius_m": 100}).id or 0
    rule = store.rules.create(a, owner, "new", "ignitionOn", device_ids=[device]).id or 0
    put(store, device, 0, ignition=False)
    alerts = put(store, device, 10, ignition=True)  # rules 2 and the new one
    (newest,) = store.positions.history([device])[0][-1:]
    if sqlite:  # above every trace of a deleted row
        assert conn_id > 7 and device > 12 and group > 4 and fence > 8 and rule > 5
        assert newest["id"] > 50 and min(a["eventId"] for a in alerts) > 30
    store.delete_device(device)
    assert (store.create_device(a, name="newer").id or 0) > device
    assert store.rules.get(1).device_ids == [2, 12]  # deleted before the fix: left as was
    store.delete_device(2)
    assert store.rules.get(1).device_ids == [12]
    store.close()


def test_the_upgrade_leaves_nothing_half_done_when_it_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the whole upgrade is one transaction: a failing step keeps the data and
    the schema of before, and the connections keep their foreign keys."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'f.db'}")
    db.migrate(engine, "0005")
    fill_0005(engine)
    before = snapshot(engine)
    original = sa.Connection.exec_driver_sql

    def failing(self: sa.Connection, statement: str, *args: Any, **kw: Any) -> Any:
        if statement.startswith('ALTER TABLE "_0006_alerts"'):
            raise RuntimeError("disk full")
        return original(self, statement, *args, **kw)

    monkeypatch.setattr(sa.Connection, "exec_driver_sql", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        db.migrate(engine, "0006")
    monkeypatch.undo()
    assert db.current_revision(engine) == "0005"
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert (
            "AUTOINCREMENT"
            not in conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'clients'"
            ).scalar()
        )
    db.migrate(engine, "0006")
    assert snapshot(engine) == before
    engine.dispose()


def test_alerts_keep_or_get_back_the_rule_that_raised_them(tmp_path: Path) -> None:
    """Migration 0003 rebuilds ``alert_rules``: with foreign keys on, that set every
    alert's ``rule_id`` to NULL.  Now it keeps them, and 0006 mends databases that lost
    them, except where the rule id in the alert is a newer rule's (reused)."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate(engine, "0002")
    now = f"'{sqlite_timestamp(T0)}'"
    later = f"'{sqlite_timestamp(T0 + timedelta(hours=1))}'"
    with db.write_tx(engine) as conn:
        for sql in (
            f"INSERT INTO clients (id, name, created_at) VALUES (1, 'A', {now})",
            "INSERT INTO devices (id, client_id, name, tags, created_at, updated_at)"
            f" VALUES (1, 1, 'truck', '[]', {now}, {now})",
            "INSERT INTO alert_rules (id, client_id, owner_name, name, type, params, enabled,"
            f" created_at, updated_at) VALUES (1, 1, 'o', 'kept', 'ignitionOn', '{{}}', 1, {now},"
            f" {now})",
            # rule 2 raised alert 2, was deleted, and its id went to a rule made later
            "INSERT INTO alert_rules (id, client_id, owner_name, name, type, params, enabled,"
            f" created_at, updated_at) VALUES (2, 1, 'o', 'reused', 'stopped', '{{}}', 1, {later},"
            f" {later})",
            "INSERT INTO alerts (id, client_id, device_id, rule_id, message_id, fix_time,"
            f" server_time, payload) VALUES (1, 1, 1, 1, 'ignitionOn', {now}, {now},"
            " '{\"urId\": 1}')",
            "INSERT INTO alerts (id, client_id, device_id, rule_id, message_id, fix_time,"
            f" server_time, payload) VALUES (2, 1, 1, NULL, 'ignitionOn', {now}, {now},"
            " '{\"urId\": 2}')",
        ):
            conn.exec_driver_sql(sql)
    db.migrate(engine, "0005")
    rule_ids = "SELECT id, rule_id FROM alerts ORDER BY id"
    with db.write_tx(engine) as conn:
        assert conn.exec_driver_sql(rule_ids).all() == [(1, 1), (2, None)]  # kept by 0003
        conn.exec_driver_sql("UPDATE alerts SET rule_id = NULL")  # as 0003 used to leave it
    db.migrate(engine, "0006")
    with engine.connect() as conn:
        assert conn.exec_driver_sql(rule_ids).all() == [(1, 1), (2, None)]
    engine.dispose()


def test_the_upgrade_refuses_to_break_foreign_keys_but_not_for_old_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrations run with SQLite's foreign keys off (a rebuilt parent table would
    otherwise cascade into its children): what they break is checked before commit."""
    engine = db.create_engine(f"sqlite:///{tmp_path / 'fk.db'}")
    db.migrate(engine, "0005")
    fill_0005(engine)
    raw = engine.raw_connection()  # an orphan from long ago: foreign keys were off
    raw.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    raw.driver_connection.execute(  # type: ignore[union-attr]
        "INSERT INTO source_cursors (device_id, connection_id, state, updated_at)"
        " VALUES (99, 1, '{}', '2026-01-01 00:00:00.000000')"
    )
    raw.invalidate()
    before = snapshot(engine)
    original = sa.Connection.exec_driver_sql

    def losing_a_device(self: sa.Connection, statement: str, *args: Any, **kw: Any) -> Any:
        if statement == 'DROP TABLE "devices"':
            original(self, 'DELETE FROM "_0006_devices" WHERE id = 1')
        return original(self, statement, *args, **kw)

    monkeypatch.setattr(sa.Connection, "exec_driver_sql", losing_a_device)
    with pytest.raises(RuntimeError, match="would break"):
        db.migrate(engine, "0006")
    monkeypatch.undo()
    assert db.current_revision(engine) == "0005" and snapshot(engine) == before
    db.migrate(engine, "0006")  # the old orphan does not stop it
    assert snapshot(engine) == before
    engine.dispose()
