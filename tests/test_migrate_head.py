"""``db.migrate`` leaves a database already at the head without Alembic, creates an empty
one at the head from the models (the same schema as migrating it step by step), and hands
every other one to Alembic: one behind is upgraded, the head read from the migration files
is Alembic's own, and files it cannot read plainly make it ask Alembic."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from hub import db


def test_the_head_read_from_the_files_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(db.alembic_config(sa.create_engine("sqlite://")))
    assert [db.script_head()] == scripts.get_heads()


@pytest.fixture
def upgrades(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The revisions ``alembic.command.upgrade`` is called with (it still runs)."""
    calls: list[str] = []
    upgrade = command.upgrade

    def spy(config: Any, revision: str, **kw: Any) -> None:
        calls.append(revision)
        upgrade(config, revision, **kw)

    monkeypatch.setattr(command, "upgrade", spy)
    return calls


def test_only_a_database_behind_the_head_is_handed_to_alembic(
    db_url: str, upgrades: list[str]
) -> None:
    engine = db.create_engine(db_url)
    try:
        head = db.script_head()
        db.migrate(engine)  # a new database: created at the head without Alembic
        assert upgrades == [] and db.current_revision(engine) == head
        db.migrate(engine)  # at the head: left as it is
        assert upgrades == []
        command.downgrade(db.alembic_config(engine), "-1")
        db.migrate(engine)  # one behind: upgraded
        assert upgrades == ["head"] and db.current_revision(engine) == head
        db.migrate(engine, "head")
        db.migrate(engine, head or "")  # a named revision always goes to Alembic
        assert upgrades == ["head", head]
    finally:
        engine.dispose()


def test_a_database_stamped_with_another_revision_goes_to_alembic(
    tmp_path: Path, upgrades: list[str]
) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    db.migrate(engine)
    with engine.begin() as conn:  # a revision these files do not have (a newer gpshub's)
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffff'"))
    with pytest.raises(Exception, match="ffff"):
        db.migrate(engine)  # Alembic says it does not know it, as before
    assert upgrades == ["head"]
    engine.dispose()


def write_versions(folder: Path, *files: str) -> Path:
    versions = folder / "versions"
    versions.mkdir(parents=True)
    for i, text in enumerate(files):
        (versions / f"{i:04}_m.py").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("files", "head"),
    [
        (['revision = "a"\ndown_revision = None\n', 'revision = "b"\ndown_revision = "a"\n'], "b"),
        (  # annotated, single quotes, comments, other assignments
            [
                "revision: str = 'a'  # first\ndown_revision: str | None = None\n"
                "branch_labels = None\ndepends_on = None\n",
                '"""Revision ID: b"""\nrevision: str = "b"\ndown_revision: str | None = "a"\n',
            ],
            "b",
        ),
        (
            ['revision = "a"\ndown_revision = None\n', 'revision = "b"\ndown_revision = None\n'],
            None,
        ),
        (
            [
                'revision = "a"\ndown_revision = None\n',
                'revision = "b"\ndown_revision = "a"\n',
                'revision = "c"\ndown_revision = "a"\n',
                'revision = "d"\ndown_revision = ("b", "c")\n',
            ],
            None,
        ),
        (['revision = "b"\ndown_revision = "a"\n'], None),  # a parent that is not there
        (['revision = "a"\ndown_revision = None\ndepends_on = "x"\n'], None),
        (["revision = make()\ndown_revision = None\n"], None),
        (['revision = "a"\nrevision = "b"\ndown_revision = None\n'], None),
        (["down_revision = None\n"], None),
    ],
)
def test_files_it_cannot_read_plainly_leave_the_head_to_alembic(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[str], head: str | None
) -> None:
    monkeypatch.setattr(db, "MIGRATIONS_DIR", write_versions(tmp_path, *files))
    db.script_head.cache_clear()
    try:
        assert db.script_head() == head
    finally:
        db.script_head.cache_clear()


# -- a new database, created at the head ------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def two_empty_dbs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of one kind: two SQLite files, or two PostgreSQL schemas."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
        return
    first = request.getfixturevalue("pg_url")
    base, schema = first.rsplit("%3D", 1)
    other = f"{schema}_b"
    admin = sa.create_engine(base.split("?")[0])
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {other}"))
    try:
        yield first, f"{base}%3D{other}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {other} CASCADE"))
        admin.dispose()


def schema_of(engine: sa.Engine) -> dict[str, Any]:
    """Everything about a database's tables that code can tell apart: columns (by name:
    their order does not matter to the hub, which names every column it uses), keys,
    indexes, constraints; on SQLite whether ids are AUTOINCREMENT."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        insp = sa.inspect(conn)
        for table in insp.get_table_names():
            columns = sorted(
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in insp.get_columns(table)
            )
            out[table] = {
                "columns": columns,
                "pk": insp.get_pk_constraint(table),
                "fks": sorted(repr(sorted(fk.items())) for fk in insp.get_foreign_keys(table)),
                "indexes": sorted(repr(sorted(ix.items())) for ix in insp.get_indexes(table)),
                "uniques": sorted(
                    repr(sorted(u.items())) for u in insp.get_unique_constraints(table)
                ),
                "checks": sorted(
                    repr(sorted(c.items())) for c in insp.get_check_constraints(table)
                ),
            }
        if conn.dialect.name == "sqlite":
            for table, ddl in conn.exec_driver_sql(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
            ):
                if table in out:
                    out[table]["autoincrement"] = "AUTOINCREMENT" in ddl.upper()
    return out


def test_a_new_database_is_created_as_the_migrations_would_make_it(
    two_empty_dbs: tuple[str, str], upgrades: list[str]
) -> None:
    created_url, migrated_url = two_empty_dbs
    created, migrated = db.create_engine(created_url), db.create_engine(migrated_url)
    try:
        db.migrate(created)
        assert upgrades == []  # no Alembic
        command.upgrade(db.alembic_config(migrated), "head")  # every migration, in turn
        assert schema_of(created) == schema_of(migrated)
        for engine in (created, migrated):
            assert db.current_revision(engine) == db.script_head()
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT key, value FROM hub_meta")).all()
            assert [key for key, _ in rows] == ["hub_id"]
        command.check(db.alembic_config(created))  # Alembic finds nothing to generate
    finally:
        created.dispose()
        migrated.dispose()


def test_a_database_with_any_table_is_not_created_again(
    tmp_path: Path, upgrades: list[str]
) -> None:
    engine = db.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE notes (x TEXT)"))
        assert db.create_at_head(engine) is False
        with engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == ["notes"]
    finally:
        engine.dispose()


def test_hub_ids_of_new_databases_differ(tmp_path: Path) -> None:
    ids = set()
    for name in ("a", "b"):
        engine = db.create_engine(f"sqlite:///{tmp_path / name}.db")
        db.migrate(engine)
        with engine.connect() as conn:
            ids.add(conn.execute(sa.text("SELECT value FROM hub_meta")).scalar())
        engine.dispose()
    assert len(ids) == 2 and all(ids)
