"""ids are never given out again: AUTOINCREMENT on SQLite

SQLite gives a new row the highest id in use plus one, so deleting the newest client,
device, rule… handed its id to the next one created (and another tenant's live feed,
rule or webhook receiver took the newcomer for the deleted one).  With AUTOINCREMENT
it never gives an id out twice.  SQLite cannot add AUTOINCREMENT to a table: each
table is rebuilt (copied into a new one, same columns, constraints and foreign keys,
then its indexes made again), and ``sqlite_sequence`` is seeded with the highest id
the hub can still see a trace of, so that an id whose row was deleted before this
migration is not given out again either (see ``TRACES``).  Alerts get back the rule
that raised them where migration 0003 lost it (see ``RELINK_ALERTS``).

PostgreSQL's sequences never give a value out twice: nothing to do there.

Revision ID: 0006
Revises: 0005
Create Date: 2027-01-20
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = (
    "clients",
    "users",
    "api_tokens",
    "connections",
    "devices",
    "positions",
    "geofence_groups",
    "geofences",
    "alert_rules",
    "alerts",
    "sinks",
    "dead_letters",
)
"""The tables whose ids leave the database (``outbox`` has AUTOINCREMENT since 0003)."""


def _json_ints(table: str, column: str, path: str = "$", where: str = "") -> str:
    """The highest integer in the JSON array at ``path`` of ``table.column``."""
    cond = f"WHERE {where}" if where else ""
    return (
        f"SELECT max(j.value) FROM {table}, json_each({table}.{column}, '{path}') AS j "  # noqa: S608 - names of this module
        f"{cond} {'AND' if where else 'WHERE'} j.type = 'integer'"
    )


def _json_int(table: str, column: str, path: str, where: str = "") -> str:
    """The highest integer at ``path`` of ``table.column``."""
    value = f"json_extract({column}, '{path}')"
    cond = f"AND {where}" if where else ""
    return (
        f"SELECT max({value}) FROM {table} WHERE json_type({column}, '{path}') = 'integer' {cond}"  # noqa: S608 - names of this module
    )


_ALERT_ROWS = "kind = 'alert'"
_ARRAYS = "json_type({}) = 'array'"
TRACES: dict[str, tuple[str, ...]] = {
    "users": (
        "SELECT max(owner_id) FROM alert_rules",
        _json_int("alerts", "payload", "$.ruleOwnerId"),
        _json_int("outbox", "payload", "$.ruleOwnerId", _ALERT_ROWS),
    ),
    "connections": ("SELECT max(connection_id) FROM positions",),
    "devices": (
        "SELECT max(device_id) FROM positions",
        "SELECT max(device_id) FROM alerts",
        "SELECT max(device_id) FROM outbox",
        "SELECT max(device_id) FROM sink_pending",
        "SELECT max(device_id) FROM dead_letters",
        _json_ints("alert_rules", "device_ids", where=_ARRAYS.format("device_ids")),
    ),
    "positions": (
        "SELECT max(position_id) FROM alerts",
        "SELECT max(ref_id) FROM outbox WHERE kind = 'location'",
    ),
    "alerts": ("SELECT max(ref_id) FROM outbox WHERE kind = 'alert'",),
    "alert_rules": (
        "SELECT max(rule_id) FROM alerts",
        _json_int("alerts", "payload", "$.urId"),
        _json_int("outbox", "payload", "$.urId", _ALERT_ROWS),
        # per-rule state of each device, by rule id
        "SELECT max(CAST(j.key AS INTEGER)) FROM device_state,"
        " json_each(device_state.state, '$.rules') AS j",
    ),
    "geofences": (
        _json_ints("positions", "poi_ids", where="positions.poi_ids <> '[]'"),
        _json_ints("device_state", "state", "$.inside"),
        _json_int("alert_rules", "params", "$.poi_id"),
        _json_ints("alert_rules", "params", "$.poi_ids"),
        _json_ints("alerts", "payload", "$.poiIds"),
        _json_ints("outbox", "payload", "$.poiIds", _ALERT_ROWS),
    ),
    "geofence_groups": (
        _json_ints("positions", "poi_group_ids", where="positions.poi_group_ids <> '[]'"),
        _json_ints("alert_rules", "params", "$.group_ids"),
        _json_ints("alerts", "payload", "$.poiGroupIds"),
        _json_ints("outbox", "payload", "$.poiGroupIds", _ALERT_ROWS),
    ),
    "sinks": ("SELECT max(sink_id) FROM outbox",),
    "outbox": (
        # a sink's cursor and its batch in flight: ids given out, maybe pruned since
        "SELECT max(cursor) FROM sinks",
        "SELECT max(inflight_upto) FROM sinks",
        "SELECT max(outbox_id) FROM sink_pending",
        "SELECT max(outbox_id) FROM dead_letters",
    ),
}
"""Where ids of deleted rows may still be seen, by table: the sequence starts above them.

