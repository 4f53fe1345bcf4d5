"""Database engines and schema migrations.

SQLite (the embedded default) gets WAL, a busy timeout, foreign keys,
``synchronous=NORMAL`` and a ``journal_size_limit`` on every connection, and write
transactions that start with ``BEGIN IMMEDIATE`` so a writer never fails on a lock
upgrade.  PostgreSQL is used when
the URL says so.  The schema is managed by Alembic from the first version on.  The
SQLite database and its WAL and shared-memory files are readable by their owner only
(mode 0600, like the key file).
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
WRITE = {"gpshub_write": True}
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_WAL_LIMIT = 32 * 2**20
"""Bytes of write-ahead log SQLite leaves on disk when it starts the log over
(``journal_size_limit``); ``hub.wal`` checkpoints a larger one by force."""

log = logging.getLogger(__name__)


class WriteLockBusy(Exception):
    """Another connection holds SQLite's write lock: raised by the ``BEGIN IMMEDIATE``
    of a transaction with the execution option ``gpshub_nowait`` on a connection whose
    busy timeout is 0 (``hub.writer_connection``), which does not wait for the lock."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def create_engine(url: str, *, synchronous: str = "NORMAL", echo: bool = False) -> Engine:
    """An engine for ``url`` with the hub's connection settings applied."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            make_private(Path(database))
        engine = sa.create_engine(url, echo=echo, connect_args={"check_same_thread": False})
        _configure_sqlite(engine, synchronous)
    else:
        engine = sa.create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10)
    return engine


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private(path: Path) -> None:
    """Make the SQLite database ``path`` readable by its owner only, like the key file.

    A new database is created empty with mode 0600 before SQLite opens it (SQLite would
    make it 0644 less the umask); SQLite gives its WAL, shared-memory and journal files
    the database file's mode, so they are 0600 too.  An existing database and its side
    files that others may read are narrowed to 0600 (a warning when that is not allowed).
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except FileNotFoundError:
        return  # no such folder: SQLite says so when it opens the database
    for file in (path, *(path.with_name(path.name + side) for side in SQLITE_SIDE_FILES)):
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError as exc:
            log.warning("cannot make %s readable by its owner only: %s", file, exc)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit
        # transactions would otherwise start DEFERRED ones behind our back).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        # on the driver's connection: SQLAlchemy's statement machinery would cost more
        # than SQLite spends beginning (this runs for every transaction)
        raw: sqlite3.Connection = conn.connection.driver_connection  # type: ignore[assignment]
        if not options.get("gpshub_write", False):
            raw.execute("BEGIN")
        elif not options.get("gpshub_nowait", False):
            raw.execute("BEGIN IMMEDIATE")
        else:  # on a connection whose busy timeout is 0 (hub.writer_connection)
            try:
                raw.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                raise WriteLockBusy(str(exc)) from exc


@contextmanager
def write_tx(engine: Engine) -> Iterator[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
    with engine.connect() as conn:
        conn = conn.execution_options(**WRITE)
        with conn.begin():
            yield conn


@contextmanager
def orm_session(engine: Engine, *, write: bool = False) -> Iterator[Any]:
    """A SQLModel session on ``engine`` whose objects stay readable after commit;
    ``write``: one write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
    from sqlmodel import Session

    bind = engine.execution_options(**WRITE) if write else engine
    with Session(bind, expire_on_commit=False) as session:
        if write:
            with session.begin():
                yield session
        else:
            yield session


def alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to ``revision`` (idempotent).

    A database already at the head (every start but the first after an upgrade) is left
    as it is without importing Alembic, which would take a tenth of a second to say so.
    An empty database is created at the head from the models (``create_at_head``) instead
    of by replaying every migration: a new data directory serves sooner.
    """
    if revision == "head" and (_at_head(engine) or create_at_head(engine)):
        return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


ALEMBIC_VERSION = sa.Table(
    "alembic_version",
    sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)
"""Alembic's bookkeeping table, as Alembic itself creates it."""


def create_at_head(engine: Engine) -> bool:
    """Create the schema of an *empty* database straight from the models, with the rows
    the migrations insert (the hub's id), stamped with the head revision; ``False`` (and
    nothing done) when the database has any table or the head is not plain.

    This is Alembic's own recipe for a new database ("create_all, then stamp head"), in
    one transaction: a write lock on SQLite, an advisory lock on PostgreSQL, so of two
    processes creating the same database one creates it and the other finds it made.
    ``tests/test_migrate_head.py`` checks the result equals a database migrated step by
    step from nothing: the same tables, columns, keys, indexes and sequences.
    """
    head = script_head()
    if head is None:
        return False
    from hub import models

    with write_tx(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
        if sa.inspect(conn).get_table_names():
            return False
        models.metadata.create_all(conn)
        ALEMBIC_VERSION.create(conn)
        conn.execute(ALEMBIC_VERSION.insert().values(version_num=head))
        conn.execute(models.hub_meta_t.insert().values(key="hub_id", value=models.new_hub_id()))
    log.info("created the database schema at revision %s", head)
    return True


SCHEMA_LOCK_KEY = 0x6770_6873  # "gphs": held while an empty database is given its schema


_ASSIGNED = r"^{name}(?:[ \t]*:[^=\n]*)?[ \t]*=[ \t]*(?P<value>.*?)[ \t]*(?:#.*)?$"
_STRING = re.compile(r"""^(?:"([^"\\]*)"|'([^'\\]*)')$""")


def _assigned(name: str, source: str) -> list[str]:
    return [m["value"] for m in re.finditer(_ASSIGNED.format(name=name), source, re.MULTILINE)]


def _plain_string(value: str) -> str | None:
    m = _STRING.match(value)
    return None if m is None else (m[1] if m[1] is not None else m[2])


@functools.cache
def script_head() -> str | None:
    """The head revision of ``migrations/versions``, read from the files without
    Alembic: each file's ``revision`` and ``down_revision``.  ``None`` unless that is
    plain (one string each, one chain, no ``depends_on``): Alembic then decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        source = path.read_text(encoding="utf-8")
        revision, down, depends = (
            _assigned(name, source) for name in ("revision", "down_revision", "depends_on")
        )
        if len(revision) != 1 or len(down) != 1 or depends not in ([], ["None"]):
            return None
        this = _plain_string(revision[0])
        parent = None if down[0] == "None" else _plain_string(down[0])
        if this is None or this in revisions or (parent is None and down[0] != "None"):
            return None
        revisions.add(this)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else None


def _at_head(engine: Engine) -> bool:
    """Whether the database's one revision is ``script_head()`` (no Alembic needed)."""
    head = script_head()
    if head is None:
        return False
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return False
        rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return [r[0] for r in rows] == [head]


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


OUTBOX_LOCK_KEY = 0x6770_6875  # "gphu": the advisory lock of outbox writers


def lock_outbox(conn: Connection) -> None:
    """Serialise transactions that add outbox rows, until this one commits.

    Delivery workers read the outbox by id, so ids must become visible in the order
    they were given out.  SQLite has one writer at a time anyway; PostgreSQL's
    sequences hand ids out to concurrent transactions that may commit in another
    order, so there every outbox writer takes one transaction-level advisory lock
    (which also holds across several hub processes).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": OUTBOX_LOCK_KEY})
