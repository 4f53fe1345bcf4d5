"""Plain SQL on the driver's own connection, for the ingest hot path.

Building a SQLAlchemy statement, finding its compiled form in the cache and processing
its parameters and rows costs more CPU than SQLite or PostgreSQL spend running the
small per-batch statements (a device's client, its client's versions...).  These
helpers send SQL text straight to the driver (sqlite3 or psycopg) on the connection of
the current SQLAlchemy transaction, so the statement is part of that transaction.
Values come back as the driver returns them: use them for ids, numbers and text only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa


def is_postgres(conn: sa.Connection) -> bool:
    return conn.dialect.name == "postgresql"


def mark(conn: sa.Connection) -> str:
    """The driver's placeholder: ``%s`` (psycopg) or ``?`` (sqlite3)."""
    return "%s" if is_postgres(conn) else "?"


def in_ids(conn: sa.Connection, ids: Collection[int]) -> tuple[str, list[Any]]:
    """``column <this>`` matching any of ``ids``, and its parameters."""
    if is_postgres(conn):
        return "= ANY(%s::int8[])", [list(ids)]
    return f"IN ({','.join('?' * len(ids))})", list(ids)


def fetchall(conn: sa.Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    driver = conn.connection.driver_connection
    if is_postgres(conn):
        with driver.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(sql, params)
            return cur.fetchall()  # type: ignore[no-any-return]
    return driver.execute(sql, params).fetchall()  # type: ignore[union-attr,no-any-return]


def execute(conn: sa.Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run ``sql``; the number of rows it changed."""
    driver = conn.connection.driver_connection
    if is_postgres(conn):
        with driver.cursor() as cur:  # type: ignore[union-attr]
            cur.execute(sql, params)
            return int(cur.rowcount)
    return int(driver.execute(sql, params).rowcount)  # type: ignore[union-attr]


def executemany(conn: sa.Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run ``sql`` once per row of parameters (sqlite3 only); the rows changed."""
    return int(conn.connection.driver_connection.executemany(sql, rows).rowcount)  # type: ignore[union-attr]


def insert_one(conn: sa.Connection, sql: str, row: Sequence[Any]) -> int:
    """Run the ``INSERT`` ``sql`` for one row (sqlite3 only); the row's id."""
    return int(conn.connection.driver_connection.execute(sql, row).lastrowid)  # type: ignore[union-attr]