The hub keeps no other record of the ids it gave out (no high-water mark in
``hub_meta``); ids of clients, API tokens and dead letters deleted before this
migration, with their highest id gone, leave no trace and may be given out once more.
"""

COPY_CACHE_KIB = -65536
"""SQLite's page cache while tables are copied (64 MiB): building the unique index of a
large positions table in the default 2 MiB takes three times as long."""

MAX_TRACE = 2**53
"""Trace values above this are not ids the hub gave out (JSON's exact integers)."""

_ID_COLUMN = re.compile(r'(\(\s*"?id"?\s+INTEGER\s+NOT\s+NULL)(\s*,)', re.IGNORECASE)
_PRIMARY_KEY = re.compile(
    r'\s*,\s*(?:CONSTRAINT\s+"?\w+"?\s+)?PRIMARY\s+KEY\s*\(\s*"?id"?\s*\)', re.IGNORECASE
)
_CREATE = re.compile(r'^\s*CREATE\s+TABLE\s+"?\w+"?\s*\(', re.IGNORECASE)


def autoincrement_ddl(ddl: str, name: str) -> str:
    """``CREATE TABLE name`` with the columns and constraints of ``ddl`` (a table's own
    statement from ``sqlite_master``) and ``id INTEGER PRIMARY KEY AUTOINCREMENT``."""
    out, columns = _ID_COLUMN.subn(r"\1 PRIMARY KEY AUTOINCREMENT\2", ddl, count=1)
    out, keys = _PRIMARY_KEY.subn("", out, count=1)
    out, heads = _CREATE.subn(f'CREATE TABLE "{name}" (', out, count=1)
    if (columns, keys, heads) != (1, 1, 1):
        raise RuntimeError(f"0006: unexpected table definition, not changed: {ddl}")
    return out


def rebuild_with_autoincrement(conn: sa.Connection, table: str) -> bool:
    """Rebuild ``table`` with AUTOINCREMENT, keeping its rows, constraints, foreign keys
    and indexes; ``False`` if it has it already.  Foreign keys must be off (see env.py)."""
    ddl = conn.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).scalar()
    if ddl is None:
        raise RuntimeError(f"0006: no table {table}")
    if "AUTOINCREMENT" in ddl.upper():
        return False
    extras = [
        sql
        for (sql,) in conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger')"
            " AND sql IS NOT NULL ORDER BY rowid",
            (table,),
        )
    ]
    new = f"_0006_{table}"
    conn.exec_driver_sql(autoincrement_ddl(ddl, new))
    # the same statement, so the same columns in the same order; the indexes of the old
    # table go with it and are made again once the rows are in (quicker than row by row)
    copy = f'INSERT INTO "{new}" SELECT * FROM "{table}" ORDER BY rowid'  # noqa: S608 - a table name of TABLES
    conn.exec_driver_sql(copy)
    conn.exec_driver_sql(f'DROP TABLE "{table}"')
    conn.exec_driver_sql(f'ALTER TABLE "{new}" RENAME TO "{table}"')
    for sql in extras:
        conn.exec_driver_sql(sql)
    return True


def seed_sequence(conn: sa.Connection, table: str) -> int:
    """Make ``table``'s next id higher than its ids and every trace of one; return the
    sequence's value."""
    highest = f'SELECT coalesce(max(id), 0) FROM "{table}"'  # noqa: S608 - a table name of TABLES
    floor = conn.exec_driver_sql(highest).scalar() or 0
    for query in TRACES.get(table, ()):
        value = conn.exec_driver_sql(query).scalar()
        if isinstance(value, int) and floor < value <= MAX_TRACE:
            floor = value
    seq = conn.exec_driver_sql("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).scalar()
    if seq is None:
        conn.exec_driver_sql(
            "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, floor)
        )
    elif seq < floor:
        conn.exec_driver_sql("UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (floor, table))
    return max(int(seq or 0), floor)


RELINK_ALERTS = """
UPDATE alerts SET rule_id = json_extract(payload, '$.urId')
WHERE rule_id IS NULL AND json_type(payload, '$.urId') = 'integer'
  AND EXISTS (
    SELECT 1 FROM alert_rules AS r
    WHERE r.id = json_extract(alerts.payload, '$.urId') AND r.client_id = alerts.client_id
      AND r.created_at <= alerts.server_time
  )
"""
"""Give alerts back the rule that raised them.  Migration 0003 rebuilt ``alert_rules``
while foreign keys were enforced, and dropping the old table set every alert's
``rule_id`` to NULL; the alert object still names its rule (``urId``).  A rule created
after the alert is not the one that raised it (its id was a deleted rule's, reused)."""


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        return  # PostgreSQL: sequences never give a value out twice
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size={COPY_CACHE_KIB}")  # the copies' indexes
    try:
        for table in TABLES:
            rebuild_with_autoincrement(conn, table)
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
    for table in (*TABLES, "outbox"):
        seed_sequence(conn, table)
    conn.exec_driver_sql(RELINK_ALERTS)


def downgrade() -> None:
    """Nothing to undo: the schema before 0006 works unchanged with AUTOINCREMENT."""
