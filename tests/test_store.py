"""The store against SQLite and PostgreSQL (``db_url`` is parametrised)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hub.fix import PositionFix
from hub.models import Connection, ConnectionState, Position, Role
from hub.positions import CursorUpdate, IngestItem
from hub.secrets import SecretError
from hub.source import Cursor, RemoteDevice
from hub.store import Conflict, Invalid, NotFound, Store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def fix(seconds: float, **kw: object) -> PositionFix:
    return PositionFix(T0 + timedelta(seconds=seconds), 14.6, -90.5, **kw)  # type: ignore[arg-type]


@pytest.fixture
def world(store: Store) -> dict[str, int]:
    a = store.create_client("Client A")
    b = store.create_client("Client B")
    conn = store.create_connection(a.id, "simulator", "sim A", {"waypoints": "1,2\n3,4"})
    d1 = store.create_device(a.id, name="truck 1", connection_id=conn.id, upstream_id="u1")
    d2 = store.create_device(a.id, name="truck 2", connection_id=conn.id, upstream_id="u2")
    return {"a": a.id, "b": b.id, "conn": conn.id, "d1": d1.id, "d2": d2.id}


def test_sqlite_connections_are_configured(tmp_path, secret_box) -> None:  # type: ignore[no-untyped-def]
    s = Store.open(f"sqlite:///{tmp_path / 'p.db'}", secret_box)
    with s.engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    assert pragma == {
        "journal_mode": "wal",
        "busy_timeout": 10000,
        "foreign_keys": 1,
        "synchronous": 1,
    }
    s.close()


def test_the_synchronous_setting_reaches_sqlite(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from hub.config import Settings
    from hub.core import Hub

    monkeypatch.delenv("GPSHUB_SECRET_KEY", raising=False)
    monkeypatch.setenv("GPSHUB_SQLITE_SYNCHRONOUS", "FULL")
    settings = Settings.load(data_dir=tmp_path)
    assert settings.sqlite_synchronous == "full"
    hub = Hub.open(settings)
    try:
        with hub.store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        hub.store.close()
    monkeypatch.setenv("GPSHUB_SQLITE_SYNCHRONOUS", "full; DROP TABLE x")
    with pytest.raises(ValueError, match="sqlite_synchronous"):
        Settings.load(data_dir=tmp_path)


def test_migrated_schema_matches_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from hub.models import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_migrating_again_keeps_the_data(store: Store, world: dict[str, int]) -> None:
    store.migrate()
    store.migrate()
    assert [c.name for c in store.list_clients()] == ["Client A", "Client B"]
    assert len(store.list_devices(world["a"])) == 2


def test_first_start_creates_one_admin_token(store: Store) -> None:
    token = store.bootstrap_admin()
    assert token and token.startswith("gph_")
    assert store.bootstrap_admin() is None  # not on a database that has users
    principal = store.authenticate(token)
    assert principal is not None and principal.is_admin and principal.scope is None


def test_tokens_are_stored_hashed_and_checked(store: Store, world: dict[str, int]) -> None:
    user = store.create_user("ana", Role.VIEWER, world["a"])
    row, plain = store.create_token(user.id, "laptop")
    with store.engine.connect() as conn:
        stored = conn.execute(sa.text("select token_hash, prefix from api_tokens")).all()
    assert all(plain not in (h, p) for h, p in stored)
    assert plain.startswith(row.prefix)
    p = store.authenticate(plain)
    assert p is not None and p.client_id == world["a"] and not p.can_write and p.scope == world["a"]
    assert store.authenticate(plain[:-1] + ("A" if plain[-1] != "A" else "B")) is None
    assert store.authenticate("not a token") is None
    store.delete_token(row.id)
    assert store.authenticate(plain) is None


def test_user_roles_are_checked(store: Store, world: dict[str, int]) -> None:
    with pytest.raises(Invalid) as err:
        store.create_user("x", Role.ADMIN, world["a"])
    assert err.value.field == "role"
    with pytest.raises(Invalid):
        store.create_user("x", "superuser", world["a"])
    with pytest.raises(Conflict):
        store.create_client("Client A")


def test_credentials_are_encrypted_and_bound_to_their_row(
    store: Store, world: dict[str, int]
) -> None:
    c2 = store.create_connection(world["b"], "wialon", "w", {"token": "S3CRET-MARKER"})
    with store.engine.connect() as conn:
        raw = conn.execute(sa.text("select credentials from connections")).scalars().all()
    assert all("S3CRET-MARKER" not in r for r in raw)
    assert store.connection_credentials(store.get_connection(c2.id)) == {"token": "S3CRET-MARKER"}
    # a ciphertext copied onto another tenant's row does not decrypt there
    stolen = store.get_connection(c2.id).credentials
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(Connection).where(Connection.id == world["conn"]).values(credentials=stolen)
        )
    with pytest.raises(SecretError):
        store.connection_credentials(store.get_connection(world["conn"]))


def test_connection_update_and_scoping(store: Store, world: dict[str, int]) -> None:
    with pytest.raises(NotFound):
        store.get_connection(world["conn"], client_id=world["b"])
    store.set_connection_status(world["conn"], state=ConnectionState.NEEDS_REAUTH, last_error="x")
    store.state_set(world["conn"], "session", {"sid": "abc"})
    conn = store.update_connection(world["conn"], credentials={"waypoints": "5,6\n7,8"})
    assert conn.state == ConnectionState.NEW and conn.last_error is None
    from hub.store import UNSET

    assert store.state_get(world["conn"], "session") is UNSET  # new credentials, new session
    conn = store.update_connection(world["conn"], enabled=False)
    assert conn.state == ConnectionState.DISABLED and not conn.enabled
    conn = store.update_connection(world["conn"], enabled=True)
    assert conn.state == ConnectionState.NEW


def test_plugin_state_is_encrypted(store: Store, world: dict[str, int]) -> None:
    store.state_set(world["conn"], "session", {"eid": "SESSION-MARKER"})
    store.state_set(world["conn"], "session", {"eid": "SESSION-MARKER-2"})
    with store.engine.connect() as conn:
        raw = conn.execute(sa.text("select value from plugin_state")).scalars().all()
    assert len(raw) == 1 and "MARKER" not in raw[0]
    assert store.state_get(world["conn"], "session") == {"eid": "SESSION-MARKER-2"}
    store.state_delete(world["conn"], "session")
    from hub.store import UNSET

    assert store.state_get(world["conn"], "session") is UNSET


def test_secret_rotation(store: Store, world: dict[str, int]) -> None:
    from hub.secrets import SecretBox

    store.state_set(world["conn"], "k", [1, 2])
    old_key = SecretBox.generate_key().encode()
    new_key = SecretBox.generate_key().encode()
    store.secrets = SecretBox([old_key])
    store.update_connection(world["conn"], credentials={"waypoints": "9,9\n8,8"})
    store.state_set(world["conn"], "k", [1, 2])
    store.secrets = SecretBox([new_key, old_key])
    assert store.rotate_secrets() == 2
    store.secrets = SecretBox([new_key])  # the old key is gone
    assert (
        store.connection_credentials(store.get_connection(world["conn"]))["waypoints"] == "9,9\n8,8"
    )
    assert store.state_get(world["conn"], "k") == [1, 2]


def test_device_rules(store: Store, world: dict[str, int]) -> None:
    d = store.create_device(world["a"], name="van", remote_id="van-01_(A):x", tags=["north"])
    assert d.remote_id == "van-01_(A):x"
    with pytest.raises(Invalid) as err:
        store.create_device(world["a"], name="bad", remote_id="has space")
    assert err.value.field == "remote_id" and "letters, digits" in err.value.reason
    with pytest.raises(Conflict) as cerr:
        store.create_device(world["a"], name="dup", remote_id="van-01_(A):x")
    assert cerr.value.field == "remote_id"
    # another client may use the same remote id
    store.create_device(world["b"], name="other", remote_id="van-01_(A):x")
    with pytest.raises(Conflict) as uerr:
        store.create_device(world["a"], name="dup", connection_id=world["conn"], upstream_id="u1")
    assert uerr.value.field == "upstream_id"
    with pytest.raises(Invalid) as ierr:
        store.create_device(world["b"], name="x", connection_id=world["conn"], upstream_id="u9")
    assert ierr.value.field == "connection_id"
    with pytest.raises(Invalid):
        store.create_device(world["a"], name=" ")
    with pytest.raises(Invalid):
        store.create_device(world["a"], name="t", tags="north")
    assert len(store.list_devices(world["a"])) == 3  # nothing half-stored


def test_import_is_idempotent(store: Store, world: dict[str, int]) -> None:
    remote = [
        RemoteDevice("u1", "truck 1"),
        RemoteDevice("u3", "truck 3", imei="3567", license_plate="P-1"),
        RemoteDevice("with space", "odd id"),
    ]
    created, existing = store.import_devices(world["conn"], remote)
    assert [d.upstream_id for d in created] == ["u3", "with space"]
    assert [d.upstream_id for d in existing] == ["u1"]
    assert created[0].imei == "3567" and created[0].license_plate == "P-1"
    assert created[0].remote_id == "u3" and created[1].remote_id is None
    created, existing = store.import_devices(world["conn"], remote)
    assert created == [] and len(existing) == 3


def test_write_batch_dedupes_and_keeps_latest(store: Store, world: dict[str, int]) -> None:
    d1, conn = world["d1"], world["conn"]
    items = [IngestItem(d1, conn, fix(s, speed_kmh=10.0)) for s in (0, 10, 20, 20)]
    r = store.positions.write_batch(items, [CursorUpdate(d1, conn, Cursor(T0, {"page": 1}))])
    assert len(r.inserted) == 3 and r.duplicates == 1 and r.moved_latest == {d1}
    # the same fixes again: dropped without error
    r = store.positions.write_batch(items)
    assert r.inserted == [] and r.duplicates == 4
    # an older fix is stored in history but does not move "latest"
    r = store.positions.write_batch([IngestItem(d1, conn, fix(-60))])
    assert len(r.inserted) == 1 and r.moved_latest == set()
    latest = store.positions.latest([d1])
    assert latest[0]["fix_time"] == T0 + timedelta(seconds=20)
    assert store.positions.count(d1) == 4
    assert store.get_connection(conn).positions_received == 4
    assert store.load_cursors(conn)[d1] == Cursor(T0, {"page": 1})


def test_write_batch_round_trips_every_field(store: Store, world: dict[str, int]) -> None:
    f = fix(
        1.5,
        altitude_m=1500.5,
        speed_kmh=88.0,
        course_deg=359.0,
        satellites=9,
        valid=False,
        ignition=True,
        accuracy_m=4.0,
        sensors={"fuel": 0.5, "door": True, "note": "x"},
        raw={"p": {"a": 1}},
        source_ip="216.58.192.100",
        source_port=5027,
    )
    server = T0 + timedelta(minutes=5)
    store.positions.write_batch([IngestItem(world["d1"], world["conn"], f)], server_time=server)
    (row,) = store.positions.history([world["d1"]])[0]
    assert row["fix_time"] == f.fix_time and row["server_time"] == server
    for name in ("lat", "lon", "altitude_m", "speed_kmh", "course_deg", "satellites", "valid"):
        assert row[name] == getattr(f, name)
    assert row["ignition"] is True and row["sensors"] == f.sensors and row["raw"] == f.raw
    assert (row["source_ip"], row["source_port"]) == ("216.58.192.100", 5027)


def test_fixes_of_deleted_devices_are_dropped(store: Store, world: dict[str, int]) -> None:
    store.delete_device(world["d2"])
    r = store.positions.write_batch(
        [
            IngestItem(world["d2"], world["conn"], fix(0)),
            IngestItem(world["d1"], world["conn"], fix(0)),
        ],
        [CursorUpdate(world["d2"], world["conn"], Cursor(T0))],
    )
    assert r.unknown_device == 1 and len(r.inserted) == 1
    assert world["d2"] not in store.load_cursors(world["conn"])


def test_a_failed_batch_stores_nothing(store: Store, world: dict[str, int]) -> None:
    good = IngestItem(world["d1"], world["conn"], fix(0))
    bad = IngestItem(world["d2"], world["conn"], fix(0, sensors={"x": object()}))
    with pytest.raises(Exception):  # noqa: B017 - the driver's error type varies
        store.positions.write_batch(
            [good, bad], [CursorUpdate(world["d1"], world["conn"], Cursor(T0))]
        )
    assert store.positions.count() == 0
    assert store.load_cursors(world["conn"]) == {}


def test_history_pages_with_a_cursor(store: Store, world: dict[str, int]) -> None:
    d1, d2, conn = world["d1"], world["d2"], world["conn"]
    store.positions.write_batch(
        [IngestItem(d, conn, fix(s)) for s in range(0, 100, 10) for d in (d1, d2)]
    )
    page, cursor = store.positions.history([d1], limit=4)
    seen = [r["fix_time"] for r in page]
    while cursor:
        page, cursor = store.positions.history([d1], cursor=cursor, limit=4)
        seen += [r["fix_time"] for r in page]
    assert seen == [T0 + timedelta(seconds=s) for s in range(0, 100, 10)]
    window, _ = store.positions.history(
        [d1, d2], start=T0 + timedelta(seconds=20), end=T0 + timedelta(seconds=40)
    )
    assert [(r["device_id"], r["fix_time"]) for r in window] == [
        (d, T0 + timedelta(seconds=s)) for s in (20, 30) for d in (d1, d2)
    ]
    with pytest.raises(ValueError, match="cursor"):
        store.positions.history([d1], cursor="garbage!")


def test_deleting_a_connection_keeps_its_devices(store: Store, world: dict[str, int]) -> None:
    store.positions.write_batch([IngestItem(world["d1"], world["conn"], fix(0))])
    store.delete_connection(world["conn"])
    d = store.get_device(world["d1"])
    assert d.connection_id is None and store.positions.count(world["d1"]) == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Position)).scalar() == 1


def test_positions_since_follow_arrival_order(store: Store, world: dict[str, int]) -> None:
    d1, conn = world["d1"], world["conn"]
    store.positions.write_batch([IngestItem(d1, conn, fix(s)) for s in (10, 20)])
    rows, more, resume = store.positions.since(world["a"], limit=10)
    assert [r["fix_time"] for r in rows] == [T0 + timedelta(seconds=s) for s in (10, 20)]
    assert more is None
    store.positions.write_batch([IngestItem(d1, conn, fix(5))])  # arrives late
    rows, _, _ = store.positions.since(world["a"], cursor=resume)
    assert [r["fix_time"] for r in rows] == [T0 + timedelta(seconds=5)]
    assert store.positions.since(world["b"])[0] == []
    rows, _, _ = store.positions.since(None, since=T0 + timedelta(seconds=10))
    assert len(rows) == 2
    with pytest.raises(ValueError, match="cursor"):
        store.positions.since(None, cursor="nonsense")


def test_visible_devices_and_user_deletion(store: Store, world: dict[str, int]) -> None:
    other = store.create_device(world["b"], name="b1")
    ids = [world["d1"], other.id, 999]
    assert store.visible_device_ids(ids, world["a"]) == {world["d1"]}
    assert store.visible_device_ids(ids, None) == {world["d1"], other.id}
    user = store.create_user("bo", Role.MANAGER, world["a"])
    _, plain = store.create_token(user.id)
    with pytest.raises(NotFound):
        store.delete_user(user.id, client_id=world["b"])
    store.delete_user(user.id, client_id=world["a"])
    assert store.authenticate(plain) is None
    admin = store.create_user("root", Role.ADMIN, None)
    with pytest.raises(Conflict, match="last system administrator"):
        store.delete_user(admin.id)


def test_token_use_is_recorded(store: Store, world: dict[str, int]) -> None:
    user = store.create_user("cy", Role.VIEWER, world["a"])
    row, plain = store.create_token(user.id)
    assert row.last_used_at is None
    store.authenticate(plain)
    (used,) = [t.last_used_at for t in store.list_tokens([user.id])]
    assert used is not None


def test_status_of_an_edited_connection_is_not_overwritten(
    store: Store, world: dict[str, int]
) -> None:
    version = store.get_connection(world["conn"]).updated_at
    assert store.set_connection_status(world["conn"], if_version=version, state="ok")
    store.update_connection(world["conn"], enabled=False)
    assert not store.set_connection_status(world["conn"], if_version=version, state="ok")
    assert store.get_connection(world["conn"]).state == ConnectionState.DISABLED


def test_upgrading_from_the_first_schema_keeps_data(db_url: str, secret_box) -> None:  # type: ignore[no-untyped-def]
    from hub import db

    engine = db.create_engine(db_url)
    db.migrate(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO clients (id, name, created_at) VALUES (1, 'old', '2026-01-01 00:00:00.000000')"
                if engine.dialect.name == "sqlite"
                else "INSERT INTO clients (id, name, created_at) VALUES (1, 'old', now())"
            )
        )
    engine.dispose()
    store = Store.open(db_url, secret_box)  # migrates to the newest schema
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(db.alembic_config(store.engine)).get_current_head()
    assert head is not None and db.current_revision(store.engine) == head
    (client,) = store.list_clients()
    assert (client.name, client.timezone) == ("old", "UTC")
    device = store.create_device(client.id, name="d")
    store.positions.write_batch([IngestItem(device.id, None, fix(0))])
    (row,) = store.positions.history([device.id])[0]
    assert row["event_code"] in (0, 1) and row["alerts_count"] == 0
    store.close()


def test_sync_devices_sets_upstream_properties(store: Store, world: dict[str, int]) -> None:
    store.import_devices(world["conn"], [RemoteDevice("u2", "van"), RemoteDevice("u3", "car")])
    changes = {
        "u2": {"name": "Van 2", "license_plate": "P-" + "9" * 60},  # cut to the column
        "u3": {"name": "car"},  # unchanged
        "u1": {"imei": "356307042441013"},
        "nobody": {"name": "ghost"},
    }
    assert store.sync_devices(world["conn"], changes) == 2
    by_upstream = {d.upstream_id: d for d in store.list_devices(world["a"])}
    assert by_upstream["u2"].name == "Van 2" and len(by_upstream["u2"].license_plate or "") == 50
    assert by_upstream["u1"].imei == "356307042441013"
    assert by_upstream["u3"].name == "car"
    assert "ghost" not in {d.name for d in store.list_devices(None)}
    assert store.sync_devices(world["conn"], changes) == 0
