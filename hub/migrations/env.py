"""Alembic environment: the engine is handed in by ``hub.db.migrate``.

On SQLite a migration may rebuild a table (create a copy, fill it, drop the old one,
rename the copy).  With foreign keys enforced, dropping a parent table would first
delete its rows and so cascade into every child table, so migrations run with
``PRAGMA foreign_keys`` off (it can only be switched outside a transaction) and, when a
migration ran, ``PRAGMA foreign_key_check`` must find no violation the migration made
before the transaction (one for the whole upgrade) commits.
"""

from __future__ import annotations

from typing import Any

from alembic import context

from hub import models
from hub.db import WRITE

target_metadata = models.metadata
engine = context.config.attributes["engine"]


def _foreign_keys(connection: Any, on: bool) -> None:
    """Switch SQLite's foreign keys on the DB-API connection (no transaction begins);
    a connection that cannot have them back on is not returned to the pool."""
    driver = connection.connection.driver_connection
    driver.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    if driver.execute("PRAGMA foreign_keys").fetchone()[0] != int(on):
        if on:
            connection.invalidate()
        else:
            raise RuntimeError("cannot switch SQLite's foreign keys off to migrate")


def _violations(connection: Any) -> set[tuple[Any, ...]]:
    return {tuple(r) for r in connection.exec_driver_sql("PRAGMA foreign_key_check")}


with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _foreign_keys(connection, False)
    try:
        connection = connection.execution_options(**WRITE)
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
            compare_type=True,
            # one transaction for the whole upgrade on SQLite too (it has transactional
            # DDL): a failed step, or a broken foreign key, leaves the schema as it was
            transactional_ddl=True,
        )
        migrated = False
        with context.begin_transaction():
            migration = context.get_context()
            start = migration.get_current_revision()
            pending = sqlite and start != context.get_head_revision()
            before = _violations(connection) if pending else set()
            context.run_migrations()
            migrated = pending and migration.get_current_revision() != start
            if migrated:
                made = _violations(connection) - before
                if made:
                    raise RuntimeError(
                        f"the migration would break {len(made)} foreign key(s), e.g. "
                        f"{sorted(made)[:5]} (table, rowid, parent, constraint): rolled back"
                    )
        if migrated:  # a rebuilt table went through the WAL: give that space back now
            connection.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        if sqlite:
            _foreign_keys(connection, True)
